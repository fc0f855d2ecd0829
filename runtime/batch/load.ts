/**
 * Turning the tensors of a batch file into a RaggedBatch (and a run's results back into a file).
 * Owns the batch contract's rules (docs/batch.md): padded vs packed layout, seq_lens and
 * mask consistency, grouping, and the per-input shape/dtype/finiteness checks, each reported as a
 * one-line BatchError naming the tensor and what was expected.
 */
import {
  BatchError,
  countAt,
  offsetsFromLengths,
  type HostTensor,
  type InputSpec,
  type Layout,
  type RaggedBatch,
} from '../../core/batch/batch.js';
import type { DType, Level } from '../../core/types/types.js';
import { formatShape, writeSafetensors, type RawTensor, type TensorToWrite } from './safetensors.js';

/** What {@link loadBatch} needs besides the tensors. */
export interface LoadSpec {
  readonly inputs: readonly InputSpec[];
  /** Name of the token mask tensor; null: every token within seq_lens counts. */
  readonly maskName: string | null;
  /** Consecutive groups of this many sequences (the `--group-size` option). */
  readonly groupSize?: number;
}

/** A run's results, as {@link writeOutputs} writes them. */
export interface BatchOutputs {
  readonly loss: number;
  readonly metrics: Readonly<Record<string, number>>;
  /** Gradient per input name, at the input's level, packed like the batch (token: [numTokens]). */
  readonly grads: Readonly<Record<string, { readonly level: Exclude<Level, 'batch'>; readonly data: Float64Array }>>;
}

/** Dtypes accepted in a file for each element type of an input. */
const ACCEPTED_DTYPES: Readonly<Record<DType, readonly string[]>> = {
  f32: ['F32', 'F16', 'BF16', 'F64'],
  i32: ['I32', 'I64'],
  bool: ['U8', 'BOOL', 'F32'],
};
const MASK_DTYPES: readonly string[] = ['F32', 'U8', 'BOOL'];
const INDEX_DTYPES: readonly string[] = ['I32', 'I64'];
const SEQ_LENS = 'seq_lens';
const GROUP_ID = 'group_id';
const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;

/** The token structure of a batch: layout, sequence lengths and the packed mask. */
interface Frame {
  readonly layout: Layout;
  readonly numSeqs: number;
  /** L for padded; unused for packed. */
  readonly width: number;
  readonly lengths: Int32Array;
  readonly offsets: Int32Array;
  readonly numTokens: number;
  /** [numTokens] packed 0/1. */
  readonly mask: Uint8Array;
  /** Name of the tensor the layout was read from, for messages. */
  readonly reference: string | null;
}

interface Grouping {
  readonly numGroups: number;
  readonly groupOf: Int32Array;
  readonly groupIds: number[];
}

// ---------------------------------------------------------------------------------------------
// loadBatch
// ---------------------------------------------------------------------------------------------

/**
 * Builds the packed RaggedBatch from a file's tensors, following the batch contract: token
 * tensors `[S, L]` mean padded layout (first seq_lens[s] columns of each row are kept), `[T]`
 * packed (seq_lens required). Values at padded or masked-out positions are never checked; where
 * they are not valid for the input's type (NaN, ±Inf, not 0/1 for bool, …) they are stored as 0.
 * @throws BatchError naming the offending tensor and what was expected.
 */
export function loadBatch(tensors: ReadonlyMap<string, RawTensor>, spec: LoadSpec): RaggedBatch {
  const frame = resolveFrame(tensors, spec);
  const grouping = resolveGroups(tensors, frame.numSeqs, spec.groupSize);
  const loaded = new Map<string, HostTensor>();
  for (const input of spec.inputs) loaded.set(input.name, loadInput(tensors, input, frame, grouping));
  return {
    numTokens: frame.numTokens,
    numSeqs: frame.numSeqs,
    numGroups: grouping.numGroups,
    offsets: frame.offsets,
    groupOf: grouping.groupOf,
    groupIds: grouping.groupIds,
    mask: frame.mask,
    tensors: loaded,
    layout: frame.layout,
  };
}

/**
 * Picks the tensor whose shape decides the layout: the mask when present, else the token-level
 * input with the highest rank (≤ 2) and then the most elements, so that a per-sequence tensor
 * wrongly given for a token input is reported against the others rather than setting the layout.
 */
function findReference(tensors: ReadonlyMap<string, RawTensor>, spec: LoadSpec): string | null {
  if (spec.maskName !== null && tensors.has(spec.maskName)) return spec.maskName;
  const present = spec.inputs.filter((i) => i.level === 'token' && tensors.has(i.name)).map((i) => i.name);
  if (present.length === 0) return null;
  const score = (name: string): [number, number] => {
    const shape = tensors.get(name)!.shape;
    if (shape.length < 1 || shape.length > 2) return [-1, 0];
    return [shape.length, shape.reduce((a, b) => a * b, 1)];
  };
  const better = (a: [number, number], b: [number, number]): boolean => a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
  return present.reduce((best, name) => (better(score(name), score(best)) ? name : best));
}

function resolveFrame(tensors: ReadonlyMap<string, RawTensor>, spec: LoadSpec): Frame {
  const reference = findReference(tensors, spec);
  if (reference === null) return tokenlessFrame(tensors, spec);
  const shape = tensors.get(reference)!.shape;
  if (shape.length === 2) return paddedFrame(tensors, spec.maskName, shape[0], shape[1], reference);
  if (shape.length === 1) return packedFrame(tensors, spec, shape[0], reference);
  throw new BatchError(
    reference,
    `shape ${formatShape(shape)} is not token-shaped; expected [S, L] (padded layout) or [T] (packed layout)`,
  );
}

/** Padded layout: rows of width L; lengths from seq_lens, else from the mask, else L. */
function paddedFrame(
  tensors: ReadonlyMap<string, RawTensor>,
  maskName: string | null,
  numSeqs: number,
  width: number,
  reference: string,
): Frame {
  const expected = `[S, L] = ${formatShape([numSeqs, width])} (padded layout, like ${reference})`;
  const mask = readMask(tensors, maskName, [numSeqs, width], expected);
  const lengths = tensors.has(SEQ_LENS)
    ? readPaddedSeqLens(tensors.get(SEQ_LENS)!, numSeqs, width)
    : derivedLengths(mask, numSeqs, width);
  if (mask !== null) checkMaskWithinLengths(mask, lengths, width, maskName!);
  const offsets = offsetsFromLengths(lengths);
  const numTokens = offsets[numSeqs];
  const packedMask = new Uint8Array(numTokens).fill(1);
  if (mask !== null) gatherRows(mask, lengths, width, packedMask);
  return {
    layout: { kind: 'padded', maxLen: width },
    numSeqs,
    width,
    lengths,
    offsets,
    numTokens,
    mask: packedMask,
    reference,
  };
}

/** Packed layout: seq_lens is required and must sum to T. */
function packedFrame(
  tensors: ReadonlyMap<string, RawTensor>,
  spec: LoadSpec,
  numTokens: number,
  reference: string,
): Frame {
  const maskName = spec.maskName;
  const raw = tensors.get(SEQ_LENS);
  if (raw === undefined) {
    throw new BatchError(
      SEQ_LENS,
      `missing; the packed layout (${reference} has shape [T] = ${formatShape([numTokens])}) needs seq_lens of shape [S] (I32/I64)`,
    );
  }
  const lengths = readSeqLens(raw);
  const total = lengths.reduce((a, b) => a + b, 0);
  if (total !== numTokens) {
    const agreeing = spec.inputs.find(
      (i) => i.level === 'token' && sameShape(tensors.get(i.name)?.shape ?? [], [total]),
    );
    if (agreeing !== undefined) {
      throw new BatchError(
        reference,
        `shape ${formatShape([numTokens])}; expected [T] = ${formatShape([total])} (the sum of seq_lens, like ${agreeing.name})`,
      );
    }
    throw new BatchError(SEQ_LENS, `sums to ${total}; expected T = ${numTokens} (the length of ${reference})`);
  }
  const expected = `[T] = ${formatShape([numTokens])} (packed layout, like ${reference})`;
  const mask = readMask(tensors, maskName, [numTokens], expected);
  return {
    layout: { kind: 'packed' },
    numSeqs: lengths.length,
    width: 0,
    lengths,
    offsets: offsetsFromLengths(lengths),
    numTokens,
    mask: mask === null ? new Uint8Array(numTokens).fill(1) : Uint8Array.from(mask),
    reference,
  };
}

/**
 * No token tensor in the file or the spec: sequences come from seq_lens (packed), else from the
 * first seq-level tensor present, with no tokens.
 */
function tokenlessFrame(tensors: ReadonlyMap<string, RawTensor>, spec: LoadSpec): Frame {
  const raw = tensors.get(SEQ_LENS);
  let lengths: Int32Array;
  if (raw !== undefined) {
    lengths = readSeqLens(raw);
  } else {
    const seqInput = spec.inputs.find((i) => i.level === 'seq' && tensors.has(i.name));
    const source = tensors.get(seqInput ? seqInput.name : GROUP_ID);
    lengths = new Int32Array(source && source.shape.length === 1 ? source.shape[0] : 0);
  }
  const offsets = offsetsFromLengths(lengths);
  const numTokens = offsets[lengths.length];
  return {
    layout: { kind: 'packed' },
    numSeqs: lengths.length,
    width: 0,
    lengths,
    offsets,
    numTokens,
    mask: new Uint8Array(numTokens).fill(1),
    reference: null,
  };
}

/** Reads and checks the mask (dtype, shape, 0/1 everywhere); null when none is named or present. */
function readMask(
  tensors: ReadonlyMap<string, RawTensor>,
  maskName: string | null,
  shape: readonly number[],
  expected: string,
): Float64Array | null {
  if (maskName === null) return null;
  const raw = tensors.get(maskName);
  if (raw === undefined) return null;
  if (!MASK_DTYPES.includes(raw.dtype)) {
    throw new BatchError(
      maskName,
      `dtype ${raw.dtype} is not accepted for the mask; expected one of ${MASK_DTYPES.join(', ')} (0/1)`,
    );
  }
  if (!sameShape(raw.shape, shape)) {
    throw new BatchError(maskName, `shape ${formatShape(raw.shape)}; expected ${expected}`);
  }
  const bad = raw.data.findIndex((v) => v !== 0 && v !== 1);
  if (bad >= 0) {
    throw new BatchError(maskName, `value ${raw.data[bad]} at ${formatIndex(bad, shape)}; expected 0 or 1`);
  }
  return raw.data;
}

/** seq_lens must be I32/I64 of rank 1 with non-negative values. */
function readSeqLens(raw: RawTensor): Int32Array {
  if (!INDEX_DTYPES.includes(raw.dtype)) {
    throw new BatchError(SEQ_LENS, `dtype ${raw.dtype}; expected I32 or I64`);
  }
  if (raw.shape.length !== 1) {
    throw new BatchError(SEQ_LENS, `shape ${formatShape(raw.shape)}; expected [S]`);
  }
  const bad = raw.data.findIndex((v) => v < 0 || v > I32_MAX);
  if (bad >= 0) {
    throw new BatchError(SEQ_LENS, `value ${raw.data[bad]} at index ${bad}; expected a non-negative length`);
  }
  const total = raw.data.reduce((a, b) => a + b, 0);
  if (total > I32_MAX) {
    throw new BatchError(SEQ_LENS, `sums to ${total} tokens; expected at most ${I32_MAX}`);
  }
  return Int32Array.from(raw.data);
}

/** Padded seq_lens additionally must be [S] with every length ≤ L. */
function readPaddedSeqLens(raw: RawTensor, numSeqs: number, width: number): Int32Array {
  if (raw.shape.length === 1 && raw.shape[0] !== numSeqs) {
    throw new BatchError(SEQ_LENS, `shape ${formatShape(raw.shape)}; expected [S] = ${formatShape([numSeqs])}`);
  }
  const lengths = readSeqLens(raw);
  const bad = lengths.findIndex((v) => v > width);
  if (bad >= 0) {
    throw new BatchError(
      SEQ_LENS,
      `seq_lens[${bad}] = ${lengths[bad]} exceeds the padded width L = ${width}; expected ≤ ${width}`,
    );
  }
  return lengths;
}

/** Lengths from a padded mask: index of the last 1 plus one (0 for a row without a 1); L without a mask. */
function derivedLengths(mask: Float64Array | null, numSeqs: number, width: number): Int32Array {
  const lengths = new Int32Array(numSeqs).fill(width);
  if (mask === null) return lengths;
  for (let s = 0; s < numSeqs; s++) {
    let len = width;
    while (len > 0 && mask[s * width + len - 1] !== 1) len--;
    lengths[s] = len;
  }
  return lengths;
}

function checkMaskWithinLengths(mask: Float64Array, lengths: Int32Array, width: number, maskName: string): void {
  for (let s = 0; s < lengths.length; s++) {
    for (let t = lengths[s]; t < width; t++) {
      if (mask[s * width + t] === 1) {
        throw new BatchError(
          maskName,
          `is 1 at [${s}, ${t}] but seq_lens[${s}] = ${lengths[s]}; expected mask 0 beyond each sequence's length`,
        );
      }
    }
  }
}

/** Copies the first lengths[s] entries of each padded row into `out` (packed). */
function gatherRows(padded: ArrayLike<number>, lengths: Int32Array, width: number, out: { [i: number]: number }): void {
  let at = 0;
  for (let s = 0; s < lengths.length; s++) {
    for (let t = 0; t < lengths[s]; t++) out[at++] = padded[s * width + t];
  }
}

// ---------------------------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------------------------

/** Groups from group_id (dense, first appearance), else groupSize, else one group per sequence. */
function resolveGroups(
  tensors: ReadonlyMap<string, RawTensor>,
  numSeqs: number,
  groupSize: number | undefined,
): Grouping {
  const raw = tensors.get(GROUP_ID);
  const size = groupSize ?? null;
  if (raw !== undefined && size !== null) {
    throw new BatchError(GROUP_ID, 'give either group_id or --group-size, not both');
  }
  if (raw !== undefined) return groupsFromIds(raw, numSeqs);
  return consecutiveGroups(numSeqs, size ?? 1);
}

function groupsFromIds(raw: RawTensor, numSeqs: number): Grouping {
  if (!INDEX_DTYPES.includes(raw.dtype)) {
    throw new BatchError(GROUP_ID, `dtype ${raw.dtype}; expected I32 or I64`);
  }
  if (!sameShape(raw.shape, [numSeqs])) {
    throw new BatchError(GROUP_ID, `shape ${formatShape(raw.shape)}; expected [S] = ${formatShape([numSeqs])}`);
  }
  const dense = new Map<number, number>();
  const groupOf = new Int32Array(numSeqs);
  for (let s = 0; s < numSeqs; s++) {
    const id = raw.data[s];
    let g = dense.get(id);
    if (g === undefined) dense.set(id, (g = dense.size));
    groupOf[s] = g;
  }
  return { numGroups: dense.size, groupOf, groupIds: [...dense.keys()] };
}

function consecutiveGroups(numSeqs: number, size: number): Grouping {
  if (!Number.isSafeInteger(size) || size < 1) {
    throw new BatchError('group_size', `--group-size ${size}; expected a positive integer`);
  }
  if (numSeqs % size !== 0) {
    throw new BatchError(
      'group_size',
      `--group-size ${size} does not divide the number of sequences S = ${numSeqs}; expected S to be a multiple of ${size}`,
    );
  }
  const numGroups = numSeqs / size;
  const groupOf = new Int32Array(numSeqs);
  for (let s = 0; s < numSeqs; s++) groupOf[s] = Math.floor(s / size);
  return { numGroups, groupOf, groupIds: Array.from({ length: numGroups }, (_, g) => g) };
}

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

function loadInput(
  tensors: ReadonlyMap<string, RawTensor>,
  input: InputSpec,
  frame: Frame,
  grouping: Grouping,
): HostTensor {
  const raw = tensors.get(input.name);
  const shape = expectedShape(input.level, frame, grouping);
  if (raw === undefined) {
    throw new BatchError(
      input.name,
      `missing; expected a ${input.level}-level ${input.dtype} tensor of shape ${shape.text}`,
    );
  }
  checkDtype(input, raw);
  checkShape(input, raw, shape, frame, grouping);
  const data = input.level === 'token' ? tokenValues(raw, frame) : Float64Array.from(raw.data);
  const valid = input.level === 'token' ? frame.mask : null;
  checkValues(input, data, valid, frame);
  return { level: input.level, dtype: input.dtype, data };
}

/** The shape an input of `level` must have, and how messages describe it. */
function expectedShape(
  level: InputSpec['level'],
  frame: Frame,
  grouping: Grouping,
): { dims: number[] | null; text: string } {
  if (level === 'seq') return { dims: [frame.numSeqs], text: `[S] = ${formatShape([frame.numSeqs])}` };
  if (level === 'group')
    return { dims: [grouping.numGroups], text: `[G] = ${formatShape([grouping.numGroups])} (one per group)` };
  if (frame.reference === null) return { dims: null, text: '[S, L] (padded) or [T] (packed)' };
  if (frame.layout.kind === 'padded') {
    return {
      dims: [frame.numSeqs, frame.width],
      text: `[S, L] = ${formatShape([frame.numSeqs, frame.width])} (padded layout)`,
    };
  }
  return { dims: [frame.numTokens], text: `[T] = ${formatShape([frame.numTokens])} (packed layout)` };
}

function checkDtype(input: InputSpec, raw: RawTensor): void {
  const accepted = ACCEPTED_DTYPES[input.dtype];
  if (!accepted.includes(raw.dtype)) {
    throw new BatchError(
      input.name,
      `dtype ${raw.dtype} is not accepted for a ${input.dtype} input; expected one of ${accepted.join(', ')}`,
    );
  }
}

function checkShape(
  input: InputSpec,
  raw: RawTensor,
  shape: { dims: number[] | null; text: string },
  frame: Frame,
  grouping: Grouping,
): void {
  if (shape.dims !== null && sameShape(raw.shape, shape.dims)) return;
  const hint = levelHint(input, raw.shape, frame, grouping);
  throw new BatchError(input.name, `shape ${formatShape(raw.shape)}; expected ${shape.text}${hint}`);
}

/** When a tensor has the shape of another level, say so: the declared level is authoritative. */
function levelHint(input: InputSpec, shape: readonly number[], frame: Frame, grouping: Grouping): string {
  const levels = (['token', 'seq', 'group'] as const).filter((level) => {
    if (level === input.level) return false;
    const dims = expectedShape(level, frame, grouping).dims;
    return dims !== null && sameShape(shape, dims);
  });
  if (levels.length === 0) return '';
  return ` (that is the ${levels[0]}-level shape, but the method declares ${input.name} at ${input.level} level)`;
}

/** Token values in packed order: padded rows are cut to their lengths. */
function tokenValues(raw: RawTensor, frame: Frame): Float64Array {
  if (frame.layout.kind === 'packed') return Float64Array.from(raw.data);
  const out = new Float64Array(frame.numTokens);
  gatherRows(raw.data, frame.lengths, frame.width, out);
  return out;
}

/**
 * Checks finiteness and the element type at valid positions (all positions when `valid` is null)
 * and zeroes invalid values at masked-out positions.
 */
function checkValues(input: InputSpec, data: Float64Array, valid: Uint8Array | null, frame: Frame): void {
  for (let i = 0; i < data.length; i++) {
    const problem = valueProblem(input.dtype, data[i]);
    if (problem === null) continue;
    if (valid !== null && valid[i] === 0) {
      data[i] = 0;
      continue;
    }
    const where = formatLoadedIndex(input.level, i, frame);
    throw new BatchError(
      input.name,
      `${problem} at ${where}${valid ? ', a valid (mask = 1) position' : ''}; ${expectation(input.dtype)}`,
    );
  }
}

/** What is wrong with `v` as a value of `dtype`, or null when nothing is. */
function valueProblem(dtype: DType, v: number): string | null {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  if (dtype === 'bool' && v !== 0 && v !== 1) return `value ${v}`;
  if (dtype === 'i32' && (v < I32_MIN || v > I32_MAX)) return `value ${v} (outside i32)`;
  return null;
}

function expectation(dtype: DType): string {
  if (dtype === 'bool') return 'expected 0 or 1';
  if (dtype === 'i32') return 'expected integers in the i32 range';
  return 'expected finite values';
}

/** Index of packed element i as the user sees it in their file. */
function formatLoadedIndex(level: InputSpec['level'], i: number, frame: Frame): string {
  if (level !== 'token') return `index ${i}`;
  const s = seqOfToken(frame.offsets, i);
  const t = i - frame.offsets[s];
  if (frame.layout.kind === 'padded') return `[${s}, ${t}]`;
  return `index ${i} (sequence ${s}, position ${t})`;
}

/** The sequence containing packed token i (binary search over offsets). */
function seqOfToken(offsets: Int32Array, i: number): number {
  let lo = 0;
  let hi = offsets.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (offsets[mid] <= i) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// ---------------------------------------------------------------------------------------------
// writeOutputs
// ---------------------------------------------------------------------------------------------

/**
 * Serializes a run's results: `loss` (F32, shape []), `metric.NAME` (F32 scalars) and `grad.NAME`
 * (F32) in the input's layout: token grads [S, L] with 0 at padding when the batch was padded,
 * [T] when packed; seq grads [S]; group grads [G].
 * @throws BatchError naming `grad.NAME` when a gradient has the wrong length for its level.
 */
export function writeOutputs(batch: RaggedBatch, out: BatchOutputs): Uint8Array {
  const tensors: TensorToWrite[] = [{ name: 'loss', dtype: 'F32', shape: [], data: [out.loss] }];
  for (const [name, value] of Object.entries(out.metrics)) {
    tensors.push({ name: `metric.${name}`, dtype: 'F32', shape: [], data: [value] });
  }
  for (const [name, grad] of Object.entries(out.grads)) tensors.push(gradTensor(batch, `grad.${name}`, grad));
  return writeSafetensors(tensors);
}

function gradTensor(
  batch: RaggedBatch,
  name: string,
  grad: { readonly level: Exclude<Level, 'batch'>; readonly data: Float64Array },
): TensorToWrite {
  const count = countAt(batch, grad.level);
  if (grad.data.length !== count) {
    throw new BatchError(name, `has ${grad.data.length} values; expected ${count} for a ${grad.level}-level gradient`);
  }
  if (grad.level === 'token' && batch.layout.kind === 'padded') {
    return { name, dtype: 'F32', shape: [batch.numSeqs, batch.layout.maxLen], data: scatterRows(batch, grad.data) };
  }
  return { name, dtype: 'F32', shape: [count], data: grad.data };
}

/** Packed token values → padded [S, L] rows, 0 at padding. */
function scatterRows(batch: RaggedBatch, packed: Float64Array): Float64Array {
  if (batch.layout.kind !== 'padded') return packed;
  const width = batch.layout.maxLen;
  const out = new Float64Array(batch.numSeqs * width);
  for (let s = 0; s < batch.numSeqs; s++) {
    const begin = batch.offsets[s];
    out.set(packed.subarray(begin, batch.offsets[s + 1]), s * width);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Row-major flat index → `[i, j]` (or `index i` for rank 1) for messages. */
function formatIndex(flat: number, shape: readonly number[]): string {
  if (shape.length !== 2) return `index ${flat}`;
  return `[${Math.floor(flat / shape[1])}, ${flat % shape[1]}]`;
}

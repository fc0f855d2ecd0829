/**
 * Turning the tensors of a batch file into a RaggedBatch (outputs.ts writes a run's results back).
 * Owns the batch contract's rules (docs/batch.md): padded vs packed layout, seq_lens and
 * mask consistency, grouping, and the per-input shape/dtype/finiteness checks, each reported as a
 * one-line BatchError naming the tensor and what was expected.
 */
import {
  BatchError,
  checkVocabIndexes,
  offsetsFromLengths,
  type HostTensor,
  type InputSpec,
  type Layout,
  type RaggedBatch,
} from '../../core/batch/batch.js';
import { showLevel, type DType, type Level } from '../../core/types/types.js';
import { formatShape, type RawTensor } from './safetensors.js';

/** What {@link loadBatch} needs besides the tensors. */
export interface LoadSpec {
  readonly inputs: readonly InputSpec[];
  /** Name of the token mask tensor; null: every token within seq_lens counts. */
  readonly maskName: string | null;
  /** Consecutive groups of this many sequences (the `--group-size` option). */
  readonly groupSize?: number;
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

/** The tensor whose shape decides the layout: the mask, a token-level input or a `token x vocab` one. */
interface Reference {
  readonly name: string;
  readonly level: 'token' | 'vocab';
  /** The tensor's shape in the file. */
  readonly shape: readonly number[];
  /** Its token dimensions: the shape without the vocabulary dimension (for vocab). */
  readonly tokenShape: readonly number[];
}

/** The vocabulary axis once a `token x vocab` input has fixed it. */
interface VocabAxis {
  /** V, the last dimension of every `token x vocab` tensor. */
  readonly size: number;
  /** The input V was read from, for messages. */
  readonly from: string;
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
 * packed (seq_lens required); `token x vocab` tensors are `[S, L, V]` / `[T, V]`, their rows
 * packed like token tensors, and all share V. Values at padded or masked-out positions are never
 * checked; where they are not valid for the input's type (NaN, ±Inf, not 0/1 for bool, …) they are
 * stored as 0 (`-Inf` is valid in a `token x vocab` f32 input and kept). A `token x vocab` input
 * without padding rows (packed, or padded with every sequence L long) is not copied: the batch
 * shares the RawTensor's array (T × V can be large), copying it only to zero masked-out values.
 * @throws BatchError naming the offending tensor and what was expected.
 */
export function loadBatch(tensors: ReadonlyMap<string, RawTensor>, spec: LoadSpec): RaggedBatch {
  const frame = resolveFrame(tensors, spec);
  const grouping = resolveGroups(tensors, frame.numSeqs, spec.groupSize);
  const loaded = new Map<string, HostTensor>();
  let vocab: VocabAxis | null = null;
  for (const input of spec.inputs) {
    const level = input.level;
    // an optional input the file leaves out: the run decides from its params whether it was needed
    if (input.optional && !tensors.has(input.name)) continue;
    if (level === 'vocab') {
      const result = loadVocabInput(tensors, input, frame, grouping, vocab);
      vocab = result.vocab;
      loaded.set(input.name, result.tensor);
    } else loaded.set(input.name, loadInput(tensors, input, level, frame, grouping));
  }
  const batch: RaggedBatch = {
    numTokens: frame.numTokens,
    numSeqs: frame.numSeqs,
    numGroups: grouping.numGroups,
    vocabSize: vocab?.size ?? 0,
    offsets: frame.offsets,
    groupOf: grouping.groupOf,
    groupIds: grouping.groupIds,
    mask: frame.mask,
    tensors: loaded,
    layout: frame.layout,
  };
  checkVocabIndexes(batch, spec.inputs);
  return batch;
}

/**
 * Picks the tensor whose shape decides the layout, among the mask and the token-level inputs: a
 * token shape (rank 1 or 2) that most of them share, so that the one tensor that differs is the one
 * blamed; then the mask; then the highest rank, so that a per-sequence tensor wrongly given for a
 * token input is reported against the others rather than setting the layout; then the most
 * elements. With no mask or token-level input present, the `token x vocab` input chosen the same
 * way by its token dimensions (its shape without the last, vocabulary, dimension).
 */
function findReference(tensors: ReadonlyMap<string, RawTensor>, spec: LoadSpec): Reference | null {
  const mask = spec.maskName !== null && tensors.has(spec.maskName) ? [spec.maskName] : [];
  for (const level of ['token', 'vocab'] as const) {
    const inputs = spec.inputs.filter((i) => i.level === level && tensors.has(i.name)).map((i) => i.name);
    const present = [...new Set(level === 'token' ? [...mask, ...inputs] : inputs)];
    if (present.length === 0) continue;
    const tokenShape = (name: string): readonly number[] => {
      const shape = tensors.get(name)!.shape;
      return level === 'vocab' ? shape.slice(0, -1) : shape;
    };
    const votes = new Map<string, number>();
    for (const name of present) {
      const key = formatShape(tokenShape(name));
      votes.set(key, (votes.get(key) ?? 0) + 1);
    }
    const score = (name: string): number[] => {
      const shape = tokenShape(name);
      const isMask = name === spec.maskName ? 1 : 0;
      if (shape.length < 1 || shape.length > 2) return [0, 0, isMask, 0, 0];
      return [1, votes.get(formatShape(shape))!, isMask, shape.length, shape.reduce((a, b) => a * b, 1)];
    };
    const better = (a: number[], b: number[]): boolean => {
      const i = a.findIndex((v, k) => v !== b[k]);
      return i >= 0 && a[i] > b[i];
    };
    const name = present.reduce((best, n) => (better(score(n), score(best)) ? n : best));
    return { name, level, shape: tensors.get(name)!.shape, tokenShape: tokenShape(name) };
  }
  return null;
}

function resolveFrame(tensors: ReadonlyMap<string, RawTensor>, spec: LoadSpec): Frame {
  const reference = findReference(tensors, spec);
  if (reference === null) return tokenlessFrame(tensors, spec);
  const dims = reference.tokenShape;
  if (dims.length === 2) return paddedFrame(tensors, spec.maskName, dims[0], dims[1], reference.name);
  if (dims.length === 1) return packedFrame(tensors, spec, dims[0], reference);
  if (reference.level === 'vocab') {
    throw new BatchError(
      reference.name,
      `shape ${formatShape(reference.shape)} is not token x vocab-shaped; expected [S, L, V] (padded layout) or [T, V] (packed layout)`,
    );
  }
  throw new BatchError(
    reference.name,
    `shape ${formatShape(reference.shape)} is not token-shaped; expected [S, L] (padded layout) or [T] (packed layout)`,
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
  checkTokenCount(lengths, mask !== null ? maskName! : reference, numSeqs, width);
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
  ref: Reference,
): Frame {
  const maskName = spec.maskName;
  const reference = ref.name;
  const vocab = ref.level === 'vocab';
  const raw = tensors.get(SEQ_LENS);
  if (raw === undefined) {
    throw new BatchError(
      SEQ_LENS,
      `missing; the packed layout (${reference} has shape ${vocab ? '[T, V]' : '[T]'} = ${formatShape(ref.shape)}) needs seq_lens of shape [S] (I32/I64)`,
    );
  }
  const lengths = readSeqLens(raw);
  const total = lengths.reduce((a, b) => a + b, 0);
  if (total !== numTokens) {
    const agreeing = spec.inputs.find((i) => {
      const shape = tensors.get(i.name)?.shape ?? [];
      if (i.level === 'token') return sameShape(shape, [total]);
      return i.level === 'vocab' && shape.length === 2 && shape[0] === total;
    });
    if (agreeing !== undefined) {
      const expected = vocab ? `[T, V] = ${formatShape([total, ref.shape[1]])}` : `[T] = ${formatShape([total])}`;
      throw new BatchError(
        reference,
        `shape ${formatShape(ref.shape)}; expected ${expected} (the sum of seq_lens, like ${agreeing.name})`,
      );
    }
    throw new BatchError(
      SEQ_LENS,
      `sums to ${total}; expected T = ${numTokens} (the ${vocab ? 'first dimension' : 'length'} of ${reference})`,
    );
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
    throw new BatchError(SEQ_LENS, `sums to ${exactSum(raw.data)} tokens; expected at most ${I32_MAX} in one batch`);
  }
  return Int32Array.from(raw.data);
}

/**
 * Token offsets are Int32Array: a padded batch whose lengths (from the mask, or L for every row)
 * add up to more than I32_MAX tokens is refused before anything that size is allocated.
 */
function checkTokenCount(lengths: Int32Array, blamed: string, numSeqs: number, width: number): void {
  let total = 0;
  for (let s = 0; s < lengths.length; s++) total += lengths[s];
  if (total <= I32_MAX) return;
  throw new BatchError(
    blamed,
    `${numSeqs} sequences of up to L = ${width} tokens hold ${exactSum(lengths)} tokens; expected at most ${I32_MAX} in one batch (split it)`,
  );
}

/** The exact sum of integers, as a bigint: a float64 sum past 2^53 would print rounded. */
function exactSum(values: ArrayLike<number>): bigint {
  let total = 0n;
  for (let i = 0; i < values.length; i++) total += BigInt(values[i]);
  return total;
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

/** Loads a token-, seq- or group-level input (`level` is input.level). */
function loadInput(
  tensors: ReadonlyMap<string, RawTensor>,
  input: InputSpec,
  level: Exclude<InputSpec['level'], 'vocab'>,
  frame: Frame,
  grouping: Grouping,
): HostTensor {
  const raw = tensors.get(input.name);
  const shape = expectedShape(level, frame, grouping);
  if (raw === undefined) {
    throw new BatchError(
      input.name,
      `missing; expected a ${levelPhrase(input.level)} ${input.dtype} tensor of shape ${shape.text}`,
    );
  }
  checkDtype(input, raw);
  checkShape(input, raw, shape, frame, grouping);
  const data = input.level === 'token' ? tokenValues(raw, frame) : Float64Array.from(raw.data);
  const valid = input.level === 'token' ? frame.mask : null;
  checkValues(input, data, valid, frame);
  return { level: input.level, dtype: input.dtype, data };
}

/** The shape an input of `level` (not vocab: see {@link vocabShape}) must have, and how messages describe it. */
function expectedShape(
  level: Exclude<InputSpec['level'], 'vocab'>,
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
  const levels = (['token', 'seq', 'group', 'vocab'] as const).filter((level) => {
    if (level === input.level) return false;
    if (level === 'vocab') {
      // [S, L, V] / [T, V] for any V
      const dims = expectedShape('token', frame, grouping).dims;
      return dims !== null && shape.length === dims.length + 1 && sameShape(shape.slice(0, -1), dims);
    }
    const dims = expectedShape(level, frame, grouping).dims;
    return dims !== null && sameShape(shape, dims);
  });
  if (levels.length === 0) return '';
  return ` (that is the ${levelPhrase(levels[0])} shape, but the method declares ${input.name} at ${showLevel(input.level)} level)`;
}

/** How messages name a level's tensors: `token-level`, `token x vocab`. */
function levelPhrase(level: Exclude<Level, 'batch'>): string {
  return level === 'vocab' ? showLevel(level) : `${level}-level`;
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
// token x vocab inputs
// ---------------------------------------------------------------------------------------------

/**
 * Loads a `token x vocab` input: `[S, L, V]` padded or `[T, V]` packed, its token rows packed like
 * token tensors. The first such input fixes V (≥ 1); every later one must have the same V.
 * Returns the tensor and the vocabulary axis as it now stands.
 */
function loadVocabInput(
  tensors: ReadonlyMap<string, RawTensor>,
  input: InputSpec,
  frame: Frame,
  grouping: Grouping,
  vocab: VocabAxis | null,
): { tensor: HostTensor; vocab: VocabAxis } {
  const raw = tensors.get(input.name);
  const shape = vocabShape(frame, vocab);
  if (raw === undefined) {
    throw new BatchError(input.name, `missing; expected a token x vocab ${input.dtype} tensor of shape ${shape.text}`);
  }
  checkDtype(input, raw);
  const dims = raw.shape;
  if (
    shape.tokenDims === null ||
    dims.length !== shape.tokenDims.length + 1 ||
    !sameShape(dims.slice(0, -1), shape.tokenDims)
  ) {
    const hint = levelHint(input, dims, frame, grouping);
    throw new BatchError(input.name, `shape ${formatShape(dims)}; expected ${shape.text}${hint}`);
  }
  const size = dims[dims.length - 1];
  if (vocab !== null && size !== vocab.size) {
    throw new BatchError(
      input.name,
      `vocabulary size V = ${size} (the last dimension of ${formatShape(dims)}) differs from V = ${vocab.size} of ${vocab.from}; expected every token x vocab tensor to have the same V`,
    );
  }
  if (size < 1) {
    throw new BatchError(
      input.name,
      `vocabulary size V = ${size} (the last dimension of ${formatShape(dims)}); expected V ≥ 1`,
    );
  }
  const axis = vocab ?? { size, from: input.name };
  // without padding (packed, or every sequence L long) the rows are already packed: no copy
  const shared = frame.layout.kind === 'packed' || frame.lengths.every((len) => len === frame.width);
  const data = shared ? raw.data : vocabRows(raw.data, frame, size);
  return {
    tensor: {
      level: 'vocab',
      dtype: input.dtype,
      data: checkVocabValues(input, data, !shared, frame, size),
      ...(raw.dtype === 'BF16' ? { stored: 'bf16' as const } : raw.dtype === 'F16' ? { stored: 'f16' as const } : {}),
    },
    vocab: axis,
  };
}

/** The shape a `token x vocab` input must have: its token dimensions (null: unknown) and how messages say it. */
function vocabShape(frame: Frame, vocab: VocabAxis | null): { tokenDims: number[] | null; text: string } {
  if (frame.reference === null) return { tokenDims: null, text: '[S, L, V] (padded) or [T, V] (packed)' };
  const v = vocab === null ? 'V' : String(vocab.size);
  const known = vocab === null ? '' : `; V = ${vocab.size}, as in ${vocab.from}`;
  if (frame.layout.kind === 'padded') {
    return {
      tokenDims: [frame.numSeqs, frame.width],
      text: `[S, L, V] = [${frame.numSeqs}, ${frame.width}, ${v}] (padded layout${known})`,
    };
  }
  return { tokenDims: [frame.numTokens], text: `[T, V] = [${frame.numTokens}, ${v}] (packed layout${known})` };
}

/** Padded [S, L, V] values → packed [T, V]: the first lengths[s] rows of each sequence, one copy per sequence. */
function vocabRows(padded: Float64Array, frame: Frame, size: number): Float64Array {
  const out = new Float64Array(frame.numTokens * size);
  const rowStride = frame.width * size;
  for (let s = 0; s < frame.numSeqs; s++) {
    const begin = s * rowStride;
    out.set(padded.subarray(begin, begin + frame.lengths[s] * size), frame.offsets[s] * size);
  }
  return out;
}

/**
 * Checks a packed `token x vocab` tensor at valid (mask = 1) tokens: f32 values must be finite or
 * −Inf (a masked-out vocabulary entry); i32/bool as at other levels. At masked-out tokens invalid
 * values become 0, in a copy unless `owned` (the array is then the file's, not to be written).
 * Returns the array to keep.
 */
function checkVocabValues(
  input: InputSpec,
  data: Float64Array,
  owned: boolean,
  frame: Frame,
  size: number,
): Float64Array {
  let out = data;
  for (let t = 0; t < frame.numTokens; t++) {
    const begin = t * size;
    const end = begin + size;
    const bad = input.dtype === 'f32' ? firstNotBelowInf(out, begin, end) : firstInvalid(input.dtype, out, begin, end);
    if (bad < 0) continue;
    if (frame.mask[t] === 0) {
      if (!owned) {
        out = Float64Array.from(out);
        owned = true;
      }
      for (let i = bad; i < end; i++) if (vocabValueProblem(input.dtype, out[i]) !== null) out[i] = 0;
      continue;
    }
    const problem = vocabValueProblem(input.dtype, out[bad])!;
    throw new BatchError(
      input.name,
      `${problem} at ${formatVocabIndex(t, bad - begin, frame)}, a valid (mask = 1) position; ${vocabExpectation(input.dtype)}`,
    );
  }
  return out;
}

/** First index in [begin, end) holding NaN or +Inf (the values `v < Infinity` rejects), or −1. */
function firstNotBelowInf(data: Float64Array, begin: number, end: number): number {
  for (let i = begin; i < end; i++) if (!(data[i] < Infinity)) return i;
  return -1;
}

function firstInvalid(dtype: DType, data: Float64Array, begin: number, end: number): number {
  for (let i = begin; i < end; i++) if (valueProblem(dtype, data[i]) !== null) return i;
  return -1;
}

/** As {@link valueProblem}, but −Inf is a valid f32 value (a vocabulary entry with probability 0). */
function vocabValueProblem(dtype: DType, v: number): string | null {
  if (dtype === 'f32' && v === -Infinity) return null;
  return valueProblem(dtype, v);
}

function vocabExpectation(dtype: DType): string {
  return dtype === 'f32' ? 'expected finite values or -Inf (a masked-out vocabulary entry)' : expectation(dtype);
}

/** Index of entry v of packed token t as the user sees it in their file. */
function formatVocabIndex(t: number, v: number, frame: Frame): string {
  const s = seqOfToken(frame.offsets, t);
  const position = t - frame.offsets[s];
  if (frame.layout.kind === 'padded') return `[${s}, ${position}, ${v}]`;
  return `[${t}, ${v}] (sequence ${s}, position ${position}, vocabulary entry ${v})`;
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

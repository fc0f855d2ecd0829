/**
 * The `L` arenas of a run (core/device/program.ts): each chunk's vocabulary rows — one per token —
 * split into row chunks of whole rows that each fit one binding, independently of groups. An input
 * slot holds a `token x vocab` tensor in the encoding it came in (bf16 and f16 tensors stay 16-bit:
 * half the device memory and bandwidth of f32, exactly), an output slot the f32 a kernel writes.
 * Rows start at multiples of 16 bytes (vec4 loads).
 */
import { BatchError, type RaggedBatch } from '../../core/batch/batch.js';
import {
  ROW_ENCODING,
  ROW_HEADER,
  ROW_SLOT_WORDS,
  type DeviceProgram,
  type RowEncoding,
} from '../../core/device/program.js';
import { InternalError } from '../../core/diagnostics/diagnostic.js';
import { GpuError } from './device.js';
import { bytesText } from './chunks.js';

/** One row chunk: rows firstRow … firstRow + rows − 1 of a chunk, and its `L` arena. */
export interface RowChunk {
  readonly firstRow: number;
  readonly rows: number;
  readonly L: Uint32Array;
  /** Word offset of each slot's first row in L. */
  readonly offsets: readonly number[];
  /** Words from one row of each slot to the next (RowLayout.strides). */
  readonly strides: readonly number[];
  /** Whether some gradient here takes its input's memory (RowLayout.aliases). */
  readonly inPlace: boolean;
}

/** How the slots of one program store a batch's rows: encodings and row strides (words). */
export interface RowLayout {
  readonly encodings: readonly RowEncoding[];
  readonly strides: readonly number[];
  /** Output slot → the f32 input slot whose memory it takes (gradient in place), for those that do. */
  readonly aliases: ReadonlyMap<number, number>;
  /** Words before the first slot's data (a multiple of 4). */
  readonly headerWords: number;
}

const up4 = (n: number) => Math.ceil(n / 4) * 4;

/** @param inPlace let gradients take their f32 input's memory where the program allows (RowSlot.overwrites). */
export function rowLayout(program: DeviceProgram, batch: RaggedBatch, inPlace = false): RowLayout {
  const V = batch.vocabSize;
  const encodings = program.rowSlots.map((s): RowEncoding => {
    if (s.kind === 'output') return 'f32';
    const t = batch.tensors.get(s.name);
    if (!t) throw new BatchError(s.name, 'missing; expected a token x vocab tensor');
    return t.stored ?? 'f32';
  });
  const strides = encodings.map((e) => (e === 'f32' ? up4(V) : up4(Math.ceil(V / 2))));
  const aliases = new Map<number, number>();
  program.rowSlots.forEach((s, k) => {
    if (inPlace && s.kind === 'output' && s.overwrites !== undefined && encodings[s.overwrites] === 'f32')
      aliases.set(k, s.overwrites);
  });
  return { encodings, strides, aliases, headerWords: up4(ROW_HEADER + ROW_SLOT_WORDS * program.rowSlots.length) };
}

/** The row chunks of a chunk of `numRows` rows, each at most `limit` bytes. */
export function splitRows(layout: RowLayout, numRows: number, V: number, limit: number): [number, number][] {
  const perRow = 4 * layout.strides.reduce((a, b, k) => a + (layout.aliases.has(k) ? 0 : b), 0);
  const fit = Math.floor((limit - 4 * layout.headerWords) / perRow);
  if (fit < 1)
    throw new GpuError(
      `one vocabulary row (V = ${V}) needs ${bytesText(perRow + 4 * layout.headerWords)} in its ${layout.strides.length} token x vocab buffers, above the ${bytesText(limit)} binding limit; use --backend cpu`,
    );
  const out: [number, number][] = [];
  for (let first = 0; first < numRows; first += fit) out.push([first, Math.min(fit, numRows - first)]);
  // a chunk with no tokens still runs nothing, but keeps one (empty) row chunk for its outputs
  return out.length ? out : [[0, 0]];
}

/** The `L` arena of rows first … first + rows − 1 of `chunk`: header, inputs encoded, outputs zero. */
export function buildRowChunk(
  program: DeviceProgram,
  layout: RowLayout,
  chunk: RaggedBatch,
  first: number,
  rows: number,
): RowChunk {
  const V = chunk.vocabSize;
  const offsets: number[] = [];
  let words = layout.headerWords;
  layout.strides.forEach((stride, k) => {
    offsets.push(words);
    if (!layout.aliases.has(k)) words += rows * stride;
  });
  // a gradient in place starts where its input does
  for (const [k, input] of layout.aliases) offsets[k] = offsets[input];
  const L = new Uint32Array(Math.max(4, words));
  L[0] = first;
  L[1] = rows;
  L[2] = V;
  program.rowSlots.forEach((slot, k) => {
    const d = ROW_HEADER + ROW_SLOT_WORDS * k;
    L[d] = offsets[k];
    L[d + 1] = ROW_ENCODING[layout.encodings[k]];
    L[d + 2] = layout.strides[k];
    if (slot.kind === 'input') {
      const data = chunk.tensors.get(slot.name)?.data;
      if (!data) throw new InternalError('gpu-rows', `no tensor ${slot.name} in the chunk`);
      encodeRows(
        data.subarray(first * V, (first + rows) * V),
        V,
        layout.encodings[k],
        L,
        offsets[k],
        layout.strides[k],
      );
    }
  });
  return { firstRow: first, rows, L, offsets, strides: layout.strides, inPlace: layout.aliases.size > 0 };
}

/** Writes rows of V values (float64) into `out` from word `at`, `stride` words per row, in `encoding`. */
export function encodeRows(
  data: Float64Array,
  V: number,
  encoding: RowEncoding,
  out: Uint32Array,
  at: number,
  stride: number,
): void {
  const rows = V ? data.length / V : 0;
  if (encoding === 'f32') {
    const f32 = new Float32Array(out.buffer, out.byteOffset + at * 4, rows * stride);
    if (stride === V) f32.set(data);
    else for (let r = 0; r < rows; r++) f32.set(data.subarray(r * V, (r + 1) * V), r * stride);
    return;
  }
  const half = encoding === 'bf16' ? bf16Bits : f16Bits;
  for (let r = 0; r < rows; r++) {
    const row = r * V;
    const base = at + r * stride;
    for (let v = 0; v < V; v += 2) {
      const lo = half(data[row + v]);
      const hi = v + 1 < V ? half(data[row + v + 1]) : 0;
      out[base + (v >> 1)] = (lo | (hi << 16)) >>> 0;
    }
  }
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The bf16 bits of x, rounded to nearest even (exact for a value read from a BF16 tensor). */
export function bf16Bits(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0];
  if ((b & 0x7f800000) === 0x7f800000) return b >>> 16; // ±inf (NaN never reaches a device)
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** x rounded to the nearest bf16 (the value a BF16 tensor would hold). */
export function roundToBf16(x: number): number {
  u32Scratch[0] = bf16Bits(x) << 16;
  return f32Scratch[0];
}

/** The IEEE half bits of x, rounded to nearest even (exact for a value read from an F16 tensor). */
export function f16Bits(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | 0x7c00;
  if (a >= 65520) return sign | 0x7c00; // rounds past the largest half (65504)
  if (a < 2 ** -24 * 0.5) return sign; // below half the smallest subnormal
  let e = Math.floor(Math.log2(a));
  // Math.log2 may round across a power of two
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  if (e < -14) {
    // subnormal: a multiple of 2^-24
    return sign | roundEven(a / 2 ** -24);
  }
  const exp = Math.min(e, 15);
  let m = roundEven((a / 2 ** exp - 1) * 1024);
  let biased = exp + 15;
  if (m === 1024) ((m = 0), biased++);
  return biased >= 31 ? sign | 0x7c00 : sign | (biased << 10) | m;
}

function roundEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
}

/**
 * The `L` arenas of a run: each chunk's row chunks, each at most `limit` bytes, and the slots'
 * encodings (the same in every chunk: they follow the batch's tensors); none without row slots.
 */
export function buildRowArenas(
  program: DeviceProgram,
  chunks: readonly RaggedBatch[],
  limit: number,
  inPlace: boolean,
): { chunks: RowChunk[][]; encodings: readonly RowEncoding[] | null } {
  if (!program.rowSlots.length) return { chunks: [], encodings: null };
  let encodings: readonly RowEncoding[] | null = null;
  const list = chunks.map((c) => {
    const layout = rowLayout(program, c, inPlace);
    encodings = layout.encodings;
    return splitRows(layout, c.numTokens, c.vocabSize, limit).map(([first, rows]) =>
      buildRowChunk(program, layout, c, first, rows),
    );
  });
  return { chunks: list, encodings };
}

/**
 * Index structure of a ragged batch for the interpreter: which sequence each token belongs to,
 * positions among valid tokens, and the map from an element of one level to its segment at a
 * coarser level.
 *
 * The tables are built by the `write*` functions below, which the GPU runtime also uses to fill
 * its arenas in place (runtime/webgpu/tables.ts), so both backends share one definition of them:
 * that is why they live in the ground floor, below the interpreter and the runtime.
 */
import { countAt, type RaggedBatch } from './batch.js';
import type { Level } from '../types/types.js';

/** The typed arrays index tables are written into: the interpreter's f64 tables and the GPU's f32/u32 arenas. */
export type NumericArray = Float64Array | Float32Array | Int32Array | Uint32Array;

/** Writes the sequence index of each token into out[at .. at + numTokens). */
export function writeSeqOf(batch: RaggedBatch, out: NumericArray, at = 0): void {
  const { numSeqs: S, offsets } = batch;
  // a loop, not out.fill per sequence: batches of many short sequences would pay a call per token
  for (let s = 0; s < S; s++) for (let t = offsets[s], end = offsets[s + 1]; t < end; t++) out[at + t] = s;
}

/**
 * Writes each token's position into out[at .. at + numTokens): the number of valid (mask ≠ 0)
 * tokens before it in its sequence.
 */
export function writePositions(batch: RaggedBatch, out: NumericArray, at = 0): void {
  const { numSeqs: S, offsets, mask } = batch;
  for (let s = 0; s < S; s++) {
    let k = 0;
    for (let t = offsets[s], end = offsets[s + 1]; t < end; t++) {
      out[at + t] = k;
      if (mask[t]) k++;
    }
  }
}

/** Writes the number of valid tokens of each sequence into out[at .. at + numSeqs); returns their sum. */
export function writeLengths(batch: RaggedBatch, out: NumericArray, at = 0): number {
  const { numSeqs: S, offsets, mask } = batch;
  let valid = 0;
  for (let s = 0; s < S; s++) {
    let k = 0;
    for (let t = offsets[s], end = offsets[s + 1]; t < end; t++) if (mask[t]) k++;
    out[at + s] = k;
    valid += k;
  }
  return valid;
}

/** Writes the number of sequences of each group into out[at .. at + numGroups). */
export function writeGroupSizes(batch: RaggedBatch, out: NumericArray, at = 0): void {
  const { numSeqs: S, numGroups: G, groupOf } = batch;
  out.fill(0, at, at + G);
  for (let s = 0; s < S; s++) out[at + groupOf[s]]++;
}

/**
 * The tables are computed on first use, not in the constructor: the per-token ones cost a pass
 * over the batch and 12 bytes a token, and most users need few of them (the GPU runtime keeps a
 * Segments only for its occasional host steps; the interpreter needs `position` only where a
 * program reads `position`, and `seqOf` only for maps from tokens to their segments).
 */
export class Segments {
  private seqOfTable?: Int32Array;
  private positionTable?: Float64Array;
  private lengthTable?: Float64Array;
  private groupSizeTable?: Float64Array;
  private validCount?: number;

  constructor(readonly batch: RaggedBatch) {}

  /** [numTokens] The sequence of each token. */
  get seqOf(): Int32Array {
    if (!this.seqOfTable) writeSeqOf(this.batch, (this.seqOfTable = new Int32Array(this.batch.numTokens)));
    return this.seqOfTable;
  }

  /** [numTokens] The number of valid tokens before each token in its sequence. */
  get position(): Float64Array {
    if (!this.positionTable) writePositions(this.batch, (this.positionTable = new Float64Array(this.batch.numTokens)));
    return this.positionTable;
  }

  /** [numSeqs] The number of valid tokens of each sequence. */
  get length(): Float64Array {
    if (!this.lengthTable)
      this.validCount = writeLengths(this.batch, (this.lengthTable = new Float64Array(this.batch.numSeqs)));
    return this.lengthTable;
  }

  /** [numGroups] The number of sequences of each group. */
  get groupSize(): Float64Array {
    if (!this.groupSizeTable)
      writeGroupSizes(this.batch, (this.groupSizeTable = new Float64Array(this.batch.numGroups)));
    return this.groupSizeTable;
  }

  /** The number of valid tokens in the batch. */
  get validTokens(): number {
    if (this.validCount === undefined) void this.length; // counted along with the lengths
    return this.validCount!;
  }

  size(level: Level): number {
    return countAt(this.batch, level);
  }

  /**
   * Whether element i of a level takes part in reductions (masked-out tokens do not). Every
   * vocabulary entry of every token takes part in its token's reductions over the vocabulary:
   * the token's mask applies when token values reduce further.
   */
  valid(level: Level, i: number): boolean {
    return level !== 'token' || this.batch.mask[i] === 1;
  }

  /** Index at level `to` (coarser or equal) of element i at level `from`. */
  parent(from: Level, to: Level, i: number): number {
    if (from === to) return i;
    if (to === 'batch') return 0;
    if (from === 'vocab') {
      i = Math.floor(i / this.batch.vocabSize);
      if (to === 'token') return i;
      from = 'token';
    }
    if (from === 'token') i = this.seqOf[i];
    if (to === 'seq') return i;
    return this.batch.groupOf[i];
  }
}

/**
 * Per batch, so tables computed once (a host step's, the valid-token count) are kept for the
 * batch's next run: batches are not modified once built, and entries go when a batch is collected.
 */
const cached = new WeakMap<RaggedBatch, Segments>();

/** The Segments of a batch, shared by every caller that asks for the same batch object. */
export function segmentsOf(batch: RaggedBatch): Segments {
  let seg = cached.get(batch);
  if (!seg) cached.set(batch, (seg = new Segments(batch)));
  return seg;
}

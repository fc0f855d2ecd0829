/**
 * The in-memory RL batch every backend consumes: tokens stored packed on a ragged axis.
 *
 * Levels nest token ⊂ seq ⊂ group ⊂ batch. Token values are stored packed (`offsets`), one row per
 * token including masked-out ones; `mask` says which tokens count. Groups are dense indices
 * 0..numGroups-1 in order of first appearance of their `group_id`.
 */

import type { DType, Level } from '../types/types.js';

/** One named tensor of a batch, already converted to float64 (bools as 0/1, ints exact). */
export interface HostTensor {
  readonly level: Exclude<Level, 'batch'>;
  readonly dtype: DType;
  /** token: length numTokens; seq: numSeqs; group: numGroups; vocab: numTokens × vocabSize, row per token. */
  readonly data: Float64Array;
  /**
   * The narrower float encoding the values came in (a BF16 or F16 tensor of the file), so every
   * value is exact in it: a device may hold the tensor so (half the memory and bandwidth of f32).
   */
  readonly stored?: 'bf16' | 'f16';
}

/** How the batch was laid out in its file, so outputs can be written back the same way. */
export type Layout = { readonly kind: 'packed' } | { readonly kind: 'padded'; readonly maxLen: number };

export interface RaggedBatch {
  readonly numTokens: number;
  readonly numSeqs: number;
  readonly numGroups: number;
  /** Entries of the vocabulary axis (the last dimension of every `token x vocab` tensor); 0 without one. */
  readonly vocabSize: number;
  /** [numSeqs + 1]: tokens of seq s are offsets[s] .. offsets[s+1]-1. */
  readonly offsets: Int32Array;
  /** [numSeqs]: dense group index of each sequence. */
  readonly groupOf: Int32Array;
  /** [numGroups]: the user's group id of each dense group (for messages and per-group exports). */
  readonly groupIds: readonly number[];
  /** [numTokens]: 1 where the token counts (response mask), 0 elsewhere. */
  readonly mask: Uint8Array;
  readonly tensors: ReadonlyMap<string, HostTensor>;
  readonly layout: Layout;
}

/** What a program needs from a batch: one entry per declared input (the mask is separate). */
export interface InputSpec {
  readonly name: string;
  readonly level: Exclude<Level, 'batch'>;
  readonly dtype: DType;
  /** Indexes the vocabulary (`gather(x, NAME)`): values at valid tokens must lie in 0 … V − 1. */
  readonly vocabIndex?: boolean;
  /** Declared `when COND`: a batch may leave it out (a run checks COND for its params). */
  readonly optional?: boolean;
}

/** A problem with the user's batch: always names the tensor (or 'batch') and says what was expected. */
export class BatchError extends Error {
  constructor(
    readonly tensor: string,
    message: string,
  ) {
    super(`${tensor}: ${message}`);
    this.name = 'BatchError';
  }
}

/** The element counts of a batch (or a chunk of one), by level. */
export type BatchSizes = Pick<RaggedBatch, 'numTokens' | 'numSeqs' | 'numGroups'> & {
  readonly vocabSize?: number;
};

/** How many elements a level has: the one place that says it. */
export function countAt(sizes: BatchSizes, level: Level): number {
  switch (level) {
    case 'vocab':
      return sizes.numTokens * (sizes.vocabSize ?? 0);
    case 'token':
      return sizes.numTokens;
    case 'seq':
      return sizes.numSeqs;
    case 'group':
      return sizes.numGroups;
    case 'batch':
      return 1;
  }
}

/**
 * Checks that every input that indexes the vocabulary holds, at every valid token, an entry of it
 * (0 … V − 1): `gather` with any other index would silently give 0.
 * @throws BatchError naming the input, the first bad value and its token.
 */
export function checkVocabIndexes(batch: RaggedBatch, inputs: readonly InputSpec[]): void {
  const V = batch.vocabSize;
  for (const input of inputs) {
    if (!input.vocabIndex) continue;
    const data = batch.tensors.get(input.name)?.data;
    if (!data) continue; // a missing tensor is the loader's message
    for (let s = 0; s < batch.numSeqs; s++) {
      for (let t = batch.offsets[s]; t < batch.offsets[s + 1]; t++) {
        const v = data[t];
        if (batch.mask[t] && !(Number.isInteger(v) && v >= 0 && v < V))
          throw new BatchError(
            input.name,
            `${v} at token ${t} (sequence ${s}, position ${t - batch.offsets[s]}) is not an entry of the vocabulary; expected 0 ≤ ${input.name} < V = ${V} (the last dimension of the token x vocab tensors)`,
          );
      }
    }
  }
}

/** Builds offsets from per-sequence lengths. */
export function offsetsFromLengths(lengths: ArrayLike<number>): Int32Array {
  const offsets = new Int32Array(lengths.length + 1);
  for (let s = 0; s < lengths.length; s++) offsets[s + 1] = offsets[s] + lengths[s];
  return offsets;
}

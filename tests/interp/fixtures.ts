/**
 * The shared hand-built batch of the semantics tests.
 *
 *   seq  group reward  tokens (logp)          mask        packed token index
 *   s0   0     1       [1, 100, 3, 2]         [1,0,1,1]   t0 t1 t2 t3      (t1 masked, value 100)
 *   s1   1     2       []                     []          —                (length-0 sequence)
 *   s2   0     3       [4, -1, 4]             [1,1,1]     t4 t5 t6         (a tie: 4 twice)
 *   s3   1     4       [50, -50]              [0,0]       t7 t8            (fully masked)
 *   s4   1     5       [0, 2]                 [1,1]       t9 t10
 *
 * Groups are not contiguous: group 0 = {s0, s2}, group 1 = {s1, s3, s4}. gin = [10, 20].
 * Valid tokens: s0 → [1, 3, 2]; s2 → [4, -1, 4]; s4 → [0, 2]; group 0 → [1, 3, 2, 4, -1, 4];
 * group 1 → [0, 2]; batch → [1, 3, 2, 4, -1, 4, 0, 2] (8 tokens). The masked values (100, 50, -50)
 * would change every statistic if they leaked in.
 */
import type { RefBatch } from '../reference/batch.js';
import { batch } from './helpers.js';

export const A: RefBatch = batch({
  seqs: [
    { logp: [1, 100, 3, 2], mask: [1, 0, 1, 1], reward: 1, group: 0, old: [0.5, 7, 0.25, 2] },
    { logp: [], reward: 2, group: 1 },
    { logp: [4, -1, 4], reward: 3, group: 0, old: [1, 2, 3] },
    { logp: [50, -50], mask: [0, 0], reward: 4, group: 1, old: [9, 9] },
    { logp: [0, 2], reward: 5, group: 1, old: [-1, 0.5] },
  ],
});
export const A_GIN = [10, 20];

/** Packed indices of the valid tokens of A. */
export const A_VALID = [0, 2, 3, 4, 5, 6, 9, 10];
/** Packed indices of the masked tokens of A. */
export const A_MASKED = [1, 7, 8];

/** A copy of A with every token masked. */
export const A_ALL_MASKED: RefBatch = { ...A, mask: A.mask.map(() => 0) };

/** A batch with no sequences at all. */
export const EMPTY: RefBatch = batch({ seqs: [] });

/** Values of a token-level array at the valid tokens of A. */
export function atValid(xs: ArrayLike<number>): number[] {
  return A_VALID.map((t) => xs[t]);
}

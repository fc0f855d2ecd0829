/**
 * Shared input/output types and batch helpers for the hand-written float64 reference
 * implementations of the policy-gradient losses (see grpo.ts, dapo.ts, gspo.ts).
 *
 * Layout: sequences are packed; the tokens of sequence s are offsets[s] .. offsets[s+1]-1.
 * Everything here is plain arrays and loops on purpose: these are oracles, not fast code.
 */

export interface RefBatch {
  offsets: number[]; // [S+1], tokens of seq s are offsets[s]..offsets[s+1]-1 (packed)
  groupOf: number[]; // [S], dense group index 0..G-1 (groups need not be contiguous)
  numGroups: number;
  mask: number[]; // [T], 1 = token counts, 0 = ignored everywhere
  logp: number[];
  old_logp: number[];
  ref_logp: number[]; // [T]
  reward: number[]; // [S]
}

export interface RefResult {
  loss: number;
  metrics: Record<string, number>;
  grad_logp: number[]; // [T], 0 at masked tokens
}

/** Number of sequences S. */
export function numSeqs(b: RefBatch): number {
  return b.offsets.length - 1;
}

/** Number of packed tokens T. */
export function numTokens(b: RefBatch): number {
  return b.offsets[b.offsets.length - 1]!;
}

/** Throws if the batch is malformed (inconsistent lengths, bad offsets, bad groups, mask not 0/1). */
export function checkBatch(b: RefBatch): void {
  if (b.offsets.length < 1) throw new Error('offsets must have S+1 >= 1 entries');
  if (b.offsets[0] !== 0) throw new Error('offsets[0] must be 0');
  const S = numSeqs(b);
  for (let s = 0; s < S; s++) {
    if (!Number.isInteger(b.offsets[s + 1]) || b.offsets[s + 1]! < b.offsets[s]!) {
      throw new Error(`offsets must be non-decreasing integers (at ${s + 1})`);
    }
  }
  const T = numTokens(b);
  for (const [name, arr] of [
    ['mask', b.mask],
    ['logp', b.logp],
    ['old_logp', b.old_logp],
    ['ref_logp', b.ref_logp],
  ] as const) {
    if (arr.length !== T) throw new Error(`${name} has length ${arr.length}, expected T=${T}`);
  }
  for (let t = 0; t < T; t++) {
    if (b.mask[t] !== 0 && b.mask[t] !== 1) throw new Error(`mask[${t}] must be 0 or 1`);
  }
  if (b.groupOf.length !== S) throw new Error(`groupOf has length ${b.groupOf.length}, expected S=${S}`);
  if (b.reward.length !== S) throw new Error(`reward has length ${b.reward.length}, expected S=${S}`);
  for (let s = 0; s < S; s++) {
    const g = b.groupOf[s]!;
    if (!Number.isInteger(g) || g < 0 || g >= b.numGroups) {
      throw new Error(`groupOf[${s}] = ${g} is not in 0..${b.numGroups - 1}`);
    }
  }
}

/** L_i = number of tokens of sequence i with mask 1. */
export function seqLengths(b: RefBatch): number[] {
  const S = numSeqs(b);
  const L: number[] = [];
  for (let s = 0; s < S; s++) {
    let n = 0;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] === 1) n++;
    }
    L.push(n);
  }
  return L;
}

/**
 * GRPO group advantage: A_i = (R_i - mean_g R) / (std_g R + advEps), std unbiased (n-1);
 * a group with a single sequence has std 0. Statistics run over all sequences of the group,
 * including those without valid tokens.
 */
export function groupAdvantages(b: RefBatch, rewards: number[], advEps: number): number[] {
  const S = numSeqs(b);
  const mean: number[] = [];
  const std: number[] = [];
  for (let g = 0; g < b.numGroups; g++) {
    let n = 0;
    let sum = 0;
    for (let s = 0; s < S; s++) {
      if (b.groupOf[s] === g) {
        n++;
        sum += rewards[s]!;
      }
    }
    const m = n > 0 ? sum / n : 0;
    let ss = 0;
    for (let s = 0; s < S; s++) {
      if (b.groupOf[s] === g) ss += (rewards[s]! - m) * (rewards[s]! - m);
    }
    mean.push(m);
    std.push(n > 1 ? Math.sqrt(ss / (n - 1)) : 0);
  }
  const A: number[] = [];
  for (let s = 0; s < S; s++) {
    const g = b.groupOf[s]!;
    A.push((rewards[s]! - mean[g]!) / (std[g]! + advEps));
  }
  return A;
}

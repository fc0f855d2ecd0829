/**
 * What the references of the stdlib-II families (preference pairs, unpaired feedback, token
 * rewards, diffusion LMs, non-LM actions; docs/batch.md) share: they read a RaggedBatch directly —
 * its tensors by name — and return the loss, the metrics and the gradient w.r.t. every grad input
 * by name. Plain arrays and loops, written from the formulas (never from the compiler's IR).
 */
import type { RaggedBatch } from '../../core/batch/batch.js';

/** A reference's answer: loss, metrics and ∂loss/∂input for each grad input (0 at masked tokens). */
export interface FamilyResult {
  loss: number;
  metrics: Record<string, number>;
  grads: Record<string, number[]>;
  /** Optional exported values by name (per sequence, per token, …), compared where given. */
  exports?: Record<string, number[]>;
}

/** The values of tensor `name` (throws, naming it, when the batch lacks it). */
export function values(b: RaggedBatch, name: string): number[] {
  const t = b.tensors.get(name);
  if (!t) throw new Error(`reference: the batch has no tensor \`${name}\``);
  return Array.from(t.data);
}

/** Token indices of sequence s. */
export function tokensOf(b: RaggedBatch, s: number): number[] {
  const out: number[] = [];
  for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) out.push(t);
  return out;
}

/** Valid (mask 1) token indices of sequence s, in order. */
export function validTokensOf(b: RaggedBatch, s: number): number[] {
  return tokensOf(b, s).filter((t) => b.mask[t] === 1);
}

/** The sequences of each group, in batch order. */
export function sequencesByGroup(b: RaggedBatch): number[][] {
  const out: number[][] = Array.from({ length: b.numGroups }, () => []);
  for (let s = 0; s < b.numSeqs; s++) out[b.groupOf[s]!]!.push(s);
  return out;
}

/** Sequence of each token. */
export function seqOfToken(b: RaggedBatch): number[] {
  const out = new Array<number>(b.numTokens);
  for (let s = 0; s < b.numSeqs; s++) for (const t of tokensOf(b, s)) out[t] = s;
  return out;
}

/** Number of valid tokens of the batch. */
export function numValid(b: RaggedBatch): number {
  let n = 0;
  for (const m of b.mask) n += m;
  return n;
}

/** A zero gradient over the tokens (or T·V entries for a `token x vocab` input). */
export function zeros(n: number): number[] {
  return new Array<number>(n).fill(0);
}

/**
 * A preference pair (docs/batch.md): the two sequences of a group of 2, chosen (y_w) first.
 * @throws when a group is not a pair with exactly one chosen sequence.
 */
export function pairs(b: RaggedBatch, chosenName = 'chosen'): { w: number; l: number }[] {
  const chosen = values(b, chosenName);
  return sequencesByGroup(b).map((seqs, g) => {
    if (seqs.length !== 2 || chosen[seqs[0]!]! + chosen[seqs[1]!]! !== 1)
      throw new Error(`reference: group ${g} is not a preference pair`);
    return chosen[seqs[0]!] === 1 ? { w: seqs[0]!, l: seqs[1]! } : { w: seqs[1]!, l: seqs[0]! };
  });
}

export const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
/** log σ(x), stable for large |x|. */
export const logSigmoid = (x: number): number => (x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x)));

/** The mean of xs, 0 when empty (the language's convention for an empty mean). */
export function meanOr0(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, v) => a + v, 0) / xs.length : 0;
}

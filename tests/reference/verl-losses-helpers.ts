/**
 * Shared pieces of the verl policy-loss references (helper A, issue 13): verl@1dda039 agg_loss
 * (verl/trainer/ppo/core_algos.py), single process, float64 loops, written from verl's code.
 *
 * loss_agg_mode codes (N = valid tokens, B' = sequences with L_i > 0, c = loss_scale_factor):
 *   0 token-mean               sum l / N                         weight 1/N
 *   1 seq-mean-token-mean      (1/B') sum_i (1/L_i) sum_t l      1/(B' L_i)
 *   2 seq-mean-token-sum       (1/B') sum_i sum_t l              1/B'
 *   3 seq-mean-token-sum-norm  (1/B') sum_i sum_t l / c          1/(B' c)       (verl@1dda039)
 *   4 token-sum                sum l                             1
 *   5 token-sum-norm           sum l / c                         1/c            (verl b178a3c)
 *   other: as 0. An empty batch gives 0.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { values } from './family.js';
import { minG } from './ops.js';

/** Records a discrete choice in the branch trace (so FD checks skip components that flip it). */
export function flag(c: boolean): boolean {
  minG(c ? 0 : 1, 0.5);
  return c;
}

export interface TokenView {
  T: number;
  S: number;
  seq: number[]; // sequence of each token
  valid: boolean[];
  L: number[]; // valid tokens per sequence
  N: number; // valid tokens of the batch
  nSeqs: number; // sequences with L_i > 0
}

export function view(b: RaggedBatch): TokenView {
  const T = b.numTokens;
  const S = b.numSeqs;
  const seq = new Array<number>(T).fill(0);
  const valid = new Array<boolean>(T).fill(false);
  const L = new Array<number>(S).fill(0);
  let N = 0;
  for (let s = 0; s < S; s++)
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      seq[t] = s;
      if (b.mask[t] === 1) {
        valid[t] = true;
        L[s]!++;
        N++;
      }
    }
  return { T, S, seq, valid, L, N, nSeqs: L.filter((n) => n > 0).length };
}

/** Per-token weight w_t of a loss_agg_mode (the loss is sum_t w_t l_t; 0 at masked tokens). */
export function aggW(v: TokenView, mode: number, c: number): number[] {
  return v.valid.map((ok, t) => {
    if (!ok) return 0;
    const Li = v.L[v.seq[t]!]!;
    switch (mode) {
      case 1:
        return 1 / (v.nSeqs * Li);
      case 2:
        return 1 / v.nSeqs;
      case 3:
        return 1 / (v.nSeqs * c);
      case 4:
        return 1;
      case 5:
        return 1 / c;
      default:
        return 1 / v.N;
    }
  });
}

/** The aggregated value, summed per sequence first as verl does. */
export function aggV(v: TokenView, l: readonly number[], mode: number, c: number): number {
  const seqSum = new Array<number>(v.S).fill(0);
  for (let t = 0; t < v.T; t++) if (v.valid[t]) seqSum[v.seq[t]!]! += l[t]!;
  const total = seqSum.reduce((a, x) => a + x, 0);
  if (mode === 1) return v.nSeqs ? meanTok() : 0;
  if (mode === 2) return v.nSeqs ? total / v.nSeqs : 0;
  if (mode === 3) return v.nSeqs ? total / v.nSeqs / c : 0;
  if (mode === 4) return total;
  if (mode === 5) return total / c;
  return v.N ? total / v.N : 0;
  function meanTok(): number {
    let acc = 0;
    for (let s = 0; s < v.S; s++) if (v.L[s]! > 0) acc += seqSum[s]! / v.L[s]!;
    return acc / v.nSeqs;
  }
}

/** Token-mean over valid tokens of f(t) (0 when there is none). */
export function tokMean(v: TokenView, f: (t: number) => number): number {
  let acc = 0;
  for (let t = 0; t < v.T; t++) if (v.valid[t]) acc += f(t);
  return v.N ? acc / v.N : 0;
}

/** The standard inputs of the verl losses. */
export function ins(b: RaggedBatch): { logp: number[]; old: number[]; adv: number[] } {
  return { logp: values(b, 'logp'), old: values(b, 'old_logp'), adv: values(b, 'advantage') };
}

export const clamp = (x: number, lo: number, hi: number): number => Math.min(Math.max(x, lo), hi);

/**
 * REINFORCE++-baseline reference (verl `reinforce_plus_plus_baseline` estimator + `vanilla` PPO loss;
 * methods-pg.md §0.2, §B.10), float64, loops.
 *
 *   a_i  = R_i - mean_g R                                         (0 for a group of one)
 *   N    = valid tokens of the batch, L_i = valid tokens of sequence i
 *   mu   = sum_i L_i a_i / max(N, 1)                               (token mean of the broadcast a)
 *   var  = sum_i L_i (a_i - mu)^2 / max(N - 1, 1)                  (unbiased token variance)
 *   A_i  = (a_i - mu) / sqrt(var + whiten_eps)
 *   then PPO with dual clip on A_i broadcast to the tokens of sequence i (ppo.ts ppoRef, same params).
 */
import { type RefBatch, type RefResult, numSeqs, seqLengths } from './batch.js';
import { centredRewards } from './dr_grpo.js';
import { type PpoParams, PPO_DEFAULTS, ppoRef, seqToToken } from './ppo.js';

export interface ReinforcePpParams extends PpoParams {
  whiten_eps: number;
}

export const REINFORCE_PP_DEFAULTS: ReinforcePpParams = { ...PPO_DEFAULTS, whiten_eps: 1e-8 };

export function reinforcePpAdvantages(b: RefBatch, whitenEps: number): number[] {
  const S = numSeqs(b);
  const L = seqLengths(b);
  const a = centredRewards(b);
  let n = 0;
  let sum = 0;
  for (let s = 0; s < S; s++) {
    n += L[s]!;
    sum += L[s]! * a[s]!;
  }
  const mu = sum / Math.max(n, 1);
  let ss = 0;
  for (let s = 0; s < S; s++) ss += L[s]! * (a[s]! - mu) ** 2;
  const v = ss / Math.max(n - 1, 1);
  return a.map((x) => (x - mu) / Math.sqrt(v + whitenEps));
}

export function reinforcePpRef(
  b: RefBatch,
  params: Partial<ReinforcePpParams> = {},
): RefResult & { advantage: number[] } {
  const p: ReinforcePpParams = { ...REINFORCE_PP_DEFAULTS, ...params };
  const A = reinforcePpAdvantages(b, p.whiten_eps);
  return { ...ppoRef(b, seqToToken(b, A), p), advantage: A };
}

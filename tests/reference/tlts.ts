/**
 * Train Long, Think Short reference (methods-pg.md §14; stdlib/tlts.credo header), float64, loops.
 *
 *   k      = floor(step / max(t_interval, 1))
 *   B      = budget_schedule = 1 ? max(1, b0 - budget_drop k) : max(1, b0 gamma^k)
 *   r_len  = L <= B ? L / B : max(0, 1 - (L - B) / B)       (L = think_len of the response)
 *   R      = lambda_c correct + lambda_len r_len + lambda_f format
 *   GRPO (DeepSeekMath) loss on R, as grpo.ts: seq-mean-token-mean of -(surr - beta k3).
 * Hand-derived gradient (R does not depend on logp): dr = r [|d| <= 20]; dsurr = min-weights on
 *   (A dr, A [lo <= r <= hi] dr); dkl = [-10 <= kl_raw <= 10](e^k - 1)(-[|ref - logp| <= 20]);
 *   dloss/dlogp_t = -(dsurr - beta dkl) / (B' L_i).
 * Metrics: budget = B, len_reward = mean over responses of r_len (0 if none), clip_frac, kl (token-means).
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens, seqLengths } from './batch.js';
import { grpoKlToken } from './ops.js';

export interface TltsBatch extends RefBatch {
  correct: number[]; // [S]
  format_reward: number[]; // [S]
  think_len: number[]; // [S]
}

export interface TltsParams {
  b0: number;
  gamma: number;
  t_interval: number;
  budget_schedule: number;
  budget_drop: number;
  lambda_c: number;
  lambda_len: number;
  lambda_f: number;
  eps_low: number;
  eps_high: number;
  beta: number;
  adv_eps: number;
}

export const TLTS_DEFAULTS: TltsParams = {
  b0: 256,
  gamma: 0.7,
  t_interval: 50,
  budget_schedule: 0,
  budget_drop: 32,
  lambda_c: 1,
  lambda_len: 1,
  lambda_f: 1,
  eps_low: 0.2,
  eps_high: 0.2,
  beta: 0.04,
  adv_eps: 1e-6,
};

export function tltsBudget(p: TltsParams, step: number): number {
  const k = Math.floor(step / Math.max(p.t_interval, 1));
  return p.budget_schedule === 1 ? Math.max(1, p.b0 - p.budget_drop * k) : Math.max(1, p.b0 * Math.pow(p.gamma, k));
}

export function lengthReward(L: number, B: number): number {
  return L <= B ? L / B : Math.max(0, 1 - (L - B) / B);
}

export function tltsRewards(b: TltsBatch, p: TltsParams, step: number): number[] {
  const B = tltsBudget(p, step);
  return b.correct.map(
    (c, s) => p.lambda_c * c + p.lambda_len * lengthReward(b.think_len[s]!, B) + p.lambda_f * b.format_reward[s]!,
  );
}

export function tltsRef(b: TltsBatch, params: Partial<TltsParams> = {}, step = 0): RefResult {
  const p: TltsParams = { ...TLTS_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const L = seqLengths(b);
  const B = tltsBudget(p, step);
  const A = groupAdvantages(b, tltsRewards(b, p, step), p.adv_eps);
  let nSeqs = 0;
  let nTokens = 0;
  for (let s = 0; s < S; s++) {
    if (L[s]! > 0) nSeqs++;
    nTokens += L[s]!;
  }
  const grad = new Array<number>(T).fill(0);
  let loss = 0;
  let clipCount = 0;
  let klSum = 0;
  for (let s = 0; s < S; s++) {
    if (L[s]! === 0) continue;
    const a = A[s]!;
    let seqSum = 0;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      const pt = grpoKlToken(a, b.logp[t]!, b.old_logp[t]!, b.ref_logp[t]!, p);
      seqSum += pt.l;
      grad[t] = pt.dl / (nSeqs * L[s]!);
      if (pt.clipped) clipCount++;
      klSum += pt.kl;
    }
    loss += seqSum / L[s]!;
  }
  if (nSeqs > 0) loss /= nSeqs;
  let lenSum = 0;
  for (let s = 0; s < S; s++) lenSum += lengthReward(b.think_len[s]!, B);
  const tm = (x: number) => (nTokens > 0 ? x / nTokens : 0);
  return {
    loss,
    metrics: { budget: B, len_reward: S > 0 ? lenSum / S : 0, clip_frac: tm(clipCount), kl: tm(klSum) },
    grad_logp: grad,
  };
}

/**
 * FlowTracer reference (methods-pg.md §17, reconstructed; stdlib/flowtracer.credo header), float64, loops.
 *
 *   fbar_i = mean of flow over the valid tokens of response i (0 if none)
 *   w_t    = fbar_i > 0 ? (1 - alpha) + alpha flow_t / fbar_i : 1
 *   A_t    = A_i w_t  (A_i GRPO advantage, unbiased std)
 *   token loss (GRPO/DeepSeekMath with k3 KL, as grpo.ts) on A_t; loss = seq-mean-token-mean.
 * Hand-derived gradient (w is a constant): dr = r [|d| <= 20]; dsurr = min-weights on (A_t dr,
 *   A_t [lo <= r <= hi] dr); dkl = [-10 <= kl_raw <= 10] (e^k - 1)(-[|ref - logp| <= 20]);
 *   dloss/dlogp_t = -(dsurr - beta dkl) / (B' L_i).
 * Metrics: clip_frac (GRPO condition with A_t), kl (token-mean), weight_max = max of w over valid tokens (0 if none).
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens, seqLengths } from './batch.js';
import { grpoKlToken } from './ops.js';

export interface FlowBatch extends RefBatch {
  flow: number[]; // [T]
}

export interface FlowParams {
  alpha: number;
  eps_low: number;
  eps_high: number;
  beta: number;
  adv_eps: number;
}

export const FLOW_DEFAULTS: FlowParams = { alpha: 0.5, eps_low: 0.2, eps_high: 0.2, beta: 0.04, adv_eps: 1e-6 };

/** Flow weight of every token (1 at masked tokens of responses without flow, else by the formula). */
export function flowWeights(b: FlowBatch, alpha: number): number[] {
  const w = new Array<number>(numTokens(b)).fill(0);
  for (let s = 0; s < numSeqs(b); s++) {
    let sum = 0;
    let n = 0;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) if (b.mask[t] === 1) ((sum += b.flow[t]!), n++);
    const fbar = n > 0 ? sum / n : 0;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++)
      w[t] = fbar > 0 ? 1 - alpha + (alpha * b.flow[t]!) / fbar : 1;
  }
  return w;
}

export function flowRef(b: FlowBatch, params: Partial<FlowParams> = {}): RefResult {
  const p: FlowParams = { ...FLOW_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const L = seqLengths(b);
  const A = groupAdvantages(b, b.reward, p.adv_eps);
  const w = flowWeights(b, p.alpha);
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
  let wMax = -Infinity;
  for (let s = 0; s < S; s++) {
    if (L[s]! === 0) continue;
    let seqSum = 0;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      const a = A[s]! * w[t]!;
      const pt = grpoKlToken(a, b.logp[t]!, b.old_logp[t]!, b.ref_logp[t]!, p);
      seqSum += pt.l;
      grad[t] = pt.dl / (nSeqs * L[s]!);
      if (pt.clipped) clipCount++;
      klSum += pt.kl;
      wMax = Math.max(wMax, w[t]!);
    }
    loss += seqSum / L[s]!;
  }
  if (nSeqs > 0) loss /= nSeqs;
  const tm = (x: number) => (nTokens > 0 ? x / nTokens : 0);
  return {
    loss,
    metrics: { clip_frac: tm(clipCount), kl: tm(klSum), weight_max: nTokens > 0 ? wMax : 0 },
    grad_logp: grad,
  };
}

/**
 * TW-GRPO reference (methods-pg.md §5; longmalongma/TW-GRPO @ aa529ffc), float64, loops.
 *
 * Inputs besides the standard RefBatch tensors (b.reward is not used):
 *   acc_frac[s]      soft multi-choice correctness fraction |S|/|GT| (0 when S is not a subset)
 *   format_reward[s] format reward (0/1)
 *   group_div[t]     per-position group divergence D (same for every response of a group at a position)
 *
 * Rewards:   acc = soft_reward > 0 ? acc_frac : (acc_frac >= 1 ? 1 : 0);  R = acc + format_reward
 * Advantage: A_i = (R_i - mean_g R) / (std_g R + adv_eps), unbiased std (groupAdvantages).
 * Weights:   for group g, Dmin / Dmax = min / max of D over the valid tokens of the group's sequences;
 *            w_t = 1 + (alpha - 1) * (D_t - Dmin) / (Dmax - Dmin + div_eps)
 * Per valid token (A = A_i of its sequence):
 *   r    = exp(logp - old_logp)                         (no clamp)
 *   surr = min(r*A, clip(r, 1-eps_low, 1+eps_high)*A)
 *   k    = clip(ref_logp - logp, -11, 11),  kl = exp(k) - k - 1
 *   l    = -(surr - beta*kl) * w
 * loss = sum_{valid t} l_t / N   (N = number of valid tokens; 0 when N = 0).
 *
 * Hand-derived gradient w.r.t. logp_t (w does not depend on logp):
 *   dr     = r
 *   dsurr  = min-weights (1,0)/(0,1)/(1/2,1/2) on (A*dr, A*[lo <= r <= hi]*dr)
 *   dk     = -[-11 <= ref_logp - logp <= 11],  dkl = (exp(k) - 1) * dk
 *   dl     = -(dsurr - beta*dkl) * w;   dloss/dlogp_t = dl / N;  0 at masked tokens.
 * Metrics: clip_frac = token-mean[(A>0 and r>1+eps_high) or (A<0 and r<1-eps_low)],
 *          kl = seq-mean-token-mean(kl) over sequences with valid tokens, weight_mean = token-mean(w).
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens, seqLengths } from './batch.js';
import { clipG, minG } from './ops.js';

export interface TwGrpoBatch extends RefBatch {
  acc_frac: number[]; // [S]
  format_reward: number[]; // [S]
  group_div: number[]; // [T]
}

export interface TwGrpoParams {
  alpha: number;
  beta: number;
  eps_low: number;
  eps_high: number;
  adv_eps: number;
  div_eps: number;
  soft_reward: number;
}

export const TW_GRPO_DEFAULTS: TwGrpoParams = {
  alpha: 1.7,
  beta: 0,
  eps_low: 0.2,
  eps_high: 0.28,
  adv_eps: 1e-4,
  div_eps: 1e-8,
  soft_reward: 1,
};

/** R_i = accuracy_i + format_i with the soft (partial credit) or exact-match accuracy. */
export function twGrpoRewards(b: TwGrpoBatch, softReward: number): number[] {
  const out: number[] = [];
  for (let s = 0; s < numSeqs(b); s++) {
    const f = b.acc_frac[s]!;
    const acc = softReward > 0 ? f : f >= 1 ? 1 : 0;
    out.push(acc + b.format_reward[s]!);
  }
  return out;
}

/** Token weights w_t (1 at masked tokens, which never count). */
export function twGrpoWeights(b: TwGrpoBatch, alpha: number, divEps: number): number[] {
  const S = numSeqs(b);
  const lo = new Array<number>(b.numGroups).fill(Infinity);
  const hi = new Array<number>(b.numGroups).fill(-Infinity);
  for (let s = 0; s < S; s++) {
    const g = b.groupOf[s]!;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      lo[g] = Math.min(lo[g]!, b.group_div[t]!);
      hi[g] = Math.max(hi[g]!, b.group_div[t]!);
    }
  }
  const w = new Array<number>(numTokens(b)).fill(1);
  for (let s = 0; s < S; s++) {
    const g = b.groupOf[s]!;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      w[t] = 1 + ((alpha - 1) * (b.group_div[t]! - lo[g]!)) / (hi[g]! - lo[g]! + divEps);
    }
  }
  return w;
}

export function twGrpoRef(b: TwGrpoBatch, params: Partial<TwGrpoParams> = {}): RefResult {
  const p: TwGrpoParams = { ...TW_GRPO_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const L = seqLengths(b);
  const A = groupAdvantages(b, twGrpoRewards(b, p.soft_reward), p.adv_eps);
  const w = twGrpoWeights(b, p.alpha, p.div_eps);

  let N = 0;
  let nSeqs = 0;
  for (let s = 0; s < S; s++) {
    N += L[s]!;
    if (L[s]! > 0) nSeqs++;
  }

  const grad = new Array<number>(T).fill(0);
  let sum = 0;
  let clipCount = 0;
  let wSum = 0;
  let klSeqMean = 0;

  for (let s = 0; s < S; s++) {
    const a = A[s]!;
    let klSeq = 0;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      const r = Math.exp(b.logp[t]! - b.old_logp[t]!);
      const rc = clipG(r, 1 - p.eps_low, 1 + p.eps_high);
      const m = minG(r * a, rc.v * a);
      const dsurr = m.da * (a * r) + m.db * (a * rc.dx * r);
      const k = clipG(b.ref_logp[t]! - b.logp[t]!, -11, 11);
      const kl = Math.exp(k.v) - k.v - 1;
      const dkl = (Math.exp(k.v) - 1) * -k.dx;
      const l = -(m.v - p.beta * kl) * w[t]!;
      const dl = -(dsurr - p.beta * dkl) * w[t]!;
      sum += l;
      grad[t] = dl / N;
      if ((a > 0 && r > 1 + p.eps_high) || (a < 0 && r < 1 - p.eps_low)) clipCount++;
      wSum += w[t]!;
      klSeq += kl;
    }
    if (L[s]! > 0) klSeqMean += klSeq / L[s]!;
  }

  return {
    loss: N > 0 ? sum / N : 0,
    metrics: {
      clip_frac: N > 0 ? clipCount / N : 0,
      kl: nSeqs > 0 ? klSeqMean / nSeqs : 0,
      weight_mean: N > 0 ? wSum / N : 0,
    },
    grad_logp: grad,
  };
}

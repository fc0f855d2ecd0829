/**
 * RMT reference (methods-pg.md §15, reconstructed; stdlib/rmt.credo header), float64, loops.
 *
 *   T      = max(total, 1);  expo = budget_form = 1 ? (step / T)^k : step / T^k
 *   B      = max(b_min, b0 gamma^expo)
 *   r_len  = L <= B ? L / B : max(0, 1 - (L - B) / B)       (L = valid tokens of the rollout)
 *   R_i    = match_i + len_coef r_len_i
 *   A_i    = (R_i - mean R) / (std R + adv_eps), mean and unbiased std over the RL responses (ntp = 0)
 *            of the group (std 0 for fewer than two)
 *   L_RL   = mean over RL responses with L > 0 of the token-mean of -(surr - beta k3)   (as grpo.ts)
 *   L_NTP  = mean of -logp over the valid tokens of the corpus responses (ntp = 1), 0 if none
 *   loss   = L_RL + ntp_coef L_NTP
 * Hand-derived gradient: RL token: -(dsurr - beta dkl) / (B'_RL L_i) (see grpo.ts); corpus token:
 *   -ntp_coef / N_NTP.
 * Metrics: budget, len_reward = mean of r_len over the RL responses, rl_loss, ntp_loss,
 *   clip_frac = GRPO condition averaged over the valid RL tokens.
 */
import { type RefBatch, type RefResult, checkBatch, numSeqs, numTokens, seqLengths } from './batch.js';
import { grpoKlToken } from './ops.js';

export interface RmtBatch extends RefBatch {
  match: number[]; // [S]
  ntp: number[]; // [S] 1 = corpus sequence
}

export interface RmtParams {
  b0: number;
  b_min: number;
  gamma: number;
  k: number;
  budget_form: number;
  len_coef: number;
  ntp_coef: number;
  eps_low: number;
  eps_high: number;
  beta: number;
  adv_eps: number;
}

export const RMT_DEFAULTS: RmtParams = {
  b0: 512,
  b_min: 64,
  gamma: 0.5,
  k: 1,
  budget_form: 0,
  len_coef: 1,
  ntp_coef: 1,
  eps_low: 0.2,
  eps_high: 0.2,
  beta: 0,
  adv_eps: 1e-6,
};

export function rmtBudget(p: RmtParams, step: number, total: number): number {
  const T = Math.max(total, 1);
  const expo = p.budget_form === 1 ? Math.pow(step / T, p.k) : step / Math.pow(T, p.k);
  return Math.max(p.b_min, p.b0 * Math.pow(p.gamma, expo));
}

export function rmtRef(b: RmtBatch, params: Partial<RmtParams> = {}, step = 0, totalSteps = 0): RefResult {
  const p: RmtParams = { ...RMT_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const L = seqLengths(b);
  const B = rmtBudget(p, step, totalSteps);
  const isRl = (s: number) => !(b.ntp[s]! > 0);
  const rLen = L.map((l) => (l <= B ? l / B : Math.max(0, 1 - (l - B) / B)));
  const R = b.match.map((m, s) => m + p.len_coef * rLen[s]!);
  // group statistics over the RL responses
  const A = new Array<number>(S).fill(0);
  for (let s = 0; s < S; s++) {
    const rs: number[] = [];
    for (let j = 0; j < S; j++) if (b.groupOf[j] === b.groupOf[s] && isRl(j)) rs.push(R[j]!);
    const mean = rs.length ? rs.reduce((x, y) => x + y, 0) / rs.length : 0;
    const std = rs.length > 1 ? Math.sqrt(rs.reduce((x, y) => x + (y - mean) * (y - mean), 0) / (rs.length - 1)) : 0;
    A[s] = (R[s]! - mean) / (std + p.adv_eps);
  }
  let nRlSeqs = 0;
  let nRlTokens = 0;
  let nNtp = 0;
  for (let s = 0; s < S; s++) {
    if (isRl(s)) {
      if (L[s]! > 0) nRlSeqs++;
      nRlTokens += L[s]!;
    } else nNtp += L[s]!;
  }
  const grad = new Array<number>(T).fill(0);
  let lRl = 0;
  let lNtp = 0;
  let clipCount = 0;
  for (let s = 0; s < S; s++) {
    if (L[s]! === 0) continue;
    if (!isRl(s)) {
      for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
        if (b.mask[t] !== 1) continue;
        lNtp += -b.logp[t]!;
        grad[t] = -p.ntp_coef / nNtp;
      }
      continue;
    }
    const a = A[s]!;
    let seqSum = 0;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      const pt = grpoKlToken(a, b.logp[t]!, b.old_logp[t]!, b.ref_logp[t]!, p);
      seqSum += pt.l;
      grad[t] = pt.dl / (nRlSeqs * L[s]!);
      if (pt.clipped) clipCount++;
    }
    lRl += seqSum / L[s]!;
  }
  lRl = nRlSeqs > 0 ? lRl / nRlSeqs : 0;
  lNtp = nNtp > 0 ? lNtp / nNtp : 0;
  let lenSum = 0;
  let nRl = 0;
  for (let s = 0; s < S; s++) if (isRl(s)) ((lenSum += rLen[s]!), nRl++);
  return {
    loss: lRl + p.ntp_coef * lNtp,
    metrics: {
      budget: B,
      len_reward: nRl > 0 ? lenSum / nRl : 0,
      rl_loss: lRl,
      ntp_loss: lNtp,
      clip_frac: nRlTokens > 0 ? clipCount / nRlTokens : 0,
    },
    grad_logp: grad,
  };
}

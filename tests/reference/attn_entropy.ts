/**
 * Attention-entropy reweighting reference (methods-pg.md §13, reconstructed; stdlib/attn_entropy.credo
 * header), float64, loops.
 *
 *   scope  = all valid tokens of the batch (per_seq = 0) or of the token's response (per_seq = 1)
 *   rank_t = number of scope tokens ordered before t when sorting by attn_entropy descending, ties by
 *            token index ascending;  n = scope size;  u_t = n > 1 ? 1 - rank_t / (n - 1) : 0.5
 *   kappa  = kappa_start + (kappa_end - kappa_start) clip(step / max(total, 1), 0, 1)
 *   w_t    = 1 + kappa (2 u_t - 1)
 *   l_t    = DAPO / verl vanilla token loss (GRPO advantage, dual clip);  loss = sum_valid w l / N
 * Hand-derived gradient: dloss/dlogp_t = w_t dl_t / N, dl_t as in dapo.ts (w does not depend on logp).
 * Metrics: kappa, clip_frac = mean[l2 > l1], dual_clip_frac = mean[A < 0 and l3 < lclip],
 *   anchor_weight = mean of w over valid tokens with u < 0.5 (0 if none).
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens } from './batch.js';
import { dualClipToken } from './ops.js';

export interface AttnEntropyBatch extends RefBatch {
  attn_entropy: number[]; // [T]
}

export interface AttnEntropyParams {
  kappa_start: number;
  kappa_end: number;
  per_seq: number;
  eps_low: number;
  eps_high: number;
  clip_c: number;
  adv_eps: number;
}

export const ATTN_ENTROPY_DEFAULTS: AttnEntropyParams = {
  kappa_start: -0.5,
  kappa_end: 0.5,
  per_seq: 0,
  eps_low: 0.2,
  eps_high: 0.28,
  clip_c: 10,
  adv_eps: 1e-6,
};

/** Percentile u of every valid token (NaN at masked tokens). */
export function entropyPercentiles(b: AttnEntropyBatch, perSeq: boolean): number[] {
  const u = new Array<number>(numTokens(b)).fill(NaN);
  const scopes: number[][] = [];
  if (perSeq) {
    for (let s = 0; s < numSeqs(b); s++) {
      const ts: number[] = [];
      for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) if (b.mask[t] === 1) ts.push(t);
      scopes.push(ts);
    }
  } else {
    scopes.push(b.mask.map((m, t) => (m === 1 ? t : -1)).filter((t) => t >= 0));
  }
  for (const ts of scopes) {
    const order = [...ts].sort((x, y) => b.attn_entropy[y]! - b.attn_entropy[x]! || x - y);
    const n = order.length;
    order.forEach((t, rank) => (u[t] = n > 1 ? 1 - rank / (n - 1) : 0.5));
  }
  return u;
}

export function attnEntropyRef(
  b: AttnEntropyBatch,
  params: Partial<AttnEntropyParams> = {},
  step = 0,
  totalSteps = 0,
): RefResult {
  const p: AttnEntropyParams = { ...ATTN_ENTROPY_DEFAULTS, ...params };
  checkBatch(b);
  const T = numTokens(b);
  const A = groupAdvantages(b, b.reward, p.adv_eps);
  const u = entropyPercentiles(b, p.per_seq > 0);
  const progress = Math.min(Math.max(step / Math.max(totalSteps, 1), 0), 1);
  const kappa = p.kappa_start + (p.kappa_end - p.kappa_start) * progress;
  let N = 0;
  for (let t = 0; t < T; t++) if (b.mask[t] === 1) N++;

  const grad = new Array<number>(T).fill(0);
  let sum = 0;
  let clipCount = 0;
  let dualCount = 0;
  let anchorSum = 0;
  let anchorN = 0;
  for (let s = 0; s < numSeqs(b); s++) {
    const a = A[s]!;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      const w = 1 + kappa * (2 * u[t]! - 1);
      const pt = dualClipToken(a, b.logp[t]!, b.old_logp[t]!, p);
      const { l, dl } = pt;
      sum += w * l;
      grad[t] = (w * dl) / N;
      if (pt.clipped) clipCount++;
      if (pt.dualClipped) dualCount++;
      if (u[t]! < 0.5) ((anchorSum += w), anchorN++);
    }
  }
  const tm = (x: number) => (N > 0 ? x / N : 0);
  return {
    loss: tm(sum),
    metrics: {
      kappa,
      clip_frac: tm(clipCount),
      dual_clip_frac: tm(dualCount),
      anchor_weight: anchorN > 0 ? anchorSum / anchorN : 0,
    },
    grad_logp: grad,
  };
}

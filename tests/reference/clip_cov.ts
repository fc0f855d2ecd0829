/**
 * clip_cov reference: verl@1dda039 compute_policy_loss_clip_cov (verl/trainer/ppo/core_algos.py), float64 loops.
 *   d = logp - old_logp (no clamp), r = e^d, l1 = -A r, l2 = -A clip(r, 1 - eps_low, 1 + eps_high)
 *   cov = (A - mean A)(logp̄ - mean logp̄), means over valid tokens, logp̄ from the `sg` batch
 *   cand = valid, not (l2 > l1), clip_cov_lb < cov < clip_cov_ub
 *   n = max(floor(clip_cov_ratio N), 1); verl takes n candidates by torch.randperm; here the n
 *   candidates with the largest select_u (earlier token first on ties) — the stdlib's explicit rule
 *   l = sel ? 0 : max(l1, l2), loss = agg(l)
 * Hand-derived: dl/dlogp = 0 if sel else the max-weights of (l1, l2) on (-A r, -A [in window] r).
 * Metrics: clip_frac = token-mean[sel], ppo_kl = token-mean(-d).
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, values } from './family.js';
import { clipG, maxG } from './ops.js';
import { aggV, aggW, flag, ins, tokMean, view } from './verl-losses-helpers.js';

export interface ClipCovParams {
  eps_low: number;
  eps_high: number;
  clip_cov_ratio: number;
  clip_cov_lb: number;
  clip_cov_ub: number;
  loss_agg_mode: number;
  max_len: number;
}

export const CLIP_COV_DEFAULTS: ClipCovParams = {
  eps_low: 0.2,
  eps_high: 0.2,
  clip_cov_ratio: 0.0002,
  clip_cov_lb: 1,
  clip_cov_ub: 5,
  loss_agg_mode: 0,
  max_len: 3000,
};

export function clipCovRef(b: RaggedBatch, params: Partial<ClipCovParams> = {}, sg: RaggedBatch = b): FamilyResult {
  const p = { ...CLIP_COV_DEFAULTS, ...params };
  const v = view(b);
  const { logp, old, adv } = ins(b);
  const lpS = values(sg, 'logp');
  const u = values(b, 'select_u');
  const meanA = tokMean(v, (t) => adv[t]!);
  const meanLp = tokMean(v, (t) => lpS[t]!);
  const tok = [];
  for (let t = 0; t < v.T; t++) {
    if (!v.valid[t]) continue;
    const A = adv[t]!;
    const r = Math.exp(logp[t]! - old[t]!);
    const rc = clipG(r, 1 - p.eps_low, 1 + p.eps_high);
    const l1 = -A * r;
    const l2 = -A * rc.v;
    const mx = maxG(l1, l2);
    const cov = (A - meanA) * (lpS[t]! - meanLp);
    const cand = flag(!(l2 > l1)) && cov > p.clip_cov_lb && cov < p.clip_cov_ub;
    tok.push({ t, l: mx.v, dl: mx.da * (-A * r) + mx.db * (-A * rc.dx * r), cand });
  }
  const n = Math.max(Math.floor(p.clip_cov_ratio * v.N), 1);
  const chosen = new Set(
    tok
      .filter((x) => x.cand)
      .sort((a, c) => u[c.t]! - u[a.t]! || a.t - c.t)
      .slice(0, n)
      .map((x) => x.t),
  );
  const w = aggW(v, p.loss_agg_mode, p.max_len);
  const l = new Array<number>(v.T).fill(0);
  const grad = new Array<number>(v.T).fill(0);
  for (const x of tok) {
    if (flag(chosen.has(x.t))) continue;
    l[x.t] = x.l;
    grad[x.t] = w[x.t]! * x.dl;
  }
  return {
    loss: aggV(v, l, p.loss_agg_mode, p.max_len),
    metrics: { clip_frac: v.N ? chosen.size / v.N : 0, ppo_kl: tokMean(v, (t) => old[t]! - logp[t]!) },
    grads: { logp: grad },
  };
}

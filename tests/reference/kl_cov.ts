/**
 * kl_cov reference: verl@1dda039 compute_policy_loss_kl_cov (verl/trainer/ppo/core_algos.py), float64 loops.
 *   d = logp - old_logp (no clamp), r = e^d
 *   cov = (A - mean A)(logp̄ - mean logp̄) over the valid tokens, logp̄ from the `sg` batch (detached in verl)
 *   k = max(floor(kl_cov_ratio N), 1); sel = the k valid tokens of largest cov (earlier token first on
 *   ties; torch.topk leaves that order unspecified); none when N = 0
 *   l = -A r + [sel] ppo_kl_coef |d|, loss = agg(l)
 * Hand-derived: dl/dlogp = -A r + [sel] ppo_kl_coef sign(d) (0 at d = 0, as torch.abs).
 * Metric: ppo_kl = token-mean(|d|).
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, values } from './family.js';
import { aggV, aggW, flag, ins, tokMean, view } from './verl-losses-helpers.js';

export interface KlCovParams {
  kl_cov_ratio: number;
  ppo_kl_coef: number;
  loss_agg_mode: number;
  max_len: number;
}

export const KL_COV_DEFAULTS: KlCovParams = { kl_cov_ratio: 0.0002, ppo_kl_coef: 0.1, loss_agg_mode: 0, max_len: 3000 };

export function klCovRef(b: RaggedBatch, params: Partial<KlCovParams> = {}, sg: RaggedBatch = b): FamilyResult {
  const p = { ...KL_COV_DEFAULTS, ...params };
  const v = view(b);
  const { logp, old, adv } = ins(b);
  const lpS = values(sg, 'logp');
  const meanA = tokMean(v, (t) => adv[t]!);
  const meanLp = tokMean(v, (t) => lpS[t]!);
  const validIdx = [...Array(v.T).keys()].filter((t) => v.valid[t]);
  const cov = (t: number) => (adv[t]! - meanA) * (lpS[t]! - meanLp);
  const k = Math.max(Math.floor(p.kl_cov_ratio * v.N), 1);
  const sel = new Set(
    v.N === 0
      ? []
      : validIdx
          .slice()
          .sort((a, c) => cov(c) - cov(a) || a - c)
          .slice(0, k),
  );
  const w = aggW(v, p.loss_agg_mode, p.max_len);
  const l = new Array<number>(v.T).fill(0);
  const grad = new Array<number>(v.T).fill(0);
  for (const t of validIdx) {
    const A = adv[t]!;
    const d = logp[t]! - old[t]!;
    const r = Math.exp(d);
    const s = flag(sel.has(t));
    if (s) flag(d > 0);
    l[t] = -A * r + (s ? p.ppo_kl_coef * Math.abs(d) : 0);
    grad[t] = w[t]! * (-A * r + (s ? p.ppo_kl_coef * Math.sign(d) : 0));
  }
  return {
    loss: aggV(v, l, p.loss_agg_mode, p.max_len),
    metrics: { ppo_kl: tokMean(v, (t) => Math.abs(logp[t]! - old[t]!)) },
    grads: { logp: grad },
  };
}

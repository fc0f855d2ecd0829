/**
 * dro reference: verl@1dda039 compute_policy_loss_dro (verl/trainer/ppo/core_algos.py), float64 loops.
 *   l = -(logp A - ½ β (logp - old_logp)²), loss = agg(l) by loss_agg_mode (verl-losses-helpers.ts)
 * Hand-derived: dl/dlogp = -A + β (logp - old_logp). Metric: ppo_kl = token-mean(old_logp - logp).
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import type { FamilyResult } from './family.js';
import { aggV, aggW, ins, tokMean, view } from './verl-losses-helpers.js';

export interface DroParams {
  beta: number;
  loss_agg_mode: number;
  max_len: number;
}

export const DRO_DEFAULTS: DroParams = { beta: 0.05, loss_agg_mode: 0, max_len: 3000 };

export function droRef(b: RaggedBatch, params: Partial<DroParams> = {}): FamilyResult {
  const p = { ...DRO_DEFAULTS, ...params };
  const v = view(b);
  const { logp, old, adv } = ins(b);
  const w = aggW(v, p.loss_agg_mode, p.max_len);
  const l = logp.map((x, t) => -(x * adv[t]! - 0.5 * p.beta * (x - old[t]!) ** 2));
  const grad = logp.map((x, t) => (v.valid[t] ? w[t]! * (-adv[t]! + p.beta * (x - old[t]!)) : 0));
  return {
    loss: aggV(v, l, p.loss_agg_mode, p.max_len),
    metrics: { ppo_kl: tokMean(v, (t) => old[t]! - logp[t]!) },
    grads: { logp: grad },
  };
}

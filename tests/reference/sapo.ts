/**
 * sapo reference: verl@1dda039 compute_policy_loss_sapo (verl/trainer/ppo/core_algos.py), float64 loops.
 *   d = clip(logp - old_logp, -20, 20), r = e^d, τ = A > 0 ? tau_pos : tau_neg
 *   f = σ(τ (r - 1)) · 4/τ,  l = -f A,  loss = seq-mean-token-mean(l) (verl hard-codes it)
 * Hand-derived: dl/dlogp = -A · 4 σ(1 - σ) · r · [|logp - old_logp| ≤ 20];
 *   dloss/dlogp_t = dl_t / (B' L_i). Metric: ppo_kl = token-mean(-d).
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, sigmoid } from './family.js';
import { clipG } from './ops.js';
import { aggV, aggW, ins, view } from './verl-losses-helpers.js';

export interface SapoParams {
  tau_pos: number;
  tau_neg: number;
}

export const SAPO_DEFAULTS: SapoParams = { tau_pos: 1, tau_neg: 1.05 };

export function sapoRef(b: RaggedBatch, params: Partial<SapoParams> = {}): FamilyResult {
  const p = { ...SAPO_DEFAULTS, ...params };
  const v = view(b);
  const { logp, old, adv } = ins(b);
  const w = aggW(v, 1, 1);
  const l = new Array<number>(v.T).fill(0);
  const grad = new Array<number>(v.T).fill(0);
  let kl = 0;
  for (let t = 0; t < v.T; t++) {
    if (!v.valid[t]) continue;
    const A = adv[t]!;
    const d = clipG(logp[t]! - old[t]!, -20, 20);
    const r = Math.exp(d.v);
    const tau = A > 0 ? p.tau_pos : p.tau_neg;
    const s = sigmoid(tau * (r - 1));
    l[t] = -s * (4 / tau) * A;
    grad[t] = w[t]! * (-A * 4 * s * (1 - s) * r * d.dx);
    kl += -d.v;
  }
  return { loss: aggV(v, l, 1, 1), metrics: { ppo_kl: v.N ? kl / v.N : 0 }, grads: { logp: grad } };
}

/**
 * dppo_tv / dppo_kl reference: verl@1dda039 compute_policy_loss_dppo_tv / compute_policy_loss_dppo_kl
 * (verl/trainer/ppo/core_algos.py), float64 loops.
 *
 * Per valid token (A advantage, p = e^logp, p_old = e^old_logp):
 *   d = clip(logp - old_logp, -20, 20), r = e^d, w = min(r, clip_c)            (detached)
 *   TV:  valid = A > 0 ? p - p_old <= eps_high : p - p_old >= -eps_low
 *   KL:  bkl = p_old (old_logp - logp) + (1 - p_old) ln((1 - p_old + 1e-8) / (1 - p + 1e-8))
 *        valid = A > 0 ? (bkl <= eps_high or p <= p_old) : (bkl <= eps_low or p >= p_old)
 *        (detached; NaN comparisons are false, as in torch)
 *   l = -A w logp [valid], loss = agg(l) (verl-losses-helpers.ts).
 * Detached quantities (w, valid) are computed from the `sg` batch (the batch itself by default), so
 * finite differences with a fixed `sg` batch check the gradient dloss/dlogp_t = weight_t (-A w [valid]).
 * Metrics: clip_frac = token-mean[not valid], trunc_frac = token-mean[r > clip_c and valid], ppo_kl = token-mean(-d).
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import type { FamilyResult } from './family.js';
import { values } from './family.js';
import { aggV, aggW, clamp, ins, view } from './verl-losses-helpers.js';

export interface DppoParams {
  eps_low: number;
  eps_high: number;
  clip_c: number;
  loss_agg_mode: number;
  max_len: number;
}

export const DPPO_DEFAULTS: DppoParams = { eps_low: 0.2, eps_high: 0.2, clip_c: 3, loss_agg_mode: 0, max_len: 3000 };

function dppoRef(kind: 'tv' | 'kl', b: RaggedBatch, params: Partial<DppoParams>, sg: RaggedBatch): FamilyResult {
  const p = { ...DPPO_DEFAULTS, ...params };
  const v = view(b);
  const { logp, old, adv } = ins(b);
  const lpS = values(sg, 'logp');
  const wAgg = aggW(v, p.loss_agg_mode, p.max_len);
  const l = new Array<number>(v.T).fill(0);
  const grad = new Array<number>(v.T).fill(0);
  let notValid = 0;
  let trunc = 0;
  let kl = 0;
  for (let t = 0; t < v.T; t++) {
    if (!v.valid[t]) continue;
    const A = adv[t]!;
    const d = clamp(logp[t]! - old[t]!, -20, 20);
    const r = Math.exp(d);
    const rS = Math.exp(clamp(lpS[t]! - old[t]!, -20, 20));
    const w = Math.min(rS, p.clip_c);
    const pr = Math.exp(lpS[t]!);
    const po = Math.exp(old[t]!);
    let valid: boolean;
    if (kind === 'tv') valid = A > 0 ? pr - po <= p.eps_high : pr - po >= -p.eps_low;
    else {
      const bkl = po * (old[t]! - lpS[t]!) + (1 - po) * Math.log((1 - po + 1e-8) / (1 - pr + 1e-8));
      valid = A > 0 ? bkl <= p.eps_high || pr <= po : bkl <= p.eps_low || pr >= po;
    }
    if (valid) {
      l[t] = -A * w * logp[t]!;
      grad[t] = wAgg[t]! * -A * w;
    } else notValid++;
    if (r > p.clip_c && valid) trunc++;
    kl += -d;
  }
  return {
    loss: aggV(v, l, p.loss_agg_mode, p.max_len),
    metrics: {
      clip_frac: v.N ? notValid / v.N : 0,
      trunc_frac: v.N ? trunc / v.N : 0,
      ppo_kl: v.N ? kl / v.N : 0,
    },
    grads: { logp: grad },
  };
}

export const dppoTvRef = (b: RaggedBatch, p: Partial<DppoParams> = {}, sg: RaggedBatch = b): FamilyResult =>
  dppoRef('tv', b, p, sg);
export const dppoKlRef = (b: RaggedBatch, p: Partial<DppoParams> = {}, sg: RaggedBatch = b): FamilyResult =>
  dppoRef('kl', b, p, sg);

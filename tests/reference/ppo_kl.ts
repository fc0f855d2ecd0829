/**
 * ppo_kl reference: verl@1dda039 compute_policy_loss_vanilla + the actor KL loss of
 * verl/workers/utils/losses.py (policy_loss += kl_loss_coef · agg_loss(kl_penalty(logp, ref_logp))),
 * float64 loops. The PPO token term is tests/reference/ppo.ts ppoToken (written from verl).
 *
 * KL per token, x = logp - ref_logp (kl_penalty_forward / kl_penalty):
 *   0 k1: x            1 abs: |x|            2 k2: x²/2
 *   3 k3: clip(e^k - k - 1, -10, 10), k = clip(-x, -20, 20)
 *   4 k1+, 5 abs+, 7 k3+: value of k1/abs/k3, gradient of k2 (= x); 6 k2+ = k2; other: k1.
 * Straight-through terms are evaluated as k2(x) - k2(x̄) + base(x̄), x̄ from the `sg` batch (the
 * batch itself by default): the value is base(x) and the derivative k2'(x), so finite differences of
 * this loss with a fixed `sg` batch check the hand-derived gradient.
 * Hand-derived dkl/dlogp: k1 1; abs sign(x) (0 at 0, as torch.abs); k2 x;
 *   k3 [e in [-10,10]] (e^k - 1)(-[|x| ≤ 20]); '+' forms x.
 * loss = agg(l_pg) + kl_coef agg(kl); metrics clip_frac, dual_clip_frac, ppo_kl (= ppo), kl_loss = agg(kl).
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, values } from './family.js';
import { clipG } from './ops.js';
import { ppoToken } from './ppo.js';
import { aggV, aggW, ins, view } from './verl-losses-helpers.js';

export interface PpoKlParams {
  eps_low: number;
  eps_high: number;
  clip_c: number;
  loss_agg_mode: number;
  max_len: number;
  kl_coef: number;
  kl_type: number;
}

export const PPO_KL_DEFAULTS: PpoKlParams = {
  eps_low: 0.2,
  eps_high: 0.2,
  clip_c: 3,
  loss_agg_mode: 0,
  max_len: 3000,
  kl_coef: 0.001,
  kl_type: 3,
};

/** One token's KL term (value, d/dlogp); xs is the stop-gradient copy of x. */
export function klToken(x: number, xs: number, type: number): { v: number; dv: number } {
  const k3 = (y: number) => {
    const k = clipG(-y, -20, 20);
    const e = Math.exp(k.v) - k.v - 1;
    const c = clipG(e, -10, 10);
    return { v: c.v, dv: c.dx * (Math.exp(k.v) - 1) * -k.dx };
  };
  const st = (base: number) => ({ v: 0.5 * x * x - 0.5 * xs * xs + base, dv: x });
  switch (type) {
    case 1:
      return { v: Math.abs(x), dv: Math.sign(x) };
    case 2:
    case 6:
      return { v: 0.5 * x * x, dv: x };
    case 3:
      return k3(x);
    case 4:
      return st(xs);
    case 5:
      return st(Math.abs(xs));
    case 7:
      return st(k3(xs).v);
    default:
      return { v: x, dv: 1 };
  }
}

export function ppoKlRef(b: RaggedBatch, params: Partial<PpoKlParams> = {}, sg: RaggedBatch = b): FamilyResult {
  const p = { ...PPO_KL_DEFAULTS, ...params };
  const v = view(b);
  const { logp, old, adv } = ins(b);
  const ref = values(b, 'ref_logp');
  const logpS = values(sg, 'logp');
  const w = aggW(v, p.loss_agg_mode, p.max_len);
  const lpg = new Array<number>(v.T).fill(0);
  const lkl = new Array<number>(v.T).fill(0);
  const grad = new Array<number>(v.T).fill(0);
  let clip = 0;
  let dual = 0;
  let kl = 0;
  for (let t = 0; t < v.T; t++) {
    if (!v.valid[t]) continue;
    const k = ppoToken(adv[t]!, logp[t]!, old[t]!, p.eps_low, p.eps_high, p.clip_c);
    const q = klToken(logp[t]! - ref[t]!, logpS[t]! - ref[t]!, p.kl_type);
    lpg[t] = k.l;
    lkl[t] = q.v;
    grad[t] = w[t]! * (k.dl + p.kl_coef * q.dv);
    if (k.clipped) clip++;
    if (k.dual) dual++;
    kl += -k.d;
  }
  const klLoss = aggV(v, lkl, p.loss_agg_mode, p.max_len);
  return {
    loss: aggV(v, lpg, p.loss_agg_mode, p.max_len) + p.kl_coef * klLoss,
    metrics: {
      clip_frac: v.N ? clip / v.N : 0,
      dual_clip_frac: v.N ? dual / v.N : 0,
      ppo_kl: v.N ? kl / v.N : 0,
      kl_loss: klLoss,
    },
    grads: { logp: grad },
  };
}

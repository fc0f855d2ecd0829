/**
 * TGDPO reference (stdlib/tgdpo.credo, the released code's sigmoid loss), float64, loops.
 *
 *   r̂_t = β (rm_logp_t − ref_logp_t),  D_t = logp_t − ref_logp_t
 *   u = β Σ_{t∈y_w} (1 + α r̂_t) D_t − β Σ_{t∈y_l} (1 − α r̂_t) D_t,  loss = mean over pairs of −logσ(u)
 *
 * Hand-derived gradient: ∂(−logσ(u))/∂u = −σ(−u); ∂u/∂logp_t = β(1 + α r̂_t) on valid tokens of y_w,
 * −β(1 − α r̂_t) on those of y_l; divided by the number of pairs.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, logSigmoid, meanOr0, pairs, sigmoid, validTokensOf, values, zeros } from './family.js';

export interface TgdpoParams {
  alpha: number;
  beta: number;
}

export const TGDPO_DEFAULTS: TgdpoParams = { alpha: 0.5, beta: 0.1 };

export function tgdpoRef(b: RaggedBatch, params: Partial<TgdpoParams> = {}): FamilyResult {
  const { alpha, beta } = { ...TGDPO_DEFAULTS, ...params };
  const logp = values(b, 'logp');
  const ref = values(b, 'ref_logp');
  const rm = values(b, 'rm_logp');
  const P = pairs(b);
  const grad = zeros(b.numTokens);
  const coef = (t: number, sign: number) => beta * (1 + sign * alpha * beta * (rm[t]! - ref[t]!));
  const S = (s: number) => validTokensOf(b, s).reduce((a, t) => a + logp[t]! - ref[t]!, 0);
  let loss = 0;
  const rw: number[] = [];
  const rl: number[] = [];
  for (const { w, l } of P) {
    let u = 0;
    for (const t of validTokensOf(b, w)) u += coef(t, 1) * (logp[t]! - ref[t]!);
    for (const t of validTokensOf(b, l)) u -= coef(t, -1) * (logp[t]! - ref[t]!);
    loss -= logSigmoid(u);
    const du = -sigmoid(-u) / P.length;
    for (const t of validTokensOf(b, w)) grad[t] += du * coef(t, 1);
    for (const t of validTokensOf(b, l)) grad[t] -= du * coef(t, -1);
    rw.push(beta * S(w));
    rl.push(beta * S(l));
  }
  return {
    loss: P.length ? loss / P.length : 0,
    metrics: {
      reward_chosen: meanOr0(rw),
      reward_rejected: meanOr0(rl),
      reward_margin: meanOr0(rw.map((r, i) => r - rl[i]!)),
      reward_accuracy: meanOr0(rw.map((r, i) => (r > rl[i]! ? 1 : 0))),
    },
    grads: { logp: grad },
  };
}

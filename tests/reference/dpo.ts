/**
 * DPO-sigmoid reference (TRL `loss_type="sigmoid"`, methods-dpo.md §17.1), float64, loops.
 *
 *   S(y) = Σ_valid (logp − ref_logp),  δ = S(y_w) − S(y_l)
 *   l = −(1 − ε) logσ(βδ) − ε logσ(−βδ),  loss = mean over pairs (0 without pairs)
 *
 * Hand-derived gradient: ∂l/∂δ = −β[(1 − ε) σ(−βδ) − ε σ(βδ)]; ∂δ/∂logp_t = +1 on valid tokens of
 * y_w, −1 on those of y_l; divided by the number of pairs.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, logSigmoid, meanOr0, pairs, sigmoid, validTokensOf, values, zeros } from './family.js';

export interface DpoParams {
  beta: number;
  label_smoothing: number;
}

export const DPO_DEFAULTS: DpoParams = { beta: 0.1, label_smoothing: 0 };

export function dpoRef(b: RaggedBatch, params: Partial<DpoParams> = {}): FamilyResult {
  const { beta, label_smoothing: eps } = { ...DPO_DEFAULTS, ...params };
  const logp = values(b, 'logp');
  const ref = values(b, 'ref_logp');
  const S = (s: number) => validTokensOf(b, s).reduce((a, t) => a + logp[t]! - ref[t]!, 0);
  const P = pairs(b);
  const grad = zeros(b.numTokens);
  let loss = 0;
  const rw: number[] = [];
  const rl: number[] = [];
  const margins: number[] = [];
  for (const { w, l } of P) {
    const delta = S(w) - S(l);
    loss += -(1 - eps) * logSigmoid(beta * delta) - eps * logSigmoid(-beta * delta);
    const dDelta = (-beta * ((1 - eps) * sigmoid(-beta * delta) - eps * sigmoid(beta * delta))) / P.length;
    for (const t of validTokensOf(b, w)) grad[t] += dDelta;
    for (const t of validTokensOf(b, l)) grad[t] -= dDelta;
    rw.push(beta * S(w));
    rl.push(beta * S(l));
    margins.push(delta);
  }
  const implicit = logp.map((x, t) => beta * (x - ref[t]!)); // at every token, as a token export is
  return {
    loss: P.length ? loss / P.length : 0,
    metrics: {
      reward_chosen: meanOr0(rw),
      reward_rejected: meanOr0(rl),
      reward_margin: meanOr0(margins.map((d) => beta * d)),
      reward_accuracy: meanOr0(margins.map((d) => (d > 0 ? 1 : 0))),
    },
    grads: { logp: grad },
    exports: { implicit_reward: implicit },
  };
}

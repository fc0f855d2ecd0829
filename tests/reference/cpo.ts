/**
 * References of TRL's CPOTrainer losses (methods-dpo.md §17.3): `cpo` (loss_type sigmoid on summed
 * log-likelihoods, + cpo_alpha·NLL of the chosen responses) and `simpo` (length-normalised, margin
 * γ/β), float64, loops.
 *
 *   s(y) = Σ_valid logp, or Σ_valid logp / L(y) when normalised (0 for an empty response)
 *   x = s(y_w) − s(y_l) − γ/β;  l = −(1 − ε) logσ(βx) − ε logσ(−βx)
 *   loss = mean over pairs of l + α · NLL,  NLL = −(Σ logp over valid chosen tokens) / (their count)
 *
 * Hand-derived gradient: ∂l/∂x = −β[(1 − ε)σ(−βx) − εσ(βx)], ∂x/∂logp_t = ±(1/L(y) or 1);
 * ∂NLL/∂logp_t = −1/N_w at valid chosen tokens (no term when N_w = 0, where NLL = 0).
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, logSigmoid, meanOr0, pairs, sigmoid, validTokensOf, values, zeros } from './family.js';

export interface CpoFamilyParams {
  beta: number;
  gamma: number;
  label_smoothing: number;
  cpo_alpha: number;
  length_normalize: number;
}

function cpoFamily(b: RaggedBatch, p: CpoFamilyParams): FamilyResult {
  const logp = values(b, 'logp');
  const scale = (s: number) => {
    const n = validTokensOf(b, s).length;
    return p.length_normalize !== 0 ? (n > 0 ? 1 / n : 0) : 1;
  };
  const score = (s: number) => scale(s) * validTokensOf(b, s).reduce((acc, t) => acc + logp[t]!, 0);
  const P = pairs(b);
  const grad = zeros(b.numTokens);
  let loss = 0;
  const deltas: number[] = [];
  for (const { w, l } of P) {
    const delta = score(w) - score(l);
    deltas.push(delta);
    const x = delta - p.gamma / p.beta;
    const eps = p.label_smoothing;
    loss += -(1 - eps) * logSigmoid(p.beta * x) - eps * logSigmoid(-p.beta * x);
    const dx = (-p.beta * ((1 - eps) * sigmoid(-p.beta * x) - eps * sigmoid(p.beta * x))) / P.length;
    for (const t of validTokensOf(b, w)) grad[t] += dx * scale(w);
    for (const t of validTokensOf(b, l)) grad[t] -= dx * scale(l);
  }
  const chosenTokens = P.flatMap(({ w }) => validTokensOf(b, w));
  const nll = chosenTokens.length ? -chosenTokens.reduce((a, t) => a + logp[t]!, 0) / chosenTokens.length : 0;
  for (const t of chosenTokens) grad[t] += -p.cpo_alpha / chosenTokens.length;
  return {
    loss: (P.length ? loss / P.length : 0) + p.cpo_alpha * nll,
    metrics: {
      reward_chosen: meanOr0(P.map(({ w }) => p.beta * score(w))),
      reward_rejected: meanOr0(P.map(({ l }) => p.beta * score(l))),
      reward_accuracy: meanOr0(deltas.map((d) => (d > 0 ? 1 : 0))),
      nll,
    },
    grads: { logp: grad },
  };
}

export function cpoRef(
  b: RaggedBatch,
  params: Partial<Pick<CpoFamilyParams, 'beta' | 'label_smoothing' | 'cpo_alpha'>> = {},
): FamilyResult {
  return cpoFamily(b, { beta: 0.1, label_smoothing: 0, cpo_alpha: 1, ...params, gamma: 0, length_normalize: 0 });
}

export function simpoRef(b: RaggedBatch, params: Partial<CpoFamilyParams> = {}): FamilyResult {
  return cpoFamily(b, { beta: 0.1, gamma: 0.5, label_smoothing: 0, cpo_alpha: 0, length_normalize: 1, ...params });
}

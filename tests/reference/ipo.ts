/**
 * IPO reference (TRL `loss_type="ipo"`, methods-dpo.md §17.2), float64, loops.
 *
 *   a(y) = S(y)/L(y) (length_normalize ≠ 0; 0 for an empty response) or S(y);  δ = a(y_w) − a(y_l)
 *   loss = mean over pairs of (δ − 1/(2β))²
 *
 * Hand-derived gradient: ∂/∂logp_t = 2(δ − 1/(2β))/P · (±1 / L(y) or ±1), + for y_w, − for y_l.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, meanOr0, pairs, validTokensOf, values, zeros } from './family.js';

export interface IpoParams {
  beta: number;
  length_normalize: number;
}

export function ipoRef(b: RaggedBatch, params: Partial<IpoParams> = {}): FamilyResult {
  const { beta, length_normalize } = { beta: 0.1, length_normalize: 1, ...params };
  const [logp, ref] = [values(b, 'logp'), values(b, 'ref_logp')];
  const scale = (s: number) => {
    const n = validTokensOf(b, s).length;
    return length_normalize !== 0 ? (n > 0 ? 1 / n : 0) : 1;
  };
  const a = (s: number) => scale(s) * validTokensOf(b, s).reduce((acc, t) => acc + logp[t]! - ref[t]!, 0);
  const P = pairs(b);
  const grad = zeros(b.numTokens);
  const deltas = P.map(({ w, l }) => a(w) - a(l));
  let loss = 0;
  P.forEach(({ w, l }, k) => {
    const e = deltas[k]! - 1 / (2 * beta);
    loss += e * e;
    const dDelta = (2 * e) / P.length;
    for (const t of validTokensOf(b, w)) grad[t] += dDelta * scale(w);
    for (const t of validTokensOf(b, l)) grad[t] -= dDelta * scale(l);
  });
  return {
    loss: P.length ? loss / P.length : 0,
    metrics: {
      reward_margin: meanOr0(deltas.map((d) => beta * d)),
      reward_accuracy: meanOr0(deltas.map((d) => (d > 0 ? 1 : 0))),
    },
    grads: { logp: grad },
  };
}

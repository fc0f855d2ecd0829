/**
 * "Diversity or Precision?" reference (stdlib/diversity_precision.credo; methods-pg.md §18), float64,
 * loops over each valid token's row of logits z (p = softmax(z), x = token_id):
 *
 *   w_x = π(x)^(1 − g^β),  g = max(1 − π(x), 1e-6)           (the ground truth's π·r, no gradient)
 *   w_v = π(v) · (λ_head if v is in the top k else λ_tail)     (v ≠ x, π(v) > 0; no gradient)
 *   l   = −Σ_v w_v log π(v),  loss = mean over valid tokens
 *
 * The top k: entries with clip(z, ±1e4) ≥ the bisection bound of the program (12 halvings of
 * [max(min, max + 1 − 25), max + 1), moving up when at least k entries are ≥ the midpoint), written
 * again here.
 *
 * Hand-derived gradient: ∂l/∂z_u = Σ_v w_v (p_u − [u = v]) = −w_u + p_u Σ_v w_v, divided by the
 * number of valid tokens; 0 at masked tokens.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, numValid, values, zeros } from './family.js';
import { rowStats } from './vocab.js';

export interface DiversityPrecisionParams {
  beta: number;
  lambda_head: number;
  lambda_tail: number;
  k: number;
}

export const DIVERSITY_PRECISION_DEFAULTS: DiversityPrecisionParams = {
  beta: -0.25,
  lambda_head: 0,
  lambda_tail: 0,
  k: 100,
};

/** Which entries of a row count as its top k (the program's bisection, the same float64 operations). */
export function topKMembers(z: readonly number[], k: number): boolean[] {
  const zc = z.map((x) => Math.min(Math.max(x, -1e4), 1e4));
  const hi0 = Math.max(...zc) + 1;
  let lo = Math.max(Math.min(...zc), hi0 - 25);
  const w0 = hi0 - lo;
  for (let i = 1; i <= 12; i++) {
    const h = w0 / 2 ** i;
    if (zc.filter((x) => x >= lo + h).length >= k) lo = lo + h;
  }
  return zc.map((x) => x >= lo);
}

/**
 * @param opts.weightsFrom the batch the stop-gradient weights (and the top-k sets) are computed
 *   from (default `b`): finite differences perturb `b` with the weights held, as `sg` holds them.
 */
export function diversityPrecisionRef(
  b: RaggedBatch,
  params: Partial<DiversityPrecisionParams> = {},
  opts: { weightsFrom?: RaggedBatch } = {},
): FamilyResult {
  const { beta, lambda_head, lambda_tail, k } = { ...DIVERSITY_PRECISION_DEFAULTS, ...params };
  const V = b.vocabSize;
  const logits = values(b, 'logits');
  const frozen = values(opts.weightsFrom ?? b, 'logits');
  const ids = values(b, 'token_id');
  const n = numValid(b);
  const grad = zeros(b.numTokens * V);
  let loss = 0;
  let nll = 0;
  let entropy = 0;
  let topMass = 0;
  for (let t = 0; t < b.numTokens; t++) {
    if (b.mask[t] !== 1) continue;
    const z = logits.slice(t * V, (t + 1) * V);
    const { p, logp, entropy: H } = rowStats(z);
    const x = ids[t]!;
    const lp = logp[x]!;
    const zw = frozen.slice(t * V, (t + 1) * V);
    const sw = rowStats(zw);
    const g = Math.max(-Math.expm1(sw.logp[x]!), 1e-6);
    const top = topKMembers(zw, k);
    const w = sw.p.map((pv, v) =>
      v === x ? Math.exp(sw.logp[x]! * (1 - g ** beta)) : pv > 0 ? pv * (top[v] ? lambda_head : lambda_tail) : 0,
    );
    const W = w.reduce((a, c) => a + c, 0);
    for (let v = 0; v < V; v++) {
      if (w[v] !== 0) loss -= w[v]! * logp[v]!;
      grad[t * V + v] = (-w[v]! + p[v]! * W) / n;
    }
    nll -= lp;
    entropy += H;
    const topNow = topKMembers(z, k);
    topMass += p.reduce((a, pv, v) => a + (topNow[v] ? pv : 0), 0);
  }
  const d = Math.max(n, 1);
  return {
    loss: loss / d,
    metrics: { nll: nll / d, entropy: entropy / d, topk_mass: topMass / d },
    grads: { logits: grad },
  };
}

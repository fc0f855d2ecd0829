/**
 * ILM reference (stdlib/ilm.credo; methods-dpo.md §16, dhruvdcoder/xlm-core loss_ilm.py), float64,
 * loops. Per sequence s, over its valid gaps t and every vocabulary entry v:
 *
 *   c = max(target, 0),  n = Σ c,  P = c / (n + 1e-9)
 *   LSE = log Σ_t Σ_v exp(z[t, v])   (0 for a sequence without valid gaps)
 *   ce  = −Σ_{c > 0, z > −1e30} P (z − LSE)   (0 when n = 0; a target at a −inf logit is left out)
 *   stop = (1 − w_s) softplus(l0 − l1) if n > 0, else w_s softplus(l1 − l0)   (l0 = stop_logit, l1 = insert_logit)
 *   loss = mean over all sequences of ce + λ·stop
 *
 * Hand-derived gradient: ∂ce/∂z[t, v] = −P[t, v] + (Σ P) · exp(z[t, v] − LSE), both sums over the
 * entries that count; ∂stop/∂l0 =
 * (1 − w_s) σ(l0 − l1) or −w_s σ(l1 − l0), ∂stop/∂l1 = its negative; all divided by the number of
 * sequences; 0 at masked gaps.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, meanOr0, sigmoid, validTokensOf, values, zeros } from './family.js';

export interface IlmParams {
  lambda_len: number;
  stop_weight: number;
}

export const ILM_DEFAULTS: IlmParams = { lambda_len: 0.001, stop_weight: 0.9 };

const softplus = (x: number): number => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));

/** log Σ exp(xs), max-shifted; 0 for an empty list, −∞ when every entry is −∞. */
function logSumExp(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const m = Math.max(...xs);
  if (m === -Infinity) return -Infinity;
  return m + Math.log(xs.reduce((a, x) => a + Math.exp(x - m), 0));
}

export function ilmRef(b: RaggedBatch, params: Partial<IlmParams> = {}): FamilyResult {
  const { lambda_len: lam, stop_weight: ws } = { ...ILM_DEFAULTS, ...params };
  const V = b.vocabSize;
  const S = b.numSeqs;
  const [z, target, l0, l1] = ['logits', 'target', 'stop_logit', 'insert_logit'].map((n) => values(b, n));
  const gz = zeros(b.numTokens * V);
  const g0 = zeros(S);
  const g1 = zeros(S);
  const ces: number[] = [];
  const stops: number[] = [];
  const ns: number[] = [];
  const mass: number[] = [];
  for (let s = 0; s < S; s++) {
    const ts = validTokensOf(b, s);
    const entries = ts.flatMap((t) => Array.from({ length: V }, (_, v) => t * V + v));
    const c = entries.map((j) => Math.max(target[j]!, 0));
    const n = c.reduce((a, x) => a + x, 0);
    const P = c.map((x) => x / (n + 1e-9));
    const lse = logSumExp(ts.map((t) => logSumExp(z.slice(t * V, (t + 1) * V))));
    let ce = 0;
    let sumP = 0;
    const inside = (j: number, i: number) => c[i]! > 0 && z[j]! > -1e30;
    entries.forEach((j, i) => {
      if (inside(j, i)) {
        ce -= P[i]! * (z[j]! - lse);
        sumP += P[i]!;
      }
    });
    entries.forEach((j, i) => {
      gz[j] = ((inside(j, i) ? -P[i]! : 0) + sumP * Math.exp(z[j]! - lse)) / S;
    });
    const d = l0[s]! - l1[s]!;
    const stop = n > 0 ? (1 - ws) * softplus(d) : ws * softplus(-d);
    const dStop = n > 0 ? (1 - ws) * sigmoid(d) : -ws * sigmoid(-d); // ∂stop/∂l0
    g0[s] = (lam * dStop) / S;
    g1[s] = (-lam * dStop) / S;
    ces.push(ce);
    stops.push(lam * stop);
    ns.push(n);
    mass.push(P.reduce((a, x) => a + x, 0));
  }
  return {
    loss: meanOr0(ces.map((x, s) => x + stops[s]!)),
    metrics: { ce: meanOr0(ces), length_loss: meanOr0(stops), n_drops: meanOr0(ns) },
    grads: { logits: gz, stop_logit: g0, insert_logit: g1 },
    exports: { target_mass: mass },
  };
}

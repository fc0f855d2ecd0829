/**
 * IFT reference (stdlib/ift.credo, the released code's relation-propagation loss), float64, loops.
 *
 * Per sequence with valid tokens t_1 … t_L, ℓ_k = −logp(t_k):
 *   S_k = Σ_{j≥k} γ^{j−k} ℓ_j / L,  D = Σ_k S_k,  N = Σ_k ℓ_k S_k
 *   loss_s = N / D (γ > 0; D replaced by 1 when it is 0),  Σ_k ℓ_k / L (γ = 0)
 *   loss = mean over sequences with L > 0 of loss_s
 *
 * Hand-derived gradient (the weights are not detached), for γ > 0:
 *   ∂N/∂ℓ_j = S_j + Σ_{k≤j} ℓ_k γ^{j−k} / L,  ∂D/∂ℓ_j = Σ_{k≤j} γ^{j−k} / L
 *   ∂loss_s/∂ℓ_j = (∂N/∂ℓ_j · D − N · ∂D/∂ℓ_j) / D²   (D → 1 and ∂D → 0 when D = 0)
 * for γ = 0: ∂loss_s/∂ℓ_j = 1/L. Then ∂/∂logp = −∂/∂ℓ, divided by the number of sequences B'.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, validTokensOf, values, zeros } from './family.js';

export interface IftParams {
  gamma: number;
}

export const IFT_DEFAULTS: IftParams = { gamma: 0.95 };

export function iftRef(b: RaggedBatch, params: Partial<IftParams> = {}): FamilyResult {
  const { gamma } = { ...IFT_DEFAULTS, ...params };
  const logp = values(b, 'logp');
  const grad = zeros(b.numTokens);
  const seqs = [...Array(b.numSeqs).keys()].filter((s) => validTokensOf(b, s).length > 0);
  let loss = 0;
  for (const s of seqs) {
    const ts = validTokensOf(b, s);
    const L = ts.length;
    const l = ts.map((t) => -logp[t]!);
    const g = new Array<number>(L).fill(0); // ∂loss_s/∂ℓ_j
    if (gamma === 0) {
      loss += l.reduce((a, v) => a + v, 0) / L;
      g.fill(1 / L);
    } else {
      const S = new Array<number>(L).fill(0);
      for (let k = L - 1; k >= 0; k--) S[k] = l[k]! / L + (k + 1 < L ? gamma * S[k + 1]! : 0);
      const D0 = S.reduce((a, v) => a + v, 0);
      const D = D0 !== 0 ? D0 : 1;
      const N = l.reduce((a, v, k) => a + v * S[k]!, 0);
      loss += N / D;
      for (let j = 0; j < L; j++) {
        let dN = S[j]!;
        let dD = 0;
        for (let k = 0; k <= j; k++) {
          dN += (l[k]! * gamma ** (j - k)) / L;
          dD += gamma ** (j - k) / L;
        }
        if (D0 === 0) dD = 0;
        g[j] = (dN * D - N * dD) / (D * D);
      }
    }
    ts.forEach((t, j) => (grad[t] = -g[j]! / seqs.length));
  }
  return { loss: seqs.length ? loss / seqs.length : 0, metrics: {}, grads: { logp: grad } };
}

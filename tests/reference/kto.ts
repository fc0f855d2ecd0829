/**
 * KTO reference (TRL KTOTrainer `loss_type="kto"`, methods-dpo.md §17.4), float64, loops.
 *
 *   r_i = Σ_valid (logp − ref_logp);  z0 = max(mean_i (kl_logp_i − kl_ref_logp_i), 0)
 *   l_i = w_D (1 − σ(β(r_i − z0))) if desirable, w_U (1 − σ(β(z0 − r_i))) otherwise
 *   loss = mean over examples (sequences) of l_i
 *
 * Hand-derived gradient (z0 carries none): ∂l/∂r = −w_D β σ(x)(1 − σ(x)), x = β(r − z0), for a
 * desirable example; +w_U β σ(y)(1 − σ(y)), y = β(z0 − r), for an undesirable one; ∂r/∂logp_t = 1.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, meanOr0, sigmoid, validTokensOf, values, zeros } from './family.js';

export interface KtoParams {
  beta: number;
  desirable_weight: number;
  undesirable_weight: number;
}

export function ktoRef(b: RaggedBatch, params: Partial<KtoParams> = {}): FamilyResult {
  const {
    beta,
    desirable_weight: wD,
    undesirable_weight: wU,
  } = {
    beta: 0.1,
    desirable_weight: 1,
    undesirable_weight: 1,
    ...params,
  };
  const [logp, ref, des] = [values(b, 'logp'), values(b, 'ref_logp'), values(b, 'desirable')];
  const [kl, klRef] = [values(b, 'kl_logp'), values(b, 'kl_ref_logp')];
  const S = b.numSeqs;
  const z0 = Math.max(meanOr0(kl.map((v, i) => v - klRef[i]!)), 0);
  const grad = zeros(b.numTokens);
  let loss = 0;
  const rD: number[] = [];
  const rU: number[] = [];
  for (let i = 0; i < S; i++) {
    const ts = validTokensOf(b, i);
    const r = ts.reduce((a, t) => a + logp[t]! - ref[t]!, 0);
    let dr: number;
    if (des[i] === 1) {
      const sx = sigmoid(beta * (r - z0));
      loss += wD * (1 - sx);
      dr = -wD * beta * sx * (1 - sx);
      rD.push(beta * r);
    } else {
      const sy = sigmoid(beta * (z0 - r));
      loss += wU * (1 - sy);
      dr = wU * beta * sy * (1 - sy);
      rU.push(beta * r);
    }
    for (const t of ts) grad[t] += dr / S;
  }
  return {
    loss: S ? loss / S : 0,
    metrics: { kl: z0, reward_desirable: meanOr0(rD), reward_undesirable: meanOr0(rU) },
    grads: { logp: grad },
  };
}

/**
 * SMDM masked-diffusion loss reference (Nie et al. 2024, methods-dpo.md §15), float64, loops.
 *
 *   p_b  = (1 − ε) t_b + ε
 *   CE_i = logsumexp(z_i) − z_i[x_i]
 *   loss = Σ_{valid i: masked, not prompt} CE_i / p_b / N,
 *   N = number of valid positions (sft = 0) or of valid non-prompt positions (sft = 1); 0 if N = 0.
 *
 * Hand-derived gradient: ∂CE_i/∂z_iv = softmax(z_i)_v − [v = x_i], times 1/(p_b N) at counted
 * positions, 0 elsewhere.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, meanOr0, validTokensOf, values, zeros } from './family.js';

export interface SmdmParams {
  mask_eps: number;
  sft: number;
}

export const SMDM_DEFAULTS: SmdmParams = { mask_eps: 1e-3, sft: 0 };

export function smdmRef(b: RaggedBatch, params: Partial<SmdmParams> = {}): FamilyResult {
  const { mask_eps, sft } = { ...SMDM_DEFAULTS, ...params };
  const V = b.vocabSize;
  const z = values(b, 'logits');
  const id = values(b, 'token_id');
  const masked = values(b, 'masked');
  const prompt = values(b, 'prompt');
  const t = values(b, 't');
  let all = 0;
  let answer = 0;
  for (let s = 0; s < b.numSeqs; s++)
    for (const i of validTokensOf(b, s)) {
      all++;
      if (prompt[i] === 0) answer++;
    }
  const N = sft !== 0 ? answer : all;
  const grad = zeros(b.numTokens * V);
  let loss = 0;
  const ces: number[] = [];
  for (let s = 0; s < b.numSeqs; s++) {
    const p = (1 - mask_eps) * t[s]! + mask_eps;
    for (const i of validTokensOf(b, s)) {
      if (masked[i] !== 1 || prompt[i] === 1) continue;
      const row = z.slice(i * V, (i + 1) * V);
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
      const ce = lse - row[id[i]!]!;
      ces.push(ce);
      if (N === 0) continue;
      loss += ce / p / N;
      for (let v = 0; v < V; v++) grad[i * V + v] = (Math.exp(row[v]! - lse) - (v === id[i] ? 1 : 0)) / (p * N);
    }
  }
  return { loss, metrics: { masked_ce: meanOr0(ces) }, grads: { logits: grad } };
}

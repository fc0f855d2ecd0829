/**
 * Soft-tokens reference (Butt et al. 2025, methods-dpo.md §13), float64, loops.
 *
 *   log π(h̃_t) = Σ_j [ −(h_tj − μ_tj)² / (2σ²) − log σ − ½ log 2π ]      (CoT steps, cot = 1)
 *   score_k    = Σ_{valid CoT t} log π(h̃_t) + w_a Σ_{valid answer s} logp_s
 *   A_k        = (R_k − mean_g R) · G/(G − 1)  (0 for G = 1)
 *   loss       = −(1/K) Σ_k A_k score_k   (K = all sequences of the batch)
 *
 * Hand-derived gradient: ∂loss/∂μ_tj = −(A_k / K) (h_tj − μ_tj)/σ² at valid CoT tokens;
 * ∂loss/∂logp_s = −(A_k / K) w_a at valid answer tokens; 0 elsewhere.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, meanOr0, sequencesByGroup, validTokensOf, values, zeros } from './family.js';

export interface SoftTokensParams {
  sigma: number;
  answer_w: number;
}

export const SOFT_TOKENS_DEFAULTS: SoftTokensParams = { sigma: 1, answer_w: 1 };

/** RLOO advantage per sequence: R_i minus the mean of the others of its group, 0 alone. */
export function rlooAdvantages(b: RaggedBatch): number[] {
  const reward = values(b, 'reward');
  const adv = zeros(b.numSeqs);
  for (const seqs of sequencesByGroup(b)) {
    if (seqs.length < 2) continue;
    const sum = seqs.reduce((a, s) => a + reward[s]!, 0);
    for (const s of seqs) adv[s] = reward[s]! - (sum - reward[s]!) / (seqs.length - 1);
  }
  return adv;
}

export function softTokensRef(b: RaggedBatch, params: Partial<SoftTokensParams> = {}): FamilyResult {
  const { sigma, answer_w } = { ...SOFT_TOKENS_DEFAULTS, ...params };
  const V = b.vocabSize;
  const mu = values(b, 'mu');
  const h = values(b, 'h');
  const logp = values(b, 'logp');
  const cot = values(b, 'cot');
  const adv = rlooAdvantages(b);
  const K = b.numSeqs;
  const gMu = zeros(b.numTokens * V);
  const gLogp = zeros(b.numTokens);
  let loss = 0;
  const z2: number[] = [];
  for (let s = 0; s < K; s++) {
    let score = 0;
    for (const t of validTokensOf(b, s)) {
      if (cot[t] === 1) {
        let lp = 0;
        let sq = 0;
        for (let j = 0; j < V; j++) {
          const r = (h[t * V + j]! - mu[t * V + j]!) / sigma;
          lp += -0.5 * r * r - Math.log(sigma) - 0.5 * Math.log(2 * Math.PI);
          sq += r * r;
          gMu[t * V + j] = (-adv[s]! / K) * ((h[t * V + j]! - mu[t * V + j]!) / (sigma * sigma));
        }
        score += lp;
        z2.push(sq / Math.max(V, 1));
      } else {
        score += answer_w * logp[t]!;
        gLogp[t] = (-adv[s]! / K) * answer_w;
      }
    }
    loss -= (adv[s]! * score) / K;
  }
  return {
    loss: K ? loss : 0,
    metrics: { noise_z2: meanOr0(z2) },
    grads: { mu: gMu, logp: gLogp },
    exports: { advantage: adv },
  };
}

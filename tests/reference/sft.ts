/**
 * SFT reference (stdlib/sft.credo), float64, loops.
 *
 *   per_sequence = 0: loss = Σ_valid (−logp) / N                    (N = valid tokens of the batch)
 *   per_sequence = 1: loss = mean over responses with L > 0 of Σ_t (−logp_t) / L
 *
 * Hand-derived gradient: ∂loss/∂logp_t = −1/N (token mean), −1/(L_s·B') (per sequence, B' = responses
 * with a valid token), at valid tokens; 0 elsewhere.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, numValid, validTokensOf, values, zeros } from './family.js';

export interface SftParams {
  per_sequence: number;
}

export const SFT_DEFAULTS: SftParams = { per_sequence: 0 };

export function sftRef(b: RaggedBatch, params: Partial<SftParams> = {}): FamilyResult {
  const { per_sequence } = { ...SFT_DEFAULTS, ...params };
  const logp = values(b, 'logp');
  const N = numValid(b);
  let tokSum = 0;
  for (let s = 0; s < b.numSeqs; s++) for (const t of validTokensOf(b, s)) tokSum -= logp[t]!;
  const nllTok = N ? tokSum / N : 0;
  const nonEmpty = [...Array(b.numSeqs).keys()].filter((s) => validTokensOf(b, s).length > 0);
  let seqSum = 0;
  for (const s of nonEmpty) {
    const ts = validTokensOf(b, s);
    seqSum += ts.reduce((a, t) => a - logp[t]!, 0) / ts.length;
  }
  const nllSeq = nonEmpty.length ? seqSum / nonEmpty.length : 0;
  const grad = zeros(b.numTokens);
  if (per_sequence > 0) {
    for (const s of nonEmpty) {
      const ts = validTokensOf(b, s);
      for (const t of ts) grad[t] = -1 / (ts.length * nonEmpty.length);
    }
  } else {
    for (let s = 0; s < b.numSeqs; s++) for (const t of validTokensOf(b, s)) grad[t] = -1 / N;
  }
  return {
    loss: per_sequence > 0 ? nllSeq : nllTok,
    metrics: { nll: nllTok, ppl: Math.exp(Math.min(nllTok, 80)) },
    grads: { logp: grad },
  };
}

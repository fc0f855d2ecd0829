/**
 * CJ-GRPO reference (methods-dpo.md §11, yjyddq/EOSER-ASS-RL@5affb4ec), float64, loops.
 *
 *   A = r − mean over the responses of the group;  ℓ = −min(ρA, clip(ρ, 1 ± ε)A) + β k3 per token
 *   loss_s = Σ_{views at step s} Σ_valid ℓ / #valid tokens at step s   (0 when none)
 *   loss = (1/S) Σ_s loss_s, the steps s being the distinct values of `t` in the batch; the
 *   metrics (k3, the fraction with ρA < clip(ρ)A) pooled and averaged over steps the same way
 *
 * Hand-derived gradient: ∂loss/∂lp = ∂ℓ/∂lp / (S · #valid tokens at the token's step), with
 * ∂ℓ/∂lp as in diffu_grpo.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, validTokensOf, values, zeros } from './family.js';
import { isClipped, k3Tok, ppoSurr, responseCentred } from './diffu_grpo.js';

export interface CjGrpoParams {
  eps: number;
  beta: number;
}

export const CJ_GRPO_DEFAULTS: CjGrpoParams = { eps: 0.5, beta: 0.04 };

/** The sequences of each step (distinct value of t over the batch), in order of first appearance. */
export function viewsByStep(b: RaggedBatch): number[][] {
  const t = values(b, 't');
  const by = new Map<number, number[]>();
  for (let s = 0; s < b.numSeqs; s++) {
    if (!by.has(t[s]!)) by.set(t[s]!, []);
    by.get(t[s]!)!.push(s);
  }
  return [...by.values()];
}

export function cjGrpoRef(b: RaggedBatch, params: Partial<CjGrpoParams> = {}): FamilyResult {
  const { eps, beta } = { ...CJ_GRPO_DEFAULTS, ...params };
  const [lp, old, ref, reward] = [values(b, 'logp'), values(b, 'old_logp'), values(b, 'ref_logp'), values(b, 'reward')];
  const adv = responseCentred(b, reward);
  const steps = viewsByStep(b);
  const grad = zeros(b.numTokens);
  let loss = 0;
  let kl = 0;
  let clipRatio = 0;
  for (const seqs of steps) {
    let sum = 0;
    let klSum = 0;
    let clipped = 0;
    const toks: { t: number; d: number }[] = [];
    for (const s of seqs)
      for (const t of validTokensOf(b, s)) {
        const p = ppoSurr(lp[t]! - old[t]!, adv[s]!, 1 - eps, 1 + eps);
        const k = k3Tok(lp[t]!, ref[t]!);
        sum += -p.v + beta * k.v;
        toks.push({ t, d: -p.dd + beta * k.dlp });
        klSum += k.v;
        if (isClipped(lp[t]! - old[t]!, adv[s]!, 1 - eps, 1 + eps)) clipped++;
      }
    if (!toks.length) continue;
    loss += sum / toks.length / steps.length;
    kl += klSum / toks.length / steps.length;
    clipRatio += clipped / toks.length / steps.length;
    for (const { t, d } of toks) grad[t] = d / toks.length / steps.length;
  }
  return {
    loss,
    metrics: { kl, clip_ratio: clipRatio },
    grads: { logp: grad },
    exports: { adv },
  };
}

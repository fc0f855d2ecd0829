/**
 * diffu-GRPO (d1) reference (methods-dpo.md §17.6, dllm-reasoning/d1@837888f2), float64, loops,
 * plus the pieces the other diffusion references share (per-response means, the per-token PPO
 * term with k3, the grouping of views by step).
 *
 *   A_i = r_i − mean over the responses of the group (each response once, with the mean of its views)
 *   ρ = exp(clip(lp − old, ±20)),  k = clip(ref − lp, ±20),  kl = e^k − k − 1
 *   ℓ = −min(ρA, clip(ρ, 1 − ε, 1 + ε)A) + β kl,   loss = Σ_valid ℓ / #valid
 *
 * Hand-derived gradient: ∂ℓ/∂lp = −A·(∂min/∂(ρA) + ∂min/∂(clip(ρ)A)·[1−ε ≤ ρ ≤ 1+ε])·ρ·[|lp − old| ≤ 20]
 *   − β (e^k − 1)·[|ref − lp| ≤ 20], divided by the number of valid tokens.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, sequencesByGroup, validTokensOf, values, zeros } from './family.js';
import { clipG, minG } from './ops.js';

export interface DiffuGrpoParams {
  eps: number;
  beta: number;
}

export const DIFFU_GRPO_DEFAULTS: DiffuGrpoParams = { eps: 0.5, beta: 0.04 };

/** Views of each sequence's response (sequences of its group with the same `response`). */
export function viewCounts(b: RaggedBatch): number[] {
  const resp = values(b, 'response');
  const out = zeros(b.numSeqs);
  for (let s = 0; s < b.numSeqs; s++)
    for (let s2 = 0; s2 < b.numSeqs; s2++) if (b.groupOf[s2] === b.groupOf[s] && resp[s2] === resp[s]) out[s]++;
  return out;
}

/**
 * Per sequence: x minus the mean over the responses of its group (each response once, with the
 * mean of its views), the values shifted by the group's largest one so that equal values give 0.
 */
export function responseCentred(b: RaggedBatch, x: readonly number[]): number[] {
  const nv = viewCounts(b);
  const out = zeros(b.numSeqs);
  for (const seqs of sequencesByGroup(b)) {
    const top = Math.max(...seqs.map((s) => x[s]!));
    const nResp = Math.round(seqs.reduce((a, s) => a + 1 / nv[s]!, 0));
    const m = seqs.reduce((a, s) => a + (x[s]! - top) / nv[s]!, 0) / nResp;
    for (const s of seqs) out[s] = x[s]! - top - m;
  }
  return out;
}

/** Per sequence: the unbiased std over the responses of its group (each response once; 0 for one response). */
export function responseStd(b: RaggedBatch, x: readonly number[]): number[] {
  const nv = viewCounts(b);
  const c = responseCentred(b, x);
  const out = zeros(b.numSeqs);
  for (const seqs of sequencesByGroup(b)) {
    const nResp = Math.round(seqs.reduce((a, s) => a + 1 / nv[s]!, 0));
    const v = seqs.reduce((a, s) => a + c[s]! ** 2 / nv[s]!, 0) / Math.max(nResp - 1, 1);
    for (const s of seqs) out[s] = Math.sqrt(v);
  }
  return out;
}

/** The PPO-clip surrogate min(ρA, clip(ρ, lo, hi)A) of a log-ratio d = lp − old, with ∂/∂d. */
export function ppoSurr(d: number, A: number, lo: number, hi: number): { v: number; dd: number } {
  const c = clipG(d, -20, 20);
  const rho = Math.exp(c.v);
  const cr = clipG(rho, lo, hi);
  const m = minG(rho * A, cr.v * A);
  return { v: m.v, dd: (m.da * A + m.db * A * cr.dx) * rho * c.dx };
}

/** k3 = e^k − k − 1, k = clip(ref − lp, ±20), with ∂/∂lp. */
export function k3Tok(lp: number, ref: number): { v: number; dlp: number } {
  const c = clipG(ref - lp, -20, 20);
  return { v: Math.exp(c.v) - c.v - 1, dlp: -(Math.exp(c.v) - 1) * c.dx };
}

/** d1's (TRL ≤ 0.16's) is_clipped: the unclipped term ρA is below the clipped one clip(ρ)A. */
export function isClipped(d: number, A: number, lo: number, hi: number): boolean {
  const rho = Math.exp(Math.min(Math.max(d, -20), 20));
  return rho * A < Math.min(Math.max(rho, lo), hi) * A;
}

export function diffuGrpoRef(b: RaggedBatch, params: Partial<DiffuGrpoParams> = {}): FamilyResult {
  const { eps, beta } = { ...DIFFU_GRPO_DEFAULTS, ...params };
  const [lp, old, ref, reward] = [values(b, 'logp'), values(b, 'old_logp'), values(b, 'ref_logp'), values(b, 'reward')];
  const adv = responseCentred(b, reward);
  const grad = zeros(b.numTokens);
  let n = 0;
  let sum = 0;
  let klSum = 0;
  let clipped = 0;
  for (let s = 0; s < b.numSeqs; s++) {
    const A = adv[s]!;
    for (const t of validTokensOf(b, s)) {
      const p = ppoSurr(lp[t]! - old[t]!, A, 1 - eps, 1 + eps);
      const k = k3Tok(lp[t]!, ref[t]!);
      sum += -p.v + beta * k.v;
      klSum += k.v;
      if (isClipped(lp[t]! - old[t]!, A, 1 - eps, 1 + eps)) clipped++;
      grad[t] = -p.dd + beta * k.dlp;
      n++;
    }
  }
  if (n) for (let t = 0; t < grad.length; t++) grad[t] /= n;
  return {
    loss: n ? sum / n : 0,
    metrics: { kl: n ? klSum / n : 0, clip_ratio: n ? clipped / n : 0 },
    grads: { logp: grad },
  };
}

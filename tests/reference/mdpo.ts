/**
 * MDPO reference (methods-dpo.md §8, autonomousvision/mdpo@e6ae4390), float64, loops.
 *
 *   A_raw = r_k − r_{k−1} + offset + future;  A = (A_raw − mean) / (std_unbiased + adv_eps) over the
 *   views of the group at the same t (shifted by their largest value first)
 *   ℓ = (−min(ρA, clip(ρ, 1 ± ε)A)·λ + β (ref − lp)²/2)·conf,  λ = L / (|M| + 1e-4)
 *   loss_t = Σ_{views at t} Σ_valid ℓ / (#valid at t + 1e-4);  loss = Σ_t loss_t (÷ #steps with step_mean)
 *
 * Hand-derived gradient: ∂ℓ/∂lp = (−λ·∂surr/∂lp − β (ref − lp))·conf, divided by (#valid at t + 1e-4)
 * and by #steps with step_mean.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, sequencesByGroup, validTokensOf, values, zeros } from './family.js';
import { ppoSurr } from './diffu_grpo.js';
import { viewsByStep } from './cj_grpo.js';

export interface MdpoParams {
  eps: number;
  beta: number;
  max_len: number;
  adv_eps: number;
  adv_offset: number;
  step_mean: number;
}

export const MDPO_DEFAULTS: MdpoParams = {
  eps: 0.2,
  beta: 0.02,
  max_len: 512,
  adv_eps: 1e-4,
  adv_offset: 1,
  step_mean: 0,
};

/** The per-step z-scored adv-v4 advantage of each view. */
export function mdpoAdvantages(b: RaggedBatch, p: MdpoParams): number[] {
  const [sr, pr, fr, t] = [
    values(b, 'step_reward'),
    values(b, 'prev_reward'),
    values(b, 'future_reward'),
    values(b, 't'),
  ];
  const raw = sr.map((r, s) => r - pr[s]! + p.adv_offset + fr[s]!);
  const adv = zeros(b.numSeqs);
  for (const seqs of sequencesByGroup(b)) {
    const byT = new Map<number, number[]>();
    for (const s of seqs) byT.set(t[s]!, [...(byT.get(t[s]!) ?? []), s]);
    for (const at of byT.values()) {
      const top = Math.max(...at.map((s) => raw[s]!));
      const sh = at.map((s) => raw[s]! - top);
      const m = sh.reduce((a, x) => a + x, 0) / at.length;
      const c = sh.map((x) => x - m);
      const sd = Math.sqrt(c.reduce((a, x) => a + x * x, 0) / Math.max(at.length - 1, 1));
      at.forEach((s, i) => (adv[s] = c[i]! / (sd + p.adv_eps)));
    }
  }
  return adv;
}

export function mdpoRef(b: RaggedBatch, params: Partial<MdpoParams> = {}): FamilyResult {
  const p = { ...MDPO_DEFAULTS, ...params };
  const [lp, old, ref, conf] = [values(b, 'logp'), values(b, 'old_logp'), values(b, 'ref_logp'), values(b, 'conf')];
  const adv = mdpoAdvantages(b, p);
  const steps = viewsByStep(b);
  const div = p.step_mean > 0 ? steps.length : 1;
  const grad = zeros(b.numTokens);
  let loss = 0;
  let klSum = 0;
  let n = 0;
  for (const seqs of steps) {
    const nt = seqs.reduce((a, s) => a + validTokensOf(b, s).length, 0);
    let sum = 0;
    for (const s of seqs) {
      const ts = validTokensOf(b, s);
      const lam = p.max_len / (ts.length + 1e-4);
      for (const t of ts) {
        const q = ppoSurr(lp[t]! - old[t]!, adv[s]!, 1 - p.eps, 1 + p.eps);
        const kl = 0.5 * (ref[t]! - lp[t]!) ** 2;
        sum += (-q.v * lam + p.beta * kl) * conf[t]!;
        grad[t] = ((-q.dd * lam - p.beta * (ref[t]! - lp[t]!)) * conf[t]!) / (nt + 1e-4) / div;
        klSum += kl;
        n++;
      }
    }
    loss += sum / (nt + 1e-4) / div;
  }
  return { loss, metrics: { kl: n ? klSum / n : 0 }, grads: { logp: grad }, exports: { adv } };
}

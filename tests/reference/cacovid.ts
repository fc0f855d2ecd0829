/**
 * CaCoVID reference (Ma et al. 2026, methods-dpo.md §14), float64, loops.
 *
 * A group is the memory of one item, a sequence one memorised combination c, its valid tokens the
 * keep/drop decisions. Per group and mode (token- / frame-mode combinations separately):
 *   A_c = (r_c − mean r) / (std_unbiased r + adv_eps)      (std 0 for fewer than 2 combinations)
 *   ρ = exp(clip(logp − old, −20, 20)),  ℓ = −min(ρA, clip(ρ, 1 − ε_lo, 1 + ε_hi)A)
 *   kl = exp(k) − k − 1, k = clip(log ½ − logp, −20, 20)
 *   k_c = mean keep, w = keep ? 1 − k_c : k_c, W_c = Σ w + w_eps
 *   L_tok = mean_{token c} Σ w ℓ / W_c + kl_w mean_{token c} Σ w kl / W_c
 *   L_frame = mean over the decisions of frame c of ℓ + kl_w · the same of kl
 *
 * Hand-derived gradient (per valid decision i of c):
 *   ∂ℓ/∂logp = −ρ·[|d| ≤ 20]·A·(m.da + m.db·[1 − ε_lo ≤ ρ ≤ 1 + ε_hi]),  ∂kl/∂logp = −(e^k − 1)·[|·| ≤ 20];
 *   token mode: (w_i / W_c)/n_tok · (∂ℓ + kl_w ∂kl); frame mode: (∂ℓ + kl_w ∂kl)/n_frame_decisions.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, meanOr0, sequencesByGroup, validTokensOf, values, zeros } from './family.js';
import { clipG, minG } from './ops.js';

export interface CacovidParams {
  eps_low: number;
  eps_high: number;
  kl_w: number;
  adv_eps: number;
  w_eps: number;
}

export const CACOVID_DEFAULTS: CacovidParams = { eps_low: 0.2, eps_high: 0.28, kl_w: 0.01, adv_eps: 1e-4, w_eps: 1e-7 };

function stdUnbiased(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = meanOr0(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

export function cacovidRef(b: RaggedBatch, params: Partial<CacovidParams> = {}): FamilyResult {
  const { eps_low, eps_high, kl_w, adv_eps, w_eps } = { ...CACOVID_DEFAULTS, ...params };
  const logp = values(b, 'logp');
  const old = values(b, 'old_logp');
  const keep = values(b, 'keep');
  const frame = values(b, 'frame_mode');
  const reward = values(b, 'reward');

  const adv = zeros(b.numSeqs);
  for (const seqs of sequencesByGroup(b))
    for (const mode of [0, 1]) {
      const mine = seqs.filter((s) => frame[s] === mode);
      const rs = mine.map((s) => reward[s]!);
      const m = meanOr0(rs);
      const sd = stdUnbiased(rs);
      for (const s of mine) adv[s] = (reward[s]! - m) / (sd + adv_eps);
    }

  const tokSeqs = Array.from({ length: b.numSeqs }, (_, s) => s).filter((s) => frame[s] === 0);
  const frmSeqs = Array.from({ length: b.numSeqs }, (_, s) => s).filter((s) => frame[s] === 1);
  const nFrameDecisions = frmSeqs.reduce((a, s) => a + validTokensOf(b, s).length, 0);

  /** ℓ, kl and their derivatives at decision t of a sequence with advantage A. */
  const term = (t: number, A: number) => {
    const d = clipG(logp[t]! - old[t]!, -20, 20);
    const rho = Math.exp(d.v);
    const cl = clipG(rho, 1 - eps_low, 1 + eps_high);
    const m = minG(rho * A, cl.v * A);
    const k = clipG(Math.log(0.5) - logp[t]!, -20, 20);
    return {
      l: -m.v,
      dl: -rho * d.dx * A * (m.da + m.db * cl.dx),
      kl: Math.exp(k.v) - k.v - 1,
      dkl: -(Math.exp(k.v) - 1) * k.dx,
    };
  };

  const grad = zeros(b.numTokens);
  let tokLoss = 0;
  let tokKl = 0;
  for (const s of tokSeqs) {
    const ts = validTokensOf(b, s);
    const kc = meanOr0(ts.map((t) => keep[t]!));
    const w = ts.map((t) => (keep[t] === 1 ? 1 - kc : kc));
    const W = w.reduce((a, x) => a + x, 0) + w_eps;
    ts.forEach((t, i) => {
      const x = term(t, adv[s]!);
      tokLoss += (w[i]! * x.l) / W / tokSeqs.length;
      tokKl += (w[i]! * x.kl) / W / tokSeqs.length;
      grad[t] += ((w[i]! / W) * (x.dl + kl_w * x.dkl)) / tokSeqs.length;
    });
  }
  let frmLoss = 0;
  let frmKl = 0;
  for (const s of frmSeqs)
    for (const t of validTokensOf(b, s)) {
      const x = term(t, adv[s]!);
      frmLoss += x.l / nFrameDecisions;
      frmKl += x.kl / nFrameDecisions;
      grad[t] += (x.dl + kl_w * x.dkl) / nFrameDecisions;
    }
  return {
    loss: tokLoss + kl_w * tokKl + frmLoss + kl_w * frmKl,
    metrics: {
      video_selection_kl: tokKl,
      frame_selection_kl: frmKl,
      rewards_for_token: meanOr0(tokSeqs.map((s) => reward[s]!)),
      rewards_for_frame: meanOr0(frmSeqs.map((s) => reward[s]!)),
    },
    grads: { logp: grad },
    exports: { advantage: adv },
  };
}

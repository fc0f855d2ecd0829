/**
 * GMPO reference (verl `geo_mean`, methods-pg.md §B.7), float64, loops.
 *
 *   A_i    = GRPO advantage (batch.ts groupAdvantages, std unbiased, adv_eps)
 *   per valid token of sequence i: d = logp - old_logp (no clamp), dc = clip(d, -eps_low, eps_high),
 *     s = sign(A_i), dsel = s * min(s d, s dc)
 *   rho_i  = exp(sum_t dsel_t / L_i)
 *   loss   = (1/B') sum_{i: L_i > 0} -A_i rho_i
 *
 * Hand-derived gradient w.r.t. logp_t (t in sequence i):
 *   d(dsel)/dlogp = s * (wa * s + wb * s * [-eps_low <= d <= eps_high])   (wa, wb: min-weights, 1/2 each on a tie)
 *   dloss/dlogp_t = -A_i * rho_i * d(dsel_t)/dlogp / (L_i * B')
 * Metrics: clip_frac = token-mean[d outside [-eps_low, eps_high] and A > 0], clip_frac_lower = same with
 *          A < 0, ppo_kl = token-mean(-d).
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens, seqLengths } from './batch.js';
import { clipG, minG } from './ops.js';

export interface GmpoParams {
  eps_low: number;
  eps_high: number;
  adv_eps: number;
}

export const GMPO_DEFAULTS: GmpoParams = { eps_low: 0.4, eps_high: 0.4, adv_eps: 1e-6 };

export function gmpoRef(b: RefBatch, params: Partial<GmpoParams> = {}): RefResult & { advantage: number[] } {
  const p: GmpoParams = { ...GMPO_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const L = seqLengths(b);
  const A = groupAdvantages(b, b.reward, p.adv_eps);
  let nSeqs = 0;
  for (let s = 0; s < S; s++) if (L[s]! > 0) nSeqs++;

  const grad: number[] = new Array<number>(T).fill(0);
  let loss = 0;
  let n = 0;
  let clipPos = 0;
  let clipNeg = 0;
  let klSum = 0;
  for (let s = 0; s < S; s++) {
    if (L[s]! === 0) continue;
    const a = A[s]!;
    const sg = a > 0 ? 1 : a < 0 ? -1 : 0;
    let sumSel = 0;
    const dSel: [number, number][] = []; // (token, d dsel / d logp)
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      const d = b.logp[t]! - b.old_logp[t]!;
      const dc = clipG(d, -p.eps_low, p.eps_high);
      const m = minG(sg * d, sg * dc.v);
      sumSel += sg * m.v;
      dSel.push([t, sg * (m.da * sg + m.db * sg * dc.dx)]);
      n++;
      const outside = d < -p.eps_low || d > p.eps_high;
      if (outside && a > 0) clipPos++;
      if (outside && a < 0) clipNeg++;
      klSum += -d;
    }
    const rho = Math.exp(sumSel / L[s]!);
    loss += -a * rho;
    for (const [t, g] of dSel) grad[t] = (-a * rho * g) / (L[s]! * nSeqs);
  }
  return {
    loss: nSeqs > 0 ? loss / nSeqs : 0,
    metrics: {
      clip_frac: n > 0 ? clipPos / n : 0,
      clip_frac_lower: n > 0 ? clipNeg / n : 0,
      ppo_kl: n > 0 ? klSum / n : 0,
    },
    grad_logp: grad,
    advantage: A,
  };
}

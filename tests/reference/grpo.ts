/**
 * GRPO reference (DeepSeekMath objective, methods-pg.md §B.1/§B.3, §0.2, §0.3), float64, loops.
 *
 * Per valid token (A = A_i of the token's sequence):
 *   d    = clip(logp - old_logp, -20, 20),  r = exp(d)
 *   surr = min(r*A, clip(r, 1-eps_low, 1+eps_high)*A)
 *   k    = clip(ref_logp - logp, -20, 20),  kl = clip(exp(k) - k - 1, -10, 10)
 *   l    = -(surr - beta*kl)
 * loss = seq-mean-token-mean(l) = (1/B') sum_{i: L_i>0} (1/L_i) sum_{valid t in i} l_t.
 *
 * Hand-derived gradient w.r.t. logp_t (every quantity depends on logp_t of its own token only):
 *   dd/dlogp   = [-20 <= logp-old_logp <= 20]
 *   dr/dlogp   = r * dd/dlogp
 *   d(r*A)     = A * dr
 *   d(clip(r)*A) = A * [lo <= r <= hi] * dr
 *   dsurr      = min-weights (1,0) / (0,1) / (1/2,1/2) applied to the two terms above
 *   dk/dlogp   = -[-20 <= ref_logp-logp <= 20]
 *   dkl/dlogp  = [-10 <= exp(k)-k-1 <= 10] * (exp(k) - 1) * dk/dlogp
 *   dl/dlogp   = -(dsurr - beta * dkl)
 *   dloss/dlogp_t = dl_t/dlogp_t / (B' * L_i);  0 at masked tokens.
 * Metrics: clip_frac = token-mean[(A>0 and r>1+eps_high) or (A<0 and r<1-eps_low)], kl = token-mean(kl).
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens, seqLengths } from './batch.js';
import { clipG, minG } from './ops.js';

export interface GrpoParams {
  eps_low: number;
  eps_high: number;
  beta: number;
  adv_eps: number;
}

export const GRPO_DEFAULTS: GrpoParams = { eps_low: 0.2, eps_high: 0.2, beta: 0.04, adv_eps: 1e-6 };

export function grpoRef(b: RefBatch, params: Partial<GrpoParams> = {}): RefResult {
  const p: GrpoParams = { ...GRPO_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const L = seqLengths(b);
  const A = groupAdvantages(b, b.reward, p.adv_eps);

  let nSeqs = 0; // B'
  let nTokens = 0;
  for (let s = 0; s < S; s++) {
    if (L[s]! > 0) nSeqs++;
    nTokens += L[s]!;
  }

  const grad: number[] = new Array<number>(T).fill(0);
  let loss = 0;
  let clipCount = 0;
  let klSum = 0;

  for (let s = 0; s < S; s++) {
    if (L[s]! === 0) continue;
    const a = A[s]!;
    let seqSum = 0;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      // importance ratio
      const d = clipG(b.logp[t]! - b.old_logp[t]!, -20, 20);
      const r = Math.exp(d.v);
      const dr = r * d.dx;
      const rc = clipG(r, 1 - p.eps_low, 1 + p.eps_high);
      const m = minG(r * a, rc.v * a);
      const surr = m.v;
      const dsurr = m.da * (a * dr) + m.db * (a * rc.dx * dr);
      // k3 KL to the reference policy
      const k = clipG(b.ref_logp[t]! - b.logp[t]!, -20, 20);
      const dk = -k.dx;
      const klRaw = Math.exp(k.v) - k.v - 1;
      const dklRaw = (Math.exp(k.v) - 1) * dk;
      const klc = clipG(klRaw, -10, 10);
      const kl = klc.v;
      const dkl = klc.dx * dklRaw;
      // per-token loss
      const l = -(surr - p.beta * kl);
      const dl = -(dsurr - p.beta * dkl);
      seqSum += l;
      grad[t] = dl / (nSeqs * L[s]!);
      // metrics
      if ((a > 0 && r > 1 + p.eps_high) || (a < 0 && r < 1 - p.eps_low)) clipCount++;
      klSum += kl;
    }
    loss += seqSum / L[s]!;
  }
  if (nSeqs > 0) loss /= nSeqs;

  return {
    loss,
    metrics: {
      clip_frac: nTokens > 0 ? clipCount / nTokens : 0,
      kl: nTokens > 0 ? klSum / nTokens : 0,
    },
    grad_logp: grad,
  };
}

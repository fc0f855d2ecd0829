/**
 * DAPO reference (methods-pg.md §B.1, §B.2, §B.5), float64, loops.
 *
 * Reward shaping (only if overlong_buffer > 0), L_i = valid-token count:
 *   R'_i = R_i + min(-(L_i - (max_len - overlong_buffer)) / overlong_buffer * overlong_penalty, 0)
 * Advantages: GRPO group advantages of R' (see batch.ts groupAdvantages).
 * Per valid token (A = A_i of its sequence):
 *   d = clip(logp - old_logp, -20, 20), r = exp(d)
 *   l1 = -A*r,  l2 = -A*clip(r, 1-eps_low, 1+eps_high),  lclip = max(l1, l2)
 *   l3 = -A*clip_c,  ldual = min(lclip, l3),  l = (A < 0 ? ldual : lclip)
 * loss = token-mean(l) = sum_{valid t} l_t / N  (N = number of valid tokens; 0 if N = 0).
 *
 * Hand-derived gradient w.r.t. logp_t:
 *   dr     = r * [-20 <= logp-old_logp <= 20]
 *   dl1    = -A * dr,   dl2 = -A * [lo <= r <= hi] * dr,   dl3 = 0 (constant)
 *   dlclip = max-weights (1,0)/(0,1)/(1/2,1/2) on (dl1, dl2)
 *   dldual = min-weight of lclip in min(lclip, l3) times dlclip
 *   dloss/dlogp_t = dl_t / N;  0 at masked tokens.
 * Metrics: clip_frac = token-mean[l2 > l1], dual_clip_frac = token-mean[A < 0 and l3 < lclip].
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens, seqLengths } from './batch.js';
import { clipG, maxG, minG } from './ops.js';

export interface DapoParams {
  eps_low: number;
  eps_high: number;
  clip_c: number;
  adv_eps: number;
  overlong_buffer: number;
  max_len: number;
  overlong_penalty: number;
}

export const DAPO_DEFAULTS: DapoParams = {
  eps_low: 0.2,
  eps_high: 0.28,
  clip_c: 10,
  adv_eps: 1e-6,
  overlong_buffer: 0,
  max_len: 20480,
  overlong_penalty: 1,
};

/** The shaped rewards R' that DAPO computes its advantages from. */
export function dapoShapedRewards(b: RefBatch, params: Partial<DapoParams> = {}): number[] {
  const p: DapoParams = { ...DAPO_DEFAULTS, ...params };
  const L = seqLengths(b);
  const out: number[] = [];
  for (let s = 0; s < numSeqs(b); s++) {
    let r = b.reward[s]!;
    if (p.overlong_buffer > 0) {
      const exceed = L[s]! - (p.max_len - p.overlong_buffer);
      r += Math.min((-exceed / p.overlong_buffer) * p.overlong_penalty, 0);
    }
    out.push(r);
  }
  return out;
}

export function dapoRef(b: RefBatch, params: Partial<DapoParams> = {}): RefResult {
  const p: DapoParams = { ...DAPO_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const L = seqLengths(b);
  const A = groupAdvantages(b, dapoShapedRewards(b, p), p.adv_eps);

  let nTokens = 0;
  for (let s = 0; s < S; s++) nTokens += L[s]!;

  const grad: number[] = new Array<number>(T).fill(0);
  let sum = 0;
  let clipCount = 0;
  let dualCount = 0;

  for (let s = 0; s < S; s++) {
    const a = A[s]!;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      const d = clipG(b.logp[t]! - b.old_logp[t]!, -20, 20);
      const r = Math.exp(d.v);
      const dr = r * d.dx;
      const rc = clipG(r, 1 - p.eps_low, 1 + p.eps_high);
      const l1 = -a * r;
      const dl1 = -a * dr;
      const l2 = -a * rc.v;
      const dl2 = -a * rc.dx * dr;
      const mx = maxG(l1, l2);
      const lclip = mx.v;
      const dlclip = mx.da * dl1 + mx.db * dl2;
      const l3 = -a * p.clip_c;
      let l: number;
      let dl: number;
      if (a < 0) {
        const mn = minG(lclip, l3);
        l = mn.v;
        dl = mn.da * dlclip; // l3 is constant in logp
      } else {
        l = lclip;
        dl = dlclip;
      }
      sum += l;
      grad[t] = dl / nTokens;
      if (l2 > l1) clipCount++;
      if (a < 0 && l3 < lclip) dualCount++;
    }
  }

  return {
    loss: nTokens > 0 ? sum / nTokens : 0,
    metrics: {
      clip_frac: nTokens > 0 ? clipCount / nTokens : 0,
      dual_clip_frac: nTokens > 0 ? dualCount / nTokens : 0,
    },
    grad_logp: grad,
  };
}

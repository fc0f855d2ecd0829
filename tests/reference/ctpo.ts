/**
 * CTPO / CTPO-LA reference (methods-pg.md §3; horizon-llm/CTPO verl core_algos), float64, loops.
 *
 * For the valid tokens of a response, numbered t = 1, 2, … (masked tokens are skipped and not counted):
 *   d_t    = clip(logp_t - old_logp_t, -20, 20)
 *   K_t    = d_1 + … + d_t (cumprod) | (d_1 + … + d_t) / t (geomean) | d_t (cumulative = 0)
 *   logR_t = min((K_t + logp_t) - logp_t, 10)        value of sg(K) + logp - sg(logp); d/dlogp_t = 1
 *   R_t    = exp(logR_t)
 *   la = 1: Rc_t = exp(clip(logR_t, -c_low t^q, c_high t^q)),  c_t = exp(c_c t^q)      (q = la_power)
 *   la = 0: Rc_t = clip(R_t, 1 - eps_low, 1 + eps_high),       c_t = clip_c
 *   l1 = -A R, l2 = -A Rc, lclip = max(l1, l2), l3 = -A c,  l = A < 0 ? min(lclip, l3) : lclip
 * loss = (1/N) sum over valid tokens of l  (N = valid tokens in the batch).
 *
 * Hand-derived gradient w.r.t. logp_t: only through logp_t in logR_t (K_t is stop-gradient):
 *   dlogR = [min weight of the 10-cap];  dR = R dlogR
 *   dRc   = la: Rc * [clip pass] * dlogR;  non-la: [clip pass] * dR
 *   dlclip = max weights on (-A dR, -A dRc);  dl = A<0: min weight of lclip * dlclip (l3 is constant)
 *   dloss/dlogp_t = dl / N.
 * Metrics: clip_frac = token-mean[l2 > l1], dual_clip_frac = token-mean[A < 0 and l3 < lclip].
 * Extra outputs per token: log_ratio = K_t, ratio = R_t (values at valid tokens).
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens } from './batch.js';
import { clipG, maxG, minG } from './ops.js';

export interface CtpoParams {
  la_clip_low: number;
  la_clip_high: number;
  la_clip_c: number;
  la_power: number;
  geomean: number;
  la: number;
  eps_low: number;
  eps_high: number;
  clip_c: number;
  cumulative: number;
  adv_eps: number;
}

export const CTPO_DEFAULTS: CtpoParams = {
  la_clip_low: 0.025,
  la_clip_high: 0.05,
  la_clip_c: 0.05,
  la_power: 0.5,
  geomean: 0,
  la: 1,
  eps_low: 0.2,
  eps_high: 0.2,
  clip_c: 3,
  cumulative: 1,
  adv_eps: 1e-6,
};

export function ctpoRef(
  b: RefBatch,
  params: Partial<CtpoParams> = {},
): RefResult & { log_ratio: number[]; ratio: number[] } {
  const q: CtpoParams = { ...CTPO_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const A = groupAdvantages(b, b.reward, q.adv_eps);
  let N = 0;
  for (let t = 0; t < T; t++) N += b.mask[t]!;

  const grad = new Array<number>(T).fill(0);
  const logRatio = new Array<number>(T).fill(0);
  const ratioOut = new Array<number>(T).fill(0);
  let sum = 0;
  let clipped = 0;
  let dual = 0;

  for (let s = 0; s < S; s++) {
    const a = A[s]!;
    let cs = 0;
    let k = 0; // 1-based position among valid tokens
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      k++;
      const d = clipG(b.logp[t]! - b.old_logp[t]!, -20, 20).v;
      cs += d;
      const K = q.cumulative > 0.5 ? (q.geomean > 0.5 ? cs / k : cs) : d;
      const cap = minG(K + b.logp[t]! - b.logp[t]!, 10);
      const logR = cap.v;
      const R = Math.exp(logR);
      const dR = R * cap.da;
      let Rc: number;
      let dRc: number;
      let c: number;
      if (q.la > 0.5) {
        const scale = Math.pow(k, q.la_power);
        const lc = clipG(logR, -q.la_clip_low * scale, q.la_clip_high * scale);
        Rc = Math.exp(lc.v);
        dRc = Rc * lc.dx * cap.da;
        c = Math.exp(q.la_clip_c * scale);
      } else {
        const rc = clipG(R, 1 - q.eps_low, 1 + q.eps_high);
        Rc = rc.v;
        dRc = rc.dx * dR;
        c = q.clip_c;
      }
      const l1 = -a * R;
      const l2 = -a * Rc;
      const mx = maxG(l1, l2);
      const lclip = mx.v;
      const dlclip = mx.da * (-a * dR) + mx.db * (-a * dRc);
      const l3 = -a * c;
      let l = lclip;
      let dl = dlclip;
      if (a < 0) {
        const mn = minG(lclip, l3);
        l = mn.v;
        dl = mn.da * dlclip;
      }
      sum += l;
      grad[t] = dl / N;
      logRatio[t] = K;
      ratioOut[t] = R;
      if (l2 > l1) clipped++;
      if (a < 0 && l3 < lclip) dual++;
    }
  }

  return {
    loss: N > 0 ? sum / N : 0,
    metrics: { clip_frac: N > 0 ? clipped / N : 0, dual_clip_frac: N > 0 ? dual / N : 0 },
    grad_logp: grad,
    log_ratio: logRatio,
    ratio: ratioOut,
  };
}

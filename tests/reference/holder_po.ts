/**
 * HölderPO reference (methods-pg.md §4; YihangChen9/HolderPO math + verl code), float64, loops.
 *
 * Per response i with L_i > 0 valid tokens, d_t = logp_t - old_logp_t, A = A_i (GRPO advantage):
 *   lo = log1p(-eps_low), hi = log1p(eps_high)
 *   x_t = d_t                                         variant 0 (sequence)
 *       = A>0: min(d, clip(d,lo,hi)); A<0: max(d, clip(d,lo,hi)); A=0: d     variant 1 (token clip)
 *       = clip(d, -log1p(eps_high), log1p(eps_high))  variant 2 (sequence_w_clip)
 *   log_rho = mean_t x_t                              if |p| < 1e-6
 *           = (M + log sum_t exp(p x_t - M) - log L) / p,  M = max_t p x_t   otherwise
 *   sel = variants 0/2: A>0: min(log_rho, clip(log_rho,lo,hi)); A<0: max(...); A=0: log_rho
 *         variant 1: log_rho
 *   l_i = -A exp(min(sel, CAP)),  CAP = log(float32 max)
 * loss = (1/B') sum_{i: L_i>0} l_i.
 *
 * Hand-derived gradient w.r.t. logp_t (t in response i):
 *   dx_t/dd_t     = 1 (variant 0); min/max tie weights + clip pass-through (variant 1); clip pass (variant 2)
 *   dlog_rho/dx_t = 1/L (geometric) or softmax_t(p x) = exp(p x_t - M) / sum_u exp(p x_u - M)
 *   dsel/dlog_rho = min/max weights with the clip's pass-through (variants 0/2), 1 (variant 1)
 *   dl/dsel       = -A exp(min(sel, CAP)) * [min weight of sel]
 *   dloss/dlogp_t = dl/dsel * dsel/dlog_rho * dlog_rho/dx_t * dx_t/dd_t / B';   0 at masked tokens.
 * Metrics: holder_p (current p), clip_frac (variant 1: token-mean[d outside [lo,hi]]; else the fraction of
 * responses with L>0 whose log_rho is outside [lo,hi]), ratio_mean (mean over responses with L>0 of
 * exp(min(log_rho, CAP))). Extra output rho[i] = exp(min(log_rho_i, CAP)) (1 for L_i = 0).
 *
 * p schedule as `_get_current_holder_p`: progress = min(1, max(0, step) / max(1, totalSteps)).
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens, seqLengths } from './batch.js';
import { clipG, maxG, minG } from './ops.js';

export interface HolderPoParams {
  eps_low: number;
  eps_high: number;
  adv_eps: number;
  variant: number;
  p: number;
  p_schedule: number;
  p_min: number;
  p_max: number;
  p_power: number;
}

export const HOLDER_PO_DEFAULTS: HolderPoParams = {
  eps_low: 0.2,
  eps_high: 0.2,
  adv_eps: 1e-6,
  variant: 0,
  p: 1.0,
  p_schedule: 2,
  p_min: -2.0,
  p_max: 2.0,
  p_power: 2.0,
};

export const HOLDER_LOG_CAP = Math.log(3.4028234663852886e38);

export const HOLDER_SCHEDULES = [
  'constant',
  'linear',
  'linear_dec',
  'sin',
  'cos',
  'quad',
  'quad_dec',
  'cubic',
  'cubic_dec',
] as const;

/** The exponent p at a training step, as the HolderPO code's `_get_current_holder_p`. */
export function holderP(params: Partial<HolderPoParams>, step = 0, totalSteps = 0): number {
  const q: HolderPoParams = { ...HOLDER_PO_DEFAULTS, ...params };
  const sched = HOLDER_SCHEDULES[q.p_schedule] ?? 'constant';
  if (sched === 'constant') return q.p;
  const pMin = q.p_min;
  const pMax = q.p_max;
  const progress = Math.min(1, Math.max(0, step) / Math.max(1, totalSteps));
  const mid = (pMin + pMax) / 2;
  const amp = (pMax - pMin) / 2;
  switch (sched) {
    case 'linear':
      return pMin + (pMax - pMin) * progress;
    case 'linear_dec':
      return pMax - (pMax - pMin) * progress;
    case 'sin':
      return mid - amp * Math.cos(Math.PI * progress);
    case 'cos':
      return mid + amp * Math.cos(Math.PI * progress);
    case 'quad':
      return pMin + (pMax - pMin) * progress ** q.p_power;
    case 'quad_dec':
      return pMax - (pMax - pMin) * progress ** q.p_power;
    case 'cubic':
      return mid + amp * (2 * progress - 1) ** 3;
    case 'cubic_dec':
      return mid - amp * (2 * progress - 1) ** 3;
  }
}

export function holderPoRef(
  b: RefBatch,
  params: Partial<HolderPoParams> = {},
  clock: { step?: number; totalSteps?: number } = {},
): RefResult & { rho: number[] } {
  const q: HolderPoParams = { ...HOLDER_PO_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const L = seqLengths(b);
  const A = groupAdvantages(b, b.reward, q.adv_eps);
  const p = holderP(q, clock.step ?? 0, clock.totalSteps ?? 0);
  const geometric = Math.abs(p) < 1e-6;
  const lo = Math.log1p(-q.eps_low);
  const hi = Math.log1p(q.eps_high);
  const delta = Math.log1p(q.eps_high);

  let nSeqs = 0;
  let nTokens = 0;
  for (let s = 0; s < S; s++) {
    if (L[s]! > 0) nSeqs++;
    nTokens += L[s]!;
  }

  const grad = new Array<number>(T).fill(0);
  const rho = new Array<number>(S).fill(1);
  let loss = 0;
  let tokClipped = 0;
  let seqClipped = 0;
  let ratioSum = 0;

  for (let s = 0; s < S; s++) {
    if (L[s]! === 0) continue;
    const a = A[s]!;
    const idx: number[] = [];
    const x: number[] = [];
    const dx: number[] = []; // dx_t / dd_t
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      const d = b.logp[t]! - b.old_logp[t]!;
      const dc = clipG(d, lo, hi);
      if (dc.v !== d) tokClipped++;
      idx.push(t);
      if (q.variant === 1) {
        if (a > 0) {
          const m = minG(d, dc.v);
          x.push(m.v);
          dx.push(m.da + m.db * dc.dx);
        } else if (a < 0) {
          const m = maxG(d, dc.v);
          x.push(m.v);
          dx.push(m.da + m.db * dc.dx);
        } else {
          x.push(d);
          dx.push(1);
        }
      } else if (q.variant === 2) {
        const c = clipG(d, -delta, delta);
        x.push(c.v);
        dx.push(c.dx);
      } else {
        x.push(d);
        dx.push(1);
      }
    }
    const n = L[s]!;
    // log of the Hölder mean and its weights d log_rho / d x_t
    let logRho: number;
    const wts: number[] = [];
    if (geometric) {
      let sum = 0;
      for (const v of x) sum += v;
      logRho = sum / n;
      for (let k = 0; k < n; k++) wts.push(1 / n);
    } else if (Math.abs(p) < 0.05) {
      // accurate form for small |p|: log(mean(exp(p x))) / p = log1p(mean(expm1(p x))) / p
      let m = 0;
      for (const v of x) m += Math.expm1(p * v);
      m /= n;
      logRho = Math.log1p(m) / p;
      for (const v of x) wts.push(Math.exp(p * v) / (n * (1 + m)));
    } else {
      let M = -Infinity;
      for (const v of x) M = Math.max(M, p * v);
      let tot = 0;
      const e: number[] = [];
      for (const v of x) {
        const ev = Math.exp(p * v - M);
        e.push(ev);
        tot += ev;
      }
      logRho = (M + Math.log(tot) - Math.log(n)) / p;
      for (const ev of e) wts.push(ev / tot);
    }
    const logRhoC = clipG(logRho, lo, hi);
    if (logRhoC.v !== logRho) seqClipped++;
    // selection on the sequence ratio
    let sel = logRho;
    let dsel = 1;
    if (q.variant !== 1) {
      if (a > 0) {
        const m = minG(logRho, logRhoC.v);
        sel = m.v;
        dsel = m.da + m.db * logRhoC.dx;
      } else if (a < 0) {
        const m = maxG(logRho, logRhoC.v);
        sel = m.v;
        dsel = m.da + m.db * logRhoC.dx;
      }
    }
    const cap = minG(sel, HOLDER_LOG_CAP);
    const ratio = Math.exp(cap.v);
    const l = -a * ratio;
    const dlDsel = -a * ratio * cap.da;
    loss += l;
    for (let k = 0; k < n; k++) grad[idx[k]!] = (dlDsel * dsel * wts[k]! * dx[k]!) / nSeqs;
    const r = Math.exp(Math.min(logRho, HOLDER_LOG_CAP));
    rho[s] = r;
    ratioSum += r;
  }
  if (nSeqs > 0) loss /= nSeqs;

  const clipFrac = q.variant === 1 ? (nTokens > 0 ? tokClipped / nTokens : 0) : nSeqs > 0 ? seqClipped / nSeqs : 0;
  return {
    loss,
    metrics: { holder_p: p, clip_frac: clipFrac, ratio_mean: nSeqs > 0 ? ratioSum / nSeqs : 0 },
    grad_logp: grad,
    rho,
  };
}

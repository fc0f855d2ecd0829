/**
 * GSPO reference (methods-pg.md §B.6, verl "gspo"), float64, loops.
 *
 *   d_t     = logp_t - old_logp_t                         (no clamp)
 *   log_s_i = (sum_{valid t in i} d_t) / max(L_i, 1)
 * Per valid token t of sequence i (A = A_i):
 *   log_st  = sg(log_s_i) + logp_t - sg(logp_t)           value log_s_i; d/dlogp_t = 1 (own token only)
 *   log_st' = min(log_st, 10),  st = exp(log_st')
 *   l       = max(-A*st, -A*clip(st, 1-eps_low, 1+eps_high))
 * loss = seq-mean-token-mean(l).
 *
 * Hand-derived gradient w.r.t. logp_t (the stop-gradient means log_s_i carries none):
 *   dlog_st  = 1
 *   dlog_st' = min-weight of log_st in min(log_st, 10)      (1, 0 or 1/2 on a tie)
 *   dst      = st * dlog_st'
 *   dl       = max-weights on (-A*dst, -A*[lo <= st <= hi]*dst)
 *   dloss/dlogp_t = dl_t / (B' * L_i);  0 at masked tokens.
 * (Because A_i and st are the same for all tokens of a sequence, this equals the true derivative
 * of the loss value, so a finite-difference check of the value applies.)
 * Metric: clip_frac = token-mean[-A*clip(st, ...) > -A*st].
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens, seqLengths } from './batch.js';
import { clipG, maxG, minG } from './ops.js';

export interface GspoParams {
  eps_low: number;
  eps_high: number;
  adv_eps: number;
}

export const GSPO_DEFAULTS: GspoParams = { eps_low: 3e-4, eps_high: 4e-4, adv_eps: 1e-6 };

export function gspoRef(b: RefBatch, params: Partial<GspoParams> = {}): RefResult {
  const p: GspoParams = { ...GSPO_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const L = seqLengths(b);
  const A = groupAdvantages(b, b.reward, p.adv_eps);

  let nSeqs = 0;
  let nTokens = 0;
  for (let s = 0; s < S; s++) {
    if (L[s]! > 0) nSeqs++;
    nTokens += L[s]!;
  }

  const grad: number[] = new Array<number>(T).fill(0);
  let loss = 0;
  let clipCount = 0;

  for (let s = 0; s < S; s++) {
    if (L[s]! === 0) continue;
    const a = A[s]!;
    // sequence log-ratio (geometric mean of the token ratios), a constant for the gradient
    let dSum = 0;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] === 1) dSum += b.logp[t]! - b.old_logp[t]!;
    }
    const logS = dSum / Math.max(L[s]!, 1);

    let seqSum = 0;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      const logSt = logS; // value of sg(log_s) + logp_t - sg(logp_t)
      const dLogSt = 1;
      const capped = minG(logSt, 10);
      const st = Math.exp(capped.v);
      const dst = st * capped.da * dLogSt;
      const stc = clipG(st, 1 - p.eps_low, 1 + p.eps_high);
      const l1 = -a * st;
      const l2 = -a * stc.v;
      const mx = maxG(l1, l2);
      const l = mx.v;
      const dl = mx.da * (-a * dst) + mx.db * (-a * stc.dx * dst);
      seqSum += l;
      grad[t] = dl / (nSeqs * L[s]!);
      if (l2 > l1) clipCount++;
    }
    loss += seqSum / L[s]!;
  }
  if (nSeqs > 0) loss /= nSeqs;

  return {
    loss,
    metrics: { clip_frac: nTokens > 0 ? clipCount / nTokens : 0 },
    grad_logp: grad,
  };
}

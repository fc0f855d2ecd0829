/**
 * DHPO reference (methods-pg.md §2, a reconstruction from the abstract; the choices are params, see
 * stdlib/dhpo.credo), float64, loops.
 *
 * For a response with L > 0 valid tokens and advantage A (GRPO):
 *   d_t   = clip(logp_t - old_logp_t, -20, 20), r_t = exp(d_t), rc_t = clip(r_t, 1-eps_tok_low, 1+eps_tok_high)
 *   ls    = min(mean_t(logp_t - old_logp_t), 10) (value; seq_sg=1 evaluates (ls0 + logp_t) - logp_t first),
 *   s     = exp(ls), sc = clip(s, 1-eps_seq_low, 1+eps_seq_high)
 *   w_t   = w_tok, or (entropy_mix) u_t = H_t/(H_t + mean H) (1/2 if H_t + mean H = 0), 1-u_t if entropy_dir < 0
 *   arithmetic: rho = w r + (1-w) s, rhoc = w rc + (1-w) sc
 *   geometric:  rho = exp(w d + (1-w) ls), rhoc = exp(w log rc + (1-w) log sc)
 *   l_t   = max(-A rho_t, -A rhoc_t)
 * loss = seq-mean-token-mean (1/(B' L) per token) or token-mean (1/N per token).
 *
 * Hand-derived gradient. With g_rho = dl/drho, g_c = dl/drhoc (max weights times -A):
 *   through d_t (own token only):  dl/dd = arithmetic: g_rho w r + g_c w [rc pass] r
 *                                          geometric:  g_rho rho w + g_c rhoc w [rc pass] r / rc
 *   through ls:                    dl/dls = arithmetic: g_rho (1-w) s + g_c (1-w) [sc pass] s
 *                                          geometric:  g_rho rho (1-w) + g_c rhoc (1-w) [sc pass] s / sc
 *   dd/dlogp_t = [clip(·,-20,20) pass];  dls/dlogp = cap weight × (seq_sg=1: 1 for the token's own logp;
 *   seq_sg=0: 1/L for every valid token j of the response).
 *   grad_j = sum over tokens t of norm_t (dl_t/dd_t [t=j] dd_t + dl_t/dls dls/dlogp_j).
 * Metrics: clip_frac = token-mean[l_clip > l_unc], tok_clip_frac = token-mean[r outside its window],
 * seq_clip_frac = token-mean[s outside its window], w_mean = token-mean(w).
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens, seqLengths } from './batch.js';
import { clipG, maxG, minG } from './ops.js';

export interface DhpoParams {
  eps_tok_low: number;
  eps_tok_high: number;
  eps_seq_low: number;
  eps_seq_high: number;
  w_tok: number;
  entropy_mix: number;
  entropy_dir: number;
  geo_mix: number;
  seq_sg: number;
  token_mean: number;
  adv_eps: number;
}

export const DHPO_DEFAULTS: DhpoParams = {
  eps_tok_low: 0.2,
  eps_tok_high: 0.2,
  eps_seq_low: 3e-4,
  eps_seq_high: 4e-4,
  w_tok: 0.5,
  entropy_mix: 0,
  entropy_dir: 1,
  geo_mix: 0,
  seq_sg: 1,
  token_mean: 0,
  adv_eps: 1e-6,
};

export function dhpoRef(b: RefBatch, entropy: number[], params: Partial<DhpoParams> = {}): RefResult {
  const q: DhpoParams = { ...DHPO_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  if (entropy.length !== T) throw new Error('entropy must have one value per token');
  const L = seqLengths(b);
  const A = groupAdvantages(b, b.reward, q.adv_eps);
  let nSeqs = 0;
  let N = 0;
  for (let s = 0; s < S; s++) {
    if (L[s]! > 0) nSeqs++;
    N += L[s]!;
  }
  const geo = q.geo_mix > 0.5;

  const grad = new Array<number>(T).fill(0);
  let loss = 0;
  let clipCount = 0;
  let tokClip = 0;
  let seqClip = 0;
  let wSum = 0;

  for (let s = 0; s < S; s++) {
    const n = L[s]!;
    if (n === 0) continue;
    const a = A[s]!;
    const idx: number[] = [];
    let dSum = 0;
    let hSum = 0;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      idx.push(t);
      dSum += b.logp[t]! - b.old_logp[t]!;
      hSum += entropy[t]!;
    }
    const lsSeq = dSum / n;
    const hBar = hSum / n;
    const norm = q.token_mean > 0.5 ? 1 / N : 1 / (nSeqs * n);
    let crossSum = 0; // sum_t norm * dl_t/dls * cap weight (seq_sg = 0)
    for (const t of idx) {
      const dc = clipG(b.logp[t]! - b.old_logp[t]!, -20, 20);
      const d = dc.v;
      const r = Math.exp(d);
      const rc = clipG(r, 1 - q.eps_tok_low, 1 + q.eps_tok_high);
      const cap = minG(q.seq_sg > 0.5 ? lsSeq + b.logp[t]! - b.logp[t]! : lsSeq, 10);
      const ls = cap.v;
      const sv = Math.exp(ls);
      const sc = clipG(sv, 1 - q.eps_seq_low, 1 + q.eps_seq_high);
      let w = q.w_tok;
      if (q.entropy_mix > 0.5) {
        const den = entropy[t]! + hBar;
        const up = den > 0 ? entropy[t]! / den : 0.5;
        w = q.entropy_dir < 0 ? 1 - up : up;
      }
      let rho: number;
      let rhoc: number;
      if (geo) {
        rho = Math.exp(w * d + (1 - w) * ls);
        rhoc = Math.exp(w * Math.log(rc.v) + (1 - w) * Math.log(sc.v));
      } else {
        rho = w * r + (1 - w) * sv;
        rhoc = w * rc.v + (1 - w) * sc.v;
      }
      const lUnc = -a * rho;
      const lClip = -a * rhoc;
      const mx = maxG(lUnc, lClip);
      const gRho = -a * mx.da;
      const gC = -a * mx.db;
      let dlDd: number;
      let dlDls: number;
      if (geo) {
        dlDd = gRho * rho * w + gC * rhoc * w * ((rc.dx * r) / rc.v);
        dlDls = gRho * rho * (1 - w) + gC * rhoc * (1 - w) * ((sc.dx * sv) / sc.v);
      } else {
        dlDd = gRho * w * r + gC * w * rc.dx * r;
        dlDls = gRho * (1 - w) * sv + gC * (1 - w) * sc.dx * sv;
      }
      grad[t]! += norm * dlDd * dc.dx;
      if (q.seq_sg > 0.5) grad[t]! += norm * dlDls * cap.da;
      else crossSum += norm * dlDls * cap.da;

      loss += norm * mx.v;
      if (lClip > lUnc) clipCount++;
      if (r < 1 - q.eps_tok_low || r > 1 + q.eps_tok_high) tokClip++;
      if (sv < 1 - q.eps_seq_low || sv > 1 + q.eps_seq_high) seqClip++;
      wSum += w;
    }
    if (q.seq_sg <= 0.5) for (const t of idx) grad[t]! += crossSum / n;
  }

  const frac = (c: number) => (N > 0 ? c / N : 0);
  return {
    loss,
    metrics: {
      clip_frac: frac(clipCount),
      tok_clip_frac: frac(tokClip),
      seq_clip_frac: frac(seqClip),
      w_mean: frac(wSum),
    },
    grad_logp: grad,
  };
}

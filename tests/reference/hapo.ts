/**
 * HAPO reference (methods-pg.md §6; starriver030515/HAPO @ 7671dde3, core_algos.py), float64, loops.
 *
 * Extra input: entropy[t] (current-policy token entropy, no gradient).
 *
 * (a) Over the N valid tokens of the batch:
 *     e_t = log(max(H_t, 1e-8)); piv = sorted(e)[round_half_even(q (N-1))] (q = entropy_pivot; 0 if N = 0)
 *     h0 = e - piv; h = h0 / sqrt(max(sum h0^2 / max(N, 1), 1e-8))
 *     pos_max = max(largest positive h, 1e-8) (1e-8 if none); neg_min = min(most negative h, -1e-8)
 *     h_hat = h * (1/pos_max) if h > 0; else u = h * (1/neg_min), h_hat = h_signed ? -u : u
 * (c) R' = reward + overlong shaping; per group g with Lsum = max(sum L_i, 1):
 *     mu = sum L_i R'_i / Lsum, sigma = sqrt(sum L_i (R'_i - mu)^2 / Lsum), z_i = (R'_i - mu)/(sigma + adv_eps)
 *     fallback if some i with L_i > 0 has |z_i| >= adv_fallback, or fallback_pad and |mu|/(sigma+adv_eps) >= adv_fallback
 *     A_i = token_adv && !fallback ? z_i : GRPO advantage (groupAdvantages, unbiased std)
 * (d) eps_lo_t = h_hat <= 0 ? eps_low (1 - h_hat clip_alpha) : eps_low
 *     eps_hi_t = h_hat <= 0 ? eps_high : eps_high (1 + h_hat clip_alpha)
 * (e) r = exp(logp - old_logp); inband = (1 - eps_lo_t/2 < r < 1 + eps_hi_t/2); Ae = A (1 + adv_beta h_hat)
 *     A' = h_hat > 0 ? (inband ? A : Ae) : (inband ? Ae : A)
 * (f) l1 = -A' r, l2 = -A' clip(r, 1-eps_lo_t, 1+eps_hi_t), lclip = max(l1, l2), l3 = -A' clip_c,
 *     l = A' < 0 ? min(l3, lclip) : lclip;  loss = sum_valid l / N.
 *
 * Hand-derived gradient w.r.t. logp_t (A', eps_lo_t, eps_hi_t are constants: no_grad in the code):
 *   dr = r; dl1 = -A' r; dl2 = -A' [lo_t <= r <= hi_t] r; dlclip = max-weights on (dl1, dl2);
 *   dl = A' < 0 ? (min-weight of lclip in min(l3, lclip)) * dlclip : dlclip;  grad_t = dl / N.
 * Metrics: clip_frac = token-mean[l2 > l1]; dual_clip_frac = token-mean[A' < 0 and lclip > l3];
 *          fallback_frac = (number of groups whose fallback test fires) / (number of groups).
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens, seqLengths } from './batch.js';
import { clipG, maxG, minG } from './ops.js';

export interface HapoBatch extends RefBatch {
  entropy: number[]; // [T]
}

export interface HapoParams {
  eps_low: number;
  eps_high: number;
  clip_c: number;
  adv_eps: number;
  entropy_pivot: number;
  clip_alpha: number;
  adv_beta: number;
  h_signed: number;
  token_adv: number;
  adv_fallback: number;
  fallback_pad: number;
  overlong_buffer: number;
  max_len: number;
  overlong_penalty: number;
}

export const HAPO_DEFAULTS: HapoParams = {
  eps_low: 0.2,
  eps_high: 0.2,
  clip_c: 10,
  adv_eps: 1e-6,
  entropy_pivot: 0.8,
  clip_alpha: 1,
  adv_beta: 1,
  h_signed: 0,
  token_adv: 1,
  adv_fallback: 5,
  fallback_pad: 1,
  overlong_buffer: 0,
  max_len: 10240,
  overlong_penalty: 1,
};

/** torch-style 'nearest' quantile of a non-empty list (round half to even), as HAPO's torch_quantile. */
function quantileNearest(xs: number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const frac = pos - lo;
  let idx: number;
  if (frac > 0.5) idx = lo + 1;
  else if (frac < 0.5) idx = lo;
  else idx = lo % 2 === 0 ? lo : lo + 1;
  return sorted[idx]!;
}

/** h_hat per token (0 at masked tokens, which never count). */
export function hapoHHat(b: HapoBatch, q: number, signed: number): number[] {
  const T = numTokens(b);
  const e: number[] = [];
  const valid: number[] = [];
  for (let t = 0; t < T; t++) {
    e.push(Math.log(Math.max(b.entropy[t]!, 1e-8)));
    if (b.mask[t] === 1) valid.push(t);
  }
  const N = valid.length;
  const piv =
    N > 0
      ? quantileNearest(
          valid.map((t) => e[t]!),
          q,
        )
      : 0;
  let ss = 0;
  for (const t of valid) ss += (e[t]! - piv) ** 2;
  const std = Math.sqrt(Math.max(ss / Math.max(N, 1), 1e-8));
  const h = e.map((x) => (x - piv) / std);
  let posMax = 0;
  let negMin = 0;
  for (const t of valid) {
    if (h[t]! > 0) posMax = Math.max(posMax, h[t]!);
    if (h[t]! < 0) negMin = Math.min(negMin, h[t]!);
  }
  posMax = Math.max(posMax, 1e-8);
  negMin = Math.min(negMin, -1e-8);
  return h.map((x, t) => {
    if (b.mask[t] !== 1) return 0;
    if (x > 0) return x * (1 / posMax);
    const u = x * (1 / negMin);
    return signed > 0 ? -u : u;
  });
}

/** Per-sequence advantages of HAPO (token-level group normalisation with the GRPO fallback) and the fallback flag per group. */
export function hapoAdvantages(b: HapoBatch, p: HapoParams): { A: number[]; fallback: boolean[] } {
  const S = numSeqs(b);
  const L = seqLengths(b);
  const R: number[] = [];
  for (let s = 0; s < S; s++) {
    let r = b.reward[s]!;
    if (p.overlong_buffer > 0)
      r += Math.min((-(L[s]! - (p.max_len - p.overlong_buffer)) / p.overlong_buffer) * p.overlong_penalty, 0);
    R.push(r);
  }
  const grpo = groupAdvantages(b, R, p.adv_eps);
  const z: number[] = new Array<number>(S).fill(0);
  const fallback: boolean[] = new Array<boolean>(b.numGroups).fill(false);
  for (let g = 0; g < b.numGroups; g++) {
    const members: number[] = [];
    for (let s = 0; s < S; s++) if (b.groupOf[s] === g) members.push(s);
    let lsum = 0;
    let lr = 0;
    for (const s of members) {
      lsum += L[s]!;
      lr += L[s]! * R[s]!;
    }
    const denom = Math.max(lsum, 1);
    const mu = lr / denom;
    let v = 0;
    for (const s of members) v += L[s]! * (R[s]! - mu) * (R[s]! - mu);
    const sigma = Math.sqrt(v / denom);
    for (const s of members) {
      z[s] = (R[s]! - mu) / (sigma + p.adv_eps);
      if (L[s]! > 0 && Math.abs(z[s]!) >= p.adv_fallback) fallback[g] = true;
    }
    if (p.fallback_pad > 0 && Math.abs((0 - mu) / (sigma + p.adv_eps)) >= p.adv_fallback) fallback[g] = true;
  }
  const A = z.map((zi, s) => (p.token_adv > 0 && !fallback[b.groupOf[s]!] ? zi : grpo[s]!));
  return { A, fallback };
}

export function hapoRef(b: HapoBatch, params: Partial<HapoParams> = {}): RefResult {
  const p: HapoParams = { ...HAPO_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const L = seqLengths(b);
  const hHat = hapoHHat(b, p.entropy_pivot, p.h_signed);
  const { A, fallback } = hapoAdvantages(b, p);
  let N = 0;
  for (let s = 0; s < S; s++) N += L[s]!;

  const grad = new Array<number>(T).fill(0);
  let sum = 0;
  let clipCount = 0;
  let dualCount = 0;
  for (let s = 0; s < S; s++) {
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      const hh = hHat[t]!;
      const lowEnt = hh <= 0;
      const epsLo = lowEnt ? p.eps_low * (1 - hh * p.clip_alpha) : p.eps_low;
      const epsHi = lowEnt ? p.eps_high : p.eps_high * (1 + hh * p.clip_alpha);
      const r = Math.exp(b.logp[t]! - b.old_logp[t]!);
      // the band test switches A' (a jump in the value, no gradient): record it as a branch for FD checks
      clipG(r, 1 - epsLo / 2, 1 + epsHi / 2);
      const inband = r > 1 - epsLo / 2 && r < 1 + epsHi / 2;
      const a = A[s]!;
      const aEnt = a * (1 + p.adv_beta * hh);
      const a2 = hh > 0 ? (inband ? a : aEnt) : inband ? aEnt : a;
      const rc = clipG(r, 1 - epsLo, 1 + epsHi);
      const l1 = -a2 * r;
      const l2 = -a2 * rc.v;
      const mx = maxG(l1, l2);
      const dlclip = mx.da * (-a2 * r) + mx.db * (-a2 * rc.dx * r);
      const l3 = -a2 * p.clip_c;
      let l = mx.v;
      let dl = dlclip;
      if (a2 < 0) {
        const mn = minG(l3, mx.v);
        l = mn.v;
        dl = mn.db * dlclip;
      }
      sum += l;
      grad[t] = dl / N;
      if (l2 > l1) clipCount++;
      if (a2 < 0 && mx.v > l3) dualCount++;
    }
  }
  const nFallback = fallback.filter((x) => x).length;
  return {
    loss: N > 0 ? sum / N : 0,
    metrics: {
      clip_frac: N > 0 ? clipCount / N : 0,
      dual_clip_frac: N > 0 ? dualCount / N : 0,
      fallback_frac: b.numGroups > 0 ? nFallback / b.numGroups : 0,
    },
    grad_logp: grad,
  };
}

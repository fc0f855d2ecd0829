/**
 * D³S reference (methods-pg.md §10, a reconstruction), float64, loops.
 *
 * Extra input: entropy[t] (no gradient). Clock: step, totalSteps.
 * prog = min(clip(step / max(totalSteps, 1), 0, 1) / max(ramp, 1e-12), 1)
 * kf = k_frac_start + (k_frac_end - k_frac_start) prog;  rho = rho_start + (rho_end - rho_start) prog
 * A_i = GRPO advantage (unbiased std).
 * Sample level: pools = the groups (cross_group = 0) or the whole batch (1); in a pool of n sequences,
 *   order the sequences by decreasing A (ties: lower sequence index first), k = ceil(kf n),
 *   top = ceil(k / 2), bottom = k - top;
 *   sample_rule = 0: keep positions < top and >= n - bottom;
 *   sample_rule = 1: order by decreasing |A| instead and keep positions < k.
 * Token level: score = |A_i| H_t; among the valid tokens of each kept sequence (token_per_batch = 0) or of
 *   all kept sequences (1), order by decreasing score (ties: lower token index first) and keep the first
 *   ceil(rho L_i) (resp. ceil(rho * valid tokens of the kept sequences)).
 * Per kept token: r = exp(clip(logp - old_logp, -20, 20)), l1 = -A r, l2 = -A clip(r, 1-eps_low, 1+eps_high),
 *   lclip = max(l1, l2), l = A < 0 ? min(lclip, -A clip_c) : lclip.
 * loss = sum_kept l / max(K, 1)  (K = number of kept tokens).
 *
 * Hand-derived gradient w.r.t. logp_t (the selection uses no logp): at kept tokens
 *   dr = r [-20 <= logp-old <= 20]; dlclip = max-weights on (-A dr, -A [lo <= r <= hi] dr);
 *   dl = (A < 0 ? min-weight of lclip : 1) dlclip; grad_t = dl / max(K, 1); 0 elsewhere.
 * Metrics: sample_keep_frac = kept sequences / S; token_keep_frac = K / N; clip_frac = kept tokens with
 *   l2 > l1 / max(K, 1) (0 when the denominator set is empty).
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens, seqLengths } from './batch.js';
import { dualClipToken } from './ops.js';

export interface D3sBatch extends RefBatch {
  entropy: number[]; // [T]
}

export interface D3sParams {
  eps_low: number;
  eps_high: number;
  clip_c: number;
  adv_eps: number;
  k_frac_start: number;
  k_frac_end: number;
  rho_start: number;
  rho_end: number;
  ramp: number;
  sample_rule: number;
  cross_group: number;
  token_per_batch: number;
}

export const D3S_DEFAULTS: D3sParams = {
  eps_low: 0.2,
  eps_high: 0.28,
  clip_c: 10,
  adv_eps: 1e-6,
  k_frac_start: 0.5,
  k_frac_end: 1,
  rho_start: 0.5,
  rho_end: 1,
  ramp: 1,
  sample_rule: 0,
  cross_group: 0,
  token_per_batch: 0,
};

/** Indices sorted by decreasing key, ties by increasing index. */
function orderDesc(idx: number[], key: (i: number) => number): number[] {
  return [...idx].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    if (ka > kb) return -1;
    if (ka < kb) return 1;
    return a - b;
  });
}

export interface D3sSelection {
  keepSeq: boolean[]; // [S]
  keepTok: boolean[]; // [T]
}

export function d3sSelect(b: D3sBatch, p: D3sParams, step: number, totalSteps: number): D3sSelection {
  const S = numSeqs(b);
  const T = numTokens(b);
  const L = seqLengths(b);
  const progress = Math.min(Math.max(step / Math.max(totalSteps, 1), 0), 1);
  const prog = Math.min(progress / Math.max(p.ramp, 1e-12), 1);
  const kf = p.k_frac_start + (p.k_frac_end - p.k_frac_start) * prog;
  const rho = p.rho_start + (p.rho_end - p.rho_start) * prog;
  const A = groupAdvantages(b, b.reward, p.adv_eps);

  const keepSeq = new Array<boolean>(S).fill(false);
  const pools: number[][] = [];
  if (p.cross_group > 0) pools.push(Array.from({ length: S }, (_, s) => s));
  else
    for (let g = 0; g < b.numGroups; g++)
      pools.push(Array.from({ length: S }, (_, s) => s).filter((s) => b.groupOf[s] === g));
  for (const pool of pools) {
    const n = pool.length;
    const k = Math.ceil(kf * n);
    if (p.sample_rule > 0) {
      orderDesc(pool, (s) => Math.abs(A[s]!)).forEach((s, pos) => (keepSeq[s] = pos < k));
    } else {
      const top = Math.ceil(k / 2);
      const bottom = k - top;
      orderDesc(pool, (s) => A[s]!).forEach((s, pos) => (keepSeq[s] = pos < top || pos >= n - bottom));
    }
  }

  const keepTok = new Array<boolean>(T).fill(false);
  const validOf = (s: number) => {
    const v: number[] = [];
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) if (b.mask[t] === 1) v.push(t);
    return v;
  };
  const seqOf = new Array<number>(T).fill(0);
  for (let s = 0; s < S; s++) for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) seqOf[t] = s;
  const score = (t: number) => Math.abs(A[seqOf[t]!]!) * b.entropy[t]!;
  if (p.token_per_batch > 0) {
    const cand: number[] = [];
    for (let s = 0; s < S; s++) if (keepSeq[s]) cand.push(...validOf(s));
    const n = Math.ceil(rho * cand.length);
    orderDesc(cand, score).forEach((t, pos) => (keepTok[t] = pos < n));
  } else {
    for (let s = 0; s < S; s++) {
      if (!keepSeq[s]) continue;
      const n = Math.ceil(rho * L[s]!);
      orderDesc(validOf(s), score).forEach((t, pos) => (keepTok[t] = pos < n));
    }
  }
  return { keepSeq, keepTok };
}

export function d3sRef(b: D3sBatch, params: Partial<D3sParams> = {}, step = 0, totalSteps = 0): RefResult {
  const p: D3sParams = { ...D3S_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const L = seqLengths(b);
  const A = groupAdvantages(b, b.reward, p.adv_eps);
  const { keepSeq, keepTok } = d3sSelect(b, p, step, totalSteps);
  let N = 0;
  for (let s = 0; s < S; s++) N += L[s]!;
  const K = keepTok.filter((x) => x).length;

  const grad = new Array<number>(T).fill(0);
  let sum = 0;
  let clipCount = 0;
  for (let s = 0; s < S; s++) {
    const a = A[s]!;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (!keepTok[t]) continue;
      const pt = dualClipToken(a, b.logp[t]!, b.old_logp[t]!, p);
      const { l, dl } = pt;
      sum += l;
      grad[t] = dl / Math.max(K, 1);
      if (pt.clipped) clipCount++;
    }
  }
  const keptSeqs = keepSeq.filter((x) => x).length;
  return {
    loss: sum / Math.max(K, 1),
    metrics: {
      sample_keep_frac: S > 0 ? keptSeqs / S : 0,
      token_keep_frac: N > 0 ? K / N : 0,
      clip_frac: K > 0 ? clipCount / K : 0,
    },
    grad_logp: grad,
  };
}

/**
 * PPO reference (verl `vanilla` policy loss, methods-pg.md §B.1, §B.2, §0.1), float64, loops.
 * Also exports the token-level clipped surrogate and the verl aggregation modes, which the
 * references of rloo, reinforce_pp and dr_grpo reuse (they are PPO on other advantages).
 *
 * Per valid token t with advantage A_t:
 *   d = clip(logp - old_logp, -20, 20), r = exp(d)
 *   l1 = -A r,  l2 = -A clip(r, 1-eps_low, 1+eps_high),  lclip = max(l1, l2)
 *   l3 = -A clip_c,  l = (A < 0 ? min(lclip, l3) : lclip)          (no dual clip when clip_c = null)
 * Aggregation (loss_agg_mode), N = valid tokens, B' = sequences with L_i > 0:
 *   0 token-mean               sum l / N                           weight of token t: 1/N
 *   1 seq-mean-token-mean      (1/B') sum_i (1/L_i) sum_t l        1/(B' L_i)
 *   2 seq-mean-token-sum       (1/B') sum_i sum_t l                1/B'
 *   3 seq-mean-token-sum-norm  (1/B') sum_i sum_t l / max_len       1/(B' max_len)   (verl@1dda039)
 *   4 token-sum                sum l                               1
 *   5 token-sum-norm           sum l / max_len                     1/max_len   (verl before 2026, b178a3c)
 *   other values: as 0. An empty batch gives 0.
 *
 * Hand-derived gradient w.r.t. logp_t (the loss of a token depends on its own logp only):
 *   dd = [-20 <= logp-old_logp <= 20],  dr = r dd
 *   dl1 = -A dr,  dl2 = -A [lo <= r <= hi] dr,  dlclip = max-weights on (dl1, dl2)
 *   dl = (A < 0 ? min-weight of lclip in min(lclip, l3) : 1) * dlclip        (l3 is constant)
 *   dloss/dlogp_t = weight_t * dl_t,  0 at masked tokens.
 * Metrics: clip_frac = token-mean[l2 > l1], dual_clip_frac = token-mean[A < 0 and lclip > l3],
 *          ppo_kl = token-mean(-d).
 */
import { type RefBatch, type RefResult, checkBatch, numSeqs, numTokens, seqLengths } from './batch.js';
import { clipG, maxG, minG } from './ops.js';

/** Per-token loss weights of a verl aggregation mode (0 at masked tokens); the loss is sum_t w_t l_t. */
export function aggWeights(b: RefBatch, mode: number, maxLen: number): number[] {
  const S = numSeqs(b);
  const L = seqLengths(b);
  let nTokens = 0;
  let nSeqs = 0;
  for (let s = 0; s < S; s++) {
    nTokens += L[s]!;
    if (L[s]! > 0) nSeqs++;
  }
  const w: number[] = new Array<number>(numTokens(b)).fill(0);
  for (let s = 0; s < S; s++) {
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      if (mode === 1) w[t] = 1 / (nSeqs * L[s]!);
      else if (mode === 2) w[t] = 1 / nSeqs;
      else if (mode === 3) w[t] = 1 / (nSeqs * maxLen);
      else if (mode === 4) w[t] = 1;
      else if (mode === 5) w[t] = 1 / maxLen;
      else w[t] = 1 / nTokens;
    }
  }
  return w;
}

/** The aggregated loss value of per-token losses l (computed as the mode's formula says). */
export function aggValue(b: RefBatch, l: number[], mode: number, maxLen: number): number {
  const S = numSeqs(b);
  const L = seqLengths(b);
  let total = 0;
  let nTokens = 0;
  let nSeqs = 0;
  let seqMeans = 0;
  for (let s = 0; s < S; s++) {
    let seqSum = 0;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) if (b.mask[t] === 1) seqSum += l[t]!;
    total += seqSum;
    nTokens += L[s]!;
    if (L[s]! > 0) {
      nSeqs++;
      seqMeans += seqSum / L[s]!;
    }
  }
  if (mode === 1) return nSeqs > 0 ? seqMeans / nSeqs : 0;
  if (mode === 2) return nSeqs > 0 ? total / nSeqs : 0;
  if (mode === 3) return nSeqs > 0 ? total / nSeqs / maxLen : 0;
  if (mode === 4) return total;
  if (mode === 5) return total / maxLen;
  return nTokens > 0 ? total / nTokens : 0;
}

export interface PpoToken {
  l: number;
  dl: number; // d l / d logp
  d: number; // clamped log-ratio
  clipped: boolean; // l2 > l1
  dual: boolean; // A < 0 and lclip > l3
}

/** The dual-clip PPO loss of one token; clipC = null drops the dual clip. */
export function ppoToken(
  a: number,
  logp: number,
  oldLogp: number,
  epsLow: number,
  epsHigh: number,
  clipC: number | null,
): PpoToken {
  const d = clipG(logp - oldLogp, -20, 20);
  const r = Math.exp(d.v);
  const dr = r * d.dx;
  const rc = clipG(r, 1 - epsLow, 1 + epsHigh);
  const l1 = -a * r;
  const l2 = -a * rc.v;
  const mx = maxG(l1, l2);
  const lclip = mx.v;
  const dlclip = mx.da * (-a * dr) + mx.db * (-a * rc.dx * dr);
  let l = lclip;
  let dl = dlclip;
  let dual = false;
  if (clipC !== null && a < 0) {
    const l3 = -a * clipC;
    const mn = minG(lclip, l3);
    l = mn.v;
    dl = mn.da * dlclip;
    dual = lclip > l3;
  }
  return { l, dl, d: d.v, clipped: l2 > l1, dual };
}

/** Broadcasts one value per sequence to its tokens. */
export function seqToToken(b: RefBatch, perSeq: number[]): number[] {
  const out: number[] = new Array<number>(numTokens(b)).fill(0);
  for (let s = 0; s < numSeqs(b); s++) for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) out[t] = perSeq[s]!;
  return out;
}

export interface PpoParams {
  eps_low: number;
  eps_high: number;
  clip_c: number;
  loss_agg_mode: number;
  max_len: number;
}

export const PPO_DEFAULTS: PpoParams = { eps_low: 0.2, eps_high: 0.2, clip_c: 3, loss_agg_mode: 0, max_len: 3000 };

/** PPO with dual clip on a token-level advantage (length T, read at valid tokens only). */
export function ppoRef(b: RefBatch, advantage: number[], params: Partial<PpoParams> = {}): RefResult {
  const p: PpoParams = { ...PPO_DEFAULTS, ...params };
  checkBatch(b);
  const T = numTokens(b);
  if (advantage.length !== T) throw new Error(`advantage has length ${advantage.length}, expected T=${T}`);
  const w = aggWeights(b, p.loss_agg_mode, p.max_len);
  const l: number[] = new Array<number>(T).fill(0);
  const grad: number[] = new Array<number>(T).fill(0);
  let n = 0;
  let clipCount = 0;
  let dualCount = 0;
  let klSum = 0;
  for (let t = 0; t < T; t++) {
    if (b.mask[t] !== 1) continue;
    const k = ppoToken(advantage[t]!, b.logp[t]!, b.old_logp[t]!, p.eps_low, p.eps_high, p.clip_c);
    l[t] = k.l;
    grad[t] = w[t]! * k.dl;
    n++;
    if (k.clipped) clipCount++;
    if (k.dual) dualCount++;
    klSum += -k.d;
  }
  return {
    loss: aggValue(b, l, p.loss_agg_mode, p.max_len),
    metrics: {
      clip_frac: n > 0 ? clipCount / n : 0,
      dual_clip_frac: n > 0 ? dualCount / n : 0,
      ppo_kl: n > 0 ? klSum / n : 0,
    },
    grad_logp: grad,
  };
}

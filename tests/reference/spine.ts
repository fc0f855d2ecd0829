/**
 * SPINE reference (methods-pg.md §7, a reconstruction from the abstract), float64, loops.
 *
 * Extra input: entropy[t] = H_t (carries gradient). b.reward is the majority-vote pseudo-reward.
 *
 * tau: linear quantile (torch.quantile default: sorted s, pos = q (n-1), s[lo] + (s[hi] - s[lo]) (pos - lo))
 *      of H over the valid tokens of the batch (fork_per_seq = 0) or of the token's sequence (1).
 * fork_t = H_t >= tau.   n = #forks (norm_selected = 1) or #valid tokens (0);  D = max(n, 1).
 * A_i = GRPO advantage (unbiased std);  r = exp(clip(logp - old_logp, -20, 20))
 * l1 = -A r, l2 = -A clip(r, 1-eps_low, 1+eps_high), lclip = max(l1, l2), l3 = -A clip_c,
 * l_pg = A < 0 ? min(lclip, l3) : lclip
 * band_t = relu(h_low - H)^p + relu(H - h_high)^p          (p = band_pow)
 * k3: k = clip(ref_logp - logp, -20, 20), kl = clip(exp(k) - k - 1, -10, 10)
 * loss = sum_{forks} (l_pg + lambda band) / D + beta sum_{valid} kl / N     (N = #valid tokens)
 *
 * Hand-derived gradients:
 *   d/dlogp_t: [fork_t] dl_pg / D + beta dkl / N, with dr = r [-20 <= logp-old <= 20],
 *              dlclip = max-weights on (-A dr, -A [lo <= r <= hi] dr), dl_pg = (A < 0 ? min-weight of lclip : 1) dlclip,
 *              dkl = [-10 <= kl_raw <= 10] (exp(k) - 1) (-[-20 <= ref-logp <= 20]).
 *   d/dH_t:    [fork_t] lambda (-p relu(h_low - H)^(p-1) [H < h_low] + p relu(H - h_high)^(p-1) [H > h_high]) / D.
 * Metrics: fork_frac = #forks / N; clip_frac = mean over forks of [l2 > l1];
 *          band_frac = mean over forks of [H < h_low or H > h_high]; kl = sum kl / N (all 0 when empty).
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens, seqLengths } from './batch.js';
import { clipG, dualClipToken } from './ops.js';

export interface SpineBatch extends RefBatch {
  entropy: number[]; // [T]
}

export interface SpineParams {
  eps_low: number;
  eps_high: number;
  clip_c: number;
  adv_eps: number;
  q: number;
  fork_per_seq: number;
  lambda: number;
  h_low: number;
  h_high: number;
  band_pow: number;
  norm_selected: number;
  beta: number;
}

export const SPINE_DEFAULTS: SpineParams = {
  eps_low: 0.2,
  eps_high: 0.2,
  clip_c: 3,
  adv_eps: 1e-6,
  q: 0.8,
  fork_per_seq: 0,
  lambda: 0.01,
  h_low: 0.5,
  h_high: 2,
  band_pow: 1,
  norm_selected: 1,
  beta: 0,
};

export interface SpineResult extends RefResult {
  grad_entropy: number[];
}

/** Linear-interpolation quantile (numpy / torch default) of a non-empty list. */
export function quantileLinear(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const pos = Math.min(1, Math.max(0, q)) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/** The forking-token flags (false at masked tokens). */
export function spineForks(b: SpineBatch, q: number, perSeq: number): boolean[] {
  const T = numTokens(b);
  const fork = new Array<boolean>(T).fill(false);
  const validOf = (from: number, to: number) => {
    const v: number[] = [];
    for (let t = from; t < to; t++) if (b.mask[t] === 1) v.push(t);
    return v;
  };
  const mark = (ts: number[]) => {
    if (ts.length === 0) return;
    const tau = quantileLinear(
      ts.map((t) => b.entropy[t]!),
      q,
    );
    for (const t of ts) fork[t] = b.entropy[t]! >= tau;
  };
  if (perSeq > 0) for (let s = 0; s < numSeqs(b); s++) mark(validOf(b.offsets[s]!, b.offsets[s + 1]!));
  else mark(validOf(0, T));
  return fork;
}

export function spineRef(b: SpineBatch, params: Partial<SpineParams> = {}): SpineResult {
  const p: SpineParams = { ...SPINE_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const L = seqLengths(b);
  const A = groupAdvantages(b, b.reward, p.adv_eps);
  const fork = spineForks(b, p.q, p.fork_per_seq);
  let N = 0;
  for (let s = 0; s < S; s++) N += L[s]!;
  const nForks = fork.filter((f) => f).length;
  const D = Math.max(p.norm_selected > 0 ? nForks : N, 1);

  const gradLogp = new Array<number>(T).fill(0);
  const gradH = new Array<number>(T).fill(0);
  let forkSum = 0;
  let klSum = 0;
  let clipCount = 0;
  let bandCount = 0;
  const pw = p.band_pow;

  for (let s = 0; s < S; s++) {
    const a = A[s]!;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      // k3 KL anchor on every valid token
      const k = clipG(b.ref_logp[t]! - b.logp[t]!, -20, 20);
      const klc = clipG(Math.exp(k.v) - k.v - 1, -10, 10);
      klSum += klc.v;
      gradLogp[t] = (p.beta * klc.dx * (Math.exp(k.v) - 1) * -k.dx) / Math.max(N, 1);
      if (!fork[t]) continue;
      // clipped policy-gradient term
      const pt = dualClipToken(a, b.logp[t]!, b.old_logp[t]!, p);
      const lpg = pt.l;
      const dlpg = pt.dl;
      // entropy band (hinge or powered hinge)
      const H = b.entropy[t]!;
      const lowGap = Math.max(p.h_low - H, 0);
      const highGap = Math.max(H - p.h_high, 0);
      const band = lowGap ** pw + highGap ** pw;
      const dband =
        (p.h_low - H > 0 ? -pw * lowGap ** (pw - 1) : 0) + (H - p.h_high > 0 ? pw * highGap ** (pw - 1) : 0);
      forkSum += lpg + p.lambda * band;
      gradLogp[t] = gradLogp[t]! + dlpg / D;
      gradH[t] = (p.lambda * dband) / D;
      if (pt.clipped) clipCount++;
      if (H < p.h_low || H > p.h_high) bandCount++;
    }
  }

  return {
    loss: forkSum / D + (N > 0 ? (p.beta * klSum) / N : 0),
    metrics: {
      fork_frac: N > 0 ? nForks / N : 0,
      clip_frac: nForks > 0 ? clipCount / nForks : 0,
      band_frac: nForks > 0 ? bandCount / nForks : 0,
      kl: N > 0 ? klSum / N : 0,
    },
    grad_logp: gradLogp,
    grad_entropy: gradH,
  };
}

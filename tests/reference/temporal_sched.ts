/**
 * Temporal-scheduling reference (methods-pg.md §12; Jinghaoleven/RLVR-Schedule), float64, loops.
 *
 * Schedule value (step, total = the clock):
 *   min_step = floor(total min_ratio), max_step = floor(total max_ratio)
 *   p = clip((step - min_step) / max(max_step - min_step, 1), 0, 1)
 *   linear s = s0 (1 - p); sigmoid s = s0 (sig(p) - sig(1)) / (sig(0) - sig(1)), sig(x) = 1/(1+e^{8(x-0.5)});
 *   gamma s = (s0 (1 - p))^gamma_ratio
 * Kept tokens K per response (L valid tokens, q = 0-based index among them):
 *   tp (strategy 0):      q >= min(floor(L s), L - 1)
 *   forking (strategy 1): the ceil(L clip(1 - s, 0, 1)) valid tokens of largest entropy (ties: earlier first)
 *   entropy_adv (2):      every valid token; A' = A + s min(alpha H, |A| / kappa)
 * Token loss (verl vanilla): r = e^{clip(logp-old,-20,20)}, l1 = -A r, l2 = -A clip(r, 1-eps_low, 1+eps_high),
 *   lclip = max(l1, l2), l = A < 0 ? min(lclip, -A clip_c) : lclip;  loss = sum_K l / |K|.
 * Hand-derived gradient: dr = r [|d| <= 20]; dl1 = -A dr; dl2 = -A [lo <= r <= hi] dr;
 *   dlclip = max-weights on (dl1, dl2); dl = min-weight of lclip (if A < 0) times dlclip (l3 is constant);
 *   dloss/dlogp_t = dl_t / |K| for t in K, else 0.
 * Metrics: schedule_value = s, kept_frac = |K| / N (N valid tokens), clip_frac = mean_K [l2 > l1],
 *   dual_clip_frac = mean_K [A < 0 and l3 < lclip].
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens } from './batch.js';
import { dualClipToken } from './ops.js';

export interface TemporalBatch extends RefBatch {
  entropy: number[]; // [T]
}

export interface TemporalParams {
  s0: number;
  min_ratio: number;
  max_ratio: number;
  schedule: number;
  gamma_ratio: number;
  strategy: number;
  alpha: number;
  kappa: number;
  eps_low: number;
  eps_high: number;
  clip_c: number;
  adv_eps: number;
}

export const TEMPORAL_DEFAULTS: TemporalParams = {
  s0: 0.99,
  min_ratio: 0,
  max_ratio: 0.8,
  schedule: 0,
  gamma_ratio: 2,
  strategy: 0,
  alpha: 0.4,
  kappa: 2,
  eps_low: 0.2,
  eps_high: 0.28,
  clip_c: 3,
  adv_eps: 1e-6,
};

/** The schedule value s at a step (the code's _prefix_curriculum). */
export function scheduleValue(p: TemporalParams, step: number, total: number): number {
  const minStep = Math.floor(total * p.min_ratio);
  const maxStep = Math.floor(total * p.max_ratio);
  const progress = Math.min(Math.max((step - minStep) / Math.max(maxStep - minStep, 1), 0), 1);
  const linear = p.s0 * (1 - progress);
  if (p.schedule === 1) {
    const sig = (x: number) => 1 / (1 + Math.exp(8 * (x - 0.5)));
    return (p.s0 * (sig(progress) - sig(1))) / (sig(0) - sig(1));
  }
  if (p.schedule === 2) return Math.pow(linear, p.gamma_ratio);
  return linear;
}

/** 0/1 per token: whether the token is trained at this step. */
export function keptTokens(b: TemporalBatch, p: TemporalParams, s: number): number[] {
  const keep = new Array<number>(numTokens(b)).fill(0);
  for (let i = 0; i < numSeqs(b); i++) {
    const valid: number[] = [];
    for (let t = b.offsets[i]!; t < b.offsets[i + 1]!; t++) if (b.mask[t] === 1) valid.push(t);
    const L = valid.length;
    if (p.strategy === 0) {
      const prefix = Math.min(Math.floor(L * s), L - 1);
      valid.forEach((t, q) => (keep[t] = q >= prefix ? 1 : 0));
    } else if (p.strategy === 1) {
      const budget = Math.ceil(L * Math.min(Math.max(1 - s, 0), 1));
      const order = [...valid].sort((x, y) => b.entropy[y]! - b.entropy[x]! || x - y);
      order.slice(0, budget).forEach((t) => (keep[t] = 1));
    } else {
      valid.forEach((t) => (keep[t] = 1));
    }
  }
  return keep;
}

export function temporalRef(
  b: TemporalBatch,
  params: Partial<TemporalParams> = {},
  step = 0,
  totalSteps = 0,
): RefResult {
  const p: TemporalParams = { ...TEMPORAL_DEFAULTS, ...params };
  checkBatch(b);
  const T = numTokens(b);
  const s = scheduleValue(p, step, totalSteps);
  const keep = keptTokens(b, p, s);
  const A = groupAdvantages(b, b.reward, p.adv_eps);

  let nValid = 0;
  let nKept = 0;
  for (let t = 0; t < T; t++) {
    if (b.mask[t] === 1) nValid++;
    if (b.mask[t] === 1 && keep[t] === 1) nKept++;
  }
  const grad = new Array<number>(T).fill(0);
  let sum = 0;
  let clipCount = 0;
  let dualCount = 0;
  for (let i = 0; i < numSeqs(b); i++) {
    for (let t = b.offsets[i]!; t < b.offsets[i + 1]!; t++) {
      if (b.mask[t] !== 1 || keep[t] !== 1) continue;
      let a = A[i]!;
      if (p.strategy === 2) a += s * Math.min(p.alpha * b.entropy[t]!, Math.abs(A[i]!) / p.kappa);
      const pt = dualClipToken(a, b.logp[t]!, b.old_logp[t]!, p);
      const { l, dl } = pt;
      sum += l;
      grad[t] = dl / nKept;
      if (pt.clipped) clipCount++;
      if (pt.dualClipped) dualCount++;
    }
  }
  const km = (x: number) => (nKept > 0 ? x / nKept : 0);
  return {
    loss: km(sum),
    metrics: {
      schedule_value: s,
      kept_frac: nValid > 0 ? nKept / nValid : 0,
      clip_frac: km(clipCount),
      dual_clip_frac: km(dualCount),
    },
    grad_logp: grad,
  };
}

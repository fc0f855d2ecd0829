/**
 * DelTA reference (RUCBM/DelTA dp_actor.py compute_log_prob_h / update_policy; stdlib/delta.credo
 * header), float64, loops. The hidden-state part (centroids) is the host's: the per-token margins are
 * inputs.
 *
 *   R'_i  = DAPO overlong shaping of R_i (when overlong_buffer > 0); A_i = GRPO advantage of R'
 *   side  = + if A_i > 0, - if A_i < 0, 0 otherwise
 *   scale_+ = gamma_time sqrt(max(popvar{ margin_prev_t : t valid, side +}, 1e-8)); scale_- likewise with
 *             -margin_prev (the same variance)
 *   w_t   = lam_min + (lam_max - lam_min) sigmoid(+margin_t / scale_+)   (side +)
 *         = lam_min + (lam_max - lam_min) sigmoid(-margin_t / scale_-)   (side -)
 *         = lam_min                                                     (side 0)
 *   w~_t  = w_t N / max(sum_valid w, 1e-8);  A~_t = A_i w~_t
 *   token loss (verl vanilla with dual clip) on A~, token-mean over the N valid tokens.
 * Hand-derived gradient (w~ is a constant): dr = r [|d| <= 20]; dl1 = -A~ dr; dl2 = -A~ [lo <= r <= hi] dr;
 *   dlclip = max-weights; A~ < 0: times the min-weight of lclip against l3 = -A~ clip_c; / N.
 * Metrics: clip_frac = mean[l2 > l1], dual_clip_frac = mean[A~ < 0 and l3 < lclip],
 *   weight_pos_mean / weight_neg_mean = mean of w~ over the valid tokens of side + / side - (0 if none).
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens, seqLengths } from './batch.js';
import { dualClipToken } from './ops.js';

export interface DeltaBatch extends RefBatch {
  margin: number[]; // [T]
  margin_prev: number[]; // [T]
}

export interface DeltaParams {
  lam_min: number;
  lam_max: number;
  gamma_time: number;
  eps_low: number;
  eps_high: number;
  clip_c: number;
  adv_eps: number;
  overlong_buffer: number;
  max_len: number;
  overlong_penalty: number;
}

export const DELTA_DEFAULTS: DeltaParams = {
  lam_min: 0.8,
  lam_max: 1.2,
  gamma_time: 1,
  eps_low: 0.2,
  eps_high: 0.28,
  clip_c: 10,
  adv_eps: 1e-6,
  overlong_buffer: 4096,
  max_len: 20480,
  overlong_penalty: 1,
};

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** The normalised DelTA weight of every token (0 at masked tokens) and the sequence advantages. */
export function deltaWeights(b: DeltaBatch, params: Partial<DeltaParams> = {}): { w: number[]; A: number[] } {
  const p: DeltaParams = { ...DELTA_DEFAULTS, ...params };
  const S = numSeqs(b);
  const T = numTokens(b);
  const L = seqLengths(b);
  const shaped = b.reward.map((r, s) =>
    p.overlong_buffer > 0
      ? r + Math.min((-(L[s]! - (p.max_len - p.overlong_buffer)) / p.overlong_buffer) * p.overlong_penalty, 0)
      : r,
  );
  const A = groupAdvantages(b, shaped, p.adv_eps);
  const side = (s: number) => (A[s]! > 0 ? 1 : A[s]! < 0 ? -1 : 0);
  const scale = (sd: number) => {
    const xs: number[] = [];
    for (let s = 0; s < S; s++) {
      if (side(s) !== sd) continue;
      for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) if (b.mask[t] === 1) xs.push(sd * b.margin_prev[t]!);
    }
    const mean = xs.length ? xs.reduce((x, y) => x + y, 0) / xs.length : 0;
    const variance = xs.length ? xs.reduce((x, y) => x + (y - mean) * (y - mean), 0) / xs.length : 0;
    return p.gamma_time * Math.sqrt(Math.max(variance, 1e-8));
  };
  const scalePos = scale(1);
  const scaleNeg = scale(-1);
  const w = new Array<number>(T).fill(0);
  let total = 0;
  let n = 0;
  for (let s = 0; s < S; s++) {
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      const sd = side(s);
      w[t] =
        sd === 0
          ? p.lam_min
          : p.lam_min + (p.lam_max - p.lam_min) * sigmoid((sd * b.margin[t]!) / (sd > 0 ? scalePos : scaleNeg));
      total += w[t]!;
      n++;
    }
  }
  const norm = n / Math.max(total, 1e-8);
  return { w: w.map((x) => x * norm), A };
}

export function deltaRef(b: DeltaBatch, params: Partial<DeltaParams> = {}): RefResult {
  const p: DeltaParams = { ...DELTA_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const { w, A } = deltaWeights(b, p);
  let N = 0;
  for (let t = 0; t < T; t++) if (b.mask[t] === 1) N++;

  const grad = new Array<number>(T).fill(0);
  let sum = 0;
  let clipCount = 0;
  let dualCount = 0;
  const side = { pos: { sum: 0, n: 0 }, neg: { sum: 0, n: 0 } };
  for (let s = 0; s < S; s++) {
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      const a = A[s]! * w[t]!;
      const pt = dualClipToken(a, b.logp[t]!, b.old_logp[t]!, p);
      const { l, dl } = pt;
      sum += l;
      grad[t] = dl / N;
      if (pt.clipped) clipCount++;
      if (pt.dualClipped) dualCount++;
      if (A[s]! > 0) ((side.pos.sum += w[t]!), side.pos.n++);
      if (A[s]! < 0) ((side.neg.sum += w[t]!), side.neg.n++);
    }
  }
  const tm = (x: number) => (N > 0 ? x / N : 0);
  return {
    loss: tm(sum),
    metrics: {
      clip_frac: tm(clipCount),
      dual_clip_frac: tm(dualCount),
      weight_pos_mean: side.pos.n > 0 ? side.pos.sum / side.pos.n : 0,
      weight_neg_mean: side.neg.n > 0 ? side.neg.sum / side.neg.n : 0,
    },
    grad_logp: grad,
  };
}

/**
 * GPG reference (verl `gpg` estimator + loss, authors' TRL trainer; methods-pg.md §B.9), float64, loops.
 *
 *   B = S (all sequences), M = sequences in groups whose rewards are all equal (a group of one counts)
 *   alpha = 1                                   alpha_mode = 0
 *         = 1 / max(1 - M / max(B, 1), 0.05)    alpha_mode = 1 (paper)
 *         = max(B, 1) / max(#{i : R_i != 0}, 1) alpha_mode = 2 (verl)
 *   A_i  = alpha (R_i - mean_g R) / F,  F = std_g R (unbiased, 0 for a group of one) + adv_eps if std_norm > 0 else 1
 *   per valid token: l = -A_i logp
 *   loss = aggregation of l by loss_agg_mode (ppo.ts)
 *
 * Hand-derived gradient: dl/dlogp_t = -A_i;  dloss/dlogp_t = weight_t * (-A_i).
 * Metric: alpha.
 */
import { type RefBatch, type RefResult, checkBatch, numSeqs, numTokens } from './batch.js';
import { centredRewards } from './dr_grpo.js';
import { aggValue, aggWeights } from './ppo.js';

export interface GpgParams {
  alpha_mode: number;
  std_norm: number;
  adv_eps: number;
  loss_agg_mode: number;
  max_len: number;
}

export const GPG_DEFAULTS: GpgParams = { alpha_mode: 1, std_norm: 0, adv_eps: 1e-4, loss_agg_mode: 0, max_len: 3000 };

export function gpgAlpha(b: RefBatch, mode: number): number {
  const S = numSeqs(b);
  const B = Math.max(S, 1);
  if (mode === 1) {
    let M = 0;
    for (let g = 0; g < b.numGroups; g++) {
      let lo = Infinity;
      let hi = -Infinity;
      let size = 0;
      for (let s = 0; s < S; s++) {
        if (b.groupOf[s] !== g) continue;
        lo = Math.min(lo, b.reward[s]!);
        hi = Math.max(hi, b.reward[s]!);
        size++;
      }
      if (size > 0 && lo === hi) M += size;
    }
    return 1 / Math.max(1 - M / B, 0.05);
  }
  if (mode === 2) {
    let nonzero = 0;
    for (let s = 0; s < S; s++) if (b.reward[s] !== 0) nonzero++;
    return B / Math.max(nonzero, 1);
  }
  return 1;
}

export function gpgRef(b: RefBatch, params: Partial<GpgParams> = {}): RefResult & { advantage: number[] } {
  const p: GpgParams = { ...GPG_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const alpha = gpgAlpha(b, p.alpha_mode);
  const centred = centredRewards(b);
  // group std (unbiased), only used when std_norm > 0
  const std: number[] = [];
  for (let g = 0; g < b.numGroups; g++) {
    const xs: number[] = [];
    for (let s = 0; s < S; s++) if (b.groupOf[s] === g) xs.push(b.reward[s]!);
    const m = xs.reduce((u, v) => u + v, 0) / Math.max(xs.length, 1);
    const ss = xs.reduce((u, v) => u + (v - m) * (v - m), 0);
    std.push(xs.length > 1 ? Math.sqrt(ss / (xs.length - 1)) : 0);
  }
  const A = centred.map((c, s) => (alpha * c) / (p.std_norm > 0 ? std[b.groupOf[s]!]! + p.adv_eps : 1));
  const w = aggWeights(b, p.loss_agg_mode, p.max_len);
  const l: number[] = new Array<number>(T).fill(0);
  const grad: number[] = new Array<number>(T).fill(0);
  for (let s = 0; s < S; s++) {
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      l[t] = -A[s]! * b.logp[t]!;
      grad[t] = w[t]! * -A[s]!;
    }
  }
  return { loss: aggValue(b, l, p.loss_agg_mode, p.max_len), metrics: { alpha }, grad_logp: grad, advantage: A };
}

/**
 * CISPO reference (verl `cispo`, methods-pg.md §B.8), float64, loops.
 *
 *   A_i  = GRPO advantage (batch.ts groupAdvantages)
 *   per valid token: r = exp(clip(logp - old_logp, -20, 20)), w = clip(r, 1-eps_low, 1+eps_high) (a constant
 *     for the gradient), l = -w A logp
 *   loss = aggregation of l by loss_agg_mode (ppo.ts aggValue / aggWeights)
 *
 * Hand-derived gradient: dl/dlogp_t = -w_t A_i (w carries no gradient); dloss/dlogp_t = weight_t * dl_t.
 * Metrics: clip_frac = token-mean[r != clip(r)], ppo_kl = token-mean(-d).
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens } from './batch.js';
import { aggValue, aggWeights } from './ppo.js';

export interface CispoParams {
  eps_low: number;
  eps_high: number;
  adv_eps: number;
  loss_agg_mode: number;
  max_len: number;
}

export const CISPO_DEFAULTS: CispoParams = {
  eps_low: 10,
  eps_high: 0.2,
  adv_eps: 1e-6,
  loss_agg_mode: 0,
  max_len: 3000,
};

export function cispoRef(b: RefBatch, params: Partial<CispoParams> = {}): RefResult & { advantage: number[] } {
  const p: CispoParams = { ...CISPO_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const A = groupAdvantages(b, b.reward, p.adv_eps);
  const wAgg = aggWeights(b, p.loss_agg_mode, p.max_len);
  const l: number[] = new Array<number>(T).fill(0);
  const grad: number[] = new Array<number>(T).fill(0);
  let n = 0;
  let clipCount = 0;
  let klSum = 0;
  for (let s = 0; s < S; s++) {
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      const d = Math.min(Math.max(b.logp[t]! - b.old_logp[t]!, -20), 20);
      const r = Math.exp(d);
      const w = Math.min(Math.max(r, 1 - p.eps_low), 1 + p.eps_high);
      l[t] = -w * A[s]! * b.logp[t]!;
      grad[t] = wAgg[t]! * (-w * A[s]!);
      n++;
      if (r !== w) clipCount++;
      klSum += -d;
    }
  }
  return {
    loss: aggValue(b, l, p.loss_agg_mode, p.max_len),
    metrics: { clip_frac: n > 0 ? clipCount / n : 0, ppo_kl: n > 0 ? klSum / n : 0 },
    grad_logp: grad,
    advantage: A,
  };
}

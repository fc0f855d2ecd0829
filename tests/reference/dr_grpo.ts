/**
 * Dr. GRPO reference (methods-pg.md §B.4; OAT masked_sum with a constant normaliser), float64, loops.
 *
 *   A_i  = R_i - mean_g R                       (mean over all sequences of the group; 0 for a group of one)
 *   per valid token: l = max(-A r, -A clip(r, 1-eps_low, 1+eps_high)),  r = exp(clip(logp-old_logp, -20, 20))
 *   loss = sum_{valid t} l_t / (max_len * D),   D = max(S, 1) if divide_by_seqs > 0 else 1   (S = all sequences)
 *
 * Hand-derived gradient: dl as in ppo.ts without dual clip; dloss/dlogp_t = dl_t / (max_len * D).
 * Metrics: clip_frac = token-mean[l2 > l1], ppo_kl = token-mean(-d).
 */
import { type RefBatch, type RefResult, checkBatch, numSeqs, numTokens } from './batch.js';
import { ppoToken } from './ppo.js';

export interface DrGrpoParams {
  eps_low: number;
  eps_high: number;
  max_len: number;
  divide_by_seqs: number;
}

export const DR_GRPO_DEFAULTS: DrGrpoParams = { eps_low: 0.2, eps_high: 0.2, max_len: 3000, divide_by_seqs: 1 };

/** A_i = R_i - mean of the rewards of its group. */
export function centredRewards(b: RefBatch, rewards: number[] = b.reward): number[] {
  const S = numSeqs(b);
  const sum: number[] = new Array<number>(b.numGroups).fill(0);
  const cnt: number[] = new Array<number>(b.numGroups).fill(0);
  for (let s = 0; s < S; s++) {
    sum[b.groupOf[s]!] += rewards[s]!;
    cnt[b.groupOf[s]!]++;
  }
  const out: number[] = [];
  for (let s = 0; s < S; s++) {
    const g = b.groupOf[s]!;
    out.push(rewards[s]! - sum[g]! / Math.max(cnt[g]!, 1));
  }
  return out;
}

export function drGrpoRef(b: RefBatch, params: Partial<DrGrpoParams> = {}): RefResult & { advantage: number[] } {
  const p: DrGrpoParams = { ...DR_GRPO_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const A = centredRewards(b);
  const denom = p.max_len * (p.divide_by_seqs > 0 ? Math.max(S, 1) : 1);
  const grad: number[] = new Array<number>(T).fill(0);
  let total = 0;
  let n = 0;
  let clipCount = 0;
  let klSum = 0;
  for (let s = 0; s < S; s++) {
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      const k = ppoToken(A[s]!, b.logp[t]!, b.old_logp[t]!, p.eps_low, p.eps_high, null);
      total += k.l;
      grad[t] = k.dl / denom;
      n++;
      if (k.clipped) clipCount++;
      klSum += -k.d;
    }
  }
  return {
    loss: total / denom,
    metrics: { clip_frac: n > 0 ? clipCount / n : 0, ppo_kl: n > 0 ? klSum / n : 0 },
    grad_logp: grad,
    advantage: A,
  };
}

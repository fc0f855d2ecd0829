/**
 * RLOO reference (verl `rloo` estimator + `vanilla` PPO loss; methods-pg.md §0.2, §B.10), float64, loops.
 *
 *   A_i = (R_i - mean_g R) * G / (G - 1)  (= R_i - mean of the other rewards of the group), 0 when G = 1
 *   then PPO with dual clip on A_i broadcast to the tokens of sequence i (ppo.ts ppoRef, same params).
 */
import { type RefBatch, type RefResult, numSeqs } from './batch.js';
import { centredRewards } from './dr_grpo.js';
import { type PpoParams, PPO_DEFAULTS, ppoRef, seqToToken } from './ppo.js';

export type RlooParams = PpoParams;
export const RLOO_DEFAULTS: RlooParams = { ...PPO_DEFAULTS };

export function rlooAdvantages(b: RefBatch): number[] {
  const S = numSeqs(b);
  const G: number[] = new Array<number>(b.numGroups).fill(0);
  for (let s = 0; s < S; s++) G[b.groupOf[s]!]++;
  const c = centredRewards(b);
  return c.map((x, s) => {
    const g = G[b.groupOf[s]!]!;
    return g > 1 ? (x * g) / (g - 1) : 0;
  });
}

export function rlooRef(b: RefBatch, params: Partial<RlooParams> = {}): RefResult & { advantage: number[] } {
  const A = rlooAdvantages(b);
  return { ...ppoRef(b, seqToToken(b, A), { ...RLOO_DEFAULTS, ...params }), advantage: A };
}

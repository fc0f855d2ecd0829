/**
 * Random batches for the non-LM-action objectives (unmask_policy, cacovid; docs/batch.md): the
 * generic batches of src/equiv/random-batches.ts with the behaviour policy drawn near the current
 * one (a logit or log-prob perturbed by a small amount, or drawn independently), and rewards made
 * equal over the views of a response when the program declares `response`.
 */
import fc from 'fast-check';
import type { RaggedBatch } from '../../core/batch/batch.js';
import type { Objective } from '../../src/objective.js';
import { arbBatchFor } from '../../src/equiv/random-batches.js';

/** `old` becomes `cur` + scale·noise (scale 0: on-policy), or stays independent (scale −1). */
export function arbActions(objective: Objective, cur: string, old: string): fc.Arbitrary<RaggedBatch> {
  return arbBatchFor(objective.program, objective.inputs).chain((b) =>
    fc
      .record({
        scale: fc.constantFrom(-1, 0, 0.05, 0.3, 1),
        noise: fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: b.numTokens, maxLength: b.numTokens }),
        equalRewards: fc.boolean(),
      })
      .map(({ scale, noise, equalRewards }) => {
        const tensors = new Map(b.tensors);
        if (scale >= 0) {
          const c = b.tensors.get(cur)!;
          const data = Float64Array.from(c.data, (x, t) => Math.fround(x + (scale * noise[t]!) / 1000));
          tensors.set(old, { ...b.tensors.get(old)!, data });
        }
        const response = b.tensors.get('response');
        const reward = b.tensors.get('reward');
        if (equalRewards && response && reward) {
          const first = new Map<string, number>();
          const data = Float64Array.from(reward.data, (r, s) => {
            const key = `${b.groupOf[s]}:${response.data[s]}`;
            if (!first.has(key)) first.set(key, r);
            return first.get(key)!;
          });
          tensors.set('reward', { ...reward, data });
        }
        return { ...b, tensors };
      }),
  );
}

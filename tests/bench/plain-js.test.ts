/** The bench's plain-JS rows time correct loops: they agree with the interpreter on dapo and dapo_logits. */
import { describe, expect, it } from 'vitest';
import { plainDapo, plainDapoLogits } from '../../bench/plain-js.js';
import { syntheticBatch } from '../../runtime/batch/synthetic.js';
import { compile } from '../../src/objective.js';

describe('bench/plain-js.ts', () => {
  it('gives dapo’s loss and gradient', () => {
    const dapo = compile('dapo');
    for (const seed of [1, 2, 3]) {
      const batch = syntheticBatch({ inputs: dapo.inputs, maskName: dapo.maskName, seed, tokens: 3000, groupSize: 4 });
      const want = dapo.run(batch);
      const got = plainDapo(batch);
      expect(got.loss).toBeCloseTo(want.loss, 10);
      const g = want.grads.logp.data;
      for (let t = 0; t < g.length; t++) expect(got.grad[t]).toBeCloseTo(g[t], 12);
    }
  });

  it('gives dapo_logits’s loss and gradient w.r.t. the logits, entropy bonus included', () => {
    const obj = compile('dapo_logits');
    for (const seed of [1, 2]) {
      const batch = syntheticBatch({
        inputs: obj.inputs,
        maskName: obj.maskName,
        seed,
        tokens: 300,
        groupSize: 4,
        vocabSize: 37,
      });
      const want = obj.run(batch, { params: { entropy_coeff: 0.05 } });
      const got = plainDapoLogits(batch, 0.05);
      expect(got.loss).toBeCloseTo(want.loss, 10);
      const g = want.grads.logits.data;
      for (let i = 0; i < g.length; i++) expect(got.grad[i]).toBeCloseTo(g[i], 12);
    }
  });
});

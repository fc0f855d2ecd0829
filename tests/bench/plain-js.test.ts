/** The bench's plain-JS row times a correct loop: it agrees with the interpreter on dapo. */
import { describe, expect, it } from 'vitest';
import { plainDapo } from '../../bench/plain-js.js';
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
});

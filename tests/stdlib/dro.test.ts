/** stdlib/dro.credo (verl dro) against tests/reference/dro.ts, FD, special cases. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { droRef } from '../reference/dro.js';
import { values } from '../reference/family.js';
import { withTensor } from './verl-losses-test-helpers.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const dro = compile('dro');
const ppo = compile('ppo');
const params = fc.record({
  beta: fc.constantFrom(0.05, 0, 1),
  loss_agg_mode: fc.constantFrom(0, 1, 2, 3, 4, 5, 7),
  max_len: fc.constantFrom(3000, 6),
});

describe('dro equals its reference', () => {
  itAgreesWithFamilyRef(dro, droRef, params, { numRuns: 200 });
  itHasFdGradients(dro, droRef, params);
});

describe('dro special cases', () => {
  it("verl's unit-test example: token-mean of -(logp A - β/2 (logp - old)²) over the valid tokens", () => {
    const b0 = fc
      .sample(arbFor(dro), { numRuns: 200, seed: 4 })
      .find((x) => x.numTokens >= 3 && x.mask.some((m) => m))!;
    const lp = values(b0, 'logp');
    const old = values(b0, 'old_logp');
    const A = values(b0, 'advantage');
    let s = 0;
    let n = 0;
    lp.forEach((x, t) => {
      if (b0.mask[t]) [s, n] = [s - (x * A[t]! - 0.5 * 0.05 * (x - old[t]!) ** 2), n + 1];
    });
    expect(close(dro.run(b0).loss, s / n)).toBe(true);
  });

  it('on-policy: REINFORCE gradient -A × aggregation weight for every beta (= ppo on-policy)', () => {
    fc.assert(
      fc.property(arbFor(dro), params, (b0, p) => {
        const b = withTensor(b0, 'old_logp', values(b0, 'logp'));
        const a = dro.run(b, { params: p });
        const c = ppo.run(b, { params: { loss_agg_mode: p.loss_agg_mode, max_len: p.max_len } });
        expectVecClose(a.grads.logp!.data, Array.from(c.grads.logp!.data), 'grad');
      }),
      { numRuns: 100 },
    );
  });
});

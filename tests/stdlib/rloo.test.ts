/**
 * stdlib/rloo.credo (leave-one-out advantages + verl `vanilla` PPO loss) against
 * tests/reference/rloo.ts, and its single-method special cases (the equivalence with ppo of
 * Appendix A is in baselines-special-cases.test.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { toRagged } from '../helpers/batches.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { centredRewards } from '../reference/dr_grpo.js';
import { aggWeights, seqToToken } from '../reference/ppo.js';
import { rlooRef } from '../reference/rloo.js';
import { close, expectFdAgreement, itAgreesWithReference, expectReinforceGrad } from './baselines-helpers.js';

const rloo = compile('rloo');

const arbParams = fc.record({
  eps_low: fc.constantFrom(0.2, 0.1),
  eps_high: fc.constantFrom(0.2, 0.28),
  clip_c: fc.constantFrom(3, 1.5, 1e30),
  loss_agg_mode: fc.constantFrom(0, 1, 2, 3, 4, 5),
  max_len: fc.constantFrom(3000, 5),
});

describe('rloo equals its reference', () => {
  itAgreesWithReference(rloo, rlooRef, arbParams);

  it('the reference gradient matches finite differences of the reference loss', () => {
    expectFdAgreement(fc.tuple(arbRefBatch(), arbParams), ([b, p]) => [b, (x) => rlooRef(x, p)]);
  });
});

describe('rloo special cases', () => {
  it('the advantage is R_i minus the mean of the other rewards of its group (0 for a group of one)', () => {
    fc.assert(
      fc.property(arbRefBatch(), (b) => {
        const got = rloo.run(toRagged(b)).exports.advantage!.data;
        const S = b.offsets.length - 1;
        for (let i = 0; i < S; i++) {
          const others = b.reward.filter((_, j) => j !== i && b.groupOf[j] === b.groupOf[i]);
          const want = others.length > 0 ? b.reward[i]! - others.reduce((u, v) => u + v, 0) / others.length : 0;
          expect(close(got[i]!, want), `A[${i}] ${got[i]} vs ${want}`).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('the advantage is G/(G-1) times the Dr.GRPO advantage R_i - mean_g R', () => {
    fc.assert(
      fc.property(arbRefBatch(), (b) => {
        const got = rloo.run(toRagged(b)).exports.advantage!.data;
        const c = centredRewards(b);
        b.groupOf.forEach((g, i) => {
          const G = b.groupOf.filter((h) => h === g).length;
          expect(close(got[i]!, G > 1 ? (c[i]! * G) / (G - 1) : 0)).toBe(true);
        });
      }),
      { numRuns: 100 },
    );
  });

  it('on-policy: REINFORCE with the leave-one-out baseline, gradient -A_i w_t (the paper form is mode 2, the sequence sum)', () => {
    fc.assert(
      fc.property(arbRefBatch({ onPolicy: true }), fc.constantFrom(0, 1, 2, 3, 4, 5), (b, mode) => {
        const got = rloo.run(toRagged(b), { params: { loss_agg_mode: mode } });
        expectReinforceGrad(got, b, seqToToken(b, rlooRef(b).advantage), aggWeights(b, mode, 3000));
      }),
      { numRuns: 200 },
    );
  });
});

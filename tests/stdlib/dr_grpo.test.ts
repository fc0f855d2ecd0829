/**
 * stdlib/dr_grpo.credo (Dr. GRPO: centred advantages, PPO-clip, constant-normaliser token sum with the
 * OAT 1/B or the verl form) against tests/reference/dr_grpo.ts, and its special cases (the
 * Appendix A equivalence with ppo is in baselines-special-cases.test.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { toRagged } from '../helpers/batches.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { drGrpoRef } from '../reference/dr_grpo.js';
import { seqToToken } from '../reference/ppo.js';
import { close, expectFdAgreement, itAgreesWithReference, expectReinforceGrad } from './baselines-helpers.js';

const drGrpo = compile('dr_grpo');

const arbParams = fc.record({
  eps_low: fc.constantFrom(0.2, 0.1),
  eps_high: fc.constantFrom(0.2, 0.28),
  max_len: fc.constantFrom(3000, 7, 1),
  divide_by_seqs: fc.constantFrom(1, 0),
});

describe('dr_grpo equals its reference', () => {
  itAgreesWithReference(drGrpo, drGrpoRef, arbParams, 'with random params (OAT and verl normalisers)');

  it('the reference gradient matches finite differences of the reference loss', () => {
    expectFdAgreement(fc.tuple(arbRefBatch(), arbParams), ([b, p]) => [b, (x) => drGrpoRef(x, { ...p, max_len: 1 })]);
  });
});

describe('dr_grpo special cases', () => {
  it('divide_by_seqs = 1 (OAT) is divide_by_seqs = 0 (verl) divided by the number of sequences', () => {
    fc.assert(
      fc.property(arbRefBatch({ minGroups: 1 }), (b) => {
        const oat = drGrpo.run(toRagged(b));
        const verl = drGrpo.run(toRagged(b), { params: { divide_by_seqs: 0 } });
        const S = b.offsets.length - 1;
        expect(close(oat.loss * S, verl.loss)).toBe(true);
        oat.grads.logp!.data.forEach((g, t) => expect(close(g * S, verl.grads.logp!.data[t]!)).toBe(true));
      }),
      { numRuns: 200 },
    );
  });

  it('on-policy: REINFORCE gradient -A_i / (max_len · B) on every valid token, whatever the length', () => {
    fc.assert(
      fc.property(arbRefBatch({ onPolicy: true }), fc.constantFrom(0, 1), (b, divide) => {
        const got = drGrpo.run(toRagged(b), { params: { divide_by_seqs: divide } });
        const S = b.offsets.length - 1;
        const w = 1 / (3000 * (divide ? Math.max(S, 1) : 1));
        const A = seqToToken(b, drGrpoRef(b).advantage);
        expectReinforceGrad(
          got,
          b,
          A,
          A.map(() => w),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('the advantage is not divided by the group std: scaling the rewards scales the loss', () => {
    fc.assert(
      fc.property(arbRefBatch(), (b) => {
        const base = drGrpo.run(toRagged(b));
        const scaled = drGrpo.run(toRagged({ ...b, reward: b.reward.map((r) => 3 * r) }));
        expect(close(scaled.loss, 3 * base.loss)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

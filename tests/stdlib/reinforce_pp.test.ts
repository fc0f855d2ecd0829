/**
 * stdlib/reinforce_pp.credo (REINFORCE++-baseline: group-mean baseline, batch token whitening, verl
 * `vanilla` PPO loss) against tests/reference/reinforce_pp.ts, and its single-method special cases
 * (the equivalence with ppo of Appendix A is in baselines-special-cases.test.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { toRagged } from '../helpers/batches.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { seqLengths, type RefBatch } from '../reference/batch.js';
import { aggWeights, seqToToken } from '../reference/ppo.js';
import { reinforcePpRef } from '../reference/reinforce_pp.js';
import {
  close,
  expectFdAgreement,
  itAgreesWithReference,
  expectReinforceGrad,
  expectSameRun,
} from './baselines-helpers.js';

const rpp = compile('reinforce_pp');

const arbParams = fc.record({
  eps_low: fc.constantFrom(0.2, 0.1),
  eps_high: fc.constantFrom(0.2, 0.28),
  clip_c: fc.constantFrom(3, 1.5, 1e30),
  whiten_eps: fc.constantFrom(1e-8, 0.5),
  loss_agg_mode: fc.constantFrom(0, 1, 2, 3, 4, 5),
  max_len: fc.constantFrom(3000, 5),
});

/** Token-level mean and unbiased variance of a per-sequence value broadcast to the valid tokens. */
function tokenStats(b: RefBatch, perSeq: ArrayLike<number>): { mean: number; varUnbiased: number; n: number } {
  const xs: number[] = [];
  for (let s = 0; s < b.offsets.length - 1; s++)
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) if (b.mask[t] === 1) xs.push(perSeq[s]!);
  const n = xs.length;
  const mean = xs.reduce((u, v) => u + v, 0) / Math.max(n, 1);
  const varUnbiased = xs.reduce((u, v) => u + (v - mean) ** 2, 0) / Math.max(n - 1, 1);
  return { mean, varUnbiased, n };
}

describe('reinforce_pp equals its reference', () => {
  itAgreesWithReference(rpp, reinforcePpRef, arbParams);

  it('the reference gradient matches finite differences of the reference loss', () => {
    expectFdAgreement(fc.tuple(arbRefBatch(), arbParams), ([b, p]) => [b, (x) => reinforcePpRef(x, p)]);
  });
});

describe('reinforce_pp special cases', () => {
  it('the whitened advantage has token-mean 0 and unbiased token variance var / (var + whiten_eps)', () => {
    fc.assert(
      fc.property(arbRefBatch({ minGroups: 1 }), fc.constantFrom(1e-8, 0.5), (b, eps) => {
        const A = rpp.run(toRagged(b), { params: { whiten_eps: eps } }).exports.advantage!.data;
        // variance of the unwhitened a_i = R_i - mean_g R over tokens
        const a = b.reward.map((r, s) => {
          const rs = b.reward.filter((_, j) => b.groupOf[j] === b.groupOf[s]);
          return r - rs.reduce((u, v) => u + v, 0) / rs.length;
        });
        const raw = tokenStats(b, a);
        const white = tokenStats(b, A);
        expect(Math.abs(white.mean)).toBeLessThanOrEqual(1e-9 * (1 + Math.max(...Array.from(A, Math.abs))));
        if (raw.n >= 2) expect(close(white.varUnbiased, raw.varUnbiased / (raw.varUnbiased + eps), 1e-8)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('on-policy: REINFORCE with the whitened advantage, gradient -A_i w_t', () => {
    fc.assert(
      fc.property(arbRefBatch({ onPolicy: true }), fc.constantFrom(0, 1, 2, 3, 4, 5), (b, mode) => {
        const got = rpp.run(toRagged(b), { params: { loss_agg_mode: mode } });
        expectReinforceGrad(got, b, seqToToken(b, Array.from(got.exports.advantage!.data)), aggWeights(b, mode, 3000));
      }),
      { numRuns: 200 },
    );
  });

  it('adding a constant to the rewards of a group changes nothing', () => {
    fc.assert(
      fc.property(arbRefBatch({ minGroups: 1 }), fc.nat(), fc.constantFrom(-3, 0.5, 7), (b, gi, c) => {
        const g = gi % b.numGroups;
        const shifted = { ...b, reward: b.reward.map((r, s) => (b.groupOf[s] === g ? r + c : r)) };
        // loss and gradient only: an advantage that is 0 up to rounding may flip sign, which moves a clip fraction by 1/N
        expectSameRun(rpp.run(toRagged(shifted)), rpp.run(toRagged(b)), [], 1e-7);
      }),
      { numRuns: 200 },
    );
  });

  it('with whiten_eps = 0, scaling all rewards by a positive factor changes nothing', () => {
    const informative = arbRefBatch({ minGroups: 1 }).filter((b) => {
      const L = seqLengths(b);
      const A = reinforcePpRef(b, { whiten_eps: 0 }).advantage;
      return A.some((x, s) => L[s]! > 0 && Number.isFinite(x) && x !== 0);
    });
    fc.assert(
      fc.property(informative, fc.constantFrom(0.25, 3, 40), (b, k) => {
        const scaled = { ...b, reward: b.reward.map((r) => k * r) };
        expectSameRun(
          rpp.run(toRagged(scaled), { params: { whiten_eps: 0 } }),
          rpp.run(toRagged(b), { params: { whiten_eps: 0 } }),
          [],
          1e-7,
        );
      }),
      { numRuns: 150 },
    );
  });
});

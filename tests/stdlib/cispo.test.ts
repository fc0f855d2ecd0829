/**
 * stdlib/cispo.credo (verl `cispo`: -sg(clip(r)) A logp) against tests/reference/cispo.ts, and its
 * single-method special cases (the Appendix A items on-policy / eps → ∞ are also checked in
 * baselines-special-cases.test.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { toRagged } from '../helpers/batches.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { cispoRef } from '../reference/cispo.js';
import { aggWeights, seqToToken } from '../reference/ppo.js';
import { expectFdAgreement, itAgreesWithReference, expectReinforceGrad } from './baselines-helpers.js';

const cispo = compile('cispo');

const arbParams = fc.record({
  eps_low: fc.constantFrom(10, 0.2, 0.05),
  eps_high: fc.constantFrom(0.2, 0.28, 2),
  adv_eps: fc.constantFrom(1e-6, 0.1),
  loss_agg_mode: fc.constantFrom(0, 1, 2, 3, 4, 5, 9),
  max_len: fc.constantFrom(3000, 4),
});

describe('cispo equals its reference', () => {
  itAgreesWithReference(cispo, cispoRef, arbParams, 'with random params (every aggregation mode)');

  it('the reference gradient matches finite differences of the reference loss with the IS weight held fixed', () => {
    // w = sg(clip(r)): moving old_logp together with logp keeps r, hence w, constant, so the finite
    // difference of the loss value is the stop-gradient derivative
    expectFdAgreement(fc.tuple(arbRefBatch(), arbParams), ([b, p]) => [
      b,
      (x) => cispoRef({ ...x, old_logp: x.old_logp.map((o, t) => o + (x.logp[t]! - b.logp[t]!)) }, p),
    ]);
  });
});

describe('cispo special cases', () => {
  it('every valid token keeps a gradient -w A_i / N, also where PPO would clip (w = clipped ratio, never 0)', () => {
    fc.assert(
      fc.property(arbRefBatch(), (b) => {
        const got = cispo.run(toRagged(b));
        const A = seqToToken(b, cispoRef(b).advantage);
        const w = b.logp.map((lp, t) =>
          Math.min(Math.max(Math.exp(Math.min(Math.max(lp - b.old_logp[t]!, -20), 20)), 1 - 10), 1.2),
        );
        const N = b.mask.reduce((u, v) => u + v, 0);
        expectReinforceGrad(
          got,
          b,
          A.map((a, t) => a * w[t]!),
          b.mask.map(() => 1 / N),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('on-policy: REINFORCE with the chosen aggregation (w = 1)', () => {
    fc.assert(
      fc.property(arbRefBatch({ onPolicy: true }), fc.constantFrom(0, 1, 2, 3, 4, 5), (b, mode) => {
        const got = cispo.run(toRagged(b), { params: { loss_agg_mode: mode } });
        expectReinforceGrad(got, b, seqToToken(b, cispoRef(b).advantage), aggWeights(b, mode, 3000));
        expect(got.metrics.clip_frac).toBe(0);
      }),
      { numRuns: 200 },
    );
  });
});

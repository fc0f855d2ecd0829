/**
 * stdlib/ppo.credo (verl `vanilla`: token PPO-clip + dual clip, verl aggregation modes) against the
 * hand-written reference tests/reference/ppo.ts, and its special cases.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { toRagged } from '../helpers/batches.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { aggValue, aggWeights, ppoRef, ppoToken } from '../reference/ppo.js';
import {
  arbBatchWithAdvantage,
  close,
  expectFdAgreement,
  expectRef,
  expectReinforceGrad,
  withInput,
} from './baselines-helpers.js';

const ppo = compile('ppo');
const run = (b: Parameters<typeof toRagged>[0], adv: number[], params: Record<string, number> = {}) =>
  ppo.run(withInput(toRagged(b), 'advantage', 'token', adv), { params });

const arbParams = fc.record({
  eps_low: fc.constantFrom(0.2, 0.1, 0.3),
  eps_high: fc.constantFrom(0.2, 0.28, 0.5),
  clip_c: fc.constantFrom(3, 1.5, 10, 1e30),
  loss_agg_mode: fc.constantFrom(0, 1, 2, 3, 4, 5, 7),
  max_len: fc.constantFrom(3000, 5),
});

describe('ppo equals its reference', () => {
  it('with the default params', () => {
    fc.assert(
      fc.property(arbBatchWithAdvantage(arbRefBatch()), ({ b, adv }) => {
        expectRef(run(b, adv), ppoRef(b, adv));
      }),
      { numRuns: 300 },
    );
  });

  it('with random params (every aggregation mode, dual clip on and off)', () => {
    fc.assert(
      fc.property(arbBatchWithAdvantage(arbRefBatch()), arbParams, ({ b, adv }, p) => {
        expectRef(run(b, adv, p), ppoRef(b, adv, p));
      }),
      { numRuns: 400 },
    );
  });

  it('the reference gradient matches finite differences of the reference loss', () => {
    expectFdAgreement(fc.tuple(arbBatchWithAdvantage(arbRefBatch()), arbParams), ([{ b, adv }, p]) => [
      b,
      (x) => ppoRef(x, adv, p),
    ]);
  });
});

describe('ppo special cases', () => {
  it('clip_c → ∞ (1e30) is plain PPO-clip: max(-A r, -A clip(r)) with no cap, dual_clip_frac = 0', () => {
    fc.assert(
      fc.property(arbBatchWithAdvantage(arbRefBatch()), fc.constantFrom(0, 1, 2, 3, 4, 5), ({ b, adv }, mode) => {
        const got = run(b, adv, { clip_c: 1e30, loss_agg_mode: mode });
        const l = b.mask.map((m, t) => (m === 1 ? ppoToken(adv[t]!, b.logp[t]!, b.old_logp[t]!, 0.2, 0.2, null).l : 0));
        expect(close(got.loss, aggValue(b, l, mode, 3000)), `loss ${got.loss}`).toBe(true);
        expect(got.metrics.dual_clip_frac).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('the dual clip caps the loss of a negative-advantage token at |A| clip_c', () => {
    // one token, A = -1, r = e^2 ≈ 7.39 > clip_c = 3: plain clip gives 7.39, dual clip 3 with no gradient
    const b = {
      offsets: [0, 1],
      groupOf: [0],
      numGroups: 1,
      mask: [1],
      logp: [-1],
      old_logp: [-3],
      ref_logp: [-1],
      reward: [0],
    };
    const dual = run(b, [-1]);
    expect(dual.loss).toBe(3);
    expect(dual.grads.logp!.data[0]).toBe(0);
    expect(dual.metrics.dual_clip_frac).toBe(1);
    const plain = run(b, [-1], { clip_c: 1e30 });
    expect(close(plain.loss, Math.exp(2))).toBe(true);
  });

  it('on-policy: REINFORCE gradient -A_t w_t with the weight of each aggregation mode', () => {
    fc.assert(
      fc.property(
        arbBatchWithAdvantage(arbRefBatch({ onPolicy: true })),
        fc.constantFrom(0, 1, 2, 3, 4, 5),
        ({ b, adv }, mode) => {
          const got = run(b, adv, { loss_agg_mode: mode, max_len: 7 });
          expectReinforceGrad(got, b, adv, aggWeights(b, mode, 7));
          // value: agg(-A), since r = 1 everywhere
          expect(
            close(
              got.loss,
              aggValue(
                b,
                adv.map((a) => -a),
                mode,
                7,
              ),
            ),
          ).toBe(true);
          expect(got.metrics.clip_frac).toBe(0);
          expect(got.metrics.ppo_kl).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});

/**
 * stdlib/temporal_sched.credo (interpreter) against the hand-written reference
 * tests/reference/temporal_sched.ts, plus the special cases stated in its header.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { arbRefBatch, type ArbRefBatchOptions } from '../reference/arbitrary.js';
import { groupAdvantages, numSeqs } from '../reference/batch.js';
import { checkGradFD } from '../reference/fd.js';
import { temporalRef, type TemporalBatch } from '../reference/temporal_sched.js';
import {
  arbScore,
  close,
  expectAgrees,
  expectSameLossAndGrad,
  toRaggedWith,
  validTokens,
  withTokenFeatures,
} from './credit-helpers.js';

const sched = compile('temporal_sched');
const dapo = compile('dapo');
const ppo = compile('ppo');

const arbBatch = (opts: ArbRefBatchOptions = {}): fc.Arbitrary<TemporalBatch> =>
  withTokenFeatures(arbRefBatch(opts), { entropy: arbScore() });
const ragged = (b: TemporalBatch) => toRaggedWith(b, { entropy: { level: 'token', data: b.entropy } });

/** A training clock: total steps (0 = unset) and a step, sometimes past the end of the schedule. */
const arbClock = fc.oneof(
  fc.constant({ step: 0, totalSteps: 0 }),
  fc
    .integer({ min: 1, max: 1000 })
    .chain((totalSteps) => fc.integer({ min: 0, max: totalSteps + 50 }).map((step) => ({ step, totalSteps }))),
  fc
    .constantFrom(10, 100)
    .chain((totalSteps) => fc.integer({ min: 0, max: totalSteps }).map((step) => ({ step, totalSteps }))),
);

const params = fc.record(
  {
    s0: fc.constantFrom(0.99, 0.5, 0.8, 0, 1),
    min_ratio: fc.constantFrom(0, 0.1, 0.3),
    max_ratio: fc.constantFrom(0.8, 0.5, 1),
    schedule: fc.constantFrom(0, 1, 2),
    gamma_ratio: fc.constantFrom(2, 0.5, 3),
    strategy: fc.constantFrom(0, 1, 2),
    alpha: fc.constantFrom(0.4, 1, 2.5),
    kappa: fc.constantFrom(2, 1, 0.5),
    eps_low: fc.constantFrom(0.2, 0.1),
    eps_high: fc.constantFrom(0.28, 0.2),
    clip_c: fc.constantFrom(3, 1.5, 10),
    adv_eps: fc.constantFrom(1e-6, 1e-2),
  },
  { requiredKeys: [] },
);

/** A copy of the batch whose mask keeps only the tokens with keep[t] = 1. */
function masked(b: TemporalBatch, keep: number[]): TemporalBatch {
  return { ...b, mask: b.mask.map((m, t) => (m === 1 && keep[t] === 1 ? 1 : 0)) };
}

describe('temporal_sched equals its reference', () => {
  it('on random batches with default params over the training clock', () => {
    fc.assert(
      fc.property(arbBatch(), arbClock, (b, c) =>
        expectAgrees(sched.run(ragged(b), c), temporalRef(b, {}, c.step, c.totalSteps)),
      ),
      { numRuns: 200 },
    );
  });

  it('on random batches, params and clocks (loss, metrics, gradient)', () => {
    fc.assert(
      fc.property(arbBatch(), params, arbClock, (b, p, c) => {
        expectAgrees(sched.run(ragged(b), { params: p, ...c }), temporalRef(b, p, c.step, c.totalSteps));
      }),
      { numRuns: 400 },
    );
  });

  it('the reference gradient matches finite differences of the reference loss', () => {
    fc.assert(
      fc.property(arbBatch({ maxGroups: 3 }), params, arbClock, (b, p, c) => {
        expect(checkGradFD((x) => temporalRef(x as TemporalBatch, p, c.step, c.totalSteps), b).failures).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });
});

describe('temporal_sched special cases', () => {
  it('s = 0 (step past max_step, or s0 = 0) is stdlib dapo with clip_c = 3, for every strategy and schedule', () => {
    fc.assert(
      fc.property(
        arbBatch(),
        fc.constantFrom(0, 1, 2),
        fc.constantFrom(0, 1, 2),
        fc.boolean(),
        (b, strategy, schedule, late) => {
          const params: Record<string, number> = late ? { strategy, schedule } : { strategy, schedule, s0: 0 };
          const opts = { params, step: late ? 90 : 3, totalSteps: 100 };
          const got = sched.run(ragged(b), opts);
          expect(got.metrics.schedule_value).toBe(0);
          expectSameLossAndGrad(got, dapo.run(toRaggedWith(b), { params: { clip_c: 3 } }));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('forking tokens with s fixed at 0.8: dapo on the top ceil(20%) entropy tokens of each response', () => {
    fc.assert(
      fc.property(arbBatch(), (b) => {
        const keep = new Array<number>(b.mask.length).fill(0);
        for (const ts of validTokens(b)) {
          const k = Math.ceil(0.2 * ts.length - 1e-12);
          [...ts]
            .sort((x, y) => b.entropy[y]! - b.entropy[x]! || x - y)
            .slice(0, k)
            .forEach((t) => (keep[t] = 1));
        }
        const got = sched.run(ragged(b), { params: { strategy: 1, s0: 0.8 }, step: 0, totalSteps: 1000 });
        expectSameLossAndGrad(got, dapo.run(toRaggedWith(masked(b, keep)), { params: { clip_c: 3 } }));
      }),
      { numRuns: 200 },
    );
  });

  it('tp_schedule at step 0 (s = 0.99): dapo on the suffix after floor(0.99 L) tokens (at least the last token)', () => {
    fc.assert(
      fc.property(arbBatch(), (b) => {
        const keep = new Array<number>(b.mask.length).fill(0);
        for (const ts of validTokens(b))
          ts.forEach((t, q) => (keep[t] = q >= Math.min(Math.floor(0.99 * ts.length), ts.length - 1) ? 1 : 0));
        // lengths <= 7: floor(0.99 L) = L - 1, so only the last valid token is trained
        for (const ts of validTokens(b)) ts.forEach((t, q) => expect(keep[t]).toBe(q === ts.length - 1 ? 1 : 0));
        expectSameLossAndGrad(
          sched.run(ragged(b), { step: 0, totalSteps: 500 }),
          dapo.run(toRaggedWith(masked(b, keep)), { params: { clip_c: 3 } }),
        );
      }),
      { numRuns: 150 },
    );
  });

  it('entropy advantage with s fixed at 1: stdlib ppo (clip_c 3, token-mean) on A + min(alpha H, |A| / kappa)', () => {
    fc.assert(
      fc.property(arbBatch(), fc.constantFrom(0.4, 1.5), fc.constantFrom(2, 0.7), (b, alpha, kappa) => {
        const A = groupAdvantages(b, b.reward, 1e-6);
        const adv: number[] = [];
        for (let s = 0; s < numSeqs(b); s++) {
          for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++)
            adv.push(A[s]! + Math.min(alpha * b.entropy[t]!, Math.abs(A[s]!) / kappa));
        }
        const got = sched.run(ragged(b), {
          params: { strategy: 2, s0: 1, alpha, kappa, eps_low: 0.2, eps_high: 0.28 },
          step: 0,
          totalSteps: 100,
        });
        const want = ppo.run(toRaggedWith(b, { advantage: { level: 'token', data: adv } }), {
          params: { eps_low: 0.2, eps_high: 0.28, clip_c: 3, loss_agg_mode: 0 },
        });
        expectSameLossAndGrad(got, want);
      }),
      { numRuns: 150 },
    );
  });

  it('schedule shapes: s0 at the start, 0 at max_step; at the midpoint linear s0/2, sigmoid s0/2, gamma (s0/2)^gamma_ratio', () => {
    const b: TemporalBatch = {
      offsets: [0, 1],
      groupOf: [0],
      numGroups: 1,
      mask: [1],
      logp: [-1],
      old_logp: [-1],
      ref_logp: [-1],
      reward: [1],
      entropy: [1],
    };
    const s = (schedule: number, step: number, extra: Record<string, number> = {}) =>
      sched.run(ragged(b), { params: { schedule, s0: 0.9, ...extra }, step, totalSteps: 100 }).metrics.schedule_value!;
    for (const schedule of [0, 1]) {
      expect(close(s(schedule, 0), 0.9)).toBe(true);
      expect(close(s(schedule, 40), 0.45)).toBe(true); // max_step = 80
      expect(s(schedule, 80)).toBe(0);
      expect(s(schedule, 95)).toBe(0);
    }
    expect(close(s(2, 40), 0.45 ** 2)).toBe(true);
    expect(close(s(2, 40, { gamma_ratio: 3 }), 0.45 ** 3)).toBe(true);
    // sigmoid is flatter than linear early and steeper in the middle
    expect(s(1, 10)).toBeGreaterThan(s(0, 10));
    // min_ratio delays the decay
    expect(close(s(0, 20, { min_ratio: 0.2 }), 0.9)).toBe(true);
    expect(close(s(0, 50, { min_ratio: 0.2 }), 0.45)).toBe(true);
  });
});

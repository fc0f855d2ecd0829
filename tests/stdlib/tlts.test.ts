/**
 * stdlib/tlts.credo (interpreter) against the hand-written reference tests/reference/tlts.ts, plus the
 * special cases stated in its header.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { arbRefBatch, type ArbRefBatchOptions } from '../reference/arbitrary.js';
import { checkGradFD } from '../reference/fd.js';
import { lengthReward, tltsRef, type TltsBatch } from '../reference/tlts.js';
import { close, expectAgrees, expectSameLossAndGrad, toRaggedWith, withSeqFeatures } from './credit-helpers.js';

const tlts = compile('tlts');
const grpo = compile('grpo');

const arbBatch = (opts: ArbRefBatchOptions = {}): fc.Arbitrary<TltsBatch> =>
  withSeqFeatures(arbRefBatch(opts), {
    correct: fc.constantFrom(0, 1),
    format_reward: fc.constantFrom(0, 1),
    think_len: fc.oneof(fc.integer({ min: 0, max: 600 }), fc.constantFrom(0, 1, 87, 125, 179, 256, 512)),
  });

const ragged = (b: TltsBatch) =>
  toRaggedWith(b, {
    correct: { level: 'seq', data: b.correct },
    format_reward: { level: 'seq', data: b.format_reward },
    think_len: { level: 'seq', data: b.think_len },
  });

const arbStep = fc.oneof(fc.integer({ min: 0, max: 400 }), fc.constantFrom(0, 49, 50, 100, 5000));

const params = fc.record(
  {
    b0: fc.constantFrom(256, 128, 3),
    gamma: fc.constantFrom(0.7, 1, 0.5),
    t_interval: fc.constantFrom(50, 10, 1),
    budget_schedule: fc.constantFrom(0, 1),
    budget_drop: fc.constantFrom(32, 0, 7),
    lambda_c: fc.constantFrom(1, 2),
    lambda_len: fc.constantFrom(1, 0, 0.5),
    lambda_f: fc.constantFrom(1, 0, 0.3),
    eps_low: fc.constantFrom(0.2, 0.1),
    eps_high: fc.constantFrom(0.2, 0.3),
    beta: fc.constantFrom(0.04, 0),
    adv_eps: fc.constantFrom(1e-6, 1e-2),
  },
  { requiredKeys: [] },
);

describe('tlts equals its reference', () => {
  it('on random batches with default params over the training steps', () => {
    fc.assert(
      fc.property(arbBatch(), arbStep, (b, step) => expectAgrees(tlts.run(ragged(b), { step }), tltsRef(b, {}, step))),
      { numRuns: 200 },
    );
  });

  it('on random batches, params and steps (loss, metrics, gradient)', () => {
    fc.assert(
      fc.property(arbBatch(), params, arbStep, (b, p, step) =>
        expectAgrees(tlts.run(ragged(b), { params: p, step }), tltsRef(b, p, step)),
      ),
      { numRuns: 300 },
    );
  });

  it('the reference gradient matches finite differences of the reference loss', () => {
    fc.assert(
      fc.property(arbBatch({ maxGroups: 3 }), params, arbStep, (b, p, step) => {
        expect(checkGradFD((x) => tltsRef(x as TltsBatch, p, step), b).failures).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });
});

describe('tlts special cases', () => {
  it('the exponential budget is max(1, 256 · 0.7^floor(step / 50)); the linear one drops budget_drop per interval', () => {
    const b: TltsBatch = {
      offsets: [0, 1],
      groupOf: [0],
      numGroups: 1,
      mask: [1],
      logp: [-1],
      old_logp: [-1],
      ref_logp: [-1],
      reward: [0],
      correct: [1],
      format_reward: [1],
      think_len: [10],
    };
    const budget = (step: number, p: Record<string, number> = {}) =>
      tlts.run(ragged(b), { params: p, step }).metrics.budget!;
    expect(budget(0)).toBe(256);
    expect(budget(49)).toBe(256);
    expect(close(budget(50), 256 * 0.7)).toBe(true);
    expect(close(budget(149), 256 * 0.49)).toBe(true);
    expect(budget(100000)).toBe(1);
    expect(budget(120, { budget_schedule: 1 })).toBe(256 - 64);
    expect(budget(100000, { budget_schedule: 1 })).toBe(1);
  });

  it('gamma = 1 (or budget_drop = 0 with the linear schedule): the fixed-budget baseline, the same loss at every step', () => {
    fc.assert(
      fc.property(arbBatch(), arbStep, fc.boolean(), (b, step, linear) => {
        const p: Record<string, number> = linear ? { budget_schedule: 1, budget_drop: 0 } : { gamma: 1 };
        const got = tlts.run(ragged(b), { params: p, step });
        expect(got.metrics.budget).toBe(256);
        expectSameLossAndGrad(got, tlts.run(ragged(b), { params: p, step: 0 }));
      }),
      { numRuns: 100 },
    );
  });

  it('lambda_len = 0 is stdlib grpo on lambda_c correct + lambda_f format', () => {
    fc.assert(
      fc.property(
        arbBatch(),
        arbStep,
        fc.constantFrom(1, 2),
        fc.constantFrom(1, 0, 0.5),
        fc.constantFrom(0.04, 0),
        (b, step, lc, lf, beta) => {
          const reward = b.correct.map((c, s) => lc * c + lf * b.format_reward[s]!);
          const got = tlts.run(ragged(b), { params: { lambda_len: 0, lambda_c: lc, lambda_f: lf, beta }, step });
          expectSameLossAndGrad(got, grpo.run(toRaggedWith({ ...b, reward }), { params: { beta } }));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('the length reward is triangular: L / B up to the budget, then down to 0 at 2B', () => {
    expect([
      lengthReward(0, 100),
      lengthReward(50, 100),
      lengthReward(100, 100),
      lengthReward(150, 100),
      lengthReward(200, 100),
      lengthReward(300, 100),
    ]).toEqual([0, 0.5, 1, 0.5, 0, 0]);
    fc.assert(
      fc.property(arbBatch(), (b) => {
        const B = 256;
        const want = b.think_len.reduce((x, L) => x + lengthReward(L, B), 0) / Math.max(b.think_len.length, 1);
        expect(close(tlts.run(ragged(b)).metrics.len_reward!, want)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

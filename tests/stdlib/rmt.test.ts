/**
 * stdlib/rmt.credo (interpreter) against the hand-written reference tests/reference/rmt.ts, plus the
 * special cases stated in its header.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { arbRefBatch, type ArbRefBatchOptions } from '../reference/arbitrary.js';
import { numSeqs, type RefBatch } from '../reference/batch.js';
import { checkGradFD } from '../reference/fd.js';
import { rmtBudget, rmtRef, RMT_DEFAULTS, type RmtBatch } from '../reference/rmt.js';
import { close, expectAgrees, expectSameLossAndGrad, toRaggedWith, withSeqFeatures } from './credit-helpers.js';

const rmt = compile('rmt');
const grpo = compile('grpo');

const arbBatch = (
  opts: ArbRefBatchOptions = {},
  ntp: fc.Arbitrary<number> = fc.oneof(
    { arbitrary: fc.constant(0), weight: 4 },
    { arbitrary: fc.constant(1), weight: 1 },
  ),
): fc.Arbitrary<RmtBatch> => withSeqFeatures(arbRefBatch(opts), { match: fc.constantFrom(0, 1), ntp });

const ragged = (b: RmtBatch) =>
  toRaggedWith(b, { match: { level: 'seq', data: b.match }, ntp: { level: 'seq', data: b.ntp } });

const arbClock = fc.oneof(
  fc.constant({ step: 0, totalSteps: 0 }),
  fc
    .integer({ min: 1, max: 1000 })
    .chain((totalSteps) => fc.integer({ min: 0, max: totalSteps }).map((step) => ({ step, totalSteps }))),
);

// small budgets so that lengths 0..7 reach both sides of the triangle
const params = fc.record(
  {
    b0: fc.constantFrom(512, 6, 3),
    b_min: fc.constantFrom(64, 1, 2),
    gamma: fc.constantFrom(0.5, 0.1, 1),
    k: fc.constantFrom(1, 2, 0.5),
    budget_form: fc.constantFrom(0, 1),
    len_coef: fc.constantFrom(1, 0, 0.5),
    ntp_coef: fc.constantFrom(1, 0, 0.3),
    eps_low: fc.constantFrom(0.2, 0.1),
    eps_high: fc.constantFrom(0.2, 0.3),
    beta: fc.constantFrom(0, 0.04),
    adv_eps: fc.constantFrom(1e-6, 1e-2),
  },
  { requiredKeys: [] },
);

describe('rmt equals its reference', () => {
  it('on random batches with default params over the training clock', () => {
    fc.assert(
      fc.property(arbBatch(), arbClock, (b, c) =>
        expectAgrees(rmt.run(ragged(b), c), rmtRef(b, {}, c.step, c.totalSteps)),
      ),
      { numRuns: 200 },
    );
  });

  it('on random batches, params and clocks (loss, metrics, gradient)', () => {
    fc.assert(
      fc.property(arbBatch(), params, arbClock, (b, p, c) =>
        expectAgrees(rmt.run(ragged(b), { params: p, ...c }), rmtRef(b, p, c.step, c.totalSteps)),
      ),
      { numRuns: 300 },
    );
  });

  it('the reference gradient matches finite differences of the reference loss', () => {
    fc.assert(
      fc.property(arbBatch({ maxGroups: 3 }), params, arbClock, (b, p, c) => {
        expect(checkGradFD((x) => rmtRef(x as RmtBatch, p, c.step, c.totalSteps), b).failures).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });
});

describe('rmt special cases', () => {
  it('len_coef = 0 and ntp_coef = 0 on rollouts only (RPT) is stdlib grpo on the match reward', () => {
    fc.assert(
      fc.property(
        arbBatch({}, fc.constant(0)),
        arbClock,
        fc.constantFrom(0, 0.04),
        fc.constantFrom(0.2, 0.3),
        (b, c, beta, eps_high) => {
          const got = rmt.run(ragged(b), { params: { len_coef: 0, ntp_coef: 0, beta, eps_high }, ...c });
          const rb: RefBatch = { ...b, reward: b.match };
          expectSameLossAndGrad(got, grpo.run(toRaggedWith(rb), { params: { beta, eps_high } }));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('corpus sequences only: ntp_coef × next-token cross-entropy, gradient -ntp_coef / N', () => {
    fc.assert(
      fc.property(arbBatch({}, fc.constant(1)), fc.constantFrom(1, 0.3), (b, ntp_coef) => {
        const got = rmt.run(ragged(b), { params: { ntp_coef } });
        const N = b.mask.reduce((x, m) => x + m, 0);
        const ce = N > 0 ? b.logp.reduce((x, l, t) => x - (b.mask[t] === 1 ? l : 0), 0) / N : 0;
        expect(close(got.loss, ntp_coef * ce)).toBe(true);
        b.mask.forEach((m, t) => expect(close(got.grads.logp!.data[t]!, m === 1 ? -ntp_coef / N : 0)).toBe(true));
      }),
      { numRuns: 100 },
    );
  });

  it('corpus sequences in the same groups leave the RL part unchanged (= grpo on the rollouts alone)', () => {
    fc.assert(
      fc.property(arbBatch(), fc.constantFrom(0, 0.04), (b, beta) => {
        // the batch without its corpus sequences
        const rl: RefBatch = {
          offsets: [0],
          groupOf: [],
          numGroups: b.numGroups,
          mask: [],
          logp: [],
          old_logp: [],
          ref_logp: [],
          reward: [],
        };
        for (let s = 0; s < numSeqs(b); s++) {
          if (b.ntp[s]! > 0) continue;
          for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
            rl.mask.push(b.mask[t]!);
            rl.logp.push(b.logp[t]!);
            rl.old_logp.push(b.old_logp[t]!);
            rl.ref_logp.push(b.ref_logp[t]!);
          }
          rl.offsets.push(rl.offsets[rl.offsets.length - 1]! + b.offsets[s + 1]! - b.offsets[s]!);
          rl.groupOf.push(b.groupOf[s]!);
          rl.reward.push(b.match[s]!);
        }
        const got = rmt.run(ragged(b), { params: { len_coef: 0, ntp_coef: 0, beta } });
        const want = grpo.run(toRaggedWith(rl), { params: { beta } });
        expect(close(got.loss, want.loss), `loss ${got.loss} vs ${want.loss}`).toBe(true);
        let k = 0;
        for (let s = 0; s < numSeqs(b); s++) {
          for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
            if (b.ntp[s]! > 0) expect(Math.abs(got.grads.logp!.data[t]!)).toBe(0);
            else expect(close(got.grads.logp!.data[t]!, want.grads.logp!.data[k++]!)).toBe(true);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('k = 1: both budget readings agree; the budget decays from b0 to max(b_min, b0 gamma)', () => {
    fc.assert(
      fc.property(arbClock, (c) => {
        const p = { ...RMT_DEFAULTS };
        expect(
          close(
            rmtBudget({ ...p, budget_form: 0 }, c.step, c.totalSteps),
            rmtBudget({ ...p, budget_form: 1 }, c.step, c.totalSteps),
          ),
        ).toBe(true);
      }),
    );
    const b: RmtBatch = {
      offsets: [0, 1],
      groupOf: [0],
      numGroups: 1,
      mask: [1],
      logp: [-1],
      old_logp: [-1],
      ref_logp: [-1],
      reward: [0],
      match: [1],
      ntp: [0],
    };
    const budget = (step: number, p: Record<string, number> = {}) =>
      rmt.run(ragged(b), { params: p, step, totalSteps: 100 }).metrics.budget!;
    expect(budget(0)).toBe(512);
    expect(close(budget(50), 512 * Math.SQRT1_2)).toBe(true);
    expect(budget(100)).toBe(256);
    expect(budget(100, { gamma: 0.01 })).toBe(64);
    // k = 2: gamma^(t / T^2) (as quoted) decays far slower than gamma^((t / T)^2)
    expect(close(budget(50, { k: 2 }), 512 * 0.5 ** (50 / 10000))).toBe(true);
    expect(close(budget(50, { k: 2, budget_form: 1 }), 512 * 0.5 ** 0.25)).toBe(true);
  });
});

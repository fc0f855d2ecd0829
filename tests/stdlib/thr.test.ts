/**
 * stdlib/thr.credo (interpreter) against the hand-written reference tests/reference/thr.ts,
 * plus the special cases stated in its header.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { uniformDouble, type ArbRefBatchOptions } from '../reference/arbitrary.js';
import { checkGradFD } from '../reference/fd.js';
import { thrRef, type ThrBatch } from '../reference/thr.js';
import {
  arbBatch,
  close,
  expectAgrees,
  expectSameLossAndGrad,
  toRaggedWith,
  withTokenFeatures,
} from './tokenweight-helpers.js';

const thr = compile('thr');
const grpo = compile('grpo');
const gspo = compile('gspo');

const thrValue = fc.oneof(
  { arbitrary: uniformDouble(-2, 2), weight: 6 },
  { arbitrary: fc.constant(0), weight: 1 },
  { arbitrary: uniformDouble(-0.01, 0.01), weight: 1 },
  { arbitrary: fc.constantFrom(0.3, -0.3), weight: 1 }, // exactly at the thr_tau = 0.3 gate
);
const arbThrBatch = (opts: ArbRefBatchOptions = {}, value = thrValue): fc.Arbitrary<ThrBatch> =>
  withTokenFeatures(arbBatch(opts), { thr: value });
const ragged = (b: ThrBatch) => toRaggedWith(b, { thr: { level: 'token', data: b.thr } });

const params = fc.record(
  {
    thr_p: fc.constantFrom(0.5, 0, -0.5, 1),
    thr_scaled: fc.constantFrom(0, 1),
    thr_tau: fc.constantFrom(0, 0.3),
    seq_ratio: fc.constantFrom(0, 1),
    eps_low: fc.constantFrom(0.2, 3e-4),
    eps_high: fc.constantFrom(0.2, 4e-4, 0.28),
    beta: fc.constantFrom(0.04, 0),
  },
  { requiredKeys: [] },
);

describe('thr equals its reference', () => {
  it('on random batches with default params', () => {
    fc.assert(
      fc.property(arbThrBatch(), (b) => {
        expectAgrees(thr.run(ragged(b)), thrRef(b));
      }),
      { numRuns: 200 },
    );
  });

  it('on random batches and params (loss, metrics, gradient)', () => {
    fc.assert(
      fc.property(arbThrBatch(), params, (b, p) => {
        expectAgrees(thr.run(ragged(b), { params: p }), thrRef(b, p));
      }),
      { numRuns: 400 },
    );
  });

  it('with large log-ratios (the ±20 clamps are reached)', () => {
    fc.assert(
      fc.property(arbThrBatch({ largeNoise: 25 }), params, (b, p) => {
        expectAgrees(thr.run(ragged(b), { params: p }), thrRef(b, p));
      }),
      { numRuns: 200 },
    );
  });

  it('the reference gradient matches finite differences of the reference loss (token ratio)', () => {
    // (with seq_ratio = 1 the GSPO-token gradient is by design not the derivative of the value
    // when A' varies within a sequence)
    fc.assert(
      fc.property(arbThrBatch({ maxGroups: 3 }), params, (b, p) => {
        const rep = checkGradFD((x) => thrRef(x as ThrBatch, { ...p, seq_ratio: 0 }), b);
        expect(rep.failures).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });
});

describe('thr special cases', () => {
  it('thr_p = 0 is GRPO (same params)', () => {
    const grpoParams = fc.record({
      eps_low: fc.constantFrom(0.2, 0.1),
      eps_high: fc.constantFrom(0.2, 0.3),
      beta: fc.constantFrom(0.04, 0, 0.5),
    });
    fc.assert(
      fc.property(arbThrBatch(), grpoParams, fc.constantFrom(0, 1), (b, p, scaled) => {
        const got = thr.run(ragged(b), { params: { ...p, thr_p: 0, thr_scaled: scaled } });
        const want = grpo.run(toRaggedWith(b, {}), { params: p });
        expectSameLossAndGrad(got, want);
        expect(close(got.metrics.clip_frac!, want.metrics.clip_frac!)).toBe(true);
        expect(close(got.metrics.kl!, want.metrics.kl!)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('thr_p = 0, seq_ratio = 1, beta = 0 is GSPO', () => {
    const gspoParams = fc.record({ eps_low: fc.constantFrom(3e-4, 0.2), eps_high: fc.constantFrom(4e-4, 0.3) });
    fc.assert(
      fc.property(arbThrBatch(), gspoParams, (b, p) => {
        const got = thr.run(ragged(b), { params: { ...p, thr_p: 0, seq_ratio: 1, beta: 0 } });
        expectSameLossAndGrad(got, gspo.run(toRaggedWith(b, {}), { params: p }));
      }),
      { numRuns: 200 },
    );
  });

  it('THR of one sign everywhere scales the GRPO loss and gradient by c = 1 ± thr_p > 0 (beta = 0)', () => {
    const signed = fc.constantFrom([1, 0.5], [1, -0.5], [1, 2], [-1, 0.5], [-1, -0.5]).chain(([sgn, p]) =>
      arbThrBatch(
        {},
        uniformDouble(0.01, 2).map((x) => sgn! * x),
      ).map((b) => ({ b, c: 1 + p! * sgn!, p: p! })),
    );
    fc.assert(
      fc.property(signed, ({ b, c, p }) => {
        const got = thr.run(ragged(b), { params: { thr_p: p, beta: 0 } });
        const base = grpo.run(toRaggedWith(b, {}), { params: { beta: 0 } });
        expect(close(got.loss, c * base.loss), `${got.loss} vs ${c} * ${base.loss}`).toBe(true);
        base.grads.logp.data.forEach((v, t) => expect(close(got.grads.logp.data[t]!, c * v)).toBe(true));
      }),
      { numRuns: 200 },
    );
  });
});

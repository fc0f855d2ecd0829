/**
 * stdlib/d3s.credo (interpreter) against the hand-written reference tests/reference/d3s.ts,
 * plus the special cases stated in its header.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { type ArbRefBatchOptions } from '../reference/arbitrary.js';
import { groupAdvantages, numSeqs } from '../reference/batch.js';
import { d3sRef, d3sSelect, D3S_DEFAULTS, type D3sBatch } from '../reference/d3s.js';
import { checkGradFD } from '../reference/fd.js';
import {
  arbBatch,
  arbEntropyValue,
  expectAgrees,
  expectSameLossAndGrad,
  toRaggedWith,
  withTokenFeatures,
} from './tokenweight-helpers.js';

const d3s = compile('d3s');
const dapo = compile('dapo');

const arbD3sBatch = (opts: ArbRefBatchOptions = {}): fc.Arbitrary<D3sBatch> =>
  withTokenFeatures(arbBatch(opts), { entropy: arbEntropyValue() });
const ragged = (b: D3sBatch) => toRaggedWith(b, { entropy: { level: 'token', data: b.entropy } });

const params = fc.record(
  {
    eps_high: fc.constantFrom(0.28, 0.2),
    clip_c: fc.constantFrom(10, 3),
    k_frac_start: fc.constantFrom(0.5, 0.25, 1, 0.8),
    k_frac_end: fc.constantFrom(1, 0.75),
    rho_start: fc.constantFrom(0.5, 0.2, 1),
    rho_end: fc.constantFrom(1, 0.6),
    ramp: fc.constantFrom(1, 0.5),
    sample_rule: fc.constantFrom(0, 1),
    cross_group: fc.constantFrom(0, 1),
    token_per_batch: fc.constantFrom(0, 1),
  },
  { requiredKeys: [] },
);
const clock = fc.record({ step: fc.integer({ min: 0, max: 120 }), totalSteps: fc.constantFrom(0, 100, 50) });

describe('d3s equals its reference', () => {
  it('on random batches with default params at step 0', () => {
    fc.assert(
      fc.property(arbD3sBatch(), (b) => {
        expectAgrees(d3s.run(ragged(b)), d3sRef(b));
      }),
      { numRuns: 200 },
    );
  });

  it('on random batches, params and clock (loss, metrics, gradient, selections)', () => {
    fc.assert(
      fc.property(arbD3sBatch(), params, clock, (b, p, c) => {
        const got = d3s.run(ragged(b), { params: p, step: c.step, totalSteps: c.totalSteps });
        expectAgrees(got, d3sRef(b, p, c.step, c.totalSteps));
        const sel = d3sSelect(b, { ...D3S_DEFAULTS, ...p }, c.step, c.totalSteps);
        expect(Array.from(got.exports.kept_seq!.data, (x) => x === 1)).toEqual(sel.keepSeq);
        expect(Array.from(got.exports.kept_token!.data, (x) => x === 1)).toEqual(sel.keepTok);
      }),
      { numRuns: 400 },
    );
  });

  it('with large log-ratios (the ±20 clamps are reached)', () => {
    fc.assert(
      fc.property(arbD3sBatch({ largeNoise: 25 }), params, (b, p) => {
        expectAgrees(d3s.run(ragged(b), { params: p }), d3sRef(b, p));
      }),
      { numRuns: 200 },
    );
  });

  it('the reference gradient matches finite differences of the reference loss', () => {
    fc.assert(
      fc.property(arbD3sBatch({ maxGroups: 3 }), params, clock, (b, p, c) => {
        const rep = checkGradFD((x) => d3sRef(x as D3sBatch, p, c.step, c.totalSteps), b);
        expect(rep.failures).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });
});

describe('d3s special cases', () => {
  it('keep everything (k_frac = rho = 1) is DAPO', () => {
    fc.assert(
      fc.property(arbD3sBatch(), params, clock, (b, p, c) => {
        const all = { ...p, k_frac_start: 1, k_frac_end: 1, rho_start: 1, rho_end: 1 };
        const got = d3s.run(ragged(b), { params: all, step: c.step, totalSteps: c.totalSteps });
        const want = dapo.run(toRaggedWith(b, {}), {
          params: { eps_high: p.eps_high ?? 0.28, clip_c: p.clip_c ?? 10 },
        });
        expectSameLossAndGrad(got, want);
      }),
      { numRuns: 200 },
    );
  });

  it('the default schedule has relaxed to DAPO once step >= ramp · total_steps', () => {
    fc.assert(
      fc.property(
        arbD3sBatch(),
        fc.constantFrom(1, 0.5),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 0, max: 30 }),
        (b, ramp, total, extra) => {
          const step = Math.ceil(ramp * total) + extra;
          const got = d3s.run(ragged(b), { params: { ramp }, step, totalSteps: total });
          expectSameLossAndGrad(got, dapo.run(toRaggedWith(b, {})));
          expect(got.metrics.sample_keep_frac).toBe(numSeqs(b) > 0 ? 1 : 0);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('binary rewards: the kept rollouts of each group maximise the advantage variance among subsets of their size', () => {
    const variance = (xs: number[]) => {
      const m = xs.reduce((x, y) => x + y, 0) / xs.length;
      return xs.reduce((x, y) => x + (y - m) ** 2, 0) / xs.length;
    };
    fc.assert(
      fc.property(
        arbD3sBatch({ rewards: 'binary', maxSeqsPerGroup: 8 }),
        fc.constantFrom(0.25, 0.5, 0.6, 0.75),
        (b, kf) => {
          const kept = d3s.run(ragged(b), { params: { k_frac_start: kf } }).exports.kept_seq!.data;
          const A = groupAdvantages(b, b.reward, 1e-6);
          for (let g = 0; g < b.numGroups; g++) {
            const members = b.groupOf
              .map((x, s) => [x, s] as const)
              .filter(([x]) => x === g)
              .map(([, s]) => s);
            const chosen = members.filter((s) => kept[s] === 1);
            expect(chosen.length).toBe(Math.ceil(kf * members.length));
            let best = 0;
            for (let mask = 0; mask < 1 << members.length; mask++) {
              const sub = members.filter((_, i) => mask & (1 << i));
              if (sub.length === chosen.length && sub.length > 0)
                best = Math.max(best, variance(sub.map((s) => A[s]!)));
            }
            const got = chosen.length > 0 ? variance(chosen.map((s) => A[s]!)) : 0;
            expect(Math.abs(got - best) <= 1e-12 * (1 + best), `group ${g}: ${got} vs best ${best}`).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

/**
 * stdlib/holder_po.credo (HölderPO, methods-pg.md §4) against the hand-written reference
 * tests/reference/holder_po.ts, plus its special cases: p → 0 (and p = 0 exactly) is GSPO, token
 * variant p = 1 is GRPO (beta = 0), token variant p → 0 is GMPO, p = 1 / ±∞ give the arithmetic mean /
 * max / min of the token ratios, on-policy gives rho = 1 and the REINFORCE gradient, and every p
 * schedule of the code.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { checkGradFD } from '../reference/fd.js';
import { groupAdvantages, seqLengths } from '../reference/batch.js';
import { HOLDER_PO_DEFAULTS, holderP, holderPoRef } from '../reference/holder_po.js';
import { toRagged } from '../helpers/batches.js';
import { close, expectAgree, expectGradClose, expectSameLossAndGrad } from './pg14-helpers.js';

const holder = compile('holder_po');

const arbParams = fc.record(
  {
    variant: fc.constantFrom(0, 1, 2),
    p_schedule: fc.integer({ min: 0, max: 9 }),
    p: fc.constantFrom(1, 0, 1e-7, -3e-7, 3, -2, 0.5, 20),
    p_min: fc.constantFrom(-2, -1, 0),
    p_max: fc.constantFrom(2, 3),
    p_power: fc.constantFrom(2, 3, 0.5),
    eps_low: fc.constantFrom(0.2, 0.1),
    eps_high: fc.constantFrom(0.2, 0.28),
  },
  { requiredKeys: [] },
);
const arbClock = fc.record({ step: fc.integer({ min: 0, max: 1200 }), totalSteps: fc.constantFrom(0, 1, 500, 1000) });

describe('holder_po equals its reference', () => {
  it('with default params (linear_dec schedule, sequence variant) at several steps', () => {
    fc.assert(
      fc.property(arbRefBatch(), arbClock, (b, clock) => {
        const want = holderPoRef(b, {}, clock);
        const got = holder.run(toRagged(b), clock);
        expectAgree(got, want);
      }),
      { numRuns: 200 },
    );
  });

  it('on random batches, params, schedules and steps (loss, metrics, gradient, rho)', () => {
    fc.assert(
      fc.property(arbRefBatch(), arbParams, arbClock, (b, params, clock) => {
        const want = holderPoRef(b, params, clock);
        const got = holder.run(toRagged(b), { params, ...clock });
        expectAgree(got, want);
        expectGradClose(got.exports.rho!.data, want.rho, 1e-9, 'rho');
      }),
      { numRuns: 400 },
    );
  });
});

describe('holder_po reference gradient', () => {
  it('equals central finite differences of the reference loss (the gradient flows through every token)', () => {
    fc.assert(
      fc.property(arbRefBatch({ maxGroups: 3 }), arbParams, arbClock, (b, params, clock) => {
        expect(checkGradFD((x) => holderPoRef(x, params, clock), b).failures).toEqual([]);
      }),
      { numRuns: 150 },
    );
  });
});

describe('holder_po p schedules', () => {
  // u = step / 500; p_min = -2, p_max = 2, p_power = 2: closed-form values of each schedule.
  const table: [number, number, number][] = [
    // [p_schedule, step, expected p]
    [0, 250, 1], // constant: p (= 1)
    [1, 0, -2],
    [1, 125, -1],
    [1, 500, 2],
    [1, 900, 2], // linear
    [2, 0, 2],
    [2, 250, 0],
    [2, 375, -1],
    [2, 500, -2], // linear_dec (paper default)
    [3, 0, -2],
    [3, 250, 0],
    [3, 500, 2], // sin: mid - amp cos(pi u)
    [4, 0, 2],
    [4, 250, 0],
    [4, 500, -2], // cos: mid + amp cos(pi u)
    [5, 250, -1],
    [5, 500, 2], // quad: -2 + 4 u^2
    [6, 250, 1],
    [6, 500, -2], // quad_dec: 2 - 4 u^2
    [7, 0, -2],
    [7, 125, -0.25],
    [7, 250, 0],
    [7, 500, 2], // cubic: 2 (2u-1)^3
    [8, 0, 2],
    [8, 125, 0.25],
    [8, 500, -2], // cubic_dec
    [42, 100, 1], // unknown schedule: the code falls back to the constant p
  ];
  const [b] = fc.sample(arbRefBatch({ minGroups: 2 }), { numRuns: 1, seed: 11 });
  it.each(table)('schedule %i at step %i gives p = %d', (p_schedule, step, expected) => {
    const got = holder.run(toRagged(b!), { params: { p_schedule }, step, totalSteps: 500 });
    expect(close(got.metrics.holder_p!, expected, 1e-12), `${got.metrics.holder_p} vs ${expected}`).toBe(true);
    expect(close(holderP({ p_schedule }, step, 500), expected, 1e-12)).toBe(true);
  });
  it('sin at u = 1/3 is mid - amp cos(pi/3) = -1 (schedule 3) and cos gives +1 (schedule 4)', () => {
    expect(
      close(
        holder.run(toRagged(b!), { params: { p_schedule: 3 }, step: 1, totalSteps: 3 }).metrics.holder_p!,
        -1,
        1e-12,
      ),
    ).toBe(true);
    expect(
      close(
        holder.run(toRagged(b!), { params: { p_schedule: 4 }, step: 1, totalSteps: 3 }).metrics.holder_p!,
        1,
        1e-12,
      ),
    ).toBe(true);
  });
});

describe('holder_po special cases', () => {
  const gspo = compile('gspo');
  const grpo = compile('grpo');

  it('sequence variant, p = 0 exactly and |p| < 1e-6, equals gspo with the same eps (value and gradient), finite', () => {
    fc.assert(
      fc.property(
        arbRefBatch(),
        fc.constantFrom(0, 1e-7, -5e-7),
        fc.constantFrom([3e-4, 4e-4], [0.2, 0.2], [0.1, 0.3]),
        (b, p, [eps_low, eps_high]) => {
          const params = { p_schedule: 0, p, eps_low, eps_high, variant: 0 };
          const got = holder.run(toRagged(b), { params });
          const want = gspo.run(toRagged(b), { params: { eps_low, eps_high } });
          expect(got.grads.logp!.data.every(Number.isFinite)).toBe(true);
          expectSameLossAndGrad(got, want);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('sequence variant, p = ±1e-4 is within 1e-3 of gspo (continuity of the power mean at p = 0)', () => {
    fc.assert(
      fc.property(arbRefBatch({ largeNoise: 1 }), fc.constantFrom(1e-4, -1e-4), (b, p) => {
        const got = holder.run(toRagged(b), { params: { p_schedule: 0, p, eps_low: 0.9, eps_high: 10 } });
        const want = gspo.run(toRagged(b), { params: { eps_low: 0.9, eps_high: 10 } });
        expectSameLossAndGrad(got, want, 1e-3);
      }),
      { numRuns: 200 },
    );
  });

  it('p = 1: rho is the arithmetic mean of the token ratios; p = ±1e4: max / min token ratio', () => {
    fc.assert(
      fc.property(arbRefBatch(), (b) => {
        const L = seqLengths(b);
        const ratios = (s: number) => {
          const r: number[] = [];
          for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++)
            if (b.mask[t] === 1) r.push(Math.exp(b.logp[t]! - b.old_logp[t]!));
          return r;
        };
        const rho = (p: number) => holder.run(toRagged(b), { params: { p_schedule: 0, p } }).exports.rho!.data;
        const [r1, rMax, rMin] = [rho(1), rho(1e4), rho(-1e4)];
        for (let s = 0; s < L.length; s++) {
          if (L[s] === 0) continue;
          const r = ratios(s);
          expect(close(r1[s]!, r.reduce((x, y) => x + y, 0) / r.length, 1e-12)).toBe(true);
          expect(close(rMax[s]!, Math.max(...r), 1e-3)).toBe(true);
          expect(close(rMin[s]!, Math.min(...r), 1e-3)).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("on-policy: rho = 1 for every p and variant, gradient -A_i / (B' L_i) (REINFORCE, sequence mean)", () => {
    fc.assert(
      fc.property(
        arbRefBatch({ onPolicy: true }),
        fc.constantFrom(-2, -0.5, 0, 1, 2, 7),
        fc.constantFrom(0, 1, 2),
        (b, p, variant) => {
          const got = holder.run(toRagged(b), { params: { p_schedule: 0, p, variant } });
          const L = seqLengths(b);
          const A = groupAdvantages(b, b.reward, HOLDER_PO_DEFAULTS.adv_eps);
          const B = L.filter((n) => n > 0).length;
          got.exports.rho!.data.forEach((v) => expect(close(v, 1, 1e-12)).toBe(true));
          const want = new Array<number>(b.mask.length).fill(0);
          for (let s = 0; s < L.length; s++) {
            for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) if (b.mask[t] === 1) want[t] = -A[s]! / (B * L[s]!);
          }
          expectGradClose(got.grads.logp!.data, want);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('token variant, p = 1, equals grpo with beta = 0 and the same eps (per-token clip, seq-mean-token-mean)', () => {
    fc.assert(
      fc.property(arbRefBatch(), fc.constantFrom([0.2, 0.2], [0.1, 0.28]), (b, [eps_low, eps_high]) => {
        const got = holder.run(toRagged(b), { params: { variant: 1, p_schedule: 0, p: 1, eps_low, eps_high } });
        const want = grpo.run(toRagged(b), { params: { beta: 0, eps_low, eps_high } });
        expectSameLossAndGrad(got, want);
      }),
      { numRuns: 300 },
    );
  });

  it('token variant, p = 0, equals gmpo with log bounds -log(1-eps_low), log(1+eps_high)', () => {
    const gmpo = compile('gmpo');
    fc.assert(
      fc.property(arbRefBatch(), fc.constantFrom([0.2, 0.2], [0.1, 0.28], [0.33, 0.49]), (b, [eps_low, eps_high]) => {
        const got = holder.run(toRagged(b), { params: { variant: 1, p_schedule: 0, p: 0, eps_low, eps_high } });
        const want = gmpo.run(toRagged(b), {
          params: { eps_low: -Math.log1p(-eps_low), eps_high: Math.log1p(eps_high) },
        });
        expectSameLossAndGrad(got, want);
      }),
      { numRuns: 300 },
    );
  });
});

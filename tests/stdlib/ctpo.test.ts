/**
 * stdlib/ctpo.credo (CTPO-LA, methods-pg.md §3) against the hand-written reference
 * tests/reference/ctpo.ts, plus its special cases: the current-token ratio gives the PPO token loss
 * (= dapo with the same clip), one-token responses likewise, the cumulative ratio at the last token
 * is the full-sequence ratio (cumprod) or the GSPO ratio (geomean), and on-policy gives REINFORCE.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { checkGradFD } from '../reference/fd.js';
import { groupAdvantages, type RefBatch } from '../reference/batch.js';
import { CTPO_DEFAULTS, ctpoRef } from '../reference/ctpo.js';
import { toRagged } from '../helpers/batches.js';
import { close, expectAgree, expectGradClose, expectSameLossAndGrad } from './pg14-helpers.js';

const ctpo = compile('ctpo');
const dapo = compile('dapo');

const arbParams = fc.record(
  {
    la_clip_low: fc.constantFrom(0.025, 0.1),
    la_clip_high: fc.constantFrom(0.05, 0.2),
    la_clip_c: fc.constantFrom(0.05, 0.3, 2),
    la_power: fc.constantFrom(0.5, -0.5, 0, 1),
    geomean: fc.constantFrom(0, 1),
    la: fc.constantFrom(1, 0),
    eps_low: fc.constantFrom(0.2, 0.1),
    eps_high: fc.constantFrom(0.2, 0.28),
    clip_c: fc.constantFrom(3, 1.5, 10),
    cumulative: fc.constantFrom(1, 0),
  },
  { requiredKeys: [] },
);

/** Valid token indices of each response, in order. */
function validTokens(b: RefBatch): number[][] {
  const out: number[][] = [];
  for (let s = 0; s + 1 < b.offsets.length; s++) {
    const v: number[] = [];
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) if (b.mask[t] === 1) v.push(t);
    out.push(v);
  }
  return out;
}

describe('ctpo equals its reference', () => {
  it('with default params (CTPO-LA, cumprod)', () => {
    fc.assert(
      fc.property(arbRefBatch(), (b) => {
        expectAgree(ctpo.run(toRagged(b)), ctpoRef(b));
      }),
      { numRuns: 300 },
    );
  });

  it('on random batches and params (loss, metrics, gradient, exported ratios)', () => {
    fc.assert(
      fc.property(arbRefBatch(), arbParams, (b, params) => {
        const want = ctpoRef(b, params);
        const got = ctpo.run(toRagged(b), { params });
        expectAgree(got, want);
        for (const t of validTokens(b).flat()) {
          expect(close(got.exports.log_ratio!.data[t]!, want.log_ratio[t]!), `log_ratio[${t}]`).toBe(true);
          expect(close(got.exports.ratio!.data[t]!, want.ratio[t]!), `ratio[${t}]`).toBe(true);
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe('ctpo reference gradient', () => {
  it('with the current-token ratio (no stop-gradient left in the value) equals central finite differences', () => {
    fc.assert(
      fc.property(arbRefBatch({ maxGroups: 3 }), arbParams, (b, params) => {
        expect(checkGradFD((x) => ctpoRef(x, { ...params, cumulative: 0 }), b).failures).toEqual([]);
      }),
      { numRuns: 150 },
    );
  });
});

describe('ctpo special cases', () => {
  it('current-token ratio (cumulative = 0), ratio-space clip: equals dapo with the same eps and clip_c', () => {
    fc.assert(
      fc.property(
        arbRefBatch(),
        fc.constantFrom([0.2, 0.2, 3], [0.1, 0.28, 10], [0.3, 0.3, 1.5]),
        (b, [eps_low, eps_high, clip_c]) => {
          const got = ctpo.run(toRagged(b), { params: { cumulative: 0, la: 0, eps_low, eps_high, clip_c } });
          const want = dapo.run(toRagged(b), { params: { eps_low, eps_high, clip_c } });
          expectSameLossAndGrad(got, want);
          expect(close(got.metrics.clip_frac!, want.metrics.clip_frac!)).toBe(true);
          expect(close(got.metrics.dual_clip_frac!, want.metrics.dual_clip_frac!)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('current-token ratio with the LA clip at la_power = 0: dapo with eps_low = 1-e^-c_low, eps_high = e^c_high-1, clip_c = e^c_c', () => {
    fc.assert(
      fc.property(arbRefBatch(), fc.constantFrom([0.025, 0.05, 0.05], [0.2, 0.3, 1.0]), (b, [lo, hi, cc]) => {
        const got = ctpo.run(toRagged(b), {
          params: { cumulative: 0, la_power: 0, la_clip_low: lo, la_clip_high: hi, la_clip_c: cc },
        });
        const want = dapo.run(toRagged(b), {
          params: { eps_low: -Math.expm1(-lo), eps_high: Math.expm1(hi), clip_c: Math.exp(cc) },
        });
        expectSameLossAndGrad(got, want);
      }),
      { numRuns: 300 },
    );
  });

  it('responses of one valid token: the cumulative ratio is the token ratio, so ctpo (la = 0) = dapo', () => {
    fc.assert(
      fc.property(arbRefBatch({ maxLen: 1 }), fc.constantFrom(0, 1), (b, geomean) => {
        const got = ctpo.run(toRagged(b), { params: { la: 0, geomean } });
        const want = dapo.run(toRagged(b), { params: { eps_low: 0.2, eps_high: 0.2, clip_c: 3 } });
        expectSameLossAndGrad(got, want);
      }),
      { numRuns: 200 },
    );
  });

  it('at the last valid token, cumprod is the full-sequence ratio and geomean the GSPO ratio', () => {
    fc.assert(
      fc.property(arbRefBatch({ largeNoise: 1 }), (b) => {
        const cum = ctpo.run(toRagged(b)).exports.ratio!.data;
        const geo = ctpo.run(toRagged(b), { params: { geomean: 1 } }).exports.ratio!.data;
        for (const v of validTokens(b)) {
          if (v.length === 0) continue;
          const last = v[v.length - 1]!;
          const logSum = v.reduce((acc, t) => acc + (b.logp[t]! - b.old_logp[t]!), 0);
          expect(close(cum[last]!, Math.exp(Math.min(logSum, 10)))).toBe(true);
          expect(close(geo[last]!, Math.exp(logSum / v.length))).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('on-policy: R = 1 and the gradient is -A / N per valid token (REINFORCE, token-mean), any variant', () => {
    fc.assert(
      fc.property(arbRefBatch({ onPolicy: true }), arbParams, (b, params) => {
        const got = ctpo.run(toRagged(b), { params });
        const A = groupAdvantages(b, b.reward, CTPO_DEFAULTS.adv_eps);
        const N = b.mask.reduce((x, y) => x + y, 0);
        const want = new Array<number>(b.mask.length).fill(0);
        validTokens(b).forEach((v, s) => v.forEach((t) => (want[t] = -A[s]! / N)));
        expectGradClose(got.grads.logp!.data, want);
      }),
      { numRuns: 200 },
    );
  });
});

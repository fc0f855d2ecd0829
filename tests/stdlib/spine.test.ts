/**
 * stdlib/spine.credo (interpreter) against the hand-written reference tests/reference/spine.ts,
 * plus the special cases stated in its header.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { type ArbRefBatchOptions } from '../reference/arbitrary.js';
import { groupAdvantages, numTokens } from '../reference/batch.js';
import { checkGradFD } from '../reference/fd.js';
import { spineForks, spineRef, SPINE_DEFAULTS, type SpineBatch, type SpineParams } from '../reference/spine.js';
import {
  arbBatch,
  arbEntropyValue,
  close,
  expectAgrees,
  expectSameLossAndGrad,
  toRaggedWith,
  withTokenFeatures,
} from './tokenweight-helpers.js';

const spine = compile('spine');
const dapo = compile('dapo');

const arbSpineBatch = (opts: ArbRefBatchOptions = {}): fc.Arbitrary<SpineBatch> =>
  withTokenFeatures(arbBatch(opts), { entropy: arbEntropyValue() });
const ragged = (b: SpineBatch) => toRaggedWith(b, { entropy: { level: 'token', data: b.entropy } });

const params = fc.record(
  {
    eps_high: fc.constantFrom(0.2, 0.28),
    clip_c: fc.constantFrom(3, 10),
    q: fc.constantFrom(0.8, 0.5, 0.35, 0, 1),
    fork_per_seq: fc.constantFrom(0, 1),
    lambda: fc.constantFrom(0.01, 0, 1),
    h_low: fc.constantFrom(0.5, 1),
    h_high: fc.constantFrom(2, 1.2),
    band_pow: fc.constantFrom(1, 2),
    norm_selected: fc.constantFrom(1, 0),
    beta: fc.constantFrom(0, 0.1),
  },
  { requiredKeys: [] },
);

describe('spine equals its reference', () => {
  it('on random batches with default params', () => {
    fc.assert(
      fc.property(arbSpineBatch(), (b) => {
        const want = spineRef(b);
        expectAgrees(spine.run(ragged(b)), want, { entropy: want.grad_entropy });
      }),
      { numRuns: 200 },
    );
  });

  it('on random batches and params (loss, metrics, gradients w.r.t. logp and entropy)', () => {
    fc.assert(
      fc.property(arbSpineBatch(), params, (b, p) => {
        const want = spineRef(b, p);
        expectAgrees(spine.run(ragged(b), { params: p }), want, { entropy: want.grad_entropy });
      }),
      { numRuns: 400 },
    );
  });

  it('with large log-ratios (the ±20 clamps are reached)', () => {
    fc.assert(
      fc.property(arbSpineBatch({ largeNoise: 25 }), params, (b, p) => {
        const want = spineRef(b, p);
        expectAgrees(spine.run(ragged(b), { params: p }), want, { entropy: want.grad_entropy });
      }),
      { numRuns: 200 },
    );
  });

  it('the reference logp-gradient matches finite differences of the reference loss', () => {
    fc.assert(
      fc.property(arbSpineBatch({ maxGroups: 3 }), params, (b, p) => {
        const rep = checkGradFD((x) => spineRef(x as SpineBatch, p), b);
        expect(rep.failures).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });

  it('the reference entropy-gradient matches finite differences (away from selection changes and band kinks)', () => {
    const h = 1e-6;
    fc.assert(
      fc.property(arbSpineBatch({ maxGroups: 3 }), params, (b, p) => {
        const pp: SpineParams = { ...SPINE_DEFAULTS, ...p };
        const base = spineRef(b, p);
        const forks0 = spineForks(b, pp.q, pp.fork_per_seq).join();
        for (let j = 0; j < numTokens(b); j++) {
          if (b.mask[j] !== 1) continue;
          const H = b.entropy[j]!;
          if (Math.abs(H - pp.h_low) < 10 * h || Math.abs(H - pp.h_high) < 10 * h) continue;
          const at = (x: number) => {
            const entropy = b.entropy.slice();
            entropy[j] = x;
            return { ...b, entropy };
          };
          const [bp, bm] = [at(H + h), at(H - h)];
          if (
            spineForks(bp, pp.q, pp.fork_per_seq).join() !== forks0 ||
            spineForks(bm, pp.q, pp.fork_per_seq).join() !== forks0
          )
            continue;
          const fd = (spineRef(bp, p).loss - spineRef(bm, p).loss) / (2 * h);
          expect(
            Math.abs(base.grad_entropy[j]! - fd) <= 1e-6 + 1e-5 * Math.abs(fd),
            `dH[${j}] ${base.grad_entropy[j]} vs fd ${fd}`,
          ).toBe(true);
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('spine special cases', () => {
  it('q = 0 (every token a fork), lambda = 0, beta = 0 is TTRL = DAPO with eps_high = 0.2, clip_c = 3', () => {
    fc.assert(
      fc.property(arbSpineBatch(), fc.constantFrom(0, 1), fc.constantFrom(0, 1), (b, perSeq, normSel) => {
        const got = spine.run(ragged(b), {
          params: { q: 0, lambda: 0, beta: 0, fork_per_seq: perSeq, norm_selected: normSel },
        });
        const want = dapo.run(toRaggedWith(b, {}), { params: { eps_low: 0.2, eps_high: 0.2, clip_c: 3 } });
        expectSameLossAndGrad(got, want);
      }),
      { numRuns: 200 },
    );
  });

  it('non-forking tokens never receive gradient (beta = 0)', () => {
    fc.assert(
      fc.property(arbSpineBatch(), params, (b, p) => {
        const pp = { ...p, beta: 0 };
        const got = spine.run(ragged(b), { params: pp });
        const fork = spineForks(b, pp.q ?? 0.8, pp.fork_per_seq ?? 0);
        fork.forEach((f, t) => {
          if (!f) {
            expect(Math.abs(got.grads.logp.data[t]!)).toBe(0);
            expect(Math.abs(got.grads.entropy!.data[t]!)).toBe(0);
          }
        });
      }),
      { numRuns: 150 },
    );
  });

  it('on-policy with lambda = 0, beta = 0: REINFORCE on the forks, gradient -A / #forks', () => {
    fc.assert(
      fc.property(
        arbSpineBatch({ onPolicy: true }),
        fc.constantFrom(0.8, 0.5),
        fc.constantFrom(0, 1),
        (b, q, perSeq) => {
          const g = spine.run(ragged(b), { params: { lambda: 0, q, fork_per_seq: perSeq } }).grads.logp.data;
          const A = groupAdvantages(b, b.reward, 1e-6);
          const fork = spineForks(b, q, perSeq);
          const n = Math.max(fork.filter((f) => f).length, 1);
          for (let s = 0; s + 1 < b.offsets.length; s++) {
            for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
              const want = fork[t] ? -A[s]! / n : 0;
              expect(close(g[t]!, want), `grad[${t}] ${g[t]} vs ${want}`).toBe(true);
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('tied entropies: every token at the quantile is a fork (guards the linear-quantile rounding workaround)', () => {
    fc.assert(
      fc.property(
        withTokenFeatures(arbBatch({ minGroups: 1 }), { entropy: fc.constant(1.5) }),
        fc.constantFrom(0.8, 0.00001, 0.35, 0.3),
        fc.constantFrom(0, 1),
        (b, q, perSeq) => {
          const got = spine.run(ragged(b), { params: { q, fork_per_seq: perSeq } });
          const N = b.mask.reduce((x, y) => x + y, 0);
          expect(got.metrics.fork_frac).toBe(N > 0 ? 1 : 0);
        },
      ),
      { numRuns: 100 },
    );
  });
});

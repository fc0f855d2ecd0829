/**
 * stdlib/delta.credo (interpreter) against the hand-written reference tests/reference/delta.ts, plus
 * the special cases stated in its header.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { arbRefBatch, uniformDouble, type ArbRefBatchOptions } from '../reference/arbitrary.js';
import { numSeqs } from '../reference/batch.js';
import { checkGradFD } from '../reference/fd.js';
import { deltaRef, deltaWeights, type DeltaBatch } from '../reference/delta.js';
import {
  arbSigned,
  close,
  expectAgrees,
  expectSameLossAndGrad,
  expectVecClose,
  toRaggedWith,
  withTokenFeatures,
} from './credit-helpers.js';

const delta = compile('delta');
const dapo = compile('dapo');

/** Margins in [-3, 3]; margin_prev either equal to margin (K = 0) or a perturbed copy. */
function arbBatch(opts: ArbRefBatchOptions = {}): fc.Arbitrary<DeltaBatch> {
  return withTokenFeatures(arbRefBatch(opts), {
    margin: arbSigned(3),
    noise: fc.oneof(fc.constant(0), uniformDouble(-1, 1)),
  }).map(({ noise, ...b }) => ({ ...b, margin_prev: b.margin.map((m, t) => m + noise[t]!) }));
}

const ragged = (b: DeltaBatch) =>
  toRaggedWith(b, { margin: { level: 'token', data: b.margin }, margin_prev: { level: 'token', data: b.margin_prev } });

const params = fc.record(
  {
    lam_min: fc.constantFrom(0.8, 0.5, 1),
    lam_max: fc.constantFrom(1.2, 2, 1),
    gamma_time: fc.constantFrom(1, 0.5, 3),
    eps_low: fc.constantFrom(0.2, 0.1),
    eps_high: fc.constantFrom(0.28, 0.2),
    clip_c: fc.constantFrom(10, 3, 1.5),
    adv_eps: fc.constantFrom(1e-6, 1e-2),
    overlong_buffer: fc.constantFrom(4096, 0, 3),
    max_len: fc.constantFrom(20480, 6),
    overlong_penalty: fc.constantFrom(1, 0.5),
  },
  { requiredKeys: [] },
);

describe('delta equals its reference', () => {
  it('on random batches with default params', () => {
    fc.assert(
      fc.property(arbBatch(), (b) => expectAgrees(delta.run(ragged(b)), deltaRef(b))),
      { numRuns: 200 },
    );
  });

  it('on random batches and params (loss, metrics, gradient)', () => {
    fc.assert(
      fc.property(arbBatch(), params, (b, p) => expectAgrees(delta.run(ragged(b), { params: p }), deltaRef(b, p))),
      { numRuns: 300 },
    );
  });

  it('exports the reference weights', () => {
    fc.assert(
      fc.property(arbBatch(), params, (b, p) => {
        const got = Array.from(delta.run(ragged(b), { params: p }).exports.weight!.data, (x, t) =>
          b.mask[t] === 1 ? x : 0,
        );
        expectVecClose(got, deltaWeights(b, p).w, 'weight');
      }),
      { numRuns: 150 },
    );
  });

  it('the reference gradient matches finite differences of the reference loss', () => {
    fc.assert(
      fc.property(arbBatch({ maxGroups: 3 }), params, (b, p) => {
        expect(checkGradFD((x) => deltaRef(x as DeltaBatch, p), b).failures).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });
});

describe('delta special cases', () => {
  it('lam_min = lam_max (any value) is stdlib dapo with the same clip and overlong params', () => {
    fc.assert(
      fc.property(
        arbBatch(),
        fc.constantFrom(1, 0.8, 1.7),
        fc.constantFrom(0, 3),
        fc.constantFrom(10, 3),
        (b, lam, buf, clip_c) => {
          const shared = { overlong_buffer: buf, max_len: 6, clip_c };
          const got = delta.run(ragged(b), { params: { lam_min: lam, lam_max: lam, ...shared } });
          expectSameLossAndGrad(got, dapo.run(toRaggedWith(b), { params: shared }));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('all margins 0 and no zero-advantage response: every weight is 1 (= dapo)', () => {
    // distinct continuous rewards: no response has a zero advantage in a group of two or more
    const noZeroAdv = arbRefBatch({ rewards: 'continuous', minGroups: 1 }).map((b) => ({
      ...b,
      reward: b.reward.map((r, s) => r + 1e-3 * s),
    }));
    fc.assert(
      fc.property(noZeroAdv, (b0) => {
        const sizes = new Map<number, number>();
        b0.groupOf.forEach((g) => sizes.set(g, (sizes.get(g) ?? 0) + 1));
        fc.pre(b0.groupOf.every((g) => sizes.get(g)! > 1));
        const b: DeltaBatch = { ...b0, margin: b0.mask.map(() => 0), margin_prev: b0.mask.map(() => 0) };
        const got = delta.run(ragged(b));
        for (let t = 0; t < b.mask.length; t++)
          if (b.mask[t] === 1) expect(close(got.exports.weight!.data[t]!, 1)).toBe(true);
        expectSameLossAndGrad(got, dapo.run(toRaggedWith(b), { params: { overlong_buffer: 4096 } }));
      }),
      { numRuns: 100 },
    );
  });

  it('weights average 1 over the valid tokens, grow with the margin on side + and shrink with it on side -', () => {
    fc.assert(
      fc.property(arbBatch(), params, (b, p) => {
        const { A } = deltaWeights(b, p);
        const got = delta.run(ragged(b), { params: p }).exports.weight!.data;
        const valid = b.mask.map((m, t) => (m === 1 ? t : -1)).filter((t) => t >= 0);
        if (valid.length === 0) return;
        expect(close(valid.reduce((x, t) => x + got[t]!, 0) / valid.length, 1)).toBe(true);
        const seqOf = (t: number) => b.offsets.findIndex((o, s) => s < numSeqs(b) && t >= o && t < b.offsets[s + 1]!);
        for (const t of valid) {
          for (const u of valid) {
            const [st, su] = [seqOf(t), seqOf(u)];
            if (A[st]! > 0 && A[su]! > 0 && b.margin[t]! > b.margin[u]!)
              expect(got[t]!).toBeGreaterThanOrEqual(got[u]!);
            if (A[st]! < 0 && A[su]! < 0 && b.margin[t]! > b.margin[u]!) expect(got[t]!).toBeLessThanOrEqual(got[u]!);
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it('on-policy: REINFORCE, gradient -A_i w~_t / N at every valid token', () => {
    fc.assert(
      fc.property(arbBatch({ onPolicy: true }), (b) => {
        const g = delta.run(ragged(b)).grads.logp!.data;
        const { w, A } = deltaWeights(b);
        const N = b.mask.reduce((x, m) => x + m, 0);
        for (let s = 0; s < numSeqs(b); s++) {
          for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
            const want = b.mask[t] === 1 ? (-A[s]! * w[t]!) / N : 0;
            expect(close(g[t]!, want), `grad[${t}] ${g[t]} vs ${want}`).toBe(true);
          }
        }
      }),
      { numRuns: 150 },
    );
  });
});

/**
 * stdlib/attn_entropy.credo (interpreter) against the hand-written reference
 * tests/reference/attn_entropy.ts, plus the special cases stated in its header.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { arbRefBatch, type ArbRefBatchOptions } from '../reference/arbitrary.js';
import { groupAdvantages, numSeqs } from '../reference/batch.js';
import { checkGradFD } from '../reference/fd.js';
import { attnEntropyRef, entropyPercentiles, type AttnEntropyBatch } from '../reference/attn_entropy.js';
import {
  arbScore,
  close,
  expectAgrees,
  expectSameLossAndGrad,
  toRaggedWith,
  validTokens,
  withTokenFeatures,
} from './credit-helpers.js';

const ae = compile('attn_entropy');
const dapo = compile('dapo');

const arbBatch = (opts: ArbRefBatchOptions = {}): fc.Arbitrary<AttnEntropyBatch> =>
  withTokenFeatures(arbRefBatch(opts), { attn_entropy: arbScore() });
const ragged = (b: AttnEntropyBatch) => toRaggedWith(b, { attn_entropy: { level: 'token', data: b.attn_entropy } });

const arbClock = fc.oneof(
  fc.constant({ step: 0, totalSteps: 0 }),
  fc
    .integer({ min: 1, max: 500 })
    .chain((totalSteps) => fc.integer({ min: 0, max: totalSteps + 20 }).map((step) => ({ step, totalSteps }))),
);

const params = fc.record(
  {
    kappa_start: fc.constantFrom(-0.5, 0, 0.3, -1),
    kappa_end: fc.constantFrom(0.5, 0, -0.3, 1),
    per_seq: fc.constantFrom(0, 1),
    eps_low: fc.constantFrom(0.2, 0.1),
    eps_high: fc.constantFrom(0.28, 0.2),
    clip_c: fc.constantFrom(10, 3),
    adv_eps: fc.constantFrom(1e-6, 1e-2),
  },
  { requiredKeys: [] },
);

describe('attn_entropy equals its reference', () => {
  it('on random batches with default params over the training clock', () => {
    fc.assert(
      fc.property(arbBatch(), arbClock, (b, c) =>
        expectAgrees(ae.run(ragged(b), c), attnEntropyRef(b, {}, c.step, c.totalSteps)),
      ),
      { numRuns: 200 },
    );
  });

  it('on random batches, params and clocks (loss, metrics, gradient)', () => {
    fc.assert(
      fc.property(arbBatch(), params, arbClock, (b, p, c) => {
        expectAgrees(ae.run(ragged(b), { params: p, ...c }), attnEntropyRef(b, p, c.step, c.totalSteps));
      }),
      { numRuns: 300 },
    );
  });

  it('the reference gradient matches finite differences of the reference loss', () => {
    fc.assert(
      fc.property(arbBatch({ maxGroups: 3 }), params, arbClock, (b, p, c) => {
        expect(checkGradFD((x) => attnEntropyRef(x as AttnEntropyBatch, p, c.step, c.totalSteps), b).failures).toEqual(
          [],
        );
      }),
      { numRuns: 60 },
    );
  });
});

describe('attn_entropy special cases', () => {
  it('kappa_start = kappa_end = 0 (w ≡ 1) is stdlib dapo', () => {
    fc.assert(
      fc.property(arbBatch(), arbClock, fc.constantFrom(0, 1), fc.constantFrom(10, 3), (b, c, per_seq, clip_c) => {
        const got = ae.run(ragged(b), { params: { kappa_start: 0, kappa_end: 0, per_seq, clip_c }, ...c });
        expectSameLossAndGrad(got, dapo.run(toRaggedWith(b), { params: { clip_c } }));
      }),
      { numRuns: 150 },
    );
  });

  it('a constant kappa gives the same loss at every step', () => {
    fc.assert(
      fc.property(arbBatch(), fc.constantFrom(-0.5, 0.7), fc.integer({ min: 0, max: 200 }), (b, kappa, step) => {
        const p = { kappa_start: kappa, kappa_end: kappa };
        expectSameLossAndGrad(
          ae.run(ragged(b), { params: p, step, totalSteps: 100 }),
          ae.run(ragged(b), { params: p, step: 0, totalSteps: 100 }),
        );
      }),
      { numRuns: 100 },
    );
  });

  it('weights average 1 over each scope; the strongest anchor weighs 1 - kappa at step 0 and the strongest explorer 1 + kappa at the end', () => {
    fc.assert(
      fc.property(arbBatch(), fc.constantFrom(0, 1), (b, per_seq) => {
        const start = ae.run(ragged(b), { params: { per_seq }, step: 0, totalSteps: 100 }).exports.weight!.data;
        const end = ae.run(ragged(b), { params: { per_seq }, step: 100, totalSteps: 100 }).exports.weight!.data;
        const u = entropyPercentiles(b, per_seq === 1);
        const scopes = per_seq === 1 ? validTokens(b) : [validTokens(b).flat()];
        for (const ts of scopes) {
          if (ts.length === 0) continue;
          expect(close(ts.reduce((x, t) => x + start[t]!, 0) / ts.length, 1)).toBe(true);
          expect(close(ts.reduce((x, t) => x + end[t]!, 0) / ts.length, 1)).toBe(true);
          for (const t of ts) {
            // default kappa -0.5 → 0.5: the lowest-entropy token (u = 0) weighs 1.5 at step 0, 0.5 at the end
            if (ts.length > 1 && u[t] === 0) expect([close(start[t]!, 1.5), close(end[t]!, 0.5)]).toEqual([true, true]);
            if (ts.length > 1 && u[t] === 1) expect([close(start[t]!, 0.5), close(end[t]!, 1.5)]).toEqual([true, true]);
            if (ts.length === 1) expect([start[t], end[t]]).toEqual([1, 1]);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('on-policy: REINFORCE with token-mean, gradient -A w / N', () => {
    fc.assert(
      fc.property(arbBatch({ onPolicy: true }), arbClock, (b, c) => {
        const run = ae.run(ragged(b), c);
        const g = run.grads.logp!.data;
        const w = run.exports.weight!.data;
        const A = groupAdvantages(b, b.reward, 1e-6);
        const N = b.mask.reduce((x, m) => x + m, 0);
        for (let s = 0; s < numSeqs(b); s++) {
          for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
            const want = b.mask[t] === 1 ? (-A[s]! * w[t]!) / N : 0;
            expect(close(g[t]!, want), `grad[${t}] ${g[t]} vs ${want}`).toBe(true);
          }
        }
      }),
      { numRuns: 100 },
    );
  });
});

/**
 * stdlib/diversity_precision.credo against tests/reference/diversity_precision.ts on random vocabulary
 * batches, its gradient against finite differences (weights held, as `sg` holds them), and the
 * special cases: β = 0 without negative rewards is cross-entropy, k does not matter when
 * λ_head = λ_tail, the bisection's top k is the sorted top k, β < 0 sharpens the ground-truth update.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { diversityPrecisionRef, topKMembers } from '../reference/diversity_precision.js';
import { values } from '../reference/family.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { arbFor, fdFailures, itAgreesWithFamilyRef } from './family-helpers.js';

const dp = compile('diversity_precision');
const ce = compile({
  source: `objective ce
import vocab
input logits : token x vocab grad
input token_id : token i32
mask mask : token
loss = mean(vocab.nll(logits, token_id))
`,
  path: 'ce.credo',
});

const params = fc.record({
  beta: fc.constantFrom(-0.25, 0, 0.5, 1, -1),
  lambda_head: fc.constantFrom(0, 0.1, -0.05),
  lambda_tail: fc.constantFrom(0, -0.1, 0.2),
  k: fc.constantFrom(1, 2, 3, 100),
});

/** Batches with −inf logits (probability 0) everywhere but at the ground-truth token of a valid token. */
const withMaskedOut = arbFor(dp).map((b) => {
  const tensors = new Map(b.tensors);
  const t = b.tensors.get('logits')!;
  const ids = values(b, 'token_id');
  const V = b.vocabSize;
  const data = t.data.map((x, j) =>
    (x < -3 || x === -8) && !(b.mask[Math.floor(j / V)] === 1 && j % V === ids[Math.floor(j / V)]) ? -Infinity : x,
  );
  tensors.set('logits', { ...t, data });
  return { ...b, tensors };
});

describe('diversity_precision equals its reference', () => {
  itAgreesWithFamilyRef(dp, diversityPrecisionRef, params);
  itAgreesWithFamilyRef(dp, diversityPrecisionRef, params, {
    batches: withMaskedOut,
    numRuns: 100,
    what: 'with −inf logits',
  });

  it("the reference's hand-derived gradients equal finite differences of its loss (weights held)", () => {
    let checked = 0;
    fc.assert(
      fc.property(arbFor(dp), params, (b, p) => {
        const r = fdFailures((x) => diversityPrecisionRef(x, p, { weightsFrom: b }), b);
        checked += r.checked;
        expect(r.failures).toEqual([]);
      }),
      { numRuns: 60 },
    );
    expect(checked).toBeGreaterThan(0);
  });
});

describe('diversity_precision special cases', () => {
  it('β = 0 and no negative rewards is cross-entropy, value and gradient', () => {
    fc.assert(
      fc.property(arbFor(dp), fc.constantFrom(1, 2, 100), (b, k) => {
        const a = dp.run(b, { params: { beta: 0, lambda_head: 0, lambda_tail: 0, k } });
        const c = ce.run(b);
        expect(close(a.loss, c.loss)).toBe(true);
        expect(close(a.metrics.nll!, c.loss)).toBe(true);
        expectVecClose(a.grads.logits!.data, c.grads.logits!.data, 'grad.logits');
      }),
      { numRuns: 100 },
    );
  });

  it('with λ_head = λ_tail the top-k split does not matter', () => {
    fc.assert(
      fc.property(arbFor(dp), fc.constantFrom(-0.1, 0.2), (b, lam) => {
        const run = (k: number) => dp.run(b, { params: { lambda_head: lam, lambda_tail: lam, k } });
        const [a, c] = [run(1), run(100)];
        expect(close(a.loss, c.loss)).toBe(true);
        expectVecClose(a.grads.logits!.data, c.grads.logits!.data, 'grad.logits');
      }),
      { numRuns: 100 },
    );
  });

  it('with λ_head ≠ λ_tail the split matters (k = 1 vs k = V)', () => {
    const differs = fc.sample(arbFor(dp), { numRuns: 50, seed: 4 }).some((b) => {
      const run = (k: number) => dp.run(b, { params: { lambda_head: 0.1, lambda_tail: -0.1, k } });
      return !close(run(1).loss, run(100).loss);
    });
    expect(differs).toBe(true);
  });

  it('the bisection top k is the sorted top k on rows whose values are 0.01 apart, within 24 of the max', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: -1200, max: 1200 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 45 }),
        (ints, k) => {
          const z = ints.map((i) => i / 100);
          const kth = [...z].sort((a, c) => c - a)[Math.min(k, z.length) - 1]!;
          expect(topKMembers(z, k)).toEqual(z.map((x) => x >= kth));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('entries more than 24 below the row maximum are tail (probability < 4e-11 of the maximum)', () => {
    expect(topKMembers([0, -23.5, -24.5, -30], 4)).toEqual([true, true, false, false]);
  });

  it('β < 0 (precision) pushes the ground-truth logit at least as hard as cross-entropy', () => {
    fc.assert(
      fc.property(arbFor(dp), (b) => {
        const a = dp.run(b, { params: { beta: -0.25 } }).grads.logits!.data;
        const c = ce.run(b).grads.logits!.data;
        const ids = values(b, 'token_id');
        for (let t = 0; t < b.numTokens; t++) {
          if (b.mask[t] !== 1) continue;
          const j = t * b.vocabSize + ids[t]!;
          expect(Math.abs(a[j]!)).toBeGreaterThanOrEqual(Math.abs(c[j]!) * (1 - 1e-12));
        }
      }),
      { numRuns: 100 },
    );
  });
});

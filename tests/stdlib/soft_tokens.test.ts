/**
 * stdlib/soft_tokens.credo (Soft Tokens, Hard Truths; methods-dpo.md §13) against
 * tests/reference/soft_tokens.ts on random batches (the vocabulary axis is the embedding axis), its
 * gradient against finite differences, and the special cases: with no CoT step it is RLOO
 * REINFORCE on the hard tokens, the Gaussian density depends on h − μ only, and a group of one
 * sample has no gradient.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { rlooAdvantages, softTokensRef } from '../reference/soft_tokens.js';
import { validTokensOf, values } from '../reference/family.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const obj = compile('soft_tokens');
const params = fc.record({
  sigma: fc.constantFrom(1, 0.5, 2, 0.1),
  answer_w: fc.constantFrom(1, 0, 0.5),
});
/** h = μ + σ·ε sometimes (a well-formed draw), else the generic independent values. */
const batches = arbFor(obj).chain((b) =>
  fc.record({ drawn: fc.boolean(), sigma: fc.constantFrom(1, 0.5) }).map(({ drawn, sigma }) => {
    if (!drawn) return b;
    const mu = values(b, 'mu');
    const h = values(b, 'h');
    const tensors = new Map(b.tensors);
    tensors.set('h', {
      ...b.tensors.get('h')!,
      data: Float64Array.from(mu, (m, i) => Math.fround(m + sigma * (h[i]! / 4))),
    });
    return { ...b, tensors };
  }),
);
const withTensor = (b: RaggedBatch, name: string, data: Float64Array): RaggedBatch => {
  const tensors = new Map(b.tensors);
  tensors.set(name, { ...b.tensors.get(name)!, data });
  return { ...b, tensors };
};

describe('soft_tokens equals its reference', () => {
  itAgreesWithFamilyRef(obj, softTokensRef, params, { batches });
  itHasFdGradients(obj, softTokensRef, params, { batches, numRuns: 40 });
});

describe('soft_tokens special cases', () => {
  it('with no CoT step: RLOO REINFORCE on the hard tokens, loss = −(1/K) Σ A_k Σ logp (hard-token baseline)', () => {
    fc.assert(
      fc.property(batches, (b) => {
        const x = withTensor(b, 'cot', new Float64Array(b.numTokens));
        const out = obj.run(x);
        const adv = rlooAdvantages(x);
        const logp = values(x, 'logp');
        let want = 0;
        for (let s = 0; s < x.numSeqs; s++)
          want -= (adv[s]! * validTokensOf(x, s).reduce((a, t) => a + logp[t]!, 0)) / x.numSeqs;
        expect(close(out.loss, want)).toBe(true);
        expect(out.grads.mu!.data.every((g) => g === 0)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('the density depends on h − μ only: shifting every h and μ by the same amount changes neither loss nor gradient', () => {
    fc.assert(
      fc.property(batches, fc.constantFrom(1, -3), (b, c) => {
        const a = obj.run(b);
        const shifted = withTensor(
          withTensor(
            b,
            'mu',
            Float64Array.from(values(b, 'mu'), (v) => v + c),
          ),
          'h',
          Float64Array.from(values(b, 'h'), (v) => v + c),
        );
        const s = obj.run(shifted);
        expect(close(s.loss, a.loss, 1e-9)).toBe(true);
        expectVecClose(s.grads.mu!.data, Array.from(a.grads.mu!.data), 'grad mu', 1e-9);
      }),
      { numRuns: 50 },
    );
  });

  it('a group of one sample has advantage 0 and no gradient', () => {
    fc.assert(
      fc.property(batches, (b) => {
        const groupOf = Int32Array.from({ length: b.numSeqs }, (_, s) => s);
        const x = { ...b, groupOf, numGroups: b.numSeqs, groupIds: Array.from({ length: b.numSeqs }, (_, s) => s) };
        const out = obj.run(x);
        expect(out.grads.logp!.data.every((g) => g === 0) && out.grads.mu!.data.every((g) => g === 0)).toBe(true);
      }),
      { numRuns: 30 },
    );
  });
});

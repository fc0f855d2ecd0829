/**
 * stdlib/cdpo.credo (cDPO, critical tokens: the code's per-position form and the paper's summed form)
 * against tests/reference/cdpo.ts, its gradient against finite differences, and its special cases.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { cdpoRef } from '../reference/cdpo.js';
import { validTokensOf } from '../reference/family.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const cdpo = compile('cdpo');
const dpo = compile('dpo');
const params = fc.record({
  beta: fc.constantFrom(0.1, 0.5, 2),
  only_neg: fc.constantFrom(1, 0),
  label_smoothing: fc.constantFrom(0, 0.1),
  form: fc.constantFrom(0, 1, 0, 2),
  width: fc.constantFrom(0, 0, 3, 10),
});

/** The batch with p_ce set to `v` everywhere (all weights 1 for v = 0 and only_neg = 1). */
const withPce = (b: RaggedBatch, v: number): RaggedBatch => {
  const tensors = new Map(b.tensors);
  tensors.set('p_ce', { level: 'token', dtype: 'f32', data: new Float64Array(b.numTokens).fill(v) });
  return { ...b, tensors };
};

describe('cdpo equals its reference', () => {
  itAgreesWithFamilyRef(cdpo, cdpoRef, params);
  itHasFdGradients(cdpo, cdpoRef, params);
});

describe('cdpo special cases', () => {
  it('a fully masked batch gives a loss of log 2 (every pair has margin 0) and a zero gradient', () => {
    for (const b of fc.sample(arbFor(cdpo), { numRuns: 20, seed: 1 })) {
      const r = cdpo.run({ ...b, mask: new Uint8Array(b.numTokens) });
      expect(close(r.loss, Math.log(2))).toBe(true);
      expect(Array.from(r.grads.logp!.data).every((g) => g === 0)).toBe(true);
    }
  });

  it('the paper form with all weights 1 (p_ce = 0) is dpo, value and gradient', () => {
    fc.assert(
      fc.property(arbFor(cdpo), fc.constantFrom(0, 0.1), (b0, ls) => {
        const b = withPce(b0, 0);
        const a = cdpo.run(b, { params: { form: 1, label_smoothing: ls } });
        const d = dpo.run(b, { params: { label_smoothing: ls } });
        expect(close(a.loss, d.loss)).toBe(true);
        expectVecClose(a.grads.logp!.data, Array.from(d.grads.logp!.data), 'grad logp');
        for (const k of Object.keys(d.metrics)) expect(close(a.metrics[k]!, d.metrics[k]!), k).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('only_neg = 0 with p_ce = 1 on y_w and 0 on y_l is also unit weights', () => {
    fc.assert(
      fc.property(arbFor(cdpo), (b0) => {
        const chosen = b0.tensors.get('chosen')!.data;
        const data = new Float64Array(b0.numTokens);
        for (let s = 0; s < b0.numSeqs; s++)
          for (let t = b0.offsets[s]!; t < b0.offsets[s + 1]!; t++) data[t] = chosen[s]!;
        const tensors = new Map(b0.tensors);
        tensors.set('p_ce', { level: 'token', dtype: 'f32', data });
        const b = { ...b0, tensors };
        for (const form of [0, 1]) {
          const x = cdpo.run(b, { params: { form, only_neg: 0 } }).loss;
          expect(close(x, cdpo.run(withPce(b0, 0), { params: { form } }).loss)).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('the code form with all weights 1 is not dpo on longer responses, and is dpo when they have ≤ 1 token', () => {
    let differs = false;
    let shortSeen = 0;
    fc.assert(
      fc.property(arbFor(cdpo), (b0) => {
        const b = withPce(b0, 0);
        const gap = Math.abs(cdpo.run(b).loss - dpo.run(b).loss);
        const short = [...Array(b.numSeqs).keys()].every((s) => validTokensOf(b, s).length <= 1);
        if (short) {
          shortSeen++;
          expect(gap).toBeLessThan(1e-12);
        } else if (gap > 1e-6) differs = true;
      }),
      { numRuns: 300 },
    );
    expect(differs).toBe(true);
    expect(shortSeen).toBeGreaterThan(0);
  });

  it('width pads every pair with log 2 per extra position', () => {
    fc.assert(
      fc.property(arbFor(cdpo), (b) => {
        const K = Math.max(1, ...[...Array(b.numSeqs).keys()].map((s) => validTokensOf(b, s).length));
        const W = K + 5;
        const base = cdpo.run(b).loss;
        const wide = cdpo.run(b, { params: { width: W } }).loss;
        expect(close(wide, (base * K + 5 * Math.log(2)) / W)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

/**
 * stdlib/smdm.credo (SMDM masked-diffusion loss, methods-dpo.md §15) against tests/reference/smdm.ts
 * on random batches, its gradient against finite differences, and the special cases of §19 item 11:
 * the normaliser is every position (pretraining, B·L) or the answer positions (SFT), the weight is
 * 1/p with p = (1 − 1e-3)t + 1e-3, and mask_eps = 0 gives the LLaDA / MDLM 1/t weighting.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { smdmRef } from '../reference/smdm.js';
import { validTokensOf, values } from '../reference/family.js';
import { close } from '../helpers/expect.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const obj = compile('smdm');
const batches = arbFor(obj);
const params = fc.record({
  mask_eps: fc.constantFrom(1e-3, 0, 0.1),
  sft: fc.constantFrom(0, 1),
});
const withTensor = (b: RaggedBatch, name: string, data: Float64Array): RaggedBatch => {
  const tensors = new Map(b.tensors);
  tensors.set(name, { ...b.tensors.get(name)!, data });
  return { ...b, tensors };
};
const count = (b: RaggedBatch, pred: (t: number) => boolean) => {
  let n = 0;
  for (let s = 0; s < b.numSeqs; s++) for (const t of validTokensOf(b, s)) if (pred(t)) n++;
  return n;
};

describe('smdm equals its reference', () => {
  itAgreesWithFamilyRef(obj, smdmRef, params, { batches });
  itHasFdGradients(obj, smdmRef, params, { batches, numRuns: 40 });
});

describe('smdm special cases (§19 item 11)', () => {
  it('the two normalisers differ by the ratio of all positions to answer positions (B·L vs the answer count)', () => {
    fc.assert(
      fc.property(batches, (b) => {
        const prompt = values(b, 'prompt');
        const all = count(b, () => true);
        const answer = count(b, (t) => prompt[t] === 0);
        const pre = obj.run(b, { params: { sft: 0 } }).loss;
        const ft = obj.run(b, { params: { sft: 1 } }).loss;
        if (answer > 0) expect(close(pre * all, ft * answer)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('without prompt positions, pretraining and SFT normalisers agree', () => {
    fc.assert(
      fc.property(batches, (b) => {
        const x = withTensor(b, 'prompt', new Float64Array(b.numTokens));
        expect(close(obj.run(x, { params: { sft: 0 } }).loss, obj.run(x, { params: { sft: 1 } }).loss)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('the weight is 1/p with p = (1 − 1e-3) t + 1e-3: at t = 0 a masked position weighs 1000', () => {
    fc.assert(
      fc.property(batches, (b) => {
        const at = (tv: number) => obj.run(withTensor(b, 't', new Float64Array(b.numSeqs).fill(tv))).loss;
        expect(close(at(0), 1000 * at(1), 1e-9)).toBe(true);
        expect(close(at(0.5), at(1) / 0.5005, 1e-9)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('prompt positions never count, even if marked masked; unmasked positions never count', () => {
    fc.assert(
      fc.property(batches, (b) => {
        const masked = values(b, 'masked');
        const prompt = values(b, 'prompt');
        const g = obj.run(b).grads.logits!.data;
        const V = b.vocabSize;
        for (let t = 0; t < b.numTokens; t++)
          if (masked[t] === 0 || prompt[t] === 1) for (let v = 0; v < V; v++) expect(Math.abs(g[t * V + v]!)).toBe(0);
      }),
      { numRuns: 100 },
    );
  });
});

/**
 * stdlib/sft.credo (token-mean NLL, or the IFT repository's per-sequence mean) against
 * tests/reference/sft.ts, its gradient against finite differences, and its special cases.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arbBatchFor } from '../../src/equiv/random-batches.js';
import { compile } from '../../src/objective.js';
import { close } from '../helpers/expect.js';
import { sftRef } from '../reference/sft.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const sft = compile('sft');
const params = fc.record({ per_sequence: fc.constantFrom(0, 1, 0, -1) });

describe('sft equals its reference', () => {
  itAgreesWithFamilyRef(sft, sftRef, params);
  itHasFdGradients(sft, sftRef, params);
});

describe('sft special cases', () => {
  it('a fully masked batch gives a loss of 0 and a zero gradient', () => {
    for (const b of fc.sample(arbFor(sft), { numRuns: 20, seed: 1 })) {
      const r = sft.run({ ...b, mask: new Uint8Array(b.numTokens) });
      expect(close(r.loss, 0)).toBe(true);
      expect(Array.from(r.grads.logp!.data).every((g) => g === 0)).toBe(true);
    }
  });

  it('both forms agree when every response has the same number of valid tokens', () => {
    // equal lengths and no masked token: every response has the same number of valid tokens
    const equal = arbBatchFor(sft.program, sft.inputs, { equalLengths: true }).map((b) => ({
      ...b,
      mask: new Uint8Array(b.numTokens).fill(1),
    }));
    fc.assert(
      fc.property(equal, (b) => {
        const [a, c] = [0, 1].map((f) => sft.run(b, { params: { per_sequence: f } }).loss);
        expect(close(a!, c!)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('the two forms differ on responses of different lengths', () => {
    const found = fc.sample(arbFor(sft), { numRuns: 200, seed: 5 }).some((b) => {
      const [a, c] = [0, 1].map((f) => sft.run(b, { params: { per_sequence: f } }).loss);
      return Math.abs(a! - c!) > 1e-6;
    });
    expect(found).toBe(true);
  });
});

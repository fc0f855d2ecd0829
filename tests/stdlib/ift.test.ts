/**
 * stdlib/ift.credo (IFT's relation-propagation loss, weights not detached) against
 * tests/reference/ift.ts, its gradient against finite differences, and its special cases.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { iftRef } from '../reference/ift.js';
import { validTokensOf, values } from '../reference/family.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const ift = compile('ift');
const sft = compile('sft');
const params = fc.record({ gamma: fc.constantFrom(0.95, 0, 0.5, 1) });

describe('ift equals its reference', () => {
  itAgreesWithFamilyRef(ift, iftRef, params);
  itHasFdGradients(ift, iftRef, params);
});

describe('ift special cases', () => {
  it('a fully masked batch gives a loss of 0 and a zero gradient', () => {
    for (const b of fc.sample(arbFor(ift), { numRuns: 20, seed: 1 })) {
      const r = ift.run({ ...b, mask: new Uint8Array(b.numTokens) });
      expect(close(r.loss, 0)).toBe(true);
      expect(Array.from(r.grads.logp!.data).every((g) => g === 0)).toBe(true);
    }
  });

  it('gamma = 0 is SFT per sequence (sft with per_sequence = 1), value and gradient', () => {
    fc.assert(
      fc.property(arbFor(ift), (b) => {
        const a = ift.run(b, { params: { gamma: 0 } });
        const c = sft.run(b, { params: { per_sequence: 1 } });
        expect(close(a.loss, c.loss)).toBe(true);
        expectVecClose(a.grads.logp!.data, Array.from(c.grads.logp!.data), 'grad logp');
      }),
      { numRuns: 100 },
    );
  });

  it('the weights are not detached: the gradient differs from the stop-gradient one for gamma > 0', () => {
    // detached weights: ∂loss/∂logp_t = −w_t / (L·B') with w the value of the weights
    let differs = false;
    fc.assert(
      fc.property(arbFor(ift), (b) => {
        const got = Array.from(ift.run(b).grads.logp!.data);
        const logp = values(b, 'logp');
        const seqs = [...Array(b.numSeqs).keys()].filter((s) => validTokensOf(b, s).length > 0);
        for (const s of seqs) {
          const ts = validTokensOf(b, s);
          const L = ts.length;
          const S = new Array<number>(L).fill(0);
          for (let k = L - 1; k >= 0; k--) S[k] = -logp[ts[k]!]! / L + (k + 1 < L ? 0.95 * S[k + 1]! : 0);
          const D = S.reduce((a, v) => a + v, 0);
          if (D === 0) continue;
          ts.forEach((t, k) => {
            if (Math.abs(got[t]! + (S[k]! * L) / D / (L * seqs.length)) > 1e-6) differs = true;
          });
        }
      }),
      { numRuns: 100 },
    );
    expect(differs).toBe(true);
  });

  it('the weights of a sequence sum to its number of valid tokens (L1 normalisation)', () => {
    // with every ℓ equal to c, loss_s = c: Σ_t ℓ w_t / L = c · Σ w / L
    fc.assert(
      fc.property(arbFor(ift), fc.constantFrom(0.5, 1, 2.5), (b, c) => {
        const tensors = new Map(b.tensors);
        tensors.set('logp', { level: 'token', dtype: 'f32', data: new Float64Array(b.numTokens).fill(-c) });
        const nonEmpty = [...Array(b.numSeqs).keys()].some((s) => validTokensOf(b, s).length > 0);
        expect(close(ift.run({ ...b, tensors }).loss, nonEmpty ? c : 0)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

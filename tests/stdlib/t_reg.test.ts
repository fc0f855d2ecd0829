/**
 * stdlib/t_reg.credo (T-REG, reconstructed: DPO + α·token-reward regulariser) against
 * tests/reference/t_reg.ts, its gradient against finite differences, and its special cases.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { tRegRef } from '../reference/t_reg.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const tReg = compile('t_reg');
const dpo = compile('dpo');
const params = fc.record({
  alpha: fc.constantFrom(1, 0, 0.1, 5),
  beta: fc.constantFrom(0.1, 0.5, 2),
  tau: fc.constantFrom(1, 0.5, 3),
  squash: fc.constantFrom(1, 0),
  reg_form: fc.constantFrom(0, 1),
});

describe('t_reg equals its reference', () => {
  itAgreesWithFamilyRef(tReg, tRegRef, params);
  itHasFdGradients(tReg, tRegRef, params);
});

describe('t_reg special cases', () => {
  it('a fully masked batch gives a loss of log 2 (every pair has margin 0) and a zero gradient', () => {
    for (const b of fc.sample(arbFor(tReg), { numRuns: 20, seed: 1 })) {
      const r = tReg.run({ ...b, mask: new Uint8Array(b.numTokens) });
      expect(close(r.loss, Math.log(2))).toBe(true);
      expect(Array.from(r.grads.logp!.data).every((g) => g === 0)).toBe(true);
    }
  });

  it('alpha = 0 is dpo (loss, gradient, reward metrics)', () => {
    fc.assert(
      fc.property(arbFor(tReg), fc.constantFrom(0.1, 0.5), (b, beta) => {
        const a = tReg.run(b, { params: { alpha: 0, beta } });
        const d = dpo.run(b, { params: { beta } });
        expect(close(a.loss, d.loss)).toBe(true);
        expectVecClose(a.grads.logp!.data, Array.from(d.grads.logp!.data), 'grad logp');
        for (const k of Object.keys(d.metrics)) expect(close(a.metrics[k]!, d.metrics[k]!), k).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('equal contrastive log-probs (r = 0): dpo plus the constant alpha·log 2, with the gradient of dpo', () => {
    fc.assert(
      fc.property(arbFor(tReg), (b0) => {
        const tensors = new Map(b0.tensors);
        tensors.set('neg_logp', b0.tensors.get('pos_logp')!);
        const b = { ...b0, tensors };
        const a = tReg.run(b);
        const d = dpo.run(b);
        const anyValid = b.mask.some((m) => m === 1);
        expect(close(a.loss, d.loss + (anyValid ? Math.log(2) : 0))).toBe(true);
        expectVecClose(a.grads.logp!.data, Array.from(d.grads.logp!.data), 'grad logp');
      }),
      { numRuns: 100 },
    );
  });

  it('with alpha > 0 the regulariser changes the loss (t_reg is not dpo)', () => {
    const found = fc
      .sample(arbFor(tReg), { numRuns: 100, seed: 2 })
      .some((b) => Math.abs(tReg.run(b).loss - dpo.run(b).loss) > 1e-6);
    expect(found).toBe(true);
  });
});

/**
 * stdlib/mpo.credo (TRL's MPO recipe: loss_type ["sigmoid", "bco_pair", "sft"], loss_weights
 * [0.8, 0.2, 1.0]) against tests/reference/trl_dpo.ts, its gradient against finite differences, and
 * the weights' special cases against trl_dpo's single loss types.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { mpoRef } from '../reference/trl_dpo.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const mpo = compile('mpo');
const trl = compile('trl_dpo');
const dpo = compile('dpo');
const params = fc.record({
  beta: fc.constantFrom(0.1, 0.5, 2),
  w_sigmoid: fc.constantFrom(0.8, 1, 0),
  w_bco_pair: fc.constantFrom(0.2, 0, 1),
  w_sft: fc.constantFrom(1, 0, 0.5),
  bco_delta: fc.constantFrom(0, 0.3),
});

describe('mpo equals its reference', () => {
  itAgreesWithFamilyRef(mpo, mpoRef, params);
  itHasFdGradients(mpo, mpoRef, params);
});

describe('mpo special cases', () => {
  const arb = arbFor(mpo);
  // trl_dpo reads wpo_log_denom (unused without weighting): give it zeros
  const withDenom = (b: RaggedBatch): RaggedBatch => {
    const tensors = new Map(b.tensors);
    tensors.set('wpo_log_denom', { level: 'token', dtype: 'f32', data: new Float64Array(b.numTokens) });
    return { ...b, tensors };
  };

  it('one weight 1, the others 0: trl_dpo’s sigmoid (= dpo), bco_pair, sft', () => {
    fc.assert(
      fc.property(arb, fc.constantFrom(0.1, 2), fc.constantFrom(0, 0.3), (b, beta, bco_delta) => {
        const cases: [Record<string, number>, number][] = [
          [{ w_sigmoid: 1, w_bco_pair: 0, w_sft: 0 }, 0],
          [{ w_sigmoid: 0, w_bco_pair: 1, w_sft: 0 }, 6],
          [{ w_sigmoid: 0, w_bco_pair: 0, w_sft: 1 }, 13],
        ];
        for (const [w, loss_type] of cases) {
          const a = mpo.run(b, { params: { beta, bco_delta, ...w } });
          const t = trl.run(withDenom(b), { params: { beta, bco_delta, loss_type } });
          expect(close(a.loss, t.loss), `loss_type ${loss_type}`).toBe(true);
          expectVecClose(a.grads.logp!.data, Array.from(t.grads.logp!.data), `grad, loss_type ${loss_type}`);
        }
        const d = dpo.run(b, { params: { beta } });
        expect(close(mpo.run(b, { params: { beta, w_sigmoid: 1, w_bco_pair: 0, w_sft: 0 } }).loss, d.loss)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('the default is 0.8·sigmoid + 0.2·bco_pair + 1.0·sft of trl_dpo, and the terms are reported', () => {
    fc.assert(
      fc.property(arb, (b) => {
        const r = mpo.run(b);
        const t = (loss_type: number) => trl.run(withDenom(b), { params: { loss_type } }).loss;
        expect(close(r.metrics.loss_sigmoid!, t(0))).toBe(true);
        expect(close(r.metrics.loss_bco_pair!, t(6))).toBe(true);
        expect(close(r.metrics.loss_sft!, t(13))).toBe(true);
        expect(close(r.loss, 0.8 * t(0) + 0.2 * t(6) + t(13))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

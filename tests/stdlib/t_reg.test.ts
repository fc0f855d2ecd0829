/**
 * stdlib/t_reg.credo (T-REG, the paper's form: DPO + α·w·(L_REG(y_w) + L_REG(y_l)) with
 * contrastive-prompt token rewards r̂ = σ(pos_logp − neg_logp) − 0.5) against
 * tests/reference/t_reg.ts, its gradient against finite differences (w held, as `sg` holds it),
 * a hand-computed pair, and its special cases.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { HostTensor, RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { sigmoid } from '../reference/family.js';
import { tRegRef } from '../reference/t_reg.js';
import { arbFor, fdFailures, itAgreesWithFamilyRef } from './family-helpers.js';

const tReg = compile('t_reg');
const dpo = compile('dpo');
const params = fc.record({
  alpha: fc.constantFrom(0.25, 0, 0.1, 0.5, 5),
  beta: fc.constantFrom(0.1, 0.5, 2),
  seq_weight: fc.constantFrom(1, 0),
});

describe('t_reg equals its reference', () => {
  itAgreesWithFamilyRef(tReg, tRegRef, params);

  it("the reference's hand-derived gradients equal finite differences of its loss (w held)", () => {
    let checked = 0;
    fc.assert(
      fc.property(arbFor(tReg), params, (b, p) => {
        const r = fdFailures((x) => tRegRef(x, p, { weightsFrom: b }), b);
        checked += r.checked;
        expect(r.failures).toEqual([]);
      }),
      { numRuns: 60 },
    );
    expect(checked).toBeGreaterThan(0);
  });
});

describe('t_reg on a hand-computed pair', () => {
  // y_w: one token, Δ = 0.5, r̂ = σ(ln 3) − 0.5 = 0.25; y_l: one token, Δ = −0.2, r̂ = −0.25.
  // β = 1, α = 0.5: δ = 0.7, w = σ(−0.7), L_REG(y_w) = −0.25·(−1) = 0.25, L_REG(y_l) = 0.25·(−2) = −0.5.
  const tok = (data: number[]): HostTensor => ({ level: 'token', dtype: 'f32', data: Float64Array.from(data) });
  const b: RaggedBatch = {
    numTokens: 2,
    numSeqs: 2,
    vocabSize: 0,
    numGroups: 1,
    offsets: Int32Array.from([0, 1, 2]),
    groupOf: Int32Array.from([0, 0]),
    groupIds: [0],
    mask: Uint8Array.from([1, 1]),
    tensors: new Map<string, HostTensor>([
      ['logp', tok([-1, -2])],
      ['ref_logp', tok([-1.5, -1.8])],
      ['pos_logp', tok([Math.log(3) - 1, -1])],
      ['neg_logp', tok([-1, Math.log(3) - 1])],
      ['chosen', { level: 'seq', dtype: 'bool', data: Float64Array.from([1, 0]) }],
    ]),
    layout: { kind: 'packed' },
  };

  it('loss = −logσ(0.7) + 0.5·σ(−0.7)·(0.25 − 0.5), gradient ∓1.125·σ(−0.7)', () => {
    const r = tReg.run(b, { params: { alpha: 0.5, beta: 1 } });
    const w = sigmoid(-0.7);
    expect(close(r.loss, Math.log1p(Math.exp(-0.7)) + 0.5 * w * -0.25)).toBe(true);
    expect(close(r.metrics.reg_loss!, w * -0.25)).toBe(true);
    expect(close(r.metrics.reg_weight!, w)).toBe(true);
    expect(close(r.metrics.token_agreement!, 1)).toBe(true);
    expectVecClose(r.grads.logp!.data, [-1.125 * w, 1.125 * w], 'grad logp');
  });

  it('seq_weight = 0 (static weighting) uses w = 1', () => {
    const r = tReg.run(b, { params: { alpha: 0.5, beta: 1, seq_weight: 0 } });
    const g = sigmoid(-0.7);
    expect(close(r.loss, Math.log1p(Math.exp(-0.7)) + 0.5 * -0.25)).toBe(true);
    expectVecClose(r.grads.logp!.data, [-g - 0.125, g + 0.125], 'grad logp');
  });
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
      fc.property(arbFor(tReg), fc.constantFrom(0.1, 0.5), fc.constantFrom(1, 0), (b, beta, seq_weight) => {
        const a = tReg.run(b, { params: { alpha: 0, beta, seq_weight } });
        const d = dpo.run(b, { params: { beta } });
        expect(close(a.loss, d.loss)).toBe(true);
        expectVecClose(a.grads.logp!.data, Array.from(d.grads.logp!.data), 'grad logp');
        for (const k of Object.keys(d.metrics)) expect(close(a.metrics[k]!, d.metrics[k]!), k).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('equal contrastive log-probs (r̂ = 0) are dpo, value and gradient', () => {
    fc.assert(
      fc.property(arbFor(tReg), fc.constantFrom(0.25, 5), (b0, alpha) => {
        const tensors = new Map(b0.tensors);
        tensors.set('neg_logp', b0.tensors.get('pos_logp')!);
        const b = { ...b0, tensors };
        const a = tReg.run(b, { params: { alpha } });
        const d = dpo.run(b);
        expect(close(a.loss, d.loss)).toBe(true);
        expect(a.metrics.reg_loss).toBe(0);
        expectVecClose(a.grads.logp!.data, Array.from(d.grads.logp!.data), 'grad logp');
      }),
      { numRuns: 100 },
    );
  });

  it('the regulariser raises log π where r̂ > 0 and lowers it where r̂ < 0 (its gradient is −α w β r̂ / P)', () => {
    fc.assert(
      fc.property(arbFor(tReg), (b) => {
        const a = tReg.run(b).grads.logp!.data;
        const d = dpo.run(b).grads.logp!.data;
        const pos = b.tensors.get('pos_logp')!.data;
        const neg = b.tensors.get('neg_logp')!.data;
        for (let t = 0; t < b.numTokens; t++) {
          if (b.mask[t] !== 1) continue;
          const rHat = sigmoid(pos[t]! - neg[t]!) - 0.5;
          const g = a[t]! - d[t]!;
          if (Math.abs(rHat) > 1e-9) expect(Math.sign(g)).toBe(-Math.sign(rHat));
        }
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

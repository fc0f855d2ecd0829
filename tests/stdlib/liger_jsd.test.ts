/**
 * stdlib/liger_jsd.credo (Liger-Kernel LigerFusedLinearJSDLoss) against tests/reference/distill.ts
 * on random vocabulary batches over the weights, every β branch and temperatures, its gradient
 * against finite differences, and the special cases: the TRL GKD Liger path (weight_hard_loss = 0)
 * is gkd, weight_soft_loss = 0 is the token-mean NLL at temperature 1, V = 1, a fully masked batch.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { ligerJsdRef, vocabBatch } from '../reference/distill.js';
import { rowStats } from '../reference/vocab.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const lj = compile('liger_jsd');
const gkd = compile('gkd');

const params = fc.record({
  weight_hard_loss: fc.constantFrom(0.5, 0, 1, 0.25),
  weight_soft_loss: fc.constantFrom(0.5, 1, 0),
  beta: fc.constantFrom(0.5, 0, 1, 0.2),
  temperature: fc.constantFrom(1, 0.5, 2),
});

/** Student logits with −inf entries, the label's entry kept finite (a label has probability > 0). */
const studentMaskedOut = arbFor(lj).map((b): RaggedBatch => {
  const V = b.vocabSize;
  const id = b.tensors.get('token_id')!.data;
  const t = b.tensors.get('logits')!;
  const data = t.data.map((x, i) => ((x < -3 || x === -8) && id[Math.floor(i / V)] !== i % V ? -Infinity : x));
  const tensors = new Map(b.tensors);
  tensors.set('logits', { ...t, data });
  return { ...b, tensors };
});

describe('liger_jsd equals its reference', () => {
  itAgreesWithFamilyRef(lj, ligerJsdRef, params);
  itAgreesWithFamilyRef(
    lj,
    ligerJsdRef,
    fc.record({
      weight_hard_loss: fc.constantFrom(0.5, 0),
      weight_soft_loss: fc.constantFrom(0.5, 1),
      beta: fc.constantFrom(0.5, 1, 0.2),
      temperature: fc.constantFrom(1, 2),
    }),
    { batches: studentMaskedOut, numRuns: 100, what: 'with −inf student logits (β ≠ 0)' },
  );
  itHasFdGradients(lj, ligerJsdRef, params);
});

describe('liger_jsd: special cases', () => {
  it('weight_hard_loss = 0, weight_soft_loss = 1 (TRL GKDTrainer with use_liger_kernel) is gkd at the same β and temperature', () => {
    fc.assert(
      fc.property(arbFor(lj), fc.constantFrom(0, 0.5, 1, 0.3), fc.constantFrom(1, 0.7), (b, beta, temperature) => {
        const a = lj.run(b, { params: { weight_hard_loss: 0, weight_soft_loss: 1, beta, temperature } });
        const g = gkd.run(b, { params: { beta, temperature } });
        expect(close(a.loss, g.loss)).toBe(true);
        expectVecClose(a.grads.logits!.data, g.grads.logits!.data, 'grad.logits');
      }),
      { numRuns: 100 },
    );
  });

  it('weight_soft_loss = 0: the token-mean NLL of the labels at temperature 1, whatever the temperature (by hand)', () => {
    fc.assert(
      fc.property(arbFor(lj), fc.constantFrom(1, 0.5, 3), (b, temperature) => {
        const V = b.vocabSize;
        const z = b.tensors.get('logits')!.data;
        const id = b.tensors.get('token_id')!.data;
        let sum = 0;
        let n = 0;
        for (let t = 0; t < b.numTokens; t++) {
          if (!b.mask[t]) continue;
          sum -= rowStats(Array.from(z.slice(t * V, (t + 1) * V))).logp[id[t]!]!;
          n++;
        }
        const out = lj.run(b, { params: { weight_hard_loss: 1, weight_soft_loss: 0, temperature } });
        expect(close(out.loss, sum / Math.max(n, 1))).toBe(true);
        expect(close(out.metrics.hard_loss!, out.loss)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('the loss is weight_hard_loss · hard_loss + weight_soft_loss · soft_loss (no temperature² factor)', () => {
    fc.assert(
      fc.property(
        arbFor(lj),
        fc.constantFrom(0.3, 2),
        fc.constantFrom(0.7, 1.5),
        fc.constantFrom(1, 2),
        (b, wh, ws, tau) => {
          const out = lj.run(b, { params: { weight_hard_loss: wh, weight_soft_loss: ws, temperature: tau } });
          const soft = gkd.run(b, { params: { temperature: tau } }).loss;
          expect(close(out.metrics.soft_loss!, soft)).toBe(true);
          expect(close(out.loss, wh * out.metrics.hard_loss! + ws * soft)).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('V = 1: CE and JSD are 0, so are the loss and the gradient', () => {
    const b = vocabBatch(
      [3],
      1,
      [1, 0, 1],
      { logits: [2, -1, 4], teacher_logits: [0, 3, -2] },
      {
        token_id: { dtype: 'i32', data: [0, 0, 0] },
      },
    );
    for (const beta of [0, 0.5, 1]) {
      const out = lj.run(b, { params: { beta } });
      expect(out.loss).toBe(0);
      expect(Array.from(out.grads.logits!.data).every((g) => g === 0)).toBe(true);
    }
  });

  it('a fully masked batch (every label ignore_index) gives 0: Liger clamps the count at 1', () => {
    const b = vocabBatch(
      [2],
      2,
      [0, 0],
      { logits: [1, 2, 0, 3], teacher_logits: [2, 1, 3, 0] },
      {
        token_id: { dtype: 'i32', data: [1, 0] },
      },
    );
    const out = lj.run(b);
    expect(out.loss).toBe(0);
    expect(out.metrics).toEqual({ soft_loss: 0, hard_loss: 0 });
    expect(Array.from(out.grads.logits!.data).every((g) => g === 0)).toBe(true);
  });
});

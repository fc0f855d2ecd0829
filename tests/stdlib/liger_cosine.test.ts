/**
 * stdlib/liger_cosine.credo (Liger-Kernel LigerFusedLinearCosineSimilarityLoss) against
 * tests/reference/distill.ts on random vocabulary batches, its gradient against finite
 * differences, and the special cases: identical (or positively proportional) logits give soft
 * loss 0, the cosine term covers unlabelled rows, V = 1, a zero row, a fully masked batch, −inf
 * logits refused, the temperature irrelevant to the cosine.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { cosineRow, ligerCosineRef, vocabBatch } from '../reference/distill.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const lc = compile('liger_cosine');

const params = fc.record({
  weight_hard_loss: fc.constantFrom(0.5, 0, 1),
  weight_soft_loss: fc.constantFrom(0.5, 1, 0),
  beta: fc.constantFrom(0.5, 1, 0.2),
  temperature: fc.constantFrom(1, 0.5, 2),
});

const withTensor = (b: RaggedBatch, name: string, f: (x: number, i: number) => number): RaggedBatch => {
  const tensors = new Map(b.tensors);
  const t = b.tensors.get(name)!;
  tensors.set(name, { ...t, data: t.data.map(f) });
  return { ...b, tensors };
};

/**
 * No student row of norm below 1e-2 at a valid token: the gradient there is of order 1/‖s‖, and a
 * central difference with h = 1e-6 is not accurate at that scale (at the zero row the loss is not
 * differentiable at the scale of h at all; a test below checks that row against the reference).
 */
const noTinyRow = (b: RaggedBatch) => {
  const z = b.tensors.get('logits')!.data;
  const V = b.vocabSize;
  for (let t = 0; t < b.numTokens; t++)
    if (b.mask[t] && Math.hypot(...z.slice(t * V, (t + 1) * V)) < 1e-2) return false;
  return true;
};

describe('liger_cosine equals its reference', () => {
  itAgreesWithFamilyRef(lc, ligerCosineRef, params);
  itHasFdGradients(lc, ligerCosineRef, params, { batches: arbFor(lc).filter(noTinyRow) });
});

describe('liger_cosine: special cases', () => {
  it('identical student and teacher rows (or a positive multiple) have cosine 1, soft_loss 0 but for zero rows (cosine 0); a negative multiple has cosine −1', () => {
    fc.assert(
      fc.property(arbFor(lc), fc.constantFrom(1, 3, 0.25), fc.constantFrom(0.5, 1), (b, c, beta) => {
        const s = b.tensors.get('logits')!.data;
        const lab = b.tensors.get('labeled')!.data;
        const V = b.vocabSize;
        let [nonzero, zero, labelled] = [0, 0, 0];
        for (let t = 0; t < b.numTokens; t++) {
          if (!b.mask[t]) continue;
          if (lab[t]) labelled++;
          if (s.slice(t * V, (t + 1) * V).some((x) => x !== 0)) nonzero++;
          else zero++;
        }
        const N = Math.max(labelled, 1);
        const same = lc.run(
          withTensor(b, 'teacher_logits', (_, i) => c * s[i]!),
          { params: { beta } },
        );
        expect(close(same.metrics.soft_loss!, (beta * zero) / N, 1e-12)).toBe(true);
        const opposite = lc.run(
          withTensor(b, 'teacher_logits', (_, i) => -c * s[i]!),
          { params: { beta } },
        );
        expect(close(opposite.metrics.soft_loss!, (beta * (2 * nonzero + zero)) / N)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('a batch of identical non-zero rows has loss weight_hard_loss · CE alone: the cosine term is 0', () => {
    const logits = [1, 2, 0, -1, 1, 3];
    const b = vocabBatch(
      [2],
      3,
      [1, 1],
      { logits, teacher_logits: logits },
      {
        token_id: { dtype: 'i32', data: [2, 0] },
        labeled: { dtype: 'bool', data: [1, 1] },
      },
    );
    const out = lc.run(b);
    expect(Math.abs(out.metrics.soft_loss!)).toBeLessThan(1e-15);
    expect(close(out.loss, 0.5 * out.metrics.hard_loss!)).toBe(true);
  });

  it('the cosine term covers every row passed, labelled or not (distillation_loss_fn ignores the labels); N counts the labelled ones', () => {
    // two rows, one labelled: soft = β (1 − cos₀) + β (1 − cos₁), divided by 1
    const logits = [1, 2, 0, -1, 1, 3];
    const teacher = [2, 0, 1, 1, 1, -1];
    const b = vocabBatch(
      [2],
      3,
      [1, 1],
      { logits, teacher_logits: teacher },
      {
        token_id: { dtype: 'i32', data: [2, 0] },
        labeled: { dtype: 'bool', data: [0, 1] },
      },
    );
    const c0 = cosineRow(logits.slice(0, 3), teacher.slice(0, 3)).value;
    const c1 = cosineRow(logits.slice(3), teacher.slice(3)).value;
    const out = lc.run(b, { params: { beta: 0.5 } });
    expect(close(out.metrics.soft_loss!, 0.5 * (1 - c0) + 0.5 * (1 - c1))).toBe(true);
    // the cosine by hand for row 0: s·t / (‖s‖ ‖t‖) = 2 / (√5 √5)
    expect(close(c0, 2 / 5)).toBe(true);
    // hard: −log softmax(row 1)[0] alone
    const lse = Math.log(Math.exp(-1) + Math.exp(1) + Math.exp(3));
    expect(close(out.metrics.hard_loss!, lse + 1)).toBe(true);
    // no labelled row: hard 0, N = 1, the cosine term still counts
    const none = vocabBatch(
      [2],
      3,
      [1, 1],
      { logits, teacher_logits: teacher },
      {
        token_id: { dtype: 'i32', data: [2, 0] },
        labeled: { dtype: 'bool', data: [0, 0] },
      },
    );
    const o2 = lc.run(none, { params: { beta: 0.5 } });
    expect(o2.metrics.hard_loss).toBe(0);
    expect(close(o2.metrics.soft_loss!, out.metrics.soft_loss!)).toBe(true);
  });

  it('V = 1: the cosine is sign(s)·sign(t), the gradient 0', () => {
    const b = vocabBatch(
      [3],
      1,
      [1, 1, 1],
      { logits: [2, -1, 4], teacher_logits: [3, 2, 5] },
      {
        token_id: { dtype: 'i32', data: [0, 0, 0] },
        labeled: { dtype: 'bool', data: [1, 1, 1] },
      },
    );
    const out = lc.run(b, { params: { beta: 1 } });
    expect(close(out.metrics.soft_loss!, 2 / 3)).toBe(true); // rows: 1 − 1, 1 + 1, 1 − 1
    expect(Array.from(out.grads.logits!.data).every((g) => g === 0)).toBe(true);
  });

  it('a zero student row: cosine 0 (loss β), with the gradient of the clamped norms as PyTorch computes it', () => {
    const b = vocabBatch(
      [2],
      3,
      [1, 1],
      { logits: [0, 0, 0, 1, -2, 0.5], teacher_logits: [1, 2, -1, 0, 0, 0] },
      {
        token_id: { dtype: 'i32', data: [0, 1] },
        labeled: { dtype: 'bool', data: [1, 1] },
      },
    );
    const out = lc.run(b, { params: { weight_hard_loss: 0, weight_soft_loss: 1, beta: 1 } });
    const want = ligerCosineRef(b, { weight_hard_loss: 0, weight_soft_loss: 1, beta: 1 });
    expect(close(out.loss, 1)).toBe(true); // both rows have cosine 0 (row 1's teacher is zero), / N = 2
    expectVecClose(out.grads.logits!.data, want.grads.logits!, 'grad.logits');
    // ∂/∂s = −β t̂ / (1e-12 · 1e-8) / N at the zero row
    const tn = Math.sqrt(6);
    expect(close(out.grads.logits!.data[1]!, -(2 / tn) / 1e-20 / 2)).toBe(true);
  });

  it('a fully masked batch gives 0', () => {
    const b = vocabBatch(
      [2],
      2,
      [0, 0],
      { logits: [1, 2, 0, 3], teacher_logits: [2, 1, 3, 0] },
      {
        token_id: { dtype: 'i32', data: [1, 0] },
        labeled: { dtype: 'bool', data: [1, 1] },
      },
    );
    const out = lc.run(b);
    expect(out.loss).toBe(0);
    expect(Array.from(out.grads.logits!.data).every((g) => g === 0)).toBe(true);
  });

  it('a −inf logit at a row passed is refused (Liger’s norm is ∞ and its loss NaN); at a masked row it is fine', () => {
    const mk = (mask: number[]) =>
      vocabBatch(
        [2],
        2,
        mask,
        { logits: [1, -Infinity, 0, 3], teacher_logits: [2, 1, 3, 0] },
        {
          token_id: { dtype: 'i32', data: [0, 0] },
          labeled: { dtype: 'bool', data: [1, 1] },
        },
      );
    expect(() => lc.run(mk([1, 1]))).toThrow(/require/);
    expect(Number.isFinite(lc.run(mk([0, 1])).loss)).toBe(true);
  });

  it('the temperature does not change the cosine term (it is scale invariant)', () => {
    fc.assert(
      fc.property(arbFor(lc), fc.constantFrom(0.5, 4), (b, temperature) => {
        const one = lc.run(b, { params: { weight_hard_loss: 0.3 } });
        const at = lc.run(b, { params: { weight_hard_loss: 0.3, temperature } });
        expect(close(at.loss, one.loss)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

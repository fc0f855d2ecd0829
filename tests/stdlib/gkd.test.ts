/**
 * stdlib/gkd.credo (TRL GKDTrainer.generalized_jsd_loss) against tests/reference/distill.ts on
 * random vocabulary batches for every β branch (0, 1, interior) and reduction code, its gradient
 * against finite differences, and the special cases: V = 1, a fully masked batch, identical
 * distributions, the β ↔ 1 − β symmetry, the discontinuity at β = 0, −inf logits.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { gkdRef, vocabBatch } from '../reference/distill.js';
import { rowStats } from '../reference/vocab.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const gkd = compile('gkd');

const paramsWith = (...betas: number[]) =>
  fc.record({
    beta: fc.constantFrom(...betas),
    temperature: fc.constantFrom(1, 0.7, 2),
    reduction: fc.constantFrom(0, 1, 2),
  });
const params = paramsWith(0, 1, 0.5, 0.1, 0.9, 0.3);

const withTensor = (b: RaggedBatch, name: string, f: (x: number, i: number) => number): RaggedBatch => {
  const tensors = new Map(b.tensors);
  const t = b.tensors.get(name)!;
  tensors.set(name, { ...t, data: t.data.map(f) });
  return { ...b, tensors };
};

/** Student logits with −inf entries (probability 0); the teacher stays finite. */
const studentMaskedOut = arbFor(gkd).map((b) => withTensor(b, 'logits', (x) => (x < -3 || x === -8 ? -Infinity : x)));
/** Student and teacher −inf at the same entries (forward KL stays finite). */
const bothMaskedOut = studentMaskedOut.map((b) => {
  const s = b.tensors.get('logits')!.data;
  return withTensor(b, 'teacher_logits', (x, i) => (s[i] === -Infinity ? -Infinity : x));
});

/** Teacher logits with −inf entries, the student finite (reverse KL is then +∞: β ≠ 1 here). */
const teacherMaskedOut = arbFor(gkd).map((b) =>
  withTensor(b, 'teacher_logits', (x) => (x < -3 || x === -8 ? -Infinity : x)),
);

describe('gkd equals its reference', () => {
  itAgreesWithFamilyRef(gkd, gkdRef, params);
  itAgreesWithFamilyRef(gkd, gkdRef, paramsWith(0.5, 0.1, 1), {
    batches: studentMaskedOut,
    numRuns: 100,
    what: 'with −inf student logits (β ∈ {0.1, 0.5, 1})',
  });
  itAgreesWithFamilyRef(gkd, gkdRef, paramsWith(0, 0.5, 0.1, 0.9), {
    batches: teacherMaskedOut,
    numRuns: 100,
    what: 'with −inf teacher logits (β ≠ 1; no NaN from the untaken reverse-KL branch)',
  });
  itAgreesWithFamilyRef(gkd, gkdRef, params, {
    batches: bothMaskedOut,
    numRuns: 100,
    what: 'with −inf student and teacher logits at the same entries',
  });
  itHasFdGradients(gkd, gkdRef, params);
});

describe('gkd: special cases', () => {
  const row = fc.array(fc.double({ min: -6, max: 6, noNaN: true }), { minLength: 2, maxLength: 7 });

  it('β = 0 is KL(teacher ‖ student), β = 1 is KL(student ‖ teacher), summed over the vocabulary (one token, by hand)', () => {
    fc.assert(
      fc.property(row, row, (a, c) => {
        const V = Math.min(a.length, c.length);
        const [s, t] = [a.slice(0, V), c.slice(0, V)];
        const [S, T] = [rowStats(s), rowStats(t)];
        const kl = (p: typeof S, q: typeof S) => p.p.reduce((acc, pv, v) => acc + pv * (p.logp[v]! - q.logp[v]!), 0);
        const b = vocabBatch([1], V, [1], { logits: s, teacher_logits: t });
        expect(close(gkd.run(b, { params: { beta: 0 } }).loss, kl(T, S))).toBe(true);
        expect(close(gkd.run(b, { params: { beta: 1 } }).loss, kl(S, T))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('0 < β < 1: the mixture M = β p_t + (1 − β) p_s, as TRL builds it with logsumexp(log p_s + log(1 − β), log p_t + log β)', () => {
    fc.assert(
      fc.property(row, row, fc.constantFrom(0.5, 0.2, 0.75), (a, c, beta) => {
        const V = Math.min(a.length, c.length);
        const [S, T] = [rowStats(a.slice(0, V)), rowStats(c.slice(0, V))];
        let want = 0;
        for (let v = 0; v < V; v++) {
          const x = S.logp[v]! + Math.log1p(-beta);
          const y = T.logp[v]! + Math.log(beta);
          const m = Math.max(x, y);
          const logM = m + Math.log(Math.exp(x - m) + Math.exp(y - m));
          // F.kl_div(input=log M, target=log p, log_target=True) = p (log p − log M)
          want += beta * T.p[v]! * (T.logp[v]! - logM) + (1 - beta) * S.p[v]! * (S.logp[v]! - logM);
        }
        const b = vocabBatch([1], V, [1], { logits: a.slice(0, V), teacher_logits: c.slice(0, V) });
        expect(close(gkd.run(b, { params: { beta } }).loss, want)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('V = 1: every row is the one-point distribution, loss and gradient 0 for every β', () => {
    const b = vocabBatch([2, 1], 1, [1, 1, 0], { logits: [3, -2, 7], teacher_logits: [-1, 5, 0] });
    for (const beta of [0, 0.5, 1]) {
      const out = gkd.run(b, { params: { beta } });
      expect(out.loss).toBe(0);
      expect(Array.from(out.grads.logits!.data).every((g) => g === 0)).toBe(true);
    }
  });

  it('a fully masked batch gives loss 0 and gradient 0 in every reduction (TRL clamps the count at 1)', () => {
    const b = vocabBatch([2], 3, [0, 0], { logits: [1, 2, 3, 0, 0, 1], teacher_logits: [3, 2, 1, 1, 0, 0] });
    for (const reduction of [0, 1, 2]) {
      const out = gkd.run(b, { params: { reduction } });
      expect(out.loss).toBe(0);
      expect(Array.from(out.grads.logits!.data).every((g) => g === 0)).toBe(true);
    }
  });

  it('identical student and teacher logits give 0 for every β (and a per-row shift of either changes nothing)', () => {
    fc.assert(
      fc.property(
        arbFor(gkd),
        fc.constantFrom(0, 0.5, 1, 0.2),
        fc.double({ min: -5, max: 5, noNaN: true }),
        (b, beta, c) => {
          const s = b.tensors.get('logits')!.data;
          const same = withTensor(b, 'teacher_logits', (_, i) => s[i]! + c);
          const out = gkd.run(same, { params: { beta } });
          expect(Math.abs(out.loss)).toBeLessThan(1e-12);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('the JSD is symmetric: gkd(β; student, teacher) = gkd(1 − β; teacher, student) in value', () => {
    fc.assert(
      fc.property(arbFor(gkd), fc.constantFrom(0, 0.3, 0.5, 0.9), (b, beta) => {
        const swapped = new Map(b.tensors);
        swapped.set('logits', b.tensors.get('teacher_logits')!);
        swapped.set('teacher_logits', b.tensors.get('logits')!);
        const x = gkd.run(b, { params: { beta } }).loss;
        const y = gkd.run({ ...b, tensors: swapped }, { params: { beta: 1 - beta } }).loss;
        expect(close(x, y), `${x} vs ${y}`).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('β → 0 tends to 0, not to the forward KL that TRL switches to at exactly β = 0 (a discontinuity)', () => {
    const b = vocabBatch([2], 3, [1, 1], { logits: [2, 0, -1, 0, 1, 3], teacher_logits: [-1, 2, 0, 3, 0, -2] });
    const atZero = gkd.run(b, { params: { beta: 0 } }).loss;
    const near = gkd.run(b, { params: { beta: 1e-9 } }).loss;
    const nearOne = gkd.run(b, { params: { beta: 1 - 1e-9 } }).loss;
    expect(atZero).toBeGreaterThan(0.5);
    expect(near).toBeLessThan(1e-7);
    expect(nearOne).toBeLessThan(1e-7);
    expect(gkd.run(b, { params: { beta: 1 } }).loss).toBeGreaterThan(0.5);
  });

  it('forward KL is +∞ where the student has a −inf logit the teacher gives mass (as F.kl_div); the interior JSD stays finite', () => {
    const b = vocabBatch([1], 3, [1], { logits: [0, -Infinity, 1], teacher_logits: [0, 0, 0] });
    expect(gkd.run(b, { params: { beta: 0 } }).loss).toBe(Infinity);
    for (const beta of [0.5, 1]) {
      const out = gkd.run(b, { params: { beta } });
      const want = gkdRef(b, { beta });
      expect(close(out.loss, want.loss)).toBe(true);
      expectVecClose(out.grads.logits!.data, want.grads.logits!, 'grad.logits');
    }
  });

  it('the temperature divides both rows: gkd at τ equals gkd at 1 on logits / τ, gradient scaled by 1/τ', () => {
    fc.assert(
      fc.property(arbFor(gkd), fc.constantFrom(0.5, 2), fc.constantFrom(0, 0.5, 1), (b, tau, beta) => {
        let scaled = withTensor(b, 'logits', (x) => x / tau);
        scaled = withTensor(scaled, 'teacher_logits', (x) => x / tau);
        const at = gkd.run(b, { params: { beta, temperature: tau } });
        const one = gkd.run(scaled, { params: { beta } });
        expect(close(at.loss, one.loss)).toBe(true);
        expectVecClose(
          at.grads.logits!.data,
          Array.from(one.grads.logits!.data, (g) => g / tau),
          'grad.logits',
        );
      }),
      { numRuns: 100 },
    );
  });
});

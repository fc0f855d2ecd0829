/**
 * stdlib/aligndistil.credo against tests/reference/aligndistil.ts on random vocabulary batches in
 * every mode, its gradient against finite differences, Theorem 1 (methods-dpo.md §19 item 6) and the
 * modes' special cases.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { aligndistilRef } from '../reference/aligndistil.js';
import { values } from '../reference/family.js';
import { rowStats } from '../reference/vocab.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const ad = compile('aligndistil');

const params = fc.record({
  mode: fc.constantFrom(0, 1, 2, 3, 4),
  beta: fc.constantFrom(0.1, 0.5),
  beta2: fc.constantFrom(10, 15, 2),
  temperature: fc.constantFrom(1, 0.7),
  student_temperature: fc.constantFrom(1, 1.5),
  len_norm: fc.constantFrom(1, 0),
});

/** Batches whose student logits have −inf entries (probability 0); the teachers' stay finite. */
const withMaskedOut = arbFor(ad).map((b) => {
  const tensors = new Map(b.tensors);
  const t = b.tensors.get('logits')!;
  tensors.set('logits', { ...t, data: t.data.map((x) => (x < -3 || x === -8 ? -Infinity : x)) });
  return { ...b, tensors };
});

/** Batches whose two teacher models nearly agree (ref = dpo + noise below 0.01): the small-tvd path. */
const nearlyAgreeing = fc.tuple(arbFor(ad), fc.integer({ min: 1, max: 2 ** 30 })).map(([b, seed]) => {
  let state = seed;
  const rand = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const tensors = new Map(b.tensors);
  const d = b.tensors.get('dpo_logits')!;
  tensors.set('ref_logits', { ...d, data: d.data.map((x) => x + (rand() - 0.5) * 0.02) });
  return { ...b, tensors };
});

/**
 * As `nearlyAgreeing`, the second model's logits also shifted by a constant per token (up to ±30:
 * logits are shift-invariant, models' offsets differ): tvd stays small, and the small-tvd path must
 * not lose it to the offset (it once computed log1p(Σ p_r (e^{−26} − 1)) ≈ log1p(−1)).
 */
const offsetAgreeing = fc.tuple(nearlyAgreeing, fc.integer({ min: 1, max: 2 ** 30 })).map(([b, seed]) => {
  let state = seed;
  const rand = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const V = b.vocabSize;
  const offsets = Array.from({ length: b.numTokens }, () => (rand() - 0.5) * 60);
  const tensors = new Map(b.tensors);
  const r = b.tensors.get('ref_logits')!;
  tensors.set('ref_logits', { ...r, data: r.data.map((x, i) => x + offsets[Math.floor(i / V)]!) });
  return { ...b, tensors };
});

describe('aligndistil equals its reference', () => {
  itAgreesWithFamilyRef(ad, aligndistilRef, params, {
    batches: offsetAgreeing,
    numRuns: 100,
    what: 'with nearly agreeing teachers whose logits differ by a constant per token',
  });
  itAgreesWithFamilyRef(ad, aligndistilRef, params, {
    batches: nearlyAgreeing,
    numRuns: 100,
    what: 'with nearly agreeing teachers',
  });
  itAgreesWithFamilyRef(ad, aligndistilRef, params);
  itAgreesWithFamilyRef(ad, aligndistilRef, params, {
    batches: withMaskedOut,
    numRuns: 100,
    what: 'with −inf student logits',
  });
  itHasFdGradients(ad, aligndistilRef, params);
});

describe('aligndistil: Theorem 1 and the modes', () => {
  it('Theorem 1: softmax(α z_d + (1 − α) z_ref) = normalize(π_ref · exp(β (log π_d − log π_ref) / β2)), α = β/β2', () => {
    const row = fc.array(fc.double({ min: -8, max: 8, noNaN: true }), { minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(row, row, fc.constantFrom(0.1, 0.5, 1), fc.constantFrom(10, 15, 2), (a, b, beta, beta2) => {
        const V = Math.min(a.length, b.length);
        const [zd, zr] = [a.slice(0, V), b.slice(0, V)];
        const alpha = beta / beta2;
        const left = rowStats(zd.map((x, v) => alpha * x + (1 - alpha) * zr[v]!)).p;
        const [d, r] = [rowStats(zd), rowStats(zr)];
        const un = r.p.map((pr, v) => pr * Math.exp((beta * (d.logp[v]! - r.logp[v]!)) / beta2));
        const Z = un.reduce((x, y) => x + y, 0);
        expectVecClose(
          left,
          un.map((u) => u / Z),
          'teacher',
          1e-12,
        );
      }),
      { numRuns: 300 },
    );
  });

  it('theorem1 with β = β2 (α = 1) and theorem1_contrast with β = 0 (α = 0) are β2 · gkd', () => {
    fc.assert(
      fc.property(arbFor(ad), fc.constantFrom(2, 10), (b, beta2) => {
        const gkd = ad.run(b, { params: { mode: 4 } });
        for (const p of [
          { mode: 1, beta: beta2, beta2 },
          { mode: 2, beta: 0, beta2 },
        ]) {
          const got = ad.run(b, { params: p });
          expect(close(got.loss, beta2 * gkd.loss), `${JSON.stringify(p)}`).toBe(true);
          expectVecClose(
            got.grads.logits!.data,
            Array.from(gkd.grads.logits!.data, (g) => beta2 * g),
            'grad.logits',
          );
        }
      }),
      { numRuns: 100 },
    );
  });

  it('the adaptive teacher follows the models’ disagreement: α = β2 · Σ|p_d − p_r| + 1e-3 (mean_weight)', () => {
    fc.assert(
      fc.property(arbFor(ad), (b) => {
        // identical DPO and second model: tvd = 0, α = 1e-3 at every token
        const tensors = new Map(b.tensors);
        tensors.set('ref_logits', { ...b.tensors.get('dpo_logits')! });
        const out = ad.run({ ...b, tensors });
        const anyValid = Array.from(b.mask).some((m) => m === 1) && values(b, 'logits').length > 0;
        expect(close(out.metrics.mean_weight!, anyValid ? 1e-3 : 0)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

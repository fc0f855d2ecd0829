/**
 * stdlib/ilm.credo against tests/reference/ilm.ts on random (gap × vocabulary) batches, its gradient
 * against finite differences, and methods-dpo.md §19 item 12 (the CE target sums to 1 over the grid
 * when n_drops > 0; the CE is exactly 0 when n_drops = 0) with the reductions of §16.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { ilmRef } from '../reference/ilm.js';
import { validTokensOf, values } from '../reference/family.js';
import { rowStats } from '../reference/vocab.js';
import { close } from '../helpers/expect.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const ilm = compile('ilm');
const params = fc.record({
  lambda_len: fc.constantFrom(0.001, 0, 0.5),
  stop_weight: fc.constantFrom(0.9, 0.5, 0),
});

/** `b` with the tensor `name` replaced. */
function withTensor(b: RaggedBatch, name: string, data: number[]): RaggedBatch {
  const tensors = new Map(b.tensors);
  tensors.set(name, { ...b.tensors.get(name)!, data: Float64Array.from(data) });
  return { ...b, tensors };
}

/** Batches with −inf logits (entries the model rules out), some of them where the target is > 0. */
const withMaskedOut = arbFor(ilm).map((b) =>
  withTensor(
    b,
    'logits',
    values(b, 'logits').map((x) => (x < -3 || x === -8 ? -Infinity : x)),
  ),
);

describe('ilm equals its reference', () => {
  itAgreesWithFamilyRef(ilm, ilmRef, params);
  itAgreesWithFamilyRef(ilm, ilmRef, params, { batches: withMaskedOut, numRuns: 100, what: 'with −inf logits' });
  itHasFdGradients(ilm, ilmRef, params);
});

describe('ilm special cases (methods-dpo.md §19 item 12, §16)', () => {
  it('the CE target sums to 1 over the (gap, vocabulary) grid when n_drops > 0, and to 0 otherwise', () => {
    fc.assert(
      fc.property(arbFor(ilm), (b0) => {
        // counts: whole numbers of dropped tokens
        const b = withTensor(
          b0,
          'target',
          values(b0, 'target').map((x) => Math.floor(Math.abs(x))),
        );
        const mass = ilm.run(b).exports.target_mass!.data;
        const target = values(b, 'target');
        for (let s = 0; s < b.numSeqs; s++) {
          const n = validTokensOf(b, s).reduce(
            (a, t) => a + target.slice(t * b.vocabSize, (t + 1) * b.vocabSize).reduce((x, y) => x + Math.max(y, 0), 0),
            0,
          );
          expect(close(mass[s]!, n > 0 ? 1 : 0), `sequence ${s}: ${mass[s]} (n_drops ${n})`).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('the CE is exactly 0, with no CE gradient, when nothing was dropped', () => {
    fc.assert(
      fc.property(arbFor(ilm), (b0) => {
        const b = withTensor(b0, 'target', new Array<number>(b0.numTokens * b0.vocabSize).fill(0));
        const out = ilm.run(b, { params: { lambda_len: 0 } });
        expect(out.metrics.ce).toBe(0);
        expect(out.loss).toBe(0);
        expect(Array.from(out.grads.logits!.data).every((g) => g === 0)).toBe(true);
        // only the stop head learns: class 0 (nothing dropped) with weight w_s
        const full = ilm.run(b);
        const [l0, l1] = [values(b, 'stop_logit'), values(b, 'insert_logit')];
        const want = l0.reduce((a, x, s) => a + 0.9 * Math.log1p(Math.exp(l1[s]! - x)), 0) / b.numSeqs;
        expect(close(full.loss, 0.001 * want)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('insertion only into the last gap, one dropped token: next-token cross-entropy of that gap', () => {
    fc.assert(
      fc.property(arbFor(ilm), (b0) => {
        const V = b0.vocabSize;
        const z = values(b0, 'logits');
        const target = new Array<number>(b0.numTokens * V).fill(0);
        const want: number[] = [];
        for (let s = 0; s < b0.numSeqs; s++) {
          const ts = validTokensOf(b0, s);
          if (ts.length === 0) continue;
          const last = ts[ts.length - 1]!;
          for (const t of ts) if (t !== last) for (let v = 0; v < V; v++) z[t * V + v] = -Infinity;
          const id = s % V;
          target[last * V + id] = 1;
          want.push(-rowStats(z.slice(last * V, (last + 1) * V)).logp[id]!);
        }
        const b = withTensor(withTensor(b0, 'logits', z), 'target', target);
        const ce = ilm.run(b).metrics.ce!;
        expect(close(ce * b.numSeqs, want.reduce((a, x) => a + x, 0) * (1 / (1 + 1e-9)))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

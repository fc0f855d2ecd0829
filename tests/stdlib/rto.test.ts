/**
 * stdlib/rto.credo (RTO: PPO with GAE on DPO-derived token rewards) against tests/reference/rto.ts,
 * its gradient against finite differences, its exports (the whitened advantage, the critic's
 * returns) and its special cases.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { validTokensOf } from '../reference/family.js';
import { rtoExports, rtoRef } from '../reference/rto.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const rto = compile('rto');
const ppo = compile('ppo');
const params = fc.record({
  beta1: fc.constantFrom(0.05, 0, 1),
  dpo_clip: fc.constantFrom(0.05, 0, 1),
  beta2: fc.constantFrom(0.01, 0, 0.1, -1),
  rm_clip: fc.constantFrom(10, 1),
  gamma: fc.constantFrom(1, 0.9),
  lam: fc.constantFrom(0.95, 1, 0),
  eps: fc.constantFrom(0.2, 0.1),
  whiten: fc.constantFrom(1, 0),
});

/**
 * For the finite differences: batches whose log-ratios to old_logp lie in [−5, 5]. Without a dual
 * clip, a token with A < 0 and a log-ratio of +50 (clipped to 20) has a loss of order |A|·e^20,
 * where a float64 central difference of the loss is rounding noise (~1e-2); its analytic gradient
 * (0 past the clip) is still checked against the interpreter by the agreement test.
 */
const fdBatches = arbFor(rto).map((b) => {
  const logp = b.tensors.get('logp')!.data;
  const old = b.tensors.get('old_logp')!;
  const data = old.data.map((o, t) => logp[t]! - Math.min(Math.max(logp[t]! - o, -5), 5));
  const tensors = new Map(b.tensors);
  tensors.set('old_logp', { ...old, data });
  return { ...b, tensors };
});

const validOf = (b: RaggedBatch) => [...Array(b.numSeqs).keys()].flatMap((s) => validTokensOf(b, s));

describe('rto equals its reference', () => {
  itAgreesWithFamilyRef(rto, rtoRef, params);
  itHasFdGradients(rto, rtoRef, params, { batches: fdBatches });

  it('exports the whitened advantage and the returns A + V at every valid token', () => {
    fc.assert(
      fc.property(arbFor(rto), params, (b, p) => {
        const out = rto.run(b, { params: p });
        const want = rtoExports(b, p);
        const at = (xs: ArrayLike<number>) => validOf(b).map((t) => xs[t]!);
        expectVecClose(at(out.exports.advantage!.data), at(want.advantage), 'advantage');
        expectVecClose(at(out.exports.returns!.data), at(want.returns), 'returns');
      }),
      { numRuns: 100 },
    );
  });
});

describe('rto special cases', () => {
  it('a fully masked batch gives a loss of 0 and a zero gradient', () => {
    for (const b of fc.sample(arbFor(rto), { numRuns: 20, seed: 1 })) {
      const r = rto.run({ ...b, mask: new Uint8Array(b.numTokens) });
      expect(close(r.loss, 0)).toBe(true);
      expect(Array.from(r.grads.logp!.data).every((g) => g === 0)).toBe(true);
    }
  });

  it('its loss is ppo (seq-mean-token-mean, no dual clip) on its exported advantage, value and gradient', () => {
    fc.assert(
      fc.property(arbFor(rto), (b) => {
        const out = rto.run(b);
        const tensors = new Map(b.tensors);
        tensors.set('advantage', {
          level: 'token',
          dtype: 'f32',
          data: Float64Array.from(out.exports.advantage!.data),
        });
        const q = ppo.run({ ...b, tensors }, { params: { loss_agg_mode: 1, clip_c: 1e30 } });
        expect(close(out.loss, q.loss)).toBe(true);
        expectVecClose(out.grads.logp!.data, Array.from(q.grads.logp!.data), 'grad logp');
      }),
      { numRuns: 100 },
    );
  });

  it('beta1 = 0: the DPO model plays no part (any dpo_logp gives the same run)', () => {
    fc.assert(
      fc.property(arbFor(rto), (b) => {
        const tensors = new Map(b.tensors);
        tensors.set('dpo_logp', b.tensors.get('ref_logp')!);
        const a = rto.run(b, { params: { beta1: 0 } });
        const c = rto.run({ ...b, tensors }, { params: { beta1: 0 } });
        expect(a.loss).toBe(c.loss);
      }),
      { numRuns: 100 },
    );
  });

  it('GAE with lam = 1, gamma = 1 and V = 0 gives every token the return to go Σ_{k≥t} R_k', () => {
    fc.assert(
      fc.property(arbFor(rto), (b0) => {
        const tensors = new Map(b0.tensors);
        tensors.set('value', { level: 'token', dtype: 'f32', data: new Float64Array(b0.numTokens) });
        const b = { ...b0, tensors };
        const out = rto.run(b, { params: { lam: 1, whiten: 0 } });
        const ret = out.exports.returns!.data;
        // the return to go of the first valid token is the response's whole return
        let total = 0;
        let n = 0;
        for (let s = 0; s < b.numSeqs; s++) {
          const ts = validTokensOf(b, s);
          if (ts.length) total += ret[ts[0]!]!;
          n++;
        }
        expect(close(n ? total / n : 0, out.metrics.return!)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('the DPO token rewards change the loss when beta1 > 0', () => {
    const found = fc
      .sample(arbFor(rto), { numRuns: 100, seed: 4 })
      .some((b) => Math.abs(rto.run(b).loss - rto.run(b, { params: { beta1: 0 } }).loss) > 1e-6);
    expect(found).toBe(true);
  });
});

/**
 * stdlib/gdpo.credo (GDPO) against tests/reference/gdpo.ts on random quadrature batches (each
 * response 1 … 4 views at random t with random weights) and trajectory-like batches, its gradient
 * against finite differences, and the special cases: the ELBO is linear in the views (splitting a
 * view in two halves of its weight changes nothing), the on-policy gradient, the mean-centred
 * advantage (methods-dpo.md §19 item 10) against the std form.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { arbDiffusion } from '../reference/arb-diffusion.js';
import { gdpoRef } from '../reference/gdpo.js';
import { sequencesByGroup, validTokensOf, values } from '../reference/family.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const gdpo = compile('gdpo');
const params = fc.record({
  eps: fc.constantFrom(0.2, 0.5),
  beta: fc.constantFrom(0.04, 0),
  t_pow: fc.constantFrom(1, 0, 2),
  len_norm: fc.constantFrom(1, 0),
  std_norm: fc.constantFrom(0, 1),
  adv_eps: fc.constantFrom(1e-6, 0.1),
});
const quad = arbDiffusion(gdpo.inputs, { views: 'random' });

function withTensor(b: RaggedBatch, name: string, data: ArrayLike<number>): RaggedBatch {
  const tensors = new Map(b.tensors);
  tensors.set(name, { ...b.tensors.get(name)!, data: Float64Array.from(data) });
  return { ...b, tensors };
}

/** Sequence s appended once more, with its weight split in half between the two copies. */
function splitView(b: RaggedBatch, s: number): RaggedBatch {
  const lo = b.offsets[s]!;
  const hi = b.offsets[s + 1]!;
  const tensors = new Map(b.tensors);
  for (const [name, t] of b.tensors) {
    const data = Array.from(t.data);
    if (t.level === 'token') data.push(...data.slice(lo, hi));
    else if (t.level === 'seq') data.push(data[s]!);
    if (name === 'elbo_w') {
      data[s] = data[s]! / 2;
      data[b.numSeqs] = data[s]!;
    }
    tensors.set(name, { ...t, data: Float64Array.from(data) });
  }
  return {
    ...b,
    numTokens: b.numTokens + hi - lo,
    numSeqs: b.numSeqs + 1,
    offsets: Int32Array.from([...b.offsets, b.numTokens + hi - lo]),
    groupOf: Int32Array.from([...b.groupOf, b.groupOf[s]!]),
    mask: Uint8Array.from([...b.mask, ...b.mask.slice(lo, hi)]),
    tensors,
  };
}

describe('gdpo equals its reference', () => {
  itAgreesWithFamilyRef(gdpo, gdpoRef, params, { batches: quad, what: '(random quadrature nodes and weights)' });
  itAgreesWithFamilyRef(gdpo, gdpoRef, params, {
    batches: arbDiffusion(gdpo.inputs, { views: 'trajectory' }),
    numRuns: 100,
    what: '(views at fixed nodes t = 1 − k/S)',
  });
  itAgreesWithFamilyRef(gdpo, gdpoRef, params, { numRuns: 100, what: '(generic random batches)' });
  // finite differences through exp of an ELBO sum need it of moderate size: small log-ratios, t ≥ 0.5
  itHasFdGradients(gdpo, gdpoRef, params, {
    batches: arbDiffusion(gdpo.inputs, { views: 'random', mild: true, tMin: 0.5, maxLen: 3 }),
  });
});

describe('gdpo special cases', () => {
  it('the ELBO is linear in the views: a view split into two with half the weight each changes nothing (beta = 0)', () => {
    fc.assert(
      fc.property(quad, fc.nat(), (b, k) => {
        const s = k % b.numSeqs;
        const p = { params: { beta: 0 } };
        const a = gdpo.run(b, p);
        const o = gdpo.run(splitView(b, s), p);
        expect(close(o.loss, a.loss, 1e-9)).toBe(true);
        expectVecClose(o.exports.d_elbo!.data.slice(0, b.numSeqs), a.exports.d_elbo!.data, 'd_elbo', 1e-9);
      }),
      { numRuns: 100 },
    );
  });

  it('on-policy with beta = 0 the gradient at a token of view n is −A · w_n / t_n / (#responses · |y|)', () => {
    fc.assert(
      fc.property(quad, (b0) => {
        const b = withTensor(b0, 'old_logp', values(b0, 'logp'));
        const out = gdpo.run(b, { params: { beta: 0 } });
        const adv = out.exports.adv!.data;
        const [w, t, len, resp] = ['elbo_w', 't', 'resp_len', 'response'].map((n) => values(b, n));
        const nResp = sequencesByGroup(b).reduce((a, seqs) => a + new Set(seqs.map((s) => resp![s])).size, 0);
        for (let s = 0; s < b.numSeqs; s++)
          for (const tk of validTokensOf(b, s))
            expect(close(out.grads.logp!.data[tk]!, (-adv[s]! * w![s]!) / t![s]! / nResp / Math.max(len![s]!, 1))).toBe(
              true,
            );
      }),
      { numRuns: 100 },
    );
  });

  it('the advantage is mean-centred only (std_norm = 0): scaling the rewards by c scales it; std_norm = 1 does not (§19 item 10)', () => {
    fc.assert(
      fc.property(quad, fc.constantFrom(3, 0.25), (b, c) => {
        const scaled = withTensor(
          b,
          'reward',
          values(b, 'reward').map((r) => c * r),
        );
        const a = gdpo.run(b).exports.adv!.data;
        const a2 = gdpo.run(scaled).exports.adv!.data;
        a.forEach((x, s) => expect(close(a2[s]!, c * x)).toBe(true));
        const z = gdpo.run(b, { params: { std_norm: 1, adv_eps: 0 } }).exports.adv!.data;
        const z2 = gdpo.run(scaled, { params: { std_norm: 1, adv_eps: 0 } }).exports.adv!.data;
        z.forEach((x, s) => expect(Number.isNaN(x) || close(z2[s]!, x, 1e-7)).toBe(true));
      }),
      { numRuns: 100 },
    );
  });
});

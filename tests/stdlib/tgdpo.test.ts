/**
 * stdlib/tgdpo.credo (TGDPO, sigmoid) against tests/reference/tgdpo.ts, its gradient against finite
 * differences, and its special cases (α = 0 and rm_logp = ref_logp are DPO; otherwise it is not).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { tgdpoRef } from '../reference/tgdpo.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const tgdpo = compile('tgdpo');
const dpo = compile('dpo');
const params = fc.record({ alpha: fc.constantFrom(0.5, 0, 1, 3), beta: fc.constantFrom(0.1, 0.5, 2) });

describe('tgdpo equals its reference', () => {
  itAgreesWithFamilyRef(tgdpo, tgdpoRef, params);
  itHasFdGradients(tgdpo, tgdpoRef, params);
});

describe('tgdpo special cases', () => {
  it('a fully masked batch gives a loss of log 2 (every pair has margin 0) and a zero gradient', () => {
    for (const b of fc.sample(arbFor(tgdpo), { numRuns: 20, seed: 1 })) {
      const r = tgdpo.run({ ...b, mask: new Uint8Array(b.numTokens) });
      expect(close(r.loss, Math.log(2))).toBe(true);
      expect(Array.from(r.grads.logp!.data).every((g) => g === 0)).toBe(true);
    }
  });

  const sameAsDpo = (b: Parameters<typeof tgdpo.run>[0], p: Record<string, number>, beta: number) => {
    const a = tgdpo.run(b, { params: p });
    const d = dpo.run(b, { params: { beta } });
    expect(close(a.loss, d.loss)).toBe(true);
    expectVecClose(a.grads.logp!.data, Array.from(d.grads.logp!.data), 'grad logp');
    for (const k of Object.keys(d.metrics)) expect(close(a.metrics[k]!, d.metrics[k]!), k).toBe(true);
  };

  it('alpha = 0 is dpo (loss, gradient and the reward metrics)', () => {
    fc.assert(
      fc.property(arbFor(tgdpo), fc.constantFrom(0.1, 0.5), (b, beta) => sameAsDpo(b, { alpha: 0, beta }, beta)),
      { numRuns: 100 },
    );
  });

  it('a token reward model equal to the reference (r̂ = 0) is dpo', () => {
    fc.assert(
      fc.property(arbFor(tgdpo), (b) => {
        const tensors = new Map(b.tensors);
        tensors.set('rm_logp', b.tensors.get('ref_logp')!);
        sameAsDpo({ ...b, tensors }, {}, 0.1);
      }),
      { numRuns: 100 },
    );
  });

  it('the guidance changes the loss when the reward model differs from the reference', () => {
    const found = fc
      .sample(arbFor(tgdpo), { numRuns: 100, seed: 11 })
      .some((b) => Math.abs(tgdpo.run(b).loss - dpo.run(b).loss) > 1e-6);
    expect(found).toBe(true);
  });
});

/**
 * stdlib/dpo.credo (TRL sigmoid DPO) against tests/reference/dpo.ts on random preference pairs, its
 * gradient against finite differences, and the token-level reading of "From r to Q*" (the implicit
 * per-token rewards of a response sum to its sequence reward β·S(y)).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { dpoRef } from '../reference/dpo.js';
import { validTokensOf, values } from '../reference/family.js';
import { close } from '../helpers/expect.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const dpo = compile('dpo');
const params = fc.record({
  beta: fc.constantFrom(0.1, 0.5, 2),
  label_smoothing: fc.constantFrom(0, 0.1, 0.5),
});

describe('dpo equals its reference', () => {
  itAgreesWithFamilyRef(dpo, dpoRef, params);
  itHasFdGradients(dpo, dpoRef, params);
});

describe('dpo special cases', () => {
  it('the implicit per-token rewards of a response sum to β·S(y) (r → Q*: the credit-assignment identity)', () => {
    fc.assert(
      fc.property(arbFor(dpo), (b) => {
        const out = dpo.run(b);
        const r = out.exports.implicit_reward!.data;
        const [logp, ref] = [values(b, 'logp'), values(b, 'ref_logp')];
        for (let s = 0; s < b.numSeqs; s++) {
          const ts = validTokensOf(b, s);
          const sum = ts.reduce((a, t) => a + r[t]!, 0);
          expect(close(sum, 0.1 * ts.reduce((a, t) => a + logp[t]! - ref[t]!, 0))).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('a batch that is not made of pairs is refused with the requirement it breaks', () => {
    const b = fc.sample(arbFor(dpo), { numRuns: 1, seed: 3 })[0]!;
    const tensors = new Map(b.tensors);
    tensors.set('chosen', { level: 'seq', dtype: 'bool', data: new Float64Array(b.numSeqs).fill(1) });
    expect(() => dpo.run({ ...b, tensors })).toThrow(/require sum\(f32\(chosen\) per group\) == 1/);
  });
});

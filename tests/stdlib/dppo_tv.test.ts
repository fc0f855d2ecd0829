/** stdlib/dppo_tv.credo and dppo_kl.credo (verl DPPO-Binary-TV / -KL) against tests/reference/dppo.ts, FD, special cases. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { values } from '../reference/family.js';
import { dppoKlRef, dppoTvRef } from '../reference/dppo.js';
import { itHasFrozenFdGradients, withTensor } from './verl-losses-test-helpers.js';
import { arbFor, itAgreesWithFamilyRef } from './family-helpers.js';

const tv = compile('dppo_tv');
const kl = compile('dppo_kl');
const ppo = compile('ppo');
const params = fc.record({
  eps_low: fc.constantFrom(0.2, 0.05, 0.15, 1e30),
  eps_high: fc.constantFrom(0.2, 0.05, 0.15, 1e30),
  clip_c: fc.constantFrom(3, 20, 1e4, 1.5),
  loss_agg_mode: fc.constantFrom(0, 1, 2, 3, 4, 5, 6),
  max_len: fc.constantFrom(3000, 4),
});

for (const [name, obj, ref] of [
  ['dppo_tv', tv, dppoTvRef],
  ['dppo_kl', kl, dppoKlRef],
] as const) {
  describe(`${name} equals its reference`, () => {
    itAgreesWithFamilyRef(obj, ref, params, { numRuns: 200 });
    itHasFrozenFdGradients(obj, ref, params);
  });

  describe(`${name} special cases`, () => {
    it('on-policy: every token valid, w = 1: the REINFORCE gradient of ppo on-policy, every mode', () => {
      fc.assert(
        fc.property(arbFor(obj), fc.constantFrom(0, 1, 2, 3, 4, 5), (b0, mode) => {
          const b = withTensor(b0, 'old_logp', values(b0, 'logp'));
          const a = obj.run(b, { params: { loss_agg_mode: mode } });
          const c = ppo.run(b, { params: { loss_agg_mode: mode } });
          expect(a.metrics.clip_frac).toBe(0);
          expectVecClose(a.grads.logp!.data, Array.from(c.grads.logp!.data), 'grad');
        }),
        { numRuns: 100 },
      );
    });

    it('a fully masked batch gives loss 0 and zero gradient', () => {
      for (const b of fc.sample(arbFor(obj), { numRuns: 20, seed: 2 })) {
        const r = obj.run({ ...b, mask: new Uint8Array(b.numTokens) });
        expect(r.loss).toBe(0);
        expect(Array.from(r.grads.logp!.data).every((g) => g === 0)).toBe(true);
      }
    });
  });
}

describe('dppo_tv masks by the probability difference', () => {
  it('A > 0 and p - p_old > eps_high drops the token (gradient 0); within the threshold it counts', () => {
    const b0 = fc.sample(arbFor(tv), { numRuns: 50, seed: 5 }).find((x) => x.mask.some((m) => m === 1))!;
    const logp = values(b0, 'logp').map(() => Math.log(0.9));
    let b = withTensor(b0, 'logp', logp);
    b = withTensor(
      b,
      'old_logp',
      logp.map(() => Math.log(0.5)),
    );
    b = withTensor(
      b,
      'advantage',
      logp.map(() => 1),
    );
    const r = tv.run(b, { params: { eps_high: 0.3 } });
    expect(r.metrics.clip_frac).toBe(1);
    expect(Array.from(r.grads.logp!.data).every((g) => g === 0)).toBe(true);
    const r2 = tv.run(b, { params: { eps_high: 0.5 } });
    expect(r2.metrics.clip_frac).toBe(0);
    expect(close(r2.metrics.trunc_frac!, 0)).toBe(true);
  });
});

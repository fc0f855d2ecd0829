/** stdlib/ppo_kl.credo (verl vanilla + actor KL loss) against tests/reference/ppo_kl.ts, FD, special cases. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { values } from '../reference/family.js';
import { ppoKlRef } from '../reference/ppo_kl.js';
import { itHasFrozenFdGradients, withTensor } from './verl-losses-test-helpers.js';
import { arbFor, itAgreesWithFamilyRef } from './family-helpers.js';

const ppoKl = compile('ppo_kl');
const ppo = compile('ppo');
const params = fc.record({
  eps_low: fc.constantFrom(0.2, 0.1),
  eps_high: fc.constantFrom(0.2, 0.28),
  clip_c: fc.constantFrom(3, 1e30),
  loss_agg_mode: fc.constantFrom(0, 1, 2, 3, 4, 5, 8),
  max_len: fc.constantFrom(3000, 5),
  kl_coef: fc.constantFrom(0.001, 0.5),
  kl_type: fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7, 9),
});

describe('ppo_kl equals its reference', () => {
  itAgreesWithFamilyRef(ppoKl, ppoKlRef, params, { numRuns: 200 });
  itHasFrozenFdGradients(ppoKl, ppoKlRef, params);
});

describe('ppo_kl special cases', () => {
  it('kl_coef = 0 is ppo (value, gradient, metrics), every kl_type', () => {
    fc.assert(
      fc.property(arbFor(ppoKl), fc.constantFrom(0, 1, 2, 3, 4, 5), fc.constantFrom(0, 3, 7), (b, mode, kt) => {
        const a = ppoKl.run(b, { params: { kl_coef: 0, loss_agg_mode: mode, kl_type: kt } });
        const c = ppo.run(b, { params: { loss_agg_mode: mode } });
        expect(close(a.loss, c.loss)).toBe(true);
        expectVecClose(a.grads.logp!.data, Array.from(c.grads.logp!.data), 'grad');
        for (const k of Object.keys(c.metrics)) expect(close(a.metrics[k]!, c.metrics[k]!), k).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('ref_logp = logp: every estimator but k1 is 0 with gradient 0 (abs: sign(0) = 0, as torch), so ppo_kl = ppo', () => {
    fc.assert(
      fc.property(arbFor(ppoKl), fc.constantFrom(1, 2, 3, 4, 5, 6, 7), (b0, kt) => {
        const b = withTensor(b0, 'ref_logp', values(b0, 'logp'));
        const a = ppoKl.run(b, { params: { kl_coef: 0.5, kl_type: kt } });
        const c = ppo.run(b);
        expect(a.metrics.kl_loss).toBe(0);
        expect(close(a.loss, c.loss)).toBe(true);
        expectVecClose(a.grads.logp!.data, Array.from(c.grads.logp!.data), 'grad');
      }),
      { numRuns: 100 },
    );
  });

  it('straight-through: k1+ / abs+ / k3+ have the value of k1 / abs / k3 and the gradient of k2', () => {
    fc.assert(
      fc.property(arbFor(ppoKl), fc.constantFrom(0, 1, 2, 3, 4, 5), (b, mode) => {
        const run = (kt: number) => ppoKl.run(b, { params: { kl_type: kt, kl_coef: 0.5, loss_agg_mode: mode } });
        const k2 = run(2);
        for (const [st, base] of [
          [4, 0],
          [5, 1],
          [7, 3],
          [6, 2],
        ] as const) {
          const s = run(st);
          expect(close(s.loss, run(base).loss), `value ${st}`).toBe(true);
          expectVecClose(s.grads.logp!.data, Array.from(k2.grads.logp!.data), `grad ${st}`);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('k3 is clamped: a log-ratio of 50 gives the estimator 10, not e^50', () => {
    const b0 = fc.sample(arbFor(ppoKl), { numRuns: 50, seed: 3 }).find((x) => x.mask.some((m) => m === 1))!;
    const logp = values(b0, 'logp');
    const b = withTensor(
      b0,
      'ref_logp',
      logp.map((x) => x + 50),
    );
    expect(close(ppoKl.run(b, { params: { kl_type: 3 } }).metrics.kl_loss!, 10)).toBe(true);
  });
});

/** stdlib/kl_cov.credo (verl kl_cov) against tests/reference/kl_cov.ts, FD, special cases. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { values } from '../reference/family.js';
import { klCovRef } from '../reference/kl_cov.js';
import { itHasFrozenFdGradients, moderate, withTensor } from './verl-losses-test-helpers.js';
import { arbFor, itAgreesWithFamilyRef } from './family-helpers.js';

const klCov = compile('kl_cov');
const ppo = compile('ppo');
const params = fc.record({
  kl_cov_ratio: fc.constantFrom(0.0002, 0.1, 0.5),
  ppo_kl_coef: fc.constantFrom(0.1, 1, 0),
  loss_agg_mode: fc.constantFrom(0, 1, 2, 3, 4, 5, 9),
  max_len: fc.constantFrom(3000, 5),
});

describe('kl_cov equals its reference', () => {
  itAgreesWithFamilyRef(klCov, klCovRef, params, { numRuns: 250 });
  itHasFrozenFdGradients(klCov, klCovRef, params);
});

describe('kl_cov special cases', () => {
  it('ppo_kl_coef = 0: the unclipped ratio loss -A r = ppo with eps_low = 1, eps_high, clip_c → ∞ (|d| ≤ 20)', () => {
    fc.assert(
      fc.property(arbFor(klCov), fc.constantFrom(0, 1, 2, 3, 4, 5), (b0, mode) => {
        const lp = values(b0, 'logp');
        const b = withTensor(
          b0,
          'old_logp',
          values(b0, 'old_logp').map((x, t) => Math.min(Math.max(x, lp[t]! - 20), lp[t]! + 20)),
        );
        const a = klCov.run(b, { params: { ppo_kl_coef: 0, loss_agg_mode: mode } });
        const c = ppo.run(b, { params: { eps_low: 1, eps_high: 1e30, clip_c: 1e30, loss_agg_mode: mode } });
        expect(close(a.loss, c.loss)).toBe(true);
        expectVecClose(a.grads.logp!.data, Array.from(c.grads.logp!.data), 'grad');
      }),
      { numRuns: 100 },
    );
  });

  it('the penalty lands on the k largest-covariance tokens: loss - (coef 0 loss) = coef · Σ_sel |d| × weight', () => {
    fc.assert(
      fc.property(arbFor(klCov).map(moderate), (b) => {
        const with1 = klCov.run(b, { params: { ppo_kl_coef: 1, kl_cov_ratio: 0.5, loss_agg_mode: 4 } });
        const with0 = klCov.run(b, { params: { ppo_kl_coef: 0, kl_cov_ratio: 0.5, loss_agg_mode: 4 } });
        const ref = klCovRef(b, { ppo_kl_coef: 1, kl_cov_ratio: 0.5, loss_agg_mode: 4 });
        expect(
          close(
            with1.loss - with0.loss,
            ref.loss - klCovRef(b, { ppo_kl_coef: 0, kl_cov_ratio: 0.5, loss_agg_mode: 4 }).loss,
          ),
        ).toBe(true);
        expect(with1.loss - with0.loss).toBeGreaterThanOrEqual(-1e-12);
      }),
      { numRuns: 100 },
    );
  });
});

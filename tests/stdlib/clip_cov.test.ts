/** stdlib/clip_cov.credo (verl clip_cov) against tests/reference/clip_cov.ts, FD, special cases. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { clipCovRef } from '../reference/clip_cov.js';
import { values } from '../reference/family.js';
import { itHasFrozenFdGradients, withTensor } from './verl-losses-test-helpers.js';
import { arbFor, itAgreesWithFamilyRef } from './family-helpers.js';

const clipCov = compile('clip_cov');
const ppo = compile('ppo');
const params = fc.record({
  eps_low: fc.constantFrom(0.2, 0.1),
  eps_high: fc.constantFrom(0.2, 0.28),
  clip_cov_ratio: fc.constantFrom(0.0002, 0.1, 0.5),
  clip_cov_lb: fc.constantFrom(1, -1, 0),
  clip_cov_ub: fc.constantFrom(5, 100),
  loss_agg_mode: fc.constantFrom(0, 1, 2, 3, 4, 5, 9),
  max_len: fc.constantFrom(3000, 5),
});

describe('clip_cov equals its reference', () => {
  itAgreesWithFamilyRef(clipCov, clipCovRef, params, { numRuns: 250 });
  itHasFrozenFdGradients(clipCov, clipCovRef, params);
});

describe('clip_cov special cases', () => {
  it('no candidate (lb ≥ ub) is ppo without dual clip (|log-ratio| ≤ 20), every mode', () => {
    fc.assert(
      fc.property(arbFor(clipCov), fc.constantFrom(0, 1, 2, 3, 4, 5), (b0, mode) => {
        const lp = values(b0, 'logp');
        const b = withTensor(
          b0,
          'old_logp',
          values(b0, 'old_logp').map((x, t) => Math.min(Math.max(x, lp[t]! - 20), lp[t]! + 20)),
        );
        const a = clipCov.run(b, { params: { clip_cov_lb: 5, clip_cov_ub: 1, loss_agg_mode: mode } });
        const c = ppo.run(b, { params: { clip_c: 1e30, loss_agg_mode: mode } });
        expect(a.metrics.clip_frac).toBe(0);
        expect(close(a.loss, c.loss)).toBe(true);
        expectVecClose(a.grads.logp!.data, Array.from(c.grads.logp!.data), 'grad');
      }),
      { numRuns: 100 },
    );
  });

  it('drops exactly min(n_clip, candidates) tokens; with every token a candidate the largest select_u go', () => {
    fc.assert(
      fc.property(arbFor(clipCov), (b0) => {
        const b = withTensor(b0, 'old_logp', values(b0, 'logp')); // r = 1: no token is ratio-clipped
        const N = Array.from(b.mask).filter((m) => m === 1).length;
        const r = clipCov.run(b, { params: { clip_cov_lb: -1e30, clip_cov_ub: 1e30, clip_cov_ratio: 0.5 } });
        const n = N ? Math.max(Math.floor(0.5 * N), 1) : 0;
        expect(close(r.metrics.clip_frac!, N ? n / N : 0)).toBe(true);
        expect(Array.from(r.grads.logp!.data).filter((g, t) => b.mask[t] && g === 0).length).toBeGreaterThanOrEqual(n);
      }),
      { numRuns: 100 },
    );
  });
});

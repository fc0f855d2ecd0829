/** dppo_kl's own special case (the agreement and FD tests of dppo_kl run in dppo_tv.test.ts). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { expectVecClose } from '../helpers/expect.js';
import { values } from '../reference/family.js';
import { withTensor } from './verl-losses-test-helpers.js';
import { arbFor } from './family-helpers.js';

const tv = compile('dppo_tv');
const kl = compile('dppo_kl');

describe('dppo_kl special cases', () => {
  it('thresholds → ∞ with valid probabilities (old_logp ≤ 0): every token valid, = dppo_tv with thresholds → ∞', () => {
    fc.assert(
      fc.property(arbFor(kl), fc.constantFrom(0, 1, 3), (b0, mode) => {
        const b = withTensor(
          b0,
          'old_logp',
          values(b0, 'old_logp').map((x) => Math.min(x, -1e-3)),
        );
        const ps = { eps_low: 1e30, eps_high: 1e30, loss_agg_mode: mode };
        const a = kl.run(b, { params: ps });
        const c = tv.run(b, { params: ps });
        expect(a.metrics.clip_frac).toBe(0);
        expectVecClose(a.grads.logp!.data, Array.from(c.grads.logp!.data), 'grad');
      }),
      { numRuns: 100 },
    );
  });
});

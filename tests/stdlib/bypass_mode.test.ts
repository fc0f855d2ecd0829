/** stdlib/bypass_mode.credo (verl bypass_mode) against tests/reference/bypass_mode.ts, FD, special cases. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { bypassRef } from '../reference/bypass_mode.js';
import { values } from '../reference/family.js';
import { itHasFrozenFdGradients, withTensor } from './verl-losses-test-helpers.js';
import { arbFor, itAgreesWithFamilyRef } from './family-helpers.js';

const bypass = compile('bypass_mode');
const ppo = compile('ppo');
const dro = compile('dro');
const params = fc.record({
  loss_type: fc.constantFrom(0, 1, 1, 2),
  eps_low: fc.constantFrom(0.2, 0.1),
  eps_high: fc.constantFrom(0.2, 0.28),
  clip_c: fc.constantFrom(3, 1e30),
  rollout_is: fc.constantFrom(0, 1, 2, 3),
  is_threshold: fc.constantFrom(2, 0.5, 1e30),
  is_batch_normalize: fc.constantFrom(0, 1),
  loss_agg_mode: fc.constantFrom(0, 1, 2, 3, 4, 5, 9),
  max_len: fc.constantFrom(3000, 5),
});

describe('bypass_mode equals its reference', () => {
  itAgreesWithFamilyRef(bypass, bypassRef, params, { numRuns: 250 });
  itHasFrozenFdGradients(bypass, bypassRef, params);
});

describe('bypass_mode special cases', () => {
  it('loss_type 0 (ppo_clip) is ppo with the same params: value, gradient, metrics', () => {
    fc.assert(
      fc.property(arbFor(bypass), fc.constantFrom(0, 1, 2, 3, 4, 5), fc.constantFrom(3, 1e30), (b, mode, c) => {
        const a = bypass.run(b, { params: { loss_agg_mode: mode, clip_c: c } });
        const r = ppo.run(b, { params: { loss_agg_mode: mode, clip_c: c } });
        expect(close(a.loss, r.loss)).toBe(true);
        expectVecClose(a.grads.logp!.data, Array.from(r.grads.logp!.data), 'grad');
        for (const k of Object.keys(r.metrics)) expect(close(a.metrics[k]!, r.metrics[k]!), k).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('loss_type 1 without IS (rollout_is 0) is REINFORCE -A logp = dro with beta = 0', () => {
    fc.assert(
      fc.property(arbFor(bypass), fc.constantFrom(0, 1, 2, 3, 4, 5), (b, mode) => {
        const a = bypass.run(b, { params: { loss_type: 1, loss_agg_mode: mode } });
        const r = dro.run(b, { params: { beta: 0, loss_agg_mode: mode } });
        expect(close(a.loss, r.loss)).toBe(true);
        expectVecClose(a.grads.logp!.data, Array.from(r.grads.logp!.data), 'grad');
      }),
      { numRuns: 100 },
    );
  });

  it('on-policy: every loss_type and IS level has the REINFORCE gradient of ppo on-policy', () => {
    fc.assert(
      fc.property(
        arbFor(bypass),
        fc.constantFrom(0, 1),
        fc.constantFrom(0, 1, 2),
        fc.constantFrom(0, 1),
        (b0, lt, ri, bn) => {
          const b = withTensor(b0, 'old_logp', values(b0, 'logp'));
          const a = bypass.run(b, { params: { loss_type: lt, rollout_is: ri, is_batch_normalize: bn } });
          expectVecClose(a.grads.logp!.data, Array.from(ppo.run(b).grads.logp!.data), 'grad');
        },
      ),
      { numRuns: 100 },
    );
  });
});

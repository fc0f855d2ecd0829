/** stdlib/sapo.credo (verl sapo) against tests/reference/sapo.ts, FD, special cases. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { values } from '../reference/family.js';
import { sapoRef } from '../reference/sapo.js';
import { withTensor } from './verl-losses-test-helpers.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const sapo = compile('sapo');
const ppo = compile('ppo');
const params = fc.record({ tau_pos: fc.constantFrom(1, 0.5, 3), tau_neg: fc.constantFrom(1.05, 2, 0.3) });

describe('sapo equals its reference', () => {
  itAgreesWithFamilyRef(sapo, sapoRef, params, { numRuns: 200 });
  itHasFdGradients(sapo, sapoRef, params);
});

describe('sapo special cases', () => {
  it('on-policy: gradient -A per token with seq-mean-token-mean = ppo on-policy loss_agg_mode 1, any τ', () => {
    fc.assert(
      fc.property(arbFor(sapo), params, (b0, p) => {
        const b = withTensor(b0, 'old_logp', values(b0, 'logp'));
        const a = sapo.run(b, { params: p });
        const c = ppo.run(b, { params: { loss_agg_mode: 1 } });
        expectVecClose(a.grads.logp!.data, Array.from(c.grads.logp!.data), 'grad');
      }),
      { numRuns: 100 },
    );
  });

  it('small τ: the gradient approaches the unclipped ratio gradient (ppo with eps → ∞), error O(τ)', () => {
    fc.assert(
      fc.property(arbFor(sapo), (b) => {
        const a = sapo.run(b, { params: { tau_pos: 1e-6, tau_neg: 1e-6 } });
        const c = ppo.run(b, { params: { loss_agg_mode: 1, eps_low: 1e30, eps_high: 1e30, clip_c: 1e30 } });
        const ga = a.grads.logp!.data;
        const gc = c.grads.logp!.data;
        // r ≤ e^20: τ (r - 1) stays small only for moderate ratios; compare where |logp - old_logp| ≤ 3
        const lp = values(b, 'logp');
        const old = values(b, 'old_logp');
        ga.forEach((g, t) => {
          if (Math.abs(lp[t]! - old[t]!) <= 3) expect(close(g, gc[t]!, 1e-4), `t ${t}`).toBe(true);
        });
      }),
      { numRuns: 100 },
    );
  });

  it('ignores loss_agg_mode: it is not a param (verl hard-codes seq-mean-token-mean)', () => {
    expect(sapo.program.params.map((p) => p.name).sort()).toEqual(['tau_neg', 'tau_pos']);
  });
});

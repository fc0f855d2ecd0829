/**
 * stdlib/cj_grpo.credo (CJ-GRPO) against tests/reference/cj_grpo.ts on random trajectory batches
 * (S steps per response, a random subset of them kept) and generic random batches, its gradient
 * against finite differences, and the special cases: S = 1 is diffu_grpo ("one-step-grpo"), the
 * advantage is mean-centred only (methods-dpo.md §19 item 10), each step weighs 1/S whatever its
 * number of tokens.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { arbDiffusion } from '../reference/arb-diffusion.js';
import { cjGrpoRef, viewsByStep } from '../reference/cj_grpo.js';
import { validTokensOf } from '../reference/family.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { itAgreesWithFamilyRef, itHasFdGradients, itHasMeanCentredAdvantage } from './family-helpers.js';

const cj = compile('cj_grpo');
const d1 = compile('diffu_grpo');
const params = fc.record({ eps: fc.constantFrom(0.5, 0.2), beta: fc.constantFrom(0.04, 0, 0.3) });
const traj = arbDiffusion(cj.inputs, { views: 'trajectory' });

describe('cj_grpo equals its reference', () => {
  itAgreesWithFamilyRef(cj, cjGrpoRef, params, { batches: traj, what: '(trajectories, steps kept at random)' });
  itAgreesWithFamilyRef(cj, cjGrpoRef, params, { numRuns: 100, what: '(generic random batches)' });
  itHasFdGradients(cj, cjGrpoRef, params, {
    batches: arbDiffusion(cj.inputs, { views: 'trajectory', extreme: false }),
  });
});

describe('cj_grpo special cases', () => {
  it('S = 1 (one view per response, t = 1) is diffu_grpo: loss, metrics and gradient', () => {
    fc.assert(
      fc.property(arbDiffusion(cj.inputs, { views: 'one' }), params, (b, p) => {
        const a = cj.run(b, { params: p });
        const o = d1.run(b, { params: p });
        expect(close(a.loss, o.loss)).toBe(true);
        for (const k of ['kl', 'clip_ratio']) expect(close(a.metrics[k]!, o.metrics[k]!)).toBe(true);
        expectVecClose(a.grads.logp!.data, o.grads.logp!.data, 'grad logp');
      }),
      { numRuns: 100 },
    );
  });

  it('the loss is the mean over steps of each step’s token mean (a step of 1 token weighs as much as one of 100)', () => {
    fc.assert(
      fc.property(traj, (b) => {
        const out = cj.run(b);
        const sl = out.exports.step_loss!.data;
        const steps = viewsByStep(b);
        expect(close(out.loss, steps.reduce((a, seqs) => a + sl[seqs[0]!]!, 0) / steps.length)).toBe(true);
        // while diffu_grpo on the same views (the global token mean) weighs each step by its tokens
        const sizes = steps.map((seqs) => seqs.reduce((a, s) => a + validTokensOf(b, s).length, 0));
        const total = sizes.reduce((a, n) => a + n, 0);
        const weighted = steps.reduce((a, seqs, i) => a + sizes[i]! * sl[seqs[0]!]!, 0) / Math.max(total, 1);
        expect(close(d1.run(b).loss, weighted)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  itHasMeanCentredAdvantage(cj, traj);
});

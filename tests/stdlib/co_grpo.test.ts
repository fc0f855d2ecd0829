/**
 * stdlib/co_grpo.credo (Co-GRPO, reconstructed) against tests/reference/co_grpo.ts on random
 * trajectory batches and generic random batches, for every ratio level; its gradients (w.r.t. the
 * token log-probs and the schedule log-probs) against finite differences; and the special cases:
 * with a frozen schedule and the factorised form it is cj_grpo; on-policy each level's value is
 * minus its mean of the advantages.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { arbDiffusion } from '../reference/arb-diffusion.js';
import { coGrpoRef } from '../reference/co_grpo.js';
import { validTokensOf, values } from '../reference/family.js';
import { viewsByStep } from '../reference/cj_grpo.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const co = compile('co_grpo');
const cj = compile('cj_grpo');
const params = fc.record({
  eps: fc.constantFrom(0.2, 0.5),
  beta: fc.constantFrom(0, 0.04),
  std_norm: fc.constantFrom(1, 0),
  adv_eps: fc.constantFrom(1e-6, 0.1),
  sched_coef: fc.constantFrom(1, 0, 0.5),
  ratio_level: fc.constantFrom(0, 1, 2),
});
const traj = arbDiffusion(co.inputs, { views: 'trajectory' });

function withTensor(b: RaggedBatch, name: string, data: ArrayLike<number>): RaggedBatch {
  const tensors = new Map(b.tensors);
  tensors.set(name, { ...b.tensors.get(name)!, data: Float64Array.from(data) });
  return { ...b, tensors };
}

describe('co_grpo equals its reference', () => {
  itAgreesWithFamilyRef(co, coGrpoRef, params, { batches: traj, what: '(trajectories, every ratio level)' });
  itAgreesWithFamilyRef(co, coGrpoRef, params, { numRuns: 100, what: '(generic random batches)' });
  itHasFdGradients(co, coGrpoRef, params, {
    batches: arbDiffusion(co.inputs, { views: 'trajectory', mild: true, maxLen: 3 }),
  });
});

describe('co_grpo special cases', () => {
  it('a frozen schedule (sched_logp = old_sched_logp), the factorised form, mean-only A, eps 0.5, beta 0: cj_grpo', () => {
    fc.assert(
      fc.property(traj, (b0) => {
        const b = withTensor(b0, 'sched_logp', values(b0, 'old_sched_logp'));
        const p = { ratio_level: 0, std_norm: 0, eps: 0.5, beta: 0 };
        const a = co.run(b, { params: { ...p, sched_coef: 0 } });
        const o = cj.run(b, { params: { beta: 0 } });
        expect(close(a.loss, o.loss)).toBe(true);
        expectVecClose(a.grads.logp!.data, o.grads.logp!.data, 'grad logp');
        // with the schedule term on, a frozen schedule adds a constant (ratio 1): the same gradient w.r.t. logp
        const c = co.run(b, { params: { ...p, sched_coef: 1 } });
        expectVecClose(c.grads.logp!.data, o.grads.logp!.data, 'grad logp (schedule term on)');
      }),
      { numRuns: 100 },
    );
  });

  it('on-policy (every ratio 1) each level is −(a mean of A): over steps of the token- / view-means, or over responses', () => {
    fc.assert(
      fc.property(traj, fc.constantFrom(0, 1, 0.5), (b0, c) => {
        const b = withTensor(
          withTensor(b0, 'old_logp', values(b0, 'logp')),
          'old_sched_logp',
          values(b0, 'sched_logp'),
        );
        const adv = co.run(b).exports.adv!.data;
        const steps = viewsByStep(b);
        const S = steps.length;
        const ntok = (s: number) => validTokensOf(b, s).length;
        const tokMean =
          steps.reduce((a, seqs) => {
            const n = seqs.reduce((x, s) => x + ntok(s), 0);
            return a + seqs.reduce((x, s) => x + ntok(s) * adv[s]!, 0) / Math.max(n, 1);
          }, 0) / S;
        const viewMean = steps.reduce((a, seqs) => a + seqs.reduce((x, s) => x + adv[s]!, 0) / seqs.length, 0) / S;
        const resp = values(b, 'response');
        const responses = new Map<string, number[]>();
        for (let s = 0; s < b.numSeqs; s++) {
          const key = `${b.groupOf[s]}:${resp[s]}`;
          responses.set(key, [...(responses.get(key) ?? []), s]);
        }
        const respMean = [...responses.values()].reduce((a, v) => a + adv[v[0]!]!, 0) / responses.size;
        expect(close(co.run(b, { params: { ratio_level: 0, sched_coef: c } }).loss, -tokMean - c * viewMean)).toBe(
          true,
        );
        expect(close(co.run(b, { params: { ratio_level: 1 } }).loss, -viewMean)).toBe(true);
        expect(close(co.run(b, { params: { ratio_level: 2 } }).loss, -respMean)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

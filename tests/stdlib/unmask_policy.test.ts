/**
 * stdlib/unmask_policy.credo (learned unmasking policy, methods-dpo.md §12) against
 * tests/reference/unmask_policy.ts on random step-view batches, its gradient against finite
 * differences, and the method's special cases: the advantage is mean-centred only (no std), the
 * loss averages a response's active steps (each response weighs the same whatever its number of
 * steps), and on-policy it is REINFORCE on the steps' joint Bernoulli log-likelihood.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { arbActions } from '../reference/arb-actions.js';
import { unmaskPolicyRef, responsesOf } from '../reference/unmask_policy.js';
import { logSigmoid, sigmoid, validTokensOf, values } from '../reference/family.js';
import { close } from '../helpers/expect.js';
import { itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const obj = compile('unmask_policy');
const batches = arbActions(obj, 'unmask_logit', 'old_unmask_logit');
const params = fc.record({
  eps: fc.constantFrom(0.5, 0.2, 0.05),
  prob_eps: fc.constantFrom(1.1920929e-7, 1e-3, 0.2),
});

const withTensor = (b: RaggedBatch, name: string, data: Float64Array): RaggedBatch => {
  const tensors = new Map(b.tensors);
  tensors.set(name, { ...b.tensors.get(name)!, data });
  return { ...b, tensors };
};

describe('unmask_policy equals its reference', () => {
  itAgreesWithFamilyRef(obj, unmaskPolicyRef, params, { batches });
  itHasFdGradients(obj, unmaskPolicyRef, params, { batches });
});

describe('unmask_policy special cases', () => {
  it('the advantage is the reward minus the mean over the prompt responses, with no std (§19 item 10)', () => {
    fc.assert(
      fc.property(batches, (b) => {
        const adv = obj.run(b).exports.advantage!.data;
        const reward = values(b, 'reward');
        const rs = responsesOf(b);
        for (let g = 0; g < b.numGroups; g++) {
          const mine = rs.filter((seqs) => b.groupOf[seqs[0]!] === g);
          const R = mine.map((seqs) => seqs.reduce((a, s) => a + reward[s]!, 0) / seqs.length);
          const mean = R.reduce((a, r) => a + r, 0) / R.length;
          mine.forEach((seqs, i) => seqs.forEach((s) => expect(close(adv[s]!, R[i]! - mean)).toBe(true)));
        }
      }),
      { numRuns: 100 },
    );
  });

  it('scaling every reward of a prompt by c scales the advantage by c (a std normalisation would cancel it)', () => {
    fc.assert(
      fc.property(batches, fc.constantFrom(2, 0.5, 10), (b, c) => {
        const adv = obj.run(b).exports.advantage!.data;
        const scaled = obj.run(
          withTensor(
            b,
            'reward',
            Float64Array.from(values(b, 'reward'), (r) => r * c),
          ),
        );
        adv.forEach((a, s) => expect(close(scaled.exports.advantage!.data[s]!, c * a)).toBe(true));
      }),
      { numRuns: 50 },
    );
  });

  it('on-policy, the gradient is REINFORCE on the joint Bernoulli log-likelihood: −A (a − σ(u)) / (G · #active steps)', () => {
    fc.assert(
      fc.property(batches, (b) => {
        const u = values(b, 'unmask_logit');
        const on = withTensor(b, 'old_unmask_logit', Float64Array.from(u));
        const out = obj.run(on, { params: { prob_eps: 1e-30 } });
        const adv = out.exports.advantage!.data;
        const a = values(b, 'unmask');
        const rs = responsesOf(b);
        for (const seqs of rs) {
          const active = seqs.filter((s) => validTokensOf(b, s).length > 0);
          for (const s of active)
            for (const t of validTokensOf(b, s)) {
              // the clamp is inactive unless |u| is huge; skip those tokens
              if (Math.abs(logSigmoid(a[t] ? u[t]! : -u[t]!)) > 60) continue;
              const want = (-adv[s]! * (a[t]! - sigmoid(u[t]!))) / (active.length * rs.length);
              expect(close(out.grads.unmask_logit!.data[t]!, want, 1e-9)).toBe(true);
            }
        }
      }),
      { numRuns: 100 },
    );
  });

  it('a response with more steps does not weigh more: each response counts once in the loss', () => {
    // one prompt, response 0 = the first view, response 1 = all the others; on-policy every ρ = 1,
    // so loss = −(1/G) Σ_g A_g = −mean over the responses of A = 0 whatever their numbers of steps
    let checked = 0;
    for (const b of fc.sample(batches, { numRuns: 100, seed: 7 })) {
      const seqs = b.numSeqs;
      const response = Float64Array.from({ length: seqs }, (_, s) => (s === 0 ? 0 : 1));
      const groupOf = new Int32Array(seqs);
      let x = withTensor({ ...b, groupOf, numGroups: 1, groupIds: [0] }, 'response', response);
      x = withTensor(x, 'old_unmask_logit', Float64Array.from(values(b, 'unmask_logit')));
      const active = (r: number) =>
        Array.from({ length: seqs }, (_, s) => s).filter((s) => response[s] === r && validTokensOf(x, s).length > 0);
      if (active(0).length === 0 || active(1).length < 2) continue;
      checked++;
      expect(close(obj.run(x).loss, 0, 1e-9)).toBe(true);
    }
    expect(checked).toBeGreaterThan(5);
  });
});

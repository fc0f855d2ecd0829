/**
 * stdlib/gpg.credo (Group Policy Gradient: -A logp, A = alpha (R - mean_g R) / F) against
 * tests/reference/gpg.ts, and its single-method special cases (the equivalence with cispo of
 * Appendix A is in baselines-special-cases.test.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { toRagged } from '../helpers/batches.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import type { RefBatch } from '../reference/batch.js';
import { gpgRef } from '../reference/gpg.js';
import { aggWeights, seqToToken } from '../reference/ppo.js';
import {
  close,
  expectExport,
  expectFdAgreement,
  expectRef,
  expectReinforceGrad,
  expectSameRun,
} from './baselines-helpers.js';

const gpg = compile('gpg');

const arbParams = fc.record({
  alpha_mode: fc.constantFrom(0, 1, 2),
  std_norm: fc.constantFrom(0, 1),
  adv_eps: fc.constantFrom(1e-4, 1e-6),
  loss_agg_mode: fc.constantFrom(0, 1, 2, 3, 4, 5),
  max_len: fc.constantFrom(3000, 6),
});

/** Number of sequences in groups whose rewards are all equal. */
function tiedSeqs(b: RefBatch): number {
  let m = 0;
  for (let g = 0; g < b.numGroups; g++) {
    const rs = b.reward.filter((_, s) => b.groupOf[s] === g);
    if (rs.length > 0 && rs.every((r) => r === rs[0])) m += rs.length;
  }
  return m;
}

describe('gpg equals its reference', () => {
  it('with the default params', () => {
    fc.assert(
      fc.property(arbRefBatch(), (b) => {
        const got = gpg.run(toRagged(b));
        const want = gpgRef(b);
        expectRef(got, want);
        expectExport(got, 'advantage', want.advantage);
      }),
      { numRuns: 300 },
    );
  });

  it('with random params (alpha of the paper, of verl and 1; F = 1 or std; every aggregation mode)', () => {
    fc.assert(
      fc.property(arbRefBatch(), arbParams, (b, p) => {
        const got = gpg.run(toRagged(b), { params: p });
        const want = gpgRef(b, p);
        expectRef(got, want);
        expectExport(got, 'advantage', want.advantage);
      }),
      { numRuns: 300 },
    );
  });

  it('the reference gradient matches finite differences of the reference loss', () => {
    expectFdAgreement(fc.tuple(arbRefBatch(), arbParams), ([b, p]) => [b, (x) => gpgRef(x, p)]);
  });
});

describe('gpg special cases', () => {
  it('is REINFORCE whatever old_logp is: gradient -A_i w_t, unchanged by off-policy data', () => {
    fc.assert(
      fc.property(arbRefBatch(), fc.constantFrom(0, 1, 2, 3, 4, 5), (b, mode) => {
        const got = gpg.run(toRagged(b), { params: { loss_agg_mode: mode } });
        expectReinforceGrad(got, b, seqToToken(b, gpgRef(b).advantage), aggWeights(b, mode, 3000));
        const onPolicy = gpg.run(toRagged({ ...b, old_logp: b.logp }), { params: { loss_agg_mode: mode } });
        expectSameRun(got, onPolicy, ['alpha']);
      }),
      { numRuns: 200 },
    );
  });

  it('paper alpha: B / (B - M) while M/B <= 0.95 (M = sequences of tied groups), 1 with no tied group, capped at 20', () => {
    fc.assert(
      fc.property(arbRefBatch({ minGroups: 1, rewards: 'binary' }), (b) => {
        const alpha = gpg.run(toRagged(b)).metrics.alpha!;
        const B = b.offsets.length - 1;
        const M = tiedSeqs(b);
        if (M / B <= 0.95) expect(close(alpha, B / (B - M))).toBe(true);
        else expect(close(alpha, 20)).toBe(true);
        if (M === 0) expect(alpha).toBe(1);
      }),
      { numRuns: 200 },
    );
  });

  it('verl alpha with rewards in {0, 1}: B / number of correct responses', () => {
    fc.assert(
      fc.property(arbRefBatch({ minGroups: 1, rewards: 'binary' }), (b) => {
        const alpha = gpg.run(toRagged(b), { params: { alpha_mode: 2 } }).metrics.alpha!;
        const correct = b.reward.filter((r) => r === 1).length;
        expect(close(alpha, (b.offsets.length - 1) / Math.max(correct, 1))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('alpha scales the gradient: alpha_mode 1 = alpha × alpha_mode 0', () => {
    fc.assert(
      fc.property(arbRefBatch(), (b) => {
        const paper = gpg.run(toRagged(b));
        const plain = gpg.run(toRagged(b), { params: { alpha_mode: 0 } });
        const a = paper.metrics.alpha!;
        expect(plain.metrics.alpha).toBe(1);
        expect(close(paper.loss, a * plain.loss)).toBe(true);
        paper.grads.logp!.data.forEach((g, t) => expect(close(g, a * plain.grads.logp!.data[t]!)).toBe(true));
      }),
      { numRuns: 100 },
    );
  });
});

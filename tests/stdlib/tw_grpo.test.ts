/**
 * stdlib/tw_grpo.credo (interpreter) against the hand-written reference tests/reference/tw_grpo.ts,
 * plus the special cases stated in its header.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { uniformDouble } from '../reference/arbitrary.js';
import { groupAdvantages, seqLengths } from '../reference/batch.js';
import { checkGradFD } from '../reference/fd.js';
import { twGrpoRef, twGrpoRewards, twGrpoWeights, type TwGrpoBatch } from '../reference/tw_grpo.js';
import {
  arbBatch,
  close,
  expectAgrees,
  expectSameLossAndGrad,
  toRaggedWith,
  withGroupPositionFeature,
  withSeqFeatures,
  withTokenFeatures,
} from './tokenweight-helpers.js';
import type { ArbRefBatchOptions } from '../reference/arbitrary.js';

const tw = compile('tw_grpo');
const dapo = compile('dapo');

const accFrac = fc.oneof(
  { arbitrary: fc.constantFrom(0, 1), weight: 3 },
  { arbitrary: fc.constantFrom(0.25, 1 / 3, 0.5, 2 / 3, 0.75), weight: 2 },
  { arbitrary: uniformDouble(0, 1), weight: 1 },
);
const divValue = fc.oneof(
  { arbitrary: uniformDouble(0, 5), weight: 5 },
  { arbitrary: fc.constantFrom(0, 1), weight: 1 },
);

function arbTwBatch(opts: ArbRefBatchOptions = {}, acc: fc.Arbitrary<number> = accFrac): fc.Arbitrary<TwGrpoBatch> {
  const withSeq = withSeqFeatures(arbBatch(opts), { acc_frac: acc, format_reward: fc.constantFrom(0, 1) });
  // the divergence is per group and position in the method; a free per-token value also works
  return fc.oneof(
    { arbitrary: withGroupPositionFeature(withSeq, 'group_div', divValue), weight: 3 },
    { arbitrary: withTokenFeatures(withSeq, { group_div: divValue }), weight: 1 },
  );
}

function ragged(b: TwGrpoBatch) {
  return toRaggedWith(b, {
    acc_frac: { level: 'seq', data: b.acc_frac },
    format_reward: { level: 'seq', data: b.format_reward },
    group_div: { level: 'token', data: b.group_div },
  });
}

const params = fc.record(
  {
    alpha: fc.constantFrom(1.7, 1.4, 1, 3),
    beta: fc.constantFrom(0, 0.04, 0.5),
    eps_low: fc.constantFrom(0.2, 0.1),
    eps_high: fc.constantFrom(0.28, 0.2),
    adv_eps: fc.constantFrom(1e-4, 1e-6),
    div_eps: fc.constantFrom(1e-8, 0.1),
    soft_reward: fc.constantFrom(1, 0),
  },
  { requiredKeys: [] },
);

describe('tw_grpo equals its reference', () => {
  it('on random batches with default params', () => {
    fc.assert(
      fc.property(arbTwBatch(), (b) => {
        expectAgrees(tw.run(ragged(b)), twGrpoRef(b));
      }),
      { numRuns: 200 },
    );
  });

  it('on random batches and params (loss, metrics, gradient)', () => {
    fc.assert(
      fc.property(arbTwBatch(), params, (b, p) => {
        expectAgrees(tw.run(ragged(b), { params: p }), twGrpoRef(b, p));
      }),
      { numRuns: 300 },
    );
  });

  it('with large log-ratios (the ±11 clamp of the KL term is reached)', () => {
    fc.assert(
      fc.property(arbTwBatch({ largeNoise: 25 }), params, (b, p) => {
        expectAgrees(tw.run(ragged(b), { params: p }), twGrpoRef(b, p));
      }),
      { numRuns: 200 },
    );
  });

  it('the reference gradient matches finite differences of the reference loss', () => {
    fc.assert(
      fc.property(arbTwBatch({ maxGroups: 3 }), params, (b, p) => {
        const rep = checkGradFD((x) => twGrpoRef(x as TwGrpoBatch, p), b);
        expect(rep.failures).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });
});

describe('tw_grpo special cases', () => {
  it('alpha = 1 is DAPO (eps 0.2/0.28, token-mean, adv_eps 1e-4, no dual clip) with beta = 0', () => {
    fc.assert(
      fc.property(arbTwBatch(), fc.constantFrom(1, 0), (b, soft) => {
        const got = tw.run(ragged(b), { params: { alpha: 1, beta: 0, soft_reward: soft } });
        const reward = twGrpoRewards(b, soft);
        const want = dapo.run(toRaggedWith({ ...b, reward }, {}), {
          params: { eps_low: 0.2, eps_high: 0.28, adv_eps: 1e-4, clip_c: 1e12 },
        });
        expectSameLossAndGrad(got, want);
      }),
      { numRuns: 200 },
    );
  });

  it('a divergence constant within each group gives weight 1 everywhere (= alpha 1)', () => {
    const constDiv = withGroupPositionFeature(
      withSeqFeatures(arbBatch(), { acc_frac: accFrac, format_reward: fc.constantFrom(0, 1) }),
      'g',
      fc.constant(0),
    ).chain((b) =>
      fc.array(uniformDouble(0, 5), { minLength: b.numGroups, maxLength: b.numGroups }).map((perGroup) => {
        const group_div: number[] = [];
        for (let s = 0; s + 1 < b.offsets.length; s++)
          for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) group_div.push(perGroup[b.groupOf[s]!]!);
        return { ...b, group_div } as TwGrpoBatch;
      }),
    );
    fc.assert(
      fc.property(constDiv, fc.constantFrom(1.7, 3), fc.constantFrom(0, 0.04), (b, alpha, beta) => {
        const got = tw.run(ragged(b), { params: { alpha, beta } });
        expect(got.metrics.weight_mean === 1 || seqLengths(b).every((l) => l === 0)).toBe(true);
        expectSameLossAndGrad(got, tw.run(ragged(b), { params: { alpha: 1, beta } }));
      }),
      { numRuns: 150 },
    );
  });

  it('single-choice answers (acc_frac in {0, 1}): the soft reward equals the binary accuracy', () => {
    fc.assert(
      fc.property(arbTwBatch({}, fc.constantFrom(0, 1)), (b) => {
        expectSameLossAndGrad(
          tw.run(ragged(b), { params: { soft_reward: 1 } }),
          tw.run(ragged(b), { params: { soft_reward: 0 } }),
        );
      }),
      { numRuns: 100 },
    );
    // and with a partial answer they differ
    const b: TwGrpoBatch = {
      offsets: [0, 1, 2],
      groupOf: [0, 0],
      numGroups: 1,
      mask: [1, 1],
      logp: [-1, -2],
      old_logp: [-1, -2],
      ref_logp: [-1, -2],
      reward: [0, 0],
      acc_frac: [0.5, 0],
      format_reward: [1, 1],
      group_div: [0, 1],
    };
    expect(tw.run(ragged(b), { params: { soft_reward: 1 } }).grads.logp.data[0]).toBeLessThan(0);
    expect(Math.abs(tw.run(ragged(b), { params: { soft_reward: 0 } }).grads.logp.data[0]!)).toBe(0);
  });

  it('on-policy with beta = 0: weighted REINFORCE, gradient -A w / N at every valid token', () => {
    fc.assert(
      fc.property(arbTwBatch({ onPolicy: true }), fc.constantFrom(1.7, 1.4), (b, alpha) => {
        const got = tw.run(ragged(b), { params: { alpha } }).grads.logp.data;
        const A = groupAdvantages(b, twGrpoRewards(b, 1), 1e-4);
        const w = twGrpoWeights(b, alpha, 1e-8);
        const N = seqLengths(b).reduce((x, y) => x + y, 0);
        for (let s = 0; s + 1 < b.offsets.length; s++) {
          for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
            const want = b.mask[t] === 1 ? (-A[s]! * w[t]!) / N : 0;
            expect(close(got[t]!, want), `grad[${t}] ${got[t]} vs ${want}`).toBe(true);
          }
        }
      }),
      { numRuns: 100 },
    );
  });
});

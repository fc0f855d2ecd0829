/**
 * stdlib/mdpo.credo (MDPO) against tests/reference/mdpo.ts on random trajectory batches (S steps
 * per response, a random subset kept as MDPO's step selection) and generic random batches, its
 * gradient against finite differences, and the special cases: adv-v4 from a per-step reward
 * matrix, z-scored per step, with the constant +1 cancelling (methods-dpo.md §19 item 9); the
 * std division (§19 item 10: scale-invariant, unlike d1); the sum over steps.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { offsetsFromLengths, type HostTensor, type RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { arbDiffusion } from '../reference/arb-diffusion.js';
import { mdpoRef } from '../reference/mdpo.js';
import { viewsByStep } from '../reference/cj_grpo.js';
import { values } from '../reference/family.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const mdpo = compile('mdpo');
const params = fc.record({
  eps: fc.constantFrom(0.2, 0.5),
  beta: fc.constantFrom(0.02, 0, 0.04),
  max_len: fc.constantFrom(512, 8),
  adv_eps: fc.constantFrom(1e-4, 0.1),
  adv_offset: fc.constantFrom(1, 0, -3),
  step_mean: fc.constantFrom(0, 1),
});
const traj = arbDiffusion(mdpo.inputs, { views: 'trajectory' });

function withTensor(b: RaggedBatch, name: string, data: ArrayLike<number>): RaggedBatch {
  const tensors = new Map(b.tensors);
  tensors.set(name, { ...b.tensors.get(name)!, data: Float64Array.from(data) });
  return { ...b, tensors };
}

/**
 * adv-v4 as the code writes it, on a reward matrix R[g][k] (G responses × S steps): v3 =
 * [r_0, r_1 − r_0, …] + 1, plus the flipped cumulative mean of r_{k+1 …} (r_{S−1} at the last step);
 * then (A − mean_g) / (std_g + 1e-4) per step, std unbiased.
 */
function advV4(R: number[][]): number[][] {
  const S = R[0]!.length;
  const raw = R.map((r) =>
    r.map((x, k) => {
      const v3 = (k === 0 ? x : x - r[k - 1]!) + 1;
      const fut = k < S - 1 ? r.slice(k + 1).reduce((a, y) => a + y, 0) / (S - 1 - k) : r[S - 1]!;
      return v3 + fut;
    }),
  );
  return raw.map((row) =>
    row.map((x, k) => {
      const col = raw.map((rr) => rr[k]!);
      const m = col.reduce((a, y) => a + y, 0) / col.length;
      const sd = Math.sqrt(col.reduce((a, y) => a + (y - m) ** 2, 0) / Math.max(col.length - 1, 1));
      return (x - m) / (sd + 1e-4);
    }),
  );
}

/** One group: G responses × S steps, one view per (response, step) with 2 tokens, from the reward matrix. */
function batchFromMatrix(R: number[][]): RaggedBatch {
  const G = R.length;
  const S = R[0]!.length;
  const seq: Record<string, number[]> = { step_reward: [], prev_reward: [], future_reward: [], t: [] };
  for (const r of R)
    for (let k = 0; k < S; k++) {
      seq.step_reward!.push(r[k]!);
      seq.prev_reward!.push(k > 0 ? r[k - 1]! : 0);
      seq.future_reward!.push(k < S - 1 ? r.slice(k + 1).reduce((a, y) => a + y, 0) / (S - 1 - k) : r[S - 1]!);
      seq.t!.push(1 - k / S);
    }
  const n = G * S;
  const tensors = new Map<string, HostTensor>();
  for (const [name, data] of Object.entries(seq))
    tensors.set(name, { level: 'seq', dtype: 'f32', data: Float64Array.from(data) });
  const tok = (f: (i: number) => number) => ({
    level: 'token' as const,
    dtype: 'f32' as const,
    data: Float64Array.from({ length: 2 * n }, (_, i) => f(i)),
  });
  tensors.set(
    'logp',
    tok((i) => -1 - 0.1 * (i % 7)),
  );
  tensors.set(
    'old_logp',
    tok((i) => -1 - 0.1 * (i % 7)),
  );
  tensors.set(
    'ref_logp',
    tok((i) => -1.2 - 0.05 * (i % 5)),
  );
  tensors.set(
    'conf',
    tok((i) => 0.3 + 0.1 * (i % 5)),
  );
  return {
    numTokens: 2 * n,
    numSeqs: n,
    numGroups: 1,
    vocabSize: 0,
    offsets: offsetsFromLengths(new Array<number>(n).fill(2)),
    groupOf: new Int32Array(n),
    groupIds: [0],
    mask: new Uint8Array(2 * n).fill(1),
    tensors,
    layout: { kind: 'packed' },
  };
}

const matrix = fc.record({ G: fc.integer({ min: 2, max: 5 }), S: fc.integer({ min: 1, max: 6 }) }).chain(({ G, S }) =>
  fc.array(
    fc.array(fc.oneof(fc.constantFrom(0, 1), fc.double({ min: -1, max: 1, noNaN: true })), {
      minLength: S,
      maxLength: S,
    }),
    {
      minLength: G,
      maxLength: G,
    },
  ),
);

describe('mdpo equals its reference', () => {
  itAgreesWithFamilyRef(mdpo, mdpoRef, params, { batches: traj, what: '(trajectories, steps kept at random)' });
  itAgreesWithFamilyRef(mdpo, mdpoRef, params, { numRuns: 100, what: '(generic random batches)' });
  // finite differences of e^20-sized ratios lose all precision: log-ratios up to ±5 there
  itHasFdGradients(mdpo, mdpoRef, params, {
    batches: arbDiffusion(mdpo.inputs, { views: 'trajectory', extreme: false }),
  });
});

describe('mdpo special cases', () => {
  it('adv-v4 of a per-step reward matrix, z-scored per step across the group (§19 item 9)', () => {
    fc.assert(
      fc.property(matrix, (R) => {
        const want = advV4(R).flat();
        expectVecClose(mdpo.run(batchFromMatrix(R)).exports.adv!.data, want, 'adv', 1e-7);
      }),
      { numRuns: 150 },
    );
  });

  it('the constant +1 of adv-v4 cancels: any adv_offset gives the same loss and gradient (§19 item 9)', () => {
    fc.assert(
      fc.property(traj, fc.constantFrom(0, -1, 7), (b, off) => {
        const a = mdpo.run(b);
        const o = mdpo.run(b, { params: { adv_offset: off } });
        expect(close(o.loss, a.loss, 1e-8)).toBe(true);
        expectVecClose(o.grads.logp!.data, a.grads.logp!.data, 'grad logp', 1e-8);
      }),
      { numRuns: 100 },
    );
  });

  it('the advantage is std-normalised: scaling every reward by c > 0 leaves it (nearly) unchanged (§19 item 10)', () => {
    fc.assert(
      fc.property(traj, fc.constantFrom(3, 10), (b, c) => {
        const scaled = ['step_reward', 'prev_reward', 'future_reward'].reduce(
          (x, name) =>
            withTensor(
              x,
              name,
              values(b, name).map((r) => c * r),
            ),
          b,
        );
        const p = { adv_offset: 0, adv_eps: 1e-12 };
        const a = mdpo.run(b, { params: p }).exports.adv!.data;
        const a2 = mdpo.run(scaled, { params: p }).exports.adv!.data;
        expectVecClose(a2, a, 'adv', 1e-6);
      }),
      { numRuns: 100 },
    );
  });

  it('the steps add up (step_mean = 0), or are averaged (step_mean = 1)', () => {
    fc.assert(
      fc.property(traj, (b) => {
        const sum = mdpo.run(b).loss;
        const mean = mdpo.run(b, { params: { step_mean: 1 } }).loss;
        expect(close(mean * viewsByStep(b).length, sum)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

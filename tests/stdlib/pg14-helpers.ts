/**
 * Shared helpers of the tests of balanced_agg, dhpo, ctpo and holder_po (methods-pg.md §1–§4):
 * comparison with the tolerance of the reference-agreement tests, extra per-token inputs, and
 * batch arbitraries with an entropy tensor or with controlled lengths.
 */
import fc from 'fast-check';
import type { EvalResult } from '../../compiler/interp/eval.js';
import type { RefBatch, RefResult } from '../reference/batch.js';
import { arbRefBatch, uniformDouble, type ArbRefBatchOptions } from '../reference/arbitrary.js';
import { expectAgreesWithRef, expectVecClose } from '../helpers/expect.js';
export { close, expectSameLossAndGrad } from '../helpers/expect.js';
export { withTensors } from '../helpers/batches.js';

/** Loss, every metric of the reference (and no other) and the gradient w.r.t. logp agree. */
export function expectAgree(got: EvalResult, want: RefResult, tol = 1e-9): void {
  expectAgreesWithRef(got, want, { tol });
}

/** Two gradients (or any two token vectors) agree elementwise. */
export function expectGradClose(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-9, what = 'grad'): void {
  expectVecClose(got, want, what, tol);
}

/** A random batch plus a per-token entropy in [0, 3] (sometimes exactly 0, so zero-entropy guards run). */
export function arbEntropyBatch(opts: ArbRefBatchOptions = {}): fc.Arbitrary<{ b: RefBatch; entropy: number[] }> {
  return arbRefBatch(opts).chain((b) => {
    const T = b.offsets[b.offsets.length - 1]!;
    const h = fc.oneof({ arbitrary: uniformDouble(0, 3), weight: 5 }, { arbitrary: fc.constant(0), weight: 1 });
    return fc.array(h, { minLength: T, maxLength: T }).map((entropy) => ({ b, entropy }));
  });
}

/**
 * A batch whose every group has `groupSize` responses and every token is valid; the length of a
 * response is chosen by `lengthOf(reward, group, lens)` (rewards in {0, 1}; `lens` are random
 * integers in 1..6, 2·maxGroups of them), so lengths can be made equal everywhere or equal within
 * the positive and within the negative responses of a group.
 */
export function arbShapedBatch(
  groupSize: number,
  lengthOf: (reward: number, g: number, lens: readonly number[]) => number,
  maxGroups = 5,
): fc.Arbitrary<RefBatch> {
  return fc
    .record({
      lens: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 2 * maxGroups, maxLength: 2 * maxGroups }),
      groups: fc.array(fc.array(fc.constantFrom(0, 1), { minLength: groupSize, maxLength: groupSize }), {
        minLength: 1,
        maxLength: maxGroups,
      }),
      noise: fc.array(fc.oneof(uniformDouble(-0.15, 0.15), fc.constant(0), uniformDouble(-2, 2)), {
        minLength: 64,
        maxLength: 64,
      }),
      logp: fc.array(uniformDouble(-5, 0), { minLength: 64, maxLength: 64 }),
    })
    .map(({ lens, groups, noise, logp }) => {
      const b: RefBatch = {
        offsets: [0],
        groupOf: [],
        numGroups: groups.length,
        mask: [],
        logp: [],
        old_logp: [],
        ref_logp: [],
        reward: [],
      };
      let k = 0;
      groups.forEach((rewards, g) =>
        rewards.forEach((r) => {
          const n = lengthOf(r, g, lens);
          for (let t = 0; t < n; t++, k++) {
            const lp = logp[k % 64]!;
            b.logp.push(lp);
            b.old_logp.push(lp + noise[(k * 7) % 64]!);
            b.ref_logp.push(lp);
            b.mask.push(1);
          }
          b.offsets.push(b.offsets[b.offsets.length - 1]! + n);
          b.groupOf.push(g);
          b.reward.push(r);
        }),
      );
      return b;
    });
}

/** GRPO group advantage per response for tests that need it (unbiased std, eps 1e-6). */
export { groupAdvantages } from '../reference/batch.js';

/**
 * Shared helpers of the agreement tests of the credit-assignment / scheduling objectives
 * (delta, temporal_sched, attn_entropy, tlts, rmt, poad, flowtracer, tempo; methods-pg.md §9, §11–§17):
 * the comparison with the tolerance of the reference-agreement tests, RaggedBatch conversion with extra
 * per-token / per-sequence inputs, arbitraries that add such inputs to random batches, and a
 * finite-difference check for gradients w.r.t. inputs other than logp.
 */
import fc from 'fast-check';
export { toRaggedWith } from '../helpers/batches.js';
import { expectAgreesWithRef, type RunResult } from '../helpers/expect.js';
export { close, expectSameLossAndGrad, expectVecClose, type RunResult } from '../helpers/expect.js';
export { withSeqFeatures, withTokenFeatures } from '../helpers/features.js';
import { uniformDouble } from '../reference/arbitrary.js';
import { numSeqs, type RefBatch, type RefResult } from '../reference/batch.js';
import { withBranchTrace } from '../reference/ops.js';

/**
 * Credo's result equals the reference: loss, every metric (same set of names), the gradient w.r.t.
 * logp and, where given, the gradients w.r.t. other grad inputs.
 */
export function expectAgrees(
  got: RunResult,
  want: RefResult,
  otherGrads: Record<string, readonly number[]> = {},
): void {
  expectAgreesWithRef(got, want, { otherGrads });
}

/** Non-negative per-token scores: mostly in (0, 3], sometimes exactly 0, sometimes tied values. */
export function arbScore(): fc.Arbitrary<number> {
  return fc.oneof(
    { arbitrary: uniformDouble(0.001, 3), weight: 10 },
    { arbitrary: fc.constant(0), weight: 1 },
    { arbitrary: fc.constantFrom(0.5, 1.5), weight: 2 },
  );
}

/** Signed per-token values in [-lim, lim], sometimes exactly 0 or tied. */
export function arbSigned(lim = 3): fc.Arbitrary<number> {
  return fc.oneof(
    { arbitrary: uniformDouble(-lim, lim), weight: 10 },
    { arbitrary: fc.constant(0), weight: 1 },
    { arbitrary: fc.constantFrom(-1, 1), weight: 1 },
  );
}

/** The valid token indices of each sequence, in order. */
export function validTokens(b: RefBatch): number[][] {
  const out: number[][] = [];
  for (let s = 0; s < numSeqs(b); s++) {
    const ts: number[] = [];
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) if (b.mask[t] === 1) ts.push(t);
    out.push(ts);
  }
  return out;
}

/**
 * Central finite differences of `loss(x)` w.r.t. each entry of a vector x (an input other than logp),
 * compared with the analytic gradient; components with a kink (branch pattern of the references'
 * minG / maxG / clipG changes within 10h) are skipped. Returns the failing components.
 */
export function fdCheckVector(
  x: readonly number[],
  loss: (x: number[]) => number,
  grad: readonly number[],
  h = 1e-6,
): { index: number; analytic: number; fd: number }[] {
  const failures: { index: number; analytic: number; fd: number }[] = [];
  const at = (j: number, v: number) => {
    const y = x.slice();
    y[j] = v;
    return withBranchTrace(() => loss(y));
  };
  const base = withBranchTrace(() => loss(x.slice())).branches.join(',');
  for (let j = 0; j < x.length; j++) {
    const runs = [at(j, x[j]! + h), at(j, x[j]! - h), at(j, x[j]! + 10 * h), at(j, x[j]! - 10 * h)];
    if (runs.some((r) => r.branches.join(',') !== base)) continue;
    const fd = (runs[0]!.value - runs[1]!.value) / (2 * h);
    if (!(Math.abs(grad[j]! - fd) <= 1e-6 + 1e-5 * Math.abs(fd))) failures.push({ index: j, analytic: grad[j]!, fd });
  }
  return failures;
}

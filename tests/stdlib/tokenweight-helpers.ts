/**
 * Helpers for the agreement tests of the token-weighting / token-selection objectives
 * (tw_grpo, hapo, spine, thr, d3s): random extra inputs on top of arbRefBatch (per-token entropy,
 * per-position group divergence, THR, per-sequence features), RaggedBatch conversion with those
 * extra tensors, and the loss / metric / gradient comparison.
 */
import fc from 'fast-check';
export { toRaggedWith } from '../helpers/batches.js';
import { expectAgreesWithRef, type RunResult } from '../helpers/expect.js';
export { close, expectSameLossAndGrad, type RunResult } from '../helpers/expect.js';
export { withSeqFeatures, withTokenFeatures } from '../helpers/features.js';
import { arbRefBatch, uniformDouble, type ArbRefBatchOptions } from '../reference/arbitrary.js';
import { numSeqs, type RefBatch, type RefResult } from '../reference/batch.js';

/** Token entropies: mostly in (0, 3], sometimes exactly 0 or below the 1e-8 floor, sometimes tied. */
export function arbEntropyValue(): fc.Arbitrary<number> {
  return fc.oneof(
    { arbitrary: uniformDouble(0.001, 3), weight: 12 },
    { arbitrary: fc.constant(0), weight: 1 },
    { arbitrary: uniformDouble(0, 1e-9), weight: 1 },
    { arbitrary: fc.constantFrom(0.5, 1.5), weight: 2 },
  );
}

/**
 * A token feature that is the same for every sequence of a group at the same position (slot index
 * inside the sequence), as TW-GRPO's per-position group divergence: one random vector per group.
 */
export function withGroupPositionFeature<B extends RefBatch, K extends string>(
  batches: fc.Arbitrary<B>,
  name: K,
  value: fc.Arbitrary<number>,
): fc.Arbitrary<B & Record<K, number[]>> {
  return batches.chain((b) => {
    let maxLen = 0;
    for (let s = 0; s < numSeqs(b); s++) maxLen = Math.max(maxLen, b.offsets[s + 1]! - b.offsets[s]!);
    const perGroup = fc.array(fc.array(value, { minLength: maxLen, maxLength: maxLen }), {
      minLength: b.numGroups,
      maxLength: b.numGroups,
    });
    return perGroup.map((vs) => {
      const data: number[] = [];
      for (let s = 0; s < numSeqs(b); s++) {
        for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) data.push(vs[b.groupOf[s]!]![t - b.offsets[s]!]!);
      }
      return { ...b, [name]: data } as B & Record<K, number[]>;
    });
  });
}

/** A random ragged grouped batch (arbRefBatch) with the given options. */
export function arbBatch(opts: ArbRefBatchOptions = {}): fc.Arbitrary<RefBatch> {
  return arbRefBatch(opts);
}

/**
 * Credo's result equals the reference: loss, every metric (same set of names), the gradient w.r.t.
 * logp and, where given, the gradients w.r.t. other grad inputs (name → expected per-token values).
 */
export function expectAgrees(got: RunResult, want: RefResult, otherGrads: Record<string, number[]> = {}): void {
  expectAgreesWithRef(got, want, { otherGrads });
}

/**
 * Test helpers of the verl policy-loss objectives (helper A, issue 13): finite differences of a
 * reference's loss with its stop-gradient quantities frozen at the base batch (the references take
 * an `sg` batch), since FD of a loss with sg(·) terms is not its gradient.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import type { Objective } from '../../src/objective.js';
import { arbFor, fdFailures } from './family-helpers.js';
import type { FamilyResult } from '../reference/family.js';

export function itHasFrozenFdGradients<P>(
  objective: Objective,
  ref: (b: RaggedBatch, p: P, sg: RaggedBatch) => FamilyResult,
  params: fc.Arbitrary<P>,
  numRuns = 60,
): void {
  it("the reference's hand-derived gradients equal finite differences of its loss (sg terms frozen)", () => {
    let checked = 0;
    fc.assert(
      fc.property(arbFor(objective).map(moderate), params, (b, p) => {
        const r = fdFailures((x) => ref(x, p, b), b);
        checked += r.checked;
        expect(r.failures).toEqual([]);
      }),
      { numRuns },
    );
    expect(checked).toBeGreaterThan(0);
  });
}

/**
 * The batch with old_logp / ref_logp moved to within 3 of logp: a log-ratio of ±50 (or 10) makes losses of
 * order e^20 (e^10), whose rounding (1e-16 · e^20 / h) swamps central differences of the small terms.
 */
export function moderate(b: RaggedBatch): RaggedBatch {
  const lp = b.tensors.get('logp')!.data;
  let out = b;
  for (const name of ['old_logp', 'ref_logp']) {
    const t = b.tensors.get(name);
    if (t)
      out = withTensor(
        out,
        name,
        Array.from(t.data, (x, i) => Math.min(Math.max(x, lp[i]! - 3), lp[i]! + 3)),
      );
  }
  return out;
}

/** The batch with tensor `name` replaced (same level and dtype). */
export function withTensor(b: RaggedBatch, name: string, data: ArrayLike<number>): RaggedBatch {
  const t = b.tensors.get(name)!;
  const tensors = new Map(b.tensors);
  tensors.set(name, { ...t, data: Float64Array.from(data) });
  return { ...b, tensors };
}

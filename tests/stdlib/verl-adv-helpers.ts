/**
 * Test helpers of the verl advantage-estimator objectives (tests/stdlib/verl_*.test.ts).
 */
import fc from 'fast-check';
import type { RaggedBatch } from '../../core/batch/batch.js';
import type { Objective } from '../../src/objective.js';
import { arbFor } from './family-helpers.js';

/** The batch with tensor `name` replaced. */
export function withTensor(b: RaggedBatch, name: string, data: ArrayLike<number>): RaggedBatch {
  const tensors = new Map(b.tensors);
  tensors.set(name, { ...b.tensors.get(name)!, data: Float64Array.from(data) });
  return { ...b, tensors };
}

/**
 * For finite differences: log-ratios moved within ±5 (a ratio near e^20 makes the loss ~1e8, where a
 * central difference with h = 1e-6 only resolves ~1e-2; e^10 with token-sum still ~1e-6).
 */
export function fdBatches(obj: Objective): fc.Arbitrary<RaggedBatch> {
  return arbFor(obj).map((b) => {
    const lp = b.tensors.get('logp')!.data;
    const old = b.tensors.get('old_logp')!.data;
    return withTensor(
      b,
      'old_logp',
      Array.from(old, (o, t) => lp[t]! - Math.max(-5, Math.min(5, lp[t]! - o))),
    );
  });
}

/** The batch with old_logp = logp (on-policy). */
export function onPolicy(b: RaggedBatch): RaggedBatch {
  return withTensor(b, 'old_logp', b.tensors.get('logp')!.data);
}

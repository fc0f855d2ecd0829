/** fast-check arbitraries that add random per-token or per-sequence features to a RefBatch. */
import fc from 'fast-check';
import { numSeqs, numTokens, type RefBatch } from '../reference/batch.js';

/** A batch with one value per token for each named feature. */
export function withTokenFeatures<B extends RefBatch, K extends string>(
  batches: fc.Arbitrary<B>,
  features: Record<K, fc.Arbitrary<number>>,
): fc.Arbitrary<B & Record<K, number[]>> {
  return batches.chain((b) => {
    const T = numTokens(b);
    const rec = {} as Record<K, fc.Arbitrary<number[]>>;
    for (const k of Object.keys(features) as K[]) rec[k] = fc.array(features[k], { minLength: T, maxLength: T });
    return fc.record(rec).map((xs) => ({ ...b, ...xs }) as B & Record<K, number[]>);
  });
}

/** A batch with one value per sequence for each named feature. */
export function withSeqFeatures<B extends RefBatch, K extends string>(
  batches: fc.Arbitrary<B>,
  features: Record<K, fc.Arbitrary<number>>,
): fc.Arbitrary<B & Record<K, number[]>> {
  return batches.chain((b) => {
    const S = numSeqs(b);
    const rec = {} as Record<K, fc.Arbitrary<number[]>>;
    for (const k of Object.keys(features) as K[]) rec[k] = fc.array(features[k], { minLength: S, maxLength: S });
    return fc.record(rec).map((xs) => ({ ...b, ...xs }) as B & Record<K, number[]>);
  });
}

/**
 * Writes a run's results as a safetensors file in the layout the batch was read from
 * (runtime/batch/load.ts reads it): the loss, the metrics and each gradient.
 */
import { BatchError, countAt, type RaggedBatch } from '../../core/batch/batch.js';
import type { Level } from '../../core/types/types.js';
import { formatShape, writeSafetensors, type TensorToWrite } from './safetensors.js';

/** A run's results, as {@link writeOutputs} writes them. */
export interface BatchOutputs {
  readonly loss: number;
  readonly metrics: Readonly<Record<string, number>>;
  /** Gradient per input name, at the input's level, packed like the batch (token: [T]; vocab: [T × V]). */
  readonly grads: Readonly<Record<string, { readonly level: Exclude<Level, 'batch'>; readonly data: Float64Array }>>;
}

/**
 * Serializes a run's results: `loss` (F32, shape []), `metric.NAME` (F32 scalars) and `grad.NAME`
 * (F32) in the input's layout: token grads [S, L] with 0 at padding when the batch was padded,
 * [T] when packed; `token x vocab` grads [S, L, V] (0 in padding rows) or [T, V]; seq grads [S];
 * group grads [G].
 * @throws BatchError naming `grad.NAME` when a gradient has the wrong length for its level.
 */
export function writeOutputs(batch: RaggedBatch, out: BatchOutputs): Uint8Array {
  const tensors: TensorToWrite[] = [{ name: 'loss', dtype: 'F32', shape: [], data: [out.loss] }];
  for (const [name, value] of Object.entries(out.metrics)) {
    tensors.push({ name: `metric.${name}`, dtype: 'F32', shape: [], data: [value] });
  }
  for (const [name, grad] of Object.entries(out.grads)) tensors.push(gradTensor(batch, `grad.${name}`, grad));
  return writeSafetensors(tensors);
}

function gradTensor(
  batch: RaggedBatch,
  name: string,
  grad: { readonly level: Exclude<Level, 'batch'>; readonly data: Float64Array },
): TensorToWrite {
  const count = countAt(batch, grad.level);
  if (grad.data.length !== count) {
    const detail =
      grad.level === 'vocab'
        ? `a token x vocab gradient ([T, V] = ${formatShape([batch.numTokens, batch.vocabSize])})`
        : `a ${grad.level}-level gradient`;
    throw new BatchError(name, `has ${grad.data.length} values; expected ${count} for ${detail}`);
  }
  if (grad.level === 'vocab') {
    const V = batch.vocabSize;
    if (batch.layout.kind === 'padded') {
      const shape = [batch.numSeqs, batch.layout.maxLen, V];
      return { name, dtype: 'F32', shape, data: scatterRows(batch, grad.data, V) };
    }
    return { name, dtype: 'F32', shape: [batch.numTokens, V], data: grad.data };
  }
  if (grad.level === 'token' && batch.layout.kind === 'padded') {
    return { name, dtype: 'F32', shape: [batch.numSeqs, batch.layout.maxLen], data: scatterRows(batch, grad.data, 1) };
  }
  return { name, dtype: 'F32', shape: [count], data: grad.data };
}

/** Packed token rows of `rowSize` values → padded [S, L, rowSize] rows, 0 at padding. */
function scatterRows(batch: RaggedBatch, packed: Float64Array, rowSize: number): Float64Array {
  if (batch.layout.kind !== 'padded') return packed;
  const width = batch.layout.maxLen;
  const out = new Float64Array(batch.numSeqs * width * rowSize);
  for (let s = 0; s < batch.numSeqs; s++) {
    const begin = batch.offsets[s] * rowSize;
    out.set(packed.subarray(begin, batch.offsets[s + 1] * rowSize), s * width * rowSize);
  }
  return out;
}

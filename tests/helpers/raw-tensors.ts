/** Test helpers for batch files: raw tensors as the safetensors reader gives them, and the one-line BatchError check. */
import { expect } from 'vitest';
import { BatchError } from '../../core/batch/batch.js';
import type { RawTensor } from '../../runtime/batch/safetensors.js';

export function raw(dtype: string, shape: number[], data: ArrayLike<number>): RawTensor {
  return { dtype, shape, data: Float64Array.from(data) };
}

export function file(entries: Record<string, RawTensor>): Map<string, RawTensor> {
  return new Map(Object.entries(entries));
}

/** The file with some tensors replaced, added or (null) removed. */
export function with_(base: Map<string, RawTensor>, changes: Record<string, RawTensor | null>): Map<string, RawTensor> {
  const out = new Map(base);
  for (const [name, t] of Object.entries(changes)) {
    if (t === null) out.delete(name);
    else out.set(name, t);
  }
  return out;
}

/** Asserts that `fn` throws a one-line BatchError for `tensor`, prefixed with its name, whose message matches `pattern`. */
export function expectBatchError(fn: () => unknown, tensor: string, pattern?: RegExp): BatchError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(BatchError);
  const err = caught as BatchError;
  expect(err.tensor).toBe(tensor);
  expect(err.message.startsWith(`${tensor}: `)).toBe(true);
  expect(err.message).not.toContain('\n');
  if (pattern) expect(err.message).toMatch(pattern);
  return err;
}

/**
 * Comparisons shared by the stdlib tests: an interpreter run against a hand-written reference
 * result, or against another run. Both sides are float64, so the tolerance is 1e-9 relative
 * (|a - b| ≤ tol · (1 + |b|)) unless a test asks for another.
 */
import { expect } from 'vitest';
import type { RefResult } from '../reference/batch.js';

/** What a run is compared on (an EvalResult, or any result with these fields). */
export interface RunResult {
  loss: number;
  metrics: Record<string, number>;
  grads: Record<string, { data: ArrayLike<number> }>;
}

/** |a - b| ≤ tol · (1 + |b|). */
export function close(a: number, b: number, tol = 1e-9): boolean {
  return Math.abs(a - b) <= tol * (1 + Math.abs(b));
}

/** Two vectors agree elementwise (and in length). */
export function expectVecClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, tol = 1e-9): void {
  expect(got.length, `${what} length`).toBe(want.length);
  for (let t = 0; t < want.length; t++)
    expect(close(got[t]!, want[t]!, tol), `${what}[${t}] ${got[t]} vs ${want[t]}`).toBe(true);
}

/**
 * A run equals the reference: loss, every metric (the same set of names), the gradient w.r.t. logp
 * and, where given, the gradients w.r.t. other grad inputs (name → expected per-token values).
 */
export function expectAgreesWithRef(
  got: RunResult,
  want: RefResult,
  opts: { tol?: number; otherGrads?: Record<string, readonly number[]> } = {},
): void {
  const tol = opts.tol ?? 1e-9;
  expect(close(got.loss, want.loss, tol), `loss ${got.loss} vs ${want.loss}`).toBe(true);
  expect(Object.keys(got.metrics).sort()).toEqual(Object.keys(want.metrics).sort());
  for (const [k, v] of Object.entries(want.metrics))
    expect(close(got.metrics[k]!, v, tol), `metric ${k}: ${got.metrics[k]} vs ${v}`).toBe(true);
  expectVecClose(got.grads.logp!.data, want.grad_logp, 'grad logp', tol);
  for (const [name, exp] of Object.entries(opts.otherGrads ?? {}))
    expectVecClose(got.grads[name]!.data, exp, `grad ${name}`, tol);
}

/** Two runs agree in loss, the named metrics and the gradient w.r.t. logp (special cases that reduce to another objective). */
export function expectSameLossAndGrad(
  got: RunResult,
  want: RunResult,
  tol = 1e-9,
  metrics: readonly string[] = [],
): void {
  expect(close(got.loss, want.loss, tol), `loss ${got.loss} vs ${want.loss}`).toBe(true);
  for (const k of metrics)
    expect(close(got.metrics[k]!, want.metrics[k]!, tol), `metric ${k}: ${got.metrics[k]} vs ${want.metrics[k]}`).toBe(
      true,
    );
  expectVecClose(got.grads.logp!.data, want.grads.logp!.data, 'grad logp', tol);
}

/**
 * Shared helpers of the baseline objective tests (ppo, dr_grpo, gmpo, cispo, gpg, rloo, reinforce_pp):
 * comparing an interpreter run with a reference result, adding extra inputs to a batch, and the
 * REINFORCE check used by the on-policy special cases.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import type { EvalResult } from '../../compiler/interp/eval.js';
import type { HostTensor, RaggedBatch } from '../../runtime/batch/batch.js';
import type { RefBatch, RefResult } from '../reference/batch.js';
import { uniformDouble } from '../reference/arbitrary.js';
import { checkGradFD } from '../reference/fd.js';

/** |a - b| <= tol (1 + |b|). */
export const close = (a: number, b: number, tol = 1e-9): boolean => Math.abs(a - b) <= tol * (1 + Math.abs(b));

/** A copy of a batch with one more (or a replaced) f32 tensor. */
export function withInput(b: RaggedBatch, name: string, level: HostTensor['level'], data: readonly number[]): RaggedBatch {
  const tensors = new Map(b.tensors);
  tensors.set(name, { level, dtype: 'f32', data: Float64Array.from(data) });
  return { ...b, tensors };
}

/** Asserts loss, metrics (same names) and gradient w.r.t. logp of a run equal a reference result. */
export function expectRef(got: EvalResult, want: RefResult, tol = 1e-9): void {
  expect(close(got.loss, want.loss, tol), `loss ${got.loss} vs ${want.loss}`).toBe(true);
  expect(Object.keys(got.metrics).sort()).toEqual(Object.keys(want.metrics).sort());
  for (const [k, v] of Object.entries(want.metrics)) expect(close(got.metrics[k]!, v, tol), `metric ${k}: ${got.metrics[k]} vs ${v}`).toBe(true);
  const g = got.grads.logp!.data;
  expect(g.length).toBe(want.grad_logp.length);
  want.grad_logp.forEach((v, t) => expect(close(g[t]!, v, tol), `grad[${t}] ${g[t]} vs ${v}`).toBe(true));
}

/** Asserts a per-sequence export equals the reference values. */
export function expectExport(got: EvalResult, name: string, want: readonly number[], tol = 1e-9): void {
  const e = got.exports[name];
  expect(e, `export ${name}`).toBeDefined();
  expect(e!.data.length).toBe(want.length);
  want.forEach((v, i) => expect(close(e!.data[i]!, v, tol), `${name}[${i}] ${e!.data[i]} vs ${v}`).toBe(true));
}

/** Asserts two runs agree on loss, the named metrics and the gradient w.r.t. logp. */
export function expectSameRun(got: EvalResult, want: EvalResult, metrics: readonly string[] = [], tol = 1e-9): void {
  expect(close(got.loss, want.loss, tol), `loss ${got.loss} vs ${want.loss}`).toBe(true);
  for (const k of metrics) expect(close(got.metrics[k]!, want.metrics[k]!, tol), `metric ${k}: ${got.metrics[k]} vs ${want.metrics[k]}`).toBe(true);
  const a = got.grads.logp!.data;
  const b = want.grads.logp!.data;
  expect(a.length).toBe(b.length);
  for (let t = 0; t < b.length; t++) expect(close(a[t]!, b[t]!, tol), `grad[${t}] ${a[t]} vs ${b[t]}`).toBe(true);
}

/** Asserts the gradient w.r.t. logp is the REINFORCE gradient -A_t w_t (0 at masked tokens). */
export function expectReinforceGrad(got: EvalResult, b: RefBatch, advToken: readonly number[], weights: readonly number[], tol = 1e-9): void {
  const g = got.grads.logp!.data;
  for (let t = 0; t < b.mask.length; t++) {
    const want = b.mask[t] === 1 ? -advToken[t]! * weights[t]! : 0;
    expect(close(g[t]!, want, tol), `grad[${t}] ${g[t]} vs REINFORCE ${want}`).toBe(true);
  }
}

/** Random token-level advantages for a batch (mostly moderate, sometimes 0 or large). */
export function arbTokenAdvantages(T: number): fc.Arbitrary<number[]> {
  const v = fc.oneof(
    { arbitrary: uniformDouble(-2, 2), weight: 6 },
    { arbitrary: fc.constant(0), weight: 1 },
    { arbitrary: uniformDouble(-50, 50), weight: 1 },
  );
  return fc.array(v, { minLength: T, maxLength: T });
}

/** A batch together with random token advantages of matching length. */
export function arbBatchWithAdvantage(batch: fc.Arbitrary<RefBatch>): fc.Arbitrary<{ b: RefBatch; adv: number[] }> {
  return batch.chain((b) => arbTokenAdvantages(b.mask.length).map((adv) => ({ b, adv })));
}

/**
 * The hand-derived gradient of a reference equals central finite differences of its own loss
 * (tests/reference/fd.ts; components within 10h of a kink are skipped). Asserts no failure, and that
 * the check is not vacuous: enough components checked and few skipped.
 */
export function expectFdAgreement<T>(
  cases: fc.Arbitrary<T>,
  refOf: (x: T) => [RefBatch, (b: RefBatch) => RefResult],
  numRuns = 100,
): void {
  let checked = 0;
  let skipped = 0;
  fc.assert(
    fc.property(cases, (x) => {
      const [b, fn] = refOf(x);
      const rep = checkGradFD(fn, b);
      checked += rep.checked;
      skipped += rep.skipped;
      expect(rep.failures).toEqual([]);
    }),
    { numRuns },
  );
  expect(checked).toBeGreaterThan(200);
  expect(skipped).toBeLessThan(0.05 * (checked + skipped));
}

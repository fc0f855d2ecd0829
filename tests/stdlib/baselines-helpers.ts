/**
 * Shared helpers of the baseline objective tests (ppo, dr_grpo, gmpo, cispo, gpg, rloo, reinforce_pp):
 * comparing an interpreter run with a reference result, adding extra inputs to a batch, and the
 * REINFORCE check used by the on-policy special cases.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import type { Objective } from '../../src/objective.js';
import { toRagged } from '../helpers/batches.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import type { EvalResult } from '../../compiler/interp/eval.js';
import type { HostTensor, RaggedBatch } from '../../core/batch/batch.js';
import type { RefBatch, RefResult } from '../reference/batch.js';
import { uniformDouble } from '../reference/arbitrary.js';
import { checkGradFD } from '../reference/fd.js';
import { withTensors } from '../helpers/batches.js';
import { close, expectAgreesWithRef, expectSameLossAndGrad } from '../helpers/expect.js';

export { close };

/** A copy of a batch with one more (or a replaced) f32 tensor. */
export function withInput(
  b: RaggedBatch,
  name: string,
  level: HostTensor['level'],
  data: readonly number[],
): RaggedBatch {
  return withTensors(b, { [name]: { level, data } });
}

/** Asserts loss, metrics (same names) and gradient w.r.t. logp of a run equal a reference result. */
export function expectRef(got: EvalResult, want: RefResult, tol = 1e-9): void {
  expectAgreesWithRef(got, want, { tol });
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
  expectSameLossAndGrad(got, want, tol, metrics);
}

/** Asserts the gradient w.r.t. logp is the REINFORCE gradient -A_t w_t (0 at masked tokens). */
export function expectReinforceGrad(
  got: EvalResult,
  b: RefBatch,
  advToken: readonly number[],
  weights: readonly number[],
  tol = 1e-9,
): void {
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

/**
 * The two agreement tests of a baseline objective against its reference (300 random ragged batches
 * each): with the default params (loss, metrics, gradient and the `advantage` export) and with
 * random params.
 */
export function itAgreesWithReference<P>(
  objective: Objective,
  ref: (b: RefBatch, p?: P) => RefResult & { advantage: number[] },
  arbParams: fc.Arbitrary<P>,
  randomParamsTitle = 'with random params',
): void {
  it('with the default params', () => {
    fc.assert(
      fc.property(arbRefBatch(), (b) => {
        const got = objective.run(toRagged(b));
        const want = ref(b);
        expectRef(got, want);
        expectExport(got, 'advantage', want.advantage);
      }),
      { numRuns: 300 },
    );
  });

  it(randomParamsTitle, () => {
    fc.assert(
      fc.property(arbRefBatch(), arbParams, (b, p) => {
        expectRef(objective.run(toRagged(b), { params: p as Record<string, number> }), ref(b, p));
      }),
      { numRuns: 300 },
    );
  });
}

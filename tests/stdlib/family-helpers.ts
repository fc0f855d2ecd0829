/**
 * The checks every stdlib-II objective gets (tests/reference/family.ts references):
 *   - agreement with its reference on ≥ 100 random batches its `require`s accept (loss, the same
 *     set of metrics, every gradient the reference gives, exports it gives), tolerance
 *     |a − b| ≤ tol·(1 + |b|), tol = 1e-9 (both float64) unless the test states another;
 *   - the reference's hand-derived gradients against central finite differences of its own loss
 *     (h = 1e-6, |analytic − fd| ≤ 1e-6 + 1e-5·|fd|), components within 10h of a kink (a branch of
 *     minG / maxG / clipG in tests/reference/ops.ts changes) skipped.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { arbBatchFor } from '../../src/equiv/random-batches.js';
import type { Objective } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import type { FamilyResult } from '../reference/family.js';
import { withBranchTrace } from '../reference/ops.js';

export type FamilyRef<P> = (b: RaggedBatch, p: P) => FamilyResult;

/** Random batches the objective accepts (its required group size, filtered by its `require`s). */
export function arbFor(objective: Objective): fc.Arbitrary<RaggedBatch> {
  return arbBatchFor(objective.program, objective.inputs);
}

/** An interpreter run equals the reference result. */
export function expectFamilyAgreement(
  objective: Objective,
  b: RaggedBatch,
  want: FamilyResult,
  params: Record<string, number>,
  tol = 1e-9,
): void {
  const got = objective.run(b, { params });
  expect(close(got.loss, want.loss, tol), `loss ${got.loss} vs ${want.loss}`).toBe(true);
  expect(Object.keys(got.metrics).sort()).toEqual(Object.keys(want.metrics).sort());
  for (const [k, v] of Object.entries(want.metrics))
    expect(close(got.metrics[k]!, v, tol), `metric ${k}: ${got.metrics[k]} vs ${v}`).toBe(true);
  expect(Object.keys(got.grads).sort()).toEqual(Object.keys(want.grads).sort());
  for (const [name, g] of Object.entries(want.grads)) expectVecClose(got.grads[name]!.data, g, `grad ${name}`, tol);
  for (const [name, e] of Object.entries(want.exports ?? {})) {
    expect(got.exports[name], `export ${name}`).toBeDefined();
    expectVecClose(got.exports[name]!.data, e, `export ${name}`, tol);
  }
}

/** `it`: the objective equals its reference on `numRuns` (≥ 100) random batches and params. */
export function itAgreesWithFamilyRef<P extends Record<string, number>>(
  objective: Objective,
  ref: FamilyRef<P>,
  params: fc.Arbitrary<P>,
  opts: { batches?: fc.Arbitrary<RaggedBatch>; numRuns?: number; tol?: number; what?: string } = {},
): void {
  const numRuns = opts.numRuns ?? 150;
  it(`equals its reference on ${numRuns} random batches ${opts.what ?? 'and params'} (tol ${opts.tol ?? 1e-9})`, () => {
    fc.assert(
      fc.property(opts.batches ?? arbFor(objective), params, (b, p) =>
        expectFamilyAgreement(objective, b, ref(b, p), p, opts.tol),
      ),
      { numRuns },
    );
  });
}

/** Central finite differences of the reference's loss w.r.t. every entry of each gradient it gives. */
export function fdFailures(
  ref: (b: RaggedBatch) => FamilyResult,
  b: RaggedBatch,
  opts: { h?: number; atol?: number; rtol?: number; kinkSteps?: number } = {},
): { checked: number; failures: string[] } {
  const h = opts.h ?? 1e-6;
  const atol = opts.atol ?? 1e-6;
  const rtol = opts.rtol ?? 1e-5;
  const kink = opts.kinkSteps ?? 10;
  const base = withBranchTrace(() => ref(b));
  const sig0 = base.branches.join(',');
  const failures: string[] = [];
  let checked = 0;
  for (const [name, grad] of Object.entries(base.value.grads)) {
    const t = b.tensors.get(name)!;
    for (let j = 0; j < t.data.length; j++) {
      const x = t.data[j]!;
      if (!Number.isFinite(x)) continue;
      const at = (v: number) => {
        const data = Float64Array.from(t.data);
        data[j] = v;
        const tensors = new Map(b.tensors);
        tensors.set(name, { ...t, data });
        return withBranchTrace(() => ref({ ...b, tensors }));
      };
      const runs = [at(x + h), at(x - h), at(x + kink * h), at(x - kink * h)];
      if (runs.some((r) => r.branches.join(',') !== sig0)) continue;
      const fd = (runs[0]!.value.loss - runs[1]!.value.loss) / (2 * h);
      checked++;
      if (!(Math.abs(grad[j]! - fd) <= atol + rtol * Math.abs(fd)))
        failures.push(`∂loss/∂${name}[${j}]: analytic ${grad[j]} vs finite difference ${fd}`);
    }
  }
  return { checked, failures };
}

/** `it`: the reference's gradients equal finite differences of its loss on random batches. */
export function itHasFdGradients<P>(
  objective: Objective,
  ref: FamilyRef<P>,
  params: fc.Arbitrary<P>,
  opts: { batches?: fc.Arbitrary<RaggedBatch>; numRuns?: number; h?: number; atol?: number; rtol?: number } = {},
): void {
  it("the reference's hand-derived gradients equal finite differences of its loss", () => {
    let checked = 0;
    fc.assert(
      fc.property(opts.batches ?? arbFor(objective), params, (b, p) => {
        const r = fdFailures((x) => ref(x, p), b, opts);
        checked += r.checked;
        expect(r.failures).toEqual([]);
      }),
      { numRuns: opts.numRuns ?? 60 },
    );
    expect(checked).toBeGreaterThan(0);
  });
}

/**
 * `it`: the exported advantage `adv` is mean-centred only (methods-dpo.md §19 item 10): scaling the
 * rewards by c scales every advantage by c (a std-normalised one would not change).
 */
export function itHasMeanCentredAdvantage(objective: Objective, batches: fc.Arbitrary<RaggedBatch>): void {
  it('the advantage is mean-centred only: scaling the rewards by c scales it by c (§19 item 10)', () => {
    fc.assert(
      fc.property(batches, fc.constantFrom(3, 0.25, -2), (b, c) => {
        const a = objective.run(b).exports.adv!.data;
        const reward = b.tensors.get('reward')!;
        const tensors = new Map(b.tensors);
        tensors.set('reward', { ...reward, data: reward.data.map((r) => c * r) });
        const a2 = objective.run({ ...b, tensors }).exports.adv!.data;
        a.forEach((x, s) => expect(close(a2[s]!, c * x)).toBe(true));
      }),
      { numRuns: 100 },
    );
  });
}

/**
 * The stdlib objectives grpo, dapo and gspo, run by the float64 interpreter, equal the independent
 * hand-written references in tests/reference (loss, metrics, gradient w.r.t. logp) on random
 * ragged grouped batches. Tolerance: |a - b| ≤ 1e-9 · (1 + |b|) (both sides are float64).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { dapoRef } from '../reference/dapo.js';
import { grpoRef } from '../reference/grpo.js';
import { gspoRef } from '../reference/gspo.js';
import type { RefBatch, RefResult } from '../reference/batch.js';
import { toRagged } from '../helpers/batches.js';

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * (1 + Math.abs(b));

type Ref = (b: RefBatch, p?: Record<string, number>) => RefResult;
const cases: [string, Ref, fc.Arbitrary<Record<string, number>>][] = [
  [
    'grpo',
    grpoRef as Ref,
    fc.record({
      eps_low: fc.constantFrom(0.2, 0.1),
      eps_high: fc.constantFrom(0.2, 0.3),
      beta: fc.constantFrom(0.04, 0, 0.5),
    }),
  ],
  [
    'dapo',
    dapoRef as Ref,
    fc.record({
      eps_high: fc.constantFrom(0.28, 0.2),
      clip_c: fc.constantFrom(10, 3, 1.5),
      overlong_buffer: fc.constantFrom(0, 3),
      max_len: fc.constantFrom(20480, 6),
    }),
  ],
  ['gspo', gspoRef as Ref, fc.record({ eps_low: fc.constantFrom(3e-4, 0.2), eps_high: fc.constantFrom(4e-4, 0.3) })],
];

describe.each(cases)('%s equals its reference', (name, ref, params) => {
  const objective = compile(name);
  it('on random batches and params (loss, metrics, gradient)', () => {
    fc.assert(
      fc.property(arbRefBatch(), params, (b, p) => {
        const want = ref(b, p);
        const got = objective.run(toRagged(b), { params: p });
        expect(close(got.loss, want.loss), `loss ${got.loss} vs ${want.loss}`).toBe(true);
        for (const [k, v] of Object.entries(want.metrics))
          expect(close(got.metrics[k], v), `metric ${k}: ${got.metrics[k]} vs ${v}`).toBe(true);
        expect(Object.keys(got.metrics).sort()).toEqual(Object.keys(want.metrics).sort());
        const g = got.grads.logp.data;
        want.grad_logp.forEach((v, t) => expect(close(g[t], v), `grad[${t}] ${g[t]} vs ${v}`).toBe(true));
      }),
      { numRuns: 300 },
    );
  });
});

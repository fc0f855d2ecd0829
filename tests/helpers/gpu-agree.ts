/**
 * GPU results against the float64 interpreter, with the tolerances of tests/gpu: loss |Δ| ≤
 * 1e-4·(|loss| + mean |per-token term|) + 1e-6 (see termScale); gradient max |Δ| ≤ 1e-4·max|g| +
 * 1e-7; metrics |Δ| ≤ 1e-4·(1 + |m|).
 */
import { expect } from 'vitest';
import { evaluateNodes, type EvalOptions, type EvalResult } from '../../compiler/interp/eval.js';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { topoSort } from '../../core/ir/node.js';
import type { Program } from '../../core/ir/program.js';

/**
 * The mean |per-element term| of a loss: for every reduction to the batch in the loss's cone, the
 * mean absolute value of what it reduces over the elements that count (valid tokens), the largest
 * of them. A loss is a (possibly cancelling) mean of such terms, so float32 can only be asked to get
 * it right relative to their size.
 */
export function termScale(program: Program, batch: RaggedBatch, params: EvalOptions): number {
  const reduces = topoSort([program.loss]).filter((n) => n.op === 'reduce' && n.type.level === 'batch');
  if (!reduces.length) return 0;
  const defaults = Object.fromEntries(program.params.map((p) => [p.name, p.default]));
  const values = evaluateNodes(
    reduces.map((r) => r.src[0]),
    batch,
    { ...params, params: { ...defaults, ...params.params } },
  );
  return Math.max(
    0,
    ...reduces.map((r) => {
      const v = values.get(r.src[0].id)!;
      const counts = (i: number) => r.src[0].type.level !== 'token' || batch.mask[i] === 1;
      let sum = 0;
      let n = 0;
      v.forEach((x, i) => {
        if (counts(i) && Number.isFinite(x)) ((sum += Math.abs(x)), n++);
      });
      return n ? sum / n : 0;
    }),
  );
}

/**
 * GPU vs interpreter. Gradients: max |Δ| ≤ 1e-4·max|g| + 1e-7. Loss: |Δ| ≤ 1e-4·(|loss| + mean
 * |per-token term|) + 1e-6 (see termScale). Metrics: |Δ| ≤ 1e-4·(1 + |m|).
 */
export function agree(
  got: EvalResult,
  want: EvalResult,
  what: string,
  ctx: { program: Program; batch: RaggedBatch; opts?: EvalOptions },
): void {
  for (const [name, g] of Object.entries(want.grads)) {
    const gg = got.grads[name].data;
    let max = 0;
    let diff = 0;
    g.data.forEach((v, i) => {
      max = Math.max(max, Math.abs(v));
      diff = Math.max(diff, Math.abs(v - gg[i]));
    });
    expect(diff, `${what}: gradient ${name} (max |g| ${max})`).toBeLessThanOrEqual(1e-4 * max + 1e-7);
  }
  const terms = termScale(ctx.program, ctx.batch, ctx.opts ?? {});
  expect(
    Math.abs(got.loss - want.loss),
    `${what}: loss ${got.loss} vs ${want.loss} (mean |term| ${terms})`,
  ).toBeLessThanOrEqual(1e-4 * (Math.abs(want.loss) + terms) + 1e-6);
  for (const [k, v] of Object.entries(want.metrics))
    expect(Math.abs(got.metrics[k] - v), `${what}: metric ${k}`).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(v)));
}

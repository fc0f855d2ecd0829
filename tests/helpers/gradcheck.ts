/**
 * Autodiff against central finite differences (float64): |analytic − fd| ≤ 1e-6 + 1e-4·|fd| for at
 * least one step h ∈ {1e-4, 1e-5, 1e-6} (several steps keep a kink of min/max/clip/where that
 * happens to lie within h of the sample from failing, while a wrong rule fails at every h).
 */
import { evaluate } from '../../compiler/interp/eval.js';
import type { RaggedBatch } from '../../core/batch/batch.js';
import type { Program } from '../../core/ir/program.js';
import { withTensor } from './batches.js';

function lossAt(
  program: Program,
  batch: RaggedBatch,
  name: string,
  t: number,
  delta: number,
  opts: { step?: number; totalSteps?: number },
): number {
  const data = Float64Array.from(batch.tensors.get(name)!.data);
  data[t] += delta;
  return evaluate(program, withTensor(batch, name, data), opts).loss;
}

/** The first gradient entry that disagrees with finite differences, or null. */
export function checkGradients(
  program: Program,
  batch: RaggedBatch,
  opts: { step?: number; totalSteps?: number } = {},
): string | null {
  const result = evaluate(program, batch, opts);
  if (!Number.isFinite(result.loss)) return null; // overflowing programs say nothing about gradients
  for (const input of program.inputs.filter((i) => i.grad)) {
    const g = result.grads[input.name].data;
    for (let t = 0; t < g.length; t++) {
      let ok = false;
      let last = 0;
      for (const h of [1e-4, 1e-5, 1e-6]) {
        const fd =
          (lossAt(program, batch, input.name, t, h, opts) - lossAt(program, batch, input.name, t, -h, opts)) / (2 * h);
        last = fd;
        if (Math.abs(g[t] - fd) <= 1e-6 + 1e-4 * Math.abs(fd)) {
          ok = true;
          break;
        }
      }
      if (!ok) return `${input.name}[${t}]: autodiff ${g[t]}, finite difference ${last}`;
    }
  }
  return null;
}

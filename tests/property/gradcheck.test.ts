/**
 * Gradients from autodiff agree with central finite differences (float64) for random well-typed
 * programs and for the stdlib objectives.
 *
 * Tolerance: |analytic − fd| ≤ 1e-6 + 1e-4·|fd| for at least one step h ∈ {1e-4, 1e-5, 1e-6}
 * (trying several steps keeps a kink of min/max/clip/where that happens to lie within h of the
 * sample from failing the test, while a wrong rule fails at every h).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../compiler/interp/eval.js';
import type { RaggedBatch } from '../../runtime/batch/batch.js';
import { compileSource } from '../../src/compile.js';
import { renderDiagnostics } from '../../src/diagnostics/render.js';
import type { Program } from '../../src/ir/program.js';
import { compile } from '../../src/objective.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { toRagged, withTensor } from '../helpers/batches.js';
import { randomProgram } from '../helpers/random-program.js';

function lossAt(program: Program, batch: RaggedBatch, name: string, t: number, delta: number, opts: { step?: number; totalSteps?: number }): number {
  const data = Float64Array.from(batch.tensors.get(name)!.data);
  data[t] += delta;
  return evaluate(program, withTensor(batch, name, data), opts).loss;
}

function checkGradients(program: Program, batch: RaggedBatch, opts: { step?: number; totalSteps?: number } = {}): string | null {
  const result = evaluate(program, batch, opts);
  if (!Number.isFinite(result.loss)) return null; // overflowing programs say nothing about gradients
  for (const input of program.inputs.filter((i) => i.grad)) {
    const g = result.grads[input.name].data;
    for (let t = 0; t < g.length; t++) {
      let ok = false;
      let last = 0;
      for (const h of [1e-4, 1e-5, 1e-6]) {
        const fd = (lossAt(program, batch, input.name, t, h, opts) - lossAt(program, batch, input.name, t, -h, opts)) / (2 * h);
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

describe('autodiff equals finite differences', () => {
  it('for random well-typed programs', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), arbRefBatch({ maxGroups: 3, maxLen: 5 }), fc.integer({ min: 0, max: 10 }), (seed, rb, step) => {
        const source = randomProgram(seed, { noStopGradient: true });
        const compiled = compileSource(source, `random-${seed}.credo`);
        if (!compiled.program) throw new Error(`generator produced an invalid program:\n${source}\n${renderDiagnostics(compiled.diagnostics)}`);
        const problem = checkGradients(compiled.program, toRagged(rb, { breakTies: true }), { step, totalSteps: 10 });
        expect(problem, `${problem}\nprogram:\n${source}`).toBeNull();
      }),
      { numRuns: 300 },
    );
  });

  it.each(['grpo', 'dapo', 'gspo'])('for %s', (name) => {
    const { program } = compile(name);
    fc.assert(
      fc.property(arbRefBatch({ maxGroups: 3 }), (rb) => {
        expect(checkGradients(program, toRagged(rb, { breakTies: true }))).toBeNull();
      }),
      { numRuns: 60 },
    );
  });
});

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
import { compileSource } from '../../src/compile.js';
import { renderDiagnostics } from '../../core/diagnostics/render.js';
import { compile } from '../../src/objective.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { toRagged } from '../helpers/batches.js';
import { checkGradients } from '../helpers/gradcheck.js';
import { randomProgram } from '../helpers/random-program.js';

describe('autodiff equals finite differences', () => {
  it('for random well-typed programs', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        arbRefBatch({ maxGroups: 3, maxLen: 5 }),
        fc.integer({ min: 0, max: 10 }),
        (seed, rb, step) => {
          const source = randomProgram(seed, { noStopGradient: true });
          const compiled = compileSource(source, `random-${seed}.credo`);
          if (!compiled.program)
            throw new Error(
              `generator produced an invalid program:\n${source}\n${renderDiagnostics(compiled.diagnostics)}`,
            );
          const problem = checkGradients(compiled.program, toRagged(rb, { breakTies: true }), { step, totalSteps: 10 });
          expect(problem, `${problem}\nprogram:\n${source}`).toBeNull();
        },
      ),
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

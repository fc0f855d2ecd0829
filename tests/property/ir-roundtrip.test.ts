/** The IR text form round-trips: parse(print(p)) prints to the same text and evaluates the same. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../compiler/interp/eval.js';
import { compileSource } from '../../src/compile.js';
import { parseProgram } from '../../core/ir/parse.js';
import { printProgram } from '../../core/ir/print.js';
import { compile } from '../../src/objective.js';
import { objectiveNames } from '../../src/stdlib.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { toRagged } from '../helpers/batches.js';
import { randomProgram } from '../helpers/random-program.js';

describe('IR print/parse round trip', () => {
  it('for random programs (text and values)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), arbRefBatch({ maxGroups: 3 }), (seed, rb) => {
        const { program } = compileSource(randomProgram(seed), 'random.credo');
        const text = printProgram(program!);
        const parsed = parseProgram(text);
        expect(printProgram(parsed)).toBe(text);
        const batch = toRagged(rb);
        const a = evaluate(program!, batch);
        const b = evaluate(parsed, batch);
        expect(Object.is(a.loss, b.loss)).toBe(true);
        expect(b.grads.logp.data).toEqual(a.grads.logp.data);
      }),
      { numRuns: 200 },
    );
  });

  it.each(objectiveNames())('for stdlib %s', (name) => {
    const { program } = compile(name);
    const text = printProgram(program);
    expect(printProgram(parseProgram(text))).toBe(text);
  });

  it('rejects malformed text with the line number', () => {
    expect(() => parseProgram('program x\n%0 = frobnicate : f32[batch]\nloss %0\n')).toThrow(/IR line 2: unknown op/);
    expect(() => parseProgram('program x\nloss %3\n')).toThrow(/IR line 2: unknown node %3/);
  });
});

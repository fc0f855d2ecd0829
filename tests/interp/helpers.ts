/**
 * Helpers for the hand-computed interpreter tests: compile a small program (with a standard header
 * declaring the inputs of `toRagged`) and evaluate it on a RefBatch, and compare arrays.
 */
import { expect } from 'vitest';
import { evaluate, type EvalOptions, type EvalResult } from '../../compiler/interp/eval.js';
import { compileSource } from '../../src/compile.js';
import { renderDiagnostics } from '../../core/diagnostics/render.js';
import type { RefBatch } from '../reference/batch.js';
import { toRagged } from '../helpers/batches.js';

/** Declares every input of `toRagged` (logp, old_logp, ref_logp, reward, gin) and the mask. */
export function header(
  grads: { logp?: boolean; old_logp?: boolean; reward?: boolean; gin?: boolean } = { logp: true },
): string {
  const g = (b: boolean | undefined) => (b ? ' grad' : '');
  return [
    'objective t',
    `input logp     : token${g(grads.logp)}`,
    `input old_logp : token${g(grads.old_logp)}`,
    'input ref_logp : token',
    `input reward   : seq${g(grads.reward)}`,
    `input gin      : group${g(grads.gin)}`,
    'mask  mask     : token',
    '',
  ].join('\n');
}

export interface RunOptions extends EvalOptions {
  readonly gin?: readonly number[];
  readonly grads?: Parameters<typeof header>[0];
}

/** Compiles `header() + body` (throwing on errors) and evaluates it on the batch. */
export function run(body: string, rb: RefBatch, opts: RunOptions = {}): EvalResult {
  const source = header(opts.grads) + body;
  const compiled = compileSource(source, 'test.credo');
  if (!compiled.program)
    throw new Error(`program did not compile:\n${source}\n${renderDiagnostics(compiled.diagnostics)}`);
  return evaluate(compiled.program, toRagged(rb, { gin: opts.gin }), {
    params: opts.params,
    step: opts.step,
    totalSteps: opts.totalSteps,
  });
}

/** A RefBatch from per-sequence token lists; old_logp / ref_logp default to 0 per token. */
export function batch(spec: {
  seqs: { logp: number[]; mask?: number[]; old?: number[]; ref?: number[]; reward?: number; group?: number }[];
  numGroups?: number;
}): RefBatch {
  const offsets = [0];
  const b: RefBatch = {
    offsets,
    groupOf: [],
    numGroups: 0,
    mask: [],
    logp: [],
    old_logp: [],
    ref_logp: [],
    reward: [],
  };
  for (const s of spec.seqs) {
    offsets.push(offsets[offsets.length - 1] + s.logp.length);
    b.logp.push(...s.logp);
    b.mask.push(...(s.mask ?? s.logp.map(() => 1)));
    b.old_logp.push(...(s.old ?? s.logp.map(() => 0)));
    b.ref_logp.push(...(s.ref ?? s.logp.map(() => 0)));
    b.reward.push(s.reward ?? 0);
    b.groupOf.push(s.group ?? 0);
  }
  b.numGroups = spec.numGroups ?? (spec.seqs.length ? Math.max(...b.groupOf) + 1 : 0);
  return b;
}

/** Elementwise closeness (|a - b| ≤ tol·(1 + |b|)); exact for ±Infinity; reports the first mismatch. */
export function expectArray(got: ArrayLike<number>, want: readonly number[], tol = 1e-12, what = 'value'): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const [a, b] = [got[i], want[i]];
    const ok = Number.isFinite(b) ? Math.abs(a - b) <= tol * (1 + Math.abs(b)) : Object.is(a, b);
    expect(ok, `${what}[${i}]: got ${a}, expected ${b} (all: [${Array.from(got).join(', ')}])`).toBe(true);
  }
}

export function expectClose(got: number, want: number, tol = 1e-12, what = 'value'): void {
  expect(Math.abs(got - want) <= tol * (1 + Math.abs(want)), `${what}: got ${got}, expected ${want}`).toBe(true);
}

/** Every entry finite (no NaN, no ±Infinity). */
export function expectFinite(xs: ArrayLike<number>, what = 'value'): void {
  for (let i = 0; i < xs.length; i++)
    expect(Number.isFinite(xs[i]), `${what}[${i}] = ${xs[i]} is not finite`).toBe(true);
}

/**
 * Programs a user (or a generator) can make arbitrarily deep or wide never exhaust the stack or
 * blow up (issue 15 item 2): nesting beyond the limit is E0004 at the token that crosses it; flat
 * chains, `let` chains written in either order and `def`s that call each other twice per level
 * compile, plan and print WGSL in bounded time.
 */
import { describe, expect, it } from 'vitest';
import { compileSource } from '../../src/compile.js';
import { lowerToDevice } from '../../compiler/lower-to-device.js';
import { MAX_NESTING } from '../../grammar/nesting.js';

const HEAD = 'objective t\ninput logp : token grad\nmask mask : token\n';

function compiles(body: string) {
  const r = compileSource(HEAD + body, 'deep.credo');
  expect(r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message)).toEqual([]);
  return r.program!;
}

describe('deep and wide programs', () => {
  it(`accepts ${MAX_NESTING} nested levels and reports E0004 beyond, at the crossing token`, () => {
    const nest = (n: number) => `loss = mean(${'('.repeat(n - 1)}logp${')'.repeat(n - 1)})\n`;
    compiles(nest(MAX_NESTING));
    for (const text of [nest(MAX_NESTING + 1), nest(5000), `loss = mean(${'-'.repeat(5000)}logp)\n`]) {
      const r = compileSource(HEAD + text, 'deep.credo');
      expect(r.diagnostics.map((d) => d.code)).toEqual(['E0004']);
    }
  });

  it('compiles and plans a flat sum of 20000 terms and 5000 lets written after their use', () => {
    const flat = compiles(`loss = mean(${Array.from({ length: 20000 }, (_, i) => `logp * ${i}`).join(' + ')})\n`);
    lowerToDevice(flat, { workgroupSize: 64 });
    const n = 5000;
    const lets = Array.from({ length: n - 1 }, (_, k) => `let a${n - 1 - k} = a${n - 2 - k} + 1\n`).join('');
    const reversed = compiles(`${lets}let a0 = logp\nloss = mean(a${n - 1})\n`);
    const { device } = lowerToDevice(reversed, { workgroupSize: 64 });
    expect(device.steps.length).toBeGreaterThan(0);
  });

  it('reports a cycle of 5000 lets as E0104 without recursing through it', () => {
    const n = 5000;
    const lets = Array.from({ length: n - 1 }, (_, k) => `let a${n - 1 - k} = a${n - 2 - k} + 1\n`).join('');
    const r = compileSource(`${HEAD}${lets}let a0 = a${n - 1} * logp\nloss = mean(a${n - 1})\n`, 'deep.credo');
    expect(r.diagnostics.some((d) => d.code === 'E0104')).toBe(true);
  });

  it('inlines a def once per argument: 36 levels of f(x) + f(x * 0.5) stay small', () => {
    const defs = ['def g0(x) = x * 1.5\n'];
    for (let i = 1; i < 36; i++) defs.push(`def g${i}(x) = g${i - 1}(x) + g${i - 1}(x * 0.5)\n`);
    const t0 = performance.now();
    const p = compiles(`${defs.join('')}loss = mean(g35(logp))\n`);
    expect(p.graph.size).toBeLessThan(50000);
    expect(performance.now() - t0).toBeLessThan(20000); // exponential inlining took minutes
  });
});

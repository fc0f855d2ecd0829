/**
 * The examples of docs/language.md compile: every ```credo block that is a whole program (it
 * has an `objective` line) has no errors, or exactly the diagnostic named by an `<!-- expect: CODE -->`
 * line right above it. Fragments (no `objective` line) are not programs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderDiagnostics } from '../../core/diagnostics/render.js';
import { compileSource } from '../../src/compile.js';
import { packageRoot } from '../../src/package-root.js';

const text = readFileSync(join(packageRoot(), 'docs/language.md'), 'utf8');
const blocks = [...text.matchAll(/(?:<!-- expect: (\w+) -->\n)?```credo\n([\s\S]*?)```/g)].map((m) => ({
  line: text.slice(0, m.index).split('\n').length,
  expect: m[1],
  source: m[2],
}));
const programs = blocks.filter((b) => /^objective\s/m.test(b.source));

describe('docs/language.md examples', () => {
  it('has examples to check', () => expect(programs.length).toBeGreaterThan(20));

  it.each(programs.map((b) => [b.line, b] as const))('the program at line %i compiles as documented', (_line, b) => {
    const { diagnostics } = compileSource(b.source, `docs/language.md:${b.line}`);
    const codes = diagnostics.filter((d) => d.severity === 'error' || d.code === b.expect).map((d) => d.code);
    expect(codes, renderDiagnostics(diagnostics)).toEqual(b.expect ? [b.expect] : []);
  });
});

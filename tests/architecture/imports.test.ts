/**
 * The import graph follows the pipeline: core/ (the ground floor) → grammar/ → compiler/ →
 * runtime/ → src/ (the facade) → scripts/, bench/, tests/. No loop between top-level folders,
 * between second-level folders, or between files; the runtime knows nothing of the language.
 * Type-only imports count: a loop of types is still a loop a reader has to hold in mind.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/package-root.js';

const ROOT = packageRoot();
const FOLDERS = ['core', 'grammar', 'compiler', 'runtime', 'src', 'stdlib', 'scripts', 'bench', 'tests', 'examples'];

function sources(dir: string, out: string[] = []): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Every relative import of the tree: [importing file, imported file], relative to the root. */
const EDGES: readonly (readonly [string, string])[] = FOLDERS.flatMap((f) => sources(join(ROOT, f))).flatMap((file) =>
  [...readFileSync(file, 'utf8').matchAll(IMPORT)]
    .map((m) => m[1] ?? m[2])
    .filter((spec) => spec.startsWith('.'))
    .map(
      (spec) =>
        [relative(ROOT, file), relative(ROOT, normalize(join(dirname(file), spec))).replace(/\.js$/, '.ts')] as const,
    ),
);

/** The folder of a file at a depth: `compiler/front` at 2; a file directly in `src/` is in `src`. */
function folder(file: string, depth: number): string {
  const parts = file.split('/');
  return parts.slice(0, Math.min(depth, parts.length - 1)).join('/');
}

/** Each cycle of a directed graph, as one path around it (empty when it is acyclic). */
function cycles(edges: readonly (readonly [string, string])[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const [a, b] of edges) if (a !== b) next.set(a, (next.get(a) ?? new Set()).add(b));
  const state = new Map<string, 'open' | 'done'>();
  const found: string[][] = [];
  const visit = (n: string, path: string[]) => {
    state.set(n, 'open');
    for (const m of next.get(n) ?? []) {
      if (state.get(m) === 'open') found.push([...path.slice(path.indexOf(m)), m]);
      else if (!state.has(m)) visit(m, [...path, m]);
    }
    state.set(n, 'done');
  };
  for (const n of next.keys()) if (!state.has(n)) visit(n, [n]);
  return found;
}

/** Edges between folders at a depth, each with one import that makes it (for the message). */
function folderEdges(depth: number): { edges: [string, string][]; example: Map<string, string> } {
  const example = new Map<string, string>();
  for (const [a, b] of EDGES) {
    const [fa, fb] = [folder(a, depth), folder(b, depth)];
    if (fa !== fb && !example.has(`${fa} → ${fb}`)) example.set(`${fa} → ${fb}`, `${a} imports ${b}`);
  }
  return { edges: [...example.keys()].map((k) => k.split(' → ') as [string, string]), example };
}

const explain = (found: string[][], example?: Map<string, string>) =>
  found
    .map(
      (c) =>
        c.join(' → ') +
        (example
          ? ` (${c
              .slice(1)
              .map((b, i) => example.get(`${c[i]} → ${b}`))
              .join('; ')})`
          : ''),
    )
    .join('\n');

const importsOf = (prefix: string) => EDGES.filter(([a]) => a.startsWith(prefix)).map(([, b]) => b);

describe('the import graph', () => {
  it('reads the tree (a check that finds no imports would pass anything)', () => {
    expect(EDGES.length).toBeGreaterThan(300);
    expect(EDGES).toContainEqual(['compiler/front/check.ts', 'compiler/front/calls.ts']);
  });

  it.each([1, 2])('has no loop between folders %i deep', (depth) => {
    const { edges, example } = folderEdges(depth);
    expect(explain(cycles(edges), example)).toBe('');
  });

  it('has no loop between files', () => {
    expect(explain(cycles(EDGES))).toBe('');
  });

  it('keeps the ground floor below everything', () => {
    expect(importsOf('core/').filter((b) => !b.startsWith('core/'))).toEqual([]);
  });

  it('keeps grammar/ and compiler/ below the runtime and the facade', () => {
    const up = ['runtime/', 'src/', 'scripts/', 'bench/', 'tests/', 'examples/'];
    expect(importsOf('grammar/').filter((b) => !b.startsWith('core/') && !b.startsWith('grammar/'))).toEqual([]);
    expect(importsOf('compiler/').filter((b) => up.some((u) => b.startsWith(u)) || b.startsWith('grammar/'))).toEqual(
      [],
    );
  });

  it('keeps the language out of the runtime', () => {
    expect(importsOf('runtime/').filter((b) => !b.startsWith('core/') && !b.startsWith('runtime/'))).toEqual([]);
  });

  it('keeps tests out of what ships and what measures', () => {
    const fromTools = [...importsOf('scripts/'), ...importsOf('bench/'), ...importsOf('src/'), ...importsOf('stdlib/')];
    expect(fromTools.filter((b) => b.startsWith('tests/'))).toEqual([]);
  });

  it('finds a planted loop (the checker itself works)', () => {
    expect(
      cycles([
        ['a', 'b'],
        ['b', 'c'],
        ['c', 'a'],
        ['c', 'd'],
      ]),
    ).toEqual([['a', 'b', 'c', 'a']]);
  });
});

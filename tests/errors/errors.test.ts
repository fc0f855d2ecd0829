/**
 * Diagnostic tests: one `.credo` file per situation, named `<CODE>-<short-name>.credo`, with the
 * expected diagnostics written into the source as comments.
 *
 * Conventions (a marker is a comment, so it never changes how the program parses):
 *
 *   1. Caret marker: a comment line of `#`, spaces, a run of `^`, and a code. It marks the primary
 *      span of a diagnostic on the nearest line above it that is not itself a marker: the carets
 *      stand under exactly the columns of the span (the `#` is column 1, so a span that starts in
 *      column 1 is written on an indented line). The code's letter gives the severity (E = error,
 *      W = warning). Optional text after `help:` must occur in the diagnostic's help line.
 *
 *          let surr = ratoi * adv
 *          #          ^^^^^ E0101 help: did you mean
 *
 *   2. Secondary marker: the same with `-` instead of `^` and the word `secondary`, optionally
 *      followed by a code (`#   --- secondary E0102`). It marks a secondary label of the
 *      expected diagnostic with that code, or of the file's only expected diagnostic when no code
 *      is given.
 *
 *   3. `# expect: CODE at-end` — a diagnostic whose primary span is the last non-whitespace
 *      character of the file (used for diagnostics at the end of the program, such as a missing
 *      loss, where a marker below would itself become the end of the file; put it in the header).
 *
 *   4. `# expect: CODE args: --set NAME=VALUE …` — a diagnostic with no source span, from the
 *      `--set` flags: the file must compile without errors, and
 *      `checkParams(program, parseSetFlags(flags))` must throw a `UserError` whose diagnostics are
 *      all errors with that code and no span. Each `args:` line is one run.
 *
 * For every file: each expected diagnostic exists with exactly that code, severity and primary
 * span (line, start column, length, in this file); every error that compileSource reports is
 * expected (unexpected warnings are allowed); rendering each expected diagnostic shows
 * `--> file:line:col`, the source line and the caret line; and no message, label, help or note
 * contains `undefined`, `NaN` or `[object`. Finally, every code of the registry has a file.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../../src/compile.js';
import { CODES, type Code } from '../../core/diagnostics/codes.js';
import { UserError, type Diagnostic } from '../../core/diagnostics/diagnostic.js';
import { renderDiagnostic } from '../../core/diagnostics/render.js';
import { checkParams, parseSetFlags } from '../../src/objective.js';
import type { Span } from '../../core/source/source-file.js';

const DIR = dirname(fileURLToPath(import.meta.url));
const FILES = readdirSync(DIR)
  .filter((f) => f.endsWith('.credo'))
  .sort();

interface Where {
  readonly line: number;
  readonly col: number;
  readonly len: number;
}

interface Expectation {
  readonly code: Code;
  readonly severity: 'error' | 'warning';
  /** Line of the marker in the test file, for messages. */
  readonly markerLine: number;
  readonly at: Where | 'at-end';
  readonly help?: string;
  readonly secondary: Where[];
}

interface ArgsExpectation {
  readonly code: Code;
  readonly flags: string[];
  readonly markerLine: number;
}

interface Spec {
  readonly path: string;
  readonly text: string;
  readonly expectations: Expectation[];
  readonly args: ArgsExpectation[];
}

const CARET = /^#(\s*)(\^+)\s+([EW]\d{4})\b(?:\s+help:\s*(.*\S))?\s*$/;
const SECONDARY = /^#(\s*)(-+)\s+secondary\b(?:\s+([EW]\d{4}))?\s*$/;
const EXPECT = /^#\s*expect:\s*([EW]\d{4})\s+(at-end|args:\s*(.*\S))\s*$/;

function isCode(s: string): s is Code {
  return Object.hasOwn(CODES, s);
}

function severityOf(code: Code): 'error' | 'warning' {
  return code.startsWith('W') ? 'warning' : 'error';
}

/** Reads the markers of a test file. Throws on a malformed marker, so typos cannot pass silently. */
function parseSpec(path: string, text: string): Spec {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const expectations: (Expectation & { secondary: Where[] })[] = [];
  const pendingSecondary: { code?: string; where: Where; markerLine: number }[] = [];
  const args: ArgsExpectation[] = [];
  let target = 0; // 1-based line the next marker refers to
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const lineNo = i + 1;
    const caret = CARET.exec(line);
    const secondary = SECONDARY.exec(line);
    const expect = EXPECT.exec(line);
    if (caret || secondary) {
      if (target === 0) throw new Error(`${path}:${lineNo}: marker before any source line`);
      const m = (caret ?? secondary)!;
      const where = { line: target, col: 1 + 1 + m[1].length, len: m[2].length };
      if (caret) {
        const code = caret[3];
        if (!isCode(code)) throw new Error(`${path}:${lineNo}: ${code} is not in CODES`);
        expectations.push({
          code,
          severity: severityOf(code),
          markerLine: lineNo,
          at: where,
          help: caret[4],
          secondary: [],
        });
      } else pendingSecondary.push({ code: secondary![3], where, markerLine: lineNo });
      continue;
    }
    if (expect) {
      const code = expect[1];
      if (!isCode(code)) throw new Error(`${path}:${lineNo}: ${code} is not in CODES`);
      if (expect[2] === 'at-end')
        expectations.push({ code, severity: severityOf(code), markerLine: lineNo, at: 'at-end', secondary: [] });
      else {
        const words = expect[3].split(/\s+/);
        const flags: string[] = [];
        for (let j = 0; j < words.length; j++) {
          if (words[j] !== '--set' || j + 1 >= words.length)
            throw new Error(`${path}:${lineNo}: expected \`--set NAME=VALUE\` pairs`);
          flags.push(words[++j]);
        }
        args.push({ code, flags, markerLine: lineNo });
      }
      continue;
    }
    if (/^#\s*(\^|expect\b)/.test(line)) throw new Error(`${path}:${lineNo}: malformed marker: ${line}`);
    target = lineNo;
  }
  for (const s of pendingSecondary) {
    const owners = s.code ? expectations.filter((e) => e.code === s.code) : expectations;
    if (owners.length !== 1) {
      throw new Error(
        `${path}:${s.markerLine}: secondary marker matches ${owners.length} expected diagnostics; name the code`,
      );
    }
    owners[0].secondary.push(s.where);
  }
  return { path, text, expectations, args };
}

function where(span: Span): Where & { path: string } {
  const { line, col } = span.file.position(span.start);
  return { path: span.file.path, line, col, len: span.end - span.start };
}

function atEnd(text: string): Where {
  const end = text.replace(/\s+$/, '').length;
  const before = text.slice(0, end - 1);
  const line = before.split('\n').length;
  const col = end - 1 - (before.lastIndexOf('\n') + 1) + 1;
  return { line, col, len: 1 };
}

function show(d: Diagnostic): string {
  return `${d.severity}[${d.code}] ${d.span ? JSON.stringify(where(d.span)) : '(no span)'}: ${d.message}`;
}

function sameWhere(a: Where & { path?: string }, b: Where, path: string): boolean {
  return (a.path === undefined || a.path === path) && a.line === b.line && a.col === b.col && a.len === b.len;
}

/** The diagnostic an expectation describes, or undefined. */
function find(spec: Spec, e: Expectation, diags: readonly Diagnostic[]): Diagnostic | undefined {
  const want = e.at === 'at-end' ? atEnd(spec.text) : e.at;
  return diags.find(
    (d) =>
      d.code === e.code &&
      d.severity === e.severity &&
      d.span !== undefined &&
      sameWhere(where(d.span), want, spec.path),
  );
}

const specs = FILES.map((f) => parseSpec(`tests/errors/${f}`, readFileSync(join(DIR, f), 'utf8')));

for (const spec of specs)
  describe(spec.path.replace(/^.*\//, ''), () => {
    let result: ReturnType<typeof compileSource> = { diagnostics: [] };
    let crash: unknown;
    try {
      result = compileSource(spec.text, spec.path);
    } catch (err) {
      crash = err;
    }
    const diags = result.diagnostics;
    const listing = () => diags.map(show).join('\n') || '(no diagnostics)';

    it('compiles without throwing', () => {
      expect(crash, 'compileSource must report diagnostics, not throw').toBeUndefined();
    });

    it('has a well-formed name and at least one expectation', () => {
      const m = /^([EW]\d{4})-[a-z0-9-]+\.credo$/.exec(spec.path.replace(/^.*\//, ''));
      expect(m, 'name as <CODE>-<short-name>.credo').not.toBeNull();
      const code = m![1];
      expect(isCode(code), `${code} is in CODES`).toBe(true);
      const codes = [...spec.expectations.map((e) => e.code), ...spec.args.map((a) => a.code)];
      expect(codes, `the file expects its own code ${code}`).toContain(code);
    });

    for (const e of spec.expectations)
      it(`reports ${e.code} (marker line ${e.markerLine})`, () => {
        const d = find(spec, e, diags);
        const codeSeen = diags.some((x) => x.code === e.code);
        expect(
          d,
          `expected ${e.severity}[${e.code}] at ${JSON.stringify(e.at === 'at-end' ? atEnd(spec.text) : e.at)}` +
            (codeSeen ? '' : ` — no ${e.code} diagnostic at all`) +
            `; got:\n${listing()}`,
        ).toBeDefined();
        for (const s of e.secondary) {
          const labels = (d!.secondary ?? []).map((l) => where(l.span));
          expect(
            labels.some((l) => sameWhere(l, s, spec.path)),
            `secondary label at ${JSON.stringify(s)}; got ${JSON.stringify(labels)}`,
          ).toBe(true);
        }
        if (e.help !== undefined) expect(d!.help ?? '', 'help line').toContain(e.help);
      });

    it('reports no unexpected errors', () => {
      const expected = new Set(spec.expectations.map((e) => find(spec, e, diags)).filter((d) => d !== undefined));
      const unexpected = diags.filter((d) => d.severity === 'error' && !expected.has(d));
      expect(unexpected.map(show), `all diagnostics:\n${listing()}`).toEqual([]);
    });

    it('renders the expected diagnostics with location, source line and carets', () => {
      for (const e of spec.expectations) {
        const d = find(spec, e, diags);
        if (!d?.span) continue; // reported by the test above
        const { line, col, len } = where(d.span);
        const out = renderDiagnostic(d);
        const outLines = out.split('\n');
        expect(outLines[0]).toBe(`${d.severity}[${d.code}]: ${d.message}`);
        expect(out).toContain(`--> ${spec.path}:${line}:${col}`);
        const source = d.span.file.lineText(line);
        expect(
          outLines.some((l) => l.trimStart() === `${line} | ${source}`),
          `source line ${line} in:\n${out}`,
        ).toBe(true);
        const carets = `| ${' '.repeat(col - 1)}${'^'.repeat(len)}`;
        expect(
          outLines.some((l) => l.trimStart().startsWith(carets) && l.trimStart()[carets.length] !== '^'),
          `caret line \`${carets}\` in:\n${out}`,
        ).toBe(true);
      }
    });

    it('writes no `undefined`, `NaN` or `[object` into its diagnostics', () => {
      for (const d of diags) {
        const texts = [
          d.message,
          d.label ?? '',
          d.help ?? '',
          ...(d.notes ?? []),
          ...(d.secondary ?? []).map((l) => l.message),
        ];
        for (const t of texts) expect(t, `in ${show(d)}`).not.toMatch(/\bundefined\b|\bNaN\b|\[object/);
      }
    });

    for (const a of spec.args) {
      it(`rejects --set ${a.flags.join(' --set ')} with ${a.code}`, () => {
        expect(diags.filter((d) => d.severity === 'error').map(show), 'the program itself compiles').toEqual([]);
        expect(result.program).toBeDefined();
        let thrown: unknown;
        try {
          checkParams(result.program!, parseSetFlags(a.flags));
        } catch (err) {
          thrown = err;
        }
        expect(thrown, 'a UserError').toBeInstanceOf(UserError);
        const got = (thrown as UserError).diagnostics;
        expect(got.length).toBeGreaterThan(0);
        for (const d of got) {
          expect(show(d)).toBe(show({ ...d, code: a.code, severity: 'error', span: undefined }));
          const out = renderDiagnostic(d);
          expect(out.split('\n')[0]).toBe(`error[${a.code}]: ${d.message}`);
          expect(out).not.toContain('-->');
        }
      });
    }
  });

describe('the registry', () => {
  it('has a test file for every code', () => {
    const covered = new Set<string>();
    for (const s of specs) {
      const own = s.path.replace(/^.*\//, '').slice(0, 5);
      if ([...s.expectations, ...s.args].some((e) => e.code === own)) covered.add(own);
    }
    const missing = Object.keys(CODES).filter((c) => !covered.has(c));
    expect(missing, 'codes without a tests/errors/<CODE>-*.credo file that expects them').toEqual([]);
  });

  it('marker parsing: carets give line, column and length', () => {
    const spec = parseSpec(
      'x.credo',
      'let a = 1\nlet surr = ratoi * adv\n#          ^^^^^ E0101 help: did you mean\n#   ---- secondary\n',
    );
    expect(spec.expectations).toEqual([
      {
        code: 'E0101',
        severity: 'error',
        markerLine: 3,
        at: { line: 2, col: 12, len: 5 },
        help: 'did you mean',
        secondary: [{ line: 2, col: 5, len: 4 }],
      },
    ]);
    expect(() => parseSpec('x.credo', 'let a = 1\n#   ^ E9999\n')).toThrow(/not in CODES/);
    expect(() => parseSpec('x.credo', 'let a = 1\n#   ^ oops\n')).toThrow(/malformed/);
  });
});

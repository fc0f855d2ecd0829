/**
 * Fuzzing of the front end: `compileSource` on
 *   (a) token soup — random sequences of keywords, names, numbers, operators, brackets, newlines
 *       and a few garbage characters;
 *   (b) mutations of the stdlib programs (stdlib/*.credo, stdlib/lib/*.credo) — delete, duplicate,
 *       swap, insert or replace a token; delete, duplicate or swap a line; truncate;
 *   (c) random well-formed programs — items built from a small expression grammar, so the checker
 *       (levels, types, arities, defs, imports) sees many combinations rather than only parse errors.
 *
 * Property: compileSource never throws (no InternalError, no other exception); every diagnostic has
 * a code from CODES, a known severity, a non-empty message and spans (primary and secondary) that
 * lie inside their file — this file, or a stdlib module for a diagnostic inside an imported def;
 * rendering every diagnostic (text and JSON) does not throw; there is a program exactly when there
 * is no error.
 *
 * The runs use a fixed seed so the suite is reproducible; `FUZZ_SEED=<n>` or `FUZZ_SEED=random`
 * and `FUZZ_RUNS=<n>` explore further.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../../src/compile.js';
import { CODES } from '../../core/diagnostics/codes.js';
import type { Diagnostic } from '../../core/diagnostics/diagnostic.js';
import { diagnosticToJson, renderDiagnostic } from '../../core/diagnostics/render.js';
import type { Span } from '../../core/source/source-file.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PATH = 'fuzz.credo';
const RUNS = Number(process.env.FUZZ_RUNS ?? 500);
const SEED = process.env.FUZZ_SEED === 'random' ? undefined : Number(process.env.FUZZ_SEED ?? 20250611);
const params = (numRuns = RUNS) => ({ numRuns, ...(SEED === undefined ? {} : { seed: SEED }) });

const STDLIB: { name: string; text: string }[] = [
  ...readdirSync(join(ROOT, 'stdlib'))
    .filter((f) => f.endsWith('.credo'))
    .map((f) => ({ name: `stdlib/${f}`, text: readFileSync(join(ROOT, 'stdlib', f), 'utf8') })),
  ...readdirSync(join(ROOT, 'stdlib', 'lib'))
    .filter((f) => f.endsWith('.credo'))
    .map((f) => ({ name: `stdlib/lib/${f}`, text: readFileSync(join(ROOT, 'stdlib', 'lib', f), 'utf8') })),
].sort((a, b) => a.name.localeCompare(b.name));

// ── the property ────────────────────────────────────────────────────────────────────────────────

function checkSpan(span: Span, text: string, what: string): void {
  const f = span.file;
  if (f.path === PATH) expect(f.text, `${what}: a span in ${PATH} refers to the compiled text`).toBe(text);
  else
    expect(f.path, `${what}: a span outside ${PATH} is in a stdlib module`).toMatch(/^stdlib\/lib\/[a-z0-9_]+\.credo$/);
  expect(Number.isInteger(span.start) && Number.isInteger(span.end), `${what}: integer offsets`).toBe(true);
  expect(span.start, `${what}: start >= 0`).toBeGreaterThanOrEqual(0);
  expect(span.start, `${what}: start <= end`).toBeLessThanOrEqual(span.end);
  // Known bug (see the test "E0401 on an empty file" below): an empty file gets the span [0, 1).
  if (!(f.text === '' && span.start === 0 && span.end === 1))
    expect(span.end, `${what}: end <= length of ${f.path}`).toBeLessThanOrEqual(f.text.length);
}

function checkDiagnostic(d: Diagnostic, text: string): void {
  const what = `${d.severity}[${d.code}] ${d.message}`;
  expect(Object.hasOwn(CODES, d.code), `${what}: code in CODES`).toBe(true);
  expect(['error', 'warning'], what).toContain(d.severity);
  expect(d.code[0], `${what}: E codes are errors, W codes warnings`).toBe(d.severity === 'error' ? 'E' : 'W');
  expect(typeof d.message === 'string' && d.message.length > 0, `${what}: a message`).toBe(true);
  if (d.span) checkSpan(d.span, text, what);
  for (const l of d.secondary ?? []) checkSpan(l.span, text, `${what} (secondary \`${l.message}\`)`);
  const out = renderDiagnostic(d);
  expect(out.startsWith(`${d.severity}[${d.code}]: `), what).toBe(true);
  expect(() => JSON.stringify(diagnosticToJson(d)), what).not.toThrow();
}

/** Compiles one text and checks the property; returns the diagnostics for statistics. */
function compileChecked(text: string): readonly Diagnostic[] {
  let result: ReturnType<typeof compileSource>;
  try {
    result = compileSource(text, PATH);
  } catch (e) {
    throw new Error(`compileSource threw on ${JSON.stringify(text)}:\n${(e as Error).stack ?? String(e)}`);
  }
  for (const d of result.diagnostics) checkDiagnostic(d, text);
  const hasError = result.diagnostics.some((d) => d.severity === 'error');
  expect(
    result.program === undefined,
    `a program exactly when there is no error (${result.diagnostics.map((d) => d.code).join(', ')})`,
  ).toBe(hasError);
  return result.diagnostics;
}

// ── (a) token soup ──────────────────────────────────────────────────────────────────────────────

const KEYWORDS = [
  'objective',
  'param',
  'input',
  'mask',
  'let',
  'def',
  'loss',
  'metric',
  'export',
  'import',
  'per',
  'where',
  'and',
  'or',
  'not',
  'true',
  'false',
  'grad',
];
const NAMES = [
  'logp',
  'old_logp',
  'reward',
  'adv',
  'ratio',
  'x',
  'f',
  'token',
  'seq',
  'group',
  'batch',
  'f32',
  'i32',
  'bool',
  'mean',
  'sum',
  'max',
  'min',
  'count',
  'std',
  'var',
  'std_unbiased',
  'logsumexp',
  'exp',
  'log',
  'clip',
  'pow',
  'sg',
  'quantile',
  'rank',
  'top_k',
  'cumsum',
  'next',
  'prev',
  'scan',
  'piecewise',
  'linear',
  'cosine',
  'progress',
  'step',
  'total_steps',
  'length',
  'position',
  'group_size',
  'num_seqs',
  'pi',
  'kl',
  'advantages',
  'agg',
  'grpo',
  'k3',
  'seq_mean_token_mean',
  'eps',
];
const NUMBERS = ['0', '1', '2', '0.5', '.5', '1.', '1e-6', '1e', '1e999', '20480', '007'];
const OPERATORS = ['+', '-', '*', '/', '^', '<', '<=', '>', '>=', '==', '!=', '=', ',', ':', '.', '(', ')', '(', ')'];
const NEWLINES = ['\n', '\n', '\n\n', '\r\n'];
const GARBAGE = [
  '$',
  '@',
  ';',
  '!',
  '&',
  '|',
  '"',
  "'",
  '{',
  '}',
  '[',
  ']',
  '\\',
  '~',
  '`',
  'é',
  'λ',
  '😀',
  '\u0000',
  '\u00a0',
  '\u2028',
  '\ufeff',
  '\t',
  '#',
];

const nameArb = fc.oneof(fc.constantFrom(...NAMES), fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,6}$/));
const tokenArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KEYWORDS) },
  { weight: 6, arbitrary: nameArb },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.constantFrom(...NUMBERS),
      fc.nat({ max: 100000 }).map(String),
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => String(Math.abs(x))),
    ),
  },
  { weight: 6, arbitrary: fc.constantFrom(...OPERATORS) },
  { weight: 2, arbitrary: fc.constantFrom(...NEWLINES) },
  {
    weight: 1,
    arbitrary: fc.oneof(fc.constantFrom(...GARBAGE), fc.string({ unit: 'binary', minLength: 1, maxLength: 2 })),
  },
);
const soupArb = fc
  .array(fc.tuple(tokenArb, fc.constantFrom(' ', ' ', '', '  ')), { maxLength: 60 })
  .map((parts) => parts.map(([t, sep]) => t + sep).join(''));

// ── (b) mutations of the stdlib ─────────────────────────────────────────────────────────────────

const PIECE = /\s+|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|<=|>=|==|!=|[\s\S]/g;

/** Splits a text into pieces whose concatenation is the text; tokens are the non-blank, non-comment ones. */
function pieces(text: string): string[] {
  return text.match(PIECE) ?? [];
}

function isToken(p: string): boolean {
  return !/^\s/.test(p) && !p.startsWith('#');
}

type Mutation =
  | { kind: 'deleteToken' | 'duplicateToken' | 'deleteLine' | 'duplicateLine'; a: number }
  | { kind: 'swapTokens' | 'swapLines'; a: number; b: number }
  | { kind: 'insertToken' | 'replaceToken'; a: number; tok: string }
  | { kind: 'truncate'; a: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constantFrom(
      'deleteToken' as const,
      'duplicateToken' as const,
      'deleteLine' as const,
      'duplicateLine' as const,
    ),
    a: fc.nat(),
  }),
  fc.record({ kind: fc.constantFrom('swapTokens' as const, 'swapLines' as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ kind: fc.constantFrom('insertToken' as const, 'replaceToken' as const), a: fc.nat(), tok: tokenArb }),
  fc.record({ kind: fc.constant('truncate' as const), a: fc.nat() }),
);

function mutate(text: string, m: Mutation): string {
  if (m.kind === 'truncate') return text.slice(0, text.length ? m.a % (text.length + 1) : 0);
  if (m.kind === 'deleteLine' || m.kind === 'duplicateLine' || m.kind === 'swapLines') {
    const lines = text.split('\n');
    const i = m.a % lines.length;
    if (m.kind === 'deleteLine') lines.splice(i, 1);
    else if (m.kind === 'duplicateLine') lines.splice(i, 0, lines[i]);
    else if (m.kind === 'swapLines') {
      const j = m.b % lines.length;
      [lines[i], lines[j]] = [lines[j], lines[i]];
    }
    return lines.join('\n');
  }
  const ps = pieces(text);
  const toks = ps.map((p, i) => (isToken(p) ? i : -1)).filter((i) => i >= 0);
  if (m.kind === 'insertToken') {
    const at = ps.length ? m.a % (ps.length + 1) : 0;
    ps.splice(at, 0, ` ${m.tok} `);
    return ps.join('');
  }
  if (!toks.length) return text;
  const i = toks[m.a % toks.length];
  switch (m.kind) {
    case 'deleteToken':
      ps[i] = '';
      break;
    case 'duplicateToken':
      ps[i] = `${ps[i]} ${ps[i]}`;
      break;
    case 'replaceToken':
      ps[i] = m.tok;
      break;
    case 'swapTokens': {
      const j = toks[m.b % toks.length];
      [ps[i], ps[j]] = [ps[j], ps[i]];
      break;
    }
  }
  return ps.join('');
}

/** Arguments by parameter name for the library modules whose names the generic rule below misreads. */
const MODULE_ARGS: Record<string, Record<string, string>> = {
  distill: {
    student: 'seed_logits',
    teacher: 'seed_logits',
    x: 'seed_logits',
    a: 'seed_logits',
    b: 'seed_logits',
    eps: '1e-8',
  },
  pref: { chosen: 'seed_chosen', d: 'seed_tok', alpha: '0.5', eps: '0.1', tau: '0.05', delta: '0', f_type: '0' },
};

/**
 * The texts to mutate: the stdlib objectives as they are, and each library module made into an
 * objective (a grad input, a loss, and an export calling each of its defs, since a def is only
 * checked where it is called).
 */
const SEEDS = STDLIB.map(({ name, text }) => {
  if (!name.startsWith('stdlib/lib/')) return { name, text };
  // an argument of the level its name says (the module's own table first): logits over the vocabulary,
  // token ids, a mixing weight, else a token value
  const own = MODULE_ARGS[name.slice('stdlib/lib/'.length, -'.credo'.length)] ?? {};
  const arg = (p: string) =>
    own[p] ??
    (/logits$|^z$|^d$/.test(p) ? 'seed_logits' : p === 'token_id' ? 'seed_id' : p === 'beta' ? '0.5' : 'seed_tok');
  const calls = [...text.matchAll(/^def\s+([A-Za-z0-9_]+)\(([^)]*)\)/gm)].map(([, fn, ps]) => {
    const args = ps.trim() ? ps.split(',').map((p) => arg(p.trim())) : [];
    return `export x_${fn} = ${fn}(${args.join(', ')})`;
  });
  const inputs =
    'input seed_tok : token grad\ninput seed_logits : token x vocab grad\ninput seed_id : token i32\ninput seed_chosen : seq bool';
  return {
    name,
    text: `${text}\n${inputs}\nmask mask : token\nloss = mean(seed_tok) + mean(sum(seed_logits per token))\n${calls.join('\n')}\n`,
  };
});

const mutantArb = fc
  .tuple(fc.constantFrom(...SEEDS), fc.array(mutationArb, { minLength: 1, maxLength: 4 }))
  .map(([src, ms]) => ms.reduce(mutate, src.text));

// ── (c) random well-formed programs ─────────────────────────────────────────────────────────────

const HEADER = [
  'objective fuzz',
  'import advantages',
  'import kl',
  'import agg',
  'param eps = 0.2',
  'param beta = 0.04',
  'input logp     : token grad',
  'input old_logp : token',
  'input reward   : seq',
  'input score    : group f32',
  'input flag     : token bool',
  'input n        : seq i32',
  'mask  mask     : token',
].join('\n');

const LETS = ['a', 'b', 'c'];
/** Callees with their usual arity; a call gets a different number of arguments one time in eight. */
const CALLEES: [string, number][] = [
  ['exp', 1],
  ['log', 1],
  ['abs', 1],
  ['sqrt', 1],
  ['sigmoid', 1],
  ['sg', 1],
  ['f32', 1],
  ['i32', 1],
  ['clip', 3],
  ['where', 3],
  ['min', 2],
  ['max', 2],
  ['pow', 2],
  ['cumsum', 1],
  ['rcumprod', 1],
  ['discounted', 2],
  ['next', 2],
  ['prev', 2],
  ['linear', 2],
  ['cosine', 2],
  ['piecewise', 4],
  ['progress', 0],
  ['step_decay', 3],
  ['f', 2],
  ['kl.k3', 2],
  ['kl.k1_st', 2],
  ['advantages.grpo', 2],
  ['advantages.rloo', 1],
  ['agg.seq_mean_token_mean', 1],
  ['agg.seq_mean_token_sum_norm', 2],
];
/** Callees that do not exist (E0101). */
const BAD_CALLEES: [string, number][] = [
  ['kl.k9', 2],
  ['nofn', 1],
  ['std', 1],
  ['a', 1],
];
const REDUCERS = [
  'sum',
  'mean',
  'max',
  'min',
  'count',
  'var_pop',
  'var_unbiased',
  'std_pop',
  'std_unbiased',
  'logsumexp',
  'quantile',
  'rank',
  'top_k',
];
/** `arb` one time in `n`, null otherwise. */
const sometimes = <T>(arb: fc.Arbitrary<T>, n: number) =>
  fc.oneof({ weight: n - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });

const exprArb: fc.Arbitrary<string> = fc.letrec<{ e: string }>((tie) => ({
  e: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    {
      weight: 6,
      arbitrary: fc.constantFrom(
        'logp',
        'old_logp',
        'reward',
        'score',
        'eps',
        'beta',
        'length',
        'position',
        'group_size',
        '1',
        '0.5',
        '2',
      ),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom('flag', 'n', ...LETS, 'mask', 'num_seqs', 'step', 'pi', 'true', 'u', 'adv', 'kl'),
    },
    {
      weight: 3,
      arbitrary: fc
        .tuple(
          tie('e'),
          fc.oneof(
            { weight: 5, arbitrary: fc.constantFrom('+', '-', '*', '/', '^') },
            { weight: 1, arbitrary: fc.constantFrom('<', '>=', '==', '!=', 'and', 'or') },
          ),
          tie('e'),
        )
        .map(([l, o, r]) => `(${l} ${o} ${r})`),
    },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('-', '-', '-', 'not '), tie('e')).map(([o, x]) => `(${o}${x})`) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.constantFrom(...REDUCERS),
          fc.oneof(
            { weight: 2, arbitrary: fc.constantFrom('logp', '(logp - old_logp)', 'reward', 'score') },
            { weight: 3, arbitrary: tie('e') },
          ),
          sometimes(fc.oneof(fc.constantFrom('0.5', '2', 'eps'), tie('e')), 8),
          sometimes(fc.constantFrom('token', 'seq', 'seq', 'group', 'group', 'batch', 'sq'), 2),
          sometimes(tie('e'), 4),
        )
        .map(([f, x, extra, per, where]) => {
          // quantile and top_k take a second argument; the others get one (an arity error) one time in eight
          const two = f === 'quantile' || f === 'top_k';
          const xs = two ? [x, extra ?? '0.5'] : extra !== null ? [x, extra] : [x];
          return `${f}(${xs.join(', ')}${per ? ` per ${per}` : ''}${where ? ` where ${where}` : ''})`;
        }),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.oneof(
            { weight: 12, arbitrary: fc.constantFrom(...CALLEES) },
            { weight: 1, arbitrary: fc.constantFrom(...BAD_CALLEES) },
          ),
          fc.array(tie('e'), { maxLength: 5 }),
          fc.nat({ max: 7 }),
        )
        .map(
          ([[f, n], xs, wrong]) =>
            `${f}(${(wrong === 0 ? xs : [...xs, ...Array(n).fill('logp')].slice(0, n)).join(', ')})`,
        ),
    },
  ),
})).e;

const programArb = fc
  .record({
    lets: fc.array(exprArb, { maxLength: 3 }),
    def: sometimes(exprArb, 2),
    param: sometimes(fc.oneof(fc.constantFrom('1', '-1e-3', '(2 * 3)'), exprArb), 5),
    loss: fc.option(
      fc.tuple(
        fc.constantFrom(
          'mean(E)',
          'mean(E)',
          'E',
          'mean(mean(E per seq))',
          'agg.seq_mean_token_mean(E)',
          '-sum(E per batch)',
        ),
        exprArb,
      ),
      { freq: 12 },
    ),
    metrics: fc.array(exprArb, { maxLength: 2 }),
    exported: sometimes(exprArb, 3),
  })
  .map(({ lets, def, param, loss, metrics, exported }) =>
    [
      HEADER,
      ...(param !== null ? [`param p = ${param}`] : []),
      ...(def !== null ? [`def f(u, v) = ${def}`] : []),
      ...lets.map((e, i) => `let ${LETS[i]} = ${e}`),
      ...(loss !== null ? [`loss = ${loss[0].replace('E', loss[1])}`] : []),
      ...metrics.map((e, i) => `metric m${i} = mean(${e})`),
      ...(exported !== null ? [`export out = ${exported}`] : []),
      '',
    ].join('\n'),
  );

// ── the tests ───────────────────────────────────────────────────────────────────────────────────

describe('compileSource fuzzing', () => {
  it('the mutation seeds compile without errors', () => {
    expect(SEEDS.length).toBeGreaterThanOrEqual(6);
    for (const s of SEEDS) {
      const diags = compileChecked(s.text);
      expect(
        diags.filter((d) => d.severity === 'error').map((d) => d.code),
        s.name,
      ).toEqual([]);
    }
  });

  it('mutate keeps an untouched text when nothing applies and can truncate to empty', () => {
    expect(mutate('', { kind: 'deleteToken', a: 3 })).toBe('');
    expect(mutate('let a = 1', { kind: 'truncate', a: 0 })).toBe('');
    expect(mutate('let a = 1', { kind: 'swapTokens', a: 0, b: 3 })).toBe('1 a = let');
    expect(pieces(STDLIB[0].text).join('')).toBe(STDLIB[0].text);
  });

  it('(a) token soup never crashes the compiler', () => {
    fc.assert(
      fc.property(soupArb, (text) => {
        compileChecked(text);
      }),
      params(),
    );
  });

  it('(b) mutated stdlib programs never crash the compiler', () => {
    fc.assert(
      fc.property(mutantArb, (text) => {
        compileChecked(text);
      }),
      params(),
    );
  });

  it('(c) random well-formed programs never crash the checker', () => {
    let compiled = 0;
    let checkerErrors = 0;
    fc.assert(
      fc.property(programArb, (text) => {
        const diags = compileChecked(text);
        if (!diags.some((d) => d.severity === 'error')) compiled++;
        else if (!diags.some((d) => d.code.startsWith('E000'))) checkerErrors++;
      }),
      params(),
    );
    // The generator should reach the checker (no syntax errors) and sometimes produce a program.
    expect(checkerErrors + compiled, 'programs without syntax errors').toBeGreaterThan(RUNS / 2);
  });

  it('E0401 on an empty file has a span inside the file', () => {
    // Known bug: resolve.ts reports the missing loss at file.span(0, 1) even when the file is empty,
    // so the span ends past the end of the text.
    const { diagnostics } = compileSource('', PATH);
    expect(diagnostics.map((d) => d.code)).toEqual(['E0401']);
    const span = diagnostics[0].span!;
    expect(span.end, 'span end <= text length (0)').toBeLessThanOrEqual(0);
  });
});

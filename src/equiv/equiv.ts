/**
 * `credo equiv A B`: are two objectives the same method? First symbolically (normal forms of the
 * loss and of its gradients after binding params, compiler/equiv/canon.ts); otherwise by
 * randomized differential testing on batches that satisfy the assumptions, shrinking a
 * difference to a minimal counterexample batch that `credo run` accepts.
 */
import fc from 'fast-check';
import { Canonicalizer, type Bindings } from '../../compiler/equiv/canon.js';
import { firstDifference, type Difference } from '../../compiler/equiv/explain.js';
import { num, scaleBetween, type Term } from '../../compiler/equiv/term.js';
import { evaluate, type EvalResult } from '../../compiler/interp/eval.js';
import type { InputSpec, RaggedBatch } from '../../core/batch/batch.js';
import { compileSource } from '../compile.js';
import { writeFileSafely } from '../files.js';
import { error, hasErrors, UserError } from '../../core/diagnostics/diagnostic.js';
import { topoSort } from '../../core/ir/node.js';
import type { Program } from '../../core/ir/program.js';
import { showLevel } from '../../core/types/types.js';
import { checkParams, compile } from '../objective.js';
import { batchToSafetensors, describeBatch } from './counterexample.js';
import { arbBatch } from './random-batches.js';

export type Mode = 'value' | 'grad' | 'both';
export type Verdict = 'proved' | 'no-difference-found' | 'different';

export interface EquivOptions {
  readonly a: string;
  readonly b: string;
  /** Param overrides per side. */
  readonly setA?: Readonly<Record<string, number>>;
  readonly setB?: Readonly<Record<string, number>>;
  readonly assume?: readonly string[];
  readonly mode?: Mode;
  readonly upToScale?: boolean;
  readonly runs?: number;
  readonly seed?: number;
  readonly step?: number;
  readonly totalSteps?: number;
  /** Where to save a counterexample batch; none is written when absent. */
  readonly counterexamplePath?: string;
}

export interface EquivResult {
  readonly verdict: Verdict;
  readonly mode: Mode;
  readonly runs: number;
  readonly max_rel_diff: number;
  readonly scale: number;
  readonly counterexample: string | null;
  readonly explanation: string;
  /** Normal forms (loss, and gradients when compared), for --explain. */
  readonly normalForms: { readonly label: string; readonly a: Term; readonly b: Term }[];
  readonly firstDifference?: Difference & { label: string };
  /** Losses on the counterexample. */
  readonly losses?: { a: number; b: number };
}

interface Side {
  readonly label: string;
  readonly program: Program;
  readonly params: Record<string, number>;
}

function side(method: string, set: Readonly<Record<string, number>> | undefined): Side {
  const objective = compile(method);
  const params = Object.fromEntries(objective.program.params.map((p) => [p.name, p.default]));
  Object.assign(params, checkParams(objective.program, set ?? {}));
  return { label: method, program: objective.program, params };
}

/**
 * A program's `require`s as assumptions: the two objectives are compared on the batches both are
 * defined on (`group_size == K` as the structural `group_size=K`; conditions over params are checked
 * per run instead, so they are left out).
 */
function requiredAssumptions(p: Program): string[] {
  return p.requires
    .filter((r) => !topoSort([r.failing]).some((n) => n.op === 'param'))
    .map((r) => (r.groupSize !== undefined ? `group_size=${r.groupSize}` : r.text));
}

/** Inputs of both sides matched by name; the same name must have the same level and type. */
function unionInputs(a: Program, b: Program): InputSpec[] {
  const out = new Map<string, InputSpec>();
  for (const i of [...a.inputs, ...b.inputs]) {
    const prev = out.get(i.name);
    if (prev && (prev.level !== i.level || prev.dtype !== i.dtype)) {
      throw new UserError([
        error(
          'E0303',
          `input \`${i.name}\` is ${prev.dtype}[${prev.level}] on one side and ${i.dtype}[${i.level}] on the other`,
          undefined,
          {
            help: 'inputs are matched by name; rename one of them',
          },
        ),
      ]);
    }
    out.set(i.name, { name: i.name, level: i.level, dtype: i.dtype });
  }
  return [...out.values()];
}

interface Assumptions {
  onPolicy: boolean;
  equalLengths: boolean;
  /** `--assume a == b` between two inputs: b is drawn as a copy of a (and stands for a in proofs). */
  copies: Record<string, string>;
  groupSize?: number;
  /** Compiled boolean conditions over the inputs; each must hold at every valid element. */
  check?: (batch: RaggedBatch) => boolean;
  /**
   * `--assume NAME == EXPR` with EXPR over other inputs (a derived input: `logp ==
   * gather(log_softmax(logits), token_id)`): random batches compute NAME from EXPR.
   */
  derive?: (batch: RaggedBatch) => RaggedBatch;
}

function parseAssumptions(list: readonly string[], inputs: InputSpec[]): Assumptions {
  const out: Assumptions = { onPolicy: false, equalLengths: false, copies: {} };
  const exprs: string[] = [];
  const derived: { name: string; expr: string }[] = [];
  const byName = new Map(inputs.map((i) => [i.name, i]));
  for (const raw of list) {
    const a = raw.trim();
    const gs = /^group_size\s*=\s*(\S+)$/.exec(a);
    const same = /^([A-Za-z_]\w*)\s*==\s*([A-Za-z_]\w*)$/.exec(a);
    const [x, y] = same ? [byName.get(same[1]), byName.get(same[2])] : [];
    // NAME == f(…) or NAME == a number (a constant input, e.g. `ref_logp == 0`: no reference model)
    const derivation = /^([A-Za-z_]\w*)\s*==\s*(.*\(.*|[-+]?\d[\d.]*(?:e[-+]?\d+)?)$/.exec(a);
    if (x && y && x.level === y.level && x.dtype === y.dtype && x.name !== y.name) {
      // an equality of two inputs is a substitution, not a filter random batches would never pass
      out.copies[y.name] = out.copies[x.name] ?? x.name;
    } else if (derivation && byName.has(derivation[1])) {
      // an input equal to a function of the others: computed from them, not filtered for
      derived.push({ name: derivation[1], expr: derivation[2] });
    } else if (a === 'on_policy') out.onPolicy = true;
    else if (a === 'equal_lengths') out.equalLengths = true;
    else if (gs) {
      const k = Number(gs[1]);
      if (!Number.isInteger(k) || k < 1)
        throw new UserError([
          error('E0502', `--assume group_size needs a positive integer, got \`${gs[1]}\``, undefined, {
            help: 'e.g. --assume group_size=4',
          }),
        ]);
      if (out.groupSize !== undefined && out.groupSize !== k)
        throw new UserError([
          error('E0502', `contradictory assumptions group_size=${out.groupSize} and group_size=${k}`, undefined, {
            help: 'these can never both hold',
          }),
        ]);
      out.groupSize = k;
    } else exprs.push(a);
  }
  if (out.onPolicy && !inputs.some((i) => i.name === 'old_logp' && i.level === 'token')) {
    throw new UserError([
      error('E0502', '--assume on_policy needs an `old_logp : token` input on one side', undefined, {
        help: 'on_policy sets old_logp = logp',
      }),
    ]);
  }
  if (exprs.length) out.check = compileConditions(exprs, inputs);
  if (derived.length) out.derive = compileDerivations(derived, inputs);
  return out;
}

/** The declarations of a helper program over the inputs (`--assume` conditions and derivations). */
function inputDecls(inputs: InputSpec[]): string[] {
  return inputs.map((i) => `input ${i.name} : ${showLevel(i.level)} ${i.dtype}`);
}

/**
 * Compiles `--assume NAME == EXPR` derivations into a batch transform: each NAME gets EXPR's value,
 * in order (EXPR must have NAME's level, or be one value for the batch, which every element of NAME
 * takes; a derived input is not itself read by the others).
 */
function compileDerivations(
  derived: { name: string; expr: string }[],
  inputs: InputSpec[],
): (batch: RaggedBatch) => RaggedBatch {
  const source = [
    'objective derive',
    ...inputDecls(inputs),
    'mask mask : token',
    'loss = 0',
    ...derived.map((d, k) => `export derived_${k} = ${d.expr}`),
  ].join('\n');
  const r = compileSource(source, '--assume');
  if (!r.forward || hasErrors(r.diagnostics)) throw new UserError(r.diagnostics.filter((d) => d.severity === 'error'));
  const program = r.forward;
  derived.forEach((d, k) => {
    const level = program.exports.get(`derived_${k}`)!.type.level;
    const want = inputs.find((i) => i.name === d.name)!.level;
    if (level !== want && level !== 'batch')
      throw new UserError([
        error(
          'E0502',
          `--assume ${d.name} == …: the expression is per ${showLevel(level)}, but \`${d.name}\` is per ${showLevel(want)}`,
          undefined,
          {
            help: `derive \`${d.name}\` from an expression at its own level`,
          },
        ),
      ]);
  });
  return (batch) => {
    const out = evaluate(program, batch).exports;
    const tensors = new Map(batch.tensors);
    derived.forEach((d, k) => {
      const input = batch.tensors.get(d.name)!;
      const value = out[`derived_${k}`].data;
      const data = value.length === input.data.length ? value : new Float64Array(input.data.length).fill(value[0]);
      tensors.set(d.name, { ...input, data });
    });
    return { ...batch, tensors };
  };
}

/** Compiles `--assume EXPR` conditions into a check over batches (ill-typed ones are errors). */
function compileConditions(exprs: string[], inputs: InputSpec[]): (batch: RaggedBatch) => boolean {
  const source = [
    'objective assume',
    ...inputDecls(inputs),
    'mask mask : token',
    'loss = 0',
    ...exprs.map((e, k) => `export assume_${k} = where(${e}, 1, 0)`),
  ].join('\n');
  const r = compileSource(source, '--assume');
  if (!r.forward || hasErrors(r.diagnostics)) throw new UserError(r.diagnostics.filter((d) => d.severity === 'error'));
  const program = r.forward;
  return (batch) => {
    const out = evaluate(program, batch);
    return Object.values(out.exports).every(({ level, data }) =>
      data.every((v, i) => v === 1 || (level === 'token' && batch.mask[i] === 0)),
    );
  };
}

function normalForms(
  a: Side,
  b: Side,
  mode: Mode,
  bindings: Omit<Bindings, 'params'>,
  aliases: Record<string, string>,
) {
  const ca = new Canonicalizer({ ...bindings, params: a.params, aliases });
  const cb = new Canonicalizer({ ...bindings, params: b.params, aliases });
  const forms: { label: string; a: Term; b: Term }[] = [];
  if (mode !== 'grad') forms.push({ label: 'loss', a: ca.term(a.program.loss), b: cb.term(b.program.loss) });
  if (mode !== 'value') {
    const names = [...new Set([...a.program.grads.keys(), ...b.program.grads.keys()])];
    for (const name of names) {
      const ga = a.program.grads.get(name);
      const gb = b.program.grads.get(name);
      forms.push({
        label: `grad ${name}`,
        a: ga ? ca.term(ga) : num(0, 'token'),
        b: gb ? cb.term(gb) : num(0, 'token'),
      });
    }
  }
  return forms;
}

/** Largest |x - k·y| relative to the magnitudes, and whether it is within float64 noise. */
function compareArrays(x: ArrayLike<number>, y: ArrayLike<number>, k: number): { rel: number; same: boolean } {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < x.length; i++) {
    const [u, v] = [x[i], k * y[i]];
    if (Number.isNaN(u) || Number.isNaN(v)) {
      if (Number.isNaN(u) !== Number.isNaN(v)) return { rel: Infinity, same: false };
      continue;
    }
    if (!Number.isFinite(u) || !Number.isFinite(v)) {
      if (u !== v) return { rel: Infinity, same: false };
      continue;
    }
    scale = Math.max(scale, Math.abs(u), Math.abs(v));
    diff = Math.max(diff, Math.abs(u - v));
  }
  return { rel: scale > 0 ? diff / scale : diff > 0 ? Infinity : 0, same: diff <= 1e-9 * scale + 1e-12 };
}

function compareResults(ra: EvalResult, rb: EvalResult, mode: Mode, k: number, gradNames: string[], T: number) {
  let rel = 0;
  let same = true;
  const parts: { what: string; rel: number; same: boolean }[] = [];
  if (mode !== 'grad') parts.push({ what: 'loss', ...compareArrays([ra.loss], [rb.loss], k) });
  if (mode !== 'value') {
    for (const name of gradNames) {
      const ga = ra.grads[name]?.data ?? new Float64Array(rb.grads[name]?.data.length ?? T);
      const gb = rb.grads[name]?.data ?? new Float64Array(ga.length);
      parts.push({ what: `grad ${name}`, ...compareArrays(ga, gb, k) });
    }
  }
  for (const p of parts) {
    rel = Math.max(rel, p.rel);
    same &&= p.same;
  }
  return { rel, same, parts };
}

export function equiv(opts: EquivOptions): EquivResult {
  const mode = opts.mode ?? 'value';
  const runs = opts.runs ?? 200;
  const A = side(opts.a, opts.setA);
  const B = side(opts.b, opts.setB);
  const inputs = unionInputs(A.program, B.program);
  const assume = [
    ...new Set([...(opts.assume ?? []), ...requiredAssumptions(A.program), ...requiredAssumptions(B.program)]),
  ];
  const assumptions = parseAssumptions(assume, inputs);
  const clock = { step: opts.step, totalSteps: opts.totalSteps };
  const aliases: Record<string, string> = {
    ...assumptions.copies,
    ...(assumptions.onPolicy ? { old_logp: 'logp' } : {}),
  };

  // 1. symbolic
  const forms = normalForms(A, B, mode, clock, aliases);
  const scales = forms.map((f) => (opts.upToScale ? scaleBetween(f.b, f.a) : f.a.key === f.b.key ? 1 : undefined));
  const proved = scales.every((s) => s !== undefined) && scales.every((s) => s === scales[0]);
  if (proved) {
    const k = scales[0] ?? 1;
    return {
      verdict: 'proved',
      mode,
      runs: 0,
      max_rel_diff: 0,
      scale: k,
      counterexample: null,
      explanation: `the normal forms of ${forms.map((f) => f.label).join(', ')} are identical${k !== 1 ? ` up to the factor ${k} (B = ${k}·A)` : ''} after binding params${
        Object.keys(aliases).length
          ? ` and substituting ${Object.entries(aliases)
              .map(([to, from]) => `${to} = ${from}`)
              .join(', ')}`
          : ''
      }`,
      normalForms: forms,
    };
  }
  const diff = forms.map((f) => ({ f, d: firstDifference(f.a, f.b) })).find((x) => x.d);

  // 2. randomized differential testing
  const gradNames = [...new Set([...A.program.grads.keys(), ...B.program.grads.keys()])];
  const boundaries = [
    ...new Set(
      [A.params, B.params].flatMap((p) => [p.eps_low, p.eps_high].filter((v) => v !== undefined && v > 0 && v < 1)),
    ),
  ].flatMap((e) => [Math.log(1 + e), Math.log(1 - e)]);
  const shape = {
    inputs,
    onPolicy: assumptions.onPolicy,
    equalLengths: assumptions.equalLengths,
    groupSize: assumptions.groupSize,
    boundaries,
    copies: assumptions.copies,
  };
  const arb = assumptions.derive ? arbBatch(shape).map(assumptions.derive) : arbBatch(shape);
  const run = (p: Side, batch: RaggedBatch) => evaluate(p.program, batch, { params: p.params, ...clock });
  const satisfies = (batch: RaggedBatch) => !assumptions.check || assumptions.check(batch);

  let k = 1;
  if (opts.upToScale) {
    // estimate the factor from the batch where A's loss is largest: B ≈ k·A must then hold everywhere
    let best = 0;
    for (const batch of fc.sample(arb, { numRuns: 30, seed: opts.seed ?? 0 })) {
      if (!satisfies(batch)) continue;
      const [la, lb] = [run(A, batch).loss, run(B, batch).loss];
      if (Math.abs(la) > best && Number.isFinite(lb / la)) [best, k] = [Math.abs(la), lb / la];
    }
    if (!(k > 0)) k = 1;
  }

  let maxRel = 0;
  let tested = 0;
  const details = fc.check(
    fc.property(arb, (batch) => {
      fc.pre(satisfies(batch));
      tested++;
      const c = compareResults(run(B, batch), run(A, batch), mode, k, gradNames, batch.numTokens);
      if (c.same) maxRel = Math.max(maxRel, c.rel);
      return c.same;
    }),
    { numRuns: runs, seed: opts.seed, maxSkipsPerRun: 100 },
  );
  if (tested === 0 || (details.failed && details.counterexample === null)) {
    throw new UserError([
      error('E0502', `no random batch satisfied the assumptions (${(opts.assume ?? []).join(', ')})`, undefined, {
        help: 'the assumptions may be unsatisfiable, or hold too rarely for random batches; simplify them',
      }),
    ]);
  }
  if (!details.failed) {
    return {
      verdict: 'no-difference-found',
      mode,
      runs: details.numRuns,
      max_rel_diff: maxRel,
      scale: k,
      counterexample: null,
      explanation:
        `no difference in ${details.numRuns} random batches${opts.upToScale && k !== 1 ? ` with B = ${k.toPrecision(6)}·A` : ''} (largest relative difference ${maxRel.toExponential(2)}); ` +
        `this is evidence, not a proof${diff ? `: the normal forms differ (${diff.f.label}: ${diff.d!.reason})` : ''}`,
      normalForms: forms,
      firstDifference: diff ? { ...diff.d!, label: diff.f.label } : undefined,
    };
  }

  const batch = details.counterexample![0];
  const [ra, rb] = [run(A, batch), run(B, batch)];
  const c = compareResults(rb, ra, mode, k, gradNames, batch.numTokens);
  if (opts.counterexamplePath) writeFileSafely(opts.counterexamplePath, batchToSafetensors(batch), { flag: '--out' });
  const differing = c.parts.filter((p) => !p.same).map((p) => p.what);
  return {
    verdict: 'different',
    mode,
    runs: details.numRuns,
    max_rel_diff: c.rel,
    scale: k,
    counterexample: opts.counterexamplePath ?? null,
    explanation:
      `${differing.join(' and ')} differ on a batch found after ${details.numRuns} random batches and shrunk ${details.numShrinks} times` +
      `: ${describeBatch(batch, ra, rb, gradNames, A.label, B.label)}`,
    normalForms: forms,
    firstDifference: diff ? { ...diff.d!, label: diff.f.label } : undefined,
    losses: { a: ra.loss, b: rb.loss },
  };
}

/**
 * IR → normal-form terms (term.ts), after binding params (and, when given, the training clock) to
 * numbers. Rewrites: constant folding; + − × ÷ and integer powers as polynomials (commutativity,
 * associativity, distribution of constants, cancellation x/x = 1 — proofs assume denominators are
 * nonzero); min/max/and/or/==/!= sorted; > and ≥ flipped to < and ≤; exp(log x) = log(exp x) = x;
 * where with equal branches or a constant condition; sg and broadcasts are the identity on values;
 * constant and coarser-level factors move out of sums (sum is linear).
 */
import { BINARY, UNARY } from '../interp/eval.js';
import type { Node } from '../../core/ir/node.js';
import type { Op, OpArgs, ReduceFn } from '../../core/ir/op.js';
import { isCoarserOrEqual, type Level } from '../../core/types/types.js';
import { app, asMonomials, num, poly, type Factor, type Monomial, type Term } from './term.js';

export interface Bindings {
  readonly params: Readonly<Record<string, number>>;
  readonly step?: number;
  readonly totalSteps?: number;
  /** Inputs that stand for others (on_policy: old_logp → logp). */
  readonly aliases?: Readonly<Record<string, string>>;
}

/** Expanding a product of sums stops at this many monomials (the product is then kept whole). */
const MAX_EXPANSION = 64;

type Rule<K extends Op> = (n: Node<K> & { args: OpArgs[K] }, kids: Term[], b: Bindings) => Term;

export class Canonicalizer {
  private readonly memo = new Map<number, Term>();

  constructor(private readonly bindings: Bindings) {}

  term(n: Node): Term {
    const hit = this.memo.get(n.id);
    if (hit) return hit;
    // iterative post-order so deep gradient graphs do not overflow the stack
    const stack: Node[] = [n];
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (this.memo.has(top.id)) {
        stack.pop();
        continue;
      }
      const pending = top.src.filter((s) => !this.memo.has(s.id));
      if (pending.length) {
        stack.push(...pending);
        continue;
      }
      stack.pop();
      const kids = top.src.map((s) => this.memo.get(s.id)!);
      this.memo.set(top.id, (RULES[top.op] as Rule<Op>)(top, kids, this.bindings));
    }
    return this.memo.get(n.id)!;
  }
}

const spansOf = (n: Node) => (n.span ? [n.span] : []);
const isNum = (t: Term): t is Extract<Term, { kind: 'num' }> => t.kind === 'num';

function add(a: Term, b: Term, level: Level, n: Node, sign = 1): Term {
  return poly([...asMonomials(a), ...asMonomials(b).map((m) => ({ ...m, coef: sign * m.coef }))], level, spansOf(n));
}

function mul(a: Term, b: Term, level: Level, n: Node): Term {
  const ma = asMonomials(a);
  const mb = asMonomials(b);
  if (ma.length * mb.length > MAX_EXPANSION)
    return poly(
      [
        {
          coef: 1,
          factors: [
            { term: a, power: 1 },
            { term: b, power: 1 },
          ],
        },
      ],
      level,
      spansOf(n),
    );
  const out: Monomial[] = [];
  for (const x of ma) for (const y of mb) out.push({ coef: x.coef * y.coef, factors: [...x.factors, ...y.factors] });
  return poly(out, level, spansOf(n));
}

/** a^k for an integer k: exact on monomials, otherwise a factor with a power. */
function power(a: Term, k: number, level: Level, n: Node): Term {
  const ms = asMonomials(a);
  if (ms.length === 1) {
    const [m] = ms;
    return poly(
      [{ coef: Math.pow(m.coef, k), factors: m.factors.map((f) => ({ term: f.term, power: f.power * k })) }],
      level,
      spansOf(n),
    );
  }
  return poly([{ coef: 1, factors: [{ term: a, power: k }] }], level, spansOf(n));
}

const opaqueReduce = (n: Node<'reduce'>, kids: Term[]) =>
  tagged(n, kids, `${n.args.fn}[${n.src[0].type.level}→${n.type.level}]`);

/** Sums are linear (normalised through their summands); the other reductions are opaque applications. */
const REDUCE_CANON: { readonly [K in ReduceFn]: (n: Node<'reduce'>, kids: Term[]) => Term } = {
  sum: (n, kids) => reduceSum(n, kids),
  prod: opaqueReduce,
  max: opaqueReduce,
  min: opaqueReduce,
};

function sorted(kids: Term[]): Term[] {
  return [...kids].sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
}

function binary(n: Node<'binary'>, [a, b]: Term[]): Term {
  const fn = n.args.fn;
  const level = n.type.level;
  if (isNum(a) && isNum(b)) return num(BINARY[fn](a.value, b.value), 'batch', spansOf(n));
  switch (fn) {
    case 'add':
      return add(a, b, level, n);
    case 'sub':
      return add(a, b, level, n, -1);
    case 'mul':
      return mul(a, b, level, n);
    case 'div': {
      const bm = asMonomials(b);
      if (bm.length === 1 && bm[0].coef !== 0) return mul(a, power(b, -1, level, n), level, n);
      return mul(a, poly([{ coef: 1, factors: [{ term: b, power: -1 }] }], level, spansOf(n)), level, n);
    }
    case 'pow':
      if (isNum(b) && Number.isInteger(b.value) && Math.abs(b.value) <= 8) return power(a, b.value, level, n);
      return app('pow', [a, b], level, spansOf(n));
    case 'min':
    case 'max':
    case 'eq':
    case 'ne':
      if (a.key === b.key && (fn === 'min' || fn === 'max')) return a;
      return app(fn, sorted([a, b]), level, spansOf(n));
    case 'gt':
      return app('lt', [b, a], level, spansOf(n));
    case 'ge':
      return app('le', [b, a], level, spansOf(n));
    case 'lt':
    case 'le':
      return app(fn, [a, b], level, spansOf(n));
    case 'and':
    case 'or': {
      const flat = [a, b].flatMap((t) => (t.kind === 'app' && t.op === fn ? t.kids : [t]));
      const unique = [...new Map(flat.map((t) => [t.key, t])).values()];
      return unique.length === 1 ? unique[0] : app(fn, sorted(unique), level, spansOf(n));
    }
  }
}

function unary(n: Node<'unary'>, [x]: Term[]): Term {
  const fn = n.args.fn;
  if (isNum(x)) return num(UNARY[fn](x.value), 'batch', spansOf(n));
  if (fn === 'neg')
    return poly(
      asMonomials(x).map((m) => ({ ...m, coef: -m.coef })),
      n.type.level,
      spansOf(n),
    );
  if (fn === 'exp' && x.kind === 'app' && x.op === 'log') return x.kids[0];
  if (fn === 'log' && x.kind === 'app' && x.op === 'exp') return x.kids[0];
  if (fn === 'not' && x.kind === 'app' && x.op === 'not') return x.kids[0];
  return app(fn, [x], n.type.level, spansOf(n));
}

/** sum is linear: constants and factors at the target level (or coarser) move out of the sum. */
function reduceSum(n: Node<'reduce'>, [x, cond]: Term[]): Term {
  const to = n.type.level;
  const from = n.src[0].type.level;
  const out: Monomial[] = [];
  for (const m of asMonomials(x)) {
    const outer: Factor[] = m.factors.filter((f) => isCoarserOrEqual(f.term.level, to));
    const inner: Factor[] = m.factors.filter((f) => !isCoarserOrEqual(f.term.level, to));
    const body = inner.length ? poly([{ coef: 1, factors: inner }], from, []) : num(1, from);
    const s = app(`sum[${from}→${to}]`, cond ? [body, cond] : [body], to, spansOf(n));
    out.push({ coef: m.coef, factors: [...outer, { term: s, power: 1 }] });
  }
  return poly(out, to, spansOf(n));
}

function tagged(n: Node, kids: Term[], label: string): Term {
  return app(label, kids, n.type.level, spansOf(n));
}

const RULES: { [K in Op]: Rule<K> } = {
  input: (n, _k, b) => app(`input:${b.aliases?.[n.args.name] ?? n.args.name}`, [], n.type.level, spansOf(n)),
  mask: (n) => app('mask', [], 'token', spansOf(n)),
  param: (n, _k, b) => {
    const v = b.params[n.args.name];
    return v === undefined ? app(`param:${n.args.name}`, [], 'batch', spansOf(n)) : num(v, 'batch', spansOf(n));
  },
  clock: (n, _k, b) => {
    const v = n.args.which === 'step' ? b.step : b.totalSteps;
    return v === undefined ? app(n.args.which, [], 'batch', spansOf(n)) : num(v, 'batch', spansOf(n));
  },
  size: (n) => app(`size:${n.args.which}`, [], n.type.level, spansOf(n)),
  const: (n) => num(n.args.value, 'batch', spansOf(n)),
  unary: (n, kids) => unary(n, kids),
  binary: (n, kids) => binary(n, kids),
  cast: (n, [x]) => {
    if (isNum(x)) return num(n.args.to === 'i32' ? Math.trunc(x.value) : x.value, 'batch', spansOf(n));
    // a bool used as a number is where(c, 1, 0)
    if (n.args.to === 'f32' && n.src[0].type.dtype === 'bool')
      return app('where', [x, num(1), num(0)], n.type.level, spansOf(n));
    return tagged(n, [x], `cast:${n.args.to}`);
  },
  where: (n, [c, a, b]) => {
    if (isNum(c)) return c.value ? a : b;
    if (a.key === b.key) return a;
    if (c.kind === 'app' && c.op === 'not') return app('where', [c.kids[0], b, a], n.type.level, spansOf(n));
    return app('where', [c, a, b], n.type.level, spansOf(n));
  },
  clip: (n, [x, lo, hi]) => {
    if (isNum(x) && isNum(lo) && isNum(hi))
      return num(Math.min(Math.max(x.value, lo.value), hi.value), 'batch', spansOf(n));
    return app('clip', [x, lo, hi], n.type.level, spansOf(n));
  },
  sg: (_n, [x]) => x,
  broadcast: (_n, [x]) => x,
  reduce: (n, kids) => REDUCE_CANON[n.args.fn](n, kids),
  keyed_reduce: (n, kids) => tagged(n, kids, `keyed_${n.args.fn}[${n.src[0].type.level}→${n.args.to}]`),
  // a scan of zeros is zero whatever the coefficients
  scan: (n, kids) =>
    isNum(kids[0]) && kids[0].value === 0
      ? num(0, 'token', spansOf(n))
      : tagged(n, kids, n.args.reverse ? 'rscan' : 'scan'),
  cumprod: (n, kids) => tagged(n, kids, n.args.reverse ? 'rcumprod' : 'cumprod'),
  shift: (n, kids) => tagged(n, kids, `${n.args.dir}[fill=${n.args.fill}]`),
  quantile: (n, kids) => tagged(n, kids, `quantile_${n.args.method}[${n.src[0].type.level}→${n.type.level}]`),
  quantile_weight: (n, kids) => tagged(n, kids, `quantile_weight_${n.args.method}[→${n.args.to}]`),
  rank: (n, kids) => tagged(n, kids, `rank[→${n.args.to}]`),
  sum_before: (n, kids) => tagged(n, kids, `sum_before[→${n.args.to}]`),
  prefix_id: (n, kids) => tagged(n, kids, 'prefix_id'),
};

/**
 * Optimized IR for the device back end: rewrites of the values over the vocabulary rows that cut
 * passes over the row and per-entry work, each a rule of `rewrite` (applied sources first):
 *
 * 1. exp(x − M) at the row's entries, M the row maximum a log-sum-exp shifts by, outside that
 *    log-sum-exp's own sum (its gradient: ∂ log Σ exp(x − M) / ∂x), is p · Σ exp(x − M) with p =
 *    exp(x − lse) the softmax the program computes anyway: one exp per entry instead of two
 *    (Σ exp(x − M) lies in [1, V], so nothing overflows; an all −inf row gives 0 · 1 = 0).
 *
 * 2. Every sum over a token's vocabulary row is split along its linear structure, coarser factors
 *    taken out,
 *
 *   Σ_v (a_t · x_tv + b_tv) = a_t · Σ_v x_tv + Σ_v b_tv,   Σ_v where(c_tv, y_tv, 0) likewise,
 *
 * so each remaining sum reads only what its own terms need. Two passes over the row disappear in a
 * log-prob objective: the gathered log-prob Σ_v [v = id]·(z_v − lse) becomes Σ_v [v = id]·z_v −
 * lse·Σ_v [v = id], whose sums need no log-sum-exp and share the row's first pass; and the
 * backward sums (the gradient reaching log-sum-exp, Σ_v g_tv with g a token's upstream gradient
 * times the forward row values) become token arithmetic on sums the forward passes take, so the
 * gradient w.r.t. the logits is written by the pass after the forward ones. Sums with a `where`
 * condition and every other reduction stay as they are.
 *
 * 3. Divisions of values over a row by a coarser value (a temperature) become multiplications by
 *    its reciprocal, computed once per token.
 *
 * They reassociate float arithmetic (well within the float32 tolerance the device is held to); the
 * interpreter, which defines the semantics, never sees them.
 */
import { IrBuilder } from '../../core/ir/build.js';
import { topoSort, type Node } from '../../core/ir/node.js';
import { outputNodes, type Program } from '../../core/ir/program.js';

/** A term of a linear combination: coefficient (a coarser value; null = 1) times a value over the row. */
interface Term {
  readonly coef: Node | null;
  readonly term: Node;
}

const coarse = (n: Node) => n.type.level !== 'vocab' || (n.op === 'broadcast' && n.src[0].type.level !== 'vocab');
const strip = (n: Node) => (n.op === 'broadcast' ? n.src[0] : n);
const isZero = (n: Node) => {
  const s = strip(n);
  return s.op === 'const' && (s.args as { value: number }).value === 0;
};

/** The program with `rule` applied to every node its outputs need, sources first (rule(n, src): n's replacement, or null). */
function rewrite(program: Program, rule: (n: Node, src: readonly Node[]) => Node | null): Program {
  const memo = new Map<number, Node>();
  const visit = (n: Node): Node => {
    // sources first, without recursion (deep graphs)
    const stack: Node[] = [n];
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (memo.has(top.id)) {
        stack.pop();
        continue;
      }
      const pending = top.src.filter((s) => !memo.has(s.id));
      if (pending.length) {
        stack.push(...pending);
        continue;
      }
      stack.pop();
      const src = top.src.map((s) => memo.get(s.id)!);
      const same = src.every((s, i) => s === top.src[i]);
      memo.set(top.id, rule(top, src) ?? (same ? top : program.graph.node(top.op, top.type, src, top.args, top.span)));
    }
    return memo.get(n.id)!;
  };
  const map = (m: ReadonlyMap<string, Node>) => new Map([...m].map(([k, v]) => [k, visit(v)] as const));
  return {
    ...program,
    loss: visit(program.loss),
    metrics: map(program.metrics),
    exports: map(program.exports),
    grads: map(program.grads),
  };
}

export function optimizeRows(program: Program): Program {
  return factorSums(expThroughSoftmax(program));
}

const fnOf = (n: Node) => (n.args as { fn?: string }).fn;

function isConst(n: Node, value: number): boolean {
  const c = strip(n);
  return c.op === 'const' && Object.is((c.args as { value: number }).value, value);
}

/**
 * The row maximum M a log-sum-exp shifts x by, if `e` is exp(x − M) with M = where(m > −inf, m, 0)
 * and m = max(x) over the row (stop-gradient or not: front/vocab.ts logSumExp); else null.
 */
export function maxShift(e: Node): { x: Node; shift: Node; max: Node } | null {
  if (e.op !== 'unary' || fnOf(e) !== 'exp' || e.type.level !== 'vocab') return null;
  const d = e.src[0];
  if (d.op !== 'binary' || fnOf(d) !== 'sub' || d.src[1].op !== 'broadcast') return null;
  const [x, w] = [d.src[0], d.src[1].src[0]];
  if (w.op !== 'where' || !isConst(w.src[2], 0)) return null;
  const [cond, a] = w.src;
  if (cond.op !== 'binary' || fnOf(cond) !== 'gt' || cond.src[0] !== a || !isConst(cond.src[1], -Infinity)) return null;
  const m = a.op === 'sg' ? a.src[0] : a;
  if (m.op !== 'reduce' || fnOf(m) !== 'max' || m.src.length !== 1 || m.src[0] !== x) return null;
  return { x, shift: w, max: m };
}

/** Rewrite 1 of the header: exp(x − M) outside its own sum, as softmax · Σ exp(x − M). */
function expThroughSoftmax(program: Program): Program {
  const b = new IrBuilder(program.graph);
  const existing = program.graph.size;
  /** exp(x − M) node id → its own sum and its replacement elsewhere. */
  const through = new Map<number, { sum: Node; by: Node }>();
  for (const n of topoSort(outputNodes(program))) {
    const hit = maxShift(n);
    if (!hit) continue;
    // the same construction as front/vocab.ts logSumExp (hash-consed: the program's own nodes)
    const total = b.reduce('sum', n, 'token');
    const positive = b.binary('gt', total, b.constant(0));
    const lse = b.where(
      positive,
      b.add(hit.shift, b.unary('log', b.where(positive, total, b.constant(1)))),
      b.constant(0),
    );
    const p = b.unary('exp', b.sub(hit.x, b.broadcast(lse, 'vocab')));
    // only where the program computes that softmax anyway (else this adds an exp, not removes one)
    if (p.id >= existing || total.id >= existing) continue;
    through.set(n.id, { sum: total, by: b.mul(p, b.broadcast(total, 'vocab')) });
  }
  if (!through.size) return program;
  const swap = (user: Node) => (s: Node) => {
    const t = through.get(s.id);
    return t && t.sum !== user ? t.by : s;
  };
  return rewrite(program, (n, src) => {
    const next = src.map(swap(n));
    return next.every((s, i) => s === src[i]) ? null : program.graph.node(n.op, n.type, next, n.args, n.span);
  });
}

/** Rewrites 2 and 3 of the header: sums over a row split along their linear structure; quotients by coarser values as products. */
function factorSums(program: Program): Program {
  const b = new IrBuilder(program.graph);

  const scale = (terms: Term[], k: Node): Term[] =>
    terms.map((t) => ({ coef: t.coef ? b.mul(t.coef, k) : k, term: t.term }));
  const negate = (terms: Term[]): Term[] =>
    terms.map((t) => ({ coef: t.coef ? b.unary('neg', t.coef) : b.constant(-1), term: t.term }));

  /** E (over the row, f32) as Σ coef · term. */
  const linear = (e: Node): Term[] => {
    if (e.type.dtype !== 'f32') return [{ coef: null, term: e }];
    if (coarse(e)) return [{ coef: strip(e), term: b.broadcast(b.constant(1), 'vocab') }];
    const [x, y, z] = e.src;
    if (e.op === 'unary' && (e.args as { fn: string }).fn === 'neg') return negate(linear(x));
    if (e.op === 'binary') {
      switch ((e.args as { fn: string }).fn) {
        case 'add':
          return [...linear(x), ...linear(y)];
        case 'sub':
          return [...linear(x), ...negate(linear(y))];
        case 'mul':
          if (coarse(x)) return scale(linear(y), strip(x));
          if (coarse(y)) return scale(linear(x), strip(y));
          break;
        case 'div':
          if (coarse(y)) return scale(linear(x), b.div(b.constant(1), strip(y)));
          break;
      }
    }
    if (e.op === 'where' && y.type.dtype === 'f32' && z.type.dtype === 'f32') {
      const zero = b.broadcast(b.constant(0), 'vocab');
      if (isZero(z)) return linear(y).map((t) => ({ coef: t.coef, term: b.where(x, t.term, zero) }));
      if (isZero(y)) return linear(z).map((t) => ({ coef: t.coef, term: b.where(x, zero, t.term) }));
    }
    return [{ coef: null, term: e }];
  };

  const factored = (sum: Node, e: Node): Node | null => {
    const terms = linear(e);
    if (terms.length === 1 && terms[0].coef === null && terms[0].term === e) return null;
    let total: Node | null = null;
    for (const t of terms) {
      const r = b.reduce('sum', t.term, 'token', undefined, sum.span);
      const v = t.coef ? b.mul(t.coef, r, sum.span) : r;
      total = total ? b.add(total, v, sum.span) : v;
    }
    return total!;
  };

  /** x / c over a row with c coarser (a temperature): x · (1/c), a division per token instead of per entry. */
  const rowQuotient = (n: Node, src: readonly Node[]): Node | null =>
    n.op === 'binary' && (n.args as { fn: string }).fn === 'div' && n.type.level === 'vocab' && coarse(src[1])
      ? b.mul(src[0], b.div(b.constant(1), strip(src[1])), n.span)
      : null;

  return rewrite(program, (n, src) => {
    const rowSum = n.op === 'reduce' && fnOf(n) === 'sum' && n.src.length === 1 && n.src[0].type.level === 'vocab';
    return rowSum ? factored(n, src[0]) : rowQuotient(n, src);
  });
}

/**
 * Optimized IR for the device back end: rewrites of the values over the vocabulary rows that cut
 * passes over the row and per-entry work, each a rule of `rewrite` (applied sources first):
 *
 * 1. The softmax p = exp(x − lse) is exp(x − M) / Σ exp(x − M), M the row maximum the log-sum-exp
 *    shifts by: one exp per entry for p and for the gradient of the log-sum-exp (which is
 *    exp(x − M) / Σ), and sums over p become sums over exp(x − M) times a token factor, which the
 *    row's first pass takes along with the maximum (online: plan/fuse-rows.ts). Σ exp(x − M) lies
 *    in [1, V] where the row has a finite entry, so nothing overflows; an all −inf row gives 0.
 *
 * 2. Every sum over a token's vocabulary row is split along its linear structure, coarser factors
 *    taken out and products of sums distributed,
 *
 *   Σ_v (a_t · x_tv + b_tv) = a_t · Σ_v x_tv + Σ_v b_tv,   Σ_v where(c_tv, y_tv, 0) likewise,
 *
 *    so each remaining sum reads only what its own terms need: the gathered log-prob
 *    Σ_v [v = id]·(z_v − lse) becomes Σ_v [v = id]·z_v − lse·Σ_v [v = id], sums that need no
 *    log-sum-exp; the entropy Σ p·(z − lse) becomes (Σ exp(z − M)·z − lse·Σ exp(z − M)) / Σ; the
 *    backward sums (the gradient reaching the log-sum-exp, Σ_v g_tv with g a token's upstream
 *    gradient times row values) become token arithmetic on those same sums. A log-prob objective
 *    with an entropy term then takes one pass over the row, then the gradient pass. Sums with a
 *    `where` condition and every other reduction stay as they are.
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
const isOne = (n: Node) => {
  const s = strip(n);
  return s.op === 'const' && (s.args as { value: number }).value === 1;
};
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
  return factorSums(softmaxThroughMax(program));
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

/**
 * Rewrite 1 of the header: the softmax p = exp(x − lse) as exp(x − M) · (1 / Σ exp(x − M)), so that
 * every use of either shares one exp and sums over p take 1/Σ out (rewrite 2); and, where p meets
 * its own positivity (`plogq`: p · where(p > 0, x − lse, 0), and where(p > 0, p, 0)), the test on p
 * becomes one on x (> −inf), which the row's first pass can evaluate: the same value, since a term
 * whose p underflows is 0 both ways (x − lse is finite where x is).
 */
function softmaxThroughMax(program: Program): Program {
  const b = new IrBuilder(program.graph);
  const existing = program.graph.size;
  /** p's id → its replacement, and the pieces the positivity rules need. */
  const soft = new Map<number, { by: Node; ls: Node; x: Node }>();
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
    const ls = b.sub(hit.x, b.broadcast(lse, 'vocab'));
    const p = b.unary('exp', ls);
    // only where the program computes that softmax
    if (p.id >= existing || total.id >= existing) continue;
    const inverse = b.div(b.constant(1), b.where(positive, total, b.constant(1)));
    soft.set(p.id, { by: b.mul(n, b.broadcast(inverse, 'vocab')), ls, x: hit.x });
  }
  if (!soft.size) return program;
  const zero = (n: Node) => isConst(n, 0);
  /** The softmax whose positivity `c` tests (gt(p, 0)), if it is one. */
  const positivityOf = (c: Node) =>
    c.op === 'binary' && fnOf(c) === 'gt' && zero(c.src[1]) ? soft.get(c.src[0].id) : undefined;
  return rewrite(program, (n, src) => {
    const p = soft.get(n.id);
    if (p) return p.by;
    // where(p > 0, p, 0) = p
    if (n.op === 'where' && zero(n.src[2]) && positivityOf(n.src[0]) && n.src[1] === n.src[0].src[0]) return src[1];
    // p · where(p > 0, x − lse, 0) = p · where(x > −inf, x − lse, 0)
    if (n.op === 'binary' && fnOf(n) === 'mul') {
      for (const [i, j] of [
        [0, 1],
        [1, 0],
      ]) {
        const [q, w] = [n.src[i], n.src[j]];
        const s = soft.get(q.id);
        if (!s || w.op !== 'where' || !zero(w.src[2]) || positivityOf(w.src[0]) !== s || w.src[1] !== s.ls) continue;
        const finite = b.binary('gt', s.x, b.broadcast(b.constant(-Infinity), 'vocab'));
        return b.mul(src[i], b.where(finite, s.ls, b.broadcast(b.constant(0), 'vocab')), n.span);
      }
    }
    return null;
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
        case 'mul': {
          if (coarse(x)) return scale(linear(y), strip(x));
          if (coarse(y)) return scale(linear(x), strip(y));
          // (Σ a_i u_i)(Σ b_j v_j) = Σ a_i b_j (u_i v_j), when it splits something (a few terms at most)
          const [lx, ly] = [linear(x), linear(y)];
          const trivial = (l: Term[]) => l.length === 1 && l[0].coef === null;
          if ((trivial(lx) && trivial(ly)) || lx.length * ly.length > 8) break;
          return lx.flatMap((u) =>
            ly.map((v) => ({
              coef: u.coef && v.coef ? b.mul(u.coef, v.coef) : (u.coef ?? v.coef),
              term: isOne(u.term) ? v.term : isOne(v.term) ? u.term : product(u.term, v.term),
            })),
          );
        }
        case 'div':
          if (coarse(y)) return scale(linear(x), b.div(b.constant(1), strip(y)));
          break;
      }
    }
    if (e.op === 'where' && y.type.dtype === 'f32' && z.type.dtype === 'f32') {
      const zero = b.broadcast(b.constant(0), 'vocab');
      if (isZero(z))
        return linear(y).map((t) => ({ coef: t.coef, term: positiveTerm(x, t.term) ?? b.where(x, t.term, zero) }));
      if (isZero(y)) return linear(z).map((t) => ({ coef: t.coef, term: b.where(x, zero, t.term) }));
    }
    return [{ coef: null, term: e }];
  };

  /**
   * where(p > 0, t, 0) for a term t = exp(x − M) · a, p = exp(x − M) · (1/Σ) (rewrite 1): the test
   * on x (> −inf) instead, moved inside as exp(x − M) · where(x > −inf, a, 0) — the same value,
   * since both are 0 wherever exp(x − M) is, when a is finite wherever x is (a constant, x itself,
   * or the logits x is a multiple of). The first pass can then take the sum (online). null when
   * `cond` and `t` are not of that form.
   */
  const positiveTerm = (cond: Node, t: Node): Node | null => {
    if (cond.op !== 'binary' || fnOf(cond) !== 'gt' || !isZero(cond.src[1])) return null;
    const p = cond.src[0];
    if (p.op !== 'binary' || fnOf(p) !== 'mul' || !coarse(p.src[1])) return null;
    const e = p.src[0];
    const hit = maxShift(e);
    if (!hit) return null;
    const rest =
      t === e
        ? null
        : t.op === 'binary' && fnOf(t) === 'mul'
          ? t.src[0] === e
            ? t.src[1]
            : t.src[1] === e
              ? t.src[0]
              : undefined
          : undefined;
    if (rest === undefined) return null;
    if (rest === null) return e; // where(x > −inf, exp(x − M), 0) is exp(x − M)
    const source = hit.x.op === 'binary' && fnOf(hit.x) === 'mul' && coarse(hit.x.src[1]) ? hit.x.src[0] : hit.x;
    const finiteWithX = isOne(rest) || rest === hit.x || rest === source;
    if (!finiteWithX) return null;
    const finite = b.binary('gt', hit.x, b.broadcast(b.constant(-Infinity), 'vocab'));
    return b.mul(e, b.where(finite, rest, b.broadcast(b.constant(0), 'vocab')));
  };

  /** u · v, with where(p > 0, a, 0) · exp(x − M) (either order) as positiveTerm makes it. */
  const product = (u: Node, v: Node): Node => {
    for (const [w, f] of [
      [u, v],
      [v, u],
    ]) {
      if (w.op !== 'where' || !isZero(w.src[2])) continue;
      const hit = positiveTerm(w.src[0], b.mul(f, w.src[1]));
      if (hit) return hit;
    }
    return b.mul(u, v);
  };

  const factored = (sum: Node, e: Node): Node | null => {
    const terms = linear(e);
    if (terms.length === 1 && terms[0].coef === null && terms[0].term === e) return null;
    let total: Node | null = null;
    for (const t of terms) {
      const r = b.reduce('sum', t.term, sum.type.level, undefined, sum.span); // 'token': the IR reduces rows no further
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
    // only a row's sum to its own token: `factored` rebuilds it as sums to the token, so a sum from the
    // vocabulary straight to a coarser level (which the IR no longer builds: IrBuilder.reduce) must
    // not come here — it would be replaced by a token value under seq-level users, an ill-typed graph
    // (codegen's `no index for level token`)
    const rowSum =
      n.op === 'reduce' &&
      fnOf(n) === 'sum' &&
      n.src.length === 1 &&
      n.src[0].type.level === 'vocab' &&
      n.type.level === 'token';
    return rowSum ? factored(n, src[0]) : rowQuotient(n, src);
  });
}

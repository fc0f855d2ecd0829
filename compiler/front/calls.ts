/**
 * Lowering of built-in function calls: elementwise math, reductions (`per LEVEL where COND`),
 * scans within a sequence, order statistics and schedules. Derived reductions (mean, var, std,
 * logsumexp) expand into primitive IR here, with their empty-set values built in (sum 0, mean 0,
 * count 0, var/std 0, max/min/logsumexp 0).
 */
import { error } from '../../core/diagnostics/diagnostic.js';
import { closest } from '../../core/diagnostics/suggest.js';
import type { Node } from '../../core/ir/node.js';
import type { Span } from '../../core/source/source-file.js';
import { isLevel, LEVELS, levelRank, type Level } from '../../core/types/types.js';
import type { Expr } from './ast.js';
import {
  KEYED_REDUCTIONS,
  OTHER_FUNCTIONS,
  QUANTILES,
  REDUCTIONS,
  SCANS,
  SCHEDULES,
  UNARY_FUNCTIONS,
  VOCAB_FUNCTIONS,
  type Reduction,
} from './builtins.js';
import type { Env, Lowering } from './context.js';
import { logSumExp, lowerVocabCall, requireNotVocab } from './vocab.js';

type Call = Extract<Expr, { kind: 'call' }>;

/** Functions that accept `per LEVEL` and `where COND`. */
const SEGMENTED = new Set<string>([...REDUCTIONS, ...Object.keys(QUANTILES), 'rank', 'top_k', 'top_p']);

export function lowerBuiltinCall(c: Lowering, e: Call, env: Env): Node | null {
  const name = e.callee.text;
  const isMinMaxElementwise = (name === 'min' || name === 'max') && e.args.length === 2 && !e.per && !e.where;
  if (!SEGMENTED.has(name) || isMinMaxElementwise) {
    if (e.per || e.where) {
      return c.report(
        error('E0105', `\`${name}\` takes no \`per\` or \`where\``, (e.per ?? e.where)!.span, {
          label: 'only reductions, quantiles and ranks have these',
          help:
            name === 'min' || name === 'max'
              ? `\`${name}(a, b)\` is elementwise; \`${name}(x per seq)\` reduces`
              : undefined,
        }),
      );
    }
  }
  if (e.by && !KEYED_REDUCTIONS.includes(name)) {
    return c.report(
      error('E0105', `\`${name}\` takes no \`by\` key`, e.by.span, {
        label: 'not supported here',
        help: `keyed reductions are ${KEYED_REDUCTIONS.join(', ')}`,
      }),
    );
  }
  if (isMinMaxElementwise) return elementwise(c, e, env, name === 'min' ? 'min' : 'max');
  if (name in UNARY_FUNCTIONS) {
    const [x] = args(c, e, env, 1) ?? [];
    if (!x || !c.requireNumber(x, e.args[0].span, `\`${name}\``)) return null;
    return c.b.unary(UNARY_FUNCTIONS[name], x, e.span);
  }
  if ((REDUCTIONS as readonly string[]).includes(name)) return reduction(c, e, env, name as Reduction);
  if (name in VOCAB_FUNCTIONS) return lowerVocabCall(c, e, env);
  if (name in QUANTILES) return quantile(c, e, env);
  if (name in SCANS) return scan(c, e, env);
  if (name in SCHEDULES) return schedule(c, e, env);
  switch (name as keyof typeof OTHER_FUNCTIONS) {
    case 'pow':
      return elementwise(c, e, env, 'pow');
    case 'clip': {
      const xs = args(c, e, env, 3);
      if (!xs || !xs.every((x, i) => c.requireNumber(x, e.args[i].span, '`clip`'))) return null;
      return c.b.clip(xs[0], xs[1], xs[2], e.span);
    }
    case 'where': {
      const xs = args(c, e, env, 3);
      if (!xs || !c.requireBool(xs[0], e.args[0].span, 'the condition of `where`')) return null;
      if ((xs[1].type.dtype === 'bool') !== (xs[2].type.dtype === 'bool')) {
        const i = xs[1].type.dtype === 'bool' ? 1 : 2;
        return c.report(
          error('E0301', '`where` has a bool branch and a number branch', e.args[i].span, {
            label: 'this branch is a bool',
            help: 'make both branches numbers, e.g. `f32(cond)`',
          }),
        );
      }
      return c.b.where(xs[0], xs[1], xs[2], e.span);
    }
    case 'sg': {
      const xs = args(c, e, env, 1);
      return xs && c.b.sg(xs[0], e.span);
    }
    case 'f32':
    case 'i32': {
      const xs = args(c, e, env, 1);
      return xs && c.b.cast(xs[0], name as 'f32' | 'i32', e.span);
    }
    case 'rank':
    case 'top_k':
      return rank(c, e, env);
    case 'top_p':
      return topP(c, e, env);
    case 'prefix_id': {
      const xs = args(c, e, env, 1);
      if (!xs || !c.requireNumber(xs[0], e.args[0].span, '`prefix_id`')) return null;
      if (!requireNotVocab(c, xs[0], e.args[0].span, '`prefix_id`')) return null;
      return c.b.prefixId(xs[0], e.span);
    }
  }
  return c.unknown(e.callee, env, true);
}

/** Lowers exactly `n` arguments (or reports the arity). */
function args(c: Lowering, e: Call, env: Env, n: number, what = `\`${e.callee.text}\``): Node[] | null {
  if (e.args.length !== n) {
    return c.report(
      error('E0105', `${what} takes ${n} argument${n === 1 ? '' : 's'}, got ${e.args.length}`, e.span, {
        label: 'wrong number of arguments',
      }),
    );
  }
  const xs = e.args.map((a) => c.expr(a, env));
  return xs.every((x) => x !== null) ? (xs as Node[]) : null;
}

function elementwise(c: Lowering, e: Call, env: Env, fn: 'min' | 'max' | 'pow'): Node | null {
  const xs = args(c, e, env, 2);
  if (!xs || !xs.every((x, i) => c.requireNumber(x, e.args[i].span, `\`${e.callee.text}\``))) return null;
  return c.b.binary(fn, xs[0], xs[1], e.span);
}

/** The `per LEVEL` target (batch by default), checked against the source level. */
function target(c: Lowering, e: Call, x: Node): Level | null {
  let to: Level = 'batch';
  if (e.per) {
    if (!isLevel(e.per.text)) {
      const s = closest(e.per.text, LEVELS);
      return c.report(
        error('E0202', `\`${e.per.text}\` is not a level`, e.per.span, {
          label: 'expected seq, group or batch',
          help: s ? `did you mean \`per ${s}\`?` : undefined,
        }),
      );
    }
    to = e.per.text;
  }
  if (x.type.level === 'vocab' && to !== 'token') {
    // a vocabulary row is one token's: reducing it with the tokens of a sequence at once has no kernel and no use
    return c.report(
      error(
        'E0203',
        `\`${e.callee.text}\` of a token x vocab value reduces over the vocabulary, to token`,
        e.per?.span ?? e.span,
        {
          label: e.per ? `per ${to}` : `reduces to ${to}`,
          secondary: [{ span: e.args[0].span, message: 'this is per token x vocab' }],
          help: `write \`${e.callee.text}(… per token)\`, then reduce the token values: \`mean(${e.callee.text}(… per token))\``,
        },
      ),
    );
  }
  if (levelRank(to) <= levelRank(x.type.level)) {
    const span = e.per?.span ?? e.span;
    return c.report(
      error(
        'E0201',
        `\`${e.callee.text}\` reduces to ${to}, which is not coarser than its ${x.type.level}-level argument`,
        span,
        {
          label:
            levelRank(to) < levelRank(x.type.level)
              ? `${to} is finer than ${x.type.level}`
              : `already one value per ${to}`,
          secondary: [{ span: e.args[0].span, message: `this is per ${x.type.level}` }],
          help:
            levelRank(to) < levelRank(x.type.level)
              ? `a ${x.type.level}-level value is broadcast to ${to} automatically; drop the reduction`
              : x.type.level === 'batch'
                ? 'this is already one value for the whole batch; drop the reduction'
                : `reduce to a coarser level, e.g. \`per ${LEVELS[levelRank(x.type.level) + 1]}\`, or drop the reduction`,
        },
      ),
    );
  }
  return to;
}

/** The `where` filter, which must not be finer than the reduced value. */
function filter(c: Lowering, e: Call, env: Env, x: Node): Node | null | undefined {
  if (!e.where) return undefined;
  const f = c.expr(e.where, env);
  if (!f || !c.requireBool(f, e.where.span, 'the `where` filter')) return null;
  if (levelRank(f.type.level) < levelRank(x.type.level)) {
    return c.report(
      error(
        'E0202',
        `the filter is per ${f.type.level}, finer than the ${x.type.level}-level values it selects`,
        e.where.span,
        {
          label: `per ${f.type.level}`,
          help: `reduce the filter to ${x.type.level} first, or reduce a ${f.type.level}-level value`,
        },
      ),
    );
  }
  return f;
}

function reduction(c: Lowering, e: Call, env: Env, fn: Reduction): Node | null {
  if (e.args.length !== 1) {
    return c.report(
      error('E0105', `\`${fn}\` takes one argument, got ${e.args.length}`, e.span, {
        label: 'wrong number of arguments',
        help:
          fn === 'min' || fn === 'max'
            ? `\`${fn}(a, b)\` is elementwise; \`${fn}(x per seq)\` reduces one value`
            : `write \`${fn}(x per seq)\``,
      }),
    );
  }
  const x0 = c.expr(e.args[0], env);
  if (!x0) return null;
  if (fn === 'count') {
    if (!c.requireBool(x0, e.args[0].span, '`count`')) return null;
  } else if (x0.type.dtype === 'bool' && fn !== 'sum' && fn !== 'mean') {
    c.requireNumber(x0, e.args[0].span, `\`${fn}\``);
    return null;
  }
  if (e.by) return keyed(c, e, env, fn, x0);
  const to = target(c, e, x0);
  const cond = filter(c, e, env, x0);
  if (!to || cond === null) return null;
  const b = c.b;
  const s = e.span;
  const x = x0.type.dtype === 'bool' ? b.cast(x0, 'f32', s) : x0;
  const one = b.broadcast(b.constant(1, 'f32', s), x.type.level, s);
  const n = () => b.reduce('sum', one, to, cond, s);
  const sum = (v: Node) => b.reduce('sum', v, to, cond, s);
  const mean = () => b.div(sum(x), b.binary('max', n(), b.constant(1), s), s);
  // Nonlinear work runs only on selected elements: an excluded element (filtered out or masked)
  // that is ±inf or overflows would otherwise turn the gradient of the selected ones into NaN.
  const selected = x.type.level === 'token' ? (cond ? b.binary('and', cond, maskNode(c), s) : maskNode(c)) : cond;
  const only = (v: Node) => (selected ? b.where(selected, v, b.constant(0), s) : v);
  const sqDev = () => {
    const d = only(b.sub(x, b.broadcast(mean(), x.type.level, s), s));
    return sum(b.mul(d, d, s));
  };
  const safeSqrt = (v: Node) => {
    // sqrt at 0 has an infinite derivative; route the 0 case around it so gradients stay finite.
    const pos = b.binary('gt', v, b.constant(0), s);
    return b.where(pos, b.unary('sqrt', b.where(pos, v, b.constant(1), s), s), b.constant(0), s);
  };
  switch (fn) {
    case 'sum':
      return sum(x);
    case 'count':
      return b.reduce('sum', b.cast(x0, 'f32', s), to, cond, s);
    case 'mean':
      return mean();
    case 'max':
    case 'min':
    case 'prod':
      return b.reduce(fn, x, to, cond, s);
    case 'var_pop':
      return b.div(sqDev(), b.binary('max', n(), b.constant(1), s), s);
    case 'var_unbiased':
      return b.div(sqDev(), b.binary('max', b.sub(n(), b.constant(1), s), b.constant(1), s), s);
    case 'std_pop':
      return safeSqrt(b.div(sqDev(), b.binary('max', n(), b.constant(1), s), s));
    case 'std_unbiased':
      return safeSqrt(b.div(sqDev(), b.binary('max', b.sub(n(), b.constant(1), s), b.constant(1), s), s));
    case 'logsumexp':
      return logSumExp(b, x, to, cond, only, s).value;
  }
}

/** `f(x per LEVEL by KEY where COND)`: each element gets the reduction over its key's bucket. */
function keyed(c: Lowering, e: Call, env: Env, fn: Reduction, value: Node): Node | null {
  const key = c.expr(e.by!, env);
  if (!key || !c.requireNumber(key, e.by!.span, 'the key of `by`')) return null;
  if (!requireNotVocab(c, value, e.args[0].span, 'a keyed reduction') || !requireNotVocab(c, key, e.by!.span, 'a key'))
    return null;
  const b = c.b;
  // the elements are at the finer of the value's and the key's level (a seq reward keyed by a token prefix)
  const level = levelRank(key.type.level) < levelRank(value.type.level) ? key.type.level : value.type.level;
  const x = b.broadcast(value.type.dtype === 'bool' ? b.cast(value, 'f32', e.span) : value, level);
  const to = target(c, e, x);
  const cond = filter(c, e, env, x);
  if (!to || cond === null) return null;
  const s = e.span;
  const count = () => b.keyedReduce('sum', b.broadcast(b.constant(1), x.type.level, s), key, to, cond, s);
  switch (fn) {
    case 'sum':
    case 'max':
    case 'min':
      return b.keyedReduce(fn, x, key, to, cond, s);
    case 'count':
      return b.keyedReduce('sum', x, key, to, cond, s);
    default: // mean (the only other keyed reduction)
      return b.div(b.keyedReduce('sum', x, key, to, cond, s), b.binary('max', count(), b.constant(1), s), s);
  }
}

function maskNode(c: Lowering): Node {
  return c.b.graph.node('mask', { dtype: 'bool', level: 'token' }, [], {});
}

function quantile(c: Lowering, e: Call, env: Env): Node | null {
  const xs = args(c, e, env, 2, `\`${e.callee.text}\` (value, q)`);
  if (!xs) return null;
  const [x, q] = xs;
  if (
    !c.requireNumber(x, e.args[0].span, `\`${e.callee.text}\``) ||
    !c.requireNumber(q, e.args[1].span, `\`${e.callee.text}\``)
  )
    return null;
  if (!batchScalar(c, q, e.args[1].span, 'the quantile level q')) return null;
  const to = target(c, e, x);
  const cond = filter(c, e, env, x);
  if (!to || cond === null) return null;
  return c.b.quantile(x, q, to, QUANTILES[e.callee.text], cond, e.span);
}

function rank(c: Lowering, e: Call, env: Env): Node | null {
  const isTopK = e.callee.text === 'top_k';
  const xs = args(c, e, env, isTopK ? 2 : 1);
  if (!xs) return null;
  const x = xs[0];
  if (!c.requireNumber(x, e.args[0].span, `\`${e.callee.text}\``)) return null;
  const to = target(c, e, x);
  const cond = filter(c, e, env, x);
  if (!to || cond === null) return null;
  const r = c.b.rank(x, to, cond, e.span);
  if (!isTopK) return r;
  const k = xs[1];
  if (!c.requireNumber(k, e.args[1].span, '`top_k`') || !batchScalar(c, k, e.args[1].span, 'k')) return null;
  const selected = c.b.binary('lt', r, k, e.span);
  return cond ? c.b.binary('and', selected, cond, e.span) : selected;
}

/**
 * `top_p(p, q per LEVEL where COND)`: the nucleus of each segment — the members whose larger
 * members (ties by position, as `rank`) sum to less than q, so the member that crosses q is kept.
 */
function topP(c: Lowering, e: Call, env: Env): Node | null {
  const xs = args(c, e, env, 2);
  if (!xs) return null;
  const [p, q] = xs;
  if (!c.requireNumber(p, e.args[0].span, '`top_p`') || !c.requireNumber(q, e.args[1].span, '`top_p`')) return null;
  if (!batchScalar(c, q, e.args[1].span, 'the mass q of `top_p`')) return null;
  const to = target(c, e, p);
  const cond = filter(c, e, env, p);
  if (!to || cond === null) return null;
  const selected = c.b.binary('lt', c.b.sumBefore(p, to, cond, e.span), q, e.span);
  return cond ? c.b.binary('and', selected, cond, e.span) : selected;
}

function batchScalar(c: Lowering, x: Node, span: Span, what: string): boolean {
  if (x.type.level === 'batch') return true;
  c.report(
    error('E0202', `${what} must be one number for the whole batch, but this is per ${x.type.level}`, span, {
      label: `per ${x.type.level}`,
      help: 'use a param or a constant',
    }),
  );
  return false;
}

function scan(c: Lowering, e: Call, env: Env): Node | null {
  const name = e.callee.text;
  const xs = args(c, e, env, SCANS[name]);
  if (!xs || !xs.every((x, i) => requireNotVocab(c, x, e.args[i].span, `\`${name}\` (a walk along a sequence)`)))
    return null;
  if (
    !xs.every((x, i) =>
      (name === 'next' || name === 'prev') && i === 0 ? true : c.requireNumber(x, e.args[i].span, `\`${name}\``),
    )
  )
    return null;
  const b = c.b;
  const one = b.constant(1);
  switch (name) {
    case 'cumsum':
      return b.scan(xs[0], one, false, e.span);
    case 'rcumsum':
      return b.scan(xs[0], one, true, e.span);
    case 'cumprod':
      return b.cumprod(xs[0], false, e.span);
    case 'rcumprod':
      return b.cumprod(xs[0], true, e.span);
    case 'discounted':
    case 'rscan':
      return b.scan(xs[0], xs[1], true, e.span);
    case 'scan':
      return b.scan(xs[0], xs[1], false, e.span);
    default: {
      const fill = xs[1];
      if (fill.op !== 'const') {
        return c.report(
          error('E0303', `the fill value of \`${name}\` must be a constant number`, e.args[1].span, {
            label: 'not a constant',
            help: `e.g. \`${name}(x, 0)\``,
          }),
        );
      }
      const value = (fill.args as { value: number }).value;
      if (xs[0].type.dtype === 'bool' && value !== 0 && value !== 1) {
        return c.report(
          error('E0303', `the fill value of \`${name}\` on a bool must be 0 (false) or 1 (true)`, e.args[1].span, {
            label: `${value} is not a bool`,
            help: `e.g. \`${name}(cond, 0)\``,
          }),
        );
      }
      return b.shift(xs[0], name as 'next' | 'prev', value, e.span);
    }
  }
}

/** Schedules: functions of `progress = clip(step / total_steps, 0, 1)` and of `step`. */
function schedule(c: Lowering, e: Call, env: Env): Node | null {
  const name = e.callee.text;
  const arity = SCHEDULES[name];
  if (arity === -1 ? e.args.length < 2 || e.args.length % 2 !== 0 : e.args.length !== arity) {
    return c.report(
      error(
        'E0105',
        `\`${name}\` takes ${arity === -1 ? 'pairs of (step, value)' : `${arity} argument${arity === 1 ? '' : 's'}`}, got ${e.args.length}`,
        e.span,
        {
          label: 'wrong number of arguments',
          help: arity === -1 ? 'e.g. `piecewise(0, 1.0, 100, 0.5, 200, 0.1)`' : undefined,
        },
      ),
    );
  }
  const xs = e.args.map((a) => c.expr(a, env));
  if (xs.some((x) => !x)) return null;
  const vs = xs as Node[];
  for (let i = 0; i < vs.length; i++)
    if (
      !c.requireNumber(vs[i], e.args[i].span, `\`${name}\``) ||
      !batchScalar(c, vs[i], e.args[i].span, `an argument of \`${name}\``)
    )
      return null;
  const b = c.b;
  const s = e.span;
  const step = b.graph.node('clock', { dtype: 'f32', level: 'batch' }, [], { which: 'step' }, s);
  const total = b.graph.node('clock', { dtype: 'f32', level: 'batch' }, [], { which: 'total_steps' }, s);
  const progress = b.clip(b.div(step, b.binary('max', total, b.constant(1), s), s), b.constant(0), b.constant(1), s);
  const lerp = (a: Node, z: Node, t: Node) => b.add(a, b.mul(b.sub(z, a, s), t, s), s);
  switch (name) {
    case 'progress':
      return progress;
    case 'linear':
      return lerp(vs[0], vs[1], progress);
    case 'cosine': {
      const half = b.mul(
        b.constant(0.5),
        b.add(b.constant(1), b.unary('cos', b.mul(b.constant(Math.PI), progress, s), s), s),
        s,
      );
      return lerp(vs[1], vs[0], half);
    }
    case 'exp_decay':
      return b.mul(vs[0], b.binary('pow', b.div(vs[1], vs[0], s), progress, s), s);
    case 'step_decay':
      return b.mul(vs[0], b.binary('pow', vs[1], b.unary('floor', b.div(step, vs[2], s), s), s), s);
    default: {
      // piecewise(s0, v0, s1, v1, …): linear between knots, constant outside.
      const knots: [Node, Node][] = [];
      for (let i = 0; i < vs.length; i += 2) knots.push([vs[i], vs[i + 1]]);
      for (let i = 1; i < knots.length; i++) {
        const [a, z] = [knots[i - 1][0], knots[i][0]];
        if (
          a.op === 'const' &&
          z.op === 'const' &&
          (a.args as { value: number }).value >= (z.args as { value: number }).value
        ) {
          return c.report(
            error('E0303', '`piecewise` knots must increase', e.args[2 * i].span, {
              label: 'not after the previous knot',
            }),
          );
        }
      }
      let value = knots[knots.length - 1][1];
      for (let i = knots.length - 2; i >= 0; i--) {
        const [s0, v0] = knots[i];
        const [s1, v1] = knots[i + 1];
        const t = b.clip(b.div(b.sub(step, s0, s), b.sub(s1, s0, s), s), b.constant(0), b.constant(1), s);
        value = b.where(b.binary('lt', step, s1, s), lerp(v0, v1, t), value, s);
      }
      return value;
    }
  }
}

/**
 * Terms over the vocabulary axis (`token x vocab` values): `log_softmax`, `softmax` and
 * `gather`, and the numerically stable log-sum-exp every one of them rests on. Each expands into
 * primitive IR here, so the interpreter, autodiff and every back end see only reductions from
 * `vocab` to `token` and elementwise ops.
 *
 * Edges are defined, never NaN: a `-inf` logit has probability 0; a row whose logits are all
 * `-inf` has no distribution — its log-sum-exp is `-inf`, its `log_softmax` is `-inf` everywhere
 * and its `softmax` 0 everywhere — and no gradient reaches it.
 */
import { error } from '../../core/diagnostics/diagnostic.js';
import type { IrBuilder } from '../../core/ir/build.js';
import type { Node } from '../../core/ir/node.js';
import type { Span } from '../../core/source/source-file.js';
import { showLevel, type Level } from '../../core/types/types.js';
import type { Expr } from './ast.js';
import { VOCAB_FUNCTIONS } from './builtins.js';
import type { Env, Lowering } from './context.js';

type Call = Extract<Expr, { kind: 'call' }>;

export interface LogSumExp {
  /** log Σ exp(x) over the members: −inf when every member is −inf, 0 for an empty set. */
  readonly value: Node;
  /** The same where some member is finite, 0 elsewhere: what `log_softmax` subtracts, so a −inf row stays −inf. */
  readonly shift: Node;
}

/**
 * M + log Σ exp(x − M) with M the largest member (a constant for autodiff: the result does not
 * depend on it), guarded so a −inf member adds 0 and an all −inf set is −inf, not NaN.
 * `only(v)` replaces v by 0 at elements that are not members, so those never reach a gradient.
 */
export function logSumExp(
  b: IrBuilder,
  x: Node,
  to: Level,
  cond: Node | undefined,
  only: (v: Node) => Node,
  span: Span,
): LogSumExp {
  const s = span;
  const m = b.sg(b.reduce('max', x, to, cond, s), s);
  // an all −inf set has maximum −inf, and x − (−inf) would be NaN: shift by 0 there instead
  const safeMax = b.where(b.binary('gt', m, b.constant(-Infinity), s), m, b.constant(0), s);
  const total = b.reduce(
    'sum',
    b.unary('exp', only(b.sub(x, b.broadcast(safeMax, x.type.level, s), s)), s),
    to,
    cond,
    s,
  );
  const positive = b.binary('gt', total, b.constant(0), s);
  const shift = b.where(
    positive,
    b.add(safeMax, b.unary('log', b.where(positive, total, b.constant(1), s), s), s),
    b.constant(0),
    s,
  );
  const one = b.broadcast(b.constant(1, 'f32', s), x.type.level, s);
  const nonEmpty = b.binary('gt', b.reduce('sum', one, to, cond, s), b.constant(0), s);
  const value = b.where(positive, shift, b.where(nonEmpty, b.constant(-Infinity), b.constant(0), s), s);
  return { value, shift };
}

/** log_softmax(x) = x − logsumexp(x per token), at every vocabulary entry. */
export function logSoftmax(b: IrBuilder, x: Node, span: Span): Node {
  const { shift } = logSumExp(b, x, 'token', undefined, (v) => v, span);
  return b.sub(x, b.broadcast(shift, 'vocab', span), span);
}

export function lowerVocabCall(c: Lowering, e: Call, env: Env): Node | null {
  const name = e.callee.text;
  const arity = VOCAB_FUNCTIONS[name];
  if (e.args.length !== arity) {
    return c.report(
      error('E0105', `\`${name}\` takes ${arity} argument${arity === 1 ? '' : 's'}, got ${e.args.length}`, e.span, {
        label: 'wrong number of arguments',
        help: name === 'gather' ? 'e.g. `gather(log_softmax(logits), token_id)`' : `e.g. \`${name}(logits)\``,
      }),
    );
  }
  const xs = e.args.map((a) => c.expr(a, env));
  if (!xs.every((x): x is Node => x !== null)) return null;
  const [x] = xs;
  if (!c.requireNumber(x, e.args[0].span, `\`${name}\``)) return null;
  if (x.type.level !== 'vocab') {
    return c.report(
      error(
        'E0202',
        `\`${name}\` works over the vocabulary, but this is per ${showLevel(x.type.level)}`,
        e.args[0].span,
        {
          label: `per ${showLevel(x.type.level)}`,
          help: 'pass a `token x vocab` value, e.g. `input logits : token x vocab grad`',
        },
      ),
    );
  }
  const b = c.b;
  const s = e.span;
  switch (name) {
    case 'log_softmax':
      return logSoftmax(b, x, s);
    case 'softmax':
      return b.unary('exp', logSoftmax(b, x, s), s);
    default: {
      // gather(x, i): the entry of each token's row at index i — a sum over the row that keeps one entry
      const index = xs[1];
      if (index.type.dtype !== 'i32') {
        return c.report(
          error('E0303', `the index of \`gather\` must be an i32, but this is ${index.type.dtype}`, e.args[1].span, {
            label: `${index.type.dtype}, not i32`,
            help: 'declare the token ids `input token_id : token i32`, or convert with `i32(…)`',
          }),
        );
      }
      if (index.type.level === 'vocab') {
        return c.report(
          error(
            'E0203',
            'the index of `gather` is one vocabulary entry per token, but this is per token x vocab',
            e.args[1].span,
            {
              label: 'per token x vocab',
              help: 'index with a token-level value, e.g. `input token_id : token i32`',
            },
          ),
        );
      }
      if (index.op === 'input') c.markVocabIndex((index.args as { name: string }).name);
      const hit = b.binary('eq', vocabIndex(b, s), b.cast(index, 'f32', s), s);
      return b.reduce('sum', b.where(hit, x, b.constant(0), s), 'token', undefined, s);
    }
  }
}

export function vocabIndex(b: IrBuilder, span?: Span): Node {
  return b.graph.node('size', { dtype: 'f32', level: 'vocab' }, [], { which: 'vocab_index' }, span);
}

/**
 * Reports a `token x vocab` value where only tokens and coarser levels make sense (a scan, a key);
 * returns whether `x` is fine.
 */
export function requireNotVocab(c: Lowering, x: Node, span: Span, what: string): boolean {
  if (x.type.level !== 'vocab') return true;
  c.report(
    error('E0203', `${what} needs one value per token, but this is per token x vocab`, span, {
      label: 'per token x vocab',
      help: 'reduce over the vocabulary first, e.g. `sum(x per token)` or `gather(x, token_id)`',
    }),
  );
  return false;
}

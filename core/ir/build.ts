/**
 * Typed constructors for IR nodes: they insert the implicit broadcasts and compute result types,
 * so the front end and autodiff never build an ill-typed node.
 */
import type { Span } from '../source/source-file.js';
import { finer, isCoarserOrEqual, type DType, type Level } from '../types/types.js';
import { InternalError } from '../diagnostics/diagnostic.js';
import { Graph, type Node } from './node.js';
import {
  COMPARISONS,
  LOGICAL,
  UNARY_INFO,
  type BinaryOp,
  type KeyedReduceFn,
  type QuantileMethod,
  type ReduceFn,
  type UnaryOp,
} from './op.js';

const INT_PRESERVING_BINARY: ReadonlySet<BinaryOp> = new Set(['add', 'sub', 'mul', 'min', 'max']);

export class IrBuilder {
  constructor(readonly graph: Graph = new Graph()) {}

  constant(value: number, dtype: DType = 'f32', span?: Span): Node {
    return this.graph.node('const', { dtype, level: 'batch' }, [], { value }, span);
  }

  /** Broadcast a node to a finer (or equal) level. */
  broadcast(x: Node, level: Level, span?: Span): Node {
    if (x.type.level === level) return x;
    if (!isCoarserOrEqual(x.type.level, level))
      throw new InternalError('ir-build', `broadcast ${x.type.level} → ${level}`);
    return this.graph.node('broadcast', { dtype: x.type.dtype, level }, [x], {}, span ?? x.span);
  }

  unary(fn: UnaryOp, x: Node, span?: Span): Node {
    const dtype: DType = fn === 'not' ? 'bool' : x.type.dtype === 'i32' && UNARY_INFO[fn].intPreserving ? 'i32' : 'f32';
    return this.graph.node('unary', { dtype, level: x.type.level }, [x], { fn }, span);
  }

  binary(fn: BinaryOp, a: Node, b: Node, span?: Span): Node {
    const level = finer(a.type.level, b.type.level);
    let dtype: DType;
    if (COMPARISONS.has(fn) || LOGICAL.has(fn)) dtype = 'bool';
    else if (a.type.dtype === 'i32' && b.type.dtype === 'i32' && INT_PRESERVING_BINARY.has(fn)) dtype = 'i32';
    else dtype = 'f32';
    return this.graph.node(
      'binary',
      { dtype, level },
      [this.broadcast(a, level), this.broadcast(b, level)],
      { fn },
      span,
    );
  }

  add = (a: Node, b: Node, span?: Span) => this.binary('add', a, b, span);
  sub = (a: Node, b: Node, span?: Span) => this.binary('sub', a, b, span);
  mul = (a: Node, b: Node, span?: Span) => this.binary('mul', a, b, span);
  div = (a: Node, b: Node, span?: Span) => this.binary('div', a, b, span);

  cast(x: Node, to: DType, span?: Span): Node {
    if (x.type.dtype === to) return x;
    return this.graph.node('cast', { dtype: to, level: x.type.level }, [x], { to }, span);
  }

  where(c: Node, a: Node, b: Node, span?: Span): Node {
    const level = finer(c.type.level, finer(a.type.level, b.type.level));
    const dtype: DType = a.type.dtype === b.type.dtype ? a.type.dtype : 'f32';
    const [ca, cb] = [this.cast(a, dtype), this.cast(b, dtype)];
    return this.graph.node(
      'where',
      { dtype, level },
      [this.broadcast(c, level), this.broadcast(ca, level), this.broadcast(cb, level)],
      {},
      span,
    );
  }

  clip(x: Node, lo: Node, hi: Node, span?: Span): Node {
    const level = finer(x.type.level, finer(lo.type.level, hi.type.level));
    return this.graph.node(
      'clip',
      { dtype: 'f32', level },
      [this.broadcast(x, level), this.broadcast(lo, level), this.broadcast(hi, level)],
      {},
      span,
    );
  }

  sg(x: Node, span?: Span): Node {
    if (x.op === 'sg' || x.type.dtype !== 'f32') return x;
    return this.graph.node('sg', x.type, [x], {}, span);
  }

  /** Reduce to a coarser level over valid elements (and `cond`, if given). */
  reduce(fn: ReduceFn, x: Node, to: Level, cond?: Node, span?: Span): Node {
    overRowsOnly('reduce', x, to);
    const src = cond ? [x, this.broadcast(cond, x.type.level)] : [x];
    const dtype: DType =
      x.type.dtype === 'bool' ? 'f32' : fn === 'sum' ? (x.type.dtype === 'i32' ? 'i32' : 'f32') : x.type.dtype;
    return this.graph.node('reduce', { dtype, level: to }, src, { fn }, span);
  }

  keyedReduce(fn: KeyedReduceFn, x: Node, key: Node, to: Level, cond?: Node, span?: Span): Node {
    overRowsOnly('keyed_reduce', x, to);
    const k = this.broadcast(key, x.type.level);
    const src = cond ? [x, k, this.broadcast(cond, x.type.level)] : [x, k];
    const dtype: DType = x.type.dtype === 'bool' ? 'f32' : x.type.dtype;
    return this.graph.node('keyed_reduce', { dtype, level: x.type.level }, src, { fn, to }, span);
  }

  prefixId(x: Node, span?: Span): Node {
    return this.graph.node('prefix_id', { dtype: 'f32', level: 'token' }, [this.broadcast(x, 'token')], {}, span);
  }

  scan(x: Node, c: Node, reverse: boolean, span?: Span): Node {
    return this.graph.node(
      'scan',
      { dtype: 'f32', level: 'token' },
      [this.broadcast(x, 'token'), this.broadcast(c, 'token')],
      { reverse },
      span,
    );
  }

  cumprod(x: Node, reverse: boolean, span?: Span): Node {
    return this.graph.node(
      'cumprod',
      { dtype: 'f32', level: 'token' },
      [this.broadcast(x, 'token')],
      { reverse },
      span,
    );
  }

  shift(x: Node, dir: 'next' | 'prev', fill: number, span?: Span): Node {
    const t = this.broadcast(x, 'token');
    return this.graph.node(
      'shift',
      { dtype: t.type.dtype === 'bool' ? 'bool' : t.type.dtype, level: 'token' },
      [t],
      { dir, fill },
      span,
    );
  }

  quantile(x: Node, q: Node, to: Level, method: QuantileMethod, cond?: Node, span?: Span): Node {
    overRowsOnly('quantile', x, to);
    const src = cond ? [x, q, this.broadcast(cond, x.type.level)] : [x, q];
    return this.graph.node('quantile', { dtype: 'f32', level: to }, src, { method }, span);
  }

  quantileWeight(x: Node, q: Node, to: Level, method: QuantileMethod, cond?: Node, span?: Span): Node {
    overRowsOnly('quantile_weight', x, to);
    const src = cond ? [x, q, this.broadcast(cond, x.type.level)] : [x, q];
    return this.graph.node('quantile_weight', { dtype: 'f32', level: x.type.level }, src, { method, to }, span);
  }

  rank(x: Node, to: Level, cond?: Node, span?: Span): Node {
    overRowsOnly('rank', x, to);
    const src = cond ? [x, this.broadcast(cond, x.type.level)] : [x];
    return this.graph.node('rank', { dtype: 'f32', level: x.type.level }, src, { to }, span);
  }

  sumBefore(x: Node, to: Level, cond?: Node, span?: Span): Node {
    overRowsOnly('sum_before', x, to);
    const src = cond ? [x, this.broadcast(cond, x.type.level)] : [x];
    return this.graph.node('sum_before', { dtype: 'f32', level: x.type.level }, src, { to }, span);
  }
}

/**
 * Values over the vocabulary reduce to their token only, in the IR as in the language (E0203): a
 * reduction from `vocab` straight to a seq, group or the batch would count the rows of masked-out
 * tokens (every entry of a row takes part in its token's reductions; the mask applies from tokens
 * on), and the GPU's row kernels only reduce a row to its token. Reduce per token, then further.
 */
function overRowsOnly(op: string, x: Node, to: Level): void {
  if (x.type.level === 'vocab' && to !== 'token')
    throw new InternalError('ir-build', `${op} from token x vocab straight to ${to}: reduce per token first`);
}

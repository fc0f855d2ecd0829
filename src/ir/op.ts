/**
 * The ops of the typed IR and their arguments. Tables keyed by `Op` (typing of results, VJP rules,
 * interpretation, printing) are declared as `{ [K in Op]: … }` so a new op fails `tsc` until every
 * table covers it.
 */
import type { DType, Level } from '../types/types.js';

export const UNARY_OPS = [
  'neg', 'exp', 'log', 'log1p', 'expm1', 'sqrt', 'abs', 'sign', 'sigmoid', 'logsigmoid', 'softplus', 'relu', 'tanh',
  'floor', 'cos', 'sin', 'not',
] as const;
export const BINARY_OPS = ['add', 'sub', 'mul', 'div', 'pow', 'min', 'max', 'lt', 'le', 'gt', 'ge', 'eq', 'ne', 'and', 'or'] as const;

export type UnaryOp = (typeof UNARY_OPS)[number];
export type BinaryOp = (typeof BINARY_OPS)[number];

export type SizeKind = 'position' | 'length' | 'group_size' | 'num_seqs' | 'num_groups' | 'num_tokens';
export type ClockKind = 'step' | 'total_steps';
export type ReduceFn = 'sum' | 'max' | 'min';
export type QuantileMethod = 'linear' | 'lower' | 'higher' | 'nearest' | 'midpoint';

/** Arguments of each op (non-node data). */
export interface OpArgs {
  input: { name: string };
  mask: Record<string, never>;
  param: { name: string };
  clock: { which: ClockKind };
  size: { which: SizeKind };
  const: { value: number };
  unary: { fn: UnaryOp };
  binary: { fn: BinaryOp };
  cast: { to: DType };
  where: Record<string, never>;
  clip: Record<string, never>;
  sg: Record<string, never>;
  broadcast: Record<string, never>;
  /** src: [x] or [x, cond]; the result level is the node's type level. */
  reduce: { fn: ReduceFn };
  /** Linear recurrence within a sequence: y_t = x_t + c_t · y_{t∓1}. src: [x, c]. */
  scan: { reverse: boolean };
  /** Cumulative product within a sequence. src: [x]. */
  cumprod: { reverse: boolean };
  /** Value at the next/previous valid token of the same sequence, `fill` at the boundary. */
  shift: { dir: 'next' | 'prev'; fill: number };
  /** src: [x, q] or [x, q, cond]; result at the reduced level. */
  quantile: { method: QuantileMethod };
  /** Interpolation weights of `quantile` at x's level (its gradient routing). src as quantile; args.to. */
  quantile_weight: { method: QuantileMethod; to: Level };
  /**
   * Keyed reduction: every element gets the reduction over the valid elements of its segment at
   * level `to` whose key equals its own. src: [x, key] or [x, key, cond]; result at x's level.
   */
  keyed_reduce: { fn: ReduceFn; to: Level };
  /** Id of the prefix of valid tokens up to and including each token (equal ids ⇔ equal prefixes). */
  prefix_id: Record<string, never>;
  /** Descending rank (0 = largest, ties by position) among the elements of the same segment. src: [x] or [x, cond]. */
  rank: { to: Level };
}

export type Op = keyof OpArgs;

export const OPS: readonly Op[] = [
  'input', 'mask', 'param', 'clock', 'size', 'const', 'unary', 'binary', 'cast', 'where', 'clip', 'sg', 'broadcast',
  'reduce', 'keyed_reduce', 'scan', 'cumprod', 'shift', 'quantile', 'quantile_weight', 'rank', 'prefix_id',
];

export const COMPARISONS: ReadonlySet<BinaryOp> = new Set(['lt', 'le', 'gt', 'ge', 'eq', 'ne']);
export const LOGICAL: ReadonlySet<BinaryOp> = new Set(['and', 'or']);

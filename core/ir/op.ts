/**
 * The ops of the typed IR, their arguments, and what every stage needs to know about each of them.
 * Everything that must cover every op, unary function or reduction is a table keyed by it
 * (`{ [K in Op]: … }`): a new one fails `tsc` until each table says what it does. The tables here
 * say what an op *is* (its role in planning, whether a gradient flows through it, its surface
 * name, its identity); the interpreter, autodiff, equiv and each code generator keep their own
 * exhaustive tables of what an op *does* there.
 */
import type { DType, Level } from '../types/types.js';

export interface UnaryInfo {
  /** The function name a program calls it by, or null for operators (`-x`, `not x`). */
  readonly surface: string | null;
  /** Whether an i32 operand gives an i32 result (`abs`, `floor`: integral stays integral). */
  readonly intPreserving: boolean;
}

export const UNARY_INFO = {
  neg: { surface: null, intPreserving: true },
  exp: { surface: 'exp', intPreserving: false },
  log: { surface: 'log', intPreserving: false },
  log1p: { surface: 'log1p', intPreserving: false },
  expm1: { surface: 'expm1', intPreserving: false },
  sqrt: { surface: 'sqrt', intPreserving: false },
  abs: { surface: 'abs', intPreserving: true },
  sign: { surface: 'sign', intPreserving: true },
  sigmoid: { surface: 'sigmoid', intPreserving: false },
  logsigmoid: { surface: 'logsigmoid', intPreserving: false },
  softplus: { surface: 'softplus', intPreserving: false },
  relu: { surface: 'relu', intPreserving: false },
  tanh: { surface: 'tanh', intPreserving: false },
  floor: { surface: 'floor', intPreserving: true },
  ceil: { surface: 'ceil', intPreserving: true },
  round: { surface: 'round', intPreserving: true },
  cos: { surface: 'cos', intPreserving: false },
  sin: { surface: 'sin', intPreserving: false },
  not: { surface: null, intPreserving: false },
} as const satisfies Record<string, UnaryInfo>;

export type UnaryOp = keyof typeof UNARY_INFO;
export const UNARY_OPS = Object.keys(UNARY_INFO) as readonly UnaryOp[];

export const BINARY_OPS = [
  'add',
  'sub',
  'mul',
  'div',
  'pow',
  'min',
  'max',
  'lt',
  'le',
  'gt',
  'ge',
  'eq',
  'ne',
  'and',
  'or',
] as const;
export type BinaryOp = (typeof BINARY_OPS)[number];

export type SizeKind =
  | 'position'
  | 'length'
  | 'group_size'
  | 'num_seqs'
  | 'num_groups'
  | 'num_tokens'
  /** Index of each vocabulary entry in its token's row (0 … V−1), at vocab level. */
  | 'vocab_index'
  /** V, the number of entries of the vocabulary axis. */
  | 'vocab_size';
export type ClockKind = 'step' | 'total_steps';

/**
 * A primitive reduction: how the members of a segment fold into one value. With an `identity`,
 * folding starts from it and an empty segment reduces to it (sum 0, prod 1); without one
 * (max, min), folding starts from the first member and an empty segment reduces to 0.
 */
export interface Reducer {
  readonly identity: number | null;
  readonly combine: (a: number, b: number) => number;
}

export const REDUCERS = {
  sum: { identity: 0, combine: (a, b) => a + b },
  prod: { identity: 1, combine: (a, b) => a * b },
  max: { identity: null, combine: (a, b) => Math.max(a, b) },
  min: { identity: null, combine: (a, b) => Math.min(a, b) },
} as const satisfies Record<string, Reducer>;

export type ReduceFn = keyof typeof REDUCERS;
/** Keyed reductions (`per LEVEL by KEY`) exist for these; the others have no keyed form yet. */
export type KeyedReduceFn = Exclude<ReduceFn, 'prod'>;

/** What a reduction of an empty set of members gives. */
export function emptyValue(fn: ReduceFn): number {
  return REDUCERS[fn].identity ?? 0;
}

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
  keyed_reduce: { fn: KeyedReduceFn; to: Level };
  /** Id of the prefix of valid tokens up to and including each token (equal ids ⇔ equal prefixes). */
  prefix_id: Record<string, never>;
  /** Descending rank (0 = largest, ties by position) among the elements of the same segment. src: [x] or [x, cond]. */
  rank: { to: Level };
  /**
   * The sum of x over the members of the same segment ranked before each element (larger x first,
   * ties by position), as `rank` orders them; +inf outside every segment. src: [x] or [x, cond].
   * `top_p` (nucleus) masks are `sum_before(p) < q`.
   */
  sum_before: { to: Level };
}

export type Op = keyof OpArgs;

/**
 * How the back end treats an op:
 *  - `leaf`: a value the batch, the params or the clock give (no sources);
 *  - `elementwise`: one result per element from the same element of its sources (and coarser
 *    values broadcast to it): fused into whatever kernel consumes it;
 *  - `reduce`: folds the members of each segment (a kernel of its own, shared by reductions between
 *    the same levels);
 *  - `seqwise`: walks each sequence's tokens in order (scans, shifts: a thread per sequence);
 *  - `host`: no device kernel yet: runs on the host with the interpreter's semantics.
 */
export type OpRole = 'leaf' | 'elementwise' | 'reduce' | 'seqwise' | 'host';

export interface OpInfo {
  readonly role: OpRole;
  /** Whether a gradient can flow through its result (false: it is constant for autodiff). */
  readonly differentiable: boolean;
}

export const OP_INFO: { readonly [K in Op]: OpInfo } = {
  input: { role: 'leaf', differentiable: true },
  mask: { role: 'leaf', differentiable: false },
  param: { role: 'leaf', differentiable: false },
  clock: { role: 'leaf', differentiable: false },
  size: { role: 'leaf', differentiable: false },
  const: { role: 'leaf', differentiable: false },
  unary: { role: 'elementwise', differentiable: true },
  binary: { role: 'elementwise', differentiable: true },
  cast: { role: 'elementwise', differentiable: false },
  where: { role: 'elementwise', differentiable: true },
  clip: { role: 'elementwise', differentiable: true },
  sg: { role: 'elementwise', differentiable: false },
  broadcast: { role: 'elementwise', differentiable: true },
  reduce: { role: 'reduce', differentiable: true },
  scan: { role: 'seqwise', differentiable: true },
  cumprod: { role: 'seqwise', differentiable: true },
  shift: { role: 'seqwise', differentiable: true },
  keyed_reduce: { role: 'host', differentiable: true },
  quantile: { role: 'host', differentiable: true },
  quantile_weight: { role: 'host', differentiable: false },
  rank: { role: 'host', differentiable: false },
  sum_before: { role: 'host', differentiable: false },
  prefix_id: { role: 'host', differentiable: false },
};

export const OPS = Object.keys(OP_INFO) as readonly Op[];

/** Ops that get a kernel (or a host step) of their own: every role but leaves and elementwise ones. */
export function isBoundaryOp(op: Op): boolean {
  const role = OP_INFO[op].role;
  return role !== 'leaf' && role !== 'elementwise';
}

export const COMPARISONS: ReadonlySet<BinaryOp> = new Set(['lt', 'le', 'gt', 'ge', 'eq', 'ne']);
export const LOGICAL: ReadonlySet<BinaryOp> = new Set(['and', 'or']);

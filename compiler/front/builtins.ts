/**
 * The built-in names of the language: values (schedule clock, sizes, constants) and functions,
 * grouped by how they are checked. `docs/language.md` documents each one.
 */
import { UNARY_INFO, UNARY_OPS, type QuantileMethod, type ReduceFn, type UnaryOp } from '../../core/ir/op.js';

export const BUILTIN_VALUES = [
  'step',
  'total_steps',
  'position',
  'length',
  'group_size',
  'num_seqs',
  'num_groups',
  'num_tokens',
  'vocab_index',
  'vocab_size',
  'pi',
] as const;
export type BuiltinValue = (typeof BUILTIN_VALUES)[number];

/** Elementwise functions by the name a program calls them (core/ir/op.ts UNARY_INFO). */
export const UNARY_FUNCTIONS: Readonly<Record<string, UnaryOp>> = Object.fromEntries(
  UNARY_OPS.flatMap((op) => {
    const surface: string | null = UNARY_INFO[op].surface;
    return surface ? [[surface, op]] : [];
  }),
);

export const REDUCTIONS = [
  'sum',
  'mean',
  'max',
  'min',
  'prod',
  'count',
  'var_pop',
  'var_unbiased',
  'std_pop',
  'std_unbiased',
  'logsumexp',
] as const;
export type Reduction = (typeof REDUCTIONS)[number];
/** Every primitive reduction of the IR can be written: `tsc` fails here when one is missing above. */
export const PRIMITIVE_REDUCTIONS_ARE_SURFACE: ReduceFn extends Reduction ? true : never = true;

export const QUANTILES: Record<string, QuantileMethod> = {
  quantile: 'linear',
  quantile_lower: 'lower',
  quantile_higher: 'higher',
  quantile_nearest: 'nearest',
  quantile_midpoint: 'midpoint',
};

/** Scans within a sequence (over valid tokens) and their arity. */
export const SCANS: Record<string, number> = {
  cumsum: 1,
  rcumsum: 1,
  cumprod: 1,
  rcumprod: 1,
  discounted: 2,
  scan: 2,
  rscan: 2,
  next: 2,
  prev: 2,
};

/** Schedules of the training clock; arity -1 = variadic (piecewise). */
export const SCHEDULES: Record<string, number> = {
  progress: 0,
  linear: 2,
  cosine: 2,
  exp_decay: 2,
  step_decay: 3,
  piecewise: -1,
};

/** Other functions with a fixed arity. */
export const OTHER_FUNCTIONS: Record<string, number> = {
  pow: 2,
  clip: 3,
  where: 3,
  sg: 1,
  f32: 1,
  i32: 1,
  rank: 1,
  top_k: 2,
  top_p: 2,
  prefix_id: 1,
};

/** Terms over the vocabulary axis and their arity (lowered in vocab.ts). */
export const VOCAB_FUNCTIONS: Readonly<Record<string, number>> = { log_softmax: 1, softmax: 1, gather: 2 };

/** Reductions that accept a key (`per LEVEL by KEY`). */
export const KEYED_REDUCTIONS: readonly string[] = ['sum', 'mean', 'count', 'max', 'min'];

/** Names people reach for that are deliberately absent, with the reason. */
export const AMBIGUOUS: Record<string, string> = {
  var: 'use `var_unbiased` (divides by n-1, torch.var default, GRPO) or `var_pop` (divides by n)',
  std: 'use `std_unbiased` (divides by n-1, torch.std default, GRPO) or `std_pop` (divides by n)',
};

export function allBuiltinNames(): string[] {
  return [
    ...BUILTIN_VALUES,
    ...Object.keys(UNARY_FUNCTIONS),
    ...REDUCTIONS,
    ...Object.keys(QUANTILES),
    ...Object.keys(SCANS),
    ...Object.keys(SCHEDULES),
    ...Object.keys(OTHER_FUNCTIONS),
    ...Object.keys(VOCAB_FUNCTIONS),
  ];
}

export function isFunctionName(name: string): boolean {
  return (
    name in UNARY_FUNCTIONS ||
    (REDUCTIONS as readonly string[]).includes(name) ||
    name in QUANTILES ||
    name in SCANS ||
    name in SCHEDULES ||
    name in OTHER_FUNCTIONS ||
    name in VOCAB_FUNCTIONS
  );
}

/** A typed IR program: declarations plus named output nodes in one hash-consed graph. */
import type { Span } from '../source/source-file.js';
import type { DType, Level } from '../types/types.js';
import type { Graph, Node } from './node.js';

export interface InputDecl {
  readonly name: string;
  readonly level: Exclude<Level, 'batch'>;
  readonly dtype: DType;
  readonly grad: boolean;
  /** An i32 token input that `gather` indexes the vocabulary with: its values must lie in 0 … V − 1. */
  readonly vocabIndex?: boolean;
  /** `when COND`: the batch may leave the input out where COND is false (a run then reads it as 0s). */
  readonly when?: InputCondition;
}

/** The condition of an optional input: a batch-level bool over params (no input, no batch structure). */
export interface InputCondition {
  /** The condition as written. */
  readonly text: string;
  readonly span: Span;
  /** Batch-level bool. */
  readonly node: Node;
  /** What a batch without the input reads: a number at every element, or a copy of another input. */
  readonly fill: { readonly value: number } | { readonly input: string };
}

export interface ParamDecl {
  readonly name: string;
  readonly default: number;
}

/**
 * A `require` item: a condition on the batch (its structure, its inputs, the params) that every run
 * checks before it computes anything, so data in another convention is an error, not a number.
 */
export interface Requirement {
  /** The condition as written. */
  readonly text: string;
  readonly span: Span;
  /** The level of the condition: it must hold for every (valid) element of that level. */
  readonly level: Exclude<Level, 'vocab'>;
  /** Batch-level f32: the number of elements where the condition is false. */
  readonly failing: Node;
  /** K when the condition is literally `group_size == K` (the synthetic batch and `credo equiv` use it). */
  readonly groupSize?: number;
}

export interface Program {
  readonly name: string;
  readonly graph: Graph;
  readonly inputs: readonly InputDecl[];
  readonly params: readonly ParamDecl[];
  /** Name of the declared token mask input, if any (its values come from the batch mask). */
  readonly maskName: string | null;
  readonly loss: Node;
  readonly metrics: ReadonlyMap<string, Node>;
  readonly exports: ReadonlyMap<string, Node>;
  readonly requires: readonly Requirement[];
  /** Gradient of the loss w.r.t. each `grad` input (present after autodiff). */
  readonly grads: ReadonlyMap<string, Node>;
}

/** Every output node, in a stable order: loss, metrics, exports, grads. */
export function outputNodes(p: Program): Node[] {
  return [p.loss, ...p.metrics.values(), ...p.exports.values(), ...p.grads.values()];
}

/** A typed IR program: declarations plus named output nodes in one hash-consed graph. */
import type { DType, Level } from '../types/types.js';
import type { Graph, Node } from './node.js';

export interface InputDecl {
  readonly name: string;
  readonly level: Exclude<Level, 'batch'>;
  readonly dtype: DType;
  readonly grad: boolean;
  /** An i32 token input that `gather` indexes the vocabulary with: its values must lie in 0 … V − 1. */
  readonly vocabIndex?: boolean;
}

export interface ParamDecl {
  readonly name: string;
  readonly default: number;
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
  /** Gradient of the loss w.r.t. each `grad` input (present after autodiff). */
  readonly grads: ReadonlyMap<string, Node>;
}

/** Every output node, in a stable order: loss, metrics, exports, grads. */
export function outputNodes(p: Program): Node[] {
  return [p.loss, ...p.metrics.values(), ...p.exports.values(), ...p.grads.values()];
}

/**
 * What kernel planning produces — the kernels, their stages and the values with a buffer section —
 * and the few facts about nodes that several planning passes ask: whether a node gets a kernel of
 * its own, runs on the host, or is a count the host knows, and which materialized values
 * computing it loads. The passes themselves are listed, in order, in plan.ts.
 */
import type { Node } from '../../core/ir/node.js';
import { OP_INFO, isBoundaryOp } from '../../core/ir/op.js';
import type { Program } from '../../core/ir/program.js';
import type { Level } from '../../core/types/types.js';

export type MapKernel = {
  readonly kind: 'map';
  readonly level: Level;
  readonly outputs: readonly Node[];
  readonly stage: number;
};
export type ReduceKernel = {
  readonly kind: 'reduce';
  /** Reductions over the same levels at the same stage share one pass over their elements. */
  readonly nodes: readonly Node<'reduce'>[];
  readonly stage: number;
  /** Elementwise outputs at the reductions' source level, stored in the same pass (fuse-alongside). */
  readonly alongside: readonly Node[];
  /** Batch-level outputs computed where the partials are combined (fuse-epilogues; reductions to the batch). */
  readonly epilogue: readonly Node[];
  /**
   * Reductions to the batch from the same elements, folded per segment in this pass and combined
   * afterwards (fuse-alongside, through segments): a token→seq pass also sums the batch's token means.
   */
  readonly viaSegments: readonly Node<'reduce'>[];
  /**
   * Over a vocabulary row: sums Σ exp(x − max x) folded in the same pass as their maximum, the
   * running sum rescaled whenever the running maximum grows (an online softmax; fuse-rows.ts).
   */
  readonly online?: readonly OnlineSum[];
};
/**
 * A sum of exp(x − M) · weight (M = max x, or 0 where M is −inf; weight 1 when absent: a
 * log-sum-exp's sum) folded in M's pass; the weight is a value over the row that pass can compute.
 */
export interface OnlineSum {
  readonly sum: Node<'reduce'>;
  readonly max: Node<'reduce'>;
  readonly weight?: Node;
}
/** One step of a group-local kernel: what one thread does for its group, in order. */
export type GroupStep = MapKernel | ReduceKernel;
/**
 * One step of a row kernel: what one workgroup does for its token's row of the vocabulary, in
 * order — a vocab→token reduction (its threads strided over the row), a map over the row (a
 * gradient w.r.t. logits), or a map at the token (thread 0 computes the token's values).
 */
export type RowStep = MapKernel | ReduceKernel;

export type Kernel =
  | MapKernel
  | ReduceKernel
  | { readonly kind: 'seqwise'; readonly node: Node<'scan' | 'cumprod' | 'shift'>; readonly stage: number }
  | { readonly kind: 'host'; readonly node: Node; readonly stage: number }
  /** Maps over seqs/groups and seq→group reductions, one thread per group (fuse-group-local). */
  | { readonly kind: 'group-local'; readonly steps: readonly GroupStep[]; readonly stage: number }
  /** Passes over the vocabulary rows and the token work between them, one workgroup per row (fuse-rows). */
  | { readonly kind: 'rows'; readonly steps: readonly RowStep[]; readonly stage: number };

export interface KernelPlan {
  readonly program: Program;
  readonly kernels: readonly Kernel[];
  /** Every node with a buffer section, in allocation order. */
  readonly materialized: readonly Node[];
}

export interface PlanOptions {
  /** 'none': every non-leaf op gets its own kernel (the unfused schedule, same numbers). */
  readonly fuse?: 'default' | 'none';
}

/** Values computed from params, the clock and constants only: cheaper to recompute than to load. */
function dependsOnlyOnScalars(n: Node): boolean {
  if (n.src.length === 0) return n.op === 'const' || n.op === 'param' || n.op === 'clock';
  return n.type.level === 'batch' && n.op !== 'reduce' && n.src.every(dependsOnlyOnScalars);
}

/** A batch-level scalar, possibly broadcast to a finer level. */
export function scalarValued(n: Node): boolean {
  return n.op === 'broadcast' ? scalarValued(n.src[0]) : dependsOnlyOnScalars(n);
}

export type CountSize = 'num_tokens' | 'length' | 'group_size' | 'num_seqs' | 'num_groups';

/**
 * The size a reduction counts, when it is an unconditional sum of a batch scalar c: the sum is
 * c times the number of (valid) elements per segment, which the host knows. null otherwise.
 */
export function countedSize(n: Node): CountSize | null {
  if (n.op !== 'reduce' || (n as Node<'reduce'>).args.fn !== 'sum' || n.src.length !== 1 || !scalarValued(n.src[0]))
    return null;
  const route = `${n.src[0].type.level}→${n.type.level}`;
  const sizes: Record<string, CountSize> = {
    'token→batch': 'num_tokens',
    'token→seq': 'length',
    'seq→group': 'group_size',
    'seq→batch': 'num_seqs',
    'group→batch': 'num_groups',
  };
  return sizes[route] ?? null;
}

/**
 * Whether `n` is a boundary that gets a kernel (or a host step) of its own. With fusion on, a count
 * (`countedSize`) is not one: it is a batch constant times a size, computed wherever it is read.
 */
export function isBoundary(n: Node, fuse: boolean): boolean {
  return isBoundaryOp(n.op) && !(fuse && countedSize(n));
}

/** Whether `n` has no device kernel yet and runs as a host step on the reference semantics. */
export const runsOnHost = (n: Node): boolean => OP_INFO[n.op].role === 'host';

/** The materialized values computing `n` loads: its sources, through every value it recomputes. */
export function materializedReads(n: Node, materialized: ReadonlySet<number>): Node[] {
  const out: Node[] = [];
  const seen = new Set<number>();
  // depth-first with an explicit stack (a chain of thousands of recomputed values is no deeper)
  const stack: { node: Node; next: number }[] = [{ node: n, next: 0 }];
  while (stack.length) {
    const top = stack[stack.length - 1];
    if (top.next === top.node.src.length) {
      stack.pop();
      continue;
    }
    const s = top.node.src[top.next++];
    if (seen.has(s.id)) continue;
    seen.add(s.id);
    if (materialized.has(s.id)) out.push(s);
    else stack.push({ node: s, next: 0 });
  }
  return out;
}

/** `materializedReads` against one materialized set, each node's answer computed once. */
export function readsWithin(materialized: ReadonlySet<number>): (n: Node) => Node[] {
  const reads = new Map<number, Node[]>();
  return (n) => {
    const hit = reads.get(n.id);
    if (hit) return hit;
    const out = materializedReads(n, materialized);
    reads.set(n.id, out);
    return out;
  };
}

/** Nodes a kernel stores (its outputs). */
export function kernelOutputs(k: Kernel): Node[] {
  switch (k.kind) {
    case 'map':
      return [...k.outputs];
    case 'reduce':
      return [...k.nodes, ...k.viaSegments, ...k.alongside, ...k.epilogue, ...(k.online ?? []).map((o) => o.sum)];
    case 'seqwise':
    case 'host':
      return [k.node];
    case 'group-local':
    case 'rows':
      return k.steps.flatMap(kernelOutputs);
  }
}

/** Whether a reduce kernel ends in batch-level results (its own, or folded through its segments). */
export const reducesToBatch = (k: ReduceKernel): boolean =>
  k.nodes[0].type.level === 'batch' || k.viaSegments.length > 0;

/** Whether a kernel works on vocabulary rows: a map over them or a reduction from them to the token. */
export const overVocabulary = (k: Kernel): boolean =>
  k.kind === 'rows' ||
  (k.kind === 'map' && k.level === 'vocab') ||
  (k.kind === 'reduce' && k.nodes[0].src[0].type.level === 'vocab');

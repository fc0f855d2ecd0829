/**
 * Kernel planning: splits the forward + gradient IR into kernels. The rules (a schedule, printed by
 * `credo plan`):
 *  1. Elementwise ops (unary, binary, cast, where, clip, sg, broadcast and leaves) never get a
 *     kernel of their own: they fuse into every kernel that consumes them (recomputed, CSE'd
 *     within the kernel).
 *  2. Every boundary op — reduce, scan, cumprod, shift, keyed_reduce, quantile, quantile_weight,
 *     rank, prefix_id — is materialized by one kernel, which fuses its elementwise prologue.
 *     Reductions between the same two levels at the same stage share one kernel (up to
 *     MAX_FUSED_REDUCTIONS), so their inputs are read and their prologues computed once.
 *  3. Program outputs (loss, metrics, exports, gradients) are materialized; those that are not
 *     boundaries are computed by one map kernel per level and stage.
 *  3b. A value broadcast to a finer level is materialized at its own level (one value per seq or
 *     group) unless it is a leaf: otherwise every token would recompute it (the advantage of a
 *     sequence, say, from its group's statistics).
 *  4. Ops with no GPU kernel yet (keyed_reduce, quantile, quantile_weight, rank, prefix_id) run as
 *     host steps on the reference semantics; their sources are materialized first.
 * Kernels run in stages: a kernel's stage is one more than the latest stage it reads from.
 */
import { topoSort, type Node } from '../../src/ir/node.js';
import type { Op } from '../../src/ir/op.js';
import { outputNodes, type Program } from '../../src/ir/program.js';
import type { Level } from '../../src/types/types.js';

const BOUNDARY: ReadonlySet<Op> = new Set(['reduce', 'scan', 'cumprod', 'shift', 'keyed_reduce', 'quantile', 'quantile_weight', 'rank', 'prefix_id']);
const HOST: ReadonlySet<Op> = new Set(['keyed_reduce', 'quantile', 'quantile_weight', 'rank', 'prefix_id']);

export type Kernel =
  | { readonly kind: 'map'; readonly level: Level; readonly outputs: readonly Node[]; readonly stage: number }
  /** Reductions over the same levels at the same stage share one pass over their elements. */
  | { readonly kind: 'reduce'; readonly nodes: readonly Node<'reduce'>[]; readonly stage: number }
  | { readonly kind: 'seqwise'; readonly node: Node<'scan' | 'cumprod' | 'shift'>; readonly stage: number }
  | { readonly kind: 'host'; readonly node: Node; readonly stage: number };

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

const isLeaf = (n: Node) => n.src.length === 0;

/** Reductions sharing one kernel, at most (their partials live in workgroup memory). */
const MAX_FUSED_REDUCTIONS = 4;

/** Values computed from params, the clock and constants only: cheaper to recompute than to load. */
function dependsOnlyOnScalars(n: Node): boolean {
  if (n.src.length === 0) return n.op === 'const' || n.op === 'param' || n.op === 'clock';
  return n.type.level === 'batch' && n.op !== 'reduce' && n.src.every(dependsOnlyOnScalars);
}

export function planKernels(program: Program, opts: PlanOptions = {}): KernelPlan {
  const roots = outputNodes(program);
  const order = topoSort(roots);
  const materialized = new Set<number>();
  for (const n of order) {
    if (BOUNDARY.has(n.op)) materialized.add(n.id);
    if (HOST.has(n.op)) for (const s of n.src) if (!isLeaf(s)) materialized.add(s.id);
    if (opts.fuse === 'none' && !isLeaf(n) && n.op !== 'broadcast') materialized.add(n.id);
  }
  for (const r of roots) if (!isLeaf(r)) materialized.add(r.id);
  if (opts.fuse !== 'none') {
    for (const n of order) if (n.op === 'broadcast' && !isLeaf(n.src[0]) && n.src[0].op !== 'broadcast' && !dependsOnlyOnScalars(n.src[0])) materialized.add(n.src[0].id);
  }

  // stage of a materialized node: 1 + the latest stage among the materialized nodes its kernel reads
  const stage = new Map<number, number>();
  const readsOf = (n: Node): Node[] => {
    const out: Node[] = [];
    const seen = new Set<number>();
    const walk = (m: Node) => {
      for (const s of m.src) {
        if (seen.has(s.id)) continue;
        seen.add(s.id);
        if (materialized.has(s.id)) out.push(s);
        else walk(s);
      }
    };
    walk(n);
    return out;
  };
  for (const n of order) {
    if (!materialized.has(n.id)) continue;
    stage.set(n.id, 1 + Math.max(0, ...readsOf(n).map((s) => stage.get(s.id)!)));
  }

  const kernels: Kernel[] = [];
  const maxStage = Math.max(0, ...stage.values());
  for (let st = 1; st <= maxStage; st++) {
    const maps = new Map<Level, Node[]>();
    const reduces = new Map<string, Node<'reduce'>[]>();
    for (const n of order) {
      if (stage.get(n.id) !== st) continue;
      if (HOST.has(n.op)) kernels.push({ kind: 'host', node: n, stage: st });
      else if (n.op === 'reduce') {
        // at most MAX_FUSED_REDUCTIONS per kernel (each needs workgroup memory)
        const base = `${n.src[0].type.level}→${n.type.level}`;
        let key = base;
        for (let i = 1; (reduces.get(key)?.length ?? 0) >= MAX_FUSED_REDUCTIONS; i++) key = `${base}#${i}`;
        const list = reduces.get(key) ?? [];
        list.push(n as Node<'reduce'>);
        reduces.set(key, list);
      }
      else if (n.op === 'scan' || n.op === 'cumprod' || n.op === 'shift') kernels.push({ kind: 'seqwise', node: n as Node<'scan' | 'cumprod' | 'shift'>, stage: st });
      else {
        const list = maps.get(n.type.level) ?? [];
        list.push(n);
        maps.set(n.type.level, list);
      }
    }
    for (const nodes of reduces.values()) {
      if (opts.fuse === 'none') for (const n of nodes) kernels.push({ kind: 'reduce', nodes: [n], stage: st });
      else kernels.push({ kind: 'reduce', nodes, stage: st });
    }
    for (const [level, outputs] of maps) kernels.push({ kind: 'map', level, outputs, stage: st });
  }
  return { program, kernels, materialized: order.filter((n) => materialized.has(n.id)) };
}

/** Human-readable plan (`credo plan`). */
export function printPlan(plan: KernelPlan): string {
  const ids = new Map(topoSort(outputNodes(plan.program)).map((n, i) => [n.id, i] as const));
  const ref = (n: Node) => `%${ids.get(n.id)}`;
  const where = (n: Node) => (n.span ? ` (${n.span.file.path}:${n.span.file.position(n.span.start).line})` : '');
  const lines = [`plan ${plan.program.name}: ${plan.kernels.length} kernels, ${plan.materialized.length} materialized values`];
  plan.kernels.forEach((k, i) => {
    const head = `  k${i} stage ${k.stage}`;
    switch (k.kind) {
      case 'map':
        lines.push(`${head} map over ${k.level}: ${k.outputs.map((o) => `${ref(o)}${where(o)}`).join(', ')}`);
        break;
      case 'reduce':
        lines.push(`${head} reduce ${k.nodes[0].src[0].type.level}→${k.nodes[0].type.level}: ${k.nodes.map((n) => `${n.args.fn} ${ref(n)}${where(n)}`).join(', ')}`);
        break;
      case 'seqwise':
        lines.push(`${head} ${k.node.op} per sequence: ${ref(k.node)}${where(k.node)}`);
        break;
      case 'host':
        lines.push(`${head} host ${k.node.op}: ${ref(k.node)}${where(k.node)}`);
        break;
    }
  });
  return lines.join('\n') + '\n';
}

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
 *     A sum of a batch constant (a count: `mean` divides by one) is not a reduction at all: it is
 *     the constant times a size the host knows (valid tokens, `length`, `group_size`, …).
 *  3. Program outputs (loss, metrics, exports, gradients) are materialized; those that are not
 *     boundaries are computed by one map kernel per level and stage.
 *  3b. A value broadcast to a finer level is materialized at its own level (one value per seq or
 *     group), so every token does not recompute it (a sequence's advantage from its group's
 *     statistics, say). What is materialized is the last value with two or more varying operands:
 *     cheap one-operand ops on top of it (`-adv`, `adv < 0`, `adv * c`) are recomputed.
 *  4. Ops with no GPU kernel yet (keyed_reduce, quantile, quantile_weight, rank, prefix_id) run as
 *     host steps on the reference semantics; their sources are materialized first.
 * Kernels run in stages: a kernel's stage is one more than the latest stage it reads from. Then
 * three fusions cut dispatches (each is one pass over memory saved, and on a GPU every dispatch
 * costs a launch and a barrier):
 *  5. group-local: maps over sequences and groups and seq→group reductions only ever combine a
 *     group's own sequences, so a chain of them — a GRPO advantage — runs as one kernel with a
 *     thread per group, whatever stages it spans (unless a kernel in between needs its results);
 *  6. alongside: a map over the elements a batch reduction walks (the gradient of a token-mean
 *     loss beside the loss sum) is stored in that same pass;
 *     6b: a token→batch reduction at the same stage as a token→seq one is folded through the
 *     sequences in that pass; 6c: a token→batch reduction that only feeds batch-level outputs (a
 *     metric) is delayed to the last pass over the tokens, to share it;
 *  7. epilogue: batch-level maps right after batch reductions (loss = sum / count) are computed
 *     by the pass that combines the reductions' partials.
 */
import { topoSort, type Node } from '../../core/ir/node.js';
import { OP_INFO, OPS, isBoundaryOp, type Op } from '../../core/ir/op.js';
import { outputNodes, type Program } from '../../core/ir/program.js';
import type { Level } from '../../core/types/types.js';

const BOUNDARY: ReadonlySet<Op> = new Set(OPS.filter(isBoundaryOp));
const HOST: ReadonlySet<Op> = new Set(OPS.filter((op) => OP_INFO[op].role === 'host'));

export type MapKernel = { readonly kind: 'map'; readonly level: Level; readonly outputs: readonly Node[]; readonly stage: number };
export type ReduceKernel = {
  readonly kind: 'reduce';
  /** Reductions over the same levels at the same stage share one pass over their elements. */
  readonly nodes: readonly Node<'reduce'>[];
  readonly stage: number;
  /** Elementwise outputs at the reductions' source level, stored in the same pass (rule 6). */
  readonly alongside: readonly Node[];
  /** Batch-level outputs computed where the partials are combined (rule 7; reductions to the batch). */
  readonly epilogue: readonly Node[];
  /**
   * Reductions to the batch from the same elements, folded per segment in this pass and combined
   * afterwards (rule 6b): a token→seq pass also sums the batch's token means.
   */
  readonly viaSegments: readonly Node<'reduce'>[];
};
/** One step of a group-local kernel: what one thread does for its group, in order. */
export type GroupStep = MapKernel | ReduceKernel;

export type Kernel =
  | MapKernel
  | ReduceKernel
  | { readonly kind: 'seqwise'; readonly node: Node<'scan' | 'cumprod' | 'shift'>; readonly stage: number }
  | { readonly kind: 'host'; readonly node: Node; readonly stage: number }
  /** Maps over seqs/groups and seq→group reductions, one thread per group (rule 5). */
  | { readonly kind: 'group-local'; readonly steps: readonly GroupStep[]; readonly stage: number };

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
/** Reductions in one pass over tokens, at most, counting those folded through segments (registers). */
const MAX_PASS_REDUCTIONS = 8;

/** Values computed from params, the clock and constants only: cheaper to recompute than to load. */
function dependsOnlyOnScalars(n: Node): boolean {
  if (n.src.length === 0) return n.op === 'const' || n.op === 'param' || n.op === 'clock';
  return n.type.level === 'batch' && n.op !== 'reduce' && n.src.every(dependsOnlyOnScalars);
}

/** A batch-level scalar, possibly broadcast to a finer level. */
function scalarValued(n: Node): boolean {
  return n.op === 'broadcast' ? scalarValued(n.src[0]) : dependsOnlyOnScalars(n);
}

export type CountSize = 'num_tokens' | 'length' | 'group_size' | 'num_seqs' | 'num_groups';

/**
 * The size a reduction counts, when it is an unconditional sum of a batch scalar c: the sum is
 * c times the number of (valid) elements per segment, which the host knows. null otherwise.
 */
export function countedSize(n: Node): CountSize | null {
  if (n.op !== 'reduce' || (n as Node<'reduce'>).args.fn !== 'sum' || n.src.length !== 1 || !scalarValued(n.src[0])) return null;
  const route = `${n.src[0].type.level}→${n.type.level}`;
  const sizes: Record<string, CountSize> = { 'token→batch': 'num_tokens', 'token→seq': 'length', 'seq→group': 'group_size', 'seq→batch': 'num_seqs', 'group→batch': 'num_groups' };
  return sizes[route] ?? null;
}

/**
 * Rule 3b: where a value broadcast to a finer level is best materialized. Walks down through
 * elementwise ops with a single varying operand (the rest are batch scalars); null when the walk
 * ends at a leaf or an already materialized node (nothing to add).
 */
function materializationPoint(n: Node, materialized: ReadonlySet<number>): Node | null {
  for (;;) {
    if (isLeaf(n) || materialized.has(n.id) || BOUNDARY.has(n.op) || scalarValued(n)) return null;
    const varying = n.src.filter((s) => !scalarValued(s));
    if (varying.length !== 1 || varying[0].type.level !== n.type.level) return n;
    n = varying[0];
  }
}

export function planKernels(program: Program, opts: PlanOptions = {}): KernelPlan {
  const fuse = opts.fuse !== 'none';
  const roots = outputNodes(program);
  const order = topoSort(roots);
  const isBoundary = (n: Node) => BOUNDARY.has(n.op) && !(fuse && countedSize(n));
  const materialized = new Set<number>();
  for (const n of order) {
    if (isBoundary(n)) materialized.add(n.id);
    if (HOST.has(n.op)) for (const s of n.src) if (!isLeaf(s)) materialized.add(s.id);
    if (!fuse && !isLeaf(n) && n.op !== 'broadcast') materialized.add(n.id);
  }
  for (const r of roots) if (!isLeaf(r)) materialized.add(r.id);
  if (fuse) {
    for (const n of order) {
      if (n.op !== 'broadcast') continue;
      const p = materializationPoint(n.src[0], materialized);
      if (p) materialized.add(p.id);
    }
  }

  // stage of a materialized node: 1 + the latest stage among the materialized nodes its kernel reads
  const reads = new Map<number, Node[]>();
  const readsOf = (n: Node): Node[] => {
    const hit = reads.get(n.id);
    if (hit) return hit;
    const out = materializedReads(n, materialized);
    reads.set(n.id, out);
    return out;
  };
  // a map output read at the same element (by a map over its level, or by a batch reduction walking
  // that level) is computed in the same kernel: no stage boundary (rules 3 and 6)
  const walksLevel = (n: Node): Level | null => (!isBoundary(n) ? n.type.level : n.op === 'reduce' && n.type.level === 'batch' ? n.src[0].type.level : null);
  const freeRead = (n: Node, s: Node) => fuse && !isBoundary(s) && !HOST.has(s.op) && walksLevel(n) === s.type.level;
  const stage = new Map<number, number>();
  const earliest = new Map<number, number>();
  const assignStages = () => {
    for (const n of order) {
      if (!materialized.has(n.id)) continue;
      stage.set(n.id, Math.max(earliest.get(n.id) ?? 1, ...readsOf(n).map((s) => stage.get(s.id)! + (freeRead(n, s) ? 0 : 1))));
    }
  };
  assignStages();
  if (fuse) {
    // rule 6c: a token→batch reduction that only batch-level maps (outputs: a metric) depend on
    // waits for the latest pass over the tokens, and shares it instead of making its own
    const consumers = new Map<number, Node[]>();
    for (const n of order) if (materialized.has(n.id)) for (const s of readsOf(n)) consumers.set(s.id, [...(consumers.get(s.id) ?? []), n]);
    const onlyBatchMapsDownstream = (n: Node): boolean => (consumers.get(n.id) ?? []).every((c) => c.type.level === 'batch' && !isBoundary(c) && onlyBatchMapsDownstream(c));
    const tokenPasses = order.filter((n) => materialized.has(n.id) && walksLevel(n) === 'token').map((n) => stage.get(n.id)!);
    const latest = Math.max(0, ...tokenPasses);
    let moved = false;
    for (const n of order) {
      if (n.op !== 'reduce' || !isBoundary(n) || n.type.level !== 'batch' || n.src[0].type.level !== 'token') continue;
      if (stage.get(n.id)! < latest && onlyBatchMapsDownstream(n)) earliest.set(n.id, latest), (moved = true);
    }
    if (moved) assignStages();
  }

  let kernels: Kernel[] = [];
  const maxStage = Math.max(0, ...stage.values());
  for (let st = 1; st <= maxStage; st++) {
    const maps = new Map<Level, Node[]>();
    const reduces = new Map<string, Node<'reduce'>[]>();
    for (const n of order) {
      if (stage.get(n.id) !== st) continue;
      if (HOST.has(n.op)) kernels.push({ kind: 'host', node: n, stage: st });
      else if (isBoundary(n) && n.op === 'reduce') {
        // at most MAX_FUSED_REDUCTIONS per kernel (each needs workgroup memory)
        const base = `${n.src[0].type.level}→${n.type.level}`;
        let key = base;
        for (let i = 1; (reduces.get(key)?.length ?? 0) >= (fuse ? MAX_FUSED_REDUCTIONS : 1); i++) key = `${base}#${i}`;
        const list = reduces.get(key) ?? [];
        list.push(n as Node<'reduce'>);
        reduces.set(key, list);
      } else if (OP_INFO[n.op].role === 'seqwise') kernels.push({ kind: 'seqwise', node: n as Node<'scan' | 'cumprod' | 'shift'>, stage: st });
      else {
        const list = maps.get(n.type.level) ?? [];
        list.push(n);
        maps.set(n.type.level, list);
      }
    }
    for (const nodes of reduces.values()) kernels.push({ kind: 'reduce', nodes, stage: st, alongside: [], epilogue: [], viaSegments: [] });
    for (const [level, outputs] of maps) kernels.push({ kind: 'map', level, outputs, stage: st });
  }
  if (fuse) {
    kernels = fuseGroupLocal(kernels, readsOf);
    kernels = fuseAlongside(kernels);
    kernels = fuseEpilogues(kernels);
  }
  return { program, kernels, materialized: order.filter((n) => materialized.has(n.id)) };
}

/** The materialized values computing `n` loads: its sources, through every value it recomputes. */
export function materializedReads(n: Node, materialized: ReadonlySet<number>): Node[] {
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
}

/** Nodes a kernel stores (its outputs). */
export function kernelOutputs(k: Kernel): Node[] {
  switch (k.kind) {
    case 'map': return [...k.outputs];
    case 'reduce': return [...k.nodes, ...k.viaSegments, ...k.alongside, ...k.epilogue];
    case 'seqwise':
    case 'host':
      return [k.node];
    case 'group-local': return k.steps.flatMap(kernelOutputs);
  }
}

const isGroupLocal = (k: Kernel): k is GroupStep =>
  (k.kind === 'map' && (k.level === 'seq' || k.level === 'group')) ||
  (k.kind === 'reduce' && k.nodes[0].src[0].type.level === 'seq' && k.nodes[0].type.level === 'group');

/** Whether `consumer` reads `producer`'s outputs only at its own elements (a free read, same kernel or pass). */
function sameElement(consumer: Kernel, producer: Kernel): boolean {
  if (producer.kind !== 'map') return false;
  if (consumer.kind === 'map') return consumer.level === producer.level;
  return consumer.kind === 'reduce' && consumer.nodes[0].type.level === 'batch' && consumer.nodes[0].src[0].type.level === producer.level;
}

/**
 * Rule 5: merges group-local kernels into clusters run by one thread per group. A kernel joins the
 * open cluster unless that would make a cycle (it needs a kernel that itself needs the cluster);
 * then stages are recomputed from the merged dependencies.
 */
function fuseGroupLocal(kernels: Kernel[], readsOf: (n: Node) => Node[]): Kernel[] {
  // units: each original kernel, or a cluster of them (by index)
  const unitOf = new Map<number, number>(); // kernel index → unit id
  const members = new Map<number, number[]>(); // unit id → kernel indices
  const producer = new Map<number, number>(); // node id → kernel index
  kernels.forEach((k, i) => kernelOutputs(k).forEach((n) => producer.set(n.id, i)));
  const kernelDeps = kernels.map((k, i) => {
    const deps = new Set<number>();
    for (const n of kernelOutputs(k)) for (const s of readsOf(n)) {
      const p = producer.get(s.id);
      if (p !== undefined && p !== i) deps.add(p);
    }
    return deps;
  });
  kernels.forEach((_, i) => {
    unitOf.set(i, i);
    members.set(i, [i]);
  });
  const unitDeps = (u: number): Set<number> => {
    const out = new Set<number>();
    for (const i of members.get(u)!) for (const d of kernelDeps[i]) if (unitOf.get(d) !== u) out.add(unitOf.get(d)!);
    return out;
  };
  /** Whether unit `to` is reachable from unit `from` along dependencies (to needs from). */
  const needs = (to: number, from: number): boolean => {
    const stack = [to];
    const seen = new Set<number>();
    while (stack.length) {
      const u = stack.pop()!;
      for (const d of unitDeps(u)) {
        if (d === from) return true;
        if (!seen.has(d)) seen.add(d), stack.push(d);
      }
    }
    return false;
  };
  let open: number | null = null;
  kernels.forEach((k, i) => {
    if (!isGroupLocal(k)) return;
    if (open !== null) {
      // joining makes a cycle when some other unit needs the cluster and is needed by this kernel
      const cycle = [...unitDeps(i)].some((d) => d !== open && needs(d, open!));
      if (!cycle) {
        members.get(open)!.push(i);
        members.delete(i);
        unitOf.set(i, open);
        return;
      }
    }
    open = i;
  });
  // recompute stages over the units and order them; a cluster of one stays the plain kernel
  const units = [...members.keys()];
  const unitStage = new Map<number, number>();
  const stageOf = (u: number): number => {
    const hit = unitStage.get(u);
    if (hit !== undefined) return hit;
    const s = Math.max(1, ...[...unitDeps(u)].map((d) => stageOf(d) + (members.get(u)!.length === 1 && members.get(d)!.length === 1 && sameElement(kernels[u], kernels[d]) ? 0 : 1)));
    unitStage.set(u, s);
    return s;
  };
  const out = units.map((u) => {
    const st = stageOf(u);
    const ks = members.get(u)!.map((i) => kernels[i]);
    const k: Kernel = ks.length > 1 ? { kind: 'group-local', steps: ks as GroupStep[], stage: st } : { ...ks[0], stage: st };
    return { k, first: Math.min(...members.get(u)!) };
  });
  out.sort((a, b) => a.k.stage - b.k.stage || a.first - b.first);
  return out.map((o) => o.k);
}

/** Whether a reduce kernel ends in batch-level results (its own, or folded through its segments). */
export const reducesToBatch = (k: ReduceKernel): boolean => k.nodes[0].type.level === 'batch' || k.viaSegments.length > 0;

/** Whether a reduce kernel walks every token exactly once: to the batch, or to seqs (packed tokens). */
const walksAllTokens = (k: ReduceKernel) => k.nodes[0].src[0].type.level === 'token' && (k.nodes[0].type.level === 'batch' || k.nodes[0].type.level === 'seq');

/**
 * Rule 6: a map over the level a reduction walks, at the same stage, rides along its pass (a batch
 * reduction, or a token→seq reduction: packed tokens cover every token once). 6b: a token→batch
 * reduction at the same stage as a token→seq one is folded through the sequences in that pass.
 */
function fuseAlongside(kernels: Kernel[]): Kernel[] {
  let ks = [...kernels];
  // 6b first, so maps then find the merged pass
  for (const r of kernels) {
    if (r.kind !== 'reduce' || r.nodes[0].type.level !== 'batch' || r.nodes[0].src[0].type.level !== 'token') continue;
    const q = ks.find((k): k is ReduceKernel => k.kind === 'reduce' && k.stage === r.stage && k.nodes[0].src[0].type.level === 'token' && k.nodes[0].type.level === 'seq' && k.nodes.length + k.viaSegments.length + r.nodes.length <= MAX_PASS_REDUCTIONS);
    const current = ks.find((k) => k === r) as ReduceKernel | undefined;
    if (!q || !current) continue;
    ks = ks.filter((k) => k !== current).map((k) => (k === q ? { ...q, viaSegments: [...q.viaSegments, ...current.nodes], alongside: [...q.alongside, ...current.alongside], epilogue: [...q.epilogue, ...current.epilogue] } : k));
  }
  const merged = new Set<Kernel>();
  for (const m of ks) {
    if (m.kind !== 'map' || m.level === 'batch') continue;
    const fits = (r: Kernel): r is ReduceKernel =>
      r.kind === 'reduce' && r.stage === m.stage && r.nodes[0].src[0].type.level === m.level && (r.nodes[0].type.level === 'batch' || walksAllTokens(r));
    const host: ReduceKernel | undefined = ks.filter(fits).find(reducesToBatch) ?? ks.find(fits);
    if (!host) continue;
    merged.add(m);
    ks[ks.indexOf(host)] = { ...host, alongside: [...host.alongside, ...m.outputs] };
  }
  return ks.filter((k) => !merged.has(k));
}

/**
 * Rule 7: the batch-level map at stage s+1 (one per stage) becomes the epilogue of the last
 * reduction to the batch at stage s, which moves after every other kernel of stage s so each
 * value the map reads is ready when the epilogue runs.
 */
function fuseEpilogues(kernels: Kernel[]): Kernel[] {
  const out = [...kernels];
  for (const m of kernels) {
    if (m.kind !== 'map' || m.level !== 'batch') continue;
    const host = out.filter((r): r is ReduceKernel => r.kind === 'reduce' && r.stage === m.stage - 1 && reducesToBatch(r)).pop();
    if (!host) continue;
    const fused: ReduceKernel = { ...host, epilogue: [...host.epilogue, ...m.outputs] };
    out.splice(out.indexOf(host), 1);
    out.splice(out.indexOf(m), 1);
    const at = out.findIndex((k) => k.stage > host.stage);
    out.splice(at < 0 ? out.length : at, 0, fused);
  }
  return out;
}

/** Human-readable plan (`credo plan`). */
export function printPlan(plan: KernelPlan): string {
  const ids = new Map(topoSort(outputNodes(plan.program)).map((n, i) => [n.id, i] as const));
  const ref = (n: Node) => `%${ids.get(n.id)}`;
  const where = (n: Node) => (n.span ? ` (${n.span.file.path}:${n.span.file.position(n.span.start).line})` : '');
  const list = (ns: readonly Node[]) => ns.map((o) => `${ref(o)}${where(o)}`).join(', ');
  const describe = (k: Kernel): string[] => {
    switch (k.kind) {
      case 'map':
        return [`map over ${k.level}: ${list(k.outputs)}`];
      case 'reduce': {
        const lines = [`reduce ${k.nodes[0].src[0].type.level}→${k.nodes[0].type.level}: ${k.nodes.map((n) => `${n.args.fn} ${ref(n)}${where(n)}`).join(', ')}`];
        if (k.viaSegments.length) lines.push(`  and to the batch through each ${k.nodes[0].type.level}: ${k.viaSegments.map((n) => `${n.args.fn} ${ref(n)}${where(n)}`).join(', ')}`);
        if (k.alongside.length) lines.push(`  alongside, per ${k.nodes[0].src[0].type.level}: ${list(k.alongside)}`);
        if (k.epilogue.length) lines.push(`  then over batch: ${list(k.epilogue)}`);
        return lines;
      }
      case 'seqwise':
        return [`${k.node.op} per sequence: ${ref(k.node)}${where(k.node)}`];
      case 'host':
        return [`host ${k.node.op}: ${ref(k.node)}${where(k.node)}`];
      case 'group-local':
        return [`group-local (one thread per group), ${k.steps.length} steps:`, ...k.steps.flatMap(describe).map((l) => `  ${l}`)];
    }
  };
  const lines = [`plan ${plan.program.name}: ${plan.kernels.length} kernels, ${plan.materialized.length} materialized values`];
  plan.kernels.forEach((k, i) => {
    const [head, ...rest] = describe(k);
    lines.push(`  k${i} stage ${k.stage} ${head}`, ...rest.map((l) => `    ${l}`));
  });
  return lines.join('\n') + '\n';
}

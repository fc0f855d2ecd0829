/**
 * Merging kernels that only ever combine the elements of one unit (a group's sequences: fuse-
 * group-local.ts; a token's vocabulary row: fuse-rows.ts) into clusters that one thread or one
 * workgroup per unit runs in order, whatever stages they span. A kernel joins the open cluster
 * unless that would make a cycle (it needs a kernel that itself needs the cluster); then stages are
 * recomputed from the merged dependencies and the kernels reordered by them.
 */
import type { Node } from '../../core/ir/node.js';
import { kernelOutputs, type Kernel } from './kernel-plan.js';

export interface ClusterRule<Step extends Kernel> {
  /** Whether a kernel can be a step of a cluster. */
  readonly member: (k: Kernel) => k is Step;
  /**
   * Whether it can open one (default: every member can). The others only join an open cluster,
   * and only one whose outputs they read (they ride along the work that needs them).
   */
  readonly opens?: (k: Step) => boolean;
  /** The kernel running these steps (two or more), in order, at a stage. */
  readonly make: (steps: Step[], stage: number) => Kernel;
  /** Whether `consumer` reads `producer`'s outputs at its own elements only (no stage boundary). */
  readonly sameElement: (consumer: Kernel, producer: Kernel) => boolean;
}

export function clusterKernels<Step extends Kernel>(
  kernels: readonly Kernel[],
  readsOf: (n: Node) => Node[],
  rule: ClusterRule<Step>,
): Kernel[] {
  // units: each original kernel, or a cluster of them (by index)
  const unitOf = new Map<number, number>(); // kernel index → unit id
  const members = new Map<number, number[]>(); // unit id → kernel indices
  const producer = new Map<number, number>(); // node id → kernel index
  kernels.forEach((k, i) => kernelOutputs(k).forEach((n) => producer.set(n.id, i)));
  const kernelDeps = kernels.map((k, i) => {
    const deps = new Set<number>();
    for (const n of kernelOutputs(k))
      for (const s of readsOf(n)) {
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
        if (!seen.has(d)) (seen.add(d), stack.push(d));
      }
    }
    return false;
  };
  let open: number | null = null;
  kernels.forEach((k, i) => {
    if (!rule.member(k)) return;
    const opener = rule.opens?.(k) ?? true;
    if (!opener && (open === null || !unitDeps(i).has(open))) return;
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
    if (opener) open = i;
  });
  // recompute stages over the units and order them; a cluster of one stays the plain kernel
  const units = [...members.keys()];
  const unitStage = new Map<number, number>();
  const stageOf = (u: number): number => {
    const hit = unitStage.get(u);
    if (hit !== undefined) return hit;
    const s = Math.max(
      1,
      ...[...unitDeps(u)].map(
        (d) =>
          stageOf(d) +
          (members.get(u)!.length === 1 && members.get(d)!.length === 1 && rule.sameElement(kernels[u], kernels[d])
            ? 0
            : 1),
      ),
    );
    unitStage.set(u, s);
    return s;
  };
  const out = units.map((u) => {
    const st = stageOf(u);
    const ks = members.get(u)!.map((i) => kernels[i]);
    const k: Kernel = ks.length > 1 ? rule.make(ks as Step[], st) : { ...ks[0], stage: st };
    return { k, first: Math.min(...members.get(u)!) };
  });
  out.sort((a, b) => a.k.stage - b.k.stage || a.first - b.first);
  return out.map((o) => o.k);
}

/** Whether `consumer` reads `producer`'s outputs only at its own elements (a free read, same kernel or pass). */
export function readsAtSameElement(consumer: Kernel, producer: Kernel): boolean {
  if (producer.kind !== 'map') return false;
  if (consumer.kind === 'map') return consumer.level === producer.level;
  return (
    consumer.kind === 'reduce' &&
    consumer.nodes[0].type.level === 'batch' &&
    consumer.nodes[0].src[0].type.level === producer.level
  );
}

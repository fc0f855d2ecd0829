/**
 * Plan pass `fuseGroupLocal`: maps over sequences and groups and seq→group reductions only ever
 * combine a group's own sequences, so a chain of them — a GRPO advantage — runs as one kernel with
 * a thread per group, whatever stages it spans, unless a kernel in between needs its results. Each
 * merge saves a dispatch (a launch and a barrier on a GPU). Fused plans only.
 */
import type { Node } from '../../core/ir/node.js';
import { kernelOutputs, readsWithin, type GroupStep, type Kernel } from './kernel-plan.js';
import type { PlanPass } from './plan-state.js';

const isGroupLocal = (k: Kernel): k is GroupStep =>
  (k.kind === 'map' && (k.level === 'seq' || k.level === 'group')) ||
  (k.kind === 'reduce' && k.nodes[0].src[0].type.level === 'seq' && k.nodes[0].type.level === 'group');

/** Whether `consumer` reads `producer`'s outputs only at its own elements (a free read, same kernel or pass). */
function sameElement(consumer: Kernel, producer: Kernel): boolean {
  if (producer.kind !== 'map') return false;
  if (consumer.kind === 'map') return consumer.level === producer.level;
  return (
    consumer.kind === 'reduce' &&
    consumer.nodes[0].type.level === 'batch' &&
    consumer.nodes[0].src[0].type.level === producer.level
  );
}

/**
 * Merges group-local kernels into clusters run by one thread per group. A kernel joins the open
 * cluster unless that would make a cycle (it needs a kernel that itself needs the cluster); then
 * stages are recomputed from the merged dependencies.
 */
function fuseGroupLocalKernels(kernels: readonly Kernel[], readsOf: (n: Node) => Node[]): Kernel[] {
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
    const s = Math.max(
      1,
      ...[...unitDeps(u)].map(
        (d) =>
          stageOf(d) +
          (members.get(u)!.length === 1 && members.get(d)!.length === 1 && sameElement(kernels[u], kernels[d]) ? 0 : 1),
      ),
    );
    unitStage.set(u, s);
    return s;
  };
  const out = units.map((u) => {
    const st = stageOf(u);
    const ks = members.get(u)!.map((i) => kernels[i]);
    const k: Kernel =
      ks.length > 1 ? { kind: 'group-local', steps: ks as GroupStep[], stage: st } : { ...ks[0], stage: st };
    return { k, first: Math.min(...members.get(u)!) };
  });
  out.sort((a, b) => a.k.stage - b.k.stage || a.first - b.first);
  return out.map((o) => o.k);
}

/** Plan pass: group-local kernels merged, one thread per group (see the header). */
export const fuseGroupLocal: PlanPass = {
  name: 'fuseGroupLocal',
  run: (state) =>
    state.fuse ? { ...state, kernels: fuseGroupLocalKernels(state.kernels, readsWithin(state.materialized)) } : state,
};

/**
 * Plan pass `assignStages`: kernels run in stages, and a materialized node's stage is one more than
 * the latest stage among the materialized values its kernel reads — everything it needs is stored
 * by then. A read at the same element is free (no stage boundary): a map output read by a map over
 * its level, or by a batch reduction walking that level, is computed in the same kernel or pass.
 */
import type { Node } from '../../core/ir/node.js';
import type { Level } from '../../core/types/types.js';
import { isBoundary, readsWithin, runsOnHost } from './kernel-plan.js';
import type { PlanPass, PlanState } from './plan-state.js';

/**
 * The level whose elements the kernel computing `n` walks, where a map at that level can share the
 * kernel: a map's own level, a batch reduction's source level; null for other boundaries.
 */
export function walksLevel(n: Node, fuse: boolean): Level | null {
  if (!isBoundary(n, fuse)) return n.type.level;
  return n.op === 'reduce' && n.type.level === 'batch' ? n.src[0].type.level : null;
}

/**
 * The stage of every materialized node, sources first; `earliest` holds floors for nodes that must
 * wait (delay-batch-reductions).
 */
export function stagesOf(state: PlanState, earliest: ReadonlyMap<number, number> = new Map()): Map<number, number> {
  const { fuse, materialized } = state;
  const readsOf = readsWithin(materialized);
  const freeRead = (n: Node, s: Node) =>
    fuse && !isBoundary(s, fuse) && !runsOnHost(s) && walksLevel(n, fuse) === s.type.level;
  const stages = new Map<number, number>();
  for (const n of state.order) {
    if (!materialized.has(n.id)) continue;
    stages.set(
      n.id,
      Math.max(earliest.get(n.id) ?? 1, ...readsOf(n).map((s) => stages.get(s.id)! + (freeRead(n, s) ? 0 : 1))),
    );
  }
  return stages;
}

/** Plan pass: the stage of each materialized node (see the header). */
export const assignStages: PlanPass = {
  name: 'assignStages',
  run: (state) => ({ ...state, stages: stagesOf(state) }),
};

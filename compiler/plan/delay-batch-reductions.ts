/**
 * Plan pass `delayBatchReductions`: a token→batch reduction that only batch-level maps depend on
 * (outputs: a metric) waits for the latest pass over the tokens, and shares it (fuse-alongside,
 * fuse-epilogues) instead of making a pass of its own; the stages are then recomputed. Fused plans only.
 */
import type { Node } from '../../core/ir/node.js';
import { isBoundary, readsWithin } from './kernel-plan.js';
import type { PlanPass } from './plan-state.js';
import { stagesOf, walksLevel } from './stage.js';

/** Plan pass: moves metric-only token→batch reductions to the last pass over the tokens (see the header). */
export const delayBatchReductions: PlanPass = {
  name: 'delayBatchReductions',
  run(state) {
    const { fuse, materialized, order, stages } = state;
    if (!fuse) return state;
    const readsOf = readsWithin(materialized);
    const consumers = new Map<number, Node[]>();
    for (const n of order)
      if (materialized.has(n.id)) for (const s of readsOf(n)) consumers.set(s.id, [...(consumers.get(s.id) ?? []), n]);
    const onlyBatchMapsDownstream = (n: Node): boolean =>
      (consumers.get(n.id) ?? []).every(
        (c) => c.type.level === 'batch' && !isBoundary(c, fuse) && onlyBatchMapsDownstream(c),
      );
    const tokenPasses = order
      .filter((n) => materialized.has(n.id) && walksLevel(n, fuse) === 'token')
      .map((n) => stages.get(n.id)!);
    const latest = Math.max(0, ...tokenPasses);
    const earliest = new Map<number, number>();
    for (const n of order) {
      if (n.op !== 'reduce' || !isBoundary(n, fuse) || n.type.level !== 'batch' || n.src[0].type.level !== 'token')
        continue;
      if (stages.get(n.id)! < latest && onlyBatchMapsDownstream(n)) earliest.set(n.id, latest);
    }
    return earliest.size ? { ...state, stages: stagesOf(state, earliest) } : state;
  },
};

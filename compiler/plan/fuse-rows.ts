/**
 * Plan pass `fuseRows`: reductions over a token's vocabulary row and maps over the row only ever
 * combine that row's entries, so a chain of them — log-sum-exp's maximum, then its sum, then the
 * gathered log-probability and the entropy, then, once the token's gradient is known, the gradient
 * w.r.t. the logits — runs as one kernel with a workgroup per row (cluster.ts merges them), its
 * passes over the row back to back while the row is still in cache. Token-level maps that read the
 * chain's results join it (thread 0 of the row's workgroup computes the token's values), so the
 * token's gradient is computed between the forward passes and the gradient pass without a kernel
 * of its own. Fused plans only; unfused, every vocabulary kernel is a row kernel of one step.
 */
import { clusterKernels, readsAtSameElement } from './cluster.js';
import { overVocabulary, readsWithin, type Kernel, type RowStep } from './kernel-plan.js';
import type { PlanPass } from './plan-state.js';

const isRowStep = (k: Kernel): k is RowStep =>
  (k.kind === 'map' && (k.level === 'vocab' || k.level === 'token')) ||
  (k.kind === 'reduce' && k.nodes[0].src[0].type.level === 'vocab');

/** Plan pass: row-local kernels merged, one workgroup per vocabulary row (see the header). */
export const fuseRows: PlanPass = {
  name: 'fuseRows',
  run: (state) =>
    state.fuse
      ? {
          ...state,
          kernels: clusterKernels(state.kernels, readsWithin(state.materialized), {
            member: isRowStep,
            opens: overVocabulary,
            make: (steps, stage) => ({ kind: 'rows', steps, stage }),
            sameElement: readsAtSameElement,
          }),
        }
      : state,
};

/**
 * Plan pass `fuseGroupLocal`: maps over sequences and groups and seq→group reductions only ever
 * combine a group's own sequences, so a chain of them — a GRPO advantage — runs as one kernel with
 * a thread per group, whatever stages it spans, unless a kernel in between needs its results
 * (cluster.ts merges them). Each merge saves a dispatch (a launch and a barrier on a GPU). Fused
 * plans only.
 */
import { clusterKernels, readsAtSameElement } from './cluster.js';
import { readsWithin, type GroupStep, type Kernel } from './kernel-plan.js';
import type { PlanPass } from './plan-state.js';

const isGroupLocal = (k: Kernel): k is GroupStep =>
  (k.kind === 'map' && (k.level === 'seq' || k.level === 'group')) ||
  (k.kind === 'reduce' && k.nodes[0].src[0].type.level === 'seq' && k.nodes[0].type.level === 'group');

/** Plan pass: group-local kernels merged, one thread per group (see the header). */
export const fuseGroupLocal: PlanPass = {
  name: 'fuseGroupLocal',
  run: (state) =>
    state.fuse
      ? {
          ...state,
          kernels: clusterKernels(state.kernels, readsWithin(state.materialized), {
            member: isGroupLocal,
            make: (steps, stage) => ({ kind: 'group-local', steps, stage }),
            sameElement: readsAtSameElement,
          }),
        }
      : state,
};

/**
 * Plan pass `fuseEpilogues`: a batch-level map right after batch reductions (loss = sum / count) is
 * computed by the pass that combines the reductions' partials, instead of a dispatch of its own
 * for a handful of scalars. Fused plans only.
 */
import { reducesToBatch, type Kernel, type ReduceKernel } from './kernel-plan.js';
import type { PlanPass } from './plan-state.js';

/**
 * The batch-level map at stage s+1 (one per stage) becomes the epilogue of the last reduction to
 * the batch at stage s, which moves after every other kernel of stage s so each value the map
 * reads is ready when the epilogue runs.
 */
function fuseEpilogueKernels(kernels: readonly Kernel[]): Kernel[] {
  const out = [...kernels];
  for (const m of kernels) {
    if (m.kind !== 'map' || m.level !== 'batch') continue;
    const host = out
      .filter((r): r is ReduceKernel => r.kind === 'reduce' && r.stage === m.stage - 1 && reducesToBatch(r))
      .pop();
    if (!host) continue;
    const fused: ReduceKernel = { ...host, epilogue: [...host.epilogue, ...m.outputs] };
    out.splice(out.indexOf(host), 1);
    out.splice(out.indexOf(m), 1);
    const at = out.findIndex((k) => k.stage > host.stage);
    out.splice(at < 0 ? out.length : at, 0, fused);
  }
  return out;
}

/** Plan pass: batch maps folded into the preceding batch reduction's combine (see the header). */
export const fuseEpilogues: PlanPass = {
  name: 'fuseEpilogues',
  run: (state) => (state.fuse ? { ...state, kernels: fuseEpilogueKernels(state.kernels) } : state),
};

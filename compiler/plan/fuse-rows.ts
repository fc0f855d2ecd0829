/**
 * Plan pass `fuseRows`: reductions over a token's vocabulary row and maps over the row only ever
 * combine that row's entries, so a chain of them — log-sum-exp's maximum, then its sum, then the
 * gathered log-probability and the entropy, then, once the token's gradient is known, the gradient
 * w.r.t. the logits — runs as one kernel with a workgroup per row (cluster.ts merges them), its
 * passes over the row back to back while the row is still in cache. Token-level maps that read the
 * chain's results join it (thread 0 of the row's workgroup computes the token's values), so the
 * token's gradient is computed between the forward passes and the gradient pass without a kernel
 * of its own. Each log-sum-exp's sum of exp(x − max x) is then folded in the pass of its maximum
 * (an online softmax: the running sum rescaled when the running maximum grows). Fused plans only;
 * unfused, every vocabulary kernel is a row kernel of one step.
 */
import { clusterKernels, readsAtSameElement } from './cluster.js';
import type { Node } from '../../core/ir/node.js';
import { maxShift } from '../optimize/vocab-rows.js';
import { overVocabulary, readsWithin, type Kernel, type ReduceKernel, type RowStep } from './kernel-plan.js';
import type { PlanPass } from './plan-state.js';

const isRowStep = (k: Kernel): k is RowStep =>
  (k.kind === 'map' && (k.level === 'vocab' || k.level === 'token')) ||
  (k.kind === 'reduce' && k.nodes[0].src[0].type.level === 'vocab');

/** The maximum a log-sum-exp's sum Σ exp(x − M) shifts by, if `s` is such a sum (optimize/vocab-rows.ts maxShift). */
function shiftedBy(s: Node<'reduce'>): Node<'reduce'> | null {
  if (s.args.fn !== 'sum' || s.src.length !== 1) return null;
  return (maxShift(s.src[0])?.max as Node<'reduce'> | undefined) ?? null;
}

/**
 * A row kernel's log-sum-exp sums moved into the pass of their maximum (ReduceKernel.online): one
 * pass over the row fewer per log-sum-exp. Steps left without reductions are dropped.
 */
function foldOnline(k: Extract<Kernel, { kind: 'rows' }>): Kernel {
  const steps = [...k.steps];
  steps.forEach((step, j) => {
    if (step.kind !== 'reduce') return;
    for (const s of step.nodes) {
      const m = shiftedBy(s);
      const at = m ? steps.findIndex((o, i) => i < j && o.kind === 'reduce' && o.nodes.includes(m)) : -1;
      if (!m || at < 0) continue;
      const host = steps[at] as ReduceKernel;
      steps[at] = { ...host, online: [...(host.online ?? []), { sum: s, max: m }] };
      const left = (steps[j] as ReduceKernel).nodes.filter((n) => n !== s);
      steps[j] = { ...(steps[j] as ReduceKernel), nodes: left };
    }
  });
  return { ...k, steps: steps.filter((s) => s.kind !== 'reduce' || s.nodes.length > 0) };
}

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
          }).map((k) => (k.kind === 'rows' ? foldOnline(k) : k)),
        }
      : state,
};

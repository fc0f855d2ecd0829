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
import {
  kernelOutputs,
  materializedReads,
  overVocabulary,
  readsWithin,
  type Kernel,
  type ReduceKernel,
  type RowStep,
} from './kernel-plan.js';
import type { PlanPass } from './plan-state.js';

const isRowStep = (k: Kernel): k is RowStep =>
  (k.kind === 'map' && (k.level === 'vocab' || k.level === 'token')) ||
  (k.kind === 'reduce' && k.nodes[0].src[0].type.level === 'vocab');

/**
 * `s` as Σ exp(x − M) · weight over the row, M the maximum a log-sum-exp shifts x by
 * (optimize/vocab-rows.ts maxShift), weight absent for a plain Σ exp(x − M); null if it is not.
 */
function shiftedBy(s: Node<'reduce'>): { max: Node<'reduce'>; weight?: Node } | null {
  if (s.args.fn !== 'sum' || s.src.length !== 1) return null;
  const e = s.src[0];
  const plain = maxShift(e);
  if (plain) return { max: plain.max as Node<'reduce'> };
  if (e.op !== 'binary' || (e.args as { fn: string }).fn !== 'mul') return null;
  for (const [f, w] of [e.src, [...e.src].reverse()]) {
    const hit = maxShift(f);
    if (hit) return { max: hit.max as Node<'reduce'>, weight: w };
  }
  return null;
}

/**
 * A row kernel's sums of exp(x − max x) · weight moved into the pass of their maximum
 * (ReduceKernel.online), where the weight reads nothing this kernel computes: one pass over the
 * row fewer when a pass held only such sums. Steps left without reductions are dropped.
 */
function foldOnline(k: Extract<Kernel, { kind: 'rows' }>, materialized: ReadonlySet<number>): Kernel {
  const steps = [...k.steps];
  const own = new Set(k.steps.flatMap(kernelOutputs).map((n) => n.id));
  const ready = (w: Node) => materializedReads(w, materialized).every((r) => !own.has(r.id));
  steps.forEach((step, j) => {
    if (step.kind !== 'reduce') return;
    for (const s of step.nodes) {
      const hit = shiftedBy(s);
      if (!hit || (hit.weight && (hit.weight.type.level !== 'vocab' || !ready(hit.weight)))) continue;
      const at = steps.findIndex((o, i) => i < j && o.kind === 'reduce' && o.nodes.includes(hit.max));
      if (at < 0) continue;
      const host = steps[at] as ReduceKernel;
      steps[at] = { ...host, online: [...(host.online ?? []), { sum: s, ...hit }] };
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
          }).map((k) => (k.kind === 'rows' ? foldOnline(k, state.materialized) : k)),
        }
      : state,
};

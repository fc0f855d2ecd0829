/**
 * Kernel planning: splits the forward + gradient IR into kernels (a schedule, printed by
 * `credo plan`). PLAN_PASSES runs in order over a PlanState (plan-state.ts), one rule per file:
 *  - materialize (materialize.ts): which nodes get a buffer section. Elementwise ops (unary,
 *    binary, cast, where, clip, sg, broadcast) and leaves never get a kernel of their own: they
 *    fuse into every kernel that consumes them (recomputed, CSE'd within the kernel). Every
 *    boundary op (`isBoundaryOp`: reduce, scan, cumprod, shift and the host ops) is materialized,
 *    and so are the sources of host steps, the program outputs (loss, metrics, exports,
 *    gradients) and each value broadcast to a finer level, at its own level (one value per seq or
 *    group, so every token does not recompute it). A sum of a batch constant (a count: `mean`
 *    divides by one) is not a reduction at all: it is the constant times a size the host knows
 *    (valid tokens, `length`, `group_size`, …; `countedSize` in kernel-plan.ts).
 *  - assignStages (stage.ts): kernels run in stages; a kernel's stage is one more than the latest
 *    stage it reads from, except for reads at the same element (free: same kernel or pass).
 *  - delayBatchReductions (delay-batch-reductions.ts): a token→batch reduction that only feeds
 *    batch-level outputs (a metric) waits for the last pass over the tokens, to share it.
 *  - formKernels (form-kernels.ts): each stage's materialized nodes become kernels. Ops with no GPU
 *    kernel yet (keyed_reduce, quantile, quantile_weight, rank, prefix_id) are host steps on the
 *    reference semantics, scans and shifts per-sequence kernels; reductions between the same two
 *    levels share one kernel (up to MAX_FUSED_REDUCTIONS), so their inputs are read and their
 *    prologues computed once; the other materialized nodes get one map kernel per level.
 * Then four fusions cut dispatches (each is one pass over memory saved, and on a GPU every
 * dispatch costs a launch and a barrier):
 *  - fuseGroupLocal (fuse-group-local.ts): maps over sequences and groups and seq→group reductions
 *    only ever combine a group's own sequences, so a chain of them — a GRPO advantage — runs as one
 *    kernel with a thread per group, whatever stages it spans (unless a kernel in between needs
 *    its results);
 *  - fuseRows (fuse-rows.ts): passes over a token's vocabulary row (log-sum-exp, gather, entropy,
 *    the gradient w.r.t. logits) and the token work between them run as one kernel with a
 *    workgroup per row, back to back while the row is in cache;
 *  - fuseAlongside (fuse-alongside.ts): a token→batch reduction at the same stage as a token→seq
 *    one is folded through the sequences in that pass; then a map over the elements a reduction
 *    walks (the gradient of a token-mean loss beside the loss sum) is stored in that same pass;
 *  - fuseEpilogues (fuse-epilogues.ts): batch-level maps right after batch reductions
 *    (loss = sum / count) are computed by the pass that combines the reductions' partials.
 * `fuse: 'none'` materializes every op but leaves and broadcasts and skips delayBatchReductions and
 * the fusions: the unfused schedule. kernel-plan.ts holds the plan's types and the predicates
 * several passes share; print-plan.ts prints a plan.
 */
import type { Program } from '../../core/ir/program.js';
import { delayBatchReductions } from './delay-batch-reductions.js';
import { formKernels } from './form-kernels.js';
import { fuseAlongside } from './fuse-alongside.js';
import { fuseEpilogues } from './fuse-epilogues.js';
import { fuseGroupLocal } from './fuse-group-local.js';
import { fuseRows } from './fuse-rows.js';
import type { KernelPlan, PlanOptions } from './kernel-plan.js';
import { materialize } from './materialize.js';
import { initialPlanState, planOf, type PlanPass, type PlanState } from './plan-state.js';
import { assignStages } from './stage.js';

export {
  countedSize,
  kernelOutputs,
  materializedReads,
  overVocabulary,
  reducesToBatch,
  type CountSize,
  type GroupStep,
  type Kernel,
  type KernelPlan,
  type MapKernel,
  type PlanOptions,
  type ReduceKernel,
  type RowStep,
} from './kernel-plan.js';
export { describePlanState, type PlanPass, type PlanState } from './plan-state.js';
export { printPlan } from './print-plan.js';

/** The planning passes, in the order they run (the header says what each does). */
export const PLAN_PASSES: readonly PlanPass[] = [
  materialize,
  assignStages,
  delayBatchReductions,
  formKernels,
  fuseGroupLocal,
  fuseRows,
  fuseAlongside,
  fuseEpilogues,
];

/**
 * Plans the kernels of a program: runs PLAN_PASSES in order, calling `onPass` with each pass's name
 * and the state it leaves (`describePlanState` prints it: a debug dump of every stage of planning).
 */
export function planKernels(
  program: Program,
  opts: PlanOptions = {},
  onPass?: (name: string, state: PlanState) => void,
): KernelPlan {
  let state = initialPlanState(program, opts);
  for (const pass of PLAN_PASSES) {
    state = pass.run(state);
    onPass?.(pass.name, state);
  }
  return planOf(state);
}

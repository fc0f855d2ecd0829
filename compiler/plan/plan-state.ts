/**
 * The value kernel planning threads through its passes (plan.ts lists them): the program and its
 * nodes in order, then what each pass adds — the materialized nodes, their stages, the kernels —
 * and a printable form of it, so a debug switch can dump the plan after every pass.
 */
import { topoSort, type Node } from '../../core/ir/node.js';
import { outputNodes, type Program } from '../../core/ir/program.js';
import type { Kernel, KernelPlan, PlanOptions } from './kernel-plan.js';
import { kernelLines, nodeNames } from './print-plan.js';

export interface PlanState {
  readonly program: Program;
  /** false under `fuse: 'none'`: every op is materialized, and delayBatchReductions and the fusions leave the state as it is. */
  readonly fuse: boolean;
  /** Every node the outputs need, sources first: the order of allocation, of stages and of kernels within one. */
  readonly order: readonly Node[];
  /** Ids of the nodes with a buffer section (from `materialize` on). */
  readonly materialized: ReadonlySet<number>;
  /**
   * The stage of each materialized node (from `assignStages` on). Once kernels form, each kernel
   * carries its own stage, and fusions may move it (fuseGroupLocal recomputes them).
   */
  readonly stages: ReadonlyMap<number, number>;
  /** The kernels in dispatch order (from `formKernels` on; each fusion pass rewrites them). */
  readonly kernels: readonly Kernel[];
}

/** One step of kernel planning: a rule, named after the file that implements it. */
export interface PlanPass {
  readonly name: string;
  readonly run: (state: PlanState) => PlanState;
}

/** The state before any pass: nothing materialized, staged or formed yet. */
export function initialPlanState(program: Program, opts: PlanOptions = {}): PlanState {
  return {
    program,
    fuse: opts.fuse !== 'none',
    order: topoSort(outputNodes(program)),
    materialized: new Set(),
    stages: new Map(),
    kernels: [],
  };
}

/** The plan the passes have built: its kernels, and the materialized nodes in allocation (topological) order. */
export function planOf(state: PlanState): KernelPlan {
  return {
    program: state.program,
    kernels: state.kernels,
    materialized: state.order.filter((n) => state.materialized.has(n.id)),
  };
}

/**
 * The state as text, nodes named as `credo plan` names them: the materialized nodes (by stage once
 * stages exist), or once kernels exist the kernels, which carry the stages from then on.
 */
export function describePlanState(state: PlanState): string {
  const { named } = nodeNames(state.program);
  const materialized = state.order.filter((n) => state.materialized.has(n.id));
  const lines = [`${state.program.name}: ${materialized.length} materialized values${state.fuse ? '' : ' (unfused)'}`];
  if (state.kernels.length)
    lines.push(`${state.kernels.length} kernels:`, ...kernelLines(state.program, state.kernels));
  else if (state.stages.size === 0) {
    if (materialized.length) lines.push(`  ${materialized.map(named).join(', ')}`);
  } else {
    const byStage = new Map<number, Node[]>();
    for (const n of materialized) {
      const st = state.stages.get(n.id)!;
      byStage.set(st, [...(byStage.get(st) ?? []), n]);
    }
    for (const st of [...byStage.keys()].sort((a, b) => a - b))
      lines.push(`  stage ${st}: ${byStage.get(st)!.map(named).join(', ')}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * The back end, one line per stage: gradient IR → optimized IR (sums over vocabulary rows factored:
 * optimize/vocab-rows.ts) → kernel plan (materialise, stage, each fusion
 * pass: compiler/plan/plan.ts) → WGSL per kernel → a DeviceProgram the runtime executes. Every
 * caller (the GPU facade, `credo plan`, `credo wgsl`) goes through here. Set `CREDO_DEBUG=1` to
 * dump the plan after each of its passes (PLAN_PASSES), the kernels, and the device program's
 * steps to stderr.
 */
import type { DeviceProgram } from '../core/device/program.js';
import { topoSort, type Node } from '../core/ir/node.js';
import { outputNodes, type Program } from '../core/ir/program.js';
import { toDeviceProgram } from './codegen/wgsl/device-program.js';
import { emitWgsl, type WgslProgram } from './codegen/wgsl/emit.js';
import { hostStep } from './host/host-step.js';
import { optimizeRows } from './optimize/vocab-rows.js';
import { describePlanState, planKernels, type KernelPlan, type PlanOptions } from './plan/plan.js';
import { runsOnHost } from './plan/kernel-plan.js';

export interface LowerOptions extends PlanOptions {
  /** Threads per workgroup: the adapter's choice (runtime/webgpu/device.ts chooseWorkgroupSize). */
  readonly workgroupSize: number;
}

export interface Lowered {
  /** The program as lowered (optimized IR): its output nodes are the ones sectionOf and rowSlotOf know. */
  readonly program: Program;
  readonly plan: KernelPlan;
  readonly wgsl: WgslProgram;
  readonly device: DeviceProgram;
  /** The section holding a materialized node's value, or undefined (leaves and unmaterialized nodes have none). */
  sectionOf(n: Node): number | undefined;
  /** The `L` slot holding a value over the vocabulary that kernels write (a gradient w.r.t. logits), or undefined. */
  rowSlotOf(n: Node): number | undefined;
}

/** A program the device back end cannot run (yet): the message says why and what to use instead. */
export class NotOnDeviceError extends Error {}

/**
 * Why the device back end cannot run a program, or null when it can: the ops without device
 * kernels (host steps) run on the host from values in `D`, which never holds values over the
 * vocabulary (T × V of them), so none of them may take or give one (`top_p` over the vocabulary).
 */
export function deviceUnsupported(program: Program): string | null {
  const nodes = topoSort(outputNodes(program));
  const host = nodes.find((n) => runsOnHost(n) && [n, ...n.src].some((m) => m.type.level === 'vocab'));
  if (host)
    return `\`${host.op}\` over the vocabulary axis (\`token x vocab\`: a top_p mask, say) has no GPU kernel yet`;
  // Row kernels reduce a row to its own token only; the IR builds nothing coarser from `vocab`
  // (IrBuilder.reduce), but a graph that has one is refused here, never crashes the back end.
  const past = nodes.find(
    (n) => n.type.level !== 'vocab' && n.type.level !== 'token' && n.src.some((m) => m.type.level === 'vocab'),
  );
  return past
    ? `\`${past.op}\` from the vocabulary axis (\`token x vocab\`) straight to the ${past.type.level} has no GPU kernel (row kernels reduce a row to its token)`
    : null;
}

export function lowerToDevice(program: Program, opts: LowerOptions): Lowered {
  const unsupported = deviceUnsupported(program);
  if (unsupported) throw new NotOnDeviceError(`${program.name}: ${unsupported}`);
  // (unfused: the program exactly as written, the schedule every fusion is checked against)
  const optimized = opts.fuse === 'none' ? program : optimizeRows(program);
  const plan = planKernels(optimized, { fuse: opts.fuse }, (pass, state) =>
    debug(`plan: ${pass}`, () => describePlanState(state)),
  );
  const wgsl = emitWgsl(plan, opts.workgroupSize);
  debug('WGSL', () =>
    wgsl.kernels
      .map((k, i) => `kernel ${i} (${k.kernel.kind}): ${'code' in k ? `${k.code.length} characters` : 'host'}`)
      .join('\n'),
  );
  const sectionOf = (n: Node) => wgsl.slots.find({ buffer: 'D', kind: 'value', node: n });
  const device = toDeviceProgram(wgsl, optimized, (k, origin) => hostStep(k.node, origin, sectionOf));
  debug('device program', () =>
    [
      `${device.sections.length} sections, ${device.scalars.length} scalars`,
      ...device.steps.map((s, i) => `step ${i} from kernel ${s.origin}: ${s.describe}`),
    ].join('\n'),
  );
  return { program: optimized, plan, wgsl, device, sectionOf, rowSlotOf: (n) => wgsl.slots.findRow(n) };
}

function debug(stage: string, dump: () => string): void {
  if (process.env.CREDO_DEBUG) process.stderr.write(`── ${stage} ──\n${dump()}\n`);
}

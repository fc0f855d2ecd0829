/**
 * The GPU path of the facade: lower the compiled program to a device program (compiler/lower-to-
 * device.ts), run it on a Dawn device with resident buffers — for training loops that call it
 * every step — and assemble the loss, metrics, exports and gradients from the sections it reads
 * back (outputs that are leaves, a constant loss say, have no section: they are evaluated here).
 *
 *   const obj = await compileGpu('dapo');
 *   const out = await obj.run(batch, { params: { eps_high: 0.3 }, step: 10 });
 *   obj.dispose();
 */
import { givenValues, type RunValues } from '../compiler/codegen/wgsl/slots.js';
import type { WgslProgram } from '../compiler/codegen/wgsl/emit.js';
import { evaluateNodes, type EvalResult } from '../compiler/interp/eval.js';
import { checkRequirements, withOptionalInputs } from '../compiler/interp/requirements.js';
import { lowerToDevice } from '../compiler/lower-to-device.js';
import type { KernelPlan, PlanOptions } from '../compiler/plan/plan.js';
import type { RaggedBatch } from '../core/batch/batch.js';
import type { DeviceProgram } from '../core/device/program.js';
import type { Node } from '../core/ir/node.js';
import { InternalError } from '../core/diagnostics/diagnostic.js';
import { outputNodes } from '../core/ir/program.js';
import { openDevice, type GpuDevice } from '../runtime/webgpu/device.js';
import { GpuExecutor, type DeviceRun, type ExecutorOptions } from '../runtime/webgpu/executor.js';
import { checkParams, compile, type Objective, type RunOptions } from './objective.js';

export interface GpuObjective {
  readonly objective: Objective;
  readonly plan: KernelPlan;
  readonly wgsl: WgslProgram;
  readonly device: DeviceProgram;
  readonly adapter: string;
  /** Milliseconds from source to pipelines ready. */
  readonly compileMs: number;
  run(batch: RaggedBatch, opts?: GpuRunOptions): Promise<GpuRunResult>;
  /** Benchmarks: the kernels again on the last run's batch (inputs resident), reading back only the loss. */
  rerunResident(): Promise<{ loss: number; ms: number }>;
  dispose(): void;
}

export type GpuRunResult = EvalResult & Omit<DeviceRun, 'sections' | 'rows'>;

export interface GpuRunOptions extends RunOptions {
  /** Time every dispatch on its own (`GpuRunResult.profile`); slower, for finding hot kernels. */
  readonly profile?: boolean;
}

export interface GpuOptions extends PlanOptions, ExecutorOptions {
  /** Reuse an open device (tests and benchmarks open one for many objectives). */
  readonly device?: GpuDevice;
}

export async function compileGpu(
  method: string | { source: string; path: string } | Objective,
  opts: GpuOptions = {},
): Promise<GpuObjective> {
  const t0 = performance.now();
  const objective = typeof method === 'object' && 'program' in method ? method : compile(method);
  const gpu = opts.device ?? (await openDevice());
  const lowered = lowerToDevice(objective.program, { fuse: opts.fuse, workgroupSize: gpu.workgroupSize });
  // the program as lowered (optimized IR): its output nodes are the ones with sections
  const program = lowered.program;
  const executor = new GpuExecutor(gpu, lowered.device, {
    maxBindingBytes: opts.maxBindingBytes,
    stagingBytes: opts.stagingBytes,
    gradInPlace: opts.gradInPlace,
  });
  await executor.prepare();
  const compileMs = performance.now() - t0;
  // every output with a section is read back in one round trip
  const outputs = [...new Set(outputNodes(program))];
  const read = outputs.flatMap((n) => {
    const s = lowered.sectionOf(n);
    return s === undefined ? [] : [s];
  });
  // gradients w.r.t. logits, from the L arena
  const readRows = outputs.flatMap((n) => {
    const s = lowered.rowSlotOf(n);
    return s === undefined ? [] : [s];
  });
  const lossSection = lowered.sectionOf(program.loss);
  let last: { batch: RaggedBatch; values: RunValues } | null = null;
  return {
    objective,
    plan: lowered.plan,
    wgsl: lowered.wgsl,
    device: lowered.device,
    adapter: gpu.adapterName,
    compileMs,
    async run(given, runOpts = {}) {
      const overrides = checkParams(program, runOpts.params ?? {});
      const params = Object.fromEntries(program.params.map((p) => [p.name, overrides[p.name] ?? p.default]));
      const values = { params, step: runOpts.step ?? 0, totalSteps: runOpts.totalSteps ?? 0 };
      const batch = withOptionalInputs(objective.program, given, values);
      checkRequirements(objective.program, batch, values);
      const { sections, rows, ...stats } = await executor.run(batch, givenValues(values), read, {
        profile: runOpts.profile,
        rows: readRows,
      });
      last = { batch, values };
      return { ...assemble(sections, rows, batch, values), ...stats };
    },
    async rerunResident() {
      const { sections, ms } = await executor.rerunResident(lossSection === undefined ? [] : [lossSection]);
      // a loss without a section (a constant) is the same on every run
      const loss =
        lossSection !== undefined
          ? sections.get(lossSection)![0]
          : last
            ? leafValue(program.loss, last.batch, last.values)[0]
            : NaN;
      return { loss, ms };
    },
    dispose() {
      executor.dispose();
      if (!opts.device) gpu.dispose();
    },
  };

  /** The result of a run from the sections read back. */
  function assemble(
    sections: ReadonlyMap<number, Float64Array>,
    rows: ReadonlyMap<number, Float64Array>,
    batch: RaggedBatch,
    values: RunValues,
  ): EvalResult {
    const value = (n: Node) => {
      const s = lowered.sectionOf(n);
      const r = lowered.rowSlotOf(n);
      if (s !== undefined) return sections.get(s)!;
      if (r !== undefined) return rows.get(r)!;
      // every other output is materialized: a leaf (a constant, a param, an input) is all that may lack a section
      if (n.src.length > 0) throw new InternalError('gpu', `output ${n.op} %${n.id} has no section on the device`);
      return leafValue(n, batch, values);
    };
    const levelOf = (name: string) => program.inputs.find((i) => i.name === name)!.level;
    return {
      loss: value(program.loss)[0],
      metrics: Object.fromEntries([...program.metrics].map(([k, n]) => [k, value(n)[0]])),
      exports: Object.fromEntries([...program.exports].map(([k, n]) => [k, { level: n.type.level, data: value(n) }])),
      grads: Object.fromEntries([...program.grads].map(([k, n]) => [k, { level: levelOf(k), data: value(n) }])),
    };
  }
}

/** An output without a section (a constant, a param, an input): evaluated on the reference semantics. */
function leafValue(n: Node, batch: RaggedBatch, values: RunValues): Float64Array {
  return evaluateNodes([n], batch, values).get(n.id)!;
}

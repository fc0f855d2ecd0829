/**
 * The GPU path of the facade: plan the compiled program into kernels, emit WGSL, and run it on a
 * Dawn device with resident buffers — for training loops that call it every step.
 *
 *   const obj = await compileGpu('dapo');
 *   const out = await obj.run(batch, { params: { eps_high: 0.3 }, step: 10 });
 *   obj.dispose();
 */
import { emitWgsl, type WgslProgram } from '../compiler/codegen/wgsl/emit.js';
import { planKernels, type KernelPlan, type PlanOptions } from '../compiler/plan/plan.js';
import type { RaggedBatch } from '../core/batch/batch.js';
import { openDevice, type GpuDevice } from '../runtime/webgpu/device.js';
import { GpuExecutor, type ExecutorOptions, type GpuRunResult } from '../runtime/webgpu/executor.js';
import { checkParams, compile, type Objective, type RunOptions } from './objective.js';

export interface GpuObjective {
  readonly objective: Objective;
  readonly plan: KernelPlan;
  readonly wgsl: WgslProgram;
  readonly adapter: string;
  /** Milliseconds from source to pipelines ready. */
  readonly compileMs: number;
  run(batch: RaggedBatch, opts?: GpuRunOptions): Promise<GpuRunResult>;
  /** Benchmarks: the kernels again on the last run's batch (inputs resident), reading back only the loss. */
  rerunResident(): Promise<{ loss: number; ms: number }>;
  dispose(): void;
}

export interface GpuRunOptions extends RunOptions {
  /** Time every dispatch on its own (`GpuRunResult.profile`); slower, for finding hot kernels. */
  readonly profile?: boolean;
}

export interface GpuOptions extends PlanOptions, ExecutorOptions {
  /** Reuse an open device (tests and benchmarks open one for many objectives). */
  readonly device?: GpuDevice;
}

export async function compileGpu(method: string | { source: string; path: string } | Objective, opts: GpuOptions = {}): Promise<GpuObjective> {
  const t0 = performance.now();
  const objective = typeof method === 'object' && 'program' in method ? method : compile(method);
  const gpu = opts.device ?? (await openDevice());
  const plan = planKernels(objective.program, opts);
  const wgsl = emitWgsl(plan, gpu.workgroupSize);
  const executor = new GpuExecutor(gpu, plan, wgsl, { maxBindingBytes: opts.maxBindingBytes, stagingBytes: opts.stagingBytes });
  await executor.prepare();
  const compileMs = performance.now() - t0;
  return {
    objective,
    plan,
    wgsl,
    adapter: gpu.adapterName,
    compileMs,
    run(batch, runOpts = {}) {
      const overrides = checkParams(objective.program, runOpts.params ?? {});
      const params = Object.fromEntries(objective.program.params.map((p) => [p.name, overrides[p.name] ?? p.default]));
      return executor.run(batch, { params, step: runOpts.step ?? 0, totalSteps: runOpts.totalSteps ?? 0 }, { profile: runOpts.profile });
    },
    rerunResident: () => executor.rerunResident(),
    dispose() {
      executor.dispose();
      if (!opts.device) gpu.dispose();
    },
  };
}

/**
 * Runs a compiled WGSL program on a device: fills the arenas, dispatches the kernels stage by
 * stage (host steps in between read back their sources and write their result), and reads back
 * the outputs. Pipelines are cached by shader text; the two arena buffers are reused across runs
 * while they are large enough. Knows nothing about the language: it gets a plan and its shaders.
 */
import { evaluateNodes, evaluateOp, type EvalResult } from '../../compiler/interp/eval.js';
import type { WgslKernel, WgslProgram } from '../../compiler/codegen/wgsl/emit.js';
import type { KernelPlan } from '../../compiler/plan/plan.js';
import type { Node } from '../../src/ir/node.js';
import type { RaggedBatch } from '../batch/batch.js';
import { GpuError, type GpuDevice } from './device.js';
import { buildArenas, type Arenas, type RunValues } from './tables.js';

const MAX_GROUPS_PER_DIM = 65535;

export interface GpuRunResult extends EvalResult {
  readonly timings_ms: { upload: number; kernels: number; readback: number; total: number };
  readonly dispatches: number;
}

export class GpuExecutor {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private dBuf: GPUBuffer | null = null;
  private iBuf: GPUBuffer | null = null;
  /** Bind groups per pipeline, valid while the two arena buffers stay the same. */
  private bindGroups = new Map<GPUComputePipeline, GPUBindGroup>();

  constructor(
    private readonly gpu: GpuDevice,
    private readonly plan: KernelPlan,
    private readonly wgsl: WgslProgram,
  ) {}

  /** Compiles every pipeline now (otherwise on first use). */
  async prepare(): Promise<void> {
    for (const k of this.wgsl.kernels) if ('code' in k) await this.pipeline(k);
  }

  private async pipeline(k: WgslKernel): Promise<GPUComputePipeline> {
    const hit = this.pipelines.get(k.code);
    if (hit) return hit;
    const device = this.gpu.device;
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code: k.code });
    // NOTE: createComputePipelineAsync aborts the process in dawn.node 0.6 (futex error); the sync call is fine
    const p = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
    const err = await device.popErrorScope();
    if (err) throw new Error(`WGSL rejected by the device (${err.message}) in:\n${k.code}`);
    this.pipelines.set(k.code, p);
    return p;
  }

  private buffer(current: GPUBuffer | null, bytes: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    if (current && current.size >= size) return current;
    current?.destroy();
    this.bindGroups.clear();
    return this.gpu.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  }

  private grid(k: WgslKernel, batch: RaggedBatch): [number, number] {
    const count = k.grid.level === 'token' ? batch.numTokens : k.grid.level === 'seq' ? batch.numSeqs : k.grid.level === 'group' ? batch.numGroups : 1;
    const groups = k.grid.per === 'segment' ? count : k.grid.per === 'chunk' ? Math.ceil(count / k.grid.chunk) : Math.ceil(count / k.workgroupSize);
    if (groups <= MAX_GROUPS_PER_DIM) return [groups, 1];
    return [MAX_GROUPS_PER_DIM, Math.ceil(groups / MAX_GROUPS_PER_DIM)];
  }

  private async readSection(node: Node, arenas: Arenas, length: number): Promise<Float32Array> {
    const slot = this.wgsl.slots.slot({ buffer: 'D', kind: 'value', node });
    return this.readRange(arenas.offsets[slot], length);
  }

  private async readRange(offset: number, length: number): Promise<Float32Array> {
    const device = this.gpu.device;
    const bytes = Math.max(4, length * 4);
    const staging = device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = device.createCommandEncoder();
    if (length > 0) enc.copyBufferToBuffer(this.dBuf!, offset * 4, staging, 0, length * 4);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(staging.getMappedRange().slice(0, length * 4));
    staging.unmap();
    staging.destroy();
    return out;
  }

  async run(batch: RaggedBatch, values: RunValues): Promise<GpuRunResult> {
    const device = this.gpu.device;
    const t0 = performance.now();
    const lost = this.gpu.lostReason();
    if (lost) throw new GpuError(`the GPU device was lost (${lost}); open a new one`);
    const arenas = buildArenas(this.wgsl.slots, batch, values);
    const limit = device.limits.maxStorageBufferBindingSize;
    const largest = Math.max(arenas.D.byteLength, arenas.I.byteLength);
    if (largest > limit) {
      // NOTE: splitting a batch across several bindings is not implemented yet
      throw new GpuError(`this batch needs a ${(largest / 2 ** 20).toFixed(0)} MiB buffer, above the device's ${(limit / 2 ** 20).toFixed(0)} MiB binding limit; split the batch or use --backend cpu`);
    }
    this.dBuf = this.buffer(this.dBuf, arenas.D.byteLength);
    this.iBuf = this.buffer(this.iBuf, arenas.I.byteLength);
    device.queue.writeBuffer(this.dBuf, 0, arenas.D as Float32Array<ArrayBuffer>);
    device.queue.writeBuffer(this.iBuf, 0, arenas.I as Uint32Array<ArrayBuffer>);
    const t1 = performance.now();
    device.pushErrorScope('validation');
    let dispatches = 0;
    let enc = device.createCommandEncoder();
    let pass = enc.beginComputePass();
    for (const k of this.wgsl.kernels) {
      if (!('code' in k)) {
        // host step: finish the work so far, compute on the reference semantics, upload the result
        pass.end();
        device.queue.submit([enc.finish()]);
        await this.hostStep(k.kernel.node, batch, arenas, values);
        enc = device.createCommandEncoder();
        pass = enc.beginComputePass();
        continue;
      }
      if (k.when) {
        const size = (l: string) => (l === 'token' ? batch.numTokens : l === 'seq' ? batch.numSeqs : l === 'group' ? batch.numGroups : 1);
        const mean = size(k.when.from) / Math.max(1, size(k.when.to));
        if ((k.when.meanBelow !== undefined && mean >= k.when.meanBelow) || (k.when.meanAtLeast !== undefined && mean < k.when.meanAtLeast)) continue;
      }
      const [x, y] = this.grid(k, batch);
      if (x === 0) continue;
      const p = await this.pipeline(k);
      pass.setPipeline(p);
      let bind = this.bindGroups.get(p);
      if (!bind) {
        bind = device.createBindGroup({ layout: p.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: this.dBuf } }, { binding: 1, resource: { buffer: this.iBuf } }] });
        this.bindGroups.set(p, bind);
      }
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(x, y);
      dispatches++;
    }
    pass.end();
    device.queue.submit([enc.finish()]);
    const err = await device.popErrorScope();
    if (err) throw new Error(`GPU validation error: ${err.message}`);
    await device.queue.onSubmittedWorkDone();
    const t2 = performance.now();
    const result = await this.readOutputs(batch, arenas);
    const t3 = performance.now();
    return { ...result, dispatches, timings_ms: { upload: t1 - t0, kernels: t2 - t1, readback: t3 - t2, total: t3 - t0 } };
  }

  private async hostStep(node: Node, batch: RaggedBatch, arenas: Arenas, values: RunValues): Promise<void> {
    const sources: Float64Array[] = [];
    for (const s of node.src) {
      if (s.src.length === 0) sources.push(evaluateNodes([s], batch, { params: values.params, step: values.step, totalSteps: values.totalSteps }).get(s.id)!);
      else sources.push(Float64Array.from(await this.readSection(s, arenas, arenas.segments.size(s.type.level))));
    }
    const out = evaluateOp(node, sources, batch, arenas.segments);
    const slot = this.wgsl.slots.slot({ buffer: 'D', kind: 'value', node });
    if (out.length) this.gpu.device.queue.writeBuffer(this.dBuf!, arenas.offsets[slot] * 4, Float32Array.from(out));
  }

  private async readOutputs(batch: RaggedBatch, arenas: Arenas): Promise<EvalResult> {
    const p = this.plan.program;
    const read = async (n: Node): Promise<Float64Array> => {
      const len = arenas.segments.size(n.type.level);
      if (n.src.length === 0) return evaluateNodes([n], batch, {}).get(n.id)!; // a constant output
      return Float64Array.from(await this.readSection(n, arenas, len));
    };
    const metrics: Record<string, number> = {};
    for (const [k, n] of p.metrics) metrics[k] = (await read(n))[0];
    const exports: EvalResult['exports'] = {};
    for (const [k, n] of p.exports) exports[k] = { level: n.type.level, data: await read(n) };
    const grads: EvalResult['grads'] = {};
    for (const [k, n] of p.grads) grads[k] = { level: p.inputs.find((i) => i.name === k)!.level, data: await read(n) };
    return { loss: (await read(p.loss))[0], metrics, exports, grads };
  }

  dispose(): void {
    this.dBuf?.destroy();
    this.iBuf?.destroy();
    this.dBuf = this.iBuf = null;
  }
}

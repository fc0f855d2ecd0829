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
import { outputNodes } from '../../src/ir/program.js';
import { BatchError, type RaggedBatch } from '../batch/batch.js';
import { InternalError } from '../../src/diagnostics/diagnostic.js';
import { GpuError, type GpuDevice } from './device.js';
import { buildArenas, type Arenas, type RunValues } from './tables.js';

const MAX_GROUPS_PER_DIM = 65535;

/**
 * Pipelines per device, by shader text: compiling an objective again (a new process step, another
 * objective sharing kernels) reuses them — the WGSL → native compile is most of a cold compile.
 */
const pipelineCache = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

export interface GpuRunResult extends EvalResult {
  readonly timings_ms: { upload: number; kernels: number; readback: number; total: number };
  readonly dispatches: number;
  /** With `profile`: wall ms of each dispatch run on its own (submit + wait), in plan order. */
  readonly profile?: readonly { readonly kernel: number; readonly ms: number }[];
}

export class GpuExecutor {
  private readonly pipelines: Map<string, GPUComputePipeline>;
  private dBuf: GPUBuffer | null = null;
  private iBuf: GPUBuffer | null = null;
  /** Upload staging memory, mapped for writing and reused while large enough. */
  private uploadStaging: GPUBuffer | null = null;
  /** The last run's batch and arenas (their offsets stay valid), for rerunResident. */
  private last: { batch: RaggedBatch; arenas: Arenas; values: RunValues } | null = null;
  /** Readback staging memory, reused while large enough (fresh memory costs page faults). */
  private staging: GPUBuffer | null = null;
  /** Bind groups per pipeline, valid while the two arena buffers stay the same. */
  private bindGroups = new Map<GPUComputePipeline, GPUBindGroup>();

  constructor(
    private readonly gpu: GpuDevice,
    private readonly plan: KernelPlan,
    private readonly wgsl: WgslProgram,
  ) {
    const cached = pipelineCache.get(gpu.device) ?? new Map<string, GPUComputePipeline>();
    pipelineCache.set(gpu.device, cached);
    this.pipelines = cached;
  }

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

  /**
   * Copies host arrays into device buffers through one reused, mapped staging buffer, and waits
   * until they are there. (queue.writeBuffer stages through fresh memory every call; first
   * touches of fresh pages cost more than the copy itself, on virtual machines several times more.)
   */
  private async upload(parts: readonly { readonly target: GPUBuffer; readonly data: Float32Array | Uint32Array }[]): Promise<void> {
    const device = this.gpu.device;
    const total = parts.reduce((n, p) => n + p.data.byteLength, 0);
    const bytes = Math.max(16, Math.ceil(total / 16) * 16);
    if (!this.uploadStaging || this.uploadStaging.size < bytes) {
      this.uploadStaging?.destroy();
      this.uploadStaging = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC });
    }
    const staging = this.uploadStaging;
    await staging.mapAsync(GPUMapMode.WRITE, 0, bytes);
    const mapped = staging.getMappedRange(0, bytes);
    let at = 0;
    for (const p of parts) {
      new Uint8Array(mapped, at, p.data.byteLength).set(new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength));
      at += p.data.byteLength;
    }
    staging.unmap();
    const enc = device.createCommandEncoder();
    at = 0;
    for (const p of parts) {
      if (p.data.byteLength) enc.copyBufferToBuffer(staging, at, p.target, 0, p.data.byteLength);
      at += p.data.byteLength;
    }
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  }

  private grid(k: WgslKernel, batch: RaggedBatch): [number, number] {
    const count = k.grid.level === 'token' ? batch.numTokens : k.grid.level === 'seq' ? batch.numSeqs : k.grid.level === 'group' ? batch.numGroups : 1;
    const groups = k.grid.per === 'segment' ? count : k.grid.per === 'chunk' ? Math.ceil(count / k.grid.chunk) : Math.ceil(count / k.workgroupSize);
    if (groups <= MAX_GROUPS_PER_DIM) return [groups, 1];
    return [MAX_GROUPS_PER_DIM, Math.ceil(groups / MAX_GROUPS_PER_DIM)];
  }

  /**
   * Reads the sections of several materialized values with one staging buffer and one map (each
   * readback is a round trip to the device; outputs and host-step sources are read together).
   */
  private async readSections(nodes: readonly Node[], arenas: Arenas): Promise<Map<number, Float64Array>> {
    const device = this.gpu.device;
    const ranges = nodes.map((n) => ({
      node: n,
      offset: arenas.offsets[this.wgsl.slots.slot({ buffer: 'D', kind: 'value', node: n })],
      length: arenas.segments.size(n.type.level),
    }));
    const total = ranges.reduce((s, r) => s + r.length, 0);
    const bytes = Math.max(16, Math.ceil((total * 4) / 16) * 16);
    if (!this.staging || this.staging.size < bytes) {
      this.staging?.destroy();
      this.staging = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    }
    const staging = this.staging;
    const enc = device.createCommandEncoder();
    let at = 0;
    for (const r of ranges) {
      if (r.length > 0) enc.copyBufferToBuffer(this.dBuf!, r.offset * 4, staging, at * 4, r.length * 4);
      at += r.length;
    }
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const all = new Float32Array(staging.getMappedRange());
    const out = new Map<number, Float64Array>();
    at = 0;
    for (const r of ranges) {
      out.set(r.node.id, Float64Array.from(all.subarray(at, at + r.length)));
      at += r.length;
    }
    staging.unmap();
    return out;
  }

  async run(batch: RaggedBatch, values: RunValues, opts: { readonly profile?: boolean } = {}): Promise<GpuRunResult> {
    const device = this.gpu.device;
    const t0 = performance.now();
    const lost = this.gpu.lostReason();
    if (lost) throw new GpuError(`the GPU device was lost (${lost}); open a new one`);
    // kernels walk each sequence's tokens as offsets[s]..offsets[s+1]: they must tile all tokens
    if (batch.offsets[0] !== 0 || batch.offsets[batch.numSeqs] !== batch.numTokens) {
      throw new BatchError('batch', `sequence offsets cover tokens ${batch.offsets[0]}..${batch.offsets[batch.numSeqs]}, expected 0..${batch.numTokens}; every token must belong to a sequence (packed layout)`);
    }
    const arenas = buildArenas(this.wgsl.slots, batch, values);
    const limit = device.limits.maxStorageBufferBindingSize;
    const largest = Math.max(arenas.D.byteLength, arenas.I.byteLength);
    if (largest > limit) {
      // NOTE: splitting a batch across several bindings is not implemented yet
      throw new GpuError(`this batch needs a ${(largest / 2 ** 20).toFixed(0)} MiB buffer, above the device's ${(limit / 2 ** 20).toFixed(0)} MiB binding limit; split the batch or use --backend cpu`);
    }
    this.dBuf = this.buffer(this.dBuf, arenas.D.byteLength);
    const iBuf = this.buffer(this.iBuf, arenas.I.byteLength);
    // the index tables of the same batch are already on the device (unless the buffer is new)
    const sameTables = iBuf === this.iBuf && arenas.sameStructure;
    this.iBuf = iBuf;
    await this.upload([{ target: this.dBuf, data: arenas.D }, ...(sameTables ? [] : [{ target: iBuf, data: arenas.I }])]);
    const t1 = performance.now();
    const { dispatches, profile } = await this.dispatchAll(batch, arenas, values, !!opts.profile);
    this.last = { batch, arenas, values };
    const t2 = performance.now();
    const result = await this.readOutputs(batch, arenas, values);
    const t3 = performance.now();
    return { ...result, dispatches, ...(opts.profile ? { profile } : {}), timings_ms: { upload: t1 - t0, kernels: t2 - t1, readback: t3 - t2, total: t3 - t0 } };
  }

  /**
   * Runs the kernels again on the batch of the last `run`, whose inputs are still on the device,
   * and reads back only the loss (the gradient stays on the device): the time of a training step
   * whose inputs are already device buffers — what `npm run bench` reports as resident.
   */
  async rerunResident(): Promise<{ loss: number; ms: number }> {
    if (!this.last) throw new GpuError('rerunResident needs a previous run() on this objective');
    const { batch, arenas, values } = this.last;
    const t0 = performance.now();
    await this.dispatchAll(batch, arenas, values, false);
    const loss = (await this.readSections([this.plan.program.loss].filter((n) => n.src.length > 0), arenas)).get(this.plan.program.loss.id)?.[0] ?? NaN;
    return { loss, ms: performance.now() - t0 };
  }

  /** Dispatches every kernel in plan order (host steps in between) and waits for the device. */
  private async dispatchAll(batch: RaggedBatch, arenas: Arenas, values: RunValues, profiling: boolean): Promise<{ dispatches: number; profile: { kernel: number; ms: number }[] }> {
    const device = this.gpu.device;
    const [dBuf, iBuf] = [this.dBuf, this.iBuf];
    if (!dBuf || !iBuf) throw new InternalError('gpu-executor', 'dispatch before the arenas were uploaded');
    device.pushErrorScope('validation');
    let dispatches = 0;
    const profile: { kernel: number; ms: number }[] = [];
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
        bind = device.createBindGroup({ layout: p.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: dBuf } }, { binding: 1, resource: { buffer: iBuf } }] });
        this.bindGroups.set(p, bind);
      }
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(x, y);
      dispatches++;
      if (profiling) {
        // one dispatch per submission, waited for: slower overall, but says where the time goes
        pass.end();
        const start = performance.now();
        device.queue.submit([enc.finish()]);
        await device.queue.onSubmittedWorkDone();
        profile.push({ kernel: this.plan.kernels.indexOf(k.kernel), ms: performance.now() - start });
        enc = device.createCommandEncoder();
        pass = enc.beginComputePass();
      }
    }
    pass.end();
    device.queue.submit([enc.finish()]);
    const err = await device.popErrorScope();
    if (err) throw new Error(`GPU validation error: ${err.message}`);
    await device.queue.onSubmittedWorkDone();
    return { dispatches, profile };
  }

  private async hostStep(node: Node, batch: RaggedBatch, arenas: Arenas, values: RunValues): Promise<void> {
    const read = await this.readSections(node.src.filter((s) => s.src.length > 0), arenas);
    const sources = node.src.map(
      (s) => read.get(s.id) ?? evaluateNodes([s], batch, { params: values.params, step: values.step, totalSteps: values.totalSteps }).get(s.id)!,
    );
    const out = evaluateOp(node, sources, batch, arenas.segments);
    const slot = this.wgsl.slots.slot({ buffer: 'D', kind: 'value', node });
    if (out.length) this.gpu.device.queue.writeBuffer(this.dBuf!, arenas.offsets[slot] * 4, Float32Array.from(out));
  }

  private async readOutputs(batch: RaggedBatch, arenas: Arenas, values: RunValues): Promise<EvalResult> {
    const p = this.plan.program;
    const nodes = outputNodes(p);
    const read = await this.readSections([...new Set(nodes.filter((n) => n.src.length > 0))], arenas);
    // an output that is a leaf (a constant, a param, an input) has no section: evaluate it here
    const value = (n: Node) => read.get(n.id) ?? evaluateNodes([n], batch, { params: values.params, step: values.step, totalSteps: values.totalSteps }).get(n.id)!;
    const levelOf = (name: string) => p.inputs.find((i) => i.name === name)!.level;
    return {
      loss: value(p.loss)[0],
      metrics: Object.fromEntries([...p.metrics].map(([k, n]) => [k, value(n)[0]])),
      exports: Object.fromEntries([...p.exports].map(([k, n]) => [k, { level: n.type.level, data: value(n) }])),
      grads: Object.fromEntries([...p.grads].map(([k, n]) => [k, { level: levelOf(k), data: value(n) }])),
    };
  }

  dispose(): void {
    this.dBuf?.destroy();
    this.iBuf?.destroy();
    this.staging?.destroy();
    this.uploadStaging?.destroy();
    this.dBuf = this.iBuf = this.staging = this.uploadStaging = null;
    this.last = null;
  }
}

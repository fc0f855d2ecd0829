/**
 * Runs a compiled WGSL program on a device: fills the arenas, dispatches the kernels stage by
 * stage (host steps in between read back their sources and write their result), and reads back
 * the outputs. A batch larger than one storage binding runs in chunks of whole groups
 * (chunks.ts): each kernel runs once per chunk on the chunk's own `D` and `I`, except the
 * batch-level ones (combines, batch maps), which run once on the shared `G` (slots.ts).
 * Pipelines are cached by shader text; the arena buffers are reused across runs while they are
 * large enough. Knows nothing about the language: it gets a plan and its shaders.
 */
import { evaluateNodes, evaluateOp, type EvalResult } from '../../compiler/interp/eval.js';
import type { WgslKernel, WgslProgram } from '../../compiler/codegen/wgsl/emit.js';
import type { KernelPlan } from '../../compiler/plan/plan.js';
import type { Node } from '../../core/ir/node.js';
import { outputNodes } from '../../core/ir/program.js';
import { BatchError, countAt, type RaggedBatch } from '../../core/batch/batch.js';
import { InternalError } from '../../core/diagnostics/diagnostic.js';
import { GpuError, type GpuDevice } from './device.js';
import { bytesText, partOf, splitBatch, stitch, type Chunk } from './chunks.js';
import { buildArenas, chunkBindingBytes, type Arenas, type RunValues } from './tables.js';

const MAX_GROUPS_PER_DIM = 65535;

/**
 * Pipelines per device, by shader text: compiling an objective again (a new process step, another
 * objective sharing kernels) reuses them — the WGSL → native compile is most of a cold compile.
 */
const pipelineCache = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/** The one pipeline layout of every kernel: D, I, G (a kernel may leave some unused). */
const layoutCache = new WeakMap<GPUDevice, GPUPipelineLayout>();

function pipelineLayout(device: GPUDevice): GPUPipelineLayout {
  let layout = layoutCache.get(device);
  if (!layout) {
    const entry = (binding: number, type: GPUBufferBindingType): GPUBindGroupLayoutEntry => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type } });
    const bindGroupLayout = device.createBindGroupLayout({ entries: [entry(0, 'storage'), entry(1, 'read-only-storage'), entry(2, 'storage')] });
    layoutCache.set(device, (layout = device.createPipelineLayout({ bindGroupLayouts: [bindGroupLayout] })));
  }
  return layout;
}

/** Where the last run left things, for rerunResident. */
interface RunState {
  readonly batch: RaggedBatch;
  readonly chunks: readonly Chunk[];
  readonly arenas: Arenas;
  readonly values: RunValues;
}

export interface GpuRunResult extends EvalResult {
  readonly timings_ms: { upload: number; kernels: number; readback: number; total: number };
  readonly dispatches: number;
  /** How many chunks of whole groups the batch ran in (1 unless it is larger than one binding). */
  readonly chunks: number;
  /** With `profile`: wall ms of each dispatch run on its own (submit + wait), in plan order. */
  readonly profile?: readonly { readonly kernel: number; readonly ms: number }[];
}

export interface ExecutorOptions {
  /**
   * The largest per-chunk binding (a chunk's `D` or `I`) to use, in bytes (default and at most:
   * the device's limit). Batches whose arenas are larger run in chunks of whole groups; tests set
   * it low to exercise chunking. (`G`, shared by all chunks, only has to fit the device's limit.)
   */
  readonly maxBindingBytes?: number;
  /**
   * The most one staging buffer (host ↔ device copies) holds, in bytes: larger uploads and
   * readbacks go in rounds (default: 256 MiB, or the device's largest buffer if smaller).
   */
  readonly stagingBytes?: number;
}

export class GpuExecutor {
  private readonly pipelines: Map<string, GPUComputePipeline>;
  /** The shared arena G, and each chunk's D and I. */
  private gBuf: GPUBuffer | null = null;
  private chunkBufs: { d: GPUBuffer; i: GPUBuffer }[] = [];
  /** Upload staging memory, mapped for writing and reused while large enough. */
  private uploadStaging: GPUBuffer | null = null;
  /** The last run's batch, chunks and arenas (their offsets stay valid), for rerunResident. */
  private last: RunState | null = null;
  /** Readback staging memory, reused while large enough (fresh memory costs page faults). */
  private staging: GPUBuffer | null = null;
  /** Bind groups per pipeline and chunk, valid while the arena buffers stay the same. */
  private bindGroups = new Map<GPUComputePipeline, GPUBindGroup[]>();
  private readonly limit: number;
  /** The most one staging buffer holds (ExecutorOptions.stagingBytes), a multiple of 16 bytes. */
  private readonly stagingBytes: number;

  constructor(
    private readonly gpu: GpuDevice,
    private readonly plan: KernelPlan,
    private readonly wgsl: WgslProgram,
    opts: ExecutorOptions = {},
  ) {
    const deviceLimit = gpu.device.limits.maxStorageBufferBindingSize;
    if (opts.maxBindingBytes !== undefined && !(Number.isInteger(opts.maxBindingBytes) && opts.maxBindingBytes >= 256)) {
      throw new GpuError(`maxBindingBytes must be an integer of at least 256, got ${opts.maxBindingBytes}`);
    }
    this.limit = Math.min(deviceLimit, opts.maxBindingBytes ?? deviceLimit);
    if (opts.stagingBytes !== undefined && !(Number.isInteger(opts.stagingBytes) && opts.stagingBytes >= 16)) {
      throw new GpuError(`stagingBytes must be an integer of at least 16, got ${opts.stagingBytes}`);
    }
    this.stagingBytes = Math.floor(Math.min(opts.stagingBytes ?? 256 * 2 ** 20, gpu.device.limits.maxBufferSize) / 16) * 16;
    const cached = pipelineCache.get(gpu.device) ?? new Map<string, GPUComputePipeline>();
    pipelineCache.set(gpu.device, cached);
    this.pipelines = cached;
  }

  /**
   * Compiles now every pipeline a batch in one chunk can need (either strategy); those only a
   * batch beyond one binding needs are compiled on first use.
   */
  async prepare(): Promise<void> {
    const needed = this.wgsl.kernels.filter((k): k is WgslKernel => 'code' in k && !(k.when && 'chunks' in k.when && k.when.chunks === 'many') && !this.pipelines.has(k.code));
    // one error scope for all (each pop is a round trip to the device); on an error, again one by
    // one to say which shader it was
    const device = this.gpu.device;
    device.pushErrorScope('validation');
    const made = needed.map((k) => [k.code, this.createPipeline(k)] as const);
    if (await device.popErrorScope()) {
      for (const k of needed) await this.pipeline(k);
      return;
    }
    for (const [code, p] of made) this.pipelines.set(code, p);
  }

  private createPipeline(k: WgslKernel): GPUComputePipeline {
    const device = this.gpu.device;
    const module = device.createShaderModule({ code: k.code });
    // NOTE: createComputePipelineAsync aborts the process in dawn.node 0.6 (futex error); the sync call is fine
    return device.createComputePipeline({ layout: pipelineLayout(device), compute: { module, entryPoint: 'main' } });
  }

  private async pipeline(k: WgslKernel): Promise<GPUComputePipeline> {
    const hit = this.pipelines.get(k.code);
    if (hit) return hit;
    const device = this.gpu.device;
    device.pushErrorScope('validation');
    const p = this.createPipeline(k);
    const err = await device.popErrorScope();
    if (err) throw new Error(`WGSL rejected by the device (${err.message}) in:\n${k.code}`);
    this.pipelines.set(k.code, p);
    return p;
  }

  private buffer(current: GPUBuffer | null | undefined, bytes: number): GPUBuffer {
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
    // pieces of at most one staging buffer's size, in rounds that each fill it at most once
    const cap = this.stagingBytes;
    const pieces = parts.flatMap((p) => {
      const bytes = new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength);
      const out: { target: GPUBuffer; offset: number; bytes: Uint8Array }[] = [];
      for (let at = 0; at < bytes.length; at += cap) out.push({ target: p.target, offset: at, bytes: bytes.subarray(at, Math.min(bytes.length, at + cap)) });
      return out;
    });
    for (let i = 0; i < pieces.length; ) {
      let total = 0;
      let j = i;
      while (j < pieces.length && total + pieces[j].bytes.length <= cap) total += pieces[j++].bytes.length;
      const round = pieces.slice(i, j);
      i = j;
      const bytes = Math.max(16, Math.ceil(total / 16) * 16);
      if (!this.uploadStaging || this.uploadStaging.size < bytes) {
        this.uploadStaging?.destroy();
        this.uploadStaging = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC });
      }
      const staging = this.uploadStaging;
      await staging.mapAsync(GPUMapMode.WRITE, 0, bytes);
      const mapped = new Uint8Array(staging.getMappedRange(0, bytes));
      let at = 0;
      for (const p of round) {
        mapped.set(p.bytes, at);
        at += p.bytes.length;
      }
      staging.unmap();
      const enc = device.createCommandEncoder();
      at = 0;
      for (const p of round) {
        enc.copyBufferToBuffer(staging, at, p.target, p.offset, p.bytes.length);
        at += p.bytes.length;
      }
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
    }
  }

  private grid(k: WgslKernel, batch: RaggedBatch): [number, number] {
    const count = countAt(batch, k.grid.level);
    const groups = k.grid.per === 'segment' ? count : k.grid.per === 'chunk' ? Math.ceil(count / k.grid.chunk) : Math.ceil(count / k.workgroupSize);
    if (groups <= MAX_GROUPS_PER_DIM) return [groups, 1];
    return [MAX_GROUPS_PER_DIM, Math.ceil(groups / MAX_GROUPS_PER_DIM)];
  }

  /**
   * Reads the sections of several materialized values with one staging buffer and one map (each
   * readback is a round trip to the device; outputs and host-step sources are read together):
   * batch-level values from G, the others from every chunk, stitched into the batch's order.
   */
  private async readSections(nodes: readonly Node[], state: RunState): Promise<Map<number, Float64Array>> {
    const device = this.gpu.device;
    const { chunks, arenas } = state;
    // each node's part per chunk (one for batch-level values), filled from the device below
    const parts = new Map<number, Float64Array[]>();
    const ranges = nodes.flatMap((n) => {
      const slot = this.wgsl.slots.slot({ buffer: 'D', kind: 'value', node: n });
      const list = n.type.level === 'batch' ? [{ source: this.gBuf!, offset: arenas.gOffsets[slot], length: 1 }] : arenas.chunks.map((c, i) => ({ source: this.chunkBufs[i].d, offset: c.offsets[slot], length: c.segments.size(n.type.level) }));
      parts.set(n.id, list.map((r) => new Float64Array(r.length)));
      return list.map((r, i) => ({ ...r, into: parts.get(n.id)![i] }));
    });
    // pieces of at most one staging buffer, read in rounds
    const capElements = this.stagingBytes / 4;
    const pieces = ranges.flatMap((r) => {
      const out: { source: GPUBuffer; offset: number; length: number; into: Float64Array; at: number }[] = [];
      for (let at = 0; at < r.length; at += capElements) out.push({ source: r.source, offset: r.offset + at, length: Math.min(capElements, r.length - at), into: r.into, at });
      return out;
    });
    for (let i = 0; i < pieces.length; ) {
      let total = 0;
      let j = i;
      while (j < pieces.length && total + pieces[j].length <= capElements) total += pieces[j++].length;
      const round = pieces.slice(i, j);
      i = j;
      const bytes = Math.max(16, Math.ceil((total * 4) / 16) * 16);
      if (!this.staging || this.staging.size < bytes) {
        this.staging?.destroy();
        this.staging = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      }
      const staging = this.staging;
      const enc = device.createCommandEncoder();
      let at = 0;
      for (const p of round) {
        enc.copyBufferToBuffer(p.source, p.offset * 4, staging, at * 4, p.length * 4);
        at += p.length;
      }
      device.queue.submit([enc.finish()]);
      await staging.mapAsync(GPUMapMode.READ, 0, bytes);
      const all = new Float32Array(staging.getMappedRange(0, bytes));
      at = 0;
      for (const p of round) {
        p.into.set(all.subarray(at, at + p.length), p.at);
        at += p.length;
      }
      staging.unmap();
    }
    return new Map(nodes.map((n) => [n.id, stitch(state.batch, chunks, n.type.level, parts.get(n.id)!)]));
  }

  async run(batch: RaggedBatch, values: RunValues, opts: { readonly profile?: boolean } = {}): Promise<GpuRunResult> {
    const t0 = performance.now();
    const lost = this.gpu.lostReason();
    if (lost) throw new GpuError(`the GPU device was lost (${lost}); open a new one`);
    // kernels walk each sequence's tokens as offsets[s]..offsets[s+1]: they must tile all tokens
    if (batch.offsets[0] !== 0 || batch.offsets[batch.numSeqs] !== batch.numTokens) {
      throw new BatchError('batch', `sequence offsets cover tokens ${batch.offsets[0]}..${batch.offsets[batch.numSeqs]}, expected 0..${batch.numTokens}; every token must belong to a sequence (packed layout)`);
    }
    const slots = this.wgsl.slots;
    const inputs = new Map(this.plan.program.inputs.map((i) => [i.name, i.level] as const));
    const chunks = splitBatch(batch, this.limit, (sizes) => chunkBindingBytes(slots, sizes, (name) => inputs.get(name) ?? 'token'), String(this.limit));
    const arenas = buildArenas(slots, batch, values, chunks.map((c) => c.batch));
    const deviceLimit = this.gpu.device.limits.maxStorageBufferBindingSize;
    if (arenas.G.byteLength > deviceLimit) {
      // chunks are sized to fit; G holds the batch partials of every chunk
      throw new GpuError(`this batch needs a ${bytesText(arenas.G.byteLength)} buffer of batch partials, above the device's ${bytesText(deviceLimit)} binding limit; split the batch or use --backend cpu`);
    }
    for (const c of arenas.chunks) {
      if (Math.max(c.D.byteLength, c.I.byteLength) > this.limit) throw new InternalError('gpu-executor', `a chunk of ${bytesText(Math.max(c.D.byteLength, c.I.byteLength))} exceeds the ${bytesText(this.limit)} it was sized for`);
    }
    this.gBuf = this.buffer(this.gBuf, arenas.G.byteLength);
    const uploads: { target: GPUBuffer; data: Float32Array | Uint32Array }[] = [{ target: this.gBuf, data: arenas.G }];
    arenas.chunks.forEach((c, i) => {
      const old = this.chunkBufs[i];
      const d = this.buffer(old?.d, c.D.byteLength);
      const iBuf = this.buffer(old?.i, c.I.byteLength);
      // the index tables of the same batch are already on the device (unless the buffer is new)
      const sameTables = iBuf === old?.i && c.sameStructure;
      this.chunkBufs[i] = { d, i: iBuf };
      uploads.push({ target: d, data: c.D }, ...(sameTables ? [] : [{ target: iBuf, data: c.I }]));
    });
    // buffers of chunks this batch does not have: freed
    for (const extra of this.chunkBufs.splice(arenas.chunks.length)) {
      extra.d.destroy();
      extra.i.destroy();
      this.bindGroups.clear();
    }
    await this.upload(uploads);
    const t1 = performance.now();
    const state: RunState = { batch, chunks, arenas, values };
    const { dispatches, profile } = await this.dispatchAll(state, !!opts.profile);
    this.last = state;
    const t2 = performance.now();
    const result = await this.readOutputs(state);
    const t3 = performance.now();
    return { ...result, dispatches, chunks: chunks.length, ...(opts.profile ? { profile } : {}), timings_ms: { upload: t1 - t0, kernels: t2 - t1, readback: t3 - t2, total: t3 - t0 } };
  }

  /**
   * Runs the kernels again on the batch of the last `run`, whose inputs are still on the device,
   * and reads back only the loss (the gradient stays on the device): the time of a training step
   * whose inputs are already device buffers — what `npm run bench` reports as resident.
   */
  async rerunResident(): Promise<{ loss: number; ms: number }> {
    if (!this.last) throw new GpuError('rerunResident needs a previous run() on this objective');
    const state = this.last;
    const t0 = performance.now();
    await this.dispatchAll(state, false);
    const loss = (await this.readSections([this.plan.program.loss].filter((n) => n.src.length > 0), state)).get(this.plan.program.loss.id)?.[0] ?? NaN;
    return { loss, ms: performance.now() - t0 };
  }

  private bindGroup(p: GPUComputePipeline, chunk: number): GPUBindGroup {
    const groups = this.bindGroups.get(p) ?? [];
    this.bindGroups.set(p, groups);
    const { d, i } = this.chunkBufs[chunk];
    groups[chunk] ??= this.gpu.device.createBindGroup({
      layout: p.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: d } },
        { binding: 1, resource: { buffer: i } },
        { binding: 2, resource: { buffer: this.gBuf! } },
      ],
    });
    return groups[chunk];
  }

  /** Dispatches every kernel in plan order (host steps in between) and waits for the device. */
  private async dispatchAll(state: RunState, profiling: boolean): Promise<{ dispatches: number; profile: { kernel: number; ms: number }[] }> {
    const device = this.gpu.device;
    const { batch, chunks } = state;
    if (!this.gBuf || this.chunkBufs.length < chunks.length) throw new InternalError('gpu-executor', 'dispatch before the arenas were uploaded');
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
        await this.hostStep(k.kernel.node, state);
        enc = device.createCommandEncoder();
        pass = enc.beginComputePass();
        continue;
      }
      if (k.when && 'chunks' in k.when) {
        if ((k.when.chunks === 'one') !== (chunks.length === 1)) continue;
      } else if (k.when) {
        // the whole batch's mean: every chunk takes the same strategy (their partials must agree)
        const mean = countAt(batch, k.when.from) / Math.max(1, countAt(batch, k.when.to));
        if ((k.when.meanBelow !== undefined && mean >= k.when.meanBelow) || (k.when.meanAtLeast !== undefined && mean < k.when.meanAtLeast)) continue;
      }
      const p = await this.pipeline(k);
      const runs = k.scope === 'batch' ? [{ chunk: 0, grid: this.grid(k, batch) }] : chunks.map((c, i) => ({ chunk: i, grid: this.grid(k, c.batch) }));
      for (const { chunk, grid } of runs) {
        const [x, y] = grid;
        if (x === 0) continue;
        pass.setPipeline(p);
        pass.setBindGroup(0, this.bindGroup(p, chunk));
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
    }
    pass.end();
    device.queue.submit([enc.finish()]);
    const err = await device.popErrorScope();
    if (err) throw new Error(`GPU validation error: ${err.message}`);
    await device.queue.onSubmittedWorkDone();
    return { dispatches, profile };
  }

  private async hostStep(node: Node, state: RunState): Promise<void> {
    const { batch, chunks, arenas, values } = state;
    const read = await this.readSections(node.src.filter((s) => s.src.length > 0), state);
    const sources = node.src.map(
      (s) => read.get(s.id) ?? evaluateNodes([s], batch, { params: values.params, step: values.step, totalSteps: values.totalSteps }).get(s.id)!,
    );
    const out = evaluateOp(node, sources, batch, arenas.segments);
    if (!out.length) return;
    const slot = this.wgsl.slots.slot({ buffer: 'D', kind: 'value', node });
    const queue = this.gpu.device.queue;
    if (node.type.level === 'batch') queue.writeBuffer(this.gBuf!, arenas.gOffsets[slot] * 4, Float32Array.from(out));
    else chunks.forEach((c, i) => queue.writeBuffer(this.chunkBufs[i].d, arenas.chunks[i].offsets[slot] * 4, Float32Array.from(chunks.length === 1 ? out : partOf(batch, c, node.type.level, out))));
  }

  private async readOutputs(state: RunState): Promise<EvalResult> {
    const { batch, values } = state;
    const p = this.plan.program;
    const nodes = outputNodes(p);
    const read = await this.readSections([...new Set(nodes.filter((n) => n.src.length > 0))], state);
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
    for (const { d, i } of this.chunkBufs) {
      d.destroy();
      i.destroy();
    }
    this.chunkBufs = [];
    this.gBuf?.destroy();
    this.staging?.destroy();
    this.uploadStaging?.destroy();
    this.gBuf = this.staging = this.uploadStaging = null;
    this.bindGroups.clear();
    this.last = null;
  }
}

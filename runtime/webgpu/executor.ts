/**
 * Runs a DeviceProgram (core/device/program.ts) on a WebGPU device: fills the arenas, runs its
 * steps in order — launches, and host steps in between, which read and write sections through a
 * HostIo — and reads back the sections the caller asks for. A batch larger than one storage
 * binding runs in chunks of whole groups (chunks.ts): each `chunk`-scope launch runs once per chunk
 * on the chunk's own `D` and `I`, each `batch`-scope one once on the shared `G`. Pipelines are
 * cached by shader text; the arena buffers are reused across runs while they are large enough.
 * Knows nothing about the language: sections, launches and hooks are all it sees.
 */
import { BatchError, countAt, type RaggedBatch } from '../../core/batch/batch.js';
import {
  sizesOf,
  type DeviceProgram,
  type HostIo,
  type Launch,
  type RowEncoding,
  type Sizes,
} from '../../core/device/program.js';
import { InternalError } from '../../core/diagnostics/diagnostic.js';
import { GpuError, type GpuDevice } from './device.js';
import { batchTokens, bytesText, partOf, splitBatch, stitch, type Chunk } from './chunks.js';
import { buildRowArenas, type RowChunk } from './rows.js';
import { buildArenas, chunkBindingBytes, type Arenas } from './tables.js';

const MAX_GROUPS_PER_DIM = 65535;

/**
 * Pipelines per device, by shader text: compiling an objective again (a new process step, another
 * objective sharing kernels) reuses them — the WGSL → native compile is most of a cold compile.
 */
const pipelineCache = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/**
 * The two pipeline layouts: D, I, G for every kernel (a kernel may leave some unused), and D, I,
 * G, L for the row kernels over the vocabulary (`rows` launches).
 */
const layoutCache = new WeakMap<GPUDevice, { plain: GPUPipelineLayout; rows: GPUPipelineLayout }>();

function pipelineLayout(device: GPUDevice, rows: boolean): GPUPipelineLayout {
  let layouts = layoutCache.get(device);
  if (!layouts) {
    const entry = (binding: number, type: GPUBufferBindingType): GPUBindGroupLayoutEntry => ({
      binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type },
    });
    const base = [entry(0, 'storage'), entry(1, 'read-only-storage'), entry(2, 'storage')];
    const layout = (entries: GPUBindGroupLayoutEntry[]) =>
      device.createPipelineLayout({ bindGroupLayouts: [device.createBindGroupLayout({ entries })] });
    layouts = { plain: layout(base), rows: layout([...base, entry(3, 'storage')]) };
    layoutCache.set(device, layouts);
  }
  return rows ? layouts.rows : layouts.plain;
}

/** Where the last run left things, for rerunResident. */
interface RunState {
  readonly batch: RaggedBatch;
  readonly chunks: readonly Chunk[];
  readonly arenas: Arenas;
  readonly given: Readonly<Record<string, number>>;
  /** Each chunk's row chunks (rows.ts; none without values over the vocabulary). */
  readonly rowChunks: readonly (readonly RowChunk[])[];
  /** The encodings of the `L` slots (the same in every chunk), or null without any. */
  readonly rowEncodings: readonly RowEncoding[] | null;
}

/** What a run read back, and how it went. */
export interface DeviceRun {
  /** Whole-batch values of the sections asked for. */
  readonly sections: ReadonlyMap<number, Float64Array>;
  /** Whole-batch values ([T × V], a row per token) of the `L` output slots asked for. */
  readonly rows: ReadonlyMap<number, Float64Array>;
  /** How many row chunks the vocabulary rows ran in, over all chunks (0 without any). */
  readonly rowChunks: number;
  /**
   * Bytes of device memory the run's arenas hold (G, each chunk's D and I, each row chunk's L);
   * the staging buffers of host copies add at most 2 × ExecutorOptions.stagingBytes.
   */
  readonly deviceBytes: number;
  readonly timings_ms: { upload: number; kernels: number; readback: number; total: number };
  readonly dispatches: number;
  /** How many chunks of whole groups the batch ran in (1 unless it is larger than one binding). */
  readonly chunks: number;
  /** With `profile`: wall ms of each dispatch run on its own (submit + wait), by the launch's origin. */
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
  /**
   * Write a gradient over the logits it is the gradient of, where the program allows it (no kernel
   * reads them afterwards: RowSlot.overwrites) and they are f32 on the device: device memory of the
   * logits alone instead of logits + gradient, as Liger does. The logits on the device are then
   * gone after a run, so a rerun uploads them again.
   */
  readonly gradInPlace?: boolean;
}

export class GpuExecutor {
  private readonly pipelines: Map<string, GPUComputePipeline>;
  /** The shared arena G, and each chunk's D and I. */
  private gBuf: GPUBuffer | null = null;
  private chunkBufs: { d: GPUBuffer; i: GPUBuffer }[] = [];
  /** Each chunk's `L` buffers, one per row chunk. */
  private rowBufs: GPUBuffer[][] = [];
  /** Row kernels' shaders per launch and encodings of the batch (Launch.variant), made once. */
  private readonly variants = new Map<Launch, Map<string, string>>();
  /** Upload staging memory, mapped for writing and reused while large enough. */
  private uploadStaging: GPUBuffer | null = null;
  /** The last run's batch, chunks and arenas (their offsets stay valid), for rerunResident. */
  private last: RunState | null = null;
  /** Readback staging memory, reused while large enough (fresh memory costs page faults). */
  private staging: GPUBuffer | null = null;
  /** Bind groups per pipeline and chunk (and row chunk), valid while the arena buffers stay the same. */
  private bindGroups = new Map<GPUComputePipeline, Map<string, GPUBindGroup>>();
  private readonly limit: number;
  /** The most one staging buffer holds (ExecutorOptions.stagingBytes), a multiple of 16 bytes. */
  private readonly stagingBytes: number;
  private readonly gradInPlace: boolean;

  constructor(
    private readonly gpu: GpuDevice,
    private readonly program: DeviceProgram,
    opts: ExecutorOptions = {},
  ) {
    const deviceLimit = gpu.device.limits.maxStorageBufferBindingSize;
    if (
      opts.maxBindingBytes !== undefined &&
      !(Number.isInteger(opts.maxBindingBytes) && opts.maxBindingBytes >= 256)
    ) {
      throw new GpuError(`maxBindingBytes must be an integer of at least 256, got ${opts.maxBindingBytes}`);
    }
    this.limit = Math.min(deviceLimit, opts.maxBindingBytes ?? deviceLimit);
    if (opts.stagingBytes !== undefined && !(Number.isInteger(opts.stagingBytes) && opts.stagingBytes >= 16)) {
      throw new GpuError(`stagingBytes must be an integer of at least 16, got ${opts.stagingBytes}`);
    }
    this.stagingBytes =
      Math.floor(Math.min(opts.stagingBytes ?? 256 * 2 ** 20, gpu.device.limits.maxBufferSize) / 16) * 16;
    this.gradInPlace = !!opts.gradInPlace;
    const cached = pipelineCache.get(gpu.device) ?? new Map<string, GPUComputePipeline>();
    pipelineCache.set(gpu.device, cached);
    this.pipelines = cached;
  }

  /**
   * Compiles now every pipeline a batch in one chunk can need (either strategy); those only a
   * batch beyond one binding needs are compiled on first use.
   */
  async prepare(): Promise<void> {
    // row kernels: their variant for f32 logits (others compile when a batch brings them)
    const f32 = this.program.rowSlots.map((): RowEncoding => 'f32');
    const needed = this.launches()
      .filter((k) => !k.lazy)
      .map((k) => ({ k, code: this.codeOf(k, f32) }))
      .filter(({ code }) => !this.pipelines.has(code));
    // one error scope for all (each pop is a round trip to the device); on an error, again one by
    // one to say which shader it was
    const device = this.gpu.device;
    device.pushErrorScope('validation');
    const made = needed.map(({ k, code }) => [code, this.createPipeline(k, code)] as const);
    if (await device.popErrorScope()) {
      for (const { k, code } of needed) await this.pipeline(k, code);
      return;
    }
    for (const [code, p] of made) this.pipelines.set(code, p);
  }

  private launches(): Launch[] {
    return this.program.steps.filter((s): s is Launch => s.kind === 'launch');
  }

  private createPipeline(k: Launch, code = k.code): GPUComputePipeline {
    const device = this.gpu.device;
    const module = device.createShaderModule({ code });
    // NOTE: createComputePipelineAsync aborts the process in dawn.node 0.6 (futex error); the sync call is fine
    return device.createComputePipeline({
      layout: pipelineLayout(device, k.scope === 'rows'),
      compute: { module, entryPoint: 'main' },
    });
  }

  private async pipeline(k: Launch, code = k.code): Promise<GPUComputePipeline> {
    const hit = this.pipelines.get(code);
    if (hit) return hit;
    const device = this.gpu.device;
    device.pushErrorScope('validation');
    const p = this.createPipeline(k, code);
    const err = await device.popErrorScope();
    if (err) throw new Error(`WGSL rejected by the device (${err.message}) in:\n${code}`);
    this.pipelines.set(code, p);
    return p;
  }

  private buffer(current: GPUBuffer | null | undefined, bytes: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    if (current && current.size >= size) return current;
    current?.destroy();
    this.bindGroups.clear();
    return this.gpu.device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
  }

  /**
   * Copies host arrays into device buffers through one reused, mapped staging buffer, and waits
   * until they are there. (queue.writeBuffer stages through fresh memory every call; first
   * touches of fresh pages cost more than the copy itself, on virtual machines several times more.)
   */
  private async upload(
    parts: readonly { readonly target: GPUBuffer; readonly data: Float32Array | Uint32Array }[],
  ): Promise<void> {
    const device = this.gpu.device;
    // pieces of at most one staging buffer's size, in rounds that each fill it at most once
    const cap = this.stagingBytes;
    const pieces = parts.flatMap((p) => {
      const bytes = new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength);
      const out: { target: GPUBuffer; offset: number; bytes: Uint8Array }[] = [];
      for (let at = 0; at < bytes.length; at += cap)
        out.push({ target: p.target, offset: at, bytes: bytes.subarray(at, Math.min(bytes.length, at + cap)) });
      return out;
    });
    for (let i = 0; i < pieces.length;) {
      let total = 0;
      let j = i;
      while (j < pieces.length && total + pieces[j].bytes.length <= cap) total += pieces[j++].bytes.length;
      const round = pieces.slice(i, j);
      i = j;
      const bytes = Math.max(16, Math.ceil(total / 16) * 16);
      if (!this.uploadStaging || this.uploadStaging.size < bytes) {
        this.uploadStaging?.destroy();
        this.uploadStaging = device.createBuffer({
          size: bytes,
          usage: GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC,
        });
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

  private grid(k: Launch, sizes: Sizes): [number, number] {
    const groups = k.workgroups(sizes);
    if (groups <= MAX_GROUPS_PER_DIM) return [groups, 1];
    return [MAX_GROUPS_PER_DIM, Math.ceil(groups / MAX_GROUPS_PER_DIM)];
  }

  /** The readback staging buffer, at least `bytes` long (reused while large enough). */
  private readStaging(bytes: number): GPUBuffer {
    if (!this.staging || this.staging.size < bytes) {
      this.staging?.destroy();
      this.staging = this.gpu.device.createBuffer({
        size: bytes,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
    }
    return this.staging;
  }

  /** A section's level, for reading or writing it whole: only sections that have one can be. */
  private levelOf(section: number) {
    const s = this.program.sections[section];
    if (!s?.level || (s.arena === 'G') !== (s.level === 'batch') || s.arena === 'I')
      throw new InternalError('gpu-executor', `section ${section} cannot be read or written whole`);
    return s.level;
  }

  /**
   * Reads several sections with one staging buffer and one map (each readback is a round trip to
   * the device; outputs and host-step sources are read together): batch-level ones from G, the
   * others from every chunk, stitched into the batch's order.
   */
  private async readSections(sections: readonly number[], state: RunState): Promise<Map<number, Float64Array>> {
    const device = this.gpu.device;
    const { chunks, arenas } = state;
    const wanted = [...new Set(sections)];
    // each section's part per chunk (one for batch-level values), filled from the device below
    const parts = new Map<number, Float64Array[]>();
    const ranges = wanted.flatMap((k) => {
      const level = this.levelOf(k);
      const list =
        level === 'batch'
          ? [{ source: this.gBuf!, offset: arenas.gOffsets[k], length: 1 }]
          : arenas.chunks.map((c, i) => ({
              source: this.chunkBufs[i].d,
              offset: c.offsets[k],
              length: countAt(c.batch, level),
            }));
      parts.set(
        k,
        list.map((r) => new Float64Array(r.length)),
      );
      return list.map((r, i) => ({ ...r, into: parts.get(k)![i] }));
    });
    // pieces of at most one staging buffer, read in rounds
    const capElements = this.stagingBytes / 4;
    const pieces = ranges.flatMap((r) => {
      const out: { source: GPUBuffer; offset: number; length: number; into: Float64Array; at: number }[] = [];
      for (let at = 0; at < r.length; at += capElements)
        out.push({
          source: r.source,
          offset: r.offset + at,
          length: Math.min(capElements, r.length - at),
          into: r.into,
          at,
        });
      return out;
    });
    for (let i = 0; i < pieces.length;) {
      let total = 0;
      let j = i;
      while (j < pieces.length && total + pieces[j].length <= capElements) total += pieces[j++].length;
      const round = pieces.slice(i, j);
      i = j;
      const bytes = Math.max(16, Math.ceil((total * 4) / 16) * 16);
      const staging = this.readStaging(bytes);
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
    return new Map(wanted.map((k) => [k, stitch(state.batch, chunks, this.levelOf(k), parts.get(k)!)]));
  }

  /**
   * Runs the program on a batch and reads back `read` (section ids with a level).
   * @param given the values of the program's `given` scalars (params, the clock).
   */
  async run(
    batch: RaggedBatch,
    given: Readonly<Record<string, number>>,
    read: readonly number[],
    opts: { readonly profile?: boolean; readonly rows?: readonly number[] } = {},
  ): Promise<DeviceRun> {
    const t0 = performance.now();
    const lost = this.gpu.lostReason();
    if (lost) throw new GpuError(`the GPU device was lost (${lost}); open a new one`);
    // kernels walk each sequence's tokens as offsets[s]..offsets[s+1]: they must tile all tokens
    if (batch.offsets[0] !== 0 || batch.offsets[batch.numSeqs] !== batch.numTokens) {
      throw new BatchError(
        'batch',
        `sequence offsets cover tokens ${batch.offsets[0]}..${batch.offsets[batch.numSeqs]}, expected 0..${batch.numTokens}; every token must belong to a sequence (packed layout)`,
      );
    }
    const whole = sizesOf(batch);
    const chunks = splitBatch(
      batch,
      this.limit,
      (sizes) => chunkBindingBytes(this.program, sizes, whole),
      String(this.limit),
    );
    const arenas = buildArenas(
      this.program,
      batch,
      given,
      chunks.map((c) => c.batch),
    );
    const deviceLimit = this.gpu.device.limits.maxStorageBufferBindingSize;
    if (arenas.G.byteLength > deviceLimit) {
      // chunks are sized to fit; G holds the batch partials of every chunk
      throw new GpuError(
        `this batch needs a ${bytesText(arenas.G.byteLength)} buffer of batch partials, above the device's ${bytesText(deviceLimit)} binding limit; split the batch or use --backend cpu`,
      );
    }
    for (const c of arenas.chunks) {
      if (Math.max(c.D.byteLength, c.I.byteLength) > this.limit)
        throw new InternalError(
          'gpu-executor',
          `a chunk of ${bytesText(Math.max(c.D.byteLength, c.I.byteLength))} exceeds the ${bytesText(this.limit)} it was sized for`,
        );
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
    const { chunks: rowChunks, encodings: rowEncodings } = buildRowArenas(
      this.program,
      chunks.map((c) => c.batch),
      this.limit,
      this.gradInPlace,
    );
    rowChunks.forEach((list, c) => {
      const old = this.rowBufs[c] ?? [];
      this.rowBufs[c] = list.map((r, j) => this.buffer(old[j], r.L.byteLength));
      for (const extra of old.slice(list.length)) (extra.destroy(), this.bindGroups.clear());
      list.forEach((r, j) => uploads.push({ target: this.rowBufs[c][j], data: r.L }));
    });
    for (const extra of this.rowBufs.splice(rowChunks.length).flat()) (extra.destroy(), this.bindGroups.clear());
    await this.upload(uploads);
    const t1 = performance.now();
    const state: RunState = { batch, chunks, arenas, given, rowChunks, rowEncodings };
    const { dispatches, profile } = await this.dispatchAll(state, !!opts.profile);
    this.last = state;
    const t2 = performance.now();
    const sections = await this.readSections(read, state);
    const rows = await this.readRows(opts.rows ?? [], state);
    const t3 = performance.now();
    return {
      sections,
      rows,
      rowChunks: rowChunks.reduce((n, list) => n + list.length, 0),
      deviceBytes: this.deviceBytes(),
      dispatches,
      chunks: chunks.length,
      ...(opts.profile ? { profile } : {}),
      timings_ms: { upload: t1 - t0, kernels: t2 - t1, readback: t3 - t2, total: t3 - t0 },
    };
  }

  /**
   * Runs the steps again on the batch of the last `run`, whose inputs are still on the device,
   * and reads back only `read` (a loss, say; the gradient stays on the device): the time of a
   * training step whose inputs are already device buffers — what `npm run bench` reports as resident.
   */
  async rerunResident(read: readonly number[]): Promise<{ sections: Map<number, Float64Array>; ms: number }> {
    if (!this.last) throw new GpuError('rerunResident needs a previous run() on this objective');
    const state = this.last;
    const t0 = performance.now();
    // gradients written in place took the logits' memory: put the logits back first
    if (this.gradInPlace && state.rowChunks.some((list) => list.some((r) => r.inPlace)))
      await this.upload(
        state.rowChunks.flatMap((list, c) => list.map((r, j) => ({ target: this.rowBufs[c][j], data: r.L }))),
      );
    await this.dispatchAll(state, false);
    const sections = await this.readSections(read, state);
    return { sections, ms: performance.now() - t0 };
  }

  private deviceBytes(): number {
    const bufs = [this.gBuf, ...this.chunkBufs.flatMap((c) => [c.d, c.i]), ...this.rowBufs.flat()];
    return bufs.reduce((n, b) => n + (b?.size ?? 0), 0);
  }

  /** A launch's shader for this run: a row kernel's variant for the batch's encodings, else its code. */
  private codeOf(k: Launch, encodings: readonly RowEncoding[] | null): string {
    if (!k.variant || !encodings) return k.code;
    const key = encodings.join(',');
    let byKey = this.variants.get(k);
    if (!byKey) this.variants.set(k, (byKey = new Map()));
    let code = byKey.get(key);
    if (code === undefined) byKey.set(key, (code = k.variant(encodings)));
    return code;
  }

  /**
   * Reads `L` output slots back as whole-batch [T × V] arrays (a row per token, in the batch's
   * token order), each row chunk's slot through the staging buffer, in rounds of at most its size.
   */
  private async readRows(slots: readonly number[], state: RunState): Promise<Map<number, Float64Array>> {
    const out = new Map<number, Float64Array>();
    if (!slots.length) return out;
    const device = this.gpu.device;
    const { batch, chunks, rowChunks } = state;
    const V = batch.vocabSize;
    for (const k of new Set(slots)) {
      if (this.program.rowSlots[k]?.kind !== 'output')
        throw new InternalError('gpu-executor', `L slot ${k} is not an output`);
      const whole = new Float64Array(batch.numTokens * V);
      out.set(k, whole);
      for (let c = 0; c < chunks.length; c++) {
        const tokenOf = batchTokens(batch, chunks[c]);
        for (let j = 0; j < rowChunks[c].length; j++) {
          const r = rowChunks[c][j];
          const stride = r.strides[k];
          // whole rows per round
          const perRound = Math.max(1, Math.floor(this.stagingBytes / (4 * stride)));
          for (let at = 0; at < r.rows; at += perRound) {
            const n = Math.min(perRound, r.rows - at);
            const bytes = Math.max(16, n * stride * 4);
            const staging = this.readStaging(bytes);
            const enc = device.createCommandEncoder();
            enc.copyBufferToBuffer(this.rowBufs[c][j], (r.offsets[k] + at * stride) * 4, staging, 0, n * stride * 4);
            device.queue.submit([enc.finish()]);
            await staging.mapAsync(GPUMapMode.READ, 0, bytes);
            const f32 = new Float32Array(staging.getMappedRange(0, bytes));
            for (let i = 0; i < n; i++) {
              const t = tokenOf(r.firstRow + at + i);
              whole.set(f32.subarray(i * stride, i * stride + V), t * V);
            }
            staging.unmap();
          }
        }
      }
    }
    return out;
  }

  /** The bind group of pipeline `p` on chunk `chunk` (and, for row kernels, its row chunk `rowChunk`'s `L`). */
  private bindGroup(p: GPUComputePipeline, chunk: number, rowChunk?: number): GPUBindGroup {
    let groups = this.bindGroups.get(p);
    if (!groups) this.bindGroups.set(p, (groups = new Map()));
    const key = rowChunk === undefined ? `${chunk}` : `${chunk}:${rowChunk}`;
    let group = groups.get(key);
    if (!group) {
      const { d, i } = this.chunkBufs[chunk];
      const buffers = [d, i, this.gBuf!, ...(rowChunk === undefined ? [] : [this.rowBufs[chunk][rowChunk]])];
      group = this.gpu.device.createBindGroup({
        layout: p.getBindGroupLayout(0),
        entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
      groups.set(key, group);
    }
    return group;
  }

  /** Runs every step in order (launches, host steps in between) and waits for the device. */
  private async dispatchAll(
    state: RunState,
    profiling: boolean,
  ): Promise<{ dispatches: number; profile: { kernel: number; ms: number }[] }> {
    const device = this.gpu.device;
    const { batch, chunks } = state;
    const whole = sizesOf(batch);
    if (!this.gBuf || this.chunkBufs.length < chunks.length)
      throw new InternalError('gpu-executor', 'dispatch before the arenas were uploaded');
    device.pushErrorScope('validation');
    let dispatches = 0;
    const profile: { kernel: number; ms: number }[] = [];
    let enc = device.createCommandEncoder();
    let pass = enc.beginComputePass();
    for (const k of this.program.steps) {
      if (k.kind === 'host') {
        // host step: finish the work so far, let the hook read and write sections, go on
        pass.end();
        device.queue.submit([enc.finish()]);
        await k.run(this.hostIo(state));
        enc = device.createCommandEncoder();
        pass = enc.beginComputePass();
        continue;
      }
      // decided on the whole batch: every chunk takes the same strategy (their partials must agree)
      if (k.runIf && !k.runIf(whole, chunks.length)) continue;
      const p = await this.pipeline(k, this.codeOf(k, state.rowEncodings));
      const runs =
        k.scope === 'batch'
          ? [{ grid: this.grid(k, sizesOf(batch)), group: () => this.bindGroup(p, 0) }]
          : k.scope === 'rows'
            ? chunks.flatMap((c, i) =>
                state.rowChunks[i].map((r, j) => ({
                  grid: this.grid(k, { ...sizesOf(c.batch), token: r.rows }),
                  group: () => this.bindGroup(p, i, j),
                })),
              )
            : chunks.map((c, i) => ({
                grid: this.grid(k, sizesOf(c.batch)),
                group: () => this.bindGroup(p, i),
              }));
      for (const { grid, group } of runs) {
        const [x, y] = grid;
        if (x === 0) continue;
        pass.setPipeline(p);
        pass.setBindGroup(0, group());
        pass.dispatchWorkgroups(x, y);
        dispatches++;
        if (profiling) {
          // one dispatch per submission, waited for: slower overall, but says where the time goes
          pass.end();
          const start = performance.now();
          device.queue.submit([enc.finish()]);
          await device.queue.onSubmittedWorkDone();
          profile.push({ kernel: k.origin, ms: performance.now() - start });
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

  /** What a host step sees: reads through readSections, writes split over the chunks. */
  private hostIo(state: RunState): HostIo {
    const { batch, chunks, arenas, given } = state;
    return {
      batch,
      given,
      read: (sections) => this.readSections(sections, state),
      write: (section, data) => {
        const level = this.levelOf(section);
        const queue = this.gpu.device.queue;
        if (level === 'batch') queue.writeBuffer(this.gBuf!, arenas.gOffsets[section] * 4, Float32Array.from(data));
        else
          chunks.forEach((c, i) =>
            queue.writeBuffer(
              this.chunkBufs[i].d,
              arenas.chunks[i].offsets[section] * 4,
              Float32Array.from(chunks.length === 1 ? data : partOf(batch, c, level, data)),
            ),
          );
      },
    };
  }

  dispose(): void {
    for (const { d, i } of this.chunkBufs) {
      d.destroy();
      i.destroy();
    }
    this.chunkBufs = [];
    for (const b of this.rowBufs.flat()) b.destroy();
    this.rowBufs = [];
    this.gBuf?.destroy();
    this.staging?.destroy();
    this.uploadStaging?.destroy();
    this.gBuf = this.staging = this.uploadStaging = null;
    this.bindGroups.clear();
    this.last = null;
  }
}

/**
 * The vocabulary rows of `npm run bench`: objectives over [T × V] logits at T × V = 4096 × 32768
 * and 1024 × 151936 (Qwen's vocabulary), and 256 × 4096 (where jax-js fits), logits in F32 and
 * BF16 (`--quick`: 256 × 4096 and 1024 × 8192):
 *  - `dapo_logits` (logp from the logits, DAPO, an entropy bonus of 0.01), the entropy alone
 *    (loss = −mean H), and the forward KL to a teacher's logits (loss = mean KL(teacher ‖ policy));
 *  - tools: credo-gpu (row kernels, resident; for dapo_logits F32 also credo-gpu-in-place, the
 *    gradient written over the logits: its device memory), stream-limit (a kernel that reads the logits once in
 *    their encoding and writes a [T × V] f32 gradient once: the bytes any fused kernel must move),
 *    plain-js (dapo_logits only: typed-array loops, bench/plain-js.ts); jax-js comes with the jax
 *    rows (bench/jaxjs.ts: it materialises every [T × V] intermediate);
 *  - bandwidth = minimal bytes / time, the minimal bytes being every [T × V] input read once in its
 *    encoding and the gradient written once (f32); peak device memory per tool (credo: its arenas,
 *    DeviceRun.deviceBytes; stream-limit: its buffers).
 * credo-gpu and stream-limit run alternately (see bench/run.ts `paired`).
 */
import type { RaggedBatch } from '../core/batch/batch.js';
import { syntheticBatch } from '../runtime/batch/synthetic.js';
import type { GpuDevice } from '../runtime/webgpu/device.js';
import { roundToBf16 } from '../runtime/webgpu/rows.js';
import { compileGpu } from '../src/gpu.js';
import { compile, type Objective } from '../src/objective.js';
import { plainDapoLogits } from './plain-js.js';

export interface VocabRow {
  objective: string;
  tokens: number;
  vocab: number;
  dtype: 'f32' | 'bf16';
  tool: string;
  resident_ms: number | null;
  e2e_ms: number | null;
  gbps: number | null;
  device_mib: number | null;
  note?: string;
}

export interface VocabRatio {
  objective: string;
  tokens: number;
  vocab: number;
  dtype: 'f32' | 'bf16';
  /** credo-gpu / stream-limit bandwidth (median of paired runs). */
  ratio: number;
}

/** Entropy and KL objectives written for the bench (the stdlib's vocab module does the work). */
const SOURCES: Record<string, string> = {
  entropy:
    'objective entropy\nimport vocab\ninput logits : token x vocab grad\nmask mask : token\nloss = -mean(vocab.entropy(logits))\n',
  kl_teacher:
    'objective kl_teacher\nimport vocab\ninput logits : token x vocab grad\ninput teacher_logits : token x vocab\nmask mask : token\n' +
    'loss = mean(vocab.kl(teacher_logits, logits))\n',
};

/** T × V shapes: a small one first (where jax-js, which materialises, fits), then the issue's. */
export function vocabShapes(quick: boolean): [number, number][] {
  return quick
    ? [
        [256, 4096],
        [1024, 8192],
      ]
    : [
        [256, 4096],
        [4096, 32768],
        [1024, 151936],
      ];
}

function objectiveOf(name: string): Objective {
  return SOURCES[name] ? compile({ source: SOURCES[name], path: `bench/${name}.credo` }) : compile(name);
}

/** A synthetic batch for `obj` with its [T × V] inputs in `dtype` (bf16: rounded and marked so, as a BF16 file loads). */
export function vocabBatch(obj: Objective, tokens: number, vocab: number, dtype: 'f32' | 'bf16'): RaggedBatch {
  const batch = syntheticBatch({
    seed: 11,
    tokens,
    groupSize: 8,
    vocabSize: vocab,
    inputs: obj.inputs,
    maskName: obj.maskName,
    meanSeqLen: 256,
  });
  if (dtype === 'f32') return batch;
  const tensors = new Map(batch.tensors);
  for (const [name, t] of batch.tensors)
    if (t.level === 'vocab') tensors.set(name, { ...t, data: t.data.map(roundToBf16), stored: 'bf16' });
  return { ...batch, tensors };
}

/** Every [T × V] input read once in its encoding, the gradient written once in f32. */
function minimalBytes(b: RaggedBatch): number {
  let bytes = 0;
  for (const t of b.tensors.values())
    if (t.level === 'vocab') bytes += b.numTokens * b.vocabSize * (t.stored === 'bf16' ? 2 : 4);
  return bytes + b.numTokens * b.vocabSize * 4;
}

interface Stream {
  readonly run: () => Promise<number>;
  readonly bytes: number;
  readonly deviceBytes: number;
  readonly dispose: () => void;
}

/**
 * Reads `inputs` [T × V] arrays in `dtype` and writes one [T × V] f32 array, each split into
 * buffers of at most one binding, a vec4 of output per thread: the least any fused kernel moves.
 */
function streamKernel(device: GpuDevice, T: number, V: number, inputs: number, dtype: 'f32' | 'bf16'): Stream {
  const d = device.device;
  const wg = 256;
  const limit = Math.min(d.limits.maxStorageBufferBindingSize, d.limits.maxBufferSize);
  const total = T * V;
  // quads of entries per chunk, so that the f32 output (16 B per quad) fits one binding
  const quadsPerChunk = Math.floor(limit / 16);
  const read =
    dtype === 'f32'
      ? (k: number) => `bitcast<vec4f>(a${k}[i])`
      : (k: number) =>
          `vec4f(bitcast<f32>(a${k}[i].x << 16u), bitcast<f32>(a${k}[i].x & 0xffff0000u), bitcast<f32>(a${k}[i].y << 16u), bitcast<f32>(a${k}[i].y & 0xffff0000u))`;
  const elem = dtype === 'f32' ? 'vec4<u32>' : 'vec2<u32>';
  const code = `${Array.from({ length: inputs }, (_, k) => `@group(0) @binding(${k}) var<storage, read> a${k}: array<${elem}>;`).join('\n')}
@group(0) @binding(${inputs}) var<storage, read_write> o: array<vec4f>;
@compute @workgroup_size(${wg}) fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) n: vec3u) {
  let i = id.x + id.y * n.x * ${wg}u;
  if (i < arrayLength(&o)) { o[i] = ${Array.from({ length: inputs }, (_, k) => read(k)).join(' + ')}; }
}`;
  const p = d.createComputePipeline({
    layout: 'auto',
    compute: { module: d.createShaderModule({ code }), entryPoint: 'main' },
  });
  const chunks: { bufs: GPUBuffer[]; bind: GPUBindGroup; grid: [number, number] }[] = [];
  const inBytes = dtype === 'f32' ? 16 : 8;
  for (let q0 = 0; q0 < Math.ceil(total / 4); q0 += quadsPerChunk) {
    const quads = Math.min(quadsPerChunk, Math.ceil(total / 4) - q0);
    const bufs = [
      ...Array.from({ length: inputs }, () => d.createBuffer({ size: quads * inBytes, usage: GPUBufferUsage.STORAGE })),
      d.createBuffer({ size: quads * 16, usage: GPUBufferUsage.STORAGE }),
    ];
    const bind = d.createBindGroup({
      layout: p.getBindGroupLayout(0),
      entries: bufs.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const groups = Math.ceil(quads / wg);
    chunks.push({ bufs, bind, grid: groups > 65535 ? [65535, Math.ceil(groups / 65535)] : [groups, 1] });
  }
  return {
    bytes: total * (inputs * (dtype === 'f32' ? 4 : 2) + 4),
    deviceBytes: chunks.reduce((n, c) => n + c.bufs.reduce((m, b) => m + b.size, 0), 0),
    run: async () => {
      const t = performance.now();
      const enc = d.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(p);
      for (const c of chunks) {
        pass.setBindGroup(0, c.bind);
        pass.dispatchWorkgroups(...c.grid);
      }
      pass.end();
      d.queue.submit([enc.finish()]);
      await d.queue.onSubmittedWorkDone();
      return performance.now() - t;
    },
    dispose: () => chunks.forEach((c) => c.bufs.forEach((b) => b.destroy())),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const MIB = 2 ** 20;

export async function benchVocab(
  device: GpuDevice | null,
  opts: { quick: boolean; reps: number },
): Promise<{ rows: VocabRow[]; ratios: VocabRatio[] }> {
  const rows: VocabRow[] = [];
  const ratios: VocabRatio[] = [];
  for (const [T, V] of vocabShapes(opts.quick)) {
    for (const dtype of ['f32', 'bf16'] as const) {
      for (const name of ['dapo_logits', 'entropy', 'kl_teacher']) {
        const obj = objectiveOf(name);
        const batch = vocabBatch(obj, T, V, dtype);
        const bytes = minimalBytes(batch);
        const params: Record<string, number> = name === 'dapo_logits' ? { entropy_coeff: 0.01 } : {};
        const row = (tool: string, r: Partial<VocabRow>): VocabRow => ({
          objective: name,
          tokens: T,
          vocab: V,
          dtype,
          tool,
          resident_ms: null,
          e2e_ms: null,
          gbps: null,
          device_mib: null,
          ...r,
        });
        if (device) {
          const inputs = [...batch.tensors.values()].filter((t) => t.level === 'vocab').length;
          const stream = streamKernel(device, T, V, inputs, dtype);
          const gpu = await compileGpu(obj, { device });
          try {
            const t0 = performance.now();
            const first = await gpu.run(batch, { params });
            const e2e = performance.now() - t0;
            await gpu.rerunResident();
            await stream.run();
            const c: number[] = [];
            const s: number[] = [];
            const r: number[] = [];
            for (let i = 0; i < opts.reps; i++) {
              const tc = (await gpu.rerunResident()).ms;
              const ts = await stream.run();
              c.push(tc);
              s.push(ts);
              r.push(bytes / tc / (stream.bytes / ts));
            }
            ratios.push({ objective: name, tokens: T, vocab: V, dtype, ratio: median(r) });
            rows.push(
              row('credo-gpu', {
                resident_ms: median(c),
                e2e_ms: e2e,
                gbps: bytes / median(c) / 1e6,
                device_mib: first.deviceBytes / MIB,
                note: `${first.rowChunks} row chunks, ${first.dispatches} dispatches; inputs + gradient = ${(bytes / MIB).toFixed(0)} MiB`,
              }),
              row('stream-limit', {
                resident_ms: median(s),
                gbps: stream.bytes / median(s) / 1e6,
                device_mib: stream.deviceBytes / MIB,
                note: 'reads the logits once, writes a T × V gradient once; paired with credo-gpu',
              }),
            );
          } finally {
            gpu.dispose();
            stream.dispose();
          }
          if (name === 'dapo_logits' && dtype === 'f32') {
            // the gradient written over the logits (as Liger does): the device memory of the logits alone;
            // a resident rerun uploads the logits again first, so only e2e is a like-for-like time
            const inPlace = await compileGpu(obj, { device, gradInPlace: true });
            try {
              const t0 = performance.now();
              const r = await inPlace.run(batch, { params });
              const e2e = performance.now() - t0;
              rows.push(
                row('credo-gpu-in-place', {
                  e2e_ms: e2e,
                  device_mib: r.deviceBytes / MIB,
                  note: `gradInPlace: the gradient over the logits; logits alone = ${((T * V * 4) / MIB).toFixed(0)} MiB`,
                }),
              );
            } finally {
              inPlace.dispose();
            }
          }
        }
        if (name === 'dapo_logits') {
          const ts: number[] = [];
          for (let i = 0; i < (opts.quick ? 1 : 2); i++) {
            const t = performance.now();
            plainDapoLogits(batch, 0.01);
            ts.push(performance.now() - t);
          }
          const ms = median(ts);
          rows.push(
            row('plain-js', {
              resident_ms: ms,
              e2e_ms: ms,
              gbps: bytes / ms / 1e6,
              note: 'bench/plain-js.ts plainDapoLogits (float64 loops, one thread)',
            }),
          );
        }
      }
    }
  }
  return { rows, ratios };
}

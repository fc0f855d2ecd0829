/**
 * `npm run bench [-- --json] [-- --quick] [-- --shape short]`: loss + gradient of dapo (token
 * ratio), gspo (sequence ratio) and ctpo (cumulative ratio, a scan) at 2^16 and 2^20 ragged tokens,
 * measured in one run against (a) a WGSL kernel that only streams the same minimal bytes (the
 * practical limit), (b) plain-JS loops (dapo only: hand-written typed-array loops, bench/plain-js.ts), (c) Credo's CPU
 * interpreter and (d) jax-js jit(valueAndGrad) on its own Dawn device (bench/jaxjs.ts).
 * Batch shape: `long` (default) is the peer baseline's (lengths about 64..2048, groups of 8);
 * `short` has lengths 1..127.
 * Times are medians over repeated calls after one warm-up; credo-gpu's resident runs alternate
 * with the streaming kernel's, and the bandwidth ratio is the median of the pairs' ratios; GB/s = minimal bytes / time, an
 * objective's minimal bytes being its inputs and mask read once and its gradients and exports
 * written once (objectiveBytes).
 * credo-gpu resident = every kernel again on inputs already on the device, ending when the loss is
 * read back and the gradient is complete there (the peer baseline's definition); e2e = from host
 * arrays to loss, metrics and gradient on the host.
 */
import { cpus, totalmem } from 'node:os';
import { syntheticBatch } from '../runtime/batch/synthetic.js';
import { countAt, type RaggedBatch } from '../core/batch/batch.js';
import type { Program } from '../core/ir/program.js';
import type { Level } from '../core/types/types.js';
import { openDevice, type GpuDevice } from '../runtime/webgpu/device.js';
import { compileGpu } from '../src/gpu.js';
import { compile } from '../src/objective.js';
import { plainDapo, plainDapoLogits } from './plain-js.js';
import { benchJax, benchJaxLogits, disposeJax, initJax, type JaxObjective } from './jaxjs.js';
import { benchVocab, vocabBatch, vocabShapes } from './vocab.js';

interface Row {
  objective: string;
  tokens: number;
  tool: string;
  resident_ms: number | null;
  e2e_ms: number | null;
  gbps: number | null;
  note?: string;
  /** Rows over logits (bench/vocab.ts): V, the logits' dtype, peak device memory (MiB). */
  vocab?: number;
  dtype?: 'f32' | 'bf16';
  device_mib?: number | null;
}

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
/** Only the rows over logits (bench/vocab.ts), or none of them. */
const vocabOnly = args.includes('--vocab-only');
const noVocab = args.includes('--no-vocab');
const SIZES = quick ? [1 << 14] : [1 << 16, 1 << 20];
const SHAPE = args.includes('--shape') ? args[args.indexOf('--shape') + 1] : 'long';
if (SHAPE !== 'long' && SHAPE !== 'short') throw new Error(`--shape must be long or short, got ${SHAPE}`);
const MEAN_SEQ_LEN = SHAPE === 'long' ? 1056 : 64;
const REPS = quick ? 3 : 7;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function time(f: () => Promise<unknown> | unknown, reps = REPS): Promise<number> {
  await f();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await f();
    ts.push(performance.now() - t);
  }
  return median(ts);
}

/** The streaming kernel's bytes: three f32 arrays read and one written (16 B/token), + rewards. */
const minimalBytes = (b: RaggedBatch) => b.numTokens * 16 + b.numSeqs * 4;

/**
 * An objective's minimal bytes: every input and the mask read once, every gradient and export
 * written once, 4 bytes per element (dapo and gspo: 16 B/token + rewards; ctpo also writes its two
 * per-token exports, log_ratio and ratio: 24 B/token).
 */
function objectiveBytes(program: Program, b: RaggedBatch): number {
  const count = (level: Level) => countAt(b, level);
  let bytes = 4 * b.numTokens; // the mask
  for (const i of program.inputs) bytes += 4 * count(i.level);
  for (const [name] of program.grads) bytes += 4 * count(program.inputs.find((i) => i.name === name)!.level);
  for (const n of program.exports.values()) bytes += 4 * count(n.type.level);
  return bytes;
}

/** One run of a streaming kernel (ms), and its buffers' release. */
interface Stream {
  readonly run: () => Promise<number>;
  readonly dispose: () => void;
}

/**
 * The streaming kernel: the fastest of several workgroup sizes (a thread per vec4 wants large
 * workgroups even where credo's kernels use small ones), so ratios are against the best this
 * device streams the bytes at.
 */
async function streamLimit(device: GpuDevice, tokens: number): Promise<Stream> {
  const sizes = [...new Set([64, 128, 256, device.workgroupSize])].filter(
    (wg) => wg <= device.device.limits.maxComputeInvocationsPerWorkgroup,
  );
  let best: { stream: Stream; ms: number } | null = null;
  for (const wg of sizes) {
    const stream = streamKernel(device, tokens, wg);
    const ms = await time(stream.run);
    if (!best || ms < best.ms) {
      best?.stream.dispose();
      best = { stream, ms };
    } else stream.dispose();
  }
  return best!.stream;
}

function streamKernel(device: GpuDevice, tokens: number, wg: number): Stream {
  const d = device.device;
  const code = `@group(0) @binding(0) var<storage, read> a: array<vec4f>;
@group(0) @binding(1) var<storage, read> b: array<vec4f>;
@group(0) @binding(2) var<storage, read> c: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> o: array<vec4f>;
@compute @workgroup_size(${wg}) fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) n: vec3u) {
  let i = id.x + id.y * n.x * ${wg}u;
  if (i < arrayLength(&o)) { o[i] = a[i] + b[i] + c[i]; }
}`;
  const p = d.createComputePipeline({
    layout: 'auto',
    compute: { module: d.createShaderModule({ code }), entryPoint: 'main' },
  });
  const bufs = [0, 1, 2, 3].map(() =>
    d.createBuffer({ size: tokens * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC }),
  );
  const bind = d.createBindGroup({
    layout: p.getBindGroupLayout(0),
    entries: bufs.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const groups = Math.ceil(tokens / 4 / wg);
  const [x, y] = groups > 65535 ? [65535, Math.ceil(groups / 65535)] : [groups, 1];
  return {
    run: async () => {
      const t = performance.now();
      const enc = d.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(p);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(x, y);
      pass.end();
      d.queue.submit([enc.finish()]);
      await d.queue.onSubmittedWorkDone();
      return performance.now() - t;
    },
    dispose: () => bufs.forEach((b) => b.destroy()),
  };
}

/**
 * Credo's resident time and the streaming kernel's, measured alternately (this machine is shared:
 * its speed drifts between seconds, and a ratio of two medians taken a minute apart follows the
 * drift): the medians of both, and the median of the per-pair bandwidth ratios.
 */
async function paired(
  credo: () => Promise<number>,
  stream: Stream,
  credoBytes: number,
  streamBytes: number,
  reps = 2 * REPS + 1,
): Promise<{ credo: number; stream: number; ratio: number }> {
  await credo();
  await stream.run();
  const c: number[] = [];
  const s: number[] = [];
  const r: number[] = [];
  for (let i = 0; i < reps; i++) {
    const tc = await credo();
    const ts = await stream.run();
    c.push(tc);
    s.push(ts);
    r.push(credoBytes / tc / (streamBytes / ts));
  }
  return { credo: median(c), stream: median(s), ratio: median(r) };
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  /** credo-gpu / stream-limit bandwidth, the median of paired runs (see paired). */
  const ratios: { objective: string; tokens: number; ratio: number }[] = [];
  let device: GpuDevice | null = null;
  try {
    device = await openDevice();
  } catch (e) {
    console.error(`no GPU adapter: ${(e as Error).message}; GPU rows are missing`);
  }
  const compileRows: { objective: string; cold_ms: number; cached_ms: number }[] = [];
  const vocab = noVocab ? { rows: [], ratios: [] } : await benchVocab(device, { quick, reps: quick ? 3 : 5 });
  rows.push(...vocab.rows);
  for (const tokens of vocabOnly ? [] : SIZES) {
    const probe = compile('dapo');
    const base = syntheticBatch({
      seed: 7,
      tokens,
      groupSize: 8,
      inputs: probe.inputs,
      maskName: probe.maskName,
      meanSeqLen: MEAN_SEQ_LEN,
    });
    const bytes = minimalBytes(base);
    const firstRow = rows.length;
    const stream = device ? await streamLimit(device, tokens) : null;
    const streamTimes: number[] = [];
    for (const name of ['dapo', 'gspo', 'ctpo']) {
      const cpu = compile(name);
      const batch = syntheticBatch({
        seed: 7,
        tokens,
        groupSize: 8,
        inputs: cpu.inputs,
        maskName: cpu.maskName,
        meanSeqLen: MEAN_SEQ_LEN,
      });
      const gbps = (ms: number | null) => (ms ? objectiveBytes(cpu.program, batch) / ms / 1e6 : null);
      if (device) {
        // cold: source → pipelines ready in this process the first time; cached: the same again
        const cold = await compileGpu(name, { device });
        const cachedMs = await time(async () => (await compileGpu(name, { device })).dispose(), 3);
        if (tokens === SIZES[0]) compileRows.push({ objective: name, cold_ms: cold.compileMs, cached_ms: cachedMs });
        cold.dispose();
        const gpu = await compileGpu(cpu, { device });
        // resident first: the e2e runs allocate result arrays, and their garbage collection would land in it
        await gpu.run(batch);
        const pair = await paired(
          async () => (await gpu.rerunResident()).ms,
          stream!,
          objectiveBytes(cpu.program, batch),
          bytes,
        );
        streamTimes.push(pair.stream);
        ratios.push({ objective: name, tokens, ratio: pair.ratio });
        const e2e = await time(() => gpu.run(batch));
        const last = await gpu.run(batch);
        rows.push({
          objective: name,
          tokens,
          tool: 'credo-gpu',
          resident_ms: pair.credo,
          e2e_ms: e2e,
          gbps: gbps(pair.credo),
          note: `${last.dispatches} dispatches (${gpu.plan.kernels.length} plan kernels), minimal ${(objectiveBytes(cpu.program, batch) / batch.numTokens).toFixed(1)} B/token`,
        });
        gpu.dispose();
      }
      const cpuMs = await time(() => cpu.run(batch), quick ? 1 : 3);
      rows.push({
        objective: name,
        tokens,
        tool: 'credo-cpu',
        resident_ms: cpuMs,
        e2e_ms: cpuMs,
        gbps: gbps(cpuMs),
        note: 'float64 reference interpreter',
      });
      if (name === 'dapo') {
        const ms = await time(() => plainDapo(batch), quick ? 1 : 3);
        rows.push({
          objective: name,
          tokens,
          tool: 'plain-js',
          resident_ms: ms,
          e2e_ms: ms,
          gbps: gbps(ms),
          note: 'bench/plain-js.ts (typed-array loops)',
        });
      }
    }
    if (stream) {
      const ms = median(streamTimes);
      rows.splice(firstRow, 0, {
        objective: '-',
        tokens,
        tool: 'stream-limit',
        resident_ms: ms,
        e2e_ms: null,
        gbps: bytes / ms / 1e6,
        note: 'median of the runs paired with credo-gpu',
      });
      stream.dispose();
    }
  }
  // jax-js last: its own Dawn device stays open once initialized and would share the CPU with ours
  const jaxOk = device ? await initJax() : { ok: false as const, reason: 'no GPU adapter' };
  if (!noVocab) rows.push(...(await jaxLogitsRows(jaxOk)));
  for (const tokens of vocabOnly ? [] : SIZES) {
    for (const name of ['dapo', 'gspo', 'ctpo']) {
      const cpu = compile(name);
      const batch = syntheticBatch({
        seed: 7,
        tokens,
        groupSize: 8,
        inputs: cpu.inputs,
        maskName: cpu.maskName,
        meanSeqLen: MEAN_SEQ_LEN,
      });
      const gbps = (ms: number | null) => (ms ? objectiveBytes(cpu.program, batch) / ms / 1e6 : null);
      if (jaxOk.ok) {
        const t = (n: string) => Float32Array.from(batch.tensors.get(n)!.data);
        const jb = {
          offsets: Int32Array.from(batch.offsets),
          groupOf: Int32Array.from(batch.groupOf),
          numGroups: batch.numGroups,
          mask: Uint8Array.from(batch.mask),
          logp: t('logp'),
          old_logp: t('old_logp'),
          reward: t('reward'),
        };
        const r = await benchJax(name as JaxObjective, jb, REPS);
        rows.push({
          objective: name,
          tokens,
          tool: 'jaxjs-webgpu-jit',
          resident_ms: r.resident_ms,
          e2e_ms: r.e2e_ms,
          gbps: gbps(r.resident_ms),
          note: `@jax-js/jax jit(valueAndGrad), first call ${r.compile_ms.toFixed(0)} ms`,
        });
      } else
        rows.push({
          objective: name,
          tokens,
          tool: 'jaxjs-webgpu-jit',
          resident_ms: null,
          e2e_ms: null,
          gbps: null,
          note: jaxOk.reason,
        });
    }
  }
  const machine = {
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    memory_gib: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    adapter: device?.adapterName ?? null,
    batch_shape: SHAPE,
  };
  device?.dispose();
  disposeJax();
  if (json) {
    console.log(
      JSON.stringify({ machine, rows, bandwidth_ratios: [...ratios, ...vocab.ratios], compile: compileRows }, null, 2),
    );
    return;
  }
  console.log(`machine: ${JSON.stringify(machine)}`);
  const f = (v: number | null, d = 2) => (v === null ? '-' : v.toFixed(d));
  console.log('| objective | tokens | tool | resident ms | e2e ms | GB/s | note |\n|---|---|---|---|---|---|---|');
  for (const r of rows.filter((r) => r.vocab === undefined))
    console.log(
      `| ${r.objective} | ${r.tokens} | ${r.tool} | ${f(r.resident_ms)} | ${f(r.e2e_ms)} | ${f(r.gbps, 3)} | ${r.note ?? ''} |`,
    );
  console.log(
    '\n| objective | T × V | dtype | tool | resident ms | e2e ms | GB/s | device MiB | note |\n|---|---|---|---|---|---|---|---|---|',
  );
  for (const r of rows.filter((r) => r.vocab !== undefined))
    console.log(
      `| ${r.objective} | ${r.tokens} × ${r.vocab} | ${r.dtype} | ${r.tool} | ${f(r.resident_ms)} | ${f(r.e2e_ms)} | ${f(r.gbps, 3)} | ${f(r.device_mib ?? null, 0)} | ${r.note ?? ''} |`,
    );
  for (const r of vocab.ratios) {
    const jax = rows.find(
      (x) =>
        x.tool === 'jaxjs-webgpu-jit' && x.objective === r.objective && x.tokens === r.tokens && x.vocab === r.vocab,
    )?.resident_ms;
    const mine = rows.find(
      (x) =>
        x.tool === 'credo-gpu' &&
        x.objective === r.objective &&
        x.tokens === r.tokens &&
        x.vocab === r.vocab &&
        x.dtype === r.dtype,
    )?.resident_ms;
    console.log(
      `ratio ${r.objective} @ ${r.tokens} × ${r.vocab} ${r.dtype}: credo-gpu / stream-limit bandwidth = ${(r.ratio * 100).toFixed(1)}%` +
        (jax && mine && r.dtype === 'f32' ? `; jaxjs-webgpu-jit / credo-gpu = ${(jax / mine).toFixed(1)}x` : ''),
    );
  }
  for (const tokens of SIZES) {
    for (const name of ['dapo', 'gspo', 'ctpo']) {
      const r = ratios.find((x) => x.objective === name && x.tokens === tokens);
      if (r)
        console.log(
          `ratio ${name} @ ${tokens}: credo-gpu / stream-limit bandwidth = ${(r.ratio * 100).toFixed(1)}% (median of paired runs)`,
        );
      const mine = rows.find((r) => r.tool === 'credo-gpu' && r.objective === name && r.tokens === tokens)?.resident_ms;
      const jax = rows.find(
        (r) => r.tool === 'jaxjs-webgpu-jit' && r.objective === name && r.tokens === tokens,
      )?.resident_ms;
      if (mine && jax)
        console.log(
          `ratio ${name} @ ${tokens}: jaxjs-webgpu-jit / credo-gpu resident time = ${(jax / mine).toFixed(1)}x`,
        );
    }
  }
  for (const c of compileRows)
    console.log(
      `compile ${c.objective}: cold ${c.cold_ms.toFixed(1)} ms, cached ${c.cached_ms.toFixed(1)} ms (source → pipelines ready)`,
    );
}

/**
 * jax-js on dapo_logits (F32 logits; it has no bf16 reads of a file's halves): at the bench's
 * shapes — where it must hold several [T × V] intermediates, so it may fail, which the row says —
 * and at a small shape where it fits, for the time ratio.
 */
async function jaxLogitsRows(jaxOk: { ok: boolean; reason?: string }): Promise<Row[]> {
  const out: Row[] = [];
  for (const [T, V] of vocabShapes(quick)) {
    const base = {
      objective: 'dapo_logits',
      tokens: T,
      vocab: V,
      dtype: 'f32' as const,
      tool: 'jaxjs-webgpu-jit',
      e2e_ms: null,
      device_mib: null,
    };
    if (!jaxOk.ok) {
      out.push({ ...base, resident_ms: null, gbps: null, note: jaxOk.reason });
      continue;
    }
    const batch = vocabBatch(compile('dapo_logits'), T, V, 'f32');
    try {
      const r = await benchJaxLogits(
        {
          offsets: Int32Array.from(batch.offsets),
          groupOf: Int32Array.from(batch.groupOf),
          numGroups: batch.numGroups,
          mask: Uint8Array.from(batch.mask),
          old_logp: Float32Array.from(batch.tensors.get('old_logp')!.data),
          reward: Float32Array.from(batch.tensors.get('reward')!.data),
          logits: Float32Array.from(batch.tensors.get('logits')!.data),
          tokenId: Int32Array.from(batch.tensors.get('token_id')!.data),
          vocab: V,
        },
        quick ? 2 : 3,
      );
      // a result is only a time if it is right: jax-js may silently compute on buffers it could not allocate whole
      const want = plainDapoLogits(batch, 0.01).loss;
      if (!(Math.abs(r.loss - want) <= 1e-3 * (1 + Math.abs(want)))) {
        out.push({
          ...base,
          resident_ms: null,
          gbps: null,
          note: `wrong result: loss ${r.loss}, expected ${want} (after ${r.resident_ms.toFixed(1)} ms)`,
        });
        continue;
      }
      out.push({
        ...base,
        resident_ms: r.resident_ms,
        gbps: (8 * T * V) / r.resident_ms / 1e6,
        note: `jit(valueAndGrad), first call ${r.compile_ms.toFixed(0)} ms`,
      });
    } catch (e) {
      out.push({
        ...base,
        resident_ms: null,
        gbps: null,
        note: `fails: ${(e as Error).message.split('\n')[0].slice(0, 160)}`,
      });
    }
  }
  return out;
}

await main();

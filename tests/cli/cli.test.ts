/**
 * The `credo` command end to end (through `main`, in process): outputs, exit codes, padded and
 * packed batch files, and one-line errors for bad batches.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../../runtime/batch/safetensors.js';
import { main } from '../../src/cli/main.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import type { RefBatch } from '../reference/batch.js';
import { dapoRef } from '../reference/dapo.js';
import { grpoRef } from '../reference/grpo.js';
import { gspoRef } from '../reference/gspo.js';
import { logitsPolicyLoss } from '../reference/vocab.js';

const dir = mkdtempSync(join(tmpdir(), 'credo-cli-'));

async function credo(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

/** The batch as a packed ([T] + seq_lens) or padded ([S, L]) safetensors file. */
function batchFile(
  b: RefBatch,
  layout: 'packed' | 'padded',
  name: string,
  edit?: (ts: TensorToWrite[]) => TensorToWrite[],
): string {
  const S = b.offsets.length - 1;
  const lens = Array.from({ length: S }, (_, s) => b.offsets[s + 1] - b.offsets[s]);
  const L = Math.max(1, ...lens);
  const token = (xs: number[]): { shape: number[]; data: number[] } => {
    if (layout === 'packed') return { shape: [xs.length], data: xs };
    const data = new Array(S * L).fill(0);
    for (let s = 0; s < S; s++) for (let k = 0; k < lens[s]; k++) data[s * L + k] = xs[b.offsets[s] + k];
    return { shape: [S, L], data };
  };
  let tensors: TensorToWrite[] = [
    { name: 'logp', dtype: 'F32', ...token(b.logp) },
    { name: 'old_logp', dtype: 'F32', ...token(b.old_logp) },
    { name: 'ref_logp', dtype: 'F32', ...token(b.ref_logp) },
    { name: 'mask', dtype: 'U8', ...token(b.mask) },
    { name: 'reward', dtype: 'F32', shape: [S], data: b.reward },
    { name: 'seq_lens', dtype: 'I32', shape: [S], data: lens },
    { name: 'group_id', dtype: 'I32', shape: [S], data: b.groupOf.map((g) => 100 + g) },
  ];
  if (edit) tensors = edit(tensors);
  const path = join(dir, name);
  writeFileSync(path, writeSafetensors(tensors));
  return path;
}

/** Rounds every float of a batch to float32, as it is stored in an F32 file. */
function f32(b: RefBatch): RefBatch {
  const r = (xs: number[]) => xs.map((x) => Math.fround(x));
  return { ...b, logp: r(b.logp), old_logp: r(b.old_logp), ref_logp: r(b.ref_logp), reward: r(b.reward) };
}

async function withoutGpu<T>(f: () => Promise<T>): Promise<T> {
  const saved = process.env.CREDO_GPU;
  process.env.CREDO_GPU = 'off';
  try {
    return await f();
  } finally {
    if (saved === undefined) delete process.env.CREDO_GPU;
    else process.env.CREDO_GPU = saved;
  }
}

describe('credo run', () => {
  it('prints loss and metrics of the synthetic batch', async () => {
    const r = await withoutGpu(() => credo('run', 'dapo'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^loss\s+-?\d/m);
    expect(r.out).toMatch(/^clip_frac\s+\d/m);
    expect(r.err).toMatch(/note: GPU disabled by CREDO_GPU=off; running on the CPU/);
  });

  it('--json prints loss, metrics, backend and timings', async () => {
    const r = await credo(
      'run',
      'grpo',
      '--json',
      '--backend',
      'cpu',
      '--tokens',
      '1000',
      '--group-size',
      '4',
      '--seed',
      '3',
      '--set',
      'beta=0.1',
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(Number.isFinite(j.loss)).toBe(true);
    expect(Object.keys(j.metrics).sort()).toEqual(['clip_frac', 'kl']);
    expect(j.backend).toBe('cpu-interpreter');
    expect(j.batch.tokens).toBe(1000);
    expect(typeof j.timings_ms.run).toBe('number');
  });

  it.each([
    ['dapo', dapoRef],
    ['grpo', grpoRef],
    ['gspo', gspoRef],
  ] as const)('%s on padded and packed files equals the reference, outputs in the input layout', async (name, ref) => {
    await fc.assert(
      fc.asyncProperty(arbRefBatch({ minGroups: 1, maxGroups: 4 }), async (b0) => {
        const b = f32(b0);
        const want = ref(b);
        const results = [];
        for (const layout of ['packed', 'padded'] as const) {
          const input = batchFile(b, layout, `${name}-${layout}.safetensors`);
          const outPath = join(dir, `${name}-${layout}-out.safetensors`);
          const r = await credo('run', name, '--batch', input, '--out', outPath, '--json', '--backend', 'cpu');
          expect(r.code, r.out + r.err).toBe(0);
          const j = JSON.parse(r.out);
          expect(Math.abs(j.loss - want.loss)).toBeLessThanOrEqual(1e-9 * (1 + Math.abs(want.loss)));
          const out = readSafetensors(readFileSync(outPath));
          expect(out.get('loss')!.shape).toEqual([]);
          expect(out.get('loss')!.data[0]).toBe(Math.fround(j.loss));
          for (const k of Object.keys(want.metrics))
            expect(out.get(`metric.${k}`)!.data[0]).toBe(Math.fround(j.metrics[k]));
          const g = out.get('grad.logp')!;
          const S = b.offsets.length - 1;
          if (layout === 'packed') expect(g.shape).toEqual([b.logp.length]);
          else
            expect(g.shape).toEqual([
              S,
              Math.max(1, ...Array.from({ length: S }, (_, s) => b.offsets[s + 1] - b.offsets[s])),
            ]);
          // unpack the padded gradient and compare with the reference (float32 output)
          const L = layout === 'padded' ? g.shape[1] : 0;
          const packed: number[] = [];
          for (let s = 0; s < S; s++)
            for (let k = 0; k < b.offsets[s + 1] - b.offsets[s]; k++)
              packed.push(layout === 'packed' ? g.data[b.offsets[s] + k] : g.data[s * L + k]);
          packed.forEach((v, t) =>
            expect(Math.abs(v - want.grad_logp[t])).toBeLessThanOrEqual(1e-6 * (1e-3 + Math.abs(want.grad_logp[t]))),
          );
          if (layout === 'padded') {
            for (let s = 0; s < S; s++)
              for (let k = b.offsets[s + 1] - b.offsets[s]; k < L; k++) expect(g.data[s * L + k]).toBe(0);
          }
          results.push({ loss: j.loss, grad: packed });
        }
        expect(results[1]).toEqual(results[0]); // padded and packed give identical results
      }),
      { numRuns: 15 },
    );
  });

  it('--backend gpu --json prints the adapter and GPU timings (when an adapter exists)', async () => {
    const r = await credo('run', 'dapo', '--backend', 'gpu', '--json', '--tokens', '2000');
    if (r.code === 1) {
      // no adapter: with --json the error is JSON on stdout, like every other error
      expect(JSON.parse(r.out).error.message).toMatch(/--backend gpu: no WebGPU adapter|could not be loaded/);
      return;
    }
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.backend).toBe('webgpu');
    expect(j.adapter.length).toBeGreaterThan(0);
    expect(typeof j.timings_ms.gpu_kernels).toBe('number');
    expect(j.dispatches).toBeGreaterThan(0);
    expect(j.dispatches).toBeLessThanOrEqual(3); // dapo: loss + gradient fused into at most 3 dispatches
    const cpu = JSON.parse((await credo('run', 'dapo', '--backend', 'cpu', '--json', '--tokens', '2000')).out);
    expect(Math.abs(j.loss - cpu.loss)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(cpu.loss)));
  });

  it('takes --group-size instead of group_id', async () => {
    const b = f32({
      offsets: [0, 2, 4, 5, 7],
      groupOf: [0, 0, 1, 1],
      numGroups: 2,
      mask: [1, 1, 1, 1, 1, 1, 1],
      logp: [-1, -2, -1, -0.5, -3, -1, -2],
      old_logp: [-1.1, -2, -1, -0.4, -3, -1, -2.2],
      ref_logp: [-1, -2, -1, -0.5, -3, -1, -2],
      reward: [1, 0, 0, 1],
    });
    const input = batchFile(b, 'packed', 'gs.safetensors', (ts) => ts.filter((t) => t.name !== 'group_id'));
    const r = await credo('run', 'dapo', '--batch', input, '--group-size', '2', '--json', '--backend', 'cpu');
    expect(r.code, r.err).toBe(0);
    expect(Math.abs(JSON.parse(r.out).loss - dapoRef(b).loss)).toBeLessThan(1e-9);
  });

  it('runs an objective over logits with --backend auto (the GPU where there is one), the numbers of --backend cpu', async () => {
    const auto = await credo('run', 'dapo_logits', '--tokens', '96', '--vocab', '10', '--json');
    const cpu = await credo('run', 'dapo_logits', '--tokens', '96', '--vocab', '10', '--json', '--backend', 'cpu');
    expect(auto.code, auto.err).toBe(0);
    expect(cpu.code, cpu.err).toBe(0);
    const [a, c] = [JSON.parse(auto.out), JSON.parse(cpu.out)];
    expect(c.backend).toBe('cpu-interpreter');
    expect(Math.abs(a.loss - c.loss)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(c.loss)));
    expect(c.metrics.entropy).toBeGreaterThan(0);
    expect(c.metrics.entropy).toBeLessThanOrEqual(Math.log(10) + 1e-12);
    expect(Math.abs(a.metrics.entropy - c.metrics.entropy)).toBeLessThanOrEqual(1e-4 * (1 + c.metrics.entropy));
  });

  it('a top_p mask over the vocabulary has no GPU kernel: a note with --backend auto, an error with --backend gpu', async () => {
    const src = join(dir, 'nucleus.credo');
    writeFileSync(
      src,
      'objective nucleus\ninput logits : token x vocab grad\ninput token_id : token i32\nmask mask : token\n' +
        'let keep = top_p(softmax(logits), 0.9 per token)\n' +
        'loss = -mean(gather(where(keep, log_softmax(logits), 0), token_id))\n',
    );
    const auto = await credo('run', src, '--tokens', '32', '--vocab', '6', '--json');
    expect(auto.code, auto.err).toBe(0);
    expect(JSON.parse(auto.out).backend).toBe('cpu-interpreter');
    expect(auto.err).toMatch(/`sum_before` over the vocabulary axis .* has no GPU kernel yet; running on the CPU/);
    const gpu = await credo('run', src, '--tokens', '32', '--vocab', '6', '--backend', 'gpu');
    expect(gpu.code).toBe(1);
    expect(gpu.err).toMatch(/--backend gpu: .*over the vocabulary axis/);
  });
});

describe('credo run over logits from a file', () => {
  it('reads [S, L, V] logits, writes grad.logits as [S, L, V] with zero padding rows, equal to the reference', async () => {
    const src = join(dir, 'nll.credo');
    writeFileSync(
      src,
      'objective nll\nimport vocab\nparam c = 0.1\ninput logits : token x vocab grad\ninput token_id : token i32\nmask mask : token\n' +
        'loss = -mean(vocab.logp(logits, token_id)) - c * mean(vocab.entropy(logits))\n',
    );
    const [S, L, V] = [2, 3, 5];
    const lens = [3, 1];
    const logits = Array.from({ length: S * L * V }, (_, i) => Math.fround(Math.sin(i * 1.7) * 3));
    logits[1] = -Infinity; // a masked-out vocabulary entry
    const ids = [2, 4, 0, 2, 0, 0];
    const mask = [1, 0, 1, 1, 0, 0];
    const input = join(dir, 'logits.safetensors');
    writeFileSync(
      input,
      writeSafetensors([
        { name: 'logits', dtype: 'F32', shape: [S, L, V], data: logits },
        { name: 'token_id', dtype: 'I32', shape: [S, L], data: ids },
        { name: 'mask', dtype: 'U8', shape: [S, L], data: mask },
        { name: 'seq_lens', dtype: 'I32', shape: [S], data: lens },
      ]),
    );
    const out = join(dir, 'logits-out.safetensors');
    const r = await credo('run', src, '--batch', input, '--out', out, '--json', '--backend', 'cpu');
    expect(r.code, r.err).toBe(0);
    // the reference on the packed valid rows: sequence 0 has 3 tokens, sequence 1 one
    const rows = [0, 1, 2, 3].map((k) => {
      const t = k < 3 ? k : L; // packed token k → padded row
      return logits.slice(t * V, (t + 1) * V);
    });
    const ref = logitsPolicyLoss({ V, logits: rows, tokenId: [2, 4, 0, 2], mask: [1, 0, 1, 1] }, 0.1);
    expect(Math.abs(JSON.parse(r.out).loss - ref.loss)).toBeLessThan(1e-9);
    const g = readSafetensors(readFileSync(out)).get('grad.logits')!;
    expect(g.shape).toEqual([S, L, V]);
    const want = [...ref.grad[0], ...ref.grad[1], ...ref.grad[2], ...ref.grad[3], ...new Array(2 * V).fill(0)];
    want.forEach((w, i) => expect(Math.abs(g.data[i] - w), `grad.logits[${i}]`).toBeLessThan(1e-7));
  });
});

describe('credo run: user errors exit 1 with a clear message', () => {
  const b: RefBatch = {
    offsets: [0, 2, 3],
    groupOf: [0, 0],
    numGroups: 1,
    mask: [1, 1, 1],
    logp: [-1, -2, -1],
    old_logp: [-1, -2, -1],
    ref_logp: [-1, -2, -1],
    reward: [1, 0],
  };

  it.each([
    ['a missing tensor', (ts: TensorToWrite[]) => ts.filter((t) => t.name !== 'old_logp'), /old_logp/],
    [
      'a wrong dtype',
      (ts: TensorToWrite[]) =>
        ts.map((t) => (t.name === 'logp' ? { ...t, dtype: 'I32' as const, data: [1, 2, 1] } : t)),
      /logp/,
    ],
    [
      'a wrong shape',
      (ts: TensorToWrite[]) => ts.map((t) => (t.name === 'reward' ? { ...t, shape: [3], data: [1, 0, 1] } : t)),
      /reward/,
    ],
    [
      'NaN at a valid token',
      (ts: TensorToWrite[]) => ts.map((t) => (t.name === 'logp' ? { ...t, data: [-1, Number.NaN, -1] } : t)),
      /logp/,
    ],
    [
      'Inf in a seq input',
      (ts: TensorToWrite[]) => ts.map((t) => (t.name === 'reward' ? { ...t, data: [Infinity, 0] } : t)),
      /reward/,
    ],
    [
      'seq_lens that do not sum to T',
      (ts: TensorToWrite[]) => ts.map((t) => (t.name === 'seq_lens' ? { ...t, data: [2, 2] } : t)),
      /seq_lens|mask/,
    ],
  ])('%s', async (_what, edit, names) => {
    const r = await credo('run', 'dapo', '--batch', batchFile(b, 'packed', 'bad.safetensors', edit));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(names);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).not.toMatch(/ at .*\.(ts|js):\d+/); // no stack trace
  });

  it('a truncated or malformed file', async () => {
    const good = readFileSync(batchFile(b, 'packed', 'good.safetensors'));
    for (const [i, bytes] of [
      good.subarray(0, good.length - 5),
      good.subarray(0, 5),
      new TextEncoder().encode('not a safetensors file at all'),
    ].entries()) {
      const path = join(dir, `broken-${i}.safetensors`);
      writeFileSync(path, bytes);
      const r = await credo('run', 'dapo', '--batch', path);
      expect(r.code).toBe(1);
      expect(r.err.trim().split('\n')).toHaveLength(1);
    }
    const missing = await credo('run', 'dapo', '--batch', join(dir, 'nope.safetensors'));
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/cannot read batch file/);
  });

  it('padded mask with a 1 beyond seq_lens', async () => {
    const path = batchFile(b, 'padded', 'badmask.safetensors', (ts) =>
      ts.map((t) => (t.name === 'mask' ? { ...t, data: [1, 1, 1, 1] } : t)),
    );
    const r = await credo('run', 'dapo', '--batch', path);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/mask|seq_lens/);
  });

  it('--backend gpu without an adapter is a clear error, exit 1', async () => {
    const r = await withoutGpu(() => credo('run', 'dapo', '--backend', 'gpu'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--backend gpu: GPU disabled by CREDO_GPU=off; use --backend cpu/);
  });

  it.each([
    [['run', 'dapoo'], /did you mean `dapo`/],
    [['run', 'dapo', '--set', 'eps_hgh=0.3'], /E0501.*eps_hgh[\s\S]*did you mean `eps_high`/],
    [['run', 'dapo', '--set', 'eps_high=abc'], /E0502/],
    [['run', 'dapo', '--set', 'eps_high'], /E0502/],
    [['run', 'dapo', '--tokens', '-3'], /--tokens must be an integer/],
    [['run', 'dapo', '--backend', 'tpu'], /--backend must be auto, cpu or gpu/],
    [['frobnicate'], /unknown command/],
  ])('%j', async (args, message) => {
    const r = await credo(...args);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(message);
  });
});

describe('credo check, ir, list', () => {
  it('check reports diagnostics with file:line:col and exits 1; --json gives data', async () => {
    const path = join(dir, 'bad.credo');
    writeFileSync(path, 'objective bad\ninput logp : token grad\nlet x = lgo(logp)\nloss = mean(x)\n');
    const r = await credo('check', path);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`--> ${path}:3:9`);
    expect(r.err).toContain('did you mean `log`?');
    const j = await credo('check', path, '--json');
    expect(j.code).toBe(1);
    expect(JSON.parse(j.out).diagnostics[0]).toMatchObject({ code: 'E0101', span: { line: 3, col: 9 } });
  });

  it('check accepts every stdlib objective', async () => {
    for (const name of ['grpo', 'dapo', 'gspo']) expect((await credo('check', name)).code).toBe(0);
  });

  it('plan and wgsl print the kernels with their source lines', async () => {
    const plan = await credo('plan', 'dapo');
    expect(plan.code).toBe(0);
    expect(plan.out).toMatch(/^plan dapo: \d+ kernels/);
    expect(plan.out).toMatch(/reduce token→batch: sum %\d+ \(stdlib\/dapo\.credo:\d+\)/);
    const none = await credo('plan', 'dapo', '--fuse', 'none');
    expect(Number(/(\d+) kernels/.exec(none.out)![1])).toBeGreaterThan(Number(/(\d+) kernels/.exec(plan.out)![1]));
    const wgsl = await credo('wgsl', 'dapo');
    expect(wgsl.code).toBe(0);
    expect(wgsl.out).toContain('@compute @workgroup_size(128)');
    expect(wgsl.out).toMatch(/kernel \d+: reduce \(one workgroup per seq; when tokens per seq ≥ 256\)/);
    expect((await credo('wgsl', 'dapo', '--workgroup-size', '8')).out).toContain('@compute @workgroup_size(8)');
    expect(wgsl.out).toMatch(/\/\/ from stdlib\/dapo\.credo:\d+/);
  });

  it('ir prints the typed IR and the gradient IR', async () => {
    const r = await credo('ir', 'dapo', '--spans');
    expect(r.code).toBe(0);
    expect(r.out).toContain('# typed IR');
    expect(r.out).toMatch(/^grad logp %\d+$/m);
    expect(r.out).toMatch(/# stdlib\/dapo\.credo:\d+:\d+/);
  });

  it('list --json shows every objective with summary and confidence', async () => {
    const r = await credo('list', '--json');
    expect(r.code).toBe(0);
    const entries = JSON.parse(r.out) as { name: string; summary: string; confidence: string }[];
    expect(entries.map((e) => e.name)).toEqual(expect.arrayContaining(['grpo', 'dapo', 'gspo']));
    for (const e of entries) {
      expect(e.summary.length).toBeGreaterThan(10);
      expect(['code-verified', 'paper-text', 'reconstructed']).toContain(e.confidence);
    }
  });
});

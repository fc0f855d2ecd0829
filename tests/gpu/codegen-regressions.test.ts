/**
 * Regressions of the WGSL back end:
 *
 * 1. A seq (group) value computed from a row pass over the vocabulary and broadcast back into a
 *    `token x vocab` expression (`logits - logsumexp(logsumexp(logits per token) per seq)`) crashed
 *    codegen with `no index for level token`: its gradient summed the adjoint from the vocabulary
 *    straight to the seq, and optimize/vocab-rows.ts factored that sum as if it went to the token,
 *    a token value under seq-level users. Such programs now plan (the row sum goes to the token
 *    first), a graph that still reduces past the token is refused by `deviceUnsupported` (no crash),
 *    and the device agrees with the interpreter on masked ragged batches, fused and unfused.
 * 2. The prelude's `expm1_` / `log1p_` (and their vec4 twins) are within a few f32 ulps of the
 *    float64 value over x from 1e-8 to 30, both signs: relative 1e-6.
 * 3. Operations on constants only whose value is not a finite f32 (`exp(1000)`, `log(0)`,
 *    `sqrt(-1)`, `exp(2 * 500)`) compiled to WGSL that the device rejected (WGSL const-evaluates
 *    them): their operands are now opaque at shader creation, and the run gives the interpreter's
 *    ±Infinity / NaN.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { offsetsFromLengths, type HostTensor, type InputSpec, type RaggedBatch } from '../../core/batch/batch.js';
import { renderDiagnostics } from '../../core/diagnostics/render.js';
import { IrBuilder } from '../../core/ir/build.js';
import { topoSort } from '../../core/ir/node.js';
import { outputNodes, type Program } from '../../core/ir/program.js';
import { evaluate } from '../../compiler/interp/eval.js';
import { deviceUnsupported, lowerToDevice, NotOnDeviceError } from '../../compiler/lower-to-device.js';
import { optimizeRows } from '../../compiler/optimize/vocab-rows.js';
import { openDevice, type GpuDevice } from '../../runtime/webgpu/device.js';
import { compileSource } from '../../src/compile.js';
import { compileGpu } from '../../src/gpu.js';
import type { Objective } from '../../src/objective.js';
import { agree } from '../helpers/gpu-agree.js';

const opened = await openDevice().then(
  (d) => ({ device: d as GpuDevice, reason: '' }),
  (e: Error) => ({ device: undefined, reason: e.message }),
);
const device = opened.device;
afterAll(() => device?.dispose());

function objectiveOf(source: string, name = 't'): Objective {
  const { program, diagnostics } = compileSource(source, `${name}.credo`);
  if (!program) throw new Error(renderDiagnostics(diagnostics));
  return { name, program, diagnostics: [], inputs: program.inputs, maskName: 'mask', run: (b) => evaluate(program, b) };
}

const VOCAB_HEADER = 'input logits : token x vocab grad\ninput target : token x vocab\nmask mask : token\n';

/** The reported crash and its variants: seq/group values from row passes used over the vocabulary. */
const ROW_PASS_PROGRAMS: Record<string, string> = {
  'logsumexp per seq (the report)': `${VOCAB_HEADER}let lse = logsumexp(logsumexp(logits per token) per seq)
loss = -sum(sum(target * (logits - lse) per token))`,
  'log(sum(exp)) per seq': `${VOCAB_HEADER}let lse = log(sum(exp(logsumexp(logits per token)) per seq))
loss = -sum(sum(target * (logits - lse) per token))`,
  'logsumexp per group': `${VOCAB_HEADER}let lse = logsumexp(logsumexp(logits per token) per group)
loss = -mean(sum(target * (logits - lse) per token))`,
  'seq values from row passes in a vocab expression': `input logits : token x vocab grad
input w : token grad
mask mask : token
let m = mean(max(logits per token) per seq)
let s = sum(w * logsumexp(logits per token) per seq)
loss = sum(sum(softmax(logits) * (logits - m) * 0.01 * s per token)) + mean(sum(exp(logits - 0.1 * s) per token))
metric ms = mean(mean(m per group))`,
  'a batch value and a seq value over the row': `${VOCAB_HEADER}let b = mean(sum(target * logits per token))
let q = logsumexp(logsumexp(logits per token) per seq)
loss = b * mean(q) + sum(sum(target * (logits - q - b) per token))`,
};

/** No node takes a value over the vocabulary to a level coarser than the token. */
function reducesPastToken(p: Program): string[] {
  return topoSort(outputNodes(p))
    .filter((n) => n.type.level !== 'vocab' && n.type.level !== 'token' && n.src.some((m) => m.type.level === 'vocab'))
    .map((n) => `%${n.id} ${n.op} → ${n.type.level}`);
}

/** Ragged batches over `inputs`: 1–6 sequences (some empty), groups of 1–3, random masks, V of a few sizes. */
function arbRowBatch(inputs: readonly InputSpec[]): fc.Arbitrary<RaggedBatch> {
  const shape = fc.record({
    lengths: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 7 })), { minLength: 1, maxLength: 6 }),
    V: fc.constantFrom(1, 3, 5, 8, 13),
    groupSize: fc.integer({ min: 1, max: 3 }),
    seed: fc.integer({ min: 1, max: 2 ** 30 }),
  });
  return shape.map(({ lengths, V, groupSize, seed }) => {
    let state = seed;
    const rand = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const S = lengths.length;
    const offsets = offsetsFromLengths(lengths);
    const T = offsets[S];
    const groupOf = Int32Array.from({ length: S }, (_, s) => Math.floor(s / groupSize));
    const numGroups = groupOf[S - 1] + 1;
    // masked tokens carry large row values: a masked row that leaked into a sum would show
    const mask = Uint8Array.from({ length: T }, () => (rand() < 0.75 ? 1 : 0));
    const tensors = new Map<string, HostTensor>();
    for (const input of inputs) {
      const n = input.level === 'vocab' ? T * V : input.level === 'token' ? T : input.level === 'seq' ? S : numGroups;
      const data = Float64Array.from({ length: n }, (_, i) => {
        const t = input.level === 'vocab' ? Math.floor(i / V) : i;
        const big = input.level !== 'seq' && input.level !== 'group' && !mask[t] ? 20 : 1;
        return Math.fround(input.name === 'target' ? big * rand() : big * (rand() - 0.5) * 4);
      });
      tensors.set(input.name, { level: input.level, dtype: 'f32', data });
    }
    return {
      numTokens: T,
      numSeqs: S,
      numGroups,
      vocabSize: V,
      offsets,
      groupOf,
      groupIds: Array.from({ length: numGroups }, (_, g) => g),
      mask,
      tensors,
      layout: { kind: 'packed' },
    } satisfies RaggedBatch;
  });
}

describe('a seq value from a row pass over the vocabulary (codegen `no index for level token`)', () => {
  for (const [what, body] of Object.entries(ROW_PASS_PROGRAMS)) {
    it(`plans and emits: ${what}`, () => {
      const { program } = objectiveOf(`objective t\n${body}\n`);
      expect(reducesPastToken(program), 'the IR reduces the vocabulary to the token only').toEqual([]);
      expect(deviceUnsupported(program)).toBeNull();
      for (const fuse of ['default', 'none'] as const) {
        const lowered = lowerToDevice(program, { fuse, workgroupSize: 64 });
        expect(reducesPastToken(lowered.program), `${fuse}: optimized IR`).toEqual([]);
        expect(lowered.device.steps.length).toBeGreaterThan(0);
      }
    });
  }

  it('refuses, never crashes on, a graph that sums the vocabulary straight to the seq', () => {
    const { program } = objectiveOf(`objective t\n${ROW_PASS_PROGRAMS['logsumexp per seq (the report)']}\n`);
    // the pre-fix gradient's shape, built past IrBuilder (which no longer builds it): Σ_vocab→seq of a row value
    const g = program.graph;
    const x = topoSort(outputNodes(program)).find((n) => n.op === 'input' && n.type.level === 'vocab')!;
    const twice = new IrBuilder(g).mul(x, new IrBuilder(g).constant(2));
    const direct = g.node('reduce', { dtype: 'f32', level: 'seq' }, [twice], { fn: 'sum' });
    const negated = g.node('unary', { dtype: 'f32', level: 'seq' }, [direct], { fn: 'neg' });
    const toBatch = g.node('reduce', { dtype: 'f32', level: 'batch' }, [negated], { fn: 'sum' });
    const bad: Program = { ...program, loss: toBatch, grads: new Map(), metrics: new Map(), exports: new Map() };
    expect(deviceUnsupported(bad)).toMatch(/straight to the seq has no GPU kernel/);
    expect(() => lowerToDevice(bad, { workgroupSize: 64 })).toThrow(NotOnDeviceError);
    // and the row-sum factoring (2·Σ x) leaves such a sum at the seq, under its seq-level user
    const optimized = optimizeRows(bad);
    expect(optimized.loss.src[0].src[0].type.level).toBe('seq');
    for (const n of topoSort(outputNodes(optimized)))
      for (const m of n.src)
        if (n.op !== 'reduce' && n.op !== 'broadcast')
          expect(m.type.level, `%${n.id} ${n.op} at ${n.type.level} reads %${m.id}`).toBe(n.type.level);
  });
});

describe.skipIf(!device)(
  `a seq value from a row pass over the vocabulary, on the GPU (${device?.adapterName ?? opened.reason})`,
  () => {
    for (const [what, body] of Object.entries(ROW_PASS_PROGRAMS)) {
      it(`agrees with the interpreter: ${what}`, async () => {
        const objective = objectiveOf(`objective t\n${body}\n`);
        const batches = fc.sample(arbRowBatch(objective.inputs), { numRuns: 3, seed: 11 });
        for (const fuse of ['default', 'none'] as const) {
          const gpu = await compileGpu(objective, { device, fuse });
          try {
            for (const b of batches)
              agree(await gpu.run(b), objective.run(b), `${what} (${fuse})`, { program: objective.program, batch: b });
          } finally {
            gpu.dispose();
          }
        }
      });
    }
  },
);

/** x from 1e-8 to 30 (about 12 points a decade), both signs, and 0; `keep` filters them. */
function sweep(keep: (x: number) => boolean): number[] {
  const xs = [0];
  for (let e = -8; e <= Math.log10(30) + 1e-9; e += 1 / 12) {
    const m = Math.fround(Math.min(30, 10 ** e));
    xs.push(m, -m);
  }
  xs.push(1e-5, -1e-5, 1e-4, -1e-4, 0.1, -0.1, 0.49999997, -0.49999997, 0.5, -0.5, 0.9999999, 1, -0.99);
  return xs.map(Math.fround).filter(keep);
}

/** The device value of fn at each x: as the gradient w.r.t. w of Σ w·fn(x), per token (vec4 maps) and per seq (scalar). */
async function onDevice(fn: 'expm1' | 'log1p', xs: readonly number[]): Promise<{ token: number[]; seq: number[] }> {
  const objective = objectiveOf(
    `objective f\ninput x : token\ninput w : token grad\ninput xs : seq\ninput ws : seq grad\nmask mask : token\nloss = sum(w * ${fn}(x)) + sum(ws * ${fn}(xs))\n`,
    'f',
  );
  const n = xs.length;
  const lengths = Array.from({ length: n }, () => 1);
  const b: RaggedBatch = {
    numTokens: n,
    numSeqs: n,
    numGroups: 1,
    vocabSize: 0,
    offsets: offsetsFromLengths(lengths),
    groupOf: new Int32Array(n),
    groupIds: [0],
    mask: new Uint8Array(n).fill(1),
    tensors: new Map<string, HostTensor>([
      ['x', { level: 'token', dtype: 'f32', data: Float64Array.from(xs) }],
      ['w', { level: 'token', dtype: 'f32', data: new Float64Array(n).fill(1) }],
      ['xs', { level: 'seq', dtype: 'f32', data: Float64Array.from(xs) }],
      ['ws', { level: 'seq', dtype: 'f32', data: new Float64Array(n).fill(1) }],
    ]),
    layout: { kind: 'packed' },
  };
  const gpu = await compileGpu(objective, { device });
  try {
    const r = await gpu.run(b);
    return { token: Array.from(r.grads.w.data), seq: Array.from(r.grads.ws.data) };
  } finally {
    gpu.dispose();
  }
}

describe.skipIf(!device)(`expm1 and log1p in the WGSL prelude (${device?.adapterName ?? opened.reason})`, () => {
  const cases = [
    { fn: 'expm1' as const, ref: Math.expm1, keep: () => true },
    { fn: 'log1p' as const, ref: Math.log1p, keep: (x: number) => x > -1 },
  ];
  for (const { fn, ref, keep } of cases) {
    it(`${fn} is within 1e-6 relative of float64 from 1e-8 to 30, both signs (vec4 and scalar)`, async () => {
      const xs = sweep(keep);
      const got = await onDevice(fn, xs);
      const bad: string[] = [];
      xs.forEach((x, i) => {
        const want = ref(x);
        for (const [path, v] of [
          ['vec4', got.token[i]],
          ['scalar', got.seq[i]],
        ] as const) {
          // relative 1e-6 (a few f32 ulps); at 0 exactly 0 (and no absolute floor that would hide x ≈ 1e-8)
          if (!(Math.abs(v - want) <= 1e-6 * Math.abs(want))) bad.push(`${path} ${fn}(${x}) = ${v}, want ${want}`);
        }
      });
      expect(bad, bad.slice(0, 8).join('\n')).toEqual([]);
    });
  }
});

describe.skipIf(!device)(`constants that are not finite f32 (${device?.adapterName ?? opened.reason})`, () => {
  const programs: Record<string, string> = {
    'exp(1000)': 'loss = mean(logp) * exp(1000)\nmetric m = exp(1000)',
    'log(0)': 'loss = mean(logp) + log(0)\nmetric m = -log(0)',
    // not `sqrt(-1) * 0`: WGSL lets an implementation assume no NaN, and llvmpipe folds NaN · 0 to 0
    'sqrt(-1)': 'loss = mean(logp) + sqrt(-1)\nmetric m = sqrt(-1)',
    'exp(2 * 500) in a token expression': 'loss = mean(logp * exp(2 * 500) + logp)\nmetric m = 1 / exp(2 * 500)',
  };
  it.each(Object.entries(programs))('%s compiles and gives the interpreter’s values', async (_, body) => {
    const objective = objectiveOf(`objective t\ninput logp : token grad\nmask mask : token\n${body}\n`);
    const b: RaggedBatch = {
      numTokens: 3,
      numSeqs: 1,
      numGroups: 1,
      vocabSize: 0,
      offsets: Int32Array.from([0, 3]),
      groupOf: Int32Array.from([0]),
      groupIds: [0],
      mask: Uint8Array.from([1, 1, 0]),
      tensors: new Map<string, HostTensor>([
        ['logp', { level: 'token', dtype: 'f32', data: Float64Array.from([-1, -2, -3]) }],
      ]),
      layout: { kind: 'packed' },
    };
    const want = objective.run(b);
    const gpu = await compileGpu(objective, { device });
    try {
      const got = await gpu.run(b);
      expect(got.loss).toBe(want.loss);
      expect(got.metrics.m).toBe(want.metrics.m);
      expect(Array.from(got.grads.logp.data)).toEqual(Array.from(want.grads.logp.data));
    } finally {
      gpu.dispose();
    }
  });
});

/**
 * GPU results (WGSL on Dawn) equal the float64 interpreter. Runs on any adapter Dawn finds (Mesa's
 * llvmpipe in CI); without one, every test here is reported as skipped with the reason.
 *
 * Tolerances (float32 on the device vs float64): loss |Δ| ≤ 1e-4·(|loss| + mean |per-token term|)
 * + 1e-6 (the loss is a mean of per-token terms, so its absolute error follows their size, not the
 * size of the possibly cancelling mean; see termScale); gradient max |Δ| ≤ 1e-4·max|g| + 1e-7.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { openDevice, type GpuDevice } from '../../runtime/webgpu/device.js';
import { offsetsFromLengths, type RaggedBatch } from '../../core/batch/batch.js';
import { compileSource } from '../../src/compile.js';
import { arbBatch, arbBatchFor } from '../../src/equiv/random-batches.js';
import { compileGpu } from '../../src/gpu.js';
import { compile } from '../../src/objective.js';
import { notOnDevice, onDevice } from '../helpers/device-objectives.js';
import { randomProgram } from '../helpers/random-program.js';
import { toRagged } from '../helpers/batches.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { syntheticBatch } from '../../runtime/batch/synthetic.js';
import { dapoRef } from '../reference/dapo.js';
import { grpoRef } from '../reference/grpo.js';
import { gspoRef } from '../reference/gspo.js';
import { evaluate } from '../../compiler/interp/eval.js';
import { agree, termScale } from '../helpers/gpu-agree.js';

const opened = await openDevice().then(
  (d) => ({ device: d as GpuDevice, reason: '' }),
  (e: Error) => ({ device: undefined, reason: e.message }),
);
const device = opened.device;
if (!device) console.warn(`GPU tests skipped: ${opened.reason}`);
afterAll(() => device?.dispose());

/** A fixed fast-check seed per test subject (see the stdlib test). */
function seedOf(name: string): number {
  let h = 7;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) | 0;
  return h;
}

describe.skipIf(!device)(`GPU backend (${device?.adapterName ?? opened.reason})`, () => {
  it.skip.each(notOnDevice)('stdlib %s: %s (runs on the CPU)', () => {});
  it.each(onDevice)(
    'stdlib %s equals the interpreter on random ragged batches',
    async (name) => {
      const cpu = compile(name);
      const gpu = await compileGpu(cpu, { device });
      try {
        // no log-ratios exactly on clip boundaries: float32 and float64 may round them to different sides of a kink.
        // Seeded per objective, so CI runs the same batches every time: a few random batches are
        // ill-conditioned in float32 (tlts: rewards that differ by less than a float32 ulp give a zero
        // advantage in float32 and ±0.02 in float64; about 1 batch in 150), which no tolerance covers.
        const samples = fc.sample(arbBatchFor(cpu.program, cpu.inputs), { numRuns: 6, seed: seedOf(name) });
        for (const batch of samples) agree(await gpu.run(batch), cpu.run(batch), name, { program: cpu.program, batch });
      } finally {
        gpu.dispose();
      }
    },
    300_000,
  ); // a cold compile of the largest shaders takes tens of seconds on llvmpipe

  it.each([
    ['grpo', grpoRef],
    ['dapo', dapoRef],
    ['gspo', gspoRef],
  ] as const)('%s on the GPU equals its hand-written reference directly', async (name, ref) => {
    const cpu = compile(name);
    const gpu = await compileGpu(cpu, { device });
    try {
      for (const rb of fc.sample(arbRefBatch({ minGroups: 1, maxGroups: 4 }), { numRuns: 10, seed: seedOf(name) })) {
        const want = ref(rb);
        const batch = toRagged(rb);
        const got = await gpu.run(batch);
        const terms = termScale(cpu.program, batch, {});
        expect(Math.abs(got.loss - want.loss), `${name} loss`).toBeLessThanOrEqual(
          1e-4 * (Math.abs(want.loss) + terms) + 1e-6,
        );
        const maxG = Math.max(0, ...want.grad_logp.map(Math.abs));
        want.grad_logp.forEach((g, t) =>
          expect(Math.abs(got.grads.logp.data[t] - g), `${name} grad[${t}]`).toBeLessThanOrEqual(1e-4 * maxG + 1e-7),
        );
      }
    } finally {
      gpu.dispose();
    }
  });

  it('random well-typed programs equal the interpreter', async () => {
    // each program compiles its own pipelines (llvmpipe compiles shaders on the CPU): keep the count modest
    const cases = fc.sample(fc.tuple(fc.integer({ min: 0, max: 2 ** 31 - 1 }), arbRefBatch({ maxGroups: 3 })), {
      numRuns: 15,
      seed: 17,
    });
    for (const [seed, rb] of cases) {
      const { program } = compileSource(randomProgram(seed), `random-${seed}.credo`);
      const batch = toRagged(rb);
      const want = evaluate(program!, batch, { step: 3, totalSteps: 10 });
      if (!Number.isFinite(want.loss) || Math.abs(want.loss) > 1e6) continue; // f32 cannot follow f64 there
      const gpu = await compileGpu(
        {
          name: 'random',
          program: program!,
          diagnostics: [],
          inputs: program!.inputs,
          maskName: 'mask',
          run: () => want,
        },
        { device },
      );
      try {
        agree(await gpu.run(batch, { step: 3, totalSteps: 10 }), want, `random program ${seed}`, {
          program: program!,
          batch,
          opts: { step: 3, totalSteps: 10 },
        });
      } finally {
        gpu.dispose();
      }
    }
  }, 300_000);

  it('the unfused plan gives the same numbers', async () => {
    const cpu = compile('grpo');
    const [fused, unfused] = [await compileGpu(cpu, { device }), await compileGpu(cpu, { device, fuse: 'none' })];
    expect(unfused.plan.kernels.length).toBeGreaterThan(fused.plan.kernels.length);
    const batch: RaggedBatch = fc.sample(
      arbBatch({ inputs: cpu.inputs, onPolicy: false, equalLengths: false, boundaries: [] }),
      { numRuns: 1, seed: 3 },
    )[0];
    const [a, b] = [await fused.run(batch), await unfused.run(batch)];
    agree(a, cpu.run(batch), 'fused', { program: cpu.program, batch });
    agree(b, cpu.run(batch), 'unfused', { program: cpu.program, batch });
    fused.dispose();
    unfused.dispose();
  });

  it('long sequences take the workgroup-per-sequence strategy and agree too', async () => {
    // sequences of 257..900 tokens (mean ≥ 256), lengths not multiples of 4, so the vec4s at the
    // ends of a sequence are shared with its neighbours; some tokens masked out, some groups of one
    const cases = fc.sample(
      fc.record({
        // up to 19 sequences: more than one run of sequences per workgroup (8 on a CPU adapter)
        lengths: fc.array(fc.integer({ min: 257, max: 900 }), { minLength: 3, maxLength: 19 }),
        seed: fc.integer({ min: 0, max: 1000 }),
      }),
      { numRuns: 4, seed: 11 },
    );
    for (const name of ['gspo', 'grpo', 'ctpo', 'dapo', 'gmpo']) {
      const cpu = compile(name);
      const gpu = await compileGpu(cpu, { device });
      for (const { lengths, seed } of cases) {
        const tokens = lengths.reduce((a, b) => a + b, 0);
        const base = syntheticBatch({ seed, tokens, groupSize: 2, inputs: cpu.inputs, maskName: cpu.maskName });
        const numSeqs = lengths.length;
        const groupOf = Int32Array.from(lengths, (_, i) => Math.min(Math.floor(i / 2), Math.floor((numSeqs - 1) / 2)));
        const numGroups = groupOf[numSeqs - 1] + 1;
        const sized = (l: string, n: number) =>
          Float64Array.from({ length: n }, (_, i) =>
            ((i + seed) * 7919) % 3 === 0 ? 1 : 0.25 * (l === 'seq' ? 1 : 2),
          );
        const tensors = new Map(
          [...base.tensors].map(([k, t]) => [
            k,
            t.level === 'token' ? t : { ...t, data: sized(t.level, t.level === 'seq' ? numSeqs : numGroups) },
          ]),
        );
        const mask = Uint8Array.from({ length: tokens }, (_, t) => ((t * 31 + seed) % 17 === 0 ? 0 : 1));
        const batch: RaggedBatch = {
          ...base,
          numSeqs,
          numGroups,
          offsets: offsetsFromLengths(lengths),
          groupOf,
          groupIds: Array.from({ length: numGroups }, (_, g) => g),
          mask,
          tensors,
        };
        agree(await gpu.run(batch), cpu.run(batch), `${name} long ${JSON.stringify(lengths)}`, {
          program: cpu.program,
          batch,
        });
      }
      gpu.dispose();
    }
  });

  it('edge batches: empty, fully masked, groups of one, log-ratios of ±50, all-equal rewards', async () => {
    const cpu = compile('dapo');
    const gpu = await compileGpu(cpu, { device });
    const mk = (lens: number[], groups: number[], mask: number[], d: number, reward: number[]) =>
      toRagged({
        offsets: lens.reduce((o, l) => [...o, o[o.length - 1] + l], [0]),
        groupOf: groups,
        numGroups: Math.max(0, ...groups.map((g) => g + 1)),
        mask,
        logp: mask.map(() => -1),
        old_logp: mask.map(() => -1 - d),
        ref_logp: mask.map(() => -1),
        reward,
      });
    const cases = [
      mk([], [], [], 0, []),
      mk([0, 0], [0, 0], [], 0, [1, 0]),
      mk([2, 1], [0, 1], [0, 0, 0], 0.1, [1, 0]),
      mk([3, 2], [0, 0], [1, 1, 1, 1, 1], 50, [1, 0]),
      mk([3, 2], [0, 0], [1, 1, 1, 1, 1], -50, [0, 1]),
      mk([1, 2, 3], [0, 0, 0], [1, 1, 1, 1, 1, 1], 0.3, [1, 1, 1]),
    ];
    for (const batch of cases) {
      const got = await gpu.run(batch);
      expect(Number.isFinite(got.loss)).toBe(true);
      expect(got.dispatches).toBeLessThanOrEqual(3); // the fused plan, on the device
      expect((await gpu.rerunResident()).loss).toBe(got.loss); // same kernels, same order: same bits
      agree(got, cpu.run(batch), 'edge', { program: cpu.program, batch });
    }
    gpu.dispose();
  });
});

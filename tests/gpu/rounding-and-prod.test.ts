/**
 * `ceil`, `round` and `prod` on the GPU equal the float64 interpreter (tolerances of
 * tests/helpers/gpu-agree.ts) in every kernel strategy a product can take: a thread per short
 * segment, a workgroup per long sequence, seq→group in group-local kernels, token→group through
 * member lists, partials and a combine to the batch, and batches in several chunks; with zero
 * members (torch.prod's gradient) and empty products (1).
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluate } from '../../compiler/interp/eval.js';
import type { RaggedBatch } from '../../core/batch/batch.js';
import type { Program } from '../../core/ir/program.js';
import { syntheticBatch } from '../../runtime/batch/synthetic.js';
import { openDevice, type GpuDevice } from '../../runtime/webgpu/device.js';
import { compileSource } from '../../src/compile.js';
import { arbBatch } from '../../src/equiv/random-batches.js';
import { compileGpu } from '../../src/gpu.js';
import type { Objective } from '../../src/objective.js';
import { renderDiagnostics } from '../../core/diagnostics/render.js';
import { toRagged } from '../helpers/batches.js';
import { agree } from '../helpers/gpu-agree.js';
import { batch } from '../interp/helpers.js';

const opened = await openDevice().then(
  (d) => ({ device: d as GpuDevice, reason: '' }),
  (e: Error) => ({ device: undefined, reason: e.message }),
);
const device = opened.device;
afterAll(() => device?.dispose());

const HEADER = [
  'objective t',
  'input logp : token grad',
  'input old_logp : token',
  'input reward : seq grad',
  'mask mask : token',
  '',
].join('\n');

/** Every strategy of a product, ceil and round in token, seq and batch maps. */
const PROGRAM = `${HEADER}
let r  = exp(0.05 * (logp - old_logp))
let ps = prod(r per seq)
let pf = prod(r per seq where logp > -2)
let pg = prod(reward per group)
let pt = prod(r per group)
loss = mean(logp * ceil(4 * old_logp) + round(3 * logp) * old_logp) + mean(ps * reward) + mean(pf * round(2 * reward)) + sum(pg * ceil(pt)) + prod(exp(0.001 * (logp - old_logp)))
metric all = prod(0.5 + 0.5 * sigmoid(logp) where logp > -0.3)
metric seqs = prod(ceil(reward) + 0.5 per batch)
`;

const ZEROS = `${HEADER}loss = sum(prod(logp per seq)) + prod(logp where logp < 1) + sum(prod(logp per group))\nmetric empty = prod(logp where logp > 100)\n`;

function objectiveOf(source: string): Objective {
  const { program, diagnostics } = compileSource(source, 'prod.credo');
  if (!program) throw new Error(renderDiagnostics(diagnostics));
  return {
    name: 't',
    program,
    diagnostics: [],
    inputs: program.inputs,
    maskName: 'mask',
    run: (b) => evaluate(program, b),
  };
}

async function expectAgree(
  objective: Objective,
  batches: readonly RaggedBatch[],
  what: string,
  opts: { maxBindingBytes?: number; chunked?: boolean } = {},
): Promise<void> {
  const gpu = await compileGpu(objective, { device, maxBindingBytes: opts.maxBindingBytes });
  try {
    for (const b of batches) {
      const got = await gpu.run(b);
      if (opts.chunked) expect(got.chunks, `${what}: chunks`).toBeGreaterThan(1);
      agree(got, objective.run(b), what, { program: objective.program as Program, batch: b });
    }
  } finally {
    gpu.dispose();
  }
}

describe.skipIf(!device)(`ceil, round and prod on the GPU (${device?.adapterName ?? opened.reason})`, () => {
  const objective = device ? objectiveOf(PROGRAM) : undefined;

  it('equal the interpreter on random ragged batches (short segments)', async () => {
    const samples = fc.sample(
      arbBatch({ inputs: objective!.inputs, onPolicy: false, equalLengths: false, boundaries: [] }),
      { numRuns: 12, seed: 5 },
    );
    await expectAgree(objective!, samples, 'random');
  });

  it('equal the interpreter on long sequences (a workgroup per sequence)', async () => {
    const long = [1, 2].map((seed) =>
      syntheticBatch({
        inputs: objective!.inputs,
        maskName: 'mask',
        seed,
        tokens: 6000,
        groupSize: 4,
        meanSeqLen: 600,
      }),
    );
    await expectAgree(objective!, long, 'long sequences');
  });

  it('equal the interpreter in several chunks', async () => {
    const b = syntheticBatch({
      inputs: objective!.inputs,
      maskName: 'mask',
      seed: 3,
      tokens: 3000,
      groupSize: 2,
      meanSeqLen: 40,
    });
    await expectAgree(objective!, [b], 'chunked', { maxBindingBytes: 8192, chunked: true });
  });

  it('follow torch.prod with zero members, and give 1 for an empty product', async () => {
    const zeros = objectiveOf(ZEROS);
    const short = toRagged(
      batch({
        seqs: [
          { logp: [2, 3, 4] },
          { logp: [0, 5, 2], group: 1 },
          { logp: [0, 0, 7], group: 1 },
          { logp: [3, 0, 2], mask: [1, 0, 1], group: 2 },
        ],
      }),
    );
    // long sequences of ones with a zero or two: the workgroup-per-sequence path
    const ones = (n: number, zeroAt: number[]) =>
      Array.from({ length: n }, (_, t) => (zeroAt.includes(t) ? 0 : t % 50 === 7 ? 2 : t % 50 === 9 ? 0.5 : 1));
    const long = toRagged(
      batch({ seqs: [{ logp: ones(700, []) }, { logp: ones(650, [100]) }, { logp: ones(640, [5, 600]), group: 1 }] }),
    );
    const masked = toRagged(
      batch({
        seqs: [
          { logp: [2, 3], mask: [0, 0] },
          { logp: [5], mask: [0] },
        ],
      }),
    );
    await expectAgree(zeros, [short, long, masked], 'zeros');
    const gpu = await compileGpu(zeros, { device });
    try {
      const out = await gpu.run(masked);
      expect(out.metrics.empty).toBe(1);
      expect(out.loss).toBe(2 + 1 + 1); // two empty sequences, an empty batch, one empty group
    } finally {
      gpu.dispose();
    }
  });
});

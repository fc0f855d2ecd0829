/**
 * Row kernels over the vocabulary (compiler/codegen/wgsl/row-kernels.ts) against the float64
 * interpreter: every stdlib objective that reads logits and random programs over logits, on random
 * ragged batches with the edges the language defines — −inf logits (masked-out entries, whole −inf
 * rows at masked tokens), one-hot rows, V not a multiple of 4, temperature ≠ 1, length-0
 * sequences, fully masked batches, BF16 and F16 logits (held 16-bit on the device) — and batches
 * forced into row chunks. Tolerances as tests/gpu (helpers/gpu-agree.ts): float32 against float64.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { offsetsFromLengths, type HostTensor, type RaggedBatch } from '../../core/batch/batch.js';
import type { InputSpec } from '../../core/batch/batch.js';
import { openDevice, type GpuDevice } from '../../runtime/webgpu/device.js';
import { bf16Bits, f16Bits, roundToBf16 } from '../../runtime/webgpu/rows.js';
import { compileGpu } from '../../src/gpu.js';
import { compile, type Objective } from '../../src/objective.js';
import { objectiveNames } from '../../src/stdlib.js';
import { agree } from '../helpers/gpu-agree.js';
import { meetsRequirements, requiredGroupSize } from '../../compiler/interp/requirements.js';

const opened = await openDevice().then(
  (d) => ({ device: d as GpuDevice, reason: '' }),
  (e: Error) => ({ device: undefined, reason: e.message }),
);
const device = opened.device;
afterAll(() => device?.dispose());

/** The value a bf16 / f16 tensor would have held (what the loader reads from such a file). */
function roundTo(encoding: 'f32' | 'bf16' | 'f16', x: number): number {
  if (encoding === 'f32' || !Number.isFinite(x)) return Math.fround(x);
  return encoding === 'bf16' ? roundToBf16(x) : f16Value(f16Bits(x));
}

/** The value of finite IEEE half bits (written from the format, as a check of f16Bits). */
function f16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  return sign * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
}

interface VocabBatchOptions {
  readonly vocab?: fc.Arbitrary<number>;
  readonly fullyMasked?: boolean;
  /** Sequences per group (default 1–3). */
  readonly groupSize?: number;
  /** Finite logits only (no −inf entries, one-hot or −inf rows): for objectives that refuse −inf. */
  readonly finite?: boolean;
}

/**
 * Ragged batches for `inputs`: 1–6 sequences (some of length 0) in groups of 1–3, random masks,
 * V from a few sizes (most not multiples of 4), logits in one encoding with −inf entries, one-hot
 * rows and whole −inf rows at masked tokens. The sampled token's logit is finite at valid tokens
 * (a sampled token has probability > 0).
 */
function arbVocabBatch(inputs: readonly InputSpec[], opts: VocabBatchOptions = {}): fc.Arbitrary<RaggedBatch> {
  const shape = fc.record({
    lengths: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 7 })), { minLength: 1, maxLength: 6 }),
    V: opts.vocab ?? fc.constantFrom(1, 3, 5, 7, 8, 13, 33),
    encoding: fc.constantFrom('f32' as const, 'bf16' as const, 'f16' as const),
    groupSize: opts.groupSize ? fc.constant(opts.groupSize) : fc.integer({ min: 1, max: 3 }),
    seed: fc.integer({ min: 1, max: 2 ** 30 }),
  });
  return shape.map(({ lengths, V, encoding, groupSize, seed }) => {
    let state = seed;
    const rand = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const S = lengths.length;
    const offsets = offsetsFromLengths(lengths);
    const T = offsets[S];
    const groupOf = Int32Array.from({ length: S }, (_, s) => Math.floor(s / groupSize));
    const numGroups = groupOf[S - 1] + 1;
    const mask = Uint8Array.from({ length: T }, () => (opts.fullyMasked ? 0 : rand() < 0.8 ? 1 : 0));
    const tokenIds = Float64Array.from({ length: T }, () => Math.floor(rand() * V));
    const logitRow = (t: number, out: Float64Array, teacher: boolean) => {
      const kind = rand();
      for (let v = 0; v < V; v++) {
        const r = rand();
        out[t * V + v] = r < 0.15 ? -Infinity : r < 0.2 ? (rand() < 0.5 ? 30 : -30) : (rand() - 0.5) * 8;
      }
      if (opts.finite)
        for (let v = 0; v < V; v++) if (out[t * V + v] === -Infinity) out[t * V + v] = (rand() - 0.5) * 8;
      // one-hot: one entry 0, the others −inf; a whole −inf row only where the token does not count
      if (!opts.finite && kind < 0.1) for (let v = 0; v < V; v++) out[t * V + v] = v === tokenIds[t] ? 0 : -Infinity;
      else if (!opts.finite && kind < 0.15 && !mask[t]) out.fill(-Infinity, t * V, (t + 1) * V);
      if (mask[t] && !teacher && out[t * V + tokenIds[t]] === -Infinity) out[t * V + tokenIds[t]] = rand() * 2 - 1;
      if (teacher) for (let v = 0; v < V; v++) if (out[t * V + v] === -Infinity) out[t * V + v] = -12;
      for (let v = 0; v < V; v++) out[t * V + v] = roundTo(encoding, out[t * V + v]);
    };
    const tensors = new Map<string, HostTensor>();
    for (const input of inputs) {
      const n = input.level === 'token' ? T : input.level === 'seq' ? S : input.level === 'group' ? numGroups : T * V;
      let data = new Float64Array(n);
      if (input.level === 'vocab') {
        for (let t = 0; t < T; t++) logitRow(t, data, input.name !== 'logits');
        tensors.set(input.name, {
          level: 'vocab',
          dtype: 'f32',
          data,
          ...(encoding === 'f32' ? {} : { stored: encoding }),
        });
        continue;
      }
      if (input.dtype === 'i32')
        data = input.vocabIndex ? Float64Array.from(tokenIds) : data.map(() => Math.floor(rand() * 4));
      else if (input.dtype === 'bool') data = data.map(() => (rand() < 0.5 ? 1 : 0));
      else data = data.map(() => (input.level === 'token' ? -rand() * 3 : (rand() - 0.5) * 2));
      tensors.set(input.name, { level: input.level, dtype: input.dtype, data });
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

/**
 * A cold shader compile of the largest row kernels (diversity_precision's bisection over each row)
 * takes about 40 s on llvmpipe alone, more beside other test files on 2 cores.
 */
const COMPILE_BOUND = 300_000;

const overLogits = objectiveNames().filter((n) => compile(n).inputs.some((i) => i.level === 'vocab'));

async function expectAgree(
  cpu: Objective,
  batches: readonly RaggedBatch[],
  opts: { params?: Record<string, number>; maxBindingBytes?: number; what?: string } = {},
): Promise<number> {
  const gpu = await compileGpu(cpu, { device, maxBindingBytes: opts.maxBindingBytes });
  let rowChunks = 0;
  try {
    for (const batch of batches) {
      const got = await gpu.run(batch, { params: opts.params });
      rowChunks = Math.max(rowChunks, got.rowChunks);
      agree(got, cpu.run(batch, { params: opts.params }), opts.what ?? cpu.program.name, {
        program: cpu.program,
        batch,
        opts: { params: opts.params },
      });
    }
  } finally {
    gpu.dispose();
  }
  return rowChunks;
}

function seedOf(name: string): number {
  let h = 11;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) | 0;
  return h;
}

describe('16-bit encodings of the L arena', () => {
  it('round bf16 and f16 to nearest even, keep ±inf, and are exact on their own values', () => {
    expect(bf16Bits(1)).toBe(0x3f80);
    expect(bf16Bits(-Infinity)).toBe(0xff80);
    expect(bf16Bits(1 + 2 ** -8)).toBe(0x3f80); // a tie: to even
    expect(bf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(f16Bits(1)).toBe(0x3c00);
    expect(f16Bits(65504)).toBe(0x7bff);
    expect(f16Bits(-Infinity)).toBe(0xfc00);
    expect(f16Bits(2 ** -24)).toBe(0x0001);
    expect(f16Bits(2 ** -14)).toBe(0x0400);
    expect(f16Bits(1 + 2 ** -11)).toBe(0x3c00); // a tie: to even
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), (bits) => {
        if ((bits & 0x7c00) === 0x7c00) return; // inf and NaN
        // every finite half, ±0 included, round-trips exactly
        expect(f16Bits(f16Value(bits))).toBe(bits);
      }),
    );
  });
});

describe.skipIf(!device)(`row kernels over the vocabulary (${device?.adapterName ?? opened.reason})`, () => {
  it.each(overLogits)(
    'stdlib %s equals the interpreter on ragged batches with −inf, one-hot, BF16/F16 logits, and finite ones',
    async (name) => {
      const cpu = compile(name);
      const groupSize = requiredGroupSize(cpu.program);
      // finite batches have V ≥ 2: with V = 1 every softmax is a point mass, so a gradient over logits
      // is exactly 0 by cancellation and float32 leaves the rounding of its terms (2^-18 for
      // aligndistil's weights), which a tolerance relative to max |g| = 0 cannot admit
      const accepted = (finite: boolean) =>
        arbVocabBatch(cpu.inputs, {
          groupSize,
          finite,
          ...(finite ? { vocab: fc.constantFrom(2, 3, 5, 8, 13, 33) } : {}),
        }).filter((b) => meetsRequirements(cpu.program, b));
      // and finite logits too: an objective that refuses −inf (liger_cosine) gets little of the first kind
      const batches = [
        ...fc.sample(accepted(false), { numRuns: 6, seed: seedOf(name) }),
        ...fc.sample(accepted(true), { numRuns: 3, seed: seedOf(name) + 1 }),
      ];
      await expectAgree(cpu, batches);
    },
    COMPILE_BOUND,
  );

  it('the unfused plan (every row pass a kernel of its own, no IR rewrites) gives the same numbers', async () => {
    const cpu = compile('dapo_logits');
    const batches = fc.sample(arbVocabBatch(cpu.inputs), { numRuns: 3, seed: 17 });
    const gpu = await compileGpu(cpu, { device, fuse: 'none' });
    try {
      expect(gpu.plan.kernels.filter((k) => k.kind === 'rows')).toHaveLength(0);
      for (const batch of batches)
        agree(
          await gpu.run(batch, { params: { entropy_coeff: 0.02 } }),
          cpu.run(batch, { params: { entropy_coeff: 0.02 } }),
          'unfused',
          {
            program: cpu.program,
            batch,
            opts: { params: { entropy_coeff: 0.02 } },
          },
        );
    } finally {
      gpu.dispose();
    }
  });

  it('dapo_logits with a temperature and an entropy bonus, and on a fully masked batch', async () => {
    const cpu = compile('dapo_logits');
    const batches = fc.sample(arbVocabBatch(cpu.inputs), { numRuns: 6, seed: 5 });
    await expectAgree(cpu, batches, { params: { temperature: 0.7, entropy_coeff: 0.01 } });
    const masked = fc.sample(arbVocabBatch(cpu.inputs, { fullyMasked: true }), { numRuns: 2, seed: 6 });
    await expectAgree(cpu, masked, { params: { temperature: 1.3, entropy_coeff: 0.01 } });
  });

  it('batches forced into row chunks (several per run) equal the interpreter', async () => {
    const cpu = compile('grpo_logits');
    const batches = fc.sample(arbVocabBatch(cpu.inputs, { vocab: fc.constantFrom(1001, 1003) }), {
      numRuns: 3,
      seed: 9,
    });
    // one row of logits and its gradient is about 8 KiB: a few rows per row chunk
    const rowChunks = await expectAgree(cpu, batches, { maxBindingBytes: 24 * 1024 });
    expect(rowChunks).toBeGreaterThan(1);
  });

  it('writes the gradient over f32 logits when allowed: the same numbers, the memory of the logits alone', async () => {
    const cpu = compile('dapo_logits');
    const batches = fc
      .sample(arbVocabBatch(cpu.inputs, { vocab: fc.constantFrom(1001, 1003) }), { numRuns: 3, seed: 13 })
      .map((b) => ({ ...b, tensors: new Map([...b.tensors].map(([k, t]) => [k, { ...t, stored: undefined }])) }));
    const plain = await compileGpu(cpu, { device });
    const inPlace = await compileGpu(cpu, { device, gradInPlace: true });
    try {
      expect(inPlace.device.rowSlots.some((s) => s.kind === 'output' && s.overwrites !== undefined)).toBe(true);
      for (const batch of batches) {
        const [a, b] = [await plain.run(batch), await inPlace.run(batch)];
        agree(b, cpu.run(batch), 'dapo_logits in place', { program: cpu.program, batch });
        expect(b.grads.logits.data).toEqual(a.grads.logits.data);
        // logits + gradient against logits alone (each T × V × 4 bytes), O(T) besides
        const TV4 = batch.numTokens * batch.vocabSize * 4;
        expect(a.deviceBytes - b.deviceBytes).toBeGreaterThanOrEqual(TV4);
        expect(b.deviceBytes).toBeLessThan(TV4 + 64 * 1024);
        // a rerun on the resident batch puts the logits back first
        expect((await inPlace.rerunResident()).loss).toBe(b.loss);
      }
    } finally {
      plain.dispose();
      inPlace.dispose();
    }
  });

  it('random programs over logits equal the interpreter', async () => {
    const programs = fc.sample(arbLogitsProgram(), { numRuns: 8, seed: 21 });
    for (const [i, source] of programs.entries()) {
      const cpu = compile({ source, path: `random-logits-${i}.credo` });
      const batches = fc.sample(arbVocabBatch(cpu.inputs), { numRuns: 2, seed: 100 + i });
      await expectAgree(cpu, batches, { what: `program ${i}:\n${source}` });
    }
    // each program compiles its own shaders (seconds each on a CPU adapter with a cold shader cache)
  }, 300_000);
});

/**
 * Well-typed programs over `logits` (grad) and `teacher_logits`: token terms built from the
 * vocabulary terms users write (log_softmax, softmax, gather, vocab reductions, entropy, KL), some
 * broadcasting token or seq values into the vocabulary, combined at the token and aggregated into
 * the loss the ways the stdlib does.
 */
function arbLogitsProgram(): fc.Arbitrary<string> {
  // scaled by positive values only: −inf logits stay −inf
  const z = fc.constantFrom('logits', 'logits / tau', 'logits * exp(w)', 'logits - adv');
  const vocabTerm = fc.oneof(
    z.map((x) => `gather(log_softmax(${x}), token_id)`),
    z.map((x) => `vocab.entropy(${x})`),
    z.map((x) => `sum(softmax(${x}) * softmax(teacher_logits) per token)`),
    // the teacher's logits are finite, so KL(policy ‖ teacher) is (the other way it is +inf where
    // the policy masks out an entry the teacher does not)
    z.map((x) => `vocab.kl(${x}, teacher_logits)`),
    z.map((x) => `vocab.reverse_kl(teacher_logits, ${x})`),
    z.map((x) => `vocab.jsd(${x}, teacher_logits, 0.5)`),
    z.map((x) => `max(log_softmax(${x}) per token)`),
    z.map((x) => `mean(softmax(${x}) * vocab_index per token)`),
    z.map((x) => `logsumexp(${x} per token)`),
  );
  const tokenTerm = fc
    .tuple(vocabTerm, vocabTerm, fc.constantFrom('+', '-', '*'), fc.constantFrom('', 'w * ', 'exp(-abs(adv)) * '))
    .map(([a, b, op, scale]) => `${scale}(${a}) ${op} (${b})`);
  const loss = fc
    .tuple(tokenTerm, fc.constantFrom('mean(X)', 'sum(X) / 7', 'mean(mean(X per seq))', 'mean(relu(X - 0.1))'))
    .map(([x, agg]) => agg.replaceAll('X', `(${x})`));
  return loss.map(
    (l) =>
      'objective random_logits\nimport vocab\nparam tau = 0.8\n' +
      'input logits : token x vocab grad\ninput teacher_logits : token x vocab\ninput token_id : token i32\n' +
      'input w : token\ninput adv : seq\nmask mask : token\n' +
      `loss = ${l}\n`,
  );
}

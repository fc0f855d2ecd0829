/**
 * A real vocabulary at a real size: dapo_logits on a 1024 × 151936 (Qwen's vocabulary) BF16
 * logits batch — about 300 MiB of logits, held 16-bit on the device — runs on the GPU backend in
 * row chunks (each within a 128 MiB binding, as on llvmpipe) and agrees with the float64
 * interpreter. Minutes on a CPU (the interpreter alone takes about 4 and 14 GiB), so it runs only
 * with CREDO_LARGE_VOCAB=1 (`CREDO_LARGE_VOCAB=1 npx vitest run tests/gpu/large-vocab.test.ts`);
 * the README records a run.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { syntheticBatch } from '../../runtime/batch/synthetic.js';
import { openDevice, type GpuDevice } from '../../runtime/webgpu/device.js';
import { roundToBf16 } from '../../runtime/webgpu/rows.js';
import { compileGpu } from '../../src/gpu.js';
import { compile } from '../../src/objective.js';
import { agree } from '../helpers/gpu-agree.js';

const wanted = process.env.CREDO_LARGE_VOCAB === '1';
const opened = wanted
  ? await openDevice().then(
      (d) => ({ device: d as GpuDevice, reason: '' }),
      (e: Error) => ({ device: undefined, reason: e.message }),
    )
  : { device: undefined, reason: 'set CREDO_LARGE_VOCAB=1 to run it (minutes, 16 GiB of host memory)' };
const device = opened.device;
afterAll(() => device?.dispose());

/** The batch with its logits rounded to bf16 and marked so (what loading a BF16 file gives). */
function asBf16(batch: RaggedBatch, name = 'logits'): RaggedBatch {
  const t = batch.tensors.get(name)!;
  return {
    ...batch,
    tensors: new Map(batch.tensors).set(name, { ...t, data: t.data.map(roundToBf16), stored: 'bf16' }),
  };
}

describe.skipIf(!device)(`a 1024 × 151936 BF16 logits batch (${opened.reason || device?.adapterName})`, () => {
  it('runs dapo_logits on the GPU in row chunks and agrees with the interpreter', async () => {
    const cpu = compile('dapo_logits');
    const batch = asBf16(
      syntheticBatch({
        seed: 3,
        tokens: 1024,
        groupSize: 8,
        vocabSize: 151936,
        inputs: cpu.inputs,
        maskName: cpu.maskName,
        meanSeqLen: 128,
      }),
    );
    const gpu = await compileGpu(cpu, { device, maxBindingBytes: 128 * 2 ** 20 });
    try {
      const got = await gpu.run(batch, { params: { entropy_coeff: 0.01 } });
      expect(got.rowChunks).toBeGreaterThan(1);
      const want = cpu.run(batch, { params: { entropy_coeff: 0.01 } });
      agree(got, want, 'dapo_logits 1024 × 151936 bf16', {
        program: cpu.program,
        batch,
        opts: { params: { entropy_coeff: 0.01 } },
      });
      console.log(
        `1024 × 151936 bf16: ${got.rowChunks} row chunks, loss ${got.loss} (interpreter ${want.loss}), GPU ${got.timings_ms.total.toFixed(0)} ms`,
      );
    } finally {
      gpu.dispose();
    }
  }, 1_800_000);
});

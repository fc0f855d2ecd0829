/**
 * `npx tsx scripts/profile-gpu.ts METHOD [TOKENS] [MEAN_SEQ_LEN]`: where the GPU time of one objective goes — the
 * plan, then the wall time of each dispatch run on its own, on a synthetic batch.
 */
import { syntheticBatch } from '../runtime/batch/synthetic.js';
import { openDevice } from '../runtime/webgpu/device.js';
import { compileGpu } from '../src/gpu.js';
import { printPlan } from '../compiler/plan/plan.js';
import { compile } from '../src/objective.js';

async function main(): Promise<void> {
  const name = process.argv[2] ?? 'dapo';
  const tokens = Number(process.argv[3] ?? 1 << 20);
  const device = await openDevice();
  const cpu = compile(name);
  const batch = syntheticBatch({
    seed: 7,
    tokens,
    groupSize: 8,
    inputs: cpu.inputs,
    maskName: cpu.maskName,
    meanSeqLen: Number(process.argv[4] ?? 64),
  });
  const gpu = await compileGpu(cpu, { device });
  console.log(printPlan(gpu.plan));
  console.log(`compile ${gpu.compileMs.toFixed(1)} ms`);
  for (let i = 0; i < 3; i++) {
    const r = await gpu.run(batch);
    console.log(
      `run ${i}: ${JSON.stringify(Object.fromEntries(Object.entries(r.timings_ms).map(([k, v]) => [k, +v.toFixed(2)])))}, ${r.dispatches} dispatches`,
    );
  }
  // per-dispatch medians over several runs: this machine is shared and noisy
  const runs: { kernel: number; ms: number }[][] = [];
  for (let i = 0; i < 11; i++) runs.push([...((await gpu.run(batch, { profile: true })).profile ?? [])]);
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
  runs[0].forEach((p, j) =>
    console.log(`  k${p.kernel}: ${median(runs.map((r) => r[j].ms)).toFixed(2)} ms (median of ${runs.length})`),
  );
  console.log(`  all: ${median(runs.map((r) => r.reduce((a, p) => a + p.ms, 0))).toFixed(2)} ms`);
  gpu.dispose();
  device.dispose();
}

await main();

/**
 * `require` items: every run checks them on the batch first (CPU and GPU), a failing one is a
 * BatchError that names the condition, its source line and how many elements fail; `group_size ==
 * K` sizes synthetic batches; `credo equiv` compares two objectives on the batches they require.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { BatchError } from '../../core/batch/batch.js';
import { requiredGroupSize } from '../../compiler/interp/requirements.js';
import { syntheticBatch } from '../../runtime/batch/synthetic.js';
import { openDevice, type GpuDevice } from '../../runtime/webgpu/device.js';
import { equiv } from '../../src/equiv/equiv.js';
import { compileGpu } from '../../src/gpu.js';
import { compile } from '../../src/objective.js';
import { main } from '../../src/cli/main.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const PAIRS = `objective pairs
param beta = 0.1
input logp     : token grad
input ref_logp : token
input chosen   : seq bool
mask  mask     : token
require group_size == 2               # a preference pair
require sum(chosen per group) == 1    # exactly one chosen
let s = sum(logp - ref_logp per seq)
loss = -mean(logsigmoid(beta * sum(where(chosen, s, -s) per group)))
`;
const pairs = compile({ source: PAIRS, path: 'pairs.credo' });

function batch(groupSize: number, seed = 1) {
  return syntheticBatch({ seed, tokens: 64, groupSize, inputs: pairs.inputs, maskName: 'mask', meanSeqLen: 4 });
}

function batchError(fn: () => unknown): BatchError {
  try {
    fn();
  } catch (e) {
    if (e instanceof BatchError) return e;
    throw e;
  }
  throw new Error('expected a BatchError');
}

describe('require', () => {
  it('runs on batches that meet it', () => {
    expect(Number.isFinite(pairs.run(batch(2)).loss)).toBe(true);
  });

  it('rejects groups of another size, naming the condition, its line and the failing count', () => {
    const b = batch(4);
    const e = batchError(() => pairs.run(b));
    expect(e.tensor).toBe('group_size');
    expect(e.message).toContain('`require group_size == 2` (pairs.credo:7:1)');
    expect(e.message).toContain(`it fails for ${b.numGroups} of ${b.numGroups} groups`);
    expect(e.message).toContain('--group-size 2');
  });

  it('rejects a pair with two chosen responses and counts only the failing groups', () => {
    const b = batch(2);
    const chosen = b.tensors.get('chosen')!;
    const data = Float64Array.from(chosen.data);
    data[1] = 1; // group 0: both chosen
    const bad = { ...b, tensors: new Map(b.tensors).set('chosen', { ...chosen, data }) };
    const e = batchError(() => pairs.run(bad));
    expect(e.tensor).toBe('require');
    expect(e.message).toContain(
      `\`require sum(chosen per group) == 1\` (pairs.credo:8:1): it fails for 1 of ${b.numGroups} groups`,
    );
  });

  it('may depend on params and on token values (valid tokens only)', () => {
    const src = `objective t
param eps = 0.2
input logp : token grad
mask mask : token
require eps > 0 and eps < 1
require logp <= 0
loss = -mean(logp)
`;
    const t = compile({ source: src, path: 't.credo' });
    const b = syntheticBatch({ seed: 2, tokens: 40, groupSize: 2, inputs: t.inputs, maskName: 'mask' });
    expect(() => t.run(b)).not.toThrow();
    expect(batchError(() => t.run(b, { params: { eps: 2 } })).message).toContain('it is false');
    const logp = b.tensors.get('logp')!;
    const data = Float64Array.from(logp.data);
    data[0] = 0.5;
    b.mask[1] = 0;
    data[1] = 0.5; // a masked token is no member: only token 0 fails
    const bad = { ...b, tensors: new Map(b.tensors).set('logp', { ...logp, data }) };
    const valid = b.mask.reduce((n, m) => n + m, 0);
    expect(batchError(() => t.run(bad)).message).toContain(`it fails for 1 of ${valid} valid tokens`);
  });

  it('`group_size == K` sizes the synthetic batch of `credo run`', async () => {
    expect(requiredGroupSize(pairs.program)).toBe(2);
    expect(requiredGroupSize(compile('dapo').program)).toBeUndefined();
    let out = '';
    let err = '';
    const io = { out: (s: string) => void (out += s), err: (s: string) => void (err += s) };
    const file = join(mkdtempSync(join(tmpdir(), 'credo-require-')), 'pairs.credo');
    writeFileSync(file, PAIRS);
    expect(await main(['run', file, '--backend', 'cpu', '--json'], io), err).toBe(0);
    expect(Number.isFinite(JSON.parse(out).loss)).toBe(true);
    out = '';
    expect(await main(['run', file, '--backend', 'cpu', '--group-size', '3'], io)).toBe(1);
    expect(err).toContain('does not meet `require group_size == 2`');
  });

  it('`credo equiv` compares on the batches both sides require', () => {
    // max over the chosen minus max over the rejected equals the signed sum only on pairs
    const byMax = PAIRS.replace('objective pairs', 'objective by_max').replace(
      'sum(where(chosen, s, -s) per group)',
      '(max(s per group where chosen) - max(s per group where not chosen))',
    );
    const unrequired = byMax.replace(/^require .*$/gm, '');
    const path = (name: string, source: string) => {
      const p = join(mkdtempSync(join(tmpdir(), 'credo-require-')), `${name}.credo`);
      writeFileSync(p, source);
      return p;
    };
    const a = path('pairs', PAIRS);
    const r = equiv({ a, b: path('by_max', byMax), mode: 'both', runs: 60, seed: 3 });
    expect(r.verdict, r.explanation).toBe('no-difference-found');
    const loose = PAIRS.replace(/^require .*$/gm, '');
    expect(
      equiv({ a: path('loose', loose), b: path('unrequired', unrequired), mode: 'value', runs: 60, seed: 3 }).verdict,
    ).toBe('different');
  });
});

const opened = await openDevice().then(
  (d) => ({ device: d as GpuDevice, reason: '' }),
  (e: Error) => ({ device: undefined, reason: e.message }),
);
afterAll(() => opened.device?.dispose());

describe.skipIf(!opened.device)(`require on the GPU backend (${opened.device?.adapterName ?? opened.reason})`, () => {
  it('checks the batch before it runs', async () => {
    const gpu = await compileGpu(pairs, { device: opened.device });
    try {
      expect(Math.abs((await gpu.run(batch(2))).loss - pairs.run(batch(2)).loss)).toBeLessThan(1e-5);
      await expect(gpu.run(batch(4))).rejects.toThrow(/does not meet `require group_size == 2`/);
    } finally {
      gpu.dispose();
    }
  });
});

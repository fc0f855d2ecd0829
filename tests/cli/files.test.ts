/**
 * Nothing destroyed (src/files.ts): `--out` onto the batch (also through a link), a directory, a
 * device or a missing folder is a one-line exit-1 error with the batch unchanged; outputs are written
 * to a temporary file and renamed, so no temporary file is left behind and a link's target is written.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { syntheticBatch } from '../../runtime/batch/synthetic.js';
import { batchToSafetensors } from '../../src/equiv/counterexample.js';
import { compile } from '../../src/objective.js';

async function credo(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

const dir = mkdtempSync(join(tmpdir(), 'credo-files-'));
const dapo = compile('dapo');
const batchPath = join(dir, 'batch.safetensors');
writeFileSync(
  batchPath,
  batchToSafetensors(syntheticBatch({ seed: 1, tokens: 200, groupSize: 4, inputs: dapo.inputs, maskName: 'mask' })),
);
const original = readFileSync(batchPath);
const link = join(dir, 'link.safetensors');
symlinkSync(batchPath, link);

describe('credo run --out never destroys a file', () => {
  it.each([
    ['the batch itself', batchPath, /is the input .* writing there would destroy it/],
    ['a link to the batch', link, /is the input .* writing there would destroy it/],
    ['a directory', dir, /is not a regular file/],
    ['a missing folder', join(dir, 'missing', 'out.safetensors'), /the folder .* does not exist/],
    ['an empty path', '', /--out needs a file name/],
  ])('onto %s: exit 1, one line, the batch unchanged', async (_, out, message) => {
    const r = await credo('run', 'dapo', '--batch', batchPath, '--backend', 'cpu', '--out', out);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(message);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(readFileSync(batchPath).equals(original)).toBe(true);
  });

  it.skipIf(!existsSync('/dev/full'))('onto /dev/full: refused as not a regular file', async () => {
    const r = await credo('run', 'dapo', '--batch', batchPath, '--backend', 'cpu', '--out', '/dev/full');
    expect(r.code).toBe(1);
    expect(r.err).toContain('is not a regular file');
  });

  it('writes through a link to its target and leaves no temporary file', async () => {
    const sub = join(dir, 'outs');
    mkdirSync(sub);
    const target = join(sub, 'target.safetensors');
    writeFileSync(target, 'old');
    const outLink = join(sub, 'out-link.safetensors');
    symlinkSync(target, outLink);
    const r = await credo('run', 'dapo', '--batch', batchPath, '--backend', 'cpu', '--out', outLink);
    expect(r.code).toBe(0);
    expect(readFileSync(target).length).toBeGreaterThan(8);
    expect(readdirSync(sub).sort()).toEqual(['out-link.safetensors', 'target.safetensors']);
  });

  it('credo equiv --out into a missing folder: exit 1 with the reason', async () => {
    const r = await credo('equiv', 'dapo', 'grpo', '--runs', '30', '--out', join(dir, 'nope', 'c.safetensors'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/the folder .* does not exist/);
  });
});

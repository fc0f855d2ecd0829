/**
 * `credo run` never reports a NaN or infinite loss, metric or gradient silently (src/cli/nonfinite.ts):
 * it names each such output and where its first non-finite element is, exits 1 and writes no
 * `--out` file, unless `--allow-nonfinite`; JSON spells the values "NaN", "Infinity", "-Infinity".
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';

async function credo(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

const dir = mkdtempSync(join(tmpdir(), 'credo-nonfinite-'));
const program = join(dir, 'nan_demo.credo');
// sqrt of a negative number at every token with logp < -1; log(0) in a metric; an infinite gradient of
// sqrt at 0 where logp = -1 never happens in the synthetic batch, so the gradient is NaN there
writeFileSync(
  program,
  'objective nan_demo\nparam c = 0\ninput logp : token grad\nmask mask : token\nloss = mean(sqrt(logp + 1)) + c\nmetric bad = log(c)\n',
);
const finite = join(dir, 'finite.credo');
writeFileSync(
  finite,
  'objective fine\nparam c = 1\ninput logp : token grad\nmask mask : token\nloss = -mean(logp)\nmetric good = log(c)\n',
);

describe('non-finite results', () => {
  it('exit 1 naming the loss, the metric and the first element of the gradient; no --out file', async () => {
    const out = join(dir, 'out.safetensors');
    const r = await credo('run', program, '--backend', 'cpu', '--tokens', '64', '--out', out);
    expect(r.code).toBe(1);
    expect(r.err).toContain('the run gives values that are not finite (cpu interpreter)');
    expect(r.err).toContain('loss is NaN');
    expect(r.err).toContain('metric bad is -Infinity');
    expect(r.err).toMatch(/grad\.logp is NaN at token \d+ \(sequence \d+, position \d+\)( and \d+ more elements?)?/);
    expect(r.err).toContain('--allow-nonfinite');
    expect(r.out).toContain('loss       NaN');
    expect(existsSync(out)).toBe(false);
  });

  it('--json: an error object with the outputs, values as strings', async () => {
    const r = await credo('run', program, '--backend', 'cpu', '--tokens', '64', '--json');
    expect(r.code).toBe(1);
    const e = JSON.parse(r.out) as { error: { kind: string; outputs: { output: string; value: string }[] } };
    expect(e.error.kind).toBe('nonfinite');
    expect(e.error.outputs.map((o) => [o.output, o.value])).toEqual([
      ['loss', 'NaN'],
      ['metric bad', '-Infinity'],
      ['grad.logp', 'NaN'],
    ]);
  });

  it('--allow-nonfinite prints them (JSON as "NaN", "-Infinity") and writes --out', async () => {
    const out = join(dir, 'allowed.safetensors');
    const r = await credo(
      'run',
      program,
      '--backend',
      'cpu',
      '--tokens',
      '64',
      '--json',
      '--allow-nonfinite',
      '--out',
      out,
    );
    expect(r.code).toBe(0);
    const res = JSON.parse(r.out) as { loss: unknown; metrics: Record<string, unknown> };
    expect(res.loss).toBe('NaN');
    expect(res.metrics.bad).toBe('-Infinity');
    expect(existsSync(out)).toBe(true);
  });

  it('dapo with adv_eps = 0 on a batch with an all-equal-reward group is refused, not a silent NaN', async () => {
    const r = await credo('run', 'dapo', '--backend', 'cpu', '--set', 'adv_eps=0');
    expect(r.code).toBe(1);
    expect(r.err).toContain('loss is NaN');
  });

  it('a finite run is unchanged', async () => {
    const r = await credo('run', finite, '--backend', 'cpu', '--tokens', '64', '--json');
    expect(r.code).toBe(0);
    expect(typeof (JSON.parse(r.out) as { loss: unknown }).loss).toBe('number');
  });
});

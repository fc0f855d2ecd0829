/**
 * `credo run NAME` works on the synthetic batch for every stdlib objective: the generator follows
 * each family's data convention (docs/batch.md: the group size an objective `require`s, preference
 * pairs, diffusion views, vocabulary logits), so the run exits 0 with a finite loss and finite
 * metrics. CPU backend here (the GPU property tests cover the device for the whole stdlib).
 */
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { objectiveNames } from '../../src/stdlib.js';

async function credo(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

describe('credo run on the synthetic batch', () => {
  it.each(objectiveNames())('%s', async (name) => {
    const r = await credo('run', name, '--backend', 'cpu', '--tokens', '600', '--vocab', '64', '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const res = JSON.parse(r.out) as { loss: number; metrics: Record<string, number> };
    expect(Number.isFinite(res.loss), `loss ${res.loss}`).toBe(true);
    for (const [k, v] of Object.entries(res.metrics)) expect(Number.isFinite(v), `metric ${k} = ${v}`).toBe(true);
  });
});

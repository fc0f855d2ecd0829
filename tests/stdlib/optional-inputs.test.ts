/**
 * Optional inputs (`input X : token when COND else FILL`, docs/language.md): a batch may leave X out
 * where COND is false for the run's params; the run then reads FILL. Checked here:
 *   - every stdlib objective with optional inputs keeps its promise: at params where the condition is
 *     false, the loss, the gradients and the exports on ≥ 100 random batches are exactly the same
 *     whatever the input holds (random values, or left out) — so leaving it out never changes a number
 *     the training uses (metrics that report the input, e.g. a KL to a reference, are documented);
 *   - where the condition holds, a batch without the input is refused, naming the input, the
 *     condition, its file:line:col and the params that make it hold;
 *   - the batch loader accepts a file without the input, and `credo run` on it exits 0 or 1 as above.
 */
import fc from 'fast-check';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BatchError, type RaggedBatch } from '../../core/batch/batch.js';
import { loadBatch } from '../../runtime/batch/load.js';
import { main } from '../../src/cli/main.js';
import { compile } from '../../src/objective.js';
import { objectiveNames } from '../../src/stdlib.js';
import { batchToSafetensors } from '../../src/equiv/counterexample.js';
import { readSafetensors } from '../../runtime/batch/safetensors.js';
import { arbFor } from './family-helpers.js';

const withOptional = objectiveNames()
  .map((name) => compile(name))
  .filter((o) => o.program.inputs.some((i) => i.when !== undefined));

function without(b: RaggedBatch, names: readonly string[]): RaggedBatch {
  const tensors = new Map(b.tensors);
  for (const n of names) tensors.delete(n);
  return { ...b, tensors };
}

describe('stdlib objectives with optional inputs', () => {
  it('exist (trl_dpo, trl_grpo, openrlhf_ppo, openrlhf_gspo, verl_optimal_token_baseline)', () => {
    expect(withOptional.map((o) => o.name).sort()).toEqual(
      ['openrlhf_gspo', 'openrlhf_ppo', 'trl_dpo', 'trl_grpo', 'verl_optimal_token_baseline'].sort(),
    );
  });

  describe.each(withOptional.map((o) => [o.name, o] as const))('%s', (_, objective) => {
    const optional = objective.program.inputs.filter((i) => i.when !== undefined).map((i) => i.name);

    it(`leaves ${optional.join(', ')} unread at its default params (loss, gradients, exports identical on 100 batches)`, () => {
      fc.assert(
        fc.property(arbFor(objective), (b) => {
          const given = objective.run(b);
          const left = objective.run(without(b, optional));
          expect(left.loss).toBe(given.loss);
          for (const [k, g] of Object.entries(given.grads))
            expect(Array.from(left.grads[k]!.data)).toEqual(Array.from(g.data));
          for (const [k, e] of Object.entries(given.exports))
            expect(Array.from(left.exports[k]!.data)).toEqual(Array.from(e.data));
        }),
        { numRuns: 100 },
      );
    });

    it.each(optional)('refuses a batch without %s where its condition holds', (name) => {
      const input = objective.program.inputs.find((i) => i.name === name)!;
      // the params of the condition set to 1 make each of these conditions hold (`!= 0`, `> 0`)
      const params = Object.fromEntries(
        objective.program.params.filter((p) => input.when!.text.includes(p.name)).map((p) => [p.name, 1]),
      );
      const b = fc.sample(arbFor(objective), { numRuns: 1, seed: 3 })[0]!;
      let caught: unknown;
      try {
        objective.run(without(b, [name]), { params });
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(BatchError);
      const msg = (caught as Error).message;
      expect(msg).toContain(`${name}: missing`);
      expect(msg).toContain(`\`${input.when!.text}\``);
      expect(msg).toMatch(new RegExp(`stdlib/${objective.name}\\.credo:\\d+:\\d+`));
      for (const k of Object.keys(params)) expect(msg).toContain(`${k} = 1`);
    });
  });
});

describe('a batch file without an optional input', () => {
  const objective = compile('openrlhf_ppo');
  const b = fc.sample(arbFor(objective), { numRuns: 1, seed: 5 })[0]!;
  const dir = mkdtempSync(join(tmpdir(), 'credo-optional-'));
  const path = join(dir, 'no-rollout.safetensors');
  writeFileSync(path, batchToSafetensors(without(b, ['rollout_logp', 'ref_logp'])));

  it('loads, and runs as the batch with rollout_logp = old_logp and ref_logp = logp', () => {
    const loaded = loadBatch(readSafetensors(readFileSync(path)), {
      inputs: objective.inputs,
      maskName: objective.maskName,
    });
    expect(loaded.tensors.has('rollout_logp')).toBe(false);
    const filled = new Map(b.tensors);
    filled.set('rollout_logp', b.tensors.get('old_logp')!);
    filled.set('ref_logp', b.tensors.get('logp')!);
    expect(objective.run(loaded).loss).toBe(objective.run({ ...b, tensors: filled }).loss);
  });

  async function credo(...args: string[]) {
    let out = '';
    let err = '';
    const code = await main(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
    return { code, out, err };
  }

  it('credo run exits 0 without the correction and 1, naming the input, with it', async () => {
    const ok = await credo('run', 'openrlhf_ppo', '--batch', path, '--backend', 'cpu', '--json');
    expect(ok.code).toBe(0);
    const bad = await credo('run', 'openrlhf_ppo', '--batch', path, '--backend', 'cpu', '--set', 'is_correction=1');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('rollout_logp: missing; this objective reads it when `is_correction != 0`');
    expect(bad.err).toContain('is_correction = 1');
  });
});

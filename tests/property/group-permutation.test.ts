/**
 * Relabelling and reordering groups permutes the per-group results and leaves the loss unchanged
 * (up to float64 summation order: relative 1e-9).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../compiler/interp/eval.js';
import { compileSource } from '../../src/compile.js';
import { compile } from '../../src/objective.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import type { RefBatch } from '../reference/batch.js';
import { toRagged } from '../helpers/batches.js';
import { randomProgram } from '../helpers/random-program.js';

/** The batch with group g renamed perm[g] and sequences stored in the new group order. */
function permuteGroups(b: RefBatch, perm: number[]): { batch: RefBatch; seqOrder: number[] } {
  const S = b.offsets.length - 1;
  const seqOrder = Array.from({ length: S }, (_, s) => s).sort(
    (x, y) => perm[b.groupOf[x]] - perm[b.groupOf[y]] || x - y,
  );
  const out: RefBatch = {
    offsets: [0],
    groupOf: [],
    numGroups: b.numGroups,
    mask: [],
    logp: [],
    old_logp: [],
    ref_logp: [],
    reward: [],
  };
  for (const s of seqOrder) {
    for (let t = b.offsets[s]; t < b.offsets[s + 1]; t++) {
      out.mask.push(b.mask[t]);
      out.logp.push(b.logp[t]);
      out.old_logp.push(b.old_logp[t]);
      out.ref_logp.push(b.ref_logp[t]);
    }
    out.offsets.push(out.logp.length);
    out.groupOf.push(perm[b.groupOf[s]]);
    out.reward.push(b.reward[s]);
  }
  return { batch: out, seqOrder };
}

const arbPermuted = arbRefBatch({ minGroups: 1, maxGroups: 5 }).chain((b) =>
  fc
    .shuffledSubarray(
      Array.from({ length: b.numGroups }, (_, g) => g),
      { minLength: b.numGroups, maxLength: b.numGroups },
    )
    .map((perm) => ({ b, perm })),
);

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * (1 + Math.abs(b));

const GROUP_PROGRAM = `
objective per_group
import advantages
input logp : token grad
input reward : seq
mask mask : token
let adv = advantages.grpo(reward, 1e-6)
loss = -mean(logp * adv)
export group_mean = mean(reward per group)
export group_spread = max(reward per group) - min(reward per group)
export tokens_per_group = count(logp < 0 per group)
`;

describe('permuting groups', () => {
  it('permutes group exports and keeps loss and per-token gradients', () => {
    const { program } = compileSource(GROUP_PROGRAM, 'per_group.credo');
    fc.assert(
      fc.property(arbPermuted, ({ b, perm }) => {
        const a = evaluate(program!, toRagged(b));
        const { batch, seqOrder } = permuteGroups(b, perm);
        const p = evaluate(program!, toRagged(batch));
        expect(close(p.loss, a.loss)).toBe(true);
        for (const name of ['group_mean', 'group_spread', 'tokens_per_group']) {
          for (let g = 0; g < b.numGroups; g++)
            expect(close(p.exports[name].data[perm[g]], a.exports[name].data[g])).toBe(true);
        }
        // token gradients move with their sequences
        let t2 = 0;
        for (const s of seqOrder)
          for (let t = b.offsets[s]; t < b.offsets[s + 1]; t++, t2++)
            expect(close(p.grads.logp.data[t2], a.grads.logp.data[t])).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it.each(['grpo', 'dapo', 'gspo'])('leaves the %s loss unchanged', (name) => {
    const objective = compile(name);
    fc.assert(
      fc.property(arbPermuted, ({ b, perm }) => {
        expect(close(objective.run(toRagged(permuteGroups(b, perm).batch)).loss, objective.run(toRagged(b)).loss)).toBe(
          true,
        );
      }),
      { numRuns: 100 },
    );
  });

  it('leaves the loss of random programs unchanged', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), arbPermuted, (seed, { b, perm }) => {
        const { program } = compileSource(randomProgram(seed), 'random.credo');
        const gin = Array.from({ length: b.numGroups }, (_, g) => Math.sin(g + 1));
        const permutedGin = gin.map((_, g) => gin[perm.indexOf(g)]);
        const a = evaluate(program!, toRagged(b, { gin })).loss;
        const p = evaluate(program!, toRagged(permuteGroups(b, perm).batch, { gin: permutedGin })).loss;
        if (Number.isFinite(a)) expect(Math.abs(p - a) <= 1e-8 * (1 + Math.abs(a))).toBe(true);
        else expect(p).toBe(a);
      }),
      { numRuns: 200 },
    );
  });
});

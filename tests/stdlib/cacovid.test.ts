/**
 * stdlib/cacovid.credo (CaCoVID combinatorial policy optimisation, methods-dpo.md §14) against
 * tests/reference/cacovid.ts on random memories of keep/drop combinations, its gradient against
 * finite differences, and the special cases: advantages are z-scored over the memory with
 * std + 1e-4 (§19 item 10), token- and frame-mode combinations are normalised separately, the
 * class-balance weights make a keep-all (or drop-all) combination contribute nothing, and the KL
 * term is the k3 estimator to the uniform Bernoulli.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { arbActions } from '../reference/arb-actions.js';
import { cacovidRef } from '../reference/cacovid.js';
import { sequencesByGroup, values } from '../reference/family.js';
import { close } from '../helpers/expect.js';
import { itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const obj = compile('cacovid');
const batches = arbActions(obj, 'logp', 'old_logp');
const params = fc.record({
  eps_low: fc.constantFrom(0.2, 0.1),
  eps_high: fc.constantFrom(0.28, 0.2),
  kl_w: fc.constantFrom(0.01, 0, 0.5),
  adv_eps: fc.constantFrom(1e-4, 1e-2),
  w_eps: fc.constantFrom(1e-7, 0.1),
});
const withTensor = (b: RaggedBatch, name: string, data: Float64Array): RaggedBatch => {
  const tensors = new Map(b.tensors);
  tensors.set(name, { ...b.tensors.get(name)!, data });
  return { ...b, tensors };
};

/**
 * For finite differences: log-ratios within ±10 (a ratio or a k3 term near e^20 makes the loss
 * ~1e8, where a central difference with h = 1e-6 only resolves ~1e-2).
 */
const fdBatches = batches.filter((b) => {
  const [lp, old] = [values(b, 'logp'), values(b, 'old_logp')];
  return lp.every((x, t) => Math.abs(x - old[t]!) <= 10 && x >= -10);
});

describe('cacovid equals its reference', () => {
  itAgreesWithFamilyRef(obj, cacovidRef, params, { batches });
  itHasFdGradients(obj, cacovidRef, params, { batches: fdBatches });
});

describe('cacovid special cases', () => {
  it('advantages are z-scores over the memory of each mode, std unbiased + 1e-4 (§19 item 10)', () => {
    fc.assert(
      fc.property(batches, (b) => {
        const adv = obj.run(b).exports.advantage!.data;
        const reward = values(b, 'reward');
        const frame = values(b, 'frame_mode');
        for (const seqs of sequencesByGroup(b))
          for (const mode of [0, 1]) {
            const mine = seqs.filter((s) => frame[s] === mode);
            if (mine.length < 2) continue;
            const rs = mine.map((s) => reward[s]!);
            const m = rs.reduce((a, r) => a + r, 0) / rs.length;
            const sd = Math.sqrt(rs.reduce((a, r) => a + (r - m) ** 2, 0) / (rs.length - 1));
            mine.forEach((s, i) => expect(close(adv[s]!, (rs[i]! - m) / (sd + 1e-4))).toBe(true));
          }
      }),
      { numRuns: 100 },
    );
  });

  it('a token-mode combination that keeps (or drops) every token has all weights 0 and no gradient', () => {
    fc.assert(
      fc.property(batches, fc.constantFrom(0, 1), (b, k) => {
        const x = withTensor(b, 'keep', new Float64Array(b.numTokens).fill(k));
        const frame = values(x, 'frame_mode');
        const g = obj.run(x).grads.logp!.data;
        for (let s = 0; s < x.numSeqs; s++)
          if (frame[s] === 0) for (let t = x.offsets[s]!; t < x.offsets[s + 1]!; t++) expect(Math.abs(g[t]!)).toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  it('the KL term is k3 to Bernoulli(½): 0 where π(a) = ½ and positive elsewhere', () => {
    fc.assert(
      fc.property(batches, (b) => {
        const half = withTensor(b, 'logp', new Float64Array(b.numTokens).fill(Math.log(0.5)));
        const out = obj.run(half);
        expect(
          close(out.metrics.video_selection_kl!, 0, 1e-12) && close(out.metrics.frame_selection_kl!, 0, 1e-12),
        ).toBe(true);
        const m = obj.run(b).metrics;
        expect(m.video_selection_kl! >= 0 && m.frame_selection_kl! >= 0).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('token and frame combinations are normalised separately: flipping the mode of one combination changes the others’ advantages', () => {
    let changed = 0;
    for (const b of fc.sample(batches, { numRuns: 200, seed: 11 })) {
      const frame = values(b, 'frame_mode');
      const flipped = withTensor(
        b,
        'frame_mode',
        Float64Array.from(frame, (f, s) => (s === 0 ? 1 - f : f)),
      );
      const a0 = obj.run(b).exports.advantage!.data;
      const a1 = obj.run(flipped).exports.advantage!.data;
      for (let s = 1; s < b.numSeqs; s++) if (b.groupOf[s] === b.groupOf[0] && !close(a0[s]!, a1[s]!)) changed++;
    }
    expect(changed).toBeGreaterThan(0);
  });
});

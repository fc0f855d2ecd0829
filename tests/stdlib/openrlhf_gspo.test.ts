/**
 * stdlib/openrlhf_gspo.credo (OpenRLHF PolicyLoss "gspo") against tests/reference/openrlhf.ts, its
 * gradient against finite differences, and its special cases: stdlib gspo (verl's GSPO-token),
 * length-1 sequences, the vLLM correction as a change of the ratio's denominator.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { sequencesByGroup, validTokensOf, values } from '../reference/family.js';
import { openrlhfGspoRef, withCopy, withNearRollout, withTameRatios } from '../reference/openrlhf.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const ogspo = compile('openrlhf_gspo');
const oppo = compile('openrlhf_ppo');
const gspo = compile('gspo');

const params = fc.record({
  eps_low: fc.constantFrom(0.2, 3e-4),
  eps_high: fc.constantFrom(0.2, 4e-4, 0.28),
  dual_clip: fc.constantFrom(0, 3, 1.5),
  is_correction: fc.constantFrom(0, 1, 3),
  use_kl_loss: fc.constantFrom(0, 1),
  kl_estimator: fc.constantFrom(1, 2, 3, 0),
  kl_coef: fc.constantFrom(0.01, 0.5, -0.1),
  seq_eps: fc.constantFrom(1e-8, 0),
});

const batches: fc.Arbitrary<RaggedBatch> = fc.oneof(
  arbFor(ogspo),
  fc.tuple(arbFor(ogspo), fc.constantFrom(0.1, 0.3, 1)).map(([b, k]) => withNearRollout(b, k)),
);

const run = (b: RaggedBatch, p: Record<string, number> = {}) => ogspo.run(b, { params: p });

function expectSameRun(
  a: { loss: number; grads: Record<string, { data: ArrayLike<number> }> },
  b: { loss: number; grads: Record<string, { data: ArrayLike<number> }> },
  what: string,
): void {
  expect(close(a.loss, b.loss), `${what}: loss ${a.loss} vs ${b.loss}`).toBe(true);
  expectVecClose(a.grads.logp!.data, Array.from(b.grads.logp!.data), `${what}: grad logp`);
}

/** The batch with `advantage` = the GRPO advantage (std unbiased + eps) of `reward` on every token. */
function withGrpoAdvantage(b: RaggedBatch, eps: number): RaggedBatch {
  const reward = values(b, 'reward');
  const perSeq = new Array<number>(b.numSeqs).fill(0);
  for (const seqs of sequencesByGroup(b)) {
    const n = seqs.length;
    const m = seqs.reduce((a, s) => a + reward[s]!, 0) / n;
    const sd = n > 1 ? Math.sqrt(seqs.reduce((a, s) => a + (reward[s]! - m) ** 2, 0) / (n - 1)) : 0;
    for (const s of seqs) perSeq[s] = (reward[s]! - m) / (sd + eps);
  }
  const data = new Float64Array(b.numTokens);
  for (let s = 0; s < b.numSeqs; s++) for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) data[t] = perSeq[s]!;
  const tensors = new Map(b.tensors);
  tensors.set('advantage', { level: 'token', dtype: 'f32', data });
  return { ...b, tensors };
}

describe('openrlhf_gspo equals its reference', () => {
  itAgreesWithFamilyRef(ogspo, openrlhfGspoRef, params, { batches, numRuns: 200 });
  // log-ratios within ±8 (the sequence ratio has no clamp: e^50 would swamp the finite differences)
  itHasFdGradients(ogspo, openrlhfGspoRef, params, { batches: batches.map((b) => withTameRatios(b, 8)) });
});

describe('openrlhf_gspo special cases', () => {
  it('seq_eps = 0 on a per-sequence advantage, log-ratios below 10: stdlib gspo (value and gradient)', () => {
    const withReward = arbFor(gspo);
    fc.assert(
      fc.property(withReward, (g) => {
        // gspo's batch (logp, old_logp, reward) with openrlhf's extra inputs, the advantage from the reward
        const tensors = new Map(g.tensors);
        for (const n of ['rollout_logp', 'ref_logp'])
          tensors.set(n, { level: 'token', dtype: 'f32', data: new Float64Array(g.numTokens) });
        const b = withTameRatios(withGrpoAdvantage({ ...g, tensors }, 1e-6), 8);
        const eps = { eps_low: 3e-4, eps_high: 4e-4 };
        expectSameRun(run(b, { ...eps, seq_eps: 0 }), gspo.run(b), 'gspo');
        expect(close(run(b, { ...eps, seq_eps: 0 }).metrics.clip_frac!, gspo.run(b).metrics.clip_frac!)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('sequences of one valid token: openrlhf_ppo per-sample (the sequence ratio is the token ratio)', () => {
    fc.assert(
      fc.property(batches, fc.constantFrom(0, 3), (b0, dual) => {
        const b = withTameRatios(b0, 8);
        const mask = Uint8Array.from(b.mask);
        for (let s = 0; s < b.numSeqs; s++) validTokensOf(b, s).forEach((t, k) => k > 0 && (mask[t] = 0));
        const one = { ...b, mask };
        expectSameRun(
          run(one, { dual_clip: dual }),
          oppo.run(one, { params: { token_level_loss: 0, dual_clip: dual } }),
          'L = 1',
        );
      }),
      { numRuns: 100 },
    );
  });

  it('the vLLM correction replaces old_logp by rollout_logp in the ratio (no IS weight)', () => {
    fc.assert(
      fc.property(batches, (b) => {
        const corrected = run(b, { is_correction: 1 });
        const swapped = run(withCopy(b, 'old_logp', 'rollout_logp'));
        expectSameRun(corrected, swapped, 'ratio against the rollout');
        expect(close(corrected.metrics.ppo_kl!, run(b).metrics.ppo_kl!)).toBe(true); // ppo_kl stays against old_logp
      }),
      { numRuns: 100 },
    );
  });

  it('the whole sequence gets the gradient of its ratio: on-policy (s = 1), every token of sequence i gets −mean_i(A)/(B′ L_i)', () => {
    fc.assert(
      fc.property(batches, (b0) => {
        const b = withCopy(b0, 'old_logp', 'logp');
        const g = run(b, { seq_eps: 0 }).grads.logp!.data;
        const adv = values(b, 'advantage');
        const valid = Array.from({ length: b.numSeqs }, (_, s) => validTokensOf(b, s));
        const Bp = valid.filter((ts) => ts.length > 0).length;
        valid.forEach((ts) => {
          const meanA = ts.reduce((a, t) => a + adv[t]!, 0) / ts.length;
          for (const t of ts) expect(close(g[t]!, -meanA / (Bp * ts.length))).toBe(true);
        });
      }),
      { numRuns: 100 },
    );
  });

  it('a fully masked batch gives 0 and a zero gradient (OpenRLHF: 0/0)', () => {
    for (const b of fc.sample(batches, { numRuns: 20, seed: 3 })) {
      const r = run({ ...b, mask: new Uint8Array(b.numTokens) }, { use_kl_loss: 1, kl_estimator: 3 });
      expect(r.loss).toBe(0);
      expect(Array.from(r.grads.logp!.data).every((x) => x === 0)).toBe(true);
    }
  });
});

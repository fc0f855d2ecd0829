/**
 * stdlib/openrlhf_ppo.credo (OpenRLHF PolicyLoss "ppo" with the vLLM IS corrections and the KL loss)
 * against tests/reference/openrlhf.ts, its gradient against finite differences, and its special
 * cases: verl vanilla (stdlib ppo) per aggregation, the corrections' identities and differences.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { numValid } from '../reference/family.js';
import { openrlhfPpoRef, withCopy, withNearRollout, withTameRatios } from '../reference/openrlhf.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const oppo = compile('openrlhf_ppo');
const ppo = compile('ppo');

const params = fc.record({
  eps_low: fc.constantFrom(0.2, 0.1),
  eps_high: fc.constantFrom(0.2, 0.28),
  dual_clip: fc.constantFrom(0, 3, 1.5),
  token_level_loss: fc.constantFrom(1, 0, 2),
  is_correction: fc.constantFrom(0, 1, 2, 3, 7),
  is_low: fc.constantFrom(0.5, 0.9),
  is_high: fc.constantFrom(5, 1.2),
  use_kl_loss: fc.constantFrom(0, 1),
  kl_estimator: fc.constantFrom(1, 2, 3, 0),
  kl_coef: fc.constantFrom(0.01, 0.5, -0.1),
  seq_eps: fc.constantFrom(1e-8, 0),
});

/** Random batches, half of them with rollout log-probs near old_logp (the thresholds bite). */
const batches: fc.Arbitrary<RaggedBatch> = fc.oneof(
  arbFor(oppo),
  fc.tuple(arbFor(oppo), fc.constantFrom(0.1, 0.3, 1)).map(([b, k]) => withNearRollout(b, k)),
);

const run = (b: RaggedBatch, p: Record<string, number> = {}) => oppo.run(b, { params: p });

function expectSameRun(
  a: ReturnType<typeof run>,
  b: { loss: number; grads: Record<string, { data: ArrayLike<number> }> },
  what: string,
): void {
  expect(close(a.loss, b.loss), `${what}: loss ${a.loss} vs ${b.loss}`).toBe(true);
  expectVecClose(a.grads.logp!.data, Array.from(b.grads.logp!.data), `${what}: grad logp`);
}

describe('openrlhf_ppo equals its reference', () => {
  itAgreesWithFamilyRef(oppo, openrlhfPpoRef, params, { batches, numRuns: 200 });
  // log-ratios within ±8: a token at the ±20 clamp with a negative advantage makes the loss about
  // 1e6, and the rounding noise of the finite differences then exceeds their tolerance
  itHasFdGradients(oppo, openrlhfPpoRef, params, { batches: batches.map((b) => withTameRatios(b, 8)) });
});

describe('openrlhf_ppo special cases', () => {
  it('without correction, token level, no KL loss: verl vanilla (ppo) token-mean, clip_c = dual_clip (∞ for None)', () => {
    fc.assert(
      fc.property(batches, fc.constantFrom(0, 3, 1.5), fc.constantFrom(0.2, 0.28), (b, dual, eh) => {
        const a = run(b, { dual_clip: dual, eps_high: eh });
        const v = ppo.run(b, { params: { loss_agg_mode: 0, clip_c: dual === 0 ? 1e30 : dual, eps_high: eh } });
        expectSameRun(a, v, 'token-mean');
        expect(close(a.metrics.clip_frac!, v.metrics.clip_frac!)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('per-sample (token_level_loss = 0) with seq_eps = 0 is ppo seq-mean-token-mean; the default 1e-8 is a relative 1e-8/L off', () => {
    let seenOff = false;
    fc.assert(
      fc.property(batches, (b) => {
        const a = run(b, { token_level_loss: 0, seq_eps: 0 });
        const v = ppo.run(b, { params: { loss_agg_mode: 1, clip_c: 1e30 } });
        expectSameRun(a, v, 'seq-mean-token-mean');
        const d = run(b, { token_level_loss: 0 });
        // each token's gradient is scaled by L/(L + 1e-8): never further than 1e-8 relative
        const ga = a.grads.logp!.data;
        const gd = d.grads.logp!.data;
        for (let t = 0; t < b.numTokens; t++)
          expect(Math.abs(gd[t]! - ga[t]!)).toBeLessThanOrEqual(1.0001e-8 * Math.abs(ga[t]!));
        if (a.loss !== 0 && d.loss !== a.loss) seenOff = true;
      }),
      { numRuns: 100 },
    );
    expect(seenOff).toBe(true);
  });

  it('tis, icepop and seq-mask-tis with thresholds [0, ∞) all weight by the plain ratio exp(old − rollout)', () => {
    fc.assert(
      fc.property(batches, (b) => {
        const open = { is_low: 0, is_high: 1e300 };
        const t = run(b, { ...open, is_correction: 1 });
        expectSameRun(run(b, { ...open, is_correction: 2 }), t, 'icepop');
        expectSameRun(run(b, { ...open, is_correction: 3 }), t, 'seq-mask-tis');
      }),
      { numRuns: 100 },
    );
  });

  it('with rollout_logp = old_logp every correction is the identity (1 ∈ [is_low, is_high])', () => {
    fc.assert(
      fc.property(batches, fc.constantFrom(1, 2, 3), (b0, k) => {
        const b = withCopy(b0, 'rollout_logp', 'old_logp');
        expectSameRun(run(b, { is_correction: k }), run(b), `correction ${k}`);
        expect(run(b).metrics.vllm_kl).toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  it('icepop is not tis: a weight outside the thresholds is dropped, not clamped', () => {
    let differs = 0;
    fc.assert(
      fc.property(batches, (b) => {
        const t = run(b, { is_correction: 1 }).loss;
        const i = run(b, { is_correction: 2 }).loss;
        if (Math.abs(t - i) > 1e-6 * (1 + Math.abs(t))) differs++;
      }),
      { numRuns: 100 },
    );
    expect(differs).toBeGreaterThan(10);
  });

  it('seq-mask-tis does not clamp the token weight: a kept sequence gets ρ itself, beyond is_high', () => {
    // one sequence of two tokens with rollout log-ratios +3 and −3: geometric mean 1 (kept), ρ = e^3 > 5
    const b: RaggedBatch = {
      numTokens: 2,
      numSeqs: 1,
      numGroups: 1,
      vocabSize: 0,
      offsets: Int32Array.from([0, 2]),
      groupOf: Int32Array.from([0]),
      groupIds: [0],
      mask: Uint8Array.from([1, 1]),
      layout: { kind: 'packed' },
      tensors: new Map([
        ['logp', { level: 'token', dtype: 'f32', data: Float64Array.from([-1, -1]) }],
        ['old_logp', { level: 'token', dtype: 'f32', data: Float64Array.from([-1, -1]) }],
        ['rollout_logp', { level: 'token', dtype: 'f32', data: Float64Array.from([-4, 2]) }],
        ['ref_logp', { level: 'token', dtype: 'f32', data: Float64Array.from([-1, -1]) }],
        ['advantage', { level: 'token', dtype: 'f32', data: Float64Array.from([1, 0]) }],
      ]),
    };
    // on-policy: l = −A at each token; token mean of ρ·l = −e^3 / 2
    expect(close(run(b, { is_correction: 3 }).loss, -Math.exp(3) / 2)).toBe(true);
    expect(close(run(b, { is_correction: 1 }).loss, -5 / 2)).toBe(true); // tis clamps to is_high
    expect(close(run(b, { is_correction: 2 }).loss, 0)).toBe(true); // icepop drops it
  });

  it('on-policy, no correction, no KL: the REINFORCE gradient −A/N of the token mean', () => {
    fc.assert(
      fc.property(batches, fc.constantFrom(0, 3), (b0, dual) => {
        const b = withCopy(b0, 'old_logp', 'logp');
        const N = numValid(b);
        const adv = b.tensors.get('advantage')!.data;
        const g = run(b, { dual_clip: dual }).grads.logp!.data;
        for (let t = 0; t < b.numTokens; t++) expect(close(g[t]!, b.mask[t] ? -adv[t]! / N : 0)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('the KL loss: only with use_kl_loss and kl_coef > 0; k3 never negative; k1, k2 clamped at 10', () => {
    fc.assert(
      fc.property(batches, fc.constantFrom(1, 2, 3), (b, est) => {
        const off = run(b, { kl_estimator: est });
        const neg = run(b, { kl_estimator: est, use_kl_loss: 1, kl_coef: -0.5 });
        const on = run(b, { kl_estimator: est, use_kl_loss: 1, kl_coef: 0.5 });
        expectSameRun(neg, off, 'kl_coef ≤ 0');
        expect(close(on.loss, off.loss + 0.5 * on.metrics.kl!)).toBe(true);
        if (est === 3) expect(on.metrics.kl!).toBeGreaterThanOrEqual(0);
        expect(Math.abs(on.metrics.kl!)).toBeLessThanOrEqual(10);
      }),
      { numRuns: 100 },
    );
  });

  it('a fully masked batch gives 0 and a zero gradient (OpenRLHF: 0/0)', () => {
    for (const b of fc.sample(batches, { numRuns: 20, seed: 3 })) {
      const settings: Record<string, number>[] = [
        {},
        { token_level_loss: 0, is_correction: 3, use_kl_loss: 1, kl_estimator: 3 },
      ];
      for (const p of settings) {
        const r = run({ ...b, mask: new Uint8Array(b.numTokens) }, p);
        expect(r.loss).toBe(0);
        expect(Array.from(r.grads.logp!.data).every((g) => g === 0)).toBe(true);
      }
    }
  });

  it('refuses a dual clip in (0, 1] as OpenRLHF asserts', () => {
    const [b] = fc.sample(batches, { numRuns: 1, seed: 5 });
    expect(() => run(b!, { dual_clip: 0.5 })).toThrow(/dual_clip/);
  });
});

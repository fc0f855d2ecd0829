/**
 * stdlib/verl_outcome.credo (verl's outcome-reward advantage estimators + the vanilla PPO loss)
 * against tests/reference/verl-adv.ts, its gradient against finite differences, and the relations
 * between the estimators that verl's code implies.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { sequencesByGroup, tokensOf, values } from '../reference/family.js';
import { grpoLoop, rppBaselineTok, verlOutcomeRef } from '../reference/verl-adv.js';
import { fdBatches, onPolicy } from './verl-adv-helpers.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const obj = compile('verl_outcome');
const rloo = compile('rloo');
const rpp = compile('reinforce_pp');
const gpgObj = compile('gpg');

const params = fc.record({
  adv_estimator: fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7, 8),
  norm_adv_by_std_in_grpo: fc.constantFrom(1, 0),
  epsilon: fc.constantFrom(1e-6, 0.1),
  verl_singletons: fc.constantFrom(0, 1),
  eps_low: fc.constantFrom(0.2, 0.1),
  eps_high: fc.constantFrom(0.2, 0.28),
  clip_c: fc.constantFrom(3, 1.5, 1e30),
  loss_agg_mode: fc.constantFrom(0, 1, 2, 3, 4, 5),
  max_len: fc.constantFrom(3000, 5),
});

const adv = (b: RaggedBatch, p: Record<string, number>) =>
  Array.from(obj.run(b, { params: p }).exports.advantage!.data);
const hasSingleton = (b: RaggedBatch) => sequencesByGroup(b).some((g) => g.length === 1);
const withReward = (b: RaggedBatch, r: number[]): RaggedBatch => {
  const tensors = new Map(b.tensors);
  tensors.set('reward', { level: 'seq', dtype: 'f32', data: Float64Array.from(r) });
  return { ...b, tensors };
};

describe('verl_outcome equals its reference', () => {
  itAgreesWithFamilyRef(obj, verlOutcomeRef, params, { numRuns: 300 });
  itHasFdGradients(obj, verlOutcomeRef, params, { batches: fdBatches(obj) });
});

describe('verl_outcome: relations between verl estimators', () => {
  it('grpo (0) and grpo_vectorized (1) give the same advantage when norm_adv_by_std_in_grpo = 1', () => {
    fc.assert(
      fc.property(arbFor(obj), fc.constantFrom(0, 1), fc.constantFrom(1e-6, 0.1), (b, sg, e) => {
        const p = { verl_singletons: sg, epsilon: e };
        expectVecClose(adv(b, { ...p, adv_estimator: 1 }), adv(b, { ...p, adv_estimator: 0 }), 'advantage');
      }),
      { numRuns: 100 },
    );
  });

  it('grpo_vectorized ignores norm_adv_by_std_in_grpo = 0 (verl does not pass it), grpo does not', () => {
    let differs = false;
    fc.assert(
      fc.property(arbFor(obj), (b) => {
        const v0 = adv(b, { adv_estimator: 1, norm_adv_by_std_in_grpo: 0 });
        expectVecClose(v0, adv(b, { adv_estimator: 1 }), 'grpo_vectorized');
        const g0 = adv(b, { adv_estimator: 0, norm_adv_by_std_in_grpo: 0 });
        if (g0.some((x, i) => !close(x, v0[i]!, 1e-6))) differs = true;
      }),
      { numRuns: 100 },
    );
    expect(differs).toBe(true);
  });

  it('rloo (2) and rloo_vectorized (3) agree without groups of one, or with Credo’s rule; differ on one with verl’s', () => {
    let differs = false;
    fc.assert(
      fc.property(arbFor(obj), (b) => {
        expectVecClose(adv(b, { adv_estimator: 2 }), adv(b, { adv_estimator: 3 }), 'credo rule');
        const l = adv(b, { adv_estimator: 2, verl_singletons: 1 });
        const v = adv(b, { adv_estimator: 3, verl_singletons: 1 });
        if (!hasSingleton(b)) expectVecClose(l, v, 'no singleton');
        else if (l.some((x, i) => !close(x, v[i]!))) differs = true;
      }),
      { numRuns: 200 },
    );
    expect(differs).toBe(true);
  });

  it('rloo_vectorized (3) is stdlib rloo: loss, metrics, gradient, advantage', () => {
    fc.assert(
      fc.property(arbFor(obj), fc.constantFrom(0, 1, 2, 3), (b, mode) => {
        const a = obj.run(b, { params: { adv_estimator: 3, loss_agg_mode: mode } });
        const r = rloo.run(b, { params: { loss_agg_mode: mode } });
        expect(close(a.loss, r.loss)).toBe(true);
        for (const k of Object.keys(r.metrics)) expect(close(a.metrics[k]!, r.metrics[k]!), k).toBe(true);
        expectVecClose(a.grads.logp!.data, Array.from(r.grads.logp!.data), 'grad logp');
        expectVecClose(a.exports.advantage!.data, Array.from(r.exports.advantage!.data), 'advantage');
      }),
      { numRuns: 100 },
    );
  });

  // masked_mean divides by N + 1e-8: where every valid token has the same centred reward the
  // whitened advantage is ~1e-4 a / N instead of 0 (the shift a·1e-8/N over sqrt(0 + 1e-8)), so
  // the two are close (tol 1e-3), not equal.
  it('reinforce_plus_plus_baseline (4, Credo’s rule) is stdlib reinforce_pp up to masked_mean’s + 1e-8 (tol 1e-3)', () => {
    fc.assert(
      fc.property(arbFor(obj), (b) => {
        const a = obj.run(b, { params: { adv_estimator: 4 } });
        const r = rpp.run(b);
        expect(close(a.loss, r.loss, 1e-3), `${a.loss} vs ${r.loss}`).toBe(true);
        expectVecClose(a.exports.advantage!.data, Array.from(r.exports.advantage!.data), 'advantage', 1e-3);
      }),
      { numRuns: 100 },
    );
  });

  it('reinforce_plus_plus_baseline’s advantage is verl’s per-token one (tile, whiten, mask) at every valid token', () => {
    fc.assert(
      fc.property(arbFor(obj), fc.constantFrom(0, 1), (b, sg) => {
        const a = adv(b, { adv_estimator: 4, verl_singletons: sg });
        const tok = rppBaselineTok(b, values(b, 'reward'), sg);
        for (let s = 0; s < b.numSeqs; s++)
          for (const t of tokensOf(b, s)) if (b.mask[t] === 1) expect(close(a[s]!, tok[t]!), `token ${t}`).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('a group of one: verl’s rule keeps R / (1 + eps) (grpo), R (rloo, opo), alpha R (gpg); Credo’s gives 0', () => {
    const b = fc.sample(arbFor(obj), { numRuns: 1, seed: 3 })[0]!;
    // a batch of singletons only: each response its own group
    const single: RaggedBatch = {
      ...b,
      numGroups: b.numSeqs,
      groupOf: Int32Array.from({ length: b.numSeqs }, (_, s) => s),
      groupIds: Array.from({ length: b.numSeqs }, (_, s) => s),
    };
    const R = Array.from({ length: b.numSeqs }, (_, s) => (s % 3) - 0.5);
    const x = withReward(single, R);
    const alpha = R.length / Math.max(R.filter((r) => r !== 0).length, 1);
    const want: Record<number, number[]> = {
      0: R.map((r) => r / (1 + 1e-6)),
      1: R.map((r) => r / (1 + 1e-6)),
      2: R,
      3: R.map(() => 0),
      5: R,
      6: R.map(() => 0),
      7: R.map((r) => alpha * r),
    };
    for (const [code, w] of Object.entries(want)) {
      expectVecClose(adv(x, { adv_estimator: Number(code), verl_singletons: 1 }), w, `verl rule ${code}`);
      expectVecClose(
        adv(x, { adv_estimator: Number(code) }),
        R.map(() => 0),
        `credo rule ${code}`,
      );
    }
    expect(grpoLoop(x, R, 1e-6, true, 1)[0]).toBeCloseTo(R[0]! / (1 + 1e-6), 12);
  });

  it('grpo_passk: only the first best response of a group is non-zero, and it is (max - second) / (std + eps)', () => {
    fc.assert(
      fc.property(arbFor(obj), (b) => {
        const a = adv(b, { adv_estimator: 6 });
        const R = values(b, 'reward');
        for (const g of sequencesByGroup(b)) {
          const nz = g.filter((s) => a[s] !== 0);
          expect(nz.length).toBeLessThanOrEqual(1);
          if (nz.length === 1) {
            const sorted = g.map((s) => R[s]!).sort((x, y) => y - x);
            expect(R[nz[0]!]).toBe(sorted[0]);
            const m = sorted.reduce((u, v) => u + v, 0) / g.length;
            const sd = Math.sqrt(sorted.reduce((u, v) => u + (v - m) ** 2, 0) / (g.length - 1));
            expect(close(a[nz[0]!]!, (sorted[0]! - sorted[1]!) / (sd + 1e-6))).toBe(true);
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it('opo with equal lengths in every group is grpo without std normalisation (Dr. GRPO)', () => {
    let seen = 0;
    fc.assert(
      fc.property(arbFor(obj), (b0) => {
        // make every sequence fully valid with the same length per group: mask all tokens, then compare
        const L = Array.from({ length: b0.numSeqs }, (_, s) => tokensOf(b0, s).filter((t) => b0.mask[t] === 1).length);
        const equal = sequencesByGroup(b0).every((g) => g.every((s) => L[s] === L[g[0]!] && L[s]! > 0));
        if (!equal) return;
        seen++;
        expectVecClose(adv(b0, { adv_estimator: 5 }), adv(b0, { adv_estimator: 0, norm_adv_by_std_in_grpo: 0 }), 'opo');
      }),
      { numRuns: 300 },
    );
    expect(seen).toBeGreaterThan(0);
  });

  it('gpg (7) on-policy has the gradient of stdlib gpg with alpha_mode = 2', () => {
    fc.assert(
      fc.property(arbFor(obj), fc.constantFrom(0, 1, 2), (b0, mode) => {
        const b = onPolicy(b0);
        const a = obj.run(b, { params: { adv_estimator: 7, loss_agg_mode: mode } });
        const g = gpgObj.run(b, { params: { alpha_mode: 2, loss_agg_mode: mode } });
        expectVecClose(a.grads.logp!.data, Array.from(g.grads.logp!.data), 'grad logp');
      }),
      { numRuns: 100 },
    );
  });

  it('a fully masked batch gives loss 0 and a zero gradient for every estimator', () => {
    for (const b of fc.sample(arbFor(obj), { numRuns: 10, seed: 7 })) {
      for (let e = 0; e <= 7; e++) {
        const r = obj.run({ ...b, mask: new Uint8Array(b.numTokens) }, { params: { adv_estimator: e } });
        expect(r.loss).toBe(0);
        expect(Array.from(r.grads.logp!.data).every((g) => g === 0)).toBe(true);
      }
    }
  });
});

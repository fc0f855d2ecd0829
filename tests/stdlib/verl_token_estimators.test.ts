/**
 * stdlib/verl_gae, verl_reinforce_pp, verl_remax, verl_optimal_token_baseline and verl_gdpo (verl's
 * advantage estimators that need more than one reward per response) against
 * tests/reference/verl-adv.ts, their gradients against finite differences, and special cases.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile, type Objective } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { sequencesByGroup, tokensOf, values } from '../reference/family.js';
import {
  OTB_DEFAULTS,
  otbColumns,
  verlGaeRef,
  verlGdpoRef,
  verlOtbRef,
  verlRemaxRef,
  verlReinforcePpRef,
} from '../reference/verl-adv.js';
import { fdBatches, withTensor } from './verl-adv-helpers.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const ppoParams = {
  eps_low: fc.constantFrom(0.2, 0.1),
  eps_high: fc.constantFrom(0.2, 0.28),
  clip_c: fc.constantFrom(3, 1.5, 1e30),
  loss_agg_mode: fc.constantFrom(0, 1, 2, 3, 4, 5),
  max_len: fc.constantFrom(3000, 5),
};

/** The token-level export at valid tokens (0 at masked ones, as the references give it). */
const tokExport = (o: Objective, b: RaggedBatch, name: string, p: Record<string, number> = {}) =>
  Array.from(o.run(b, { params: p }).exports[name]!.data, (v, t) => (b.mask[t] === 1 ? v : 0));

/** Each sequence's mask made a prefix (its valid tokens first): no masked token before a valid one. */
const prefixMasks = (b: RaggedBatch): RaggedBatch => {
  const mask = Uint8Array.from(b.mask);
  for (let s = 0; s < b.numSeqs; s++) {
    const ts = tokensOf(b, s);
    const n = ts.filter((t) => b.mask[t] === 1).length;
    ts.forEach((t, k) => (mask[t] = k < n ? 1 : 0));
  }
  return { ...b, mask };
};

/** The reward of each response on its last valid token, 0 elsewhere. */
const onLastToken = (b: RaggedBatch, R: readonly number[]): number[] => {
  const out = new Array<number>(b.numTokens).fill(0);
  for (let s = 0; s < b.numSeqs; s++) {
    const v = tokensOf(b, s).filter((t) => b.mask[t] === 1);
    if (v.length) out[v[v.length - 1]!] = R[s]!;
  }
  return out;
};

describe('verl_gae', () => {
  const obj = compile('verl_gae');
  const params = fc.record({ ...ppoParams, gamma: fc.constantFrom(1, 0.9, 0), lam: fc.constantFrom(1, 0.95, 0) });
  itAgreesWithFamilyRef(obj, verlGaeRef, params);
  itHasFdGradients(obj, verlGaeRef, params, { batches: fdBatches(obj) });

  it('exports verl’s advantages and returns at every valid token', () => {
    fc.assert(
      fc.property(arbFor(obj), params, (b, p) => {
        const want = verlGaeRef(b, p);
        expectVecClose(tokExport(obj, b, 'advantage', p), want.tokenAdv, 'advantage');
        expectVecClose(tokExport(obj, b, 'returns', p), want.returns, 'returns');
      }),
      { numRuns: 100 },
    );
  });

  it('with value = 0 and lam = 1 it is verl_reinforce_pp (the whitened discounted return)', () => {
    const rpp = compile('verl_reinforce_pp');
    fc.assert(
      fc.property(arbFor(obj), fc.constantFrom(1, 0.9), (b0, gamma) => {
        const b = withTensor(b0, 'value', new Array<number>(b0.numTokens).fill(0));
        const a = obj.run(b, { params: { gamma, lam: 1 } });
        const r = rpp.run(b, { params: { gamma } });
        expect(close(a.loss, r.loss)).toBe(true);
        expectVecClose(a.grads.logp!.data, Array.from(r.grads.logp!.data), 'grad logp');
      }),
      { numRuns: 100 },
    );
  });
});

describe('verl_reinforce_pp', () => {
  const obj = compile('verl_reinforce_pp');
  const params = fc.record({ ...ppoParams, gamma: fc.constantFrom(1, 0.99, 0.5, 0) });
  itAgreesWithFamilyRef(obj, verlReinforcePpRef, params);
  itHasFdGradients(obj, verlReinforcePpRef, params, { batches: fdBatches(obj) });

  it('exports verl’s advantages and returns at every valid token', () => {
    fc.assert(
      fc.property(arbFor(obj), params, (b, p) => {
        const want = verlReinforcePpRef(b, p);
        expectVecClose(tokExport(obj, b, 'advantage', p), want.tokenAdv, 'advantage');
        expectVecClose(tokExport(obj, b, 'returns', p), want.returns, 'returns');
      }),
      { numRuns: 100 },
    );
  });
});

describe('verl_remax', () => {
  const obj = compile('verl_remax');
  const params = fc.record(ppoParams);
  itAgreesWithFamilyRef(obj, verlRemaxRef, params);
  itHasFdGradients(obj, verlRemaxRef, params, { batches: fdBatches(obj) });

  it('with the reward on the last valid token the advantage is R - b at every valid token', () => {
    fc.assert(
      fc.property(
        arbFor(obj),
        fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: 20, maxLength: 20 }),
        (b0, rs) => {
          const R = Array.from({ length: b0.numSeqs }, (_, s) => rs[s % 20]!);
          const b = withTensor(b0, 'token_reward', onLastToken(b0, R));
          const a = tokExport(obj, b, 'advantage');
          const base = values(b, 'reward_baseline');
          for (let s = 0; s < b.numSeqs; s++)
            for (const t of tokensOf(b, s)) if (b.mask[t] === 1) expect(close(a[t]!, R[s]! - base[s]!)).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('verl_optimal_token_baseline', () => {
  const obj = compile('verl_optimal_token_baseline');
  const params = fc.record({
    ...ppoParams,
    use_is_weights: fc.constantFrom(0, 1),
    handle_zero_tail: fc.constantFrom(1, 0),
    otb_eps: fc.constantFrom(1e-8, 0.5),
    verl_singletons: fc.constantFrom(0, 1),
  });
  itAgreesWithFamilyRef(obj, verlOtbRef, params, { numRuns: 200 });
  itHasFdGradients(obj, verlOtbRef, params, { batches: fdBatches(obj) });

  it('exports tir_optimal_token_baseline’s advantage at every valid token', () => {
    fc.assert(
      fc.property(arbFor(obj), params, (b, p) =>
        expectVecClose(tokExport(obj, b, 'advantage', p), verlOtbRef(b, p).tokenAdv, 'advantage'),
      ),
      { numRuns: 150 },
    );
  });

  const otbArgs = (b: RaggedBatch) =>
    [
      values(b, 'token_reward'),
      values(b, 'old_logp'),
      values(b, 'sum_pi_squared'),
      values(b, 'rollout_is_weights'),
    ] as const;

  it('equals verl’s column-aligned optimal_token_baseline (verl’s rule, zero tail) when masks are prefixes', () => {
    fc.assert(
      fc.property(arbFor(obj), fc.constantFrom(0, 1), fc.constantFrom(1e-8, 0.5), (b0, useIs, eps) => {
        const b = prefixMasks(b0);
        const p = { ...OTB_DEFAULTS, use_is_weights: useIs, otb_eps: eps, verl_singletons: 1 };
        expectVecClose(tokExport(obj, b, 'advantage', p), otbColumns(b, ...otbArgs(b), p), 'advantage');
      }),
      { numRuns: 150 },
    );
  });

  it('differs from the column-aligned form when a response has a masked token before a valid one', () => {
    let differs = false;
    fc.assert(
      fc.property(arbFor(obj), (b) => {
        const p = { ...OTB_DEFAULTS, verl_singletons: 1 };
        const got = tokExport(obj, b, 'advantage', p);
        const col = otbColumns(b, ...otbArgs(b), p);
        if (got.some((x, t) => !close(x, col[t]!, 1e-6))) differs = true;
      }),
      { numRuns: 150 },
    );
    expect(differs).toBe(true);
  });

  it('w = 1, equal lengths in a group and the reward on the last token: A = R - mean_g R (up to otb_eps)', () => {
    let seen = 0;
    fc.assert(
      fc.property(arbFor(obj), (b0) => {
        const L = Array.from({ length: b0.numSeqs }, (_, s) => tokensOf(b0, s).filter((t) => b0.mask[t] === 1).length);
        if (!sequencesByGroup(b0).every((g) => g.length > 1 && g.every((s) => L[s] === L[g[0]!] && L[s]! > 0))) return;
        seen++;
        const R = Array.from({ length: b0.numSeqs }, (_, s) => (s % 3) - 1 + 0.25 * (s % 2));
        // log-probabilities (≤ 0), so that w = 1 - 2 pi + 2 pi is exactly representable as 1 ± rounding
        let b = withTensor(b0, 'token_reward', onLastToken(b0, R));
        b = withTensor(
          b,
          'old_logp',
          values(b, 'old_logp').map((o) => -Math.abs(o) - 0.1),
        );
        b = withTensor(
          b,
          'sum_pi_squared',
          values(b, 'old_logp').map((o) => 2 * Math.exp(o)),
        );
        const a = tokExport(obj, b, 'advantage');
        for (const g of sequencesByGroup(b)) {
          const m = g.reduce((u, s) => u + R[s]!, 0) / g.length;
          for (const s of g)
            for (const t of tokensOf(b, s)) if (b.mask[t] === 1) expect(close(a[t]!, R[s]! - m, 1e-6)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
    expect(seen).toBeGreaterThan(0);
  });
});

describe('verl_gdpo', () => {
  const obj = compile('verl_gdpo');
  const params = fc.record({
    ...ppoParams,
    w_1: fc.constantFrom(1, 0.5),
    w_2: fc.constantFrom(1, 0, 2),
    w_3: fc.constantFrom(1, 0),
    epsilon: fc.constantFrom(1e-6, 0.1),
    verl_singletons: fc.constantFrom(0, 1),
  });
  itAgreesWithFamilyRef(obj, verlGdpoRef, params);
  itHasFdGradients(obj, verlGdpoRef, params, { batches: fdBatches(obj) });

  it('exports verl’s per-token advantage at every valid token of each response', () => {
    fc.assert(
      fc.property(arbFor(obj), params, (b, p) => {
        const a = obj.run(b, { params: p }).exports.advantage!.data;
        const tok = verlGdpoRef(b, p).tokenAdv;
        for (let s = 0; s < b.numSeqs; s++)
          for (const t of tokensOf(b, s)) if (b.mask[t] === 1) expect(close(a[s]!, tok[t]!), `token ${t}`).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('the whitening makes the advantage invariant to scaling every weight (tol 1e-6)', () => {
    let seen = 0;
    fc.assert(
      fc.property(arbFor(obj), (b) => {
        const a = obj.run(b).exports.advantage!.data;
        const c = obj.run(b, { params: { w_1: 3, w_2: 3, w_3: 3 } }).exports.advantage!.data;
        // only where the weighted sum's token variance dwarfs masked_whiten's 1e-8: the whitened
        // values then have unbiased token variance var / (var + 1e-8) ≈ 1
        const xs: number[] = [];
        for (let s = 0; s < b.numSeqs; s++) for (const t of tokensOf(b, s)) if (b.mask[t] === 1) xs.push(a[s]!);
        if (xs.length < 2) return;
        const m = xs.reduce((u, v) => u + v, 0) / xs.length;
        if (xs.reduce((u, v) => u + (v - m) ** 2, 0) / (xs.length - 1) < 0.999) return;
        seen++;
        expectVecClose(c, Array.from(a), 'advantage', 1e-6);
      }),
      { numRuns: 100 },
    );
    expect(seen).toBeGreaterThan(20);
  });
});

describe('verl token-level estimators on a fully masked batch', () => {
  it('give loss 0 and a zero gradient', () => {
    for (const name of ['verl_gae', 'verl_reinforce_pp', 'verl_remax', 'verl_optimal_token_baseline', 'verl_gdpo']) {
      const obj = compile(name);
      for (const b of fc.sample(arbFor(obj), { numRuns: 10, seed: 5 })) {
        const r = obj.run({ ...b, mask: new Uint8Array(b.numTokens) });
        expect(r.loss, name).toBe(0);
        expect(Array.from(r.grads.logp!.data).every((g) => g === 0)).toBe(true);
      }
    }
  });
});

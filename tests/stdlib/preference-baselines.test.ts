/**
 * The preference baselines ipo, simpo, cpo, orpo and kto (TRL's formulas, methods-dpo.md §17)
 * against their references in tests/reference (≥ 100 random batches, tol 1e-9·(1 + |b|), finite
 * differences of the references' gradients), and the special cases that need two runs (the catalog
 * claims in stdlib/claims/catalog-pref.ts state the others).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { withTensors } from '../helpers/batches.js';
import { close, expectSameLossAndGrad } from '../helpers/expect.js';
import { cpoRef, simpoRef } from '../reference/cpo.js';
import { pairs, validTokensOf, values } from '../reference/family.js';
import { ipoRef } from '../reference/ipo.js';
import { ktoRef } from '../reference/kto.js';
import { orpoRef } from '../reference/orpo.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const [ipo, simpo, cpo, orpo, kto, dpo, orpoTrl] = ['ipo', 'simpo', 'cpo', 'orpo', 'kto', 'dpo', 'orpo_trl'].map((n) =>
  compile(n),
);
const beta = fc.constantFrom(0.1, 0.5, 2);
const eps = fc.constantFrom(0, 0.1, 0.5);
const onOff = fc.constantFrom(0, 1);

describe('ipo equals its reference', () => {
  const params = fc.record({ beta, length_normalize: onOff });
  itAgreesWithFamilyRef(ipo, ipoRef, params);
  itHasFdGradients(ipo, ipoRef, params);
});

describe('simpo equals its reference', () => {
  const params = fc.record({
    beta,
    gamma: fc.constantFrom(0.5, 0, 1.2),
    label_smoothing: eps,
    cpo_alpha: fc.constantFrom(0, 1),
    length_normalize: onOff,
  });
  itAgreesWithFamilyRef(simpo, simpoRef, params);
  itHasFdGradients(simpo, simpoRef, params);
});

describe('cpo equals its reference', () => {
  const params = fc.record({ beta, label_smoothing: eps, cpo_alpha: fc.constantFrom(1, 0, 0.5) });
  itAgreesWithFamilyRef(cpo, cpoRef, params);
  itHasFdGradients(cpo, cpoRef, params);
});

describe('orpo equals its reference', () => {
  const params = fc.record({ beta: fc.constantFrom(0.1, 0.25, 1) });
  itAgreesWithFamilyRef(orpo, orpoRef, params);
  // away from ā = 0, where the odds p/(1 − p) blow up and h = 1e-6 is no longer a small step
  const awayFromCertainty = arbFor(orpo).filter((b) => {
    const logp = values(b, 'logp');
    return Array.from({ length: b.numSeqs }, (_, s) => validTokensOf(b, s)).every(
      (ts) => ts.reduce((a, t) => a + logp[t]!, 0) / ts.length < -0.01,
    );
  });
  itHasFdGradients(orpo, orpoRef, params, { batches: awayFromCertainty });
});

describe('orpo_trl equals its reference', () => {
  const params = fc.record({ beta: fc.constantFrom(0.1, 0.25, 1) });
  const ref = (b: RaggedBatch, p: { beta: number }) => orpoRef(b, p, true);
  itAgreesWithFamilyRef(orpoTrl, ref, params);
  const awayFromCertainty = arbFor(orpoTrl).filter((b) => {
    const [logp, prompt] = [values(b, 'logp'), values(b, 'prompt')];
    return Array.from({ length: b.numSeqs }, (_, s) => validTokensOf(b, s).filter((t) => prompt[t] !== 1)).every(
      (ts) => ts.reduce((a, t) => a + logp[t]!, 0) / ts.length < -0.01,
    );
  });
  itHasFdGradients(orpoTrl, ref, params, { batches: awayFromCertainty });

  it('without prompt tokens it is orpo; with them its NLL also covers the chosen prompt', () => {
    fc.assert(
      fc.property(arbFor(orpo), (b) => {
        const none = withTensors(b, {
          prompt: { level: 'token', dtype: 'bool', data: new Array<number>(b.numTokens).fill(0) },
        });
        expectSameLossAndGrad(orpoTrl.run(none), orpo.run(b));
      }),
      { numRuns: 100 },
    );
    const b = fc.sample(
      arbFor(orpoTrl).filter((x) => values(x, 'prompt').some((v, t) => v === 1 && x.mask[t] === 1)),
      { numRuns: 1, seed: 4 },
    )[0]!;
    expect(close(orpoTrl.run(b).metrics.nll!, orpoRef(b, {}, false).metrics.nll!)).toBe(true);
  });
});

describe('kto equals its reference', () => {
  const params = fc.record({
    beta,
    desirable_weight: fc.constantFrom(1, 1.33),
    undesirable_weight: fc.constantFrom(1, 0.5),
  });
  itAgreesWithFamilyRef(kto, ktoRef, params);
  itHasFdGradients(kto, ktoRef, params);
});

/** A copy of a batch with ref_logp = 0 (no reference model). */
const noReference = (b: RaggedBatch) =>
  withTensors(b, { ref_logp: { level: 'token', data: new Array<number>(b.numTokens).fill(0) } });

describe('preference special cases', () => {
  it('simpo with γ = 0 and no length normalisation is dpo with ref_logp = 0 (value, gradient)', () => {
    fc.assert(
      fc.property(arbFor(dpo), (b) => {
        const params = { gamma: 0, length_normalize: 0, beta: 0.3 };
        expectSameLossAndGrad(simpo.run(b, { params }), dpo.run(noReference(b), { params: { beta: 0.3 } }));
      }),
      { numRuns: 100 },
    );
  });

  it('simpo with its defaults is not dpo with ref_logp = 0 (γ and the length normalisation matter)', () => {
    const b = fc.sample(
      arbFor(dpo).filter((x) => x.numGroups > 0),
      { numRuns: 1, seed: 5 },
    )[0]!;
    expect(close(simpo.run(b).loss, dpo.run(noReference(b)).loss)).toBe(false);
  });

  it('orpo with β = 0 is the token-mean NLL of the chosen responses', () => {
    fc.assert(
      fc.property(arbFor(orpo), (b) => {
        const logp = values(b, 'logp');
        const ts = pairs(b).flatMap(({ w }) => validTokensOf(b, w));
        const nll = ts.length ? -ts.reduce((a, t) => a + logp[t]!, 0) / ts.length : 0;
        expect(close(orpo.run(b, { params: { beta: 0 } }).loss, nll)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('orpo refuses a pair with an empty response (its odds are undefined)', () => {
    const b = fc.sample(arbFor(orpo), { numRuns: 1, seed: 2 })[0]!;
    const mask = Uint8Array.from(b.mask);
    mask.fill(0, b.offsets[0], b.offsets[1]);
    expect(() => orpo.run({ ...b, mask })).toThrow(/require length > 0/);
  });

  it('ipo: the TRL and paper forms agree when every response has at most one valid token', () => {
    fc.assert(
      fc.property(
        arbFor(ipo).filter((b) =>
          Array.from({ length: b.numSeqs }, (_, s) => validTokensOf(b, s).length <= 1).every(Boolean),
        ),
        (b) => expectSameLossAndGrad(ipo.run(b), ipo.run(b, { params: { length_normalize: 0 } })),
      ),
      { numRuns: 100 },
    );
  });

  it('kto with a non-positive KL estimate (z0 = 0): 1 − σ(βr) for desirable, σ(βr) for undesirable examples', () => {
    fc.assert(
      fc.property(arbFor(kto), (b) => {
        const zeroKl = withTensors(b, {
          kl_logp: { level: 'seq', data: new Array<number>(b.numSeqs).fill(-1) },
          kl_ref_logp: { level: 'seq', data: new Array<number>(b.numSeqs).fill(0) },
        });
        const [logp, ref, des] = [values(b, 'logp'), values(b, 'ref_logp'), values(b, 'desirable')];
        let sum = 0;
        for (let s = 0; s < b.numSeqs; s++) {
          const r = validTokensOf(b, s).reduce((a, t) => a + logp[t]! - ref[t]!, 0);
          const sg = 1 / (1 + Math.exp(-0.1 * r));
          sum += des[s] === 1 ? 1 - sg : sg;
        }
        expect(close(kto.run(zeroKl).loss, b.numSeqs ? sum / b.numSeqs : 0)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

/**
 * stdlib/gmpo.credo (verl `geo_mean`: geometric mean of log-space-clipped token ratios) against
 * tests/reference/gmpo.ts, and its single-method special cases (the equivalences with grpo and gspo
 * of Appendix A are in baselines-special-cases.test.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { toRagged } from '../helpers/batches.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { seqLengths } from '../reference/batch.js';
import { gmpoRef } from '../reference/gmpo.js';
import {
  close,
  expectFdAgreement,
  expectRef,
  itAgreesWithReference,
  expectReinforceGrad,
} from './baselines-helpers.js';

const gmpo = compile('gmpo');

const arbParams = fc.record({
  eps_low: fc.constantFrom(0.4, 0.1, 1e30),
  eps_high: fc.constantFrom(0.4, 0.2, 1e30),
  adv_eps: fc.constantFrom(1e-6, 0.1),
});

describe('gmpo equals its reference', () => {
  itAgreesWithReference(gmpo, gmpoRef, arbParams);

  it('the reference gradient matches finite differences of the reference loss', () => {
    expectFdAgreement(fc.tuple(arbRefBatch(), arbParams), ([b, p]) => [b, (x) => gmpoRef(x, p)]);
  });
});

describe('gmpo special cases', () => {
  it("on-policy: REINFORCE with seq-mean-token-mean, gradient -A_i / (B' L_i), loss mean_i(-A_i)", () => {
    fc.assert(
      fc.property(arbRefBatch({ onPolicy: true }), (b) => {
        const got = gmpo.run(toRagged(b));
        const A = gmpoRef(b).advantage;
        const L = seqLengths(b);
        const nSeqs = L.filter((l) => l > 0).length;
        const advTok: number[] = [];
        const w: number[] = [];
        let lossWant = 0;
        for (let s = 0; s < L.length; s++) {
          if (L[s]! > 0) lossWant += -A[s]! / nSeqs;
          for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
            advTok.push(A[s]!);
            w.push(L[s]! > 0 ? 1 / (nSeqs * L[s]!) : 0);
          }
        }
        expectReinforceGrad(got, b, advTok, w);
        expect(close(got.loss, lossWant)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('a token outside the log-space window contributes no gradient when the clip is active', () => {
    // one sequence of two tokens, A > 0 (group of two, rewards 1 and 0): d = 1 > eps_high = 0.4 is clipped
    const b = {
      offsets: [0, 2, 3],
      groupOf: [0, 0],
      numGroups: 1,
      mask: [1, 1, 1],
      logp: [-1, -2, -1],
      old_logp: [-2, -2.1, -1],
      ref_logp: [-1, -2, -1],
      reward: [1, 0],
    };
    const got = gmpo.run(toRagged(b));
    expect(got.grads.logp!.data[0]).toBe(0); // clipped at e^0.4
    expect(got.grads.logp!.data[1]).not.toBe(0); // d = 0.1 inside the window
    expect(got.metrics.clip_frac).toBe(1 / 3);
    expectRef(got, gmpoRef(b));
  });
});

/**
 * stdlib/dhpo.credo (DHPO, methods-pg.md §2, reconstructed) against the hand-written reference
 * tests/reference/dhpo.ts, plus its special cases: token weight 1 is the token-ratio surrogate (grpo
 * with beta = 0), token weight 0 is gspo, entropy-guided mixing with constant entropy per response is the
 * averaged mixing, and on-policy gives REINFORCE with seq-mean-token-mean.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { groupAdvantages, seqLengths } from '../reference/batch.js';
import { DHPO_DEFAULTS, dhpoRef } from '../reference/dhpo.js';
import { checkGradFD } from '../reference/fd.js';
import { toRagged } from '../helpers/batches.js';
import {
  arbEntropyBatch,
  close,
  expectAgree,
  expectGradClose,
  expectSameLossAndGrad,
  withTensors,
} from './pg14-helpers.js';

const dhpo = compile('dhpo');
const grpo = compile('grpo');
const gspo = compile('gspo');

const withEntropy = (b: Parameters<typeof toRagged>[0], entropy: number[]) =>
  withTensors(toRagged(b), { entropy: { level: 'token', data: entropy } });

const arbParams = fc.record(
  {
    eps_tok_low: fc.constantFrom(0.2, 0.1),
    eps_tok_high: fc.constantFrom(0.2, 0.28),
    eps_seq_low: fc.constantFrom(3e-4, 0.05),
    eps_seq_high: fc.constantFrom(4e-4, 0.1),
    w_tok: fc.constantFrom(0.5, 0, 1, 0.3),
    entropy_mix: fc.constantFrom(0, 1),
    entropy_dir: fc.constantFrom(1, -1),
    geo_mix: fc.constantFrom(0, 1),
    seq_sg: fc.constantFrom(1, 0),
    token_mean: fc.constantFrom(0, 1),
  },
  { requiredKeys: [] },
);

describe('dhpo equals its reference', () => {
  it('with default params (averaged arithmetic mixing)', () => {
    fc.assert(
      fc.property(arbEntropyBatch(), ({ b, entropy }) => {
        expectAgree(dhpo.run(withEntropy(b, entropy)), dhpoRef(b, entropy));
      }),
      { numRuns: 300 },
    );
  });

  it('on random batches and params (loss, metrics, gradient)', () => {
    fc.assert(
      fc.property(arbEntropyBatch(), arbParams, ({ b, entropy }, params) => {
        expectAgree(dhpo.run(withEntropy(b, entropy), { params }), dhpoRef(b, entropy, params));
      }),
      { numRuns: 500 },
    );
  });
});

describe('dhpo reference gradient', () => {
  it('with seq_sg = 0 (no stop-gradient) equals central finite differences of the reference loss', () => {
    fc.assert(
      fc.property(arbEntropyBatch({ maxGroups: 3 }), arbParams, ({ b, entropy }, params) => {
        const p = { ...params, seq_sg: 0 };
        expect(checkGradFD((x) => dhpoRef(x, entropy, p), b).failures).toEqual([]);
      }),
      { numRuns: 150 },
    );
  });
});

describe('dhpo special cases', () => {
  const eps = fc.constantFrom([0.2, 0.2], [0.1, 0.28]);

  it('token weight 1: the token-ratio surrogate = grpo with beta = 0 (arithmetic and geometric mixing)', () => {
    fc.assert(
      fc.property(
        arbEntropyBatch(),
        eps,
        fc.constantFrom(0, 1),
        fc.constantFrom(0, 1),
        ({ b, entropy }, [lo, hi], geo_mix, seq_sg) => {
          const got = dhpo.run(withEntropy(b, entropy), {
            params: { w_tok: 1, eps_tok_low: lo, eps_tok_high: hi, geo_mix, seq_sg },
          });
          const want = grpo.run(toRagged(b), { params: { beta: 0, eps_low: lo, eps_high: hi } });
          expectSameLossAndGrad(got, want);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('token weight 0: the sequence-ratio surrogate = gspo with the same eps (value and gradient, both seq_sg forms)', () => {
    fc.assert(
      fc.property(
        arbEntropyBatch(),
        fc.constantFrom([3e-4, 4e-4], [0.2, 0.2]),
        fc.constantFrom(0, 1),
        fc.constantFrom(0, 1),
        ({ b, entropy }, [lo, hi], geo_mix, seq_sg) => {
          const got = dhpo.run(withEntropy(b, entropy), {
            params: { w_tok: 0, eps_seq_low: lo, eps_seq_high: hi, geo_mix, seq_sg },
          });
          const want = gspo.run(toRagged(b), { params: { eps_low: lo, eps_high: hi } });
          expectSameLossAndGrad(got, want);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('entropy-guided mixing with the same entropy on every token of a response = averaged mixing (w = 1/2)', () => {
    fc.assert(
      fc.property(arbEntropyBatch(), arbParams, fc.constantFrom(1, -1), ({ b, entropy }, params, entropy_dir) => {
        // one entropy value per response, taken from its first token (0 included)
        const flat = [...entropy];
        for (let s = 0; s + 1 < b.offsets.length; s++)
          for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) flat[t] = entropy[b.offsets[s]!]!;
        const got = dhpo.run(withEntropy(b, flat), { params: { ...params, entropy_mix: 1, entropy_dir } });
        const want = dhpo.run(withEntropy(b, flat), { params: { ...params, entropy_mix: 0, w_tok: 0.5 } });
        expectSameLossAndGrad(got, want);
        expect(close(got.metrics.w_mean!, b.mask.some((m) => m === 1) ? 0.5 : 0)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it("on-policy: REINFORCE gradient -A·norm per valid token (norm = 1/(B' L) or 1/N); with seq_sg = 0 the sequence part is shared", () => {
    fc.assert(
      fc.property(arbEntropyBatch({ onPolicy: true }), arbParams, ({ b, entropy }, params) => {
        const q = { ...DHPO_DEFAULTS, ...params };
        const got = dhpo.run(withEntropy(b, entropy), { params });
        const L = seqLengths(b);
        const A = groupAdvantages(b, b.reward, q.adv_eps);
        const B = L.filter((n) => n > 0).length;
        const N = L.reduce((x, y) => x + y, 0);
        const want = new Array<number>(b.mask.length).fill(0);
        for (let s = 0; s < L.length; s++) {
          const idx: number[] = [];
          for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) if (b.mask[t] === 1) idx.push(t);
          const hBar = idx.reduce((x, t) => x + entropy[t]!, 0) / Math.max(idx.length, 1);
          const w = idx.map((t) => {
            if (q.entropy_mix < 0.5) return q.w_tok;
            const u = entropy[t]! + hBar > 0 ? entropy[t]! / (entropy[t]! + hBar) : 0.5;
            return q.entropy_dir < 0 ? 1 - u : u;
          });
          const meanW = w.reduce((x, y) => x + y, 0) / Math.max(w.length, 1);
          const norm = q.token_mean > 0.5 ? 1 / N : 1 / (B * L[s]!);
          // r = s = 1: d rho / d logp_j = w_j (token) + (1 - w_j) (own, seq_sg = 1) or mean_t (1 - w_t) (seq_sg = 0)
          idx.forEach((t, k) => (want[t] = -A[s]! * norm * (q.seq_sg > 0.5 ? 1 : w[k]! + 1 - meanW)));
        }
        expectGradClose(got.grads.logp!.data, want);
      }),
      { numRuns: 300 },
    );
  });

  it('does not depend on entropy when entropy_mix = 0', () => {
    fc.assert(
      fc.property(arbEntropyBatch(), ({ b, entropy }) => {
        const a = dhpo.run(withEntropy(b, entropy));
        const z = dhpo.run(
          withEntropy(
            b,
            entropy.map(() => 1.7),
          ),
        );
        expectSameLossAndGrad(a, z, 0);
      }),
      { numRuns: 50 },
    );
  });
});

/**
 * stdlib/balanced_agg.credo (Balanced Aggregation, methods-pg.md §1, reconstructed) against the
 * hand-written reference tests/reference/balanced_agg.ts, plus its special cases: equal lengths →
 * token-mean (dapo) = seq-mean-token-mean (grpo), equal lengths within each sign → seq-mean-token-mean,
 * and on-policy → REINFORCE with the BA weights.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { checkGradFD } from '../reference/fd.js';
import { groupAdvantages, seqLengths } from '../reference/batch.js';
import { BALANCED_AGG_DEFAULTS, balancedAggRef } from '../reference/balanced_agg.js';
import { toRagged } from '../helpers/batches.js';
import { arbShapedBatch, expectAgree, expectGradClose, expectSameLossAndGrad } from './pg14-helpers.js';

const ba = compile('balanced_agg');
const dapo = compile('dapo');
const grpo = compile('grpo');

const arbParams = fc.record(
  {
    eps_low: fc.constantFrom(0.2, 0.1),
    eps_high: fc.constantFrom(0.2, 0.28),
    clip_c: fc.constantFrom(3, 1.5, 10),
    per_group: fc.constantFrom(1, 0),
  },
  { requiredKeys: [] },
);

/** No dual clip: clip_c far above any ratio exp(20). */
const NO_DUAL = 1e12;

describe('balanced_agg equals its reference', () => {
  it('with default params (per group)', () => {
    fc.assert(
      fc.property(arbRefBatch(), (b) => {
        expectAgree(ba.run(toRagged(b)), balancedAggRef(b));
      }),
      { numRuns: 300 },
    );
  });

  it('on random batches and params (loss, metrics, gradient)', () => {
    fc.assert(
      fc.property(arbRefBatch(), arbParams, (b, params) => {
        expectAgree(ba.run(toRagged(b), { params }), balancedAggRef(b, params));
      }),
      { numRuns: 400 },
    );
  });
});

describe('balanced_agg reference gradient', () => {
  it('equals central finite differences of the reference loss', () => {
    fc.assert(
      fc.property(arbRefBatch({ maxGroups: 3 }), arbParams, (b, params) => {
        expect(checkGradFD((x) => balancedAggRef(x, params), b).failures).toEqual([]);
      }),
      { numRuns: 150 },
    );
  });
});

describe('balanced_agg special cases', () => {
  const clip = fc.constantFrom([0.2, 0.2, 3], [0.1, 0.28, 10], [0.2, 0.2, 1.5]);

  it('all lengths equal, groups of equal size: BA = token-mean = dapo with the same clip (per group and per batch)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }).chain((G) => arbShapedBatch(G, (_r, _g, lens) => lens[0]!)),
        clip,
        fc.constantFrom(1, 0),
        (b, [eps_low, eps_high, clip_c], per_group) => {
          const got = ba.run(toRagged(b), { params: { eps_low, eps_high, clip_c, per_group } });
          const want = dapo.run(toRagged(b), { params: { eps_low, eps_high, clip_c } });
          expectSameLossAndGrad(got, want);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('all lengths equal, groups of equal size, no dual clip: BA = seq-mean-token-mean = grpo with beta = 0', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }).chain((G) => arbShapedBatch(G, (_r, _g, lens) => lens[1]!)),
        fc.constantFrom([0.2, 0.2], [0.1, 0.28]),
        (b, [eps_low, eps_high]) => {
          const got = ba.run(toRagged(b), { params: { eps_low, eps_high, clip_c: NO_DUAL } });
          const want = grpo.run(toRagged(b), { params: { beta: 0, eps_low, eps_high } });
          expectSameLossAndGrad(got, want);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('equal lengths within the positive and within the negative responses of each group: BA = seq-mean-token-mean (grpo)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 5 }).chain((G) => arbShapedBatch(G, (r, g, lens) => lens[2 * g + r]!)),
        fc.constantFrom([0.2, 0.2], [0.1, 0.28]),
        (b, [eps_low, eps_high]) => {
          const got = ba.run(toRagged(b), { params: { eps_low, eps_high, clip_c: NO_DUAL } });
          const want = grpo.run(toRagged(b), { params: { beta: 0, eps_low, eps_high } });
          expectSameLossAndGrad(got, want);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("on-policy: gradient -A_i (|P|/n) / (sum_P L) / G' per token of a positive response (negative alike)", () => {
    fc.assert(
      fc.property(arbRefBatch({ onPolicy: true }), fc.constantFrom(1, 0), (b, per_group) => {
        const got = ba.run(toRagged(b), { params: { per_group } });
        const L = seqLengths(b);
        const A = groupAdvantages(b, b.reward, BALANCED_AGG_DEFAULTS.adv_eps);
        const setOf = (s: number) => (per_group ? b.groupOf[s]! : 0);
        const stats = new Map<number, { n: number; nP: number; nN: number; TP: number; TN: number }>();
        L.forEach((len, s) => {
          if (len === 0) return;
          const st = stats.get(setOf(s)) ?? { n: 0, nP: 0, nN: 0, TP: 0, TN: 0 };
          st.n++;
          if (A[s]! > 0) (st.nP++, (st.TP += len));
          if (A[s]! < 0) (st.nN++, (st.TN += len));
          stats.set(setOf(s), st);
        });
        const G = stats.size;
        const want = new Array<number>(b.mask.length).fill(0);
        L.forEach((len, s) => {
          if (len === 0 || A[s] === 0) return;
          const st = stats.get(setOf(s))!;
          const c = A[s]! > 0 ? st.nP / st.n / st.TP : st.nN / st.n / st.TN;
          for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) if (b.mask[t] === 1) want[t] = (-A[s]! * c) / G;
        });
        expectGradClose(got.grads.logp!.data, want);
      }),
      { numRuns: 300 },
    );
  });
});

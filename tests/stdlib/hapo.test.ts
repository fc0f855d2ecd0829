/**
 * stdlib/hapo.credo (interpreter) against the hand-written reference tests/reference/hapo.ts,
 * plus the special cases stated in its header.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { uniformDouble, type ArbRefBatchOptions } from '../reference/arbitrary.js';
import { seqLengths, type RefBatch } from '../reference/batch.js';
import { checkGradFD } from '../reference/fd.js';
import { hapoAdvantages, hapoRef, HAPO_DEFAULTS, type HapoBatch } from '../reference/hapo.js';
import {
  arbBatch,
  arbEntropyValue,
  close,
  expectAgrees,
  expectSameLossAndGrad,
  toRaggedWith,
  withTokenFeatures,
} from './tokenweight-helpers.js';

const hapo = compile('hapo');
const dapo = compile('dapo');

// mostly ordinary entropies; sometimes all nearly equal, where the variance floor 1e-8 binds
// (~1e-6 apart) and where it then also decides h_hat through the 1e-8 floors of pos_max / neg_min (~1e-13)
const arbHapoBatch = (opts: ArbRefBatchOptions = {}): fc.Arbitrary<HapoBatch> =>
  fc.oneof(
    { arbitrary: withTokenFeatures(arbBatch(opts), { entropy: arbEntropyValue() }), weight: 6 },
    { arbitrary: withTokenFeatures(arbBatch(opts), { entropy: uniformDouble(1 - 1e-6, 1 + 1e-6) }), weight: 1 },
    { arbitrary: withTokenFeatures(arbBatch(opts), { entropy: uniformDouble(1 - 1e-13, 1 + 1e-13) }), weight: 1 },
  );
const ragged = (b: HapoBatch) => toRaggedWith(b, { entropy: { level: 'token', data: b.entropy } });

const params = fc.record(
  {
    eps_low: fc.constantFrom(0.2, 0.1),
    eps_high: fc.constantFrom(0.2, 0.28),
    clip_c: fc.constantFrom(10, 3),
    entropy_pivot: fc.constantFrom(0.8, 0.5, 0.2, 0, 1),
    clip_alpha: fc.constantFrom(1, 0, 0.5),
    adv_beta: fc.constantFrom(1, 0, 2),
    h_signed: fc.constantFrom(0, 1),
    token_adv: fc.constantFrom(1, 0),
    adv_fallback: fc.constantFrom(5, 1.5, 1e9),
    fallback_pad: fc.constantFrom(1, 0),
    overlong_buffer: fc.constantFrom(0, 3),
    max_len: fc.constantFrom(10240, 6),
  },
  { requiredKeys: [] },
);

describe('hapo equals its reference', () => {
  it('on random batches with default params', () => {
    fc.assert(
      fc.property(arbHapoBatch(), (b) => {
        expectAgrees(hapo.run(ragged(b)), hapoRef(b));
      }),
      { numRuns: 200 },
    );
  });

  it('on random batches and params (loss, metrics, gradient)', () => {
    fc.assert(
      fc.property(arbHapoBatch(), params, (b, p) => {
        expectAgrees(hapo.run(ragged(b), { params: p }), hapoRef(b, p));
      }),
      { numRuns: 400 },
    );
  });

  it('with large log-ratios', () => {
    fc.assert(
      fc.property(arbHapoBatch({ largeNoise: 25 }), params, (b, p) => {
        expectAgrees(hapo.run(ragged(b), { params: p }), hapoRef(b, p));
      }),
      { numRuns: 200 },
    );
  });

  it('the exported advantage equals the reference advantage', () => {
    fc.assert(
      fc.property(arbHapoBatch(), params, (b, p) => {
        const got = hapo.run(ragged(b), { params: p }).exports.advantage!.data;
        const { A } = hapoAdvantages(b, { ...HAPO_DEFAULTS, ...p });
        A.forEach((v, s) => expect(close(got[s]!, v), `A[${s}] ${got[s]} vs ${v}`).toBe(true));
      }),
      { numRuns: 200 },
    );
  });

  it('the reference gradient matches finite differences of the reference loss', () => {
    fc.assert(
      fc.property(arbHapoBatch({ maxGroups: 3 }), params, (b, p) => {
        const rep = checkGradFD((x) => hapoRef(x as HapoBatch, p), b);
        expect(rep.failures).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });
});

/** Batches where every sequence of a group has the same number of valid tokens (all masks 1). */
const equalLengthBatch: fc.Arbitrary<HapoBatch> = fc
  .array(
    fc.record({
      len: fc.integer({ min: 0, max: 6 }),
      seqs: fc.array(
        fc.record({
          reward: fc.oneof(fc.constantFrom(0, 1), uniformDouble(-1, 1)),
          toks: fc.array(fc.tuple(uniformDouble(-5, 0), uniformDouble(-0.3, 0.3), arbEntropyValue()), {
            minLength: 6,
            maxLength: 6,
          }),
        }),
        { minLength: 1, maxLength: 4 },
      ),
    }),
    { minLength: 0, maxLength: 5 },
  )
  .map((groups) => {
    const b: HapoBatch = {
      offsets: [0],
      groupOf: [],
      numGroups: groups.length,
      mask: [],
      logp: [],
      old_logp: [],
      ref_logp: [],
      reward: [],
      entropy: [],
    };
    groups.forEach((g, gi) =>
      g.seqs.forEach((s) => {
        for (const [lp, d, h] of s.toks.slice(0, g.len)) {
          b.logp.push(lp);
          b.old_logp.push(lp + d);
          b.ref_logp.push(lp);
          b.mask.push(1);
          b.entropy.push(h);
        }
        b.offsets.push(b.offsets[b.offsets.length - 1]! + g.len);
        b.groupOf.push(gi);
        b.reward.push(s.reward);
      }),
    );
    return b;
  });

describe('hapo special cases', () => {
  it('clip_alpha = 0, adv_beta = 0, token_adv = 0 is DAPO with eps_high = 0.2 (clip_c 10, token-mean)', () => {
    const shaping = fc.record({
      overlong_buffer: fc.constantFrom(0, 3),
      max_len: fc.constantFrom(6, 10240),
      clip_c: fc.constantFrom(10, 3),
    });
    fc.assert(
      fc.property(arbHapoBatch(), shaping, fc.constantFrom(0, 1), (b, sh, signed) => {
        const got = hapo.run(ragged(b), {
          params: { clip_alpha: 0, adv_beta: 0, token_adv: 0, h_signed: signed, ...sh },
        });
        const want = dapo.run(toRaggedWith(b, {}), { params: { eps_low: 0.2, eps_high: 0.2, ...sh } });
        expectSameLossAndGrad(got, want);
      }),
      { numRuns: 200 },
    );
  });

  it('equal lengths within each group: the token-level advantage is the GRPO advantage with the population std', () => {
    fc.assert(
      fc.property(equalLengthBatch, fc.constantFrom(1e-6, 1e-3), (b, advEps) => {
        // groups of at most 4 have |z| <= sqrt(3) < 5, so only padded entries could trigger the fallback
        const got = hapo.run(ragged(b), { params: { fallback_pad: 0, adv_eps: advEps } }).exports.advantage!.data;
        const S = b.offsets.length - 1;
        for (let s = 0; s < S; s++) {
          const members = b.groupOf
            .map((g, i) => [g, i] as const)
            .filter(([g]) => g === b.groupOf[s])
            .map(([, i]) => b.reward[i]!);
          const mean = members.reduce((x, y) => x + y, 0) / members.length;
          const std = Math.sqrt(members.reduce((x, y) => x + (y - mean) ** 2, 0) / members.length);
          const want = seqLengths(b)[s]! > 0 ? (b.reward[s]! - mean) / (std + advEps) : got[s]!; // no tokens: no statistics
          expect(Math.abs(got[s]! - want) <= 1e-9 * (1 + Math.abs(want)), `A[${s}] ${got[s]} vs ${want}`).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('on-policy as released (h_signed = 0): the redistribution is inactive, gradient -A / N (REINFORCE, token-mean)', () => {
    fc.assert(
      fc.property(
        arbHapoBatch({ onPolicy: true }),
        fc.constantFrom(1, 2),
        fc.constantFrom(1, 0.5),
        (b, beta, alpha) => {
          const got = hapo.run(ragged(b), { params: { adv_beta: beta, clip_alpha: alpha } });
          const A = got.exports.advantage!.data;
          const N = seqLengths(b).reduce((x, y) => x + y, 0);
          const g = got.grads.logp.data;
          for (let s = 0; s + 1 < b.offsets.length; s++) {
            for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
              const want = b.mask[t] === 1 ? -A[s]! / N : 0;
              expect(close(g[t]!, want), `grad[${t}] ${g[t]} vs ${want}`).toBe(true);
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('the signed reading (h_signed = 1) changes the on-policy gradient of low-entropy tokens', () => {
    // two tokens, rewards 1 / 0: the low-entropy token has h < 0, so h_hat = -1 with h_signed = 1 and
    // its in-band advantage becomes A (1 + adv_beta h_hat) = 0 (adv_beta = 1)
    const b: HapoBatch = {
      offsets: [0, 2, 4],
      groupOf: [0, 0],
      numGroups: 1,
      mask: [1, 1, 1, 1],
      logp: [-1, -1, -1, -1],
      old_logp: [-1, -1, -1, -1],
      ref_logp: [-1, -1, -1, -1],
      reward: [1, 0],
      entropy: [0.01, 2, 0.01, 2],
    } satisfies RefBatch & { entropy: number[] };
    const released = hapo.run(ragged(b)).grads.logp.data;
    const signed = hapo.run(ragged(b), { params: { h_signed: 1 } }).grads.logp.data;
    expect(released[0]).toBeLessThan(0);
    expect(Math.abs(signed[0]!)).toBe(0);
    expect(signed[1]).toBe(released[1]);
  });
});

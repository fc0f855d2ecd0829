/**
 * stdlib/poad.credo (interpreter) against the hand-written reference tests/reference/poad.ts (loss,
 * metrics, gradients w.r.t. logp, entropy and value_new, the backup), plus the special cases stated in
 * its header.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { arbRefBatch, uniformDouble, type ArbRefBatchOptions } from '../reference/arbitrary.js';
import { checkGradFD } from '../reference/fd.js';
import { poadRef, type PoadBatch, type PoadParams } from '../reference/poad.js';
import {
  arbScore,
  arbSigned,
  close,
  expectAgrees,
  expectSameLossAndGrad,
  expectVecClose,
  fdCheckVector,
  toRaggedWith,
  validTokens,
  withSeqFeatures,
  withTokenFeatures,
} from './credit-helpers.js';

const poad = compile('poad');
const ppo = compile('ppo');

function arbBatch(
  opts: ArbRefBatchOptions = {},
  actionEnd: fc.Arbitrary<number> = fc.oneof(
    { arbitrary: fc.constant(0), weight: 3 },
    { arbitrary: fc.constant(1), weight: 2 },
  ),
  notDone: fc.Arbitrary<number> = fc.oneof(
    { arbitrary: fc.constant(1), weight: 4 },
    { arbitrary: fc.constant(0), weight: 1 },
  ),
): fc.Arbitrary<PoadBatch> {
  const tok = withTokenFeatures(arbRefBatch(opts), {
    entropy: arbScore(),
    value: arbSigned(2),
    dv: fc.oneof(uniformDouble(-0.15, 0.15), uniformDouble(-1, 1), fc.constant(0)),
    action_end: actionEnd,
    action_reward: arbSigned(1),
    not_done: notDone,
  });
  return withSeqFeatures(tok, { bootstrap: arbSigned(2) }).map(({ dv, ...b }) => ({
    ...b,
    value_new: b.value.map((v, t) => v + dv[t]!),
  }));
}

const ragged = (b: PoadBatch) =>
  toRaggedWith(b, {
    entropy: { level: 'token', data: b.entropy },
    value: { level: 'token', data: b.value },
    value_new: { level: 'token', data: b.value_new },
    action_end: { level: 'token', data: b.action_end },
    action_reward: { level: 'token', data: b.action_reward },
    not_done: { level: 'token', data: b.not_done },
    bootstrap: { level: 'seq', data: b.bootstrap },
  });

const params = fc.record(
  {
    gamma: fc.constantFrom(0.95, 1, 0.5),
    lambda: fc.constantFrom(0.95, 1, 0),
    eps_low: fc.constantFrom(0.2, 0.1),
    eps_high: fc.constantFrom(0.2, 0.3),
    value_clip: fc.constantFrom(0.2, 0.5),
    ent_coef: fc.constantFrom(0.01, 0, 0.1),
    vf_coef: fc.constantFrom(0.5, 0, 1),
    target_kl: fc.constantFrom(0.02, 1e12, 0.5),
    adv_eps: fc.constantFrom(1e-8, 1e-2),
    variant: fc.constantFrom(0, 1),
  },
  { requiredKeys: [] },
);

function agree(b: PoadBatch, p: Partial<PoadParams> = {}): void {
  const got = poad.run(ragged(b), { params: p });
  const want = poadRef(b, p);
  expectAgrees(got, want, { entropy: want.grad_entropy, value_new: want.grad_value_new });
  const onValid = (xs: ArrayLike<number>) => Array.from(xs, (x, t) => (b.mask[t] === 1 ? x : 0));
  expectVecClose(onValid(got.exports.advantage!.data), want.gae, 'gae');
  expectVecClose(onValid(got.exports.returns!.data), want.ret, 'returns');
}

describe('poad equals its reference', () => {
  it('on random batches with default params', () => {
    fc.assert(
      fc.property(arbBatch(), (b) => agree(b)),
      { numRuns: 200 },
    );
  });

  it('on random batches and params (loss, metrics, gradients, backup)', () => {
    fc.assert(
      fc.property(arbBatch(), params, (b, p) => agree(b, p)),
      { numRuns: 300 },
    );
  });

  it('without early stop (small log-ratio noise, large target_kl)', () => {
    fc.assert(
      fc.property(arbBatch({ largeNoise: 0.2 }), params, (b, p) => agree(b, { ...p, target_kl: 1e12 })),
      { numRuns: 150 },
    );
  });

  it('the reference gradients match finite differences of the reference loss (logp, value_new)', () => {
    fc.assert(
      fc.property(arbBatch({ maxGroups: 3 }), params, (b, p) => {
        expect(checkGradFD((x) => poadRef(x as PoadBatch, p), b).failures).toEqual([]);
        const want = poadRef(b, p);
        expect(
          fdCheckVector(b.value_new, (vn) => poadRef({ ...b, value_new: vn }, p).loss, want.grad_value_new),
        ).toEqual([]);
        expect(fdCheckVector(b.entropy, (h) => poadRef({ ...b, entropy: h }, p).loss, want.grad_entropy)).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });
});

describe('poad special cases', () => {
  it('gamma = 1: POAD and NTPO coincide', () => {
    fc.assert(
      fc.property(arbBatch(), fc.constantFrom(0.95, 0.5), (b, lambda) => {
        const a = poad.run(ragged(b), { params: { gamma: 1, lambda, variant: 0 } });
        const c = poad.run(ragged(b), { params: { gamma: 1, lambda, variant: 1 } });
        expectSameLossAndGrad(a, c);
        expectVecClose(a.exports.advantage!.data, c.exports.advantage!.data, 'gae');
      }),
      { numRuns: 100 },
    );
  });

  it('single-token actions: action-level GAE (delta = r + gamma V_next nd - V, carry gamma lambda nd)', () => {
    fc.assert(
      fc.property(
        arbBatch({}, fc.constant(1)),
        fc.constantFrom(0, 1),
        fc.constantFrom(0.95, 0.5),
        (b, variant, gamma) => {
          const gae = poad.run(ragged(b), { params: { variant, gamma } }).exports.advantage!.data;
          validTokens(b).forEach((ts, s) => {
            let next = 0;
            for (let j = ts.length - 1; j >= 0; j--) {
              const t = ts[j]!;
              const vNext = j === ts.length - 1 ? b.bootstrap[s]! : b.value[ts[j + 1]!]!;
              next =
                b.action_reward[t]! +
                gamma * vNext * b.not_done[t]! -
                b.value[t]! +
                gamma * 0.95 * b.not_done[t]! * next;
              expect(close(gae[t]!, next), `gae[${t}] ${gae[t]} vs ${next}`).toBe(true);
            }
          });
        },
      ),
      { numRuns: 150 },
    );
  });

  it('gamma = lambda = 1 inside an episode: Monte-Carlo return (future action rewards + bootstrap) minus V', () => {
    fc.assert(
      fc.property(arbBatch({}, undefined, fc.constant(1)), fc.constantFrom(0, 1), (b, variant) => {
        const gae = poad.run(ragged(b), { params: { gamma: 1, lambda: 1, variant } }).exports.advantage!.data;
        validTokens(b).forEach((ts, s) => {
          ts.forEach((t, j) => {
            let g = b.bootstrap[s]!;
            for (let q = j; q < ts.length; q++)
              if (b.action_end[ts[q]!]! > 0 || q === ts.length - 1) g += b.action_reward[ts[q]!]!;
            expect(close(gae[t]!, g - b.value[t]!), `gae[${t}] ${gae[t]} vs ${g - b.value[t]!}`).toBe(true);
          });
        });
      }),
      { numRuns: 150 },
    );
  });

  it('the episode boundary (not_done = 0 at an action end) cuts the backup', () => {
    // one sequence: action [t0 t1] ends the episode, action [t2] starts a new one
    const b: PoadBatch = {
      offsets: [0, 3],
      groupOf: [0],
      numGroups: 1,
      mask: [1, 1, 1],
      logp: [-1, -1, -1],
      old_logp: [-1, -1, -1],
      ref_logp: [-1, -1, -1],
      reward: [0],
      entropy: [1, 1, 1],
      value: [0.5, 0.2, 0.3],
      value_new: [0.5, 0.2, 0.3],
      action_end: [0, 1, 1],
      action_reward: [0, 1, 2],
      not_done: [1, 0, 1],
      bootstrap: [0.7],
    };
    const gae = Array.from(poad.run(ragged(b), { params: { gamma: 0.9, lambda: 0.8 } }).exports.advantage!.data);
    const g2 = 2 + 0.9 * 0.7 - 0.3;
    const g1 = 1 - 0.2; // no bootstrap and no carry across the episode end
    const g0 = 0.2 - 0.5 + 0.8 * g1; // POAD inside an action: no reward, no discount
    expectVecClose(gae, [g0, g1, g2], 'gae');
  });

  it('no entropy bonus, no value loss, no early stop: stdlib ppo (token-mean, no dual clip) on the normalised backup', () => {
    fc.assert(
      fc.property(arbBatch(), fc.constantFrom(0, 1), fc.constantFrom(0.2, 0.3), (b, variant, eps_high) => {
        const want = poadRef(b, { variant });
        const valid = want.gae.filter((g, t) => b.mask[t] === 1 && g !== 0);
        const m = valid.length ? valid.reduce((x, y) => x + y, 0) / valid.length : 0;
        const sd = valid.length ? Math.sqrt(valid.reduce((x, y) => x + (y - m) ** 2, 0) / valid.length) : 0;
        const advantage = want.gae.map((g) => (g - m) / (sd + 1e-8));
        const got = poad.run(ragged(b), { params: { variant, ent_coef: 0, vf_coef: 0, target_kl: 1e12, eps_high } });
        const ref = ppo.run(toRaggedWith(b, { advantage: { level: 'token', data: advantage } }), {
          params: { eps_high, clip_c: 1e12, loss_agg_mode: 0 },
        });
        expectSameLossAndGrad(got, ref);
      }),
      { numRuns: 150 },
    );
  });

  it('early stop: approx_kl > target_kl zeroes the policy part (loss = vf_coef L_V, no logp gradient)', () => {
    fc.assert(
      fc.property(arbBatch({ largeNoise: 3.5 }), (b) => {
        const got = poad.run(ragged(b), { params: { target_kl: 0 } });
        if (got.metrics.approx_kl! > 0) {
          expect(got.metrics.early_stop).toBe(1);
          expect(close(got.loss, 0.5 * got.metrics.value_loss!)).toBe(true);
          got.grads.logp!.data.forEach((g) => expect(Math.abs(g)).toBe(0));
          got.grads.entropy!.data.forEach((g) => expect(Math.abs(g)).toBe(0));
        } else expect(got.metrics.early_stop).toBe(0);
      }),
      { numRuns: 100 },
    );
  });
});

/**
 * The stdlib objectives grpo, dapo and gspo on edge batches: no sequences, only length-0
 * sequences, a fully masked sequence, a group of one sequence, all-equal rewards, and log-ratios
 * of ±50 / ±1000 (the exp overflow guards). Loss, metrics and gradients must be finite, and equal
 * the values computed by hand in the comments (default params: grpo eps 0.2 / 0.2, beta 0.04;
 * dapo eps_low 0.2, eps_high 0.28, clip_c 10; gspo eps_low 3e-4, eps_high 4e-4; adv_eps 1e-6).
 */
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import type { EvalResult } from '../../compiler/interp/eval.js';
import type { RefBatch } from '../reference/batch.js';
import { toRagged } from '../helpers/batches.js';
import { batch, expectArray, expectClose, expectFinite } from './helpers.js';

const OBJECTIVES = ['grpo', 'dapo', 'gspo'] as const;
type Name = (typeof OBJECTIVES)[number];
const compiled = Object.fromEntries(OBJECTIVES.map((n) => [n, compile(n)])) as Record<Name, ReturnType<typeof compile>>;
const METRICS: Record<Name, string[]> = {
  grpo: ['clip_frac', 'kl'],
  dapo: ['clip_frac', 'dual_clip_frac'],
  gspo: ['clip_frac'],
};

function runObj(name: Name, rb: RefBatch, params?: Record<string, number>): EvalResult {
  const out = compiled[name].run(toRagged(rb), params ? { params } : {});
  expectFinite([out.loss], `${name} loss`);
  expect(Object.keys(out.metrics).sort()).toEqual([...METRICS[name]].sort());
  for (const [k, v] of Object.entries(out.metrics)) expectFinite([v], `${name} metric ${k}`);
  expectFinite(out.grads.logp.data, `${name} grad`);
  expect(out.grads.logp.data.length).toBe(rb.logp.length);
  rb.mask.forEach((m, t) => {
    if (!m) expect(out.grads.logp.data[t], `${name} grad at masked token ${t}`).toBe(0);
  });
  return out;
}

/** Advantage of the better of two sequences with rewards 1 and 0: (1 − ½) / (std_unbiased + 1e-6), std = √(2·¼/1) = √½. */
const a = 0.5 / (Math.SQRT1_2 + 1e-6);

describe.each(OBJECTIVES)('%s', (name) => {
  it('on a batch with no sequences: loss 0, metrics 0, no gradient entries', () => {
    const out = runObj(name, batch({ seqs: [] }));
    expectClose(out.loss, 0, 0, 'loss');
    for (const k of METRICS[name]) expectClose(out.metrics[k], 0, 0, k);
    expect(out.grads.logp.data.length).toBe(0);
  });

  it('on a batch whose sequences all have length 0: loss 0, metrics 0', () => {
    const out = runObj(
      name,
      batch({
        seqs: [
          { logp: [], reward: 1, group: 0 },
          { logp: [], reward: 0, group: 0 },
          { logp: [], reward: 3, group: 1 },
        ],
      }),
    );
    expectClose(out.loss, 0, 0, 'loss');
    for (const k of METRICS[name]) expectClose(out.metrics[k], 0, 0, k);
  });

  it('with one fully masked sequence (whose wild values must not leak)', () => {
    // g0: s0 tokens [-1, -2] on-policy (old = ref = logp), reward 1; s1 tokens [-3, -4] masked, old 1000 / -1000, reward 0.
    // Group statistics use both rewards: adv = [a, -a]. Only s0 has valid tokens, with ratio 1 and kl 0:
    //   grpo: per-token -(surr) = -a; seq-mean over the one non-empty sequence → loss -a; grad -a/2 per token
    //   dapo: l = max(-a·r, -a·clip(r)) = -a (a tie at r = 1: ½ + ½ of -a); token-mean of 2 → loss -a, grad -a/2
    //   gspo: log s = 0, st = 1, l = -a (tie), loss -a; dst/dlogp = st = 1 → grad -a/2 per token
    const b = batch({
      seqs: [
        { logp: [-1, -2], old: [-1, -2], ref: [-1, -2], reward: 1, group: 0 },
        { logp: [-3, -4], mask: [0, 0], old: [1000, -1000], ref: [1000, -1000], reward: 0, group: 0 },
      ],
    });
    const out = runObj(name, b);
    expectClose(out.loss, -a, 1e-14, 'loss');
    expectArray(out.grads.logp.data, [-a / 2, -a / 2, 0, 0], 1e-14, 'grad');
    for (const k of METRICS[name]) expectClose(out.metrics[k], 0, 0, k);
  });

  it('on a group of one sequence: advantage 0', () => {
    // adv = (0.7 − 0.7) / (0 + 1e-6) = 0, so every surrogate is 0.
    // grpo keeps its KL term: t0 k = ref − logp = ln 2 → k3 = e^k − k − 1 = 1 − ln 2, dk3/dlogp = −(e^k − 1) = −1;
    //   t1 k = 0 → 0. loss = beta·(1 − ln 2)/2 (one sequence, token mean of 2); grad t0 = beta·(−1)/2 = −0.02, t1 = 0;
    //   metric kl = (1 − ln 2)/2.
    const b = batch({
      seqs: [{ logp: [-1, -0.5], old: [-1.2, -0.5], ref: [-1 + Math.LN2, -0.5], reward: 0.7, group: 0 }],
    });
    const out = runObj(name, b);
    if (name === 'grpo') {
      expectClose(out.loss, (0.04 * (1 - Math.LN2)) / 2, 1e-14, 'loss');
      expectArray(out.grads.logp.data, [-0.02, 0], 1e-14, 'grad');
      expectClose(out.metrics.kl, (1 - Math.LN2) / 2, 1e-14, 'kl');
      expectClose(out.metrics.clip_frac, 0, 0, 'clip_frac');
    } else {
      expectClose(out.loss, 0, 0, 'loss');
      expectArray(out.grads.logp.data, [0, 0], 0, 'grad');
      for (const k of METRICS[name]) expectClose(out.metrics[k], 0, 0, k);
    }
  });

  it('with all-equal rewards in every group: advantages 0, so loss 0 and gradient 0 (ref = logp)', () => {
    // off-policy ratios (exp(±0.3), exp(2)), but adv = 0 everywhere; ref_logp = logp so grpo's KL is 0 too.
    const b = batch({
      seqs: [
        { logp: [-1, -2], old: [-1.3, -1.7], ref: [-1, -2], reward: 1, group: 0 },
        { logp: [-0.5], old: [-2.5], ref: [-0.5], reward: 1, group: 0 },
        { logp: [-3], old: [-3], ref: [-3], reward: 0.25, group: 1 },
        { logp: [], reward: 0.25, group: 1 },
        { logp: [-1, -1], mask: [1, 0], old: [-1, 500], ref: [-1, 500], reward: 0.25, group: 1 },
      ],
    });
    const out = runObj(name, b);
    expectClose(out.loss, 0, 0, 'loss');
    expectArray(out.grads.logp.data, Array(b.logp.length).fill(0), 0, 'grad');
    for (const k of METRICS[name]) expectClose(out.metrics[k], 0, 0, k);
  });

  it.each([50, 1000])('with single-token log-ratios of ±%d: clipped, finite, zero gradient', (d) => {
    // g0: s0 logp −1, old −1 − d (log-ratio +d), reward 1 → adv a; s1 logp −60, old −60 + d (−d), reward 0 → adv −a.
    // grpo/dapo clamp the log-ratio to ±20: r0 = e^20, r1 = e^−20; the clips saturate, so no gradient flows.
    //   grpo: surr0 = min(a·e^20, 1.2a) = 1.2a; surr1 = min(−a·e^−20, −0.8a) = −0.8a; KL 0 (ref = logp)
    //         loss = (−1.2a + 0.8a)/2 = −0.2a; clip_frac = 1 (both clipped); kl 0
    //   dapo: l0 = max(−a·e^20, −1.28a) = −1.28a; l1 = max(a·e^−20, 0.8a) = 0.8a, min with l3 = 10a → 0.8a
    //         loss = (−1.28a + 0.8a)/2 = −0.24a; clip_frac = 1; dual_clip_frac 0
    //   gspo: log s0 = d → min(d, 10) = 10, st0 = e^10: l0 = max(−a·e^10, −1.0004a) = −1.0004a;
    //         log s1 = −d, st1 = e^−d: l1 = max(a·e^−d, 0.9997a) = 0.9997a; loss = (−1.0004a + 0.9997a)/2 = −0.00035a
    //         clip_frac = 1
    const b = batch({
      seqs: [
        { logp: [-1], old: [-1 - d], ref: [-1], reward: 1, group: 0 },
        { logp: [-60], old: [-60 + d], ref: [-60], reward: 0, group: 0 },
      ],
    });
    const out = runObj(name, b);
    const want = { grpo: -0.2 * a, dapo: -0.24 * a, gspo: -0.00035 * a }[name];
    expectClose(out.loss, want, 1e-12, 'loss');
    expectArray(out.grads.logp.data, [0, 0], 0, 'grad');
    expectClose(out.metrics.clip_frac, 1, 0, 'clip_frac');
    if (name === 'grpo') expectClose(out.metrics.kl, 0, 0, 'kl');
    if (name === 'dapo') expectClose(out.metrics.dual_clip_frac, 0, 0, 'dual_clip_frac');
  });

  it.each([50, 1000])('with log-ratios +%d and −d in one sequence next to an on-policy one', (d) => {
    // g0: s0 tokens logp [−1, −60], old [−1 − d, −60 + d] (log-ratios +d, −d), reward 1 → adv a;
    //     s1 token logp −2 = old, reward 0 → adv −a. ref = logp (KL 0).
    //   grpo: s0: surr = min(a·e^20, 1.2a) = 1.2a, min(a·e^−20, 0.8a) = a·e^−20 (clip of the log-ratio saturated → no grad)
    //         s1: r = 1, surr = min(−a, −a) = −a (tie: ½ + ½ → d surr/dlogp = −a)
    //         loss = (−(1.2a + a·e^−20)/2 + a)/2; grad s1 = −(−a)/1/2 = a/2; clip_frac = 1/3 (only s0 t0)
    //   dapo: s0 t0 l = −1.28a; t1 l = max(−a·e^−20, −0.8a) = −a·e^−20 (saturated log-ratio clip → no grad);
    //         s1 l = a (tie), min with l3 = 10a → a, grad a; token mean of 3: loss = (−1.28a − a·e^−20 + a)/3, grad s1 = a/3;
    //         clip_frac = 1/3 (t0: −1.28a > −a·e^20); dual_clip_frac 0
    //   gspo: log s0 = (d − d)/2 = 0 → st = 1 at both tokens (unclipped tie) → l = −a, dl/dlogp_t = −a·st = −a;
    //         s1: st = 1, l = a, dl/dlogp = a. loss = (−a + a)/2 = 0; grad s0 = −a/2/2 = −a/4, s1 = a/2; clip_frac 0
    const b = batch({
      seqs: [
        { logp: [-1, -60], old: [-1 - d, -60 + d], ref: [-1, -60], reward: 1, group: 0 },
        { logp: [-2], old: [-2], ref: [-2], reward: 0, group: 0 },
      ],
    });
    const out = runObj(name, b);
    const e20 = Math.exp(-20);
    if (name === 'grpo') {
      expectClose(out.loss, (-(1.2 * a + a * e20) / 2 + a) / 2, 1e-12, 'loss');
      expectArray(out.grads.logp.data, [0, 0, a / 2], 1e-12, 'grad');
      expectClose(out.metrics.clip_frac, 1 / 3, 1e-15, 'clip_frac');
      expectClose(out.metrics.kl, 0, 0, 'kl');
    } else if (name === 'dapo') {
      expectClose(out.loss, (-1.28 * a - a * e20 + a) / 3, 1e-12, 'loss');
      expectArray(out.grads.logp.data, [0, 0, a / 3], 1e-12, 'grad');
      expectClose(out.metrics.clip_frac, 1 / 3, 1e-15, 'clip_frac');
      expectClose(out.metrics.dual_clip_frac, 0, 0, 'dual_clip_frac');
    } else {
      expectClose(out.loss, 0, 1e-12, 'loss');
      expectArray(out.grads.logp.data, [-a / 4, -a / 4, a / 2], 1e-12, 'grad');
      expectClose(out.metrics.clip_frac, 0, 0, 'clip_frac');
    }
  });
});

describe('dapo with overlong shaping on edge lengths', () => {
  it('a length-0 sequence and a fully masked one get the full length bonus region (no NaN from max_len arithmetic)', () => {
    // overlong_buffer 2, max_len 3, penalty 1: overlong_i = min(−(L_i − 1)/2, 0):
    //   s0 L 3 → −1; s1 L 0 → min(0.5, 0) = 0; s2 (fully masked) L 0 → 0.
    //   shaped = reward + overlong = [1 − 1, 0 + 0, 0 + 0] = [0, 0, 0] → all advantages 0 → loss 0, grad 0.
    const b = batch({
      seqs: [
        { logp: [-1, -1, -1], old: [-1.5, -1, -0.5], reward: 1, group: 0 },
        { logp: [], reward: 0, group: 0 },
        { logp: [-2], mask: [0], old: [9], reward: 0, group: 0 },
      ],
    });
    const out = runObj('dapo', b, { overlong_buffer: 2, max_len: 3 });
    expectClose(out.loss, 0, 0, 'loss');
    expectArray(out.grads.logp.data, [0, 0, 0, 0], 0, 'grad');
  });
});

/**
 * Tests of the hand-written reference losses (grpo.ts, dapo.ts, gspo.ts).
 *
 * 1. Finite differences: each reference's analytic grad_logp is compared with central finite
 *    differences of its own loss, h = 1e-6, |analytic - fd| <= 1e-6 + 1e-5 |fd|. Components
 *    with a kink (a branch change of any min/max/clip) within 10h are skipped (see fd.ts).
 * 2. Hand-computed tiny cases (derivations in the comments).
 * 3. Edge cases: fully masked sequence, length-0 sequence, group of one, all-equal rewards,
 *    fully masked batch, empty batch.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arbRefBatch, uniformDouble } from './arbitrary.js';
import { type RefBatch, type RefResult, groupAdvantages, seqLengths } from './batch.js';
import { dapoRef, dapoShapedRewards } from './dapo.js';
import { checkGradFD } from './fd.js';
import { grpoRef } from './grpo.js';
import { gspoRef } from './gspo.js';
import { clipG, maxG, minG } from './ops.js';

type RefFn = (b: RefBatch) => RefResult;

const REFS: [string, RefFn][] = [
  ['grpo', (b) => grpoRef(b)],
  ['dapo', (b) => dapoRef(b)],
  ['gspo', (b) => gspoRef(b)],
];

/** a = 0.5 / (sqrt(0.5) + 1e-6): |A| of both members of a group with rewards {1, 0}. */
const a = 0.5 / (Math.sqrt(0.5) + 1e-6);

function expectArrayClose(actual: number[], expected: number[], digits = 12): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    expect(actual[i], `index ${i}`).toBeCloseTo(expected[i]!, digits);
  }
}

/** Builds a batch from per-sequence token lists. */
function makeBatch(
  seqs: { logp: number[]; old?: number[]; ref?: number[]; mask?: number[]; reward: number; group: number }[],
  numGroups: number,
): RefBatch {
  const b: RefBatch = {
    offsets: [0],
    groupOf: [],
    numGroups,
    mask: [],
    logp: [],
    old_logp: [],
    ref_logp: [],
    reward: [],
  };
  for (const s of seqs) {
    s.logp.forEach((lp, i) => {
      b.logp.push(lp);
      b.old_logp.push(s.old ? s.old[i]! : lp);
      b.ref_logp.push(s.ref ? s.ref[i]! : lp);
      b.mask.push(s.mask ? s.mask[i]! : 1);
    });
    b.offsets.push(b.offsets[b.offsets.length - 1]! + s.logp.length);
    b.groupOf.push(s.group);
    b.reward.push(s.reward);
  }
  return b;
}

// ------------------------------------------------------------------------------------------
describe('ops tie / boundary conventions', () => {
  it('min/max split ties 1/2 each, clip passes on the closed interval', () => {
    expect(minG(1, 2)).toEqual({ v: 1, da: 1, db: 0 });
    expect(minG(3, 2)).toEqual({ v: 2, da: 0, db: 1 });
    expect(minG(2, 2)).toEqual({ v: 2, da: 0.5, db: 0.5 });
    expect(maxG(1, 2)).toEqual({ v: 2, da: 0, db: 1 });
    expect(maxG(3, 2)).toEqual({ v: 3, da: 1, db: 0 });
    expect(maxG(2, 2)).toEqual({ v: 2, da: 0.5, db: 0.5 });
    expect(clipG(0.8, 0.8, 1.2)).toEqual({ v: 0.8, dx: 1 });
    expect(clipG(1.2, 0.8, 1.2)).toEqual({ v: 1.2, dx: 1 });
    expect(clipG(1.0, 0.8, 1.2)).toEqual({ v: 1.0, dx: 1 });
    expect(clipG(0.7, 0.8, 1.2)).toEqual({ v: 0.8, dx: 0 });
    expect(clipG(1.3, 0.8, 1.2)).toEqual({ v: 1.2, dx: 0 });
  });
});

// ------------------------------------------------------------------------------------------
describe('group advantages', () => {
  it('unbiased std, single-member group gets A = 0, non-contiguous groups', () => {
    // groups: g0 = seqs {0, 2} rewards {1, 0}; g1 = seqs {1, 3, 4} rewards {0, 1, 1}; g2 = seq {5}
    const b = makeBatch(
      [
        { logp: [-1], reward: 1, group: 0 },
        { logp: [-1], reward: 0, group: 1 },
        { logp: [], reward: 0, group: 0 },
        { logp: [-1], reward: 1, group: 1 },
        { logp: [-1], mask: [0], reward: 1, group: 1 },
        { logp: [-1], reward: 0.7, group: 2 },
      ],
      3,
    );
    const A = groupAdvantages(b, b.reward, 1e-6);
    // g1: mean 2/3, unbiased var = ((2/3)^2 + 2 (1/3)^2) / 2 = 1/3
    const s1 = Math.sqrt(1 / 3) + 1e-6;
    expectArrayClose(A, [a, -(2 / 3) / s1, -a, 1 / 3 / s1, 1 / 3 / s1, 0]);
  });
});

// ------------------------------------------------------------------------------------------
describe('finite-difference check of the analytic gradients', () => {
  const cases: [string, RefFn, Parameters<typeof arbRefBatch>[0]][] = [
    ['grpo', (b) => grpoRef(b), {}],
    ['grpo (eps 0.1/0.3, beta 0.5)', (b) => grpoRef(b, { eps_low: 0.1, eps_high: 0.3, beta: 0.5 }), {}],
    ['grpo on-policy', (b) => grpoRef(b), { onPolicy: true }],
    ['dapo', (b) => dapoRef(b), {}],
    [
      'dapo (clip_c 3, overlong shaping)',
      (b) => dapoRef(b, { clip_c: 3, overlong_buffer: 3, max_len: 6, overlong_penalty: 0.7 }),
      {},
    ],
    ['dapo on-policy', (b) => dapoRef(b), { onPolicy: true }],
    ['gspo', (b) => gspoRef(b), {}],
    ['gspo (eps 0.2)', (b) => gspoRef(b, { eps_low: 0.2, eps_high: 0.2 }), {}],
    ['gspo small log-ratios', (b) => gspoRef(b, { eps_low: 0.05, eps_high: 0.05 }), { largeNoise: 0.3 }],
    ['gspo on-policy', (b) => gspoRef(b), { onPolicy: true }],
  ];
  for (const [name, fn, opts] of cases) {
    it(name, () => {
      let checked = 0;
      let skipped = 0;
      fc.assert(
        fc.property(arbRefBatch(opts), (b) => {
          const rep = checkGradFD(fn, b);
          checked += rep.checked;
          skipped += rep.skipped;
          expect(rep.failures).toEqual([]);
        }),
        { numRuns: 150, seed: 20240611 },
      );
      // the check must not be vacuous: nearly all components are away from kinks
      if (process.env.REF_FD_STATS) console.log(`${name}: checked ${checked}, skipped ${skipped}`);
      expect(checked).toBeGreaterThan(1000);
      expect(skipped).toBeLessThan(0.02 * (checked + skipped));
    });
  }
});

// ------------------------------------------------------------------------------------------
describe('properties', () => {
  it('masked tokens: zero gradient and no influence on loss/metrics', () => {
    fc.assert(
      fc.property(arbRefBatch(), uniformDouble(-30, 30), (b, shift) => {
        const moved: RefBatch = {
          ...b,
          logp: b.logp.map((v, t) => (b.mask[t] === 0 ? v + shift : v)),
          old_logp: b.old_logp.map((v, t) => (b.mask[t] === 0 ? v - shift : v)),
          ref_logp: b.ref_logp.map((v, t) => (b.mask[t] === 0 ? v + 2 * shift : v)),
        };
        for (const [, fn] of REFS) {
          const r = fn(b);
          const r2 = fn(moved);
          expect(r2).toEqual(r);
          expect(r.grad_logp.length).toBe(b.logp.length);
          expect(Number.isFinite(r.loss)).toBe(true);
          b.mask.forEach((m, t) => {
            if (m === 0) expect(r.grad_logp[t]).toBe(0);
            expect(Number.isFinite(r.grad_logp[t]!)).toBe(true);
          });
          for (const [k, v] of Object.entries(r.metrics)) {
            if (k === 'kl') {
              // k3 >= 0 mathematically; exp(k) - k - 1 may round to -1e-16 for tiny k
              expect(v).toBeGreaterThanOrEqual(-1e-15);
              expect(v).toBeLessThanOrEqual(10);
            } else {
              expect(v).toBeGreaterThanOrEqual(0);
              expect(v).toBeLessThanOrEqual(1);
            }
          }
        }
      }),
      { numRuns: 200, seed: 7 },
    );
  });

  it('relabelling groups does not change anything', () => {
    fc.assert(
      fc.property(arbRefBatch({ minGroups: 1 }), fc.nat(), (b, k) => {
        const G = b.numGroups;
        const relabelled: RefBatch = { ...b, groupOf: b.groupOf.map((g) => (g + k) % G) };
        for (const [, fn] of REFS) expect(fn(relabelled)).toEqual(fn(b));
      }),
      { numRuns: 100, seed: 8 },
    );
  });

  it('on-policy (logp = old_logp) reduces to REINFORCE with the right aggregation (§B.1)', () => {
    fc.assert(
      fc.property(arbRefBatch({ onPolicy: true }), (b) => {
        const L = seqLengths(b);
        const A = groupAdvantages(b, b.reward, 1e-6);
        const Bp = L.filter((l) => l > 0).length;
        const N = L.reduce((x, y) => x + y, 0);
        const grpo = grpoRef(b, { beta: 0 });
        const dapo = dapoRef(b);
        const gspo = gspoRef(b);
        for (let s = 0; s < L.length; s++) {
          for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
            const valid = b.mask[t] === 1;
            expect(grpo.grad_logp[t]).toBeCloseTo(valid ? -A[s]! / (Bp * L[s]!) : 0, 12);
            expect(dapo.grad_logp[t]).toBeCloseTo(valid ? -A[s]! / N : 0, 12);
            expect(gspo.grad_logp[t]).toBeCloseTo(valid ? -A[s]! / (Bp * L[s]!) : 0, 12);
          }
        }
        expect(grpo.metrics.clip_frac).toBe(0);
        expect(dapo.metrics.clip_frac).toBe(0);
        expect(dapo.metrics.dual_clip_frac).toBe(0);
        expect(gspo.metrics.clip_frac).toBe(0);
      }),
      { numRuns: 200, seed: 9 },
    );
  });

  it('gspo with single-token sequences equals token-level PPO clip without dual-clip', () => {
    // L_i = 1 -> s_i = r_t (no 20-clamp needed for |d| <= 3.5); compare with dapo at clip_c = inf
    fc.assert(
      fc.property(arbRefBatch({ maxLen: 1 }), (b) => {
        const ones: RefBatch = { ...b, mask: b.mask.map(() => 1) };
        const g = gspoRef(ones, { eps_low: 0.2, eps_high: 0.28 });
        const d = dapoRef(ones, { eps_low: 0.2, eps_high: 0.28, clip_c: Infinity });
        // all lengths are 0 or 1, so seq-mean-token-mean == token-mean (B' = N)
        expect(g.loss).toBeCloseTo(d.loss, 12);
        expectArrayClose(g.grad_logp, d.grad_logp, 12);
      }),
      { numRuns: 150, seed: 10 },
    );
  });
});

// ------------------------------------------------------------------------------------------
describe('grpo: hand-computed cases', () => {
  it('1 group, seqs of lengths 2 and 1, on-policy, ref = logp', () => {
    // R = (1, 0): mean 0.5, unbiased std sqrt(0.5) -> A = (+a, -a), a = 0.5/(sqrt(0.5)+1e-6).
    // r = 1 inside [0.8, 1.2]: surr = min(A, A) = A (tie: gradient 1/2*A + 1/2*A = A).
    // k = 0 -> kl = 0, dkl = (e^0 - 1) * (-1) = 0.
    // B' = 2: loss = -(1/2) [ (a + a)/2 + (-a)/1 ] = 0.
    // grad = -A_i / (B' L_i): seq0 tokens -a/4, seq1 token +a/2.
    const b = makeBatch(
      [
        { logp: [-1, -2], reward: 1, group: 0 },
        { logp: [-0.5], reward: 0, group: 0 },
      ],
      1,
    );
    const r = grpoRef(b);
    expect(a).toBeCloseTo(0.70710578118, 10);
    expect(r.loss).toBeCloseTo(0, 14);
    expectArrayClose(r.grad_logp, [-a / 4, -a / 4, a / 2]);
    expect(r.metrics).toEqual({ clip_frac: 0, kl: 0 });
  });

  it('off-policy clipped token and KL term', () => {
    // A = (+a, -a), both lengths 1, B' = 2.
    // token 0 (A = +a): r = 1.5 > 1.2 -> surr = min(1.5a, 1.2a) = 1.2a, dsurr = 0 (clipped; counts in clip_frac).
    //   k = ref - logp = 0.5: kl = e^0.5 - 1.5, dkl/dlogp = -(e^0.5 - 1).
    //   l0 = -1.2a + 0.04 kl,  dl0 = 0.04 * (-(e^0.5 - 1)).
    // token 1 (A = -a): r = 1.5 -> surr = min(-1.5a, -1.2a) = -1.5a, dsurr = A r = -1.5a; kl = 0.
    //   l1 = 1.5a, dl1 = 1.5a.
    // loss = (l0 + l1)/2, grad = (dl0/2, dl1/2), clip_frac = 1/2, kl = (e^0.5 - 1.5)/2.
    const ln15 = Math.log(1.5);
    const b = makeBatch(
      [
        { logp: [-1], old: [-1 - ln15], ref: [-0.5], reward: 1, group: 0 },
        { logp: [-2], old: [-2 - ln15], reward: 0, group: 0 },
      ],
      1,
    );
    const r = grpoRef(b);
    const kl0 = Math.exp(0.5) - 1.5;
    expect(r.loss).toBeCloseTo((-1.2 * a + 0.04 * kl0 + 1.5 * a) / 2, 12);
    expectArrayClose(r.grad_logp, [(0.04 * -(Math.exp(0.5) - 1)) / 2, (1.5 * a) / 2]);
    expect(r.metrics.clip_frac).toBe(0.5);
    expect(r.metrics.kl).toBeCloseTo(kl0 / 2, 14);
  });

  it('log-ratio clamp at 20 and KL clamp at 10 stop the gradient', () => {
    // token 0 (A = -a): logp - old = 25 -> d = 20, r = e^20, surr = min(-a e^20, -1.2a) = -a e^20 but dd = 0.
    //   ref - logp = 3 -> kl_raw = e^3 - 4 = 16.09 > 10 -> kl = 10, dkl = 0.
    //   l0 = a e^20 + 0.04 * 10, grad 0. token 1 (A = +a): on-policy, grad -a/2, l1 = -a.
    const b = makeBatch(
      [
        { logp: [-1], old: [-26], ref: [2], reward: 0, group: 0 },
        { logp: [-1], reward: 1, group: 0 },
      ],
      1,
    );
    const r = grpoRef(b);
    expect(r.loss / ((a * Math.exp(20) + 0.4 - a) / 2)).toBeCloseTo(1, 12);
    expectArrayClose(r.grad_logp, [0, -a / 2]);
    expect(r.metrics.kl).toBe(5);
    expect(r.metrics.clip_frac).toBe(0);
  });
});

describe('dapo: hand-computed cases', () => {
  it('clip-higher, dual-clip and token-mean', () => {
    // A = (+a, -a); N = 5 valid tokens; l3 = -A*10.
    // seq0 (A = +a): t0 r = 1.5: l1 = -1.5a, l2 = -1.28a -> lclip = l2, grad 0, clipped.
    //                t1 r = 0.5: l1 = -0.5a, l2 = -0.8a -> lclip = l1, grad -a*0.5/5.
    // seq1 (A = -a): t2 r = 1.5: l1 = 1.5a, l2 = 1.28a -> lclip = l1 < l3 = 10a, grad a*1.5/5.
    //                t3 r = 12:  lclip = l1 = 12a > l3 = 10a -> ldual = 10a, grad 0, dual-clipped.
    //                t4 r = 0.5: l1 = 0.5a, l2 = 0.8a -> lclip = l2, grad 0, clipped.
    // loss = (-1.28 - 0.5 + 1.5 + 10 + 0.8) a / 5 = 10.52a/5.
    const lr = (x: number) => Math.log(x);
    const b = makeBatch(
      [
        { logp: [-1, -2], old: [-1 - lr(1.5), -2 - lr(0.5)], reward: 1, group: 0 },
        { logp: [-1, -2, -3], old: [-1 - lr(1.5), -2 - lr(12), -3 - lr(0.5)], reward: 0, group: 0 },
      ],
      1,
    );
    const r = dapoRef(b);
    expect(r.loss).toBeCloseTo((10.52 * a) / 5, 12);
    expectArrayClose(r.grad_logp, [0, (-0.5 * a) / 5, (1.5 * a) / 5, 0, 0]);
    expect(r.metrics.clip_frac).toBeCloseTo(2 / 5, 14);
    expect(r.metrics.dual_clip_frac).toBeCloseTo(1 / 5, 14);
  });

  it('overlong reward shaping uses the valid-token length', () => {
    // max_len 5, buffer 2, penalty 1 -> no penalty up to L = 3, then -(L-3)/2.
    // L = (2 [3 tokens, one masked], 4, 5), R = (1, 1, 1) -> R' = (1, 0.5, 0).
    // mean 0.5, unbiased std 0.5 -> A = (c, 0, -c), c = 0.5/0.500001.
    // on-policy: loss = token-mean(-A) = -(2c - 5c)/11 = 3c/11, grad = -A_i/11.
    const p = { overlong_buffer: 2, max_len: 5, overlong_penalty: 1 };
    const b = makeBatch(
      [
        { logp: [-1, -1, -1], mask: [1, 0, 1], reward: 1, group: 0 },
        { logp: [-1, -1, -1, -1], reward: 1, group: 0 },
        { logp: [-1, -1, -1, -1, -1], reward: 1, group: 0 },
      ],
      1,
    );
    expectArrayClose(dapoShapedRewards(b, p), [1, 0.5, 0]);
    expectArrayClose(dapoShapedRewards(b), [1, 1, 1]); // buffer 0 -> no shaping
    const c = 0.5 / 0.500001;
    const r = dapoRef(b, p);
    expect(r.loss).toBeCloseTo((3 * c) / 11, 12);
    expectArrayClose(r.grad_logp, [-c / 11, 0, -c / 11, 0, 0, 0, 0, c / 11, c / 11, c / 11, c / 11, c / 11]);
    // without shaping all rewards are equal -> A = 0 -> loss 0
    expect(dapoRef(b).loss).toBe(0);
  });
});

describe('gspo: hand-computed cases', () => {
  it('sequence ratio, clipping and stop-gradient', () => {
    // A = (+a, -a), B' = 2.
    // seq0 (A = +a): d = (0.1, 0.3) -> log_s = 0.2, st = e^0.2 > 1.0004:
    //   l = max(-a e^0.2, -a*1.0004) = -1.0004a, grad 0, both tokens clipped.
    // seq1 (A = -a): d = (0.1, 0.3, -0.1) -> log_s = 0.1, st = e^0.1:
    //   l = max(a e^0.1, 1.0004a) = a e^0.1, dl/dlogp_t = -A st = a e^0.1, grad = a e^0.1 / (2*3).
    // loss = (1/2)(-1.0004a + a e^0.1); clip_frac = 2/5.
    const b = makeBatch(
      [
        { logp: [-1, -2], old: [-1.1, -2.3], reward: 1, group: 0 },
        { logp: [-1, -2, -3], old: [-1.1, -2.3, -2.9], reward: 0, group: 0 },
      ],
      1,
    );
    const r = gspoRef(b);
    const e1 = Math.exp(0.1);
    expect(r.loss).toBeCloseTo(0.5 * (-1.0004 * a + a * e1), 12);
    expectArrayClose(r.grad_logp, [0, 0, (a * e1) / 6, (a * e1) / 6, (a * e1) / 6]);
    expect(r.metrics.clip_frac).toBeCloseTo(2 / 5, 14);
  });

  it('log-ratio cap at 10', () => {
    // seq0 (A = -a): d = (12, 12) -> log_s = 12 > 10 -> st = e^10, l = a e^10, grad 0.
    // seq1 (A = +a): on-policy, L = 1, grad -a/2.
    const b = makeBatch(
      [
        { logp: [-1, -1], old: [-13, -13], reward: 0, group: 0 },
        { logp: [-1], reward: 1, group: 0 },
      ],
      1,
    );
    const r = gspoRef(b);
    expect(r.loss / ((a * Math.exp(10) - a) / 2)).toBeCloseTo(1, 12);
    expectArrayClose(r.grad_logp, [0, 0, -a / 2]);
    expect(r.metrics.clip_frac).toBe(0);
  });
});

// ------------------------------------------------------------------------------------------
describe('edge cases', () => {
  // group {seq0: R = 1, L = 2; seq1: R = 0, L = 0; seq2: R = 0, L = 1}, on-policy, ref = logp.
  // mean 1/3, unbiased std sqrt(((2/3)^2 + 2 (1/3)^2)/2) = sqrt(1/3);
  // A0 = (2/3)/q, A1 = A2 = -(1/3)/q, q = sqrt(1/3) + 1e-6. B' = 2, N = 3.
  // grpo/gspo: loss = -(A0 + A2)/2, grad seq0 = -A0/4, seq2 = -A2/2.
  // dapo: loss = -(2 A0 + A2)/3, grad = -A_i/3.
  const q = Math.sqrt(1 / 3) + 1e-6;
  const A0 = 2 / 3 / q;
  const A2 = -1 / 3 / q;
  const expectEmptySeqCase = (b: RefBatch, emptyTokens: number) => {
    const z = new Array<number>(emptyTokens).fill(0);
    for (const fn of [grpoRef, gspoRef]) {
      const r = fn(b);
      expect(r.loss).toBeCloseTo(-(A0 + A2) / 2, 12);
      expectArrayClose(r.grad_logp, [-A0 / 4, -A0 / 4, ...z, -A2 / 2]);
    }
    const d = dapoRef(b);
    expect(d.loss).toBeCloseTo(-(2 * A0 + A2) / 3, 12);
    expectArrayClose(d.grad_logp, [-A0 / 3, -A0 / 3, ...z, -A2 / 3]);
  };

  it("fully masked sequence: excluded from B' and N, still in the group statistics", () => {
    const b = makeBatch(
      [
        { logp: [-1, -2], reward: 1, group: 0 },
        { logp: [-1, -2], old: [-60, 40], ref: [30, -30], mask: [0, 0], reward: 0, group: 0 },
        { logp: [-0.5], reward: 0, group: 0 },
      ],
      1,
    );
    expectEmptySeqCase(b, 2);
  });

  it('length-0 sequence', () => {
    const b = makeBatch(
      [
        { logp: [-1, -2], reward: 1, group: 0 },
        { logp: [], reward: 0, group: 0 },
        { logp: [-0.5], reward: 0, group: 0 },
      ],
      1,
    );
    expect(b.offsets).toEqual([0, 2, 2, 3]);
    expectEmptySeqCase(b, 0);
  });

  it('group of one gets A = 0 (grpo: only the KL term remains for it)', () => {
    // g0 = {seq0 R=1, seq1 R=0} -> A = (+a, -a); g1 = {seq2 R=1} -> A = 0.
    // seq2 token: ref - logp = 0.5 -> kl = e^0.5 - 1.5, l = 0.04 kl, dl = -0.04 (e^0.5 - 1).
    // grpo: B' = 3, loss = (-a + a + 0.04 kl)/3; grads -a/3, a/3, dl/3.
    const b = makeBatch(
      [
        { logp: [-1], reward: 1, group: 0 },
        { logp: [-1], reward: 0, group: 0 },
        { logp: [-1], ref: [-0.5], old: [-1.3], reward: 1, group: 1 },
      ],
      2,
    );
    const kl = Math.exp(0.5) - 1.5;
    const g = grpoRef(b);
    expect(g.loss).toBeCloseTo((0.04 * kl) / 3, 12);
    expectArrayClose(g.grad_logp, [-a / 3, a / 3, (-0.04 * (Math.exp(0.5) - 1)) / 3]);
    expect(dapoRef(b).grad_logp[2]).toBe(-0);
    expect(gspoRef(b).grad_logp[2]).toBe(-0);
    expectArrayClose(dapoRef(b).grad_logp, [-a / 3, a / 3, 0]);
    expectArrayClose(gspoRef(b).grad_logp, [-a / 3, a / 3, 0]);
  });

  it('all-equal rewards: grpo loss is the KL term only, dapo/gspo are 0', () => {
    fc.assert(
      fc.property(arbRefBatch({ rewards: 'binary' }), fc.constantFrom(0, 1), (b0, R) => {
        const b: RefBatch = { ...b0, reward: b0.reward.map(() => R) };
        const L = seqLengths(b);
        const Bp = L.filter((l) => l > 0).length;
        // expected grpo: beta * seq-mean-token-mean(kl), gradient beta * dkl / (B' L_i)
        let loss = 0;
        const grad = new Array<number>(b.logp.length).fill(0);
        for (let s = 0; s < L.length; s++) {
          if (L[s] === 0) continue;
          let sum = 0;
          for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
            if (b.mask[t] !== 1) continue;
            const k = Math.min(Math.max(b.ref_logp[t]! - b.logp[t]!, -20), 20);
            const klRaw = Math.exp(k) - k - 1;
            sum += Math.min(klRaw, 10);
            grad[t] = klRaw > 10 ? 0 : (0.04 * -(Math.exp(k) - 1)) / (Bp * L[s]!);
          }
          loss += sum / L[s]!;
        }
        if (Bp > 0) loss = (0.04 * loss) / Bp;
        const g = grpoRef(b);
        expect(g.loss).toBeCloseTo(loss, 12);
        expectArrayClose(g.grad_logp, grad, 12);
        expect(g.metrics.clip_frac).toBe(0);
        for (const fn of [dapoRef, gspoRef]) {
          const r = fn(b);
          expect(r.loss === 0).toBe(true);
          expect(r.grad_logp.every((v) => v === 0)).toBe(true);
          expect(Object.values(r.metrics).every((v) => v === 0)).toBe(true);
        }
      }),
      { numRuns: 100, seed: 11 },
    );
  });

  it('fully masked batch: loss 0, grad 0, metrics 0', () => {
    const b = makeBatch(
      [
        { logp: [-1, -2], old: [-3, 0], ref: [-4, 1], mask: [0, 0], reward: 1, group: 0 },
        { logp: [-0.5], old: [-0.1], mask: [0], reward: 0, group: 0 },
        { logp: [], reward: 0.3, group: 1 },
      ],
      2,
    );
    for (const [name, fn] of REFS) {
      const r = fn(b);
      expect(r.loss, name).toBe(0);
      expect(r.grad_logp).toEqual([0, 0, 0]);
      expect(Object.values(r.metrics).every((v) => v === 0)).toBe(true);
    }
  });

  it('empty batch (no sequences)', () => {
    const b: RefBatch = {
      offsets: [0],
      groupOf: [],
      numGroups: 0,
      mask: [],
      logp: [],
      old_logp: [],
      ref_logp: [],
      reward: [],
    };
    for (const [, fn] of REFS) {
      const r = fn(b);
      expect(r.loss).toBe(0);
      expect(r.grad_logp).toEqual([]);
    }
  });

  it('malformed batches are rejected', () => {
    const ok = makeBatch([{ logp: [-1], reward: 1, group: 0 }], 1);
    expect(() => grpoRef({ ...ok, mask: [] })).toThrow();
    expect(() => grpoRef({ ...ok, groupOf: [1] })).toThrow();
    expect(() => grpoRef({ ...ok, offsets: [0, 2] })).toThrow();
    expect(() => grpoRef({ ...ok, mask: [0.5] })).toThrow();
  });
});

// ------------------------------------------------------------------------------------------
describe('the finite-difference checker itself', () => {
  const b = makeBatch(
    [
      { logp: [-1, -2], old: [-1.05, -1.9], ref: [-0.7, -2.4], reward: 1, group: 0 },
      { logp: [-0.5, -3, -1], old: [-0.45, -3.1, -1], ref: [-0.5, -2, -1.3], reward: 0, group: 0 },
    ],
    1,
  );

  it('detects a wrong gradient', () => {
    const scaled: RefFn = (x) => {
      const r = grpoRef(x);
      return { ...r, grad_logp: r.grad_logp.map((g) => g * 1.001) };
    };
    expect(checkGradFD(scaled, b).failures.length).toBe(5);
    // KL term dropped from the gradient but kept in the loss
    const noKlGrad: RefFn = (x) => ({ ...grpoRef(x, { beta: 0.5 }), grad_logp: grpoRef(x, { beta: 0 }).grad_logp });
    expect(checkGradFD(noKlGrad, b).failures.length).toBeGreaterThan(0);
    // and accepts the right one
    const rep = checkGradFD((x) => grpoRef(x), b);
    expect(rep).toEqual({ checked: 5, skipped: 0, failures: [] });
  });

  it('skips components sitting on a kink', () => {
    // gspo with eps = 0 on-policy: st = 1 = both clip bounds for every sequence
    const onPolicy: RefBatch = { ...b, old_logp: b.logp.slice() };
    const rep = checkGradFD((x) => gspoRef(x, { eps_low: 0, eps_high: 0 }), onPolicy);
    expect(rep.skipped).toBe(5);
    expect(rep.checked).toBe(0);
  });
});

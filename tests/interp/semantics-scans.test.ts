/**
 * Scans within a sequence (cumsum, rcumsum, cumprod, rcumprod, discounted, scan, rscan) and
 * next/prev on the hand-built batch A (tests/interp/fixtures.ts). Masked tokens are skipped: they
 * contribute nothing, apply no discount, and read the running value; every sequence starts afresh
 * (also after a length-0 or fully masked sequence).
 *
 * A, packed:  t   0  1*   2  3 |  4   5  6 |  7*  8* |  9  10     (* masked)
 *          logp   1  100  3  2 |  4  -1  4 |  50 -50 |  0   2
 *      old_logp  .5  7  .25  2 |  1   2  3 |  9   9  | -1  .5
 *          seq   s0            |  s2       |  s3     |  s4        (s1 has length 0)
 */
import { describe, it } from 'vitest';
import { A } from './fixtures.js';
import { expectArray, run } from './helpers.js';

function scans(exprs: Record<string, string>) {
  const body = ['loss = mean(logp)', ...Object.entries(exprs).map(([k, v]) => `export ${k} = ${v}`)].join('\n');
  const out = run(body, A);
  return Object.fromEntries(Object.keys(exprs).map((k) => [k, out.exports[k].data]));
}

describe('scans skip masked tokens and restart at each sequence', () => {
  it('cumsum and rcumsum', () => {
    const got = scans({ c: 'cumsum(logp)', r: 'rcumsum(logp)', cr: 'cumsum(reward)' });
    // cumsum:  s0: 1, (masked: 1), 1+3 = 4, 4+2 = 6 | s2: 4, 3, 7 | s3: 0, 0 | s4: 0, 2
    expectArray(got.c, [1, 1, 4, 6, 4, 3, 7, 0, 0, 0, 2], 0, 'cumsum');
    // rcumsum: s0 from the end: t3 2, t2 5, (t1 masked: 5), t0 6 | s2: t6 4, t5 3, t4 7 | s3: 0, 0 | s4: t10 2, t9 2
    expectArray(got.r, [6, 5, 5, 2, 7, 3, 4, 0, 0, 2, 2], 0, 'rcumsum');
    // a seq value broadcast to the tokens: s0 reward 1 → 1, (1), 2, 3 | s2 reward 3 → 3, 6, 9 | s3 → 0, 0 | s4 reward 5 → 5, 10
    expectArray(got.cr, [1, 1, 2, 3, 3, 6, 9, 0, 0, 5, 10], 0, 'cumsum(reward)');
  });

  it('cumprod and rcumprod (masked tokens read the running value, which starts at 1)', () => {
    const got = scans({ c: 'cumprod(logp)', r: 'rcumprod(logp)' });
    // cumprod:  s0: 1, (1), 1·3 = 3, 3·2 = 6 | s2: 4, -4, -16 | s3 (all masked): 1, 1 | s4: 0, 0
    expectArray(got.c, [1, 1, 3, 6, 4, -4, -16, 1, 1, 0, 0], 0, 'cumprod');
    // rcumprod: s0: t3 2, t2 6, (t1: 6), t0 6 | s2: t6 4, t5 -4, t4 -16 | s3: 1, 1 | s4: t10 2, t9 0
    expectArray(got.r, [6, 6, 6, 2, -16, -4, 4, 1, 1, 0, 2], 0, 'rcumprod');
  });

  it('discounted / rscan: y_t = x_t + γ_t·y_{t+1}, no discount applied at a masked token', () => {
    const got = scans({ d: 'discounted(logp, 0.5)', rs: 'rscan(logp, 0.5)', dg: 'discounted(logp, old_logp)' });
    // γ = 0.5: s0: y3 = 2, y2 = 3 + 0.5·2 = 4, (t1: 4), y0 = 1 + 0.5·4 = 3   [a discount at t1 would give 1 + 0.25·4 = 2]
    //          s2: y6 = 4, y5 = -1 + 2 = 1, y4 = 4 + 0.5 = 4.5 | s3: 0, 0 | s4: y10 = 2, y9 = 0 + 1 = 1
    const want = [3, 4, 4, 2, 4.5, 1, 4, 0, 0, 1, 2];
    expectArray(got.d, want, 0, 'discounted');
    expectArray(got.rs, want, 0, 'rscan');
    // γ_t = old_logp (the masked t1 has γ = 7, never used):
    //   s0: y3 = 2, y2 = 3 + 0.25·2 = 3.5, (t1: 3.5), y0 = 1 + 0.5·3.5 = 2.75
    //   s2: y6 = 4, y5 = -1 + 2·4 = 7, y4 = 4 + 1·7 = 11 | s3: 0, 0 | s4: y10 = 2, y9 = 0 + (-1)·2 = -2
    expectArray(got.dg, [2.75, 3.5, 3.5, 2, 11, 7, 4, 0, 0, -2, 2], 0, 'discounted(logp, old_logp)');
  });

  it('scan: y_t = x_t + c_t·y_{t-1}', () => {
    const got = scans({ s: 'scan(logp, 0.5)', sg: 'scan(logp, old_logp)' });
    // c = 0.5: s0: 1, (1), 3 + 0.5 = 3.5, 2 + 1.75 = 3.75 | s2: 4, -1 + 2 = 1, 4 + 0.5 = 4.5 | s3: 0, 0 | s4: 0, 2
    expectArray(got.s, [1, 1, 3.5, 3.75, 4, 1, 4.5, 0, 0, 0, 2], 0, 'scan');
    // c = old_logp: s0: y0 = 1 + 0.5·0 = 1, (1), y2 = 3 + 0.25·1 = 3.25, y3 = 2 + 2·3.25 = 8.5
    //   s2: y4 = 4 + 1·0 = 4, y5 = -1 + 2·4 = 7, y6 = 4 + 3·7 = 25 | s3: 0, 0 | s4: y9 = 0 + (-1)·0 = 0, y10 = 2 + 0.5·0 = 2
    expectArray(got.sg, [1, 1, 3.25, 8.5, 4, 7, 25, 0, 0, 0, 2], 0, 'scan(logp, old_logp)');
  });
});

describe('next / prev', () => {
  it('read the next / previous valid token of the same sequence, the fill value at the boundary', () => {
    const got = scans({ n: 'next(logp, -9)', p: 'prev(logp, -9)', nb: 'next(logp > 1.5, 0)', pz: 'prev(logp, 0)' });
    // next: s0: t0 → t2 (3), t1 (masked) → t2 (3), t2 → t3 (2), t3 → fill | s2: -1, 4, fill | s3: fill, fill | s4: 2, fill
    expectArray(got.n, [3, 3, 2, -9, -1, 4, -9, -9, -9, 2, -9], 0, 'next');
    // prev: s0: t0 → fill, t1 → t0 (1), t2 → t0 (1), t3 → t2 (3) | s2: fill, 4, -1 | s3: fill, fill | s4: fill, 0
    expectArray(got.p, [-9, 1, 1, 3, -9, 4, -1, -9, -9, -9, 0], 0, 'prev');
    expectArray(got.pz, [0, 1, 1, 3, 0, 4, -1, 0, 0, 0, 0], 0, 'prev fill 0');
    // next of a bool (logp > 1.5), fill 0: s0: t0 → (3 > 1.5) 1, t1 → 1, t2 → (2 > 1.5) 1, t3 → 0
    //   s2: t4 → (-1) 0, t5 → (4) 1, t6 → 0 | s3: 0, 0 | s4: t9 → (2) 1, t10 → 0
    expectArray(got.nb, [1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0], 0, 'next of a bool');
  });
});

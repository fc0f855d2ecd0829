/**
 * Order statistics on the hand-built batch A (tests/interp/fixtures.ts): quantile with each
 * interpolation (linear = torch.quantile default; lower; higher; nearest with round half to even;
 * midpoint) per seq / group / batch and with `where`; rank (0 = largest, ties by position, +inf for
 * masked and filtered-out elements) and top_k.
 *
 * Valid values, sorted: s0 [1, 2, 3]; s2 [-1, 4, 4]; s4 [0, 2]; s1, s3 empty;
 * g0 [-1, 1, 2, 3, 4, 4]; g1 [0, 2]; batch [-1, 0, 1, 2, 2, 3, 4, 4].
 * Position in the sorted list: pos = q·(n − 1), lo = ⌊pos⌋, hi = ⌈pos⌉, frac = pos − lo.
 */
import { describe, expect, it } from 'vitest';
import { A } from './fixtures.js';
import { expectArray, run } from './helpers.js';

type Method = 'quantile' | 'quantile_lower' | 'quantile_higher' | 'quantile_nearest' | 'quantile_midpoint';
const METHODS: Method[] = ['quantile', 'quantile_lower', 'quantile_higher', 'quantile_nearest', 'quantile_midpoint'];

function quantiles(q: number, per: string, where = '') {
  const tail = `${per ? ` per ${per}` : ''}${where ? ` where ${where}` : ''}`;
  const body = ['loss = mean(logp)', ...METHODS.map((m) => `export ${m} = ${m}(logp, ${q}${tail})`)].join('\n');
  const out = run(body, A);
  return Object.fromEntries(METHODS.map((m) => [m, out.exports[m].data])) as Record<Method, Float64Array>;
}

function check(got: Record<Method, Float64Array>, want: Record<Method, number[]>, what: string) {
  for (const m of METHODS) expectArray(got[m], want[m], 1e-12, `${what} ${m}`);
}

describe('quantile per seq', () => {
  it('q = 0.4: frac ≠ ½ separates linear from midpoint', () => {
    // s0: pos 0.8 between 1 and 2; s2: pos 0.8 between -1 and 4; s4: pos 0.4 between 0 and 2.
    // linear: s0 1 + 0.8·1 = 1.8; s2 -1 + 0.8·5 = 3; s4 0 + 0.4·2 = 0.8
    // nearest: round(0.8) = 1 → s0 2, s2 4; round(0.4) = 0 → s4 0
    check(
      quantiles(0.4, 'seq'),
      {
        quantile: [1.8, 0, 3, 0, 0.8],
        quantile_lower: [1, 0, -1, 0, 0],
        quantile_higher: [2, 0, 4, 0, 2],
        quantile_nearest: [2, 0, 4, 0, 0],
        quantile_midpoint: [1.5, 0, 1.5, 0, 1],
      },
      'q=0.4 per seq',
    );
  });

  it('q = 0.75: nearest rounds pos 1.5 half to even (up to index 2)', () => {
    // s0: pos 1.5 between 2 and 3 (lo = 1 odd → nearest takes hi = 2: value 3); s2: pos 1.5 between 4 and 4;
    // s4: pos 0.75 between 0 and 2: linear 1.5, nearest round(0.75) = 1 → 2.
    check(
      quantiles(0.75, 'seq'),
      {
        quantile: [2.5, 0, 4, 0, 1.5],
        quantile_lower: [2, 0, 4, 0, 0],
        quantile_higher: [3, 0, 4, 0, 2],
        quantile_nearest: [3, 0, 4, 0, 2],
        quantile_midpoint: [2.5, 0, 4, 0, 1],
      },
      'q=0.75 per seq',
    );
  });

  it('q = 0.25: nearest rounds pos 0.5 half to even (down to index 0)', () => {
    // s0: pos 0.5 between 1 and 2 (lo = 0 even → 1); s2: between -1 and 4 (→ -1); s4: pos 0.25 → round 0 → 0.
    check(
      quantiles(0.25, 'seq'),
      {
        quantile: [1.5, 0, 1.5, 0, 0.5],
        quantile_lower: [1, 0, -1, 0, 0],
        quantile_higher: [2, 0, 4, 0, 2],
        quantile_nearest: [1, 0, -1, 0, 0],
        quantile_midpoint: [1.5, 0, 1.5, 0, 1],
      },
      'q=0.25 per seq',
    );
  });

  it('q = 0 is the minimum, q = 1 the maximum; q outside [0, 1] is clamped', () => {
    const lo = [1, 0, -1, 0, 0];
    const hi = [3, 0, 4, 0, 2];
    for (const [q, want] of [
      [0, lo],
      [-0.5, lo],
      [1, hi],
      [1.5, hi],
    ] as const) {
      const got = quantiles(q, 'seq');
      for (const m of METHODS) expectArray(got[m], [...want], 0, `q=${q} ${m}`);
    }
  });
});

describe('quantile per group and per batch', () => {
  it('per group, q = 0.25 and q = 0.5', () => {
    // g0 (n 6): q 0.25 → pos 1.25 between 1 and 2: linear 1.25, nearest round(1.25) = 1 → 1
    // g1 (n 2): q 0.25 → pos 0.25 between 0 and 2: linear 0.5, nearest 0
    check(
      quantiles(0.25, 'group'),
      {
        quantile: [1.25, 0.5],
        quantile_lower: [1, 0],
        quantile_higher: [2, 2],
        quantile_nearest: [1, 0],
        quantile_midpoint: [1.5, 1],
      },
      'q=0.25 per group',
    );
    // g0: q 0.5 → pos 2.5 between 2 and 3 (lo = 2 even → nearest 2); g1: pos 0.5 between 0 and 2 (lo = 0 even → 0)
    check(
      quantiles(0.5, 'group'),
      {
        quantile: [2.5, 1],
        quantile_lower: [2, 0],
        quantile_higher: [3, 2],
        quantile_nearest: [2, 0],
        quantile_midpoint: [2.5, 1],
      },
      'q=0.5 per group',
    );
  });

  it('per batch, q = 0.25 and q = 0.75', () => {
    // batch (n 8): q 0.25 → pos 1.75 between 0 and 1: linear 0.75, nearest round(1.75) = 2 → 1
    check(
      quantiles(0.25, ''),
      {
        quantile: [0.75],
        quantile_lower: [0],
        quantile_higher: [1],
        quantile_nearest: [1],
        quantile_midpoint: [0.5],
      },
      'q=0.25 per batch',
    );
    // q 0.75 → pos 5.25 between 3 and 4: linear 3.25, nearest round(5.25) = 5 → 3
    check(
      quantiles(0.75, ''),
      {
        quantile: [3.25],
        quantile_lower: [3],
        quantile_higher: [4],
        quantile_nearest: [3],
        quantile_midpoint: [3.5],
      },
      'q=0.75 per batch',
    );
  });

  it('with `where` (the masked -50 would pass the filter)', () => {
    // logp < 3.5 selects s0 [1, 3, 2], s2 [-1], s4 [0, 2]; the masked -50 (s3) would pass but is masked.
    // per seq q 0.5: s0 sorted [1,2,3] pos 1 → 2; s2 → -1; s4 pos 0.5 between 0 and 2 (lo 0 even → nearest 0)
    check(
      quantiles(0.5, 'seq', 'logp < 3.5'),
      {
        quantile: [2, 0, -1, 0, 1],
        quantile_lower: [2, 0, -1, 0, 0],
        quantile_higher: [2, 0, -1, 0, 2],
        quantile_nearest: [2, 0, -1, 0, 0],
        quantile_midpoint: [2, 0, -1, 0, 1],
      },
      'per seq where',
    );
    // per group q 0.5: g0 [-1, 1, 2, 3] pos 1.5 between 1 and 2 (lo 1 odd → nearest 2); g1 [0, 2] as above
    check(
      quantiles(0.5, 'group', 'logp < 3.5'),
      {
        quantile: [1.5, 1],
        quantile_lower: [1, 0],
        quantile_higher: [2, 2],
        quantile_nearest: [2, 0],
        quantile_midpoint: [1.5, 1],
      },
      'per group where',
    );
    // per batch q 0.5: [-1, 0, 1, 2, 2, 3] pos 2.5 between 1 and 2 (lo 2 even → nearest 1)
    check(
      quantiles(0.5, '', 'logp < 3.5'),
      {
        quantile: [1.5],
        quantile_lower: [1],
        quantile_higher: [2],
        quantile_nearest: [1],
        quantile_midpoint: [1.5],
      },
      'per batch where',
    );
    // nothing selected → 0 everywhere
    const none = quantiles(0.5, 'seq', 'logp > 1000');
    for (const m of METHODS) expectArray(none[m], [0, 0, 0, 0, 0], 0, `empty ${m}`);
  });

  it('of seq-level values per group, and q from a param', () => {
    // rewards [1,2,3,4,5], g0 = {s0, s2} → [1, 3]; g1 = {s1, s3, s4} → [2, 4, 5]: medians 2 and 4
    const out = run(['param q = 0.5', 'loss = mean(logp)', 'export m = quantile(reward, q per group)'].join('\n'), A);
    expectArray(out.exports.m.data, [2, 4]);
    // q = 0.25: g0 pos 0.25 → 1 + 0.25·2 = 1.5; g1 pos 0.5 → 2 + 0.5·2 = 3
    const out2 = run(['param q = 0.5', 'loss = mean(logp)', 'export m = quantile(reward, q per group)'].join('\n'), A, {
      params: { q: 0.25 },
    });
    expectArray(out2.exports.m.data, [1.5, 3]);
  });
});

describe('rank and top_k', () => {
  const I = Infinity;
  it('rank: 0 = largest, ties broken by position, +inf for masked tokens', () => {
    const out = run(
      [
        'loss = mean(logp)',
        'export rs = rank(logp per seq)',
        'export rg = rank(logp per group)',
        'export rb = rank(logp)',
        'export rw = rank(logp per seq where logp < 3.5)',
      ].join('\n'),
      A,
    );
    // per seq: s0 [t0=1, t2=3, t3=2] → t2 0, t3 1, t0 2; s2 [4, -1, 4] → t4 0, t6 1 (tie: later position), t5 2; s4 → t10 0, t9 1
    expectArray(out.exports.rs.data, [2, I, 0, 1, 0, 2, 1, I, I, 1, 0], 0, 'rank per seq');
    // per group: g0 = t4 (4), t6 (4), t2 (3), t3 (2), t0 (1), t5 (-1) → 0..5; g1 = t10 (2), t9 (0)
    expectArray(out.exports.rg.data, [4, I, 2, 3, 0, 5, 1, I, I, 1, 0], 0, 'rank per group');
    // per batch: t4 0, t6 1, t2 2, t3 3, t10 4 (2, after t3 by position), t0 5, t9 6, t5 7
    expectArray(out.exports.rb.data, [5, I, 2, 3, 0, 7, 1, I, I, 6, 4], 0, 'rank per batch');
    // where logp < 3.5: s2's two 4s are not members → +inf
    expectArray(out.exports.rw.data, [2, I, 0, 1, I, 0, I, I, I, 1, 0], 0, 'rank per seq where');
  });

  it('rank of seq-level values per group (ties by position)', () => {
    const out = run(
      ['loss = mean(logp)', 'export r = rank(reward per group)', 'export t = rank(gin + 0 * reward per group)'].join(
        '\n',
      ),
      A,
    );
    // g0: s0 (1) → 1, s2 (3) → 0; g1: s1 (2) → 2, s3 (4) → 1, s4 (5) → 0
    expectArray(out.exports.r.data, [1, 2, 0, 1, 0], 0, 'rank(reward per group)');
    // all equal within each group → order of position: g0 s0 0, s2 1; g1 s1 0, s3 1, s4 2
    expectArray(out.exports.t.data, [0, 0, 1, 1, 2], 0, 'ties');
  });

  it('top_p keeps the largest members until their sum reaches q (the member that crosses q included)', () => {
    const out = run(
      ['loss = mean(logp)', 'export p4 = top_p(logp, 4 per seq)', 'export p0 = top_p(logp, 0 per seq)'].join('\n'),
      A,
    );
    // s0 [t0 1, t2 3, t3 2]: t2 (before 0), t3 (before 3 < 4), not t0 (before 5); s2 [4, -1, 4]: t4 only
    // (t6 ties and comes later: before 4, not < 4); s4 [t9 0, t10 2]: both; masked tokens never
    expectArray(out.exports.p4.data, [0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1], 0, 'top_p 4 per seq');
    expectArray(out.exports.p0.data, Array(11).fill(0), 0, 'top_p 0');
  });

  it('top_k selects the k largest members, never masked or filtered-out ones', () => {
    const out = run(
      [
        'loss = mean(logp)',
        'export k2 = top_k(logp, 2 per seq)',
        'export k1w = top_k(logp, 1 per seq where logp < 3.5)',
        'export k3 = top_k(logp, 3)',
        'export k0 = top_k(logp, 0 per seq)',
        'export n2 = count(top_k(logp, 2 per seq) per seq)',
      ].join('\n'),
      A,
    );
    // per seq k = 2: s0 t2, t3; s2 t4, t6; s4 t9, t10 (only 2 members); never t1 (masked, 100) or s3
    expectArray(out.exports.k2.data, [0, 0, 1, 1, 1, 0, 1, 0, 0, 1, 1], 0, 'top_k 2 per seq');
    // k = 1 among logp < 3.5: s0 t2 (3); s2 t5 (-1, the only member); s4 t10 (2)
    expectArray(out.exports.k1w.data, [0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1], 0, 'top_k 1 per seq where');
    // k = 3 over the batch: t4, t6 (4, 4), t2 (3)
    expectArray(out.exports.k3.data, [0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0], 0, 'top_k 3 per batch');
    expectArray(out.exports.k0.data, Array(11).fill(0), 0, 'top_k 0');
    expectArray(out.exports.n2.data, [2, 0, 2, 0, 2], 0, 'count of top_k');
    expect(out.loss).toBe(15 / 8);
  });
});

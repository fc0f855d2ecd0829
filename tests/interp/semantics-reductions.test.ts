/**
 * Reductions (sum/mean/max/min/count/var_pop/var_unbiased/std_pop/std_unbiased/logsumexp) per seq,
 * per group and per batch on the hand-built batch A (tests/interp/fixtures.ts): masked tokens never
 * take part, `where` filters select, and every empty reduction is 0 (never NaN). Every expected
 * number is computed by hand in the comments.
 */
import { describe, expect, it } from 'vitest';
import { A, A_ALL_MASKED, A_GIN, EMPTY } from './fixtures.js';
import { batch, expectArray, expectClose, expectFinite, run } from './helpers.js';

const E = Math.E;
const { exp, log, sqrt } = Math;

type Red =
  'sum' | 'mean' | 'max' | 'min' | 'count' | 'var_pop' | 'var_unbiased' | 'std_pop' | 'std_unbiased' | 'logsumexp';
const REDS: Red[] = [
  'sum',
  'mean',
  'max',
  'min',
  'count',
  'var_pop',
  'var_unbiased',
  'std_pop',
  'std_unbiased',
  'logsumexp',
];

/** `fn(logp …)`, with `count` counting `logp > -1000` (true at every token, masked ones included). */
function call(fn: Red, per: string, where = ''): string {
  const x = fn === 'count' ? 'logp > -1000' : 'logp';
  return `${fn}(${x}${per ? ` per ${per}` : ''}${where ? ` where ${where}` : ''})`;
}

/** Exports r_seq, r_group, r_batch of one reduction (optionally filtered). */
function reduce(fn: Red, rb = A, where = '') {
  const body = [
    'loss = mean(logp)',
    `export r_seq   = ${call(fn, 'seq', where)}`,
    `export r_group = ${call(fn, 'group', where)}`,
    `export r_batch = ${call(fn, '', where)}`,
  ].join('\n');
  const out = run(body, rb, { gin: rb === A ? A_GIN : undefined });
  return { seq: out.exports.r_seq.data, group: out.exports.r_group.data, batch: out.exports.r_batch.data };
}

// Expected values on A, unfiltered. Seqs: s0 [1,3,2], s1 empty, s2 [4,-1,4], s3 fully masked, s4 [0,2].
//   s0: sum 6, n 3, mean 2, SS = 1+1+0 = 2        s2: sum 7, n 3, mean 7/3, SS = (5/3)²+(10/3)²+(5/3)² = 150/9 = 50/3
//   s4: sum 2, n 2, mean 1, SS = 1+1 = 2
// Groups: g0 = [1,3,2,4,-1,4]: sum 13, n 6, Σx² = 1+9+4+16+1+16 = 47, SS = 47 − 13²/6 = 113/6; g1 = [0,2] (as s4).
// Batch [1,3,2,4,-1,4,0,2]: sum 15, n 8, Σx² = 47+0+4 = 51, SS = 51 − 15²/8 = 22.875 = 183/8.
const UNFILTERED: Record<Red, { seq: number[]; group: number[]; batch: number }> = {
  sum: { seq: [6, 0, 7, 0, 2], group: [13, 2], batch: 15 },
  mean: { seq: [2, 0, 7 / 3, 0, 1], group: [13 / 6, 1], batch: 15 / 8 },
  max: { seq: [3, 0, 4, 0, 2], group: [4, 2], batch: 4 },
  min: { seq: [1, 0, -1, 0, 0], group: [-1, 0], batch: -1 },
  count: { seq: [3, 0, 3, 0, 2], group: [6, 2], batch: 8 },
  // SS / n
  var_pop: { seq: [2 / 3, 0, 50 / 9, 0, 1], group: [113 / 36, 1], batch: 183 / 64 },
  // SS / (n − 1)
  var_unbiased: { seq: [1, 0, 25 / 3, 0, 2], group: [113 / 30, 2], batch: 183 / 56 },
  std_pop: { seq: [sqrt(2 / 3), 0, sqrt(50) / 3, 0, 1], group: [sqrt(113) / 6, 1], batch: sqrt(183) / 8 },
  std_unbiased: { seq: [1, 0, 5 / sqrt(3), 0, sqrt(2)], group: [sqrt(113 / 30), sqrt(2)], batch: sqrt(183 / 56) },
  // log Σ exp
  logsumexp: {
    seq: [log(E + E ** 3 + E ** 2), 0, log(2 * E ** 4 + exp(-1)), 0, log(1 + E ** 2)],
    group: [log(E + E ** 3 + E ** 2 + 2 * E ** 4 + exp(-1)), log(1 + E ** 2)],
    batch: log(E + E ** 3 + E ** 2 + 2 * E ** 4 + exp(-1) + 1 + E ** 2),
  },
};

// Filter `logp > 1.5` (masked 100 and 50 would pass it): s0 → [3,2], s2 → [4,4], s4 → [2];
//   g0 → [3,2,4,4] (sum 13, mean 3.25, Σx² = 45, SS = 45 − 4·3.25² = 2.75), g1 → [2];
//   batch → [3,2,4,4,2] (sum 15, mean 3, SS = 0+1+1+1+1 = 4).
//   s0: mean 2.5, SS 0.5; s2: SS 0; s4 and g1 have one element (SS 0, n − 1 = 0 → var_unbiased 0).
const FILTERED: Record<Red, { seq: number[]; group: number[]; batch: number }> = {
  sum: { seq: [5, 0, 8, 0, 2], group: [13, 2], batch: 15 },
  mean: { seq: [2.5, 0, 4, 0, 2], group: [3.25, 2], batch: 3 },
  max: { seq: [3, 0, 4, 0, 2], group: [4, 2], batch: 4 },
  min: { seq: [2, 0, 4, 0, 2], group: [2, 2], batch: 2 },
  count: { seq: [2, 0, 2, 0, 1], group: [4, 1], batch: 5 },
  var_pop: { seq: [0.25, 0, 0, 0, 0], group: [2.75 / 4, 0], batch: 4 / 5 },
  var_unbiased: { seq: [0.5, 0, 0, 0, 0], group: [2.75 / 3, 0], batch: 1 },
  std_pop: { seq: [0.5, 0, 0, 0, 0], group: [sqrt(2.75 / 4), 0], batch: sqrt(0.8) },
  std_unbiased: { seq: [sqrt(0.5), 0, 0, 0, 0], group: [sqrt(2.75 / 3), 0], batch: 1 },
  logsumexp: {
    seq: [log(E ** 3 + E ** 2), 0, 4 + log(2), 0, 2],
    group: [log(E ** 3 + E ** 2 + 2 * E ** 4), 2],
    batch: log(E ** 3 + 2 * E ** 2 + 2 * E ** 4),
  },
};

describe.each(REDS)('%s', (fn) => {
  it('skips masked tokens, length-0 and fully masked sequences give 0 (per seq, group, batch)', () => {
    const got = reduce(fn);
    const want = UNFILTERED[fn];
    expectArray(got.seq, want.seq, 1e-12, `${fn} per seq`);
    expectArray(got.group, want.group, 1e-12, `${fn} per group`);
    expectArray(got.batch, [want.batch], 1e-12, `${fn} per batch`);
  });

  it('with a token-level `where` filter that masked tokens would pass', () => {
    const got = reduce(fn, A, 'logp > 1.5');
    const want = FILTERED[fn];
    expectArray(got.seq, want.seq, 1e-12, `${fn} per seq where`);
    expectArray(got.group, want.group, 1e-12, `${fn} per group where`);
    expectArray(got.batch, [want.batch], 1e-12, `${fn} per batch where`);
  });

  it('is 0 (not NaN) when `where` selects nothing', () => {
    const got = reduce(fn, A, 'logp > 1000');
    expectArray(got.seq, [0, 0, 0, 0, 0], 0, `${fn} per seq`);
    expectArray(got.group, [0, 0], 0, `${fn} per group`);
    expectArray(got.batch, [0], 0, `${fn} per batch`);
  });

  it('is 0 (not NaN) on a fully masked batch', () => {
    const got = reduce(fn, A_ALL_MASKED);
    expectArray(got.seq, [0, 0, 0, 0, 0], 0, `${fn} per seq`);
    expectArray(got.group, [0, 0], 0, `${fn} per group`);
    expectArray(got.batch, [0], 0, `${fn} per batch`);
  });

  it('is 0 on a batch with no sequences (and on sequences that all have length 0)', () => {
    const e = reduce(fn, EMPTY);
    expect(e.seq.length).toBe(0);
    expect(e.group.length).toBe(0);
    expectArray(e.batch, [0], 0, `${fn} per batch, empty batch`);
    const zeroLen = reduce(
      fn,
      batch({
        seqs: [
          { logp: [], group: 0 },
          { logp: [], group: 1 },
        ],
      }),
    );
    expectArray(zeroLen.seq, [0, 0], 0, `${fn} per seq, length-0 seqs`);
    expectArray(zeroLen.group, [0, 0], 0, `${fn} per group, length-0 seqs`);
    expectArray(zeroLen.batch, [0], 0, `${fn} per batch, length-0 seqs`);
  });
});

describe('a filter coarser than the reduced value', () => {
  it('a seq-level `where` selects whole sequences of tokens', () => {
    // reward > 2 selects s2 (3), s3 (4, fully masked), s4 (5): g0 → s2 [4,-1,4] sum 7; g1 → s4 [0,2] sum 2.
    // count per seq: s0 not selected 0; s2 3; s3 masked 0; s4 2.
    const out = run(
      [
        'loss = mean(logp)',
        'export a = sum(logp per group where reward > 2)',
        'export c = count(mask per seq where reward > 2)',
        'export m = max(logp where reward > 2)',
      ].join('\n'),
      A,
    );
    expectArray(out.exports.a.data, [7, 2]);
    expectArray(out.exports.c.data, [0, 0, 3, 0, 2]);
    expectArray(out.exports.m.data, [4]);
  });

  it('count(mask per seq) is the number of valid tokens; mean of a bool is a fraction of valid tokens', () => {
    // logp > 1.5 at valid tokens: s0 [F(1),T(3),T(2)] → 2/3; s2 [T,F,T] → 2/3; s4 [F,T] → 1/2; batch 5/8.
    const out = run(
      [
        'loss = mean(logp)',
        'export c = count(mask per seq)',
        'export f = mean(logp > 1.5 per seq)',
        'export fb = mean(logp > 1.5)',
      ].join('\n'),
      A,
    );
    expectArray(out.exports.c.data, [3, 0, 3, 0, 2]);
    expectArray(out.exports.f.data, [2 / 3, 0, 2 / 3, 0, 1 / 2]);
    expectArray(out.exports.fb.data, [5 / 8]);
  });
});

describe('reductions of seq- and group-level values', () => {
  it('every sequence counts, including those without valid tokens', () => {
    // rewards [1,2,3,4,5]; g0 = {s0, s2} → [1,3]: mean 2, var_unbiased (1+1)/1 = 2;
    // g1 = {s1, s3, s4} → [2,4,5]: mean 11/3, SS = (5/3)² + (1/3)² + (4/3)² = 42/9 = 14/3, var_unbiased 7/3.
    // batch: mean 3, SS = 4+1+0+1+4 = 10, var_unbiased 2.5; group-level gin [10,20]: mean 15, max 20.
    const out = run(
      [
        'loss = mean(logp)',
        'export m = mean(reward per group)',
        'export v = var_unbiased(reward per group)',
        'export mb = mean(reward)',
        'export vb = var_unbiased(reward)',
        'export gm = mean(gin)',
        'export gx = max(gin)',
        'export n1 = var_unbiased(reward per group where reward > 2.5)', // g0 → [3] (one element → 0); g1 → [4,5] → 0.5
      ].join('\n'),
      A,
      { gin: A_GIN },
    );
    expectArray(out.exports.m.data, [2, 11 / 3]);
    expectArray(out.exports.v.data, [2, 7 / 3]);
    expectArray(out.exports.mb.data, [3]);
    expectArray(out.exports.vb.data, [2.5]);
    expectArray(out.exports.gm.data, [15]);
    expectArray(out.exports.gx.data, [20]);
    expectArray(out.exports.n1.data, [0, 0.5]);
  });

  it('var_unbiased and std_unbiased of a single element are 0', () => {
    // one valid token per sequence via `where position == 0`, and a group holding one sequence.
    const b = batch({
      seqs: [
        { logp: [7, 8], reward: 3, group: 0 },
        { logp: [5], reward: 4, group: 1 },
        { logp: [2], reward: 9, group: 1 },
      ],
    });
    const out = run(
      [
        'loss = mean(logp)',
        'export a = var_unbiased(logp per seq where position == 0)',
        'export b = std_unbiased(logp per seq where position == 0)',
        'export c = var_unbiased(reward per group)', // g0 = [3] → 0; g1 = [4, 9] → 12.5
        'export d = std_unbiased(reward per group)', // g0 → 0; g1 → sqrt(12.5)
        'export e = std_unbiased(logp per seq)', // s0 [7,8] → sqrt(0.5); s1 [5] → 0; s2 [2] → 0
      ].join('\n'),
      b,
    );
    expectArray(out.exports.a.data, [0, 0, 0]);
    expectArray(out.exports.b.data, [0, 0, 0]);
    expectArray(out.exports.c.data, [0, 12.5]);
    expectArray(out.exports.d.data, [0, sqrt(12.5)]);
    expectArray(out.exports.e.data, [sqrt(0.5), 0, 0]);
  });

  it('masked tokens holding NaN / ±Infinity do not leak into reductions, scans or gradients', () => {
    // A with the masked values replaced by NaN, +Inf, -Inf: all results equal the unfiltered ones above.
    const bad = { ...A, logp: A.logp.map((v, t) => (t === 1 ? NaN : t === 7 ? Infinity : t === 8 ? -Infinity : v)) };
    const out = run(
      [
        'loss = mean(logp) + logsumexp(logp) + sum(std_unbiased(logp per group))',
        'export s = sum(logp per seq)',
        'export v = var_unbiased(logp per group)',
        'export l = logsumexp(logp)',
        'export c = cumsum(logp)',
        'export q = quantile(logp, 0.5 per seq)',
      ].join('\n'),
      bad,
    );
    expectArray(out.exports.s.data, UNFILTERED.sum.seq);
    expectArray(out.exports.v.data, UNFILTERED.var_unbiased.group);
    expectArray(out.exports.l.data, [UNFILTERED.logsumexp.batch]);
    // cumsum over valid tokens, masked tokens read the running value: s0 [1, 1, 4, 6]; s2 [4, 3, 7]; s3 [0, 0]; s4 [0, 2]
    expectArray(out.exports.c.data, [1, 1, 4, 6, 4, 3, 7, 0, 0, 0, 2]);
    // medians: s0 [1,2,3] → 2; s2 [-1,4,4] → 4; s4 [0,2] → 1; empty → 0
    expectArray(out.exports.q.data, [2, 0, 4, 0, 1]);
    // loss = 15/8 + logsumexp(batch) + std_unbiased(g0) + std_unbiased(g1)
    expectClose(out.loss, 15 / 8 + UNFILTERED.logsumexp.batch + sqrt(113 / 30) + sqrt(2), 1e-12, 'loss');
    expectFinite(out.grads.logp.data, 'grad logp');
    for (const t of [1, 7, 8]) expect(out.grads.logp.data[t], `grad at masked token ${t}`).toBe(0);
  });
});

describe('broadcasting coarser values to finer levels', () => {
  it('seq, group and batch values broadcast to every token of their sequences / groups', () => {
    const out = run(
      [
        'loss = mean(logp)',
        'export s2t = reward + 0 * position', // reward of the token's sequence
        'export g2t = gin + 0 * position', // gin of the token's group: s0,s2 → g0 (10); s3,s4 → g1 (20)
        'export b2t = sum(logp) + 0 * position', // 15 everywhere
        'export g2s = gin + 0 * reward', // per seq: groups [0,1,0,1,1] → [10,20,10,20,20]
        'export dev = reward - mean(reward per group)', // [1-2, 2-11/3, 3-2, 4-11/3, 5-11/3]
        'export cen = logp - mean(logp per seq)', // valid tokens: s0 [1-2, 3-2, 2-2]; s2 [4-7/3, -1-7/3, 4-7/3]; s4 [-1, 1]
      ].join('\n'),
      A,
      { gin: A_GIN },
    );
    expectArray(out.exports.s2t.data, [1, 1, 1, 1, 3, 3, 3, 4, 4, 5, 5]);
    expectArray(out.exports.g2t.data, [10, 10, 10, 10, 10, 10, 10, 20, 20, 20, 20]);
    expectArray(out.exports.b2t.data, Array(11).fill(15));
    expectArray(out.exports.g2s.data, [10, 20, 10, 20, 20]);
    expectArray(out.exports.dev.data, [-1, 2 - 11 / 3, 1, 4 - 11 / 3, 5 - 11 / 3]);
    const cen = out.exports.cen.data;
    expectArray(
      [0, 2, 3, 4, 5, 6, 9, 10].map((t) => cen[t]),
      [-1, 1, 0, 5 / 3, -10 / 3, 5 / 3, -1, 1],
    );
  });
});

describe('sizes', () => {
  it('position, length, group_size, num_seqs, num_groups, num_tokens count valid tokens only', () => {
    const out = run(
      [
        'loss = mean(logp)',
        'export pos = position',
        'export len = length',
        'export gs = group_size',
        'export ns = num_seqs',
        'export ng = num_groups',
        'export nt = num_tokens',
      ].join('\n'),
      A,
    );
    // positions among valid tokens: s0 t0→0, t2→1, t3→2; s2 → 0,1,2; s4 → 0,1
    const pos = out.exports.pos.data;
    expectArray(
      [0, 2, 3, 4, 5, 6, 9, 10].map((t) => pos[t]),
      [0, 1, 2, 0, 1, 2, 0, 1],
    );
    // at a masked token: the position the next valid token will have (docs/language.md §sizes): t1 → 1; s3's t7, t8 → 0
    expectArray(
      [1, 7, 8].map((t) => pos[t]),
      [1, 0, 0],
    );
    expectArray(out.exports.len.data, [3, 0, 3, 0, 2]);
    expectArray(out.exports.gs.data, [2, 3]); // g0 = {s0, s2}, g1 = {s1, s3, s4}
    expectArray(out.exports.ns.data, [5]);
    expectArray(out.exports.ng.data, [2]);
    expectArray(out.exports.nt.data, [8]); // valid tokens, not the 11 packed ones
  });

  it('on a fully masked batch and on an empty batch', () => {
    const body = [
      'loss = mean(logp)',
      'export len = length',
      'export ns = num_seqs',
      'export ng = num_groups',
      'export nt = num_tokens',
    ].join('\n');
    const m = run(body, A_ALL_MASKED);
    expectArray(m.exports.len.data, [0, 0, 0, 0, 0]);
    expectArray(m.exports.ns.data, [5]);
    expectArray(m.exports.ng.data, [2]);
    expectArray(m.exports.nt.data, [0]);
    const e = run(body, EMPTY);
    expect(e.exports.len.data.length).toBe(0);
    expectArray(e.exports.ns.data, [0]);
    expectArray(e.exports.ng.data, [0]);
    expectArray(e.exports.nt.data, [0]);
    expect(e.loss).toBe(0);
  });
});

describe('a loss that is a mean over nothing', () => {
  it('is 0 with zero gradients (fully masked batch)', () => {
    const out = run('loss = mean(logp) + std_unbiased(logp) + logsumexp(logp) + var_pop(logp)', A_ALL_MASKED);
    expect(out.loss).toBe(0);
    expectArray(out.grads.logp.data, Array(11).fill(0), 0, 'grad');
  });

  it('mean over an empty where with exponentials of huge values stays finite', () => {
    // sum/mean/var over nothing: 0; no element is selected so no gradient anywhere.
    const out = run('loss = mean(exp(logp) where logp > 1000) + var_unbiased(logp where logp > 1000)', A);
    expectClose(out.loss, 0, 0);
    expectArray(out.grads.logp.data, Array(11).fill(0), 0, 'grad');
  });
});

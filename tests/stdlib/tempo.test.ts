/**
 * stdlib/tempo.credo (interpreter) against the hand-written reference tests/reference/tempo.ts, the
 * prefix-tree quantities on hand-built trees, and the special cases stated in its header.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { arbRefBatch, type ArbRefBatchOptions } from '../reference/arbitrary.js';
import { groupAdvantages, numSeqs } from '../reference/batch.js';
import { checkGradFD } from '../reference/fd.js';
import { tempoRef, tempoTree, type TempoBatch } from '../reference/tempo.js';
import {
  close,
  expectAgrees,
  expectSameLossAndGrad,
  expectVecClose,
  toRaggedWith,
  withTokenFeatures,
} from './credit-helpers.js';

const tempo = compile('tempo');
const grpo = compile('grpo');

/** Random batches with token ids from a small vocabulary, so responses of a group share prefixes. */
function arbTempoBatch(opts: ArbRefBatchOptions = {}): fc.Arbitrary<TempoBatch> {
  return fc.oneof(
    { arbitrary: withTokenFeatures(arbRefBatch(opts), { token_id: fc.constantFrom(1, 2) }), weight: 4 },
    { arbitrary: withTokenFeatures(arbRefBatch(opts), { token_id: fc.constantFrom(1, 2, 3) }), weight: 2 },
    { arbitrary: withTokenFeatures(arbRefBatch(opts), { token_id: fc.constant(7) }), weight: 1 },
  );
}

const ragged = (b: TempoBatch) => toRaggedWith(b, { token_id: { level: 'token', data: b.token_id, dtype: 'i32' } });

const params = fc.record(
  {
    lambda: fc.constantFrom(1, 0, 0.5, 2),
    value_norm: fc.constantFrom(1, 0),
    eps_low: fc.constantFrom(0.2, 0.1),
    eps_high: fc.constantFrom(0.2, 0.3),
    beta: fc.constantFrom(0.04, 0, 0.5),
    adv_eps: fc.constantFrom(1e-6, 1e-2),
  },
  { requiredKeys: [] },
);

/** A batch from explicit responses: token ids (null = a masked token), reward, group. */
function built(seqs: { ids: (number | null)[]; reward: number; group: number }[]): TempoBatch {
  const b: TempoBatch = {
    offsets: [0],
    groupOf: [],
    numGroups: 0,
    mask: [],
    logp: [],
    old_logp: [],
    ref_logp: [],
    reward: [],
    token_id: [],
  };
  for (const s of seqs) {
    for (const id of s.ids) {
      b.mask.push(id === null ? 0 : 1);
      b.token_id.push(id ?? 99);
      b.logp.push(-1);
      b.old_logp.push(-1);
      b.ref_logp.push(-1);
    }
    b.offsets.push(b.offsets[b.offsets.length - 1]! + s.ids.length);
    b.groupOf.push(s.group);
    b.reward.push(s.reward);
  }
  b.numGroups = Math.max(...b.groupOf) + 1;
  return b;
}

describe('tempo equals its reference', () => {
  it('on random batches with default params', () => {
    fc.assert(
      fc.property(arbTempoBatch(), (b) => expectAgrees(tempo.run(ragged(b)), tempoRef(b))),
      { numRuns: 200 },
    );
  });

  it('on random batches and params (loss, metrics, gradient)', () => {
    fc.assert(
      fc.property(arbTempoBatch(), params, (b, p) => expectAgrees(tempo.run(ragged(b), { params: p }), tempoRef(b, p))),
      { numRuns: 300 },
    );
  });

  it('exports the reference prefix-tree td, values and branch flags', () => {
    fc.assert(
      fc.property(arbTempoBatch(), fc.constantFrom(0, 1), (b, vn) => {
        const got = tempo.run(ragged(b), { params: { value_norm: vn } }).exports;
        const want = tempoTree(b, { value_norm: vn });
        const valid = (xs: ArrayLike<number>) => Array.from(xs, (x, t) => (b.mask[t] === 1 ? x : 0));
        expectVecClose(valid(got.td!.data), want.td, 'td');
        expectVecClose(valid(got.value!.data), want.value, 'value');
        expectVecClose(valid(got.branching!.data), want.branch, 'branch');
      }),
      { numRuns: 200 },
    );
  });

  it('the reference gradient matches finite differences of the reference loss', () => {
    fc.assert(
      fc.property(arbTempoBatch({ maxGroups: 3 }), params, (b, p) => {
        expect(checkGradFD((x) => tempoRef(x as TempoBatch, p), b).failures).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });
});

describe('tempo prefix tree on hand-built trees', () => {
  // group 0: a = 5 6 7 (R 1), b = 5 6 8 (R 0), c = 5 9 (R 1), d = 5 6 (R 0, ends at node 5 6)
  // group 1: e = 5 [masked] 6 7 (R 0; same ids as a in another group), f = 4 (R 1)
  const b = built([
    { ids: [5, 6, 7], reward: 1, group: 0 },
    { ids: [5, 6, 8], reward: 0, group: 0 },
    { ids: [5, 9], reward: 1, group: 0 },
    { ids: [5, 6], reward: 0, group: 0 },
    { ids: [5, null, 6, 7], reward: 0, group: 1 },
    { ids: [4], reward: 1, group: 1 },
  ]);

  it('raw-reward values, branch flags and TD terms are the hand-computed ones', () => {
    const out = tempo.run(ragged(b), { params: { value_norm: 0 } }).exports;
    // V: root(g0) 1/2, [5] 1/2, [5 6] 1/3, [5 6 7] 1, [5 6 8] 0, [5 9] 1; root(g1) 1/2, [5] 0, [4] 1
    const td = [0, -1 / 6, 2 / 3, 0, -1 / 6, -1 / 3, 0, 1 / 2, 0, -1 / 6, -1 / 2, 0, 0, 0, 1 / 2];
    const value = [1 / 2, 1 / 3, 1, 1 / 2, 1 / 3, 0, 1 / 2, 1, 1 / 2, 1 / 3, 0, 0, 0, 0, 1];
    const branch = [0, 1, 1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 0, 1];
    const masked = 11; // the masked token of e
    const at = (xs: ArrayLike<number>) => Array.from(xs).map((x, t) => (t === masked ? 0 : x));
    expectVecClose(at(out.td!.data), td, 'td');
    expectVecClose(at(out.value!.data), value, 'value');
    expectVecClose(at(out.branching!.data), branch, 'branch');
    expectVecClose(tempoTree(b, { value_norm: 0 }).td, at(td), 'reference td');
  });

  it('advantages are A_i + lambda td (lambda 2), and the loss matches the reference', () => {
    const A = groupAdvantages(b, b.reward, 1e-6);
    const run = tempo.run(ragged(b), { params: { lambda: 2 } });
    const tree = tempoTree(b, { lambda: 2 });
    for (let s = 0; s < numSeqs(b); s++) {
      for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
        if (b.mask[t] === 1) expect(close(run.exports.advantage!.data[t]!, A[s]! + 2 * tree.td[t]!)).toBe(true);
      }
    }
    expectAgrees(run, tempoRef(b, { lambda: 2 }));
  });

  it('a masked token does not change the tree (same td as without it)', () => {
    const withMask = built([
      { ids: [1, 2, null, 3], reward: 1, group: 0 },
      { ids: [1, 2, 4], reward: 0, group: 0 },
    ]);
    const without = built([
      { ids: [1, 2, 3], reward: 1, group: 0 },
      { ids: [1, 2, 4], reward: 0, group: 0 },
    ]);
    const a = Array.from(tempo.run(ragged(withMask)).exports.td!.data);
    const c = Array.from(tempo.run(ragged(without)).exports.td!.data);
    expect([a[0], a[1], a[3], a[4], a[5], a[6]]).toEqual(c);
    expect(c[2]).not.toBe(0); // token 3 is a branch token
  });

  it('identical token ids in different groups stay separate trees', () => {
    const two = built([
      { ids: [1, 2], reward: 1, group: 0 },
      { ids: [1, 3], reward: 0, group: 0 },
      { ids: [1, 2], reward: 0, group: 1 },
      { ids: [1, 2], reward: 1, group: 1 },
    ]);
    const td = Array.from(tempo.run(ragged(two), { params: { value_norm: 0 } }).exports.td!.data);
    expect(td).toEqual([0, 0.5, 0, -0.5, 0, 0, 0, 0]);
  });
});

describe('tempo special cases', () => {
  it('lambda = 0 is stdlib grpo with the same params', () => {
    fc.assert(
      fc.property(arbTempoBatch(), fc.constantFrom(0.04, 0), fc.constantFrom(0.2, 0.3), (b, beta, eh) => {
        const p = { beta, eps_high: eh };
        expectSameLossAndGrad(
          tempo.run(ragged(b), { params: { ...p, lambda: 0 } }),
          grpo.run(toRaggedWith(b), { params: p }),
        );
      }),
      { numRuns: 150 },
    );
  });

  it('no branching (every group repeats one response) is stdlib grpo for any lambda', () => {
    const noBranch = arbRefBatch().chain((b) => {
      // copy the first response of each group (ids, mask, length) to every response of the group
      const first = new Map<number, number>();
      for (let s = 0; s < numSeqs(b); s++) if (!first.has(b.groupOf[s]!)) first.set(b.groupOf[s]!, s);
      return fc.array(fc.constantFrom(1, 2, 3), { minLength: 8, maxLength: 8 }).map((vocab) => {
        const out: TempoBatch = {
          offsets: [0],
          groupOf: [],
          numGroups: b.numGroups,
          mask: [],
          logp: [],
          old_logp: [],
          ref_logp: [],
          reward: [],
          token_id: [],
        };
        for (let s = 0; s < numSeqs(b); s++) {
          const f = first.get(b.groupOf[s]!)!;
          const n = b.offsets[f + 1]! - b.offsets[f]!;
          for (let q = 0; q < n; q++) {
            const src = b.offsets[s]! + (q % Math.max(1, b.offsets[s + 1]! - b.offsets[s]!));
            const has = b.offsets[s + 1]! > b.offsets[s]!;
            out.mask.push(b.mask[b.offsets[f]! + q]!);
            out.token_id.push(vocab[q]!);
            out.logp.push(has ? b.logp[src]! : -1);
            out.old_logp.push(has ? b.old_logp[src]! : -1.1);
            out.ref_logp.push(has ? b.ref_logp[src]! : -0.9);
          }
          out.offsets.push(out.offsets[out.offsets.length - 1]! + n);
          out.groupOf.push(b.groupOf[s]!);
          out.reward.push(b.reward[s]!);
        }
        return out;
      });
    });
    fc.assert(
      fc.property(noBranch, fc.constantFrom(1, 3), (b, lambda) => {
        const got = tempo.run(ragged(b), { params: { lambda } });
        expect(got.metrics.branch_frac).toBe(0);
        expectSameLossAndGrad(got, grpo.run(toRaggedWith(b)));
      }),
      { numRuns: 150 },
    );
  });

  it('value_norm = 0 gives td = (value_norm 1 td) × (std_g R + adv_eps)', () => {
    fc.assert(
      fc.property(arbTempoBatch(), (b) => {
        const raw = tempo.run(ragged(b), { params: { value_norm: 0 } }).exports.td!.data;
        const nrm = tempo.run(ragged(b), { params: { value_norm: 1 } }).exports.td!.data;
        for (let s = 0; s < numSeqs(b); s++) {
          const rs: number[] = [];
          for (let j = 0; j < numSeqs(b); j++) if (b.groupOf[j] === b.groupOf[s]) rs.push(b.reward[j]!);
          const mean = rs.reduce((x, y) => x + y, 0) / rs.length;
          const std = rs.length > 1 ? Math.sqrt(rs.reduce((x, y) => x + (y - mean) ** 2, 0) / (rs.length - 1)) : 0;
          for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
            if (b.mask[t] !== 1) continue;
            expect(
              close(raw[t]!, nrm[t]! * (std + 1e-6), 1e-8),
              `td[${t}] ${raw[t]} vs ${nrm[t]! * (std + 1e-6)}`,
            ).toBe(true);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('responses that all differ at the first token: td there = Rt_i - mean_g Rt', () => {
    const b = built([
      { ids: [1, 5], reward: 1, group: 0 },
      { ids: [2, 5], reward: 0, group: 0 },
      { ids: [3], reward: 0.5, group: 0 },
    ]);
    const A = groupAdvantages(b, b.reward, 1e-6);
    const meanA = (A[0]! + A[1]! + A[2]!) / 3;
    const td = tempo.run(ragged(b)).exports.td!.data;
    expect(close(td[0]!, A[0]! - meanA)).toBe(true);
    expect(close(td[2]!, A[1]! - meanA)).toBe(true);
    expect(close(td[4]!, A[2]! - meanA)).toBe(true);
    expect([td[1], td[3]]).toEqual([0, 0]);
  });
});

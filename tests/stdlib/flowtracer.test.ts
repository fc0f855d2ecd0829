/**
 * stdlib/flowtracer.credo (interpreter) against the hand-written reference tests/reference/flowtracer.ts,
 * plus the special cases stated in its header.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/objective.js';
import { arbRefBatch, type ArbRefBatchOptions } from '../reference/arbitrary.js';
import { groupAdvantages, numSeqs } from '../reference/batch.js';
import { checkGradFD } from '../reference/fd.js';
import { flowRef, flowWeights, type FlowBatch } from '../reference/flowtracer.js';
import {
  arbScore,
  close,
  expectAgrees,
  expectSameLossAndGrad,
  expectVecClose,
  toRaggedWith,
  validTokens,
  withSeqFeatures,
  withTokenFeatures,
} from './credit-helpers.js';

const flowtracer = compile('flowtracer');
const grpo = compile('grpo');

const arbBatch = (opts: ArbRefBatchOptions = {}): fc.Arbitrary<FlowBatch> =>
  withTokenFeatures(arbRefBatch(opts), { flow: arbScore() });
const ragged = (b: FlowBatch) => toRaggedWith(b, { flow: { level: 'token', data: b.flow } });

const params = fc.record(
  {
    alpha: fc.constantFrom(0.5, 0, 1, 0.2),
    eps_low: fc.constantFrom(0.2, 0.1),
    eps_high: fc.constantFrom(0.2, 0.3),
    beta: fc.constantFrom(0.04, 0, 0.5),
    adv_eps: fc.constantFrom(1e-6, 1e-2),
  },
  { requiredKeys: [] },
);

describe('flowtracer equals its reference', () => {
  it('on random batches with default params', () => {
    fc.assert(
      fc.property(arbBatch(), (b) => expectAgrees(flowtracer.run(ragged(b)), flowRef(b))),
      { numRuns: 200 },
    );
  });

  it('on random batches and params (loss, metrics, gradient)', () => {
    fc.assert(
      fc.property(arbBatch(), params, (b, p) => expectAgrees(flowtracer.run(ragged(b), { params: p }), flowRef(b, p))),
      { numRuns: 300 },
    );
  });

  it('the reference gradient matches finite differences of the reference loss', () => {
    fc.assert(
      fc.property(arbBatch({ maxGroups: 3 }), params, (b, p) => {
        expect(checkGradFD((x) => flowRef(x as FlowBatch, p), b).failures).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });
});

describe('flowtracer special cases', () => {
  it('alpha = 0 is stdlib grpo with the same params', () => {
    fc.assert(
      fc.property(arbBatch(), fc.constantFrom(0.04, 0), fc.constantFrom(0.2, 0.3), (b, beta, eps_high) => {
        expectSameLossAndGrad(
          flowtracer.run(ragged(b), { params: { alpha: 0, beta, eps_high } }),
          grpo.run(toRaggedWith(b), { params: { beta, eps_high } }),
        );
      }),
      { numRuns: 150 },
    );
  });

  it('a flow constant within each response gives w ≡ 1 (= grpo) for any alpha', () => {
    const constFlow = withSeqFeatures(arbRefBatch(), { f: arbScore() }).map(({ f, ...b }) => {
      const flow: number[] = [];
      for (let s = 0; s < numSeqs(b); s++) for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) flow.push(f[s]!);
      return { ...b, flow } as FlowBatch;
    });
    fc.assert(
      fc.property(constFlow, fc.constantFrom(0.5, 1), (b, alpha) => {
        const got = flowtracer.run(ragged(b), { params: { alpha } });
        for (const ts of validTokens(b)) for (const t of ts) expect(close(got.exports.weight!.data[t]!, 1)).toBe(true);
        expectSameLossAndGrad(got, grpo.run(toRaggedWith(b)));
      }),
      { numRuns: 150 },
    );
  });

  it('alpha = 1: advantages proportional to the flow share (weights average 1 per response)', () => {
    fc.assert(
      fc.property(arbBatch(), (b) => {
        const w = flowtracer.run(ragged(b), { params: { alpha: 1 } }).exports.weight!.data;
        expectVecClose(
          Array.from(w, (x, t) => (b.mask[t] === 1 ? x : 0)),
          flowWeights(b, 1).map((x, t) => (b.mask[t] === 1 ? x : 0)),
          'weight',
        );
        const A = groupAdvantages(b, b.reward, 1e-6);
        validTokens(b).forEach((ts, s) => {
          if (ts.length === 0) return;
          const fbar = ts.reduce((x, t) => x + b.flow[t]!, 0) / ts.length;
          expect(close(ts.reduce((x, t) => x + w[t]!, 0) / ts.length, 1)).toBe(true);
          if (fbar > 0) for (const t of ts) expect(close(A[s]! * w[t]!, (A[s]! * b.flow[t]!) / fbar)).toBe(true);
        });
      }),
      { numRuns: 150 },
    );
  });
});

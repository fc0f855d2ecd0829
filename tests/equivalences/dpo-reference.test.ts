/**
 * What the DPO-family claims of the catalog (stdlib/claims/catalog-pref.ts, catalog-token-reward.ts) (run with the whole catalog in
 * equivalences.test.ts) cannot state: hand-computed losses on tiny batches that anchor the catalog
 * objectives to numbers, and special cases that substitute one input for another (TGDPO with the
 * reward model equal to the reference, cDPO with p_ce = 0) on random preference batches.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { offsetsFromLengths, type HostTensor, type RaggedBatch } from '../../core/batch/batch.js';
import { arbBatch } from '../../src/equiv/random-batches.js';
import { compile } from '../../src/objective.js';

const OBJ = 'tests/equivalences/objectives';

// The claims themselves run with the rest of the catalog in equivalences.test.ts.

// ---------------------------------------------------------------------------------------------
// Hand-computed losses

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const logsigmoid = (x: number) => -Math.log1p(Math.exp(-x));

interface Tiny {
  /** Tokens per sequence; every token is valid unless `mask` says otherwise. */
  lengths: number[];
  groupOf: number[];
  mask?: number[];
  token: Record<string, number[]>;
  seq: Record<string, number[]>;
  bools?: string[];
}

function tiny(b: Tiny): RaggedBatch {
  const T = b.lengths.reduce((x, y) => x + y, 0);
  const tensors = new Map<string, HostTensor>();
  for (const [name, data] of Object.entries(b.token))
    tensors.set(name, { level: 'token', dtype: 'f32', data: Float64Array.from(data) });
  for (const [name, data] of Object.entries(b.seq))
    tensors.set(name, { level: 'seq', dtype: b.bools?.includes(name) ? 'bool' : 'f32', data: Float64Array.from(data) });
  const G = Math.max(...b.groupOf) + 1;
  return {
    numTokens: T,
    numSeqs: b.lengths.length,
    numGroups: G,
    vocabSize: 0,
    offsets: offsetsFromLengths(b.lengths),
    groupOf: Int32Array.from(b.groupOf),
    groupIds: Array.from({ length: G }, (_, g) => g),
    mask: Uint8Array.from(b.mask ?? new Array<number>(T).fill(1)),
    tensors,
    layout: { kind: 'packed' },
  };
}

// Two pairs. Pair 0: chosen (seq 0) has 3 tokens, rejected (seq 1) has 2. Pair 1: rejected first
// (seq 2, 1 token), chosen (seq 3, 2 tokens, the second one masked).
const logp = [-0.5, -1.0, -0.25, -2.0, -1.5, -0.75, -0.4, -3.0];
const ref_logp = [-0.7, -0.9, -0.5, -1.0, -1.25, -1.0, -0.6, -0.1];
const PAIR_BATCH: Tiny = {
  lengths: [3, 2, 1, 2],
  groupOf: [0, 0, 1, 1],
  mask: [1, 1, 1, 1, 1, 1, 1, 0],
  token: { logp, ref_logp },
  seq: { chosen: [1, 0, 0, 1] },
  bools: ['chosen'],
};
// log-ratios per token: 0.2, -0.1, 0.25 | -1.0, -0.25 | 0.25 | 0.2, (masked)
const S = [0.2 - 0.1 + 0.25, -1.0 - 0.25, 0.25, 0.2];
const L = [3, 2, 1, 1];

describe('hand-computed DPO-family losses', () => {
  it('dpo: -mean over pairs of logσ(β (S(y_w) - S(y_l)))', () => {
    const beta = 0.1;
    const want = -(logsigmoid(beta * (S[0] - S[1])) + logsigmoid(beta * (S[3] - S[2]))) / 2;
    const out = compile('dpo').run(tiny(PAIR_BATCH));
    expect(out.loss).toBeCloseTo(want, 12);
    // δ0 = 0.35 + 1.25 = 1.6, δ1 = 0.2 - 0.25 = -0.05: (log(1 + e^-0.16) + log(1 + e^0.005)) / 2
    expect(out.loss).toBeCloseTo(0.655997, 6);
    // d loss / d logp at a chosen token of pair 0: -β σ(-β δ0) / 2
    const g = out.grads.logp.data;
    expect(g[0]).toBeCloseTo((-beta * sigmoid(-beta * (S[0] - S[1]))) / 2, 12);
    expect(g[3]).toBeCloseTo((beta * sigmoid(-beta * (S[0] - S[1]))) / 2, 12);
    expect(g[7]).toBe(0); // masked
  });

  it('ipo: length-normalised log-ratios with unequal lengths (TRL), not the summed ones', () => {
    const beta = 0.1;
    const a = S.map((s, i) => s / L[i]);
    const want = ((a[0] - a[1] - 1 / (2 * beta)) ** 2 + (a[3] - a[2] - 1 / (2 * beta)) ** 2) / 2;
    const batch = tiny(PAIR_BATCH);
    expect(compile('ipo').run(batch).loss).toBeCloseTo(want, 10);
    expect(compile(`${OBJ}/ipo_by_hand.credo`).run(batch).loss).toBeCloseTo(want, 10);
    const summed = ((S[0] - S[1] - 5) ** 2 + (S[3] - S[2] - 5) ** 2) / 2;
    expect(compile('ipo').run(batch, { params: { length_normalize: 0 } }).loss).toBeCloseTo(summed, 10);
    expect(Math.abs(want - summed)).toBeGreaterThan(0.1);
  });

  it('simpo: -logσ(β Δavg - γ) on average log-likelihoods, no reference', () => {
    const [beta, gamma] = [0.1, 0.5];
    const avg = [(-0.5 - 1.0 - 0.25) / 3, (-2.0 - 1.5) / 2, -0.75, -0.4];
    const want = -(logsigmoid(beta * (avg[0] - avg[1]) - gamma) + logsigmoid(beta * (avg[3] - avg[2]) - gamma)) / 2;
    expect(compile('simpo').run(tiny(PAIR_BATCH)).loss).toBeCloseTo(want, 12);
    // CPO-SimPO: + cpo_alpha · token-mean NLL over the chosen responses (4 valid tokens)
    const nll = (0.5 + 1.0 + 0.25 + 0.4) / 4;
    expect(compile('simpo').run(tiny(PAIR_BATCH), { params: { cpo_alpha: 1 } }).loss).toBeCloseTo(want + nll, 12);
  });

  it('tgdpo: token weights β(1 ± α r̂) with r̂ = β (rm_logp - ref_logp)', () => {
    const [alpha, beta] = [0.5, 0.1];
    const rm = [-0.2, -1.4, -0.5, 0.0, -2.0, -0.3, -0.6, 0.0];
    const D = logp.map((x, t) => x - ref_logp[t]);
    const rhat = rm.map((x, t) => beta * (x - ref_logp[t]));
    const w = (t: number, chosen: boolean) => beta * (chosen ? 1 + alpha * rhat[t] : 1 - alpha * rhat[t]) * D[t];
    const u0 = w(0, true) + w(1, true) + w(2, true) - (w(3, false) + w(4, false));
    const u1 = w(6, true) - w(5, false);
    const want = -(logsigmoid(u0) + logsigmoid(u1)) / 2;
    expect(compile('tgdpo').run(tiny({ ...PAIR_BATCH, token: { logp, ref_logp, rm_logp: rm } })).loss).toBeCloseTo(
      want,
      12,
    );
  });

  it('kto and apo_zero_unpaired: per-example losses, z0 clamped at 0', () => {
    const beta = 0.1;
    const batch = (kl: number[]) =>
      tiny({
        ...PAIR_BATCH,
        seq: { desirable: [1, 0, 0, 1], kl_logp: kl, kl_ref_logp: [0, 0, 0, 0] },
        bools: ['desirable'],
      });
    const desirable = [true, false, false, true];
    const kto = (z0: number) =>
      S.reduce((acc, r, i) => acc + (desirable[i] ? 1 - sigmoid(beta * (r - z0)) : 1 - sigmoid(beta * (z0 - r))), 0) /
      4;
    expect(compile('kto').run(batch([1, 2, 3, 6])).loss).toBeCloseTo(kto(3), 12);
    expect(compile('kto').run(batch([-1, -2, 0, 1])).loss).toBeCloseTo(kto(0), 12);
    const apo = S.reduce((acc, r, i) => acc + (desirable[i] ? 1 - sigmoid(beta * r) : sigmoid(beta * r)), 0) / 4;
    expect(compile(`${OBJ}/apo_zero_unpaired.credo`).run(batch([1, 2, 3, 6])).loss).toBeCloseTo(apo, 12);
    expect(kto(0)).toBeCloseTo(apo, 12);
  });

  it('dpo_per_position and cdpo: logσ per aligned position, padded to the longest response', () => {
    const beta = 0.1;
    // pair 0: positions 0..2 — chosen D = 0.2, -0.1, 0.25; rejected D = -1.0, -0.25, (none)
    // pair 1: positions 0..2 — chosen D = 0.2 (position 1 masked); rejected D = 0.25; position 1, 2 pad
    const d0 = [0.2 + 1.0, -0.1 + 0.25, 0.25];
    const d1 = [0.2 - 0.25];
    const K = 3;
    const lsum = [...d0, ...d1].reduce((acc, d) => acc - logsigmoid(beta * d), 0) + 2 * Math.log(2);
    expect(compile(`${OBJ}/dpo_per_position.credo`).run(tiny(PAIR_BATCH)).loss).toBeCloseTo(lsum / (2 * K), 12);
    // cdpo: rejected tokens weighted by 1 - p_ce, except the last (EOS) token of each response
    const p_ce = [0.9, 0.9, 0.9, 0.5, 0.7, 0.3, 0.9, 0.9];
    const c0 = [0.2 - -1.0 * (1 - 0.5), -0.1 - -0.25 * 1, 0.25];
    const c1 = [0.2 - 0.25 * 1];
    const csum = [...c0, ...c1].reduce((acc, d) => acc - logsigmoid(beta * d), 0) + 2 * Math.log(2);
    expect(compile('cdpo').run(tiny({ ...PAIR_BATCH, token: { logp, ref_logp, p_ce } })).loss).toBeCloseTo(
      csum / (2 * K),
      12,
    );
  });

  it('ift: weights w = S·L / ΣS from the discounted suffix sums of -logp / L; sft is the mean NLL', () => {
    const gamma = 0.95;
    const nll = [0.5, 1.0, 0.25];
    const x = nll.map((v) => v / 3);
    const s = [x[0] + gamma * x[1] + gamma * gamma * x[2], x[1] + gamma * x[2], x[2]];
    const sum = s[0] + s[1] + s[2];
    const one = nll.reduce((acc, v, t) => acc + (v * s[t] * 3) / sum, 0) / 3;
    const batch = tiny({ lengths: [3], groupOf: [0], token: { logp: [-0.5, -1.0, -0.25] }, seq: {} });
    expect(compile('ift').run(batch).loss).toBeCloseTo(one, 12);
    expect(compile('ift').run(batch, { params: { gamma: 0 } }).loss).toBeCloseTo(1.75 / 3, 12);
    expect(compile('sft').run(batch).loss).toBeCloseTo(1.75 / 3, 12);
  });
});

// ---------------------------------------------------------------------------------------------
// Special cases that substitute one input for another, which `credo equiv` cannot assume

function withData(b: RaggedBatch, name: string, level: HostTensor['level'], data: Float64Array): RaggedBatch {
  const tensors = new Map(b.tensors);
  tensors.set(name, { level, dtype: 'f32', data });
  return { ...b, tensors };
}

/** Random preference batches: groups of 2 with exactly one chosen response. */
function pairBatches(inputs: { name: string; level: HostTensor['level']; dtype: 'f32' | 'bool' }[]) {
  return arbBatch({ inputs, onPolicy: false, equalLengths: false, groupSize: 2, boundaries: [] }).map((b) => {
    const chosen = Float64Array.from({ length: b.numSeqs }, (_, s) => (s % 2 === 0 ? 1 : 0));
    const tensors = new Map(b.tensors);
    tensors.set('chosen', { level: 'seq', dtype: 'bool', data: chosen });
    return { ...b, tensors } as RaggedBatch;
  });
}

function expectClose(a: ArrayLike<number>, b: ArrayLike<number>) {
  for (let i = 0; i < a.length; i++)
    expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(a[i]), Math.abs(b[i])));
}

describe('substitution special cases (methods-dpo.md §19 items 1 and 8)', () => {
  const base = [
    { name: 'logp', level: 'token' as const, dtype: 'f32' as const },
    { name: 'ref_logp', level: 'token' as const, dtype: 'f32' as const },
  ];

  it('tgdpo with rm_logp = ref_logp is dpo, value and gradient', () => {
    const tgdpo = compile('tgdpo');
    const dpo = compile('dpo');
    fc.assert(
      fc.property(pairBatches(base), (b) => {
        const batch = withData(b, 'rm_logp', 'token', b.tensors.get('ref_logp')!.data);
        const [x, y] = [tgdpo.run(batch), dpo.run(batch)];
        expectClose([x.loss], [y.loss]);
        expectClose(x.grads.logp.data, y.grads.logp.data);
      }),
      { numRuns: 150, seed: 7 },
    );
  });

  it('cdpo with p_ce = 0 is dpo_per_position (all weights 1), value and gradient', () => {
    const cdpo = compile('cdpo');
    const perPosition = compile(`${OBJ}/dpo_per_position.credo`);
    fc.assert(
      fc.property(pairBatches(base), (b) => {
        const batch = withData(b, 'p_ce', 'token', new Float64Array(b.numTokens));
        const [x, y] = [cdpo.run(batch), perPosition.run(batch)];
        expectClose([x.loss], [y.loss]);
        expectClose(x.grads.logp.data, y.grads.logp.data);
      }),
      { numRuns: 150, seed: 7 },
    );
  });
});

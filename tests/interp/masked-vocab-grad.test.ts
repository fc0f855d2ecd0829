/**
 * Gradients through a coarser value broadcast into a `token x vocab` product. The rows of masked
 * tokens are computed (every entry of every token takes part in its token's reductions) but never
 * reach the loss, so they must not reach any gradient either: the VJP of a broadcast from a token,
 * seq, group or batch value (or a keyed reduction) to the vocabulary sums the adjoint over each row,
 * then over the valid tokens only. Hand-computed cases for each level pair, and random programs of
 * that shape against central finite differences on random batches and masks, whose gradients must
 * not change when the masked tokens' rows change.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../compiler/interp/eval.js';
import { offsetsFromLengths, type HostTensor, type RaggedBatch } from '../../core/batch/batch.js';
import { IrBuilder } from '../../core/ir/build.js';
import type { Program } from '../../core/ir/program.js';
import { renderDiagnostics } from '../../core/diagnostics/render.js';
import { compileSource } from '../../src/compile.js';
import { checkGradients } from '../helpers/gradcheck.js';
import { expectArray, expectClose } from './helpers.js';

const HEADER = `objective masked_vocab
input x    : token grad
input r    : seq grad
input gin  : group grad
input w    : token x vocab
input k    : token i32
input resp : seq i32
mask  mask : token
`;

function program(body: string): Program {
  const source = HEADER + body + '\n';
  const compiled = compileSource(source, 'masked-vocab.credo');
  if (!compiled.program) throw new Error(`did not compile:\n${source}\n${renderDiagnostics(compiled.diagnostics)}`);
  return compiled.program;
}

interface Spec {
  readonly V: number;
  /** Tokens per sequence. */
  readonly lengths: readonly number[];
  readonly groupOf: readonly number[];
  readonly mask: readonly number[];
  readonly x: readonly number[];
  /** T rows of V entries. */
  readonly w: readonly (readonly number[])[];
  readonly k?: readonly number[];
  readonly r?: readonly number[];
  readonly gin?: readonly number[];
  readonly resp?: readonly number[];
}

function toBatch(s: Spec): RaggedBatch {
  const S = s.lengths.length;
  const T = s.x.length;
  const G = S ? Math.max(...s.groupOf) + 1 : 0;
  const t = (level: HostTensor['level'], data: readonly number[], dtype: HostTensor['dtype'] = 'f32'): HostTensor => ({
    level,
    dtype,
    data: Float64Array.from(data),
  });
  return {
    numTokens: T,
    numSeqs: S,
    numGroups: G,
    vocabSize: s.V,
    offsets: offsetsFromLengths(s.lengths),
    groupOf: Int32Array.from(s.groupOf),
    groupIds: Array.from({ length: G }, (_, g) => g),
    mask: Uint8Array.from(s.mask),
    layout: { kind: 'packed' },
    tensors: new Map([
      ['x', t('token', s.x)],
      ['r', t('seq', s.r ?? s.lengths.map((_, i) => i + 1))],
      ['gin', t('group', s.gin ?? Array.from({ length: G }, (_, g) => g + 1))],
      ['w', t('vocab', s.w.flat())],
      ['k', t('token', s.k ?? s.x.map(() => 0), 'i32')],
      ['resp', t('seq', s.resp ?? s.lengths.map(() => 0), 'i32')],
    ]),
  };
}

describe('hand-computed gradients through a broadcast into token x vocab', () => {
  it('the reported case: a seq sum times a row, a masked token with a large row', () => {
    // s = x0 + x2 = 4 (x1 masked); loss = Σ_{t valid} Σ_v w_tv·s = (2 + 2)·4 = 16;
    // ∂loss/∂x_t = Σ_{t' valid} Σ_v w_t'v = 4 at the valid tokens, 0 at the masked one (not 204)
    const p = program('let s = sum(x per seq)\nloss = sum(sum(w * s per token))');
    const out = evaluate(
      p,
      toBatch({
        V: 2,
        lengths: [3],
        groupOf: [0],
        mask: [1, 0, 1],
        x: [1, 2, 3],
        w: [
          [1, 1],
          [100, 100],
          [1, 1],
        ],
      }),
    );
    expectClose(out.loss, 16);
    expectArray(out.grads.x.data, [4, 0, 4], 1e-12, 'grad.x');
  });

  // seq0 = tokens 0..2 (token 1 masked, its row 100s), seq1 = tokens 3..4; row sums 3, 200, 7, 11, 15
  const two: Spec = {
    V: 2,
    lengths: [3, 2],
    groupOf: [0, 0],
    mask: [1, 0, 1, 1, 1],
    x: [1, 2, 3, 4, 5],
    w: [
      [1, 2],
      [100, 100],
      [3, 4],
      [5, 6],
      [7, 8],
    ],
    r: [1, 2],
    gin: [1],
  };

  it('seq → vocab: a seq grad input', () => {
    // ∂/∂r_s = Σ over the valid tokens of s of their row sums: 3 + 7, 11 + 15
    const out = evaluate(program('loss = sum(sum(w * r per token))'), toBatch(two));
    expectClose(out.loss, 10 * 1 + 26 * 2);
    expectArray(out.grads.r.data, [10, 26], 1e-12, 'grad.r');
  });

  it('seq → vocab with means: divides by the valid tokens and V', () => {
    // mean over the 4 valid tokens of the row mean: ∂/∂r_s = Σ_{t ∈ s valid} rowsum_t / (4·2)
    const out = evaluate(program('loss = mean(mean(w * r per token))'), toBatch(two));
    expectArray(out.grads.r.data, [10 / 8, 26 / 8], 1e-12, 'grad.r');
  });

  it('group → vocab: a group grad input and a group mean of tokens', () => {
    const out = evaluate(program('loss = sum(sum(w * gin per token))'), toBatch(two));
    expectArray(out.grads.gin.data, [36], 1e-12, 'grad.gin');
    // c = mean(x per group) = (1 + 3 + 4 + 5) / 4; ∂loss/∂x_t = 36 / 4 at the valid tokens
    const m = evaluate(program('loss = sum(sum(w * mean(x per group) per token))'), toBatch(two));
    expectClose(m.loss, 36 * (13 / 4));
    expectArray(m.grads.x.data, [9, 0, 9, 9, 9], 1e-12, 'grad.x');
  });

  it('batch → vocab: the batch sum of the tokens', () => {
    // c = 13; loss = 13·36; ∂loss/∂x_t = 36 at the valid tokens
    const out = evaluate(program('loss = sum(sum(w * sum(x) per token))'), toBatch(two));
    expectClose(out.loss, 13 * 36);
    expectArray(out.grads.x.data, [36, 0, 36, 36, 36], 1e-12, 'grad.x');
  });

  it('token → vocab: each token its own row', () => {
    const out = evaluate(program('loss = sum(sum(w * x per token))'), toBatch(two));
    expectArray(out.grads.x.data, [3, 0, 7, 11, 15], 1e-12, 'grad.x');
  });

  it('keyed → vocab: a keyed group sum of the tokens', () => {
    // keys 0, 0, 1, 0, 0: bucket 0 = tokens 0, 3, 4 (token 1 masked), bucket 1 = token 2; c = 10, 10, 3, 10, 10
    // loss = 3·10 + 7·3 + 11·10 + 15·10 = 311; ∂loss/∂x_t = Σ of the valid rows of t's bucket: 29 or 7
    const out = evaluate(
      program('loss = sum(sum(w * sum(x per group by k) per token))'),
      toBatch({ ...two, k: [0, 0, 1, 0, 0] }),
    );
    expectClose(out.loss, 311);
    expectArray(out.grads.x.data, [29, 0, 7, 29, 29], 1e-12, 'grad.x');
  });

  it('the IR refuses to reduce token x vocab straight past the token', () => {
    const b = new IrBuilder();
    const w = b.graph.node('input', { dtype: 'f32', level: 'vocab' }, [], { name: 'w' });
    for (const to of ['seq', 'group', 'batch'] as const)
      expect(() => b.reduce('sum', w, to)).toThrow(/per token first/);
    expect(b.reduce('sum', w, 'token').type.level).toBe('token');
  });
});

/** The value broadcast into the row, by its level (x, r, gin are the grad inputs). */
const COARSE: Record<string, readonly string[]> = {
  token: ['x', 'x * r', 'tanh(x) + gin'],
  seq: ['r', 'sum(x per seq)', 'mean(x * x per seq)', 'r * mean(x per seq)'],
  group: ['gin', 'sum(x per group)', 'mean(r per group)', 'gin * mean(x per group)'],
  batch: ['sum(x)', 'mean(r)', 'mean(x) * sum(gin)'],
  keyed: ['sum(x per group by k)', 'mean(x per seq by k)', 'mean(r per group by resp)', 'max(x per group by k)'],
};
/** The entry over the row, of c (the coarse value) and the row w. */
const ENTRY = [
  'w * c',
  'sigmoid(w * c)',
  'w * tanh(c) + w * w',
  'log_softmax(w * c)',
  'softmax(w * c) * w',
  'exp(w) * c * c',
];
const ROW = ['sum', 'mean', 'logsumexp', 'max'];
const OUTER = ['sum', 'mean'];

const shape = fc.record({
  level: fc.constantFrom(...Object.keys(COARSE)),
  pick: fc.nat(),
  entry: fc.constantFrom(...ENTRY),
  row: fc.constantFrom(...ROW),
  outer: fc.constantFrom(...OUTER),
  /** A second, seq-weighted use of the same value over the row. */
  second: fc.boolean(),
});

type Shape = typeof shape extends fc.Arbitrary<infer T> ? T : never;

function source(s: Shape): string {
  const options = COARSE[s.level];
  const c = options[s.pick % options.length];
  const lines = [`let c = ${c}`, `let e = ${s.entry}`, `loss = ${s.outer}(${s.row}(e per token))`];
  if (s.second) lines[2] += ' + mean(r * sum(w * c per token))';
  return lines.join('\n');
}

/** Random ragged batches: 1–5 sequences of 0–4 tokens in groups of 1–3, V 1–4, random masks. */
const batches: fc.Arbitrary<Spec> = fc
  .record({
    lengths: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 5 }),
    groupSize: fc.integer({ min: 1, max: 3 }),
    V: fc.integer({ min: 1, max: 4 }),
    validRate: fc.constantFrom(0.3, 0.6, 0.9),
    seed: fc.integer({ min: 1, max: 2 ** 30 }),
  })
  .map(({ lengths, groupSize, V, validRate, seed }) => {
    let state = seed;
    const rand = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const T = lengths.reduce((a, b) => a + b, 0);
    const S = lengths.length;
    const groupOf = lengths.map((_, i) => Math.floor(i / groupSize));
    const G = groupOf[S - 1] + 1;
    const mask = Array.from({ length: T }, () => (rand() < validRate ? 1 : 0));
    // masked tokens' rows larger, so that any of them reaching a gradient shows
    const w = mask.map((m) => Array.from({ length: V }, () => (rand() - 0.5) * (m ? 2 : 10)));
    return {
      V,
      lengths,
      groupOf,
      mask,
      w,
      x: Array.from({ length: T }, () => (rand() - 0.5) * 2),
      k: Array.from({ length: T }, () => Math.floor(rand() * 2)),
      r: Array.from({ length: S }, () => (rand() - 0.5) * 2),
      gin: Array.from({ length: G }, () => (rand() - 0.5) * 2),
      resp: Array.from({ length: S }, () => Math.floor(rand() * 2)),
    };
  });

describe('random programs broadcasting a coarser value into token x vocab', () => {
  it('agree with central finite differences, are 0 at masked tokens and ignore masked rows', () => {
    fc.assert(
      fc.property(shape, batches, fc.integer({ min: 1, max: 2 ** 30 }), (s, spec, seed) => {
        const text = source(s);
        const p = program(text);
        const batch = toBatch(spec);
        const out = evaluate(p, batch);
        const problem = checkGradients(p, batch);
        expect(problem, `${problem}\nprogram:\n${text}`).toBeNull();
        spec.mask.forEach((m, t) => {
          if (!m) expect(out.grads.x.data[t], `grad.x[${t}] at a masked token\n${text}`).toBe(0);
        });
        // other values in the masked tokens' rows: the same loss and the same gradients
        let state = seed;
        const rand = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
        const w2 = spec.w.map((row, t) => (spec.mask[t] ? row : row.map(() => (rand() - 0.5) * 50)));
        const again = evaluate(p, toBatch({ ...spec, w: w2 }));
        expectClose(again.loss, out.loss, 1e-12, `loss\n${text}`);
        for (const name of ['x', 'r', 'gin'])
          expectArray(again.grads[name].data, Array.from(out.grads[name].data), 1e-12, `grad.${name}\n${text}`);
      }),
      { numRuns: 300 },
    );
  });
});

/**
 * The vocabulary axis on the float64 interpreter: log_softmax + gather + entropy against the
 * hand-written reference (tests/reference/vocab.ts) on random ragged batches with −inf logits,
 * one-hot rows, all −inf rows, V not a multiple of 4, temperature ≠ 1, empty sequences and fully
 * masked batches; every divergence of the `vocab` module against finite differences; the edges
 * never give NaN.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../compiler/interp/eval.js';
import { offsetsFromLengths, type RaggedBatch } from '../../core/batch/batch.js';
import { compileSource } from '../../src/compile.js';
import type { Program } from '../../core/ir/program.js';
import { checkGradients } from '../helpers/gradcheck.js';
import { logitsPolicyLoss, rowStats, type VocabRefBatch } from '../reference/vocab.js';

function program(body: string, extra = ''): Program {
  const source = `objective t
import vocab
param temperature = 1
param c = 0
input logits   : token x vocab grad
input teacher  : token x vocab
input token_id : token i32
mask  mask     : token
${extra}
${body}
`;
  const r = compileSource(source, 'vocab-test.credo');
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length || !r.program) throw new Error(errors.map((d) => d.message).join('\n'));
  return r.program;
}

interface Drawn {
  readonly lengths: number[];
  readonly V: number;
  readonly rows: number[][];
  readonly teacher: number[][];
  readonly tokenId: number[];
  readonly mask: number[];
}

function toBatch(d: Drawn): RaggedBatch {
  const T = d.rows.length;
  return {
    numTokens: T,
    numSeqs: d.lengths.length,
    numGroups: 1,
    vocabSize: d.V,
    offsets: offsetsFromLengths(d.lengths),
    groupOf: new Int32Array(d.lengths.length),
    groupIds: [0],
    mask: Uint8Array.from(d.mask),
    layout: { kind: 'packed' },
    tensors: new Map([
      ['logits', { level: 'vocab' as const, dtype: 'f32' as const, data: Float64Array.from(d.rows.flat()) }],
      ['teacher', { level: 'vocab' as const, dtype: 'f32' as const, data: Float64Array.from(d.teacher.flat()) }],
      ['token_id', { level: 'token' as const, dtype: 'i32' as const, data: Float64Array.from(d.tokenId) }],
    ]),
  };
}

const logit = fc.oneof(
  { weight: 6, arbitrary: fc.double({ min: -8, max: 8, noNaN: true }) },
  { weight: 1, arbitrary: fc.constant(-Infinity) },
  { weight: 1, arbitrary: fc.constantFrom(0, 30, -30) },
);

/** A row: random logits, a one-hot row (one finite entry), or (with `allowDead`) every entry −inf. */
function row(V: number, allowDead: boolean): fc.Arbitrary<number[]> {
  const oneHot = fc.tuple(fc.integer({ min: 0, max: V - 1 }), fc.double({ min: -3, max: 3, noNaN: true }));
  return fc.oneof(
    { weight: 6, arbitrary: fc.array(logit, { minLength: V, maxLength: V }) },
    { weight: 1, arbitrary: oneHot.map(([k, x]) => Array.from({ length: V }, (_, v) => (v === k ? x : -Infinity))) },
    ...(allowDead ? [{ weight: 1, arbitrary: fc.constant(new Array<number>(V).fill(-Infinity)) }] : []),
  );
}

/** Ragged batches; the sampled token of a valid token always has a finite logit (else logp = −inf). */
const drawn: fc.Arbitrary<Drawn> = fc
  .record({
    lengths: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 4 }),
    V: fc.oneof(fc.constantFrom(1, 2, 3, 4, 5, 7, 8, 9), fc.integer({ min: 1, max: 13 })),
    fullyMasked: fc.boolean(),
  })
  .chain(({ lengths, V, fullyMasked }) => {
    const T = lengths.reduce((a, b) => a + b, 0);
    return fc
      .record({
        rows: fc.array(row(V, false), { minLength: T, maxLength: T }),
        teacher: fc.array(row(V, true), { minLength: T, maxLength: T }),
        picks: fc.array(fc.nat(), { minLength: T, maxLength: T }),
        mask: fc.array(fc.constantFrom(1, 1, 1, 0), { minLength: T, maxLength: T }),
      })
      .map(({ rows, teacher, picks, mask }) => {
        const tokenId = rows.map((r, t) => {
          const finite = r.flatMap((x, v) => (x > -Infinity ? [v] : []));
          return finite.length ? finite[picks[t] % finite.length] : picks[t] % V;
        });
        // a token whose row has no finite entry is masked: its logp would be −inf
        const m = mask.map((k, t) => (fullyMasked || rows[t].every((x) => x === -Infinity) ? 0 : k));
        return { lengths, V, rows, teacher, tokenId, mask: m };
      });
  });

const closeTo = (a: number, b: number, tol = 1e-9) => Math.abs(a - b) <= tol * (1 + Math.abs(b));

describe('log_softmax + gather + entropy against the hand-written reference', () => {
  const p = program(
    'let z = logits / temperature\nloss = -mean(gather(log_softmax(z), token_id)) - c * mean(vocab.entropy(z))\nmetric ent = mean(vocab.entropy(z))',
  );
  it('loss, entropy and grad.logits agree on random ragged batches', () => {
    fc.assert(
      fc.property(drawn, fc.constantFrom(1, 0.7, 1.3), fc.constantFrom(0, 0.01, 0.5), (d, temperature, c) => {
        const ref = logitsPolicyLoss(
          { V: d.V, logits: d.rows, tokenId: d.tokenId, mask: d.mask } satisfies VocabRefBatch,
          c,
          temperature,
        );
        const out = evaluate(p, toBatch(d), { params: { temperature, c } });
        expect(closeTo(out.loss, ref.loss), `loss ${out.loss} vs ${ref.loss}`).toBe(true);
        expect(closeTo(out.metrics.ent, ref.entropyMean)).toBe(true);
        const g = out.grads.logits.data;
        expect(g.length).toBe(d.rows.length * d.V);
        ref.grad.flat().forEach((r, i) => expect(closeTo(g[i], r), `grad[${i}] ${g[i]} vs ${r}`).toBe(true));
      }),
      { numRuns: 300 },
    );
  });
});

describe('every vocab term is finite and matches finite differences', () => {
  const terms: Record<string, string> = {
    'log_softmax + gather': '-mean(vocab.logp(logits / temperature, token_id))',
    entropy: 'mean(vocab.entropy(logits)) * 2',
    'entropy bonus': 'mean(vocab.entropy_bonus(logits / temperature, 0.3))',
    'forward KL to a teacher': 'mean(vocab.kl(teacher, logits))',
    'reverse KL': 'mean(vocab.reverse_kl(teacher, logits))',
    'JSD (beta 0.5)': 'mean(vocab.jsd(teacher, logits, 0.5))',
    'JSD (beta 0.2)': 'mean(vocab.jsd(logits, teacher, 0.2))',
    'logsumexp per token': 'mean(logsumexp(logits per token))',
    'softmax-weighted value': 'mean(sum(softmax(logits) * f32(vocab_index) per token))',
    'max per token': 'mean(max(logits per token))',
    'top-k mask': 'mean(sum(where(top_k(logits, 2 per token), softmax(logits), 0) per token))',
    'a token weight broadcast to the vocabulary': 'mean(sum(position * softmax(logits) per token))',
  };
  // finite logits for finite differences; −inf entries stay −inf under ±h, so their analytic gradient must be 0
  // and distinct, so no max, min or top-k sits on a tie (a kink finite differences cannot see through)
  const tame = (rows: number[][]) =>
    rows.map((r, t) =>
      r.map((x, v) => (x === -Infinity ? x : (Math.abs(x) > 20 ? x / 10 : x) + 1e-3 * (((t * 7 + v * 13) % 17) + 1))),
    );
  const finiteDrawn = drawn.map((d) => ({ ...d, rows: tame(d.rows), teacher: tame(d.teacher) }));
  for (const [name, loss] of Object.entries(terms)) {
    it(name, () => {
      const p = program(`loss = ${loss}`);
      fc.assert(
        fc.property(finiteDrawn, fc.constantFrom(1, 0.7), (d, temperature) => {
          const batch = toBatch(d);
          const out = evaluate(p, batch, { params: { temperature } });
          // the KL to a teacher that puts mass where the policy has none is +inf, by definition
          if (!name.includes('KL')) expect(Number.isFinite(out.loss), `loss ${out.loss}`).toBe(true);
          if (Number.isFinite(out.loss)) for (const g of out.grads.logits.data) expect(Number.isNaN(g)).toBe(false);
          expect(checkGradients(p, batch, { step: 0 })).toBeNull();
        }),
        { numRuns: 40 },
      );
    });
  }
});

describe('edges', () => {
  const dead = {
    lengths: [2],
    V: 3,
    rows: [
      [-Infinity, -Infinity, -Infinity],
      [0, -Infinity, 1],
    ],
  };
  const batch = (mask: number[]) => toBatch({ ...dead, teacher: dead.rows, tokenId: [0, 2], mask });

  it('a row of −inf logits: log_softmax −inf, softmax 0, entropy 0, logsumexp −inf, no gradient', () => {
    const p = program(
      'loss = mean(sum(softmax(logits) per token)) + mean(vocab.entropy(logits))',
      'export ls = log_softmax(logits)\nexport sm = softmax(logits)\nexport h = vocab.entropy(logits)\nexport lse = logsumexp(logits per token)',
    );
    const out = evaluate(p, batch([1, 1]));
    expect([...out.exports.ls.data.slice(0, 3)]).toEqual([-Infinity, -Infinity, -Infinity]);
    expect([...out.exports.sm.data.slice(0, 3)]).toEqual([0, 0, 0]);
    expect(out.exports.h.data[0] === 0).toBe(true); // −0 from −Σ 0
    expect(out.exports.lse.data[0]).toBe(-Infinity);
    const r = rowStats([0, -Infinity, 1]);
    expect(out.exports.lse.data[1]).toBeCloseTo(r.lse, 12);
    expect(out.exports.sm.data[4]).toBe(0); // the −inf entry of a live row
    expect([...out.grads.logits.data].every((g) => Number.isFinite(g))).toBe(true);
    expect([...out.grads.logits.data.slice(0, 3)]).toEqual([0, 0, 0]);
  });

  it('a fully masked batch: loss 0 and grad.logits 0', () => {
    const p = program('loss = -mean(vocab.logp(logits, token_id)) + mean(vocab.kl(teacher, logits))');
    const out = evaluate(p, batch([0, 0]));
    expect(out.loss).toBe(0);
    expect([...out.grads.logits.data].every((g) => g === 0)).toBe(true);
  });

  it('gather picks the entry at the index; an index outside the row gives 0', () => {
    const p = program('loss = 0 * mean(mean(logits per token))', 'export g = gather(logits, token_id)');
    const b = toBatch({
      lengths: [2],
      V: 3,
      rows: [
        [5, 6, 7],
        [1, 2, 3],
      ],
      teacher: [
        [0, 0, 0],
        [0, 0, 0],
      ],
      tokenId: [1, 3],
      mask: [1, 1],
    });
    expect([...evaluate(p, b).exports.g.data]).toEqual([6, 0]);
  });

  it('top_p over the vocabulary: the nucleus of each row', () => {
    const p = program(
      'loss = 0 * mean(mean(logits per token))',
      'export n6 = sum(f32(top_p(softmax(logits), 0.6 per token)) per token)\nexport n5 = sum(f32(top_p(softmax(logits), 0.5 per token)) per token)\nexport first = f32(gather(f32(top_p(softmax(logits), 0.5 per token)), token_id))',
    );
    const row = [Math.log(0.3), Math.log(0.5), Math.log(0.2)];
    const b = toBatch({ lengths: [1], V: 3, rows: [row], teacher: [row], tokenId: [1], mask: [1] });
    const out = evaluate(p, b);
    expect([...out.exports.n6.data]).toEqual([2]); // 0.5 (before 0), 0.3 (before 0.5 < 0.6); not 0.2 (before 0.8)
    expect([...out.exports.n5.data]).toEqual([1]); // 0.5 alone: 0.3 has 0.5 before it
    expect([...out.exports.first.data]).toEqual([1]); // and that one is entry 1
  });

  it('vocab_index and vocab_size', () => {
    const p = program(
      'loss = 0 * mean(mean(logits per token))',
      'export i = sum(vocab_index per token)\nmetric v = vocab_size',
    );
    const out = evaluate(p, batch([1, 1]));
    expect([...out.exports.i.data]).toEqual([3, 3]);
    expect(out.metrics.v).toBe(3);
  });
});

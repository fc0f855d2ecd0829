/**
 * The importable modules (stdlib/lib): KL estimators with their straight-through variants,
 * advantage estimators and aggregation modes, checked value by value and gradient by gradient
 * against the formulas of methods-pg.md §0.1–§0.3, written out here by hand.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../compiler/interp/eval.js';
import { compileSource } from '../../src/compile.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { toRagged } from '../helpers/batches.js';
import type { RefBatch } from '../reference/batch.js';

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * (1 + Math.abs(b));

function run(body: string, rb: RefBatch) {
  const src = `objective lib_test\nimport kl\nimport agg\nimport advantages\ninput logp : token grad\ninput ref_logp : token\ninput reward : seq\nmask mask : token\n${body}\n`;
  const r = compileSource(src, 'lib-test.credo');
  if (!r.program) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return evaluate(r.program, toRagged(rb));
}

/** Per valid token: [value, d value / d logp] of each estimator (k = clamp(ref - logp, ±20)). */
const KL: Record<string, (lp: number, ref: number) => [number, number]> = {
  k1: (lp, ref) => [lp - ref, 1],
  k2: (lp, ref) => [0.5 * (lp - ref) ** 2, lp - ref],
  k3: (lp, ref) => {
    const k = Math.min(Math.max(ref - lp, -20), 20);
    const inside = ref - lp >= -20 && ref - lp <= 20;
    const v = Math.exp(k) - k - 1;
    const dk = inside ? -1 : 0; // dk/dlogp
    return [Math.min(Math.max(v, -10), 10), v >= -10 && v <= 10 ? (Math.exp(k) - 1) * dk : 0];
  },
  k1_st: (lp, ref) => [lp - ref, lp - ref],
  k2_st: (lp, ref) => [0.5 * (lp - ref) ** 2, lp - ref],
  k3_st: (lp, ref) => [KL.k3(lp, ref)[0], lp - ref],
};

describe('kl estimators (token-mean of each)', () => {
  it.each(Object.keys(KL))('%s: value and gradient', (name) => {
    fc.assert(
      fc.property(arbRefBatch(), (b) => {
        const out = run(`loss = mean(kl.${name}(logp, ref_logp))`, b);
        let n = 0;
        let sum = 0;
        b.mask.forEach((m) => (n += m));
        const grad = b.logp.map((lp, t) => {
          if (!b.mask[t]) return 0;
          const [v, d] = KL[name](lp, b.ref_logp[t]);
          sum += v;
          return d / n;
        });
        expect(close(out.loss, n ? sum / n : 0)).toBe(true);
        grad.forEach((g, t) => expect(close(out.grads.logp.data[t], g), `${name} grad[${t}]`).toBe(true));
      }),
      { numRuns: 100 },
    );
  });
});

describe('aggregation modes', () => {
  it('token_mean, seq_mean_token_mean, seq_mean_token_sum, seq_mean_token_sum_norm', () => {
    fc.assert(
      fc.property(arbRefBatch(), fc.constantFrom(1, 7, 3000), (b, c) => {
        const S = b.offsets.length - 1;
        const l = (t: number) => b.logp[t] * b.ref_logp[t];
        let tokSum = 0;
        let tokN = 0;
        let seqMeans = 0;
        let seqSums = 0;
        let seqs = 0;
        for (let s = 0; s < S; s++) {
          let sum = 0;
          let n = 0;
          for (let t = b.offsets[s]; t < b.offsets[s + 1]; t++) if (b.mask[t]) [sum, n] = [sum + l(t), n + 1];
          tokSum += sum;
          tokN += n;
          if (n > 0) [seqMeans, seqSums, seqs] = [seqMeans + sum / n, seqSums + sum, seqs + 1];
        }
        const want = {
          token_mean: tokN ? tokSum / tokN : 0,
          seq_mean_token_mean: seqs ? seqMeans / seqs : 0,
          seq_mean_token_sum: seqs ? seqSums / seqs : 0,
          seq_mean_token_sum_norm: tokSum / c,
        };
        for (const [mode, v] of Object.entries(want)) {
          const arg = mode === 'seq_mean_token_sum_norm' ? `logp * ref_logp, ${c}` : 'logp * ref_logp';
          expect(close(run(`loss = agg.${mode}(${arg})`, b).loss, v), mode).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('advantage estimators', () => {
  it('grpo (unbiased std), dr_grpo (centred), rloo (leave-one-out)', () => {
    fc.assert(
      fc.property(arbRefBatch({ minGroups: 1 }), (b) => {
        const out = run(
          'loss = mean(logp)\nexport a_grpo = advantages.grpo(reward, 1e-6)\nexport a_dr = advantages.dr_grpo(reward)\nexport a_rloo = advantages.rloo(reward)',
          b,
        );
        const S = b.offsets.length - 1;
        for (let s = 0; s < S; s++) {
          const members = [...Array(S).keys()].filter((j) => b.groupOf[j] === b.groupOf[s]);
          const rs = members.map((j) => b.reward[j]);
          const G = rs.length;
          const mean = rs.reduce((x, y) => x + y, 0) / G;
          const std = G > 1 ? Math.sqrt(rs.reduce((x, y) => x + (y - mean) ** 2, 0) / (G - 1)) : 0;
          const others = G > 1 ? (rs.reduce((x, y) => x + y, 0) - b.reward[s]) / (G - 1) : b.reward[s];
          expect(close(out.exports.a_grpo.data[s], (b.reward[s] - mean) / (std + 1e-6))).toBe(true);
          expect(close(out.exports.a_dr.data[s], b.reward[s] - mean)).toBe(true);
          expect(close(out.exports.a_rloo.data[s], G > 1 ? b.reward[s] - others : 0)).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  });
});

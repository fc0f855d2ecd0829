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
  it('token_mean, seq_mean_token_mean, seq_mean_token_sum, seq_mean_token_sum_norm, token_sum_norm, token_sum, by_mode', () => {
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
          // verl@1dda039: seq-mean-token-sum / loss_scale_factor (divides by the non-empty sequences too)
          seq_mean_token_sum_norm: seqs ? seqSums / seqs / c : 0,
          // verl before 2026 (b178a3c): total sum / c
          token_sum_norm: tokSum / c,
          token_sum: tokSum,
        };
        const withC = new Set(['seq_mean_token_sum_norm', 'token_sum_norm']);
        for (const [mode, v] of Object.entries(want)) {
          const arg = withC.has(mode) ? `logp * ref_logp, ${c}` : 'logp * ref_logp';
          expect(close(run(`loss = agg.${mode}(${arg})`, b).loss, v), mode).toBe(true);
        }
        const byCode = [want.token_mean, want.seq_mean_token_mean, want.seq_mean_token_sum];
        byCode.push(want.seq_mean_token_sum_norm, want.token_sum, want.token_sum_norm, want.token_mean);
        byCode.forEach((v, code) => {
          const got = run(`loss = agg.by_mode(logp * ref_logp, ${code}, ${c})`, b).loss;
          expect(close(got, v), `by_mode ${code}`).toBe(true);
        });
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

describe('verl advantage estimators (advantages.verl_*, tests/reference/verl-adv.ts)', () => {
  it('verl_grpo, grpo_vectorized, verl_rloo, rloo_vectorized, rpp_baseline, opo, grpo_passk, verl_gpg under both group-of-one rules', async () => {
    const V = await import('../reference/verl-adv.js');
    fc.assert(
      fc.property(arbRefBatch({ minGroups: 1 }), fc.constantFrom(0, 1), fc.constantFrom(0, 1), (b, sg, norm) => {
        const out = run(
          [
            'loss = mean(logp)',
            `export g = advantages.verl_grpo(reward, 1e-6, ${norm}, ${sg})`,
            `export gv = advantages.grpo_vectorized(reward, 1e-6, ${sg})`,
            `export rl = advantages.verl_rloo(reward, ${sg})`,
            'export rv = advantages.rloo_vectorized(reward)',
            `export rpp = advantages.rpp_baseline(reward, ${sg})`,
            `export o = advantages.opo(reward, ${sg})`,
            `export pk = advantages.grpo_passk(reward, 1e-6, ${norm})`,
            `export gp = advantages.verl_gpg(reward, ${sg})`,
          ].join('\n'),
          b,
        );
        const rb = toRagged(b);
        const R = b.reward;
        const want: Record<string, number[]> = {
          g: V.grpoLoop(rb, R, 1e-6, norm === 1, sg),
          gv: V.grpoVectorized(rb, R, 1e-6, sg),
          rl: V.rlooLoop(rb, R, sg),
          rv: V.rlooVectorized(rb, R),
          o: V.opo(rb, R, sg),
          pk: V.grpoPassk(rb, R, 1e-6, norm === 1),
          gp: V.gpg(rb, R, sg).A,
        };
        for (const [k, w] of Object.entries(want))
          w.forEach((x, s) => expect(close(out.exports[k]!.data[s]!, x), `${k}[${s}]`).toBe(true));
        const tok = V.rppBaselineTok(rb, R, sg);
        for (let s = 0; s < b.offsets.length - 1; s++)
          for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++)
            if (b.mask[t] === 1) expect(close(out.exports.rpp!.data[s]!, tok[t]!), `rpp[${s}]`).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

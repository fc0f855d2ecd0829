/**
 * Appendix A of methods-pg.md (equivalence checklist) for the baseline objectives ppo, dr_grpo,
 * gmpo, cispo, gpg, rloo and reinforce_pp: each item compares two stdlib objectives (or an objective
 * and the closed form it reduces to) on the same random ragged grouped batches. Tolerance
 * |a - b| <= 1e-9 (1 + |b|) unless stated.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EvalResult } from '../../compiler/interp/eval.js';
import { compile } from '../../src/objective.js';
import { toRagged } from '../helpers/batches.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { groupAdvantages, seqLengths, type RefBatch } from '../reference/batch.js';
import { aggWeights, seqToToken } from '../reference/ppo.js';
import { close, expectReinforceGrad, expectSameRun, withInput } from './baselines-helpers.js';

const obj = Object.fromEntries(
  ['ppo', 'dr_grpo', 'gmpo', 'cispo', 'gpg', 'rloo', 'reinforce_pp', 'grpo', 'dapo', 'gspo', 'holder_po'].map((n) => [
    n,
    compile(n),
  ]),
);

const run = (name: string, b: RefBatch, params: Record<string, number> = {}): EvalResult =>
  obj[name]!.run(toRagged(b), { params });

/** ppo on a per-sequence advantage broadcast to the tokens. */
const runPpo = (b: RefBatch, advSeq: ArrayLike<number>, params: Record<string, number> = {}): EvalResult =>
  obj.ppo!.run(withInput(toRagged(b), 'advantage', 'token', seqToToken(b, Array.from(advSeq))), { params });

const grpoAdv = (b: RefBatch, eps = 1e-6) => groupAdvantages(b, b.reward, eps);

/** Batches whose valid sequences all have one valid token (L_i ∈ {0, 1}). */
const arbLengthOne = arbRefBatch({ maxLen: 1 });

describe('Appendix A — PPO clip and dual clip', () => {
  it('ppo with A = GRPO advantage, eps 0.2/0.2, clip_c → ∞, seq-mean-token-mean = grpo with beta = 0', () => {
    fc.assert(
      fc.property(arbRefBatch(), fc.constantFrom(0.2, 0.1), (b, epsLow) => {
        const viaPpo = runPpo(b, grpoAdv(b), { eps_low: epsLow, clip_c: 1e30, loss_agg_mode: 1 });
        expectSameRun(viaPpo, run('grpo', b, { beta: 0, eps_low: epsLow }), ['clip_frac']);
      }),
      { numRuns: 200 },
    );
  });

  it('ppo with A = GRPO advantage, eps 0.2/0.28, clip_c = 10, token-mean = dapo (defaults)', () => {
    fc.assert(
      fc.property(arbRefBatch(), (b) => {
        const viaPpo = runPpo(b, grpoAdv(b), { eps_high: 0.28, clip_c: 10 });
        expectSameRun(viaPpo, run('dapo', b), ['clip_frac', 'dual_clip_frac']);
      }),
      { numRuns: 200 },
    );
  });

  it('dual clip, clip_c → ∞: once clip_c exceeds every ratio the dual clip is inactive, = clip_c 1e30', () => {
    fc.assert(
      fc.property(arbRefBatch(), (b) => {
        const maxRatio = Math.max(
          1,
          ...b.logp.map((lp, t) => Math.exp(Math.min(Math.max(lp - b.old_logp[t]!, -20), 20))),
        );
        const adv = grpoAdv(b);
        const finite = runPpo(b, adv, { clip_c: 2 * maxRatio + 1 });
        const infinite = runPpo(b, adv, { clip_c: 1e30 });
        expectSameRun(finite, infinite, ['clip_frac', 'dual_clip_frac']);
        expect(infinite.metrics.dual_clip_frac).toBe(0);
      }),
      { numRuns: 200 },
    );
  });
});

describe('Appendix A — on-policy single step: REINFORCE with the aggregation of each method', () => {
  type Case = [
    name: string,
    params: Record<string, number>,
    adv: (b: RefBatch, got: EvalResult) => number[],
    weights: (b: RefBatch) => number[],
  ];
  const seqMeanTokenMean = (b: RefBatch) => aggWeights(b, 1, 0);
  const tokenMean = (b: RefBatch) => aggWeights(b, 0, 0);
  const exported = (_b: RefBatch, got: EvalResult) => Array.from(got.exports.advantage!.data);
  const cases: Case[] = [
    ['grpo', { beta: 0 }, (b) => grpoAdv(b), seqMeanTokenMean],
    ['dapo', {}, (b) => grpoAdv(b), tokenMean],
    ['gspo', {}, (b) => grpoAdv(b), seqMeanTokenMean],
    ['gmpo', {}, exported, seqMeanTokenMean],
    ['cispo', {}, exported, tokenMean],
    ['dr_grpo', {}, exported, (b) => b.mask.map(() => 1 / (3000 * Math.max(b.offsets.length - 1, 1)))],
    ['dr_grpo', { divide_by_seqs: 0, max_len: 8 }, exported, (b) => b.mask.map(() => 1 / 8)],
    ['rloo', {}, exported, tokenMean],
    ['rloo', { loss_agg_mode: 2 }, exported, (b) => aggWeights(b, 2, 0)],
    ['reinforce_pp', {}, exported, tokenMean],
    ['reinforce_pp', { loss_agg_mode: 1 }, exported, seqMeanTokenMean],
  ];
  it.each(cases)('%s %o: gradient -A_i w_t', (name, params, adv, weights) => {
    fc.assert(
      fc.property(arbRefBatch({ onPolicy: true }), (b) => {
        const got = run(name, b, params);
        expectReinforceGrad(got, b, seqToToken(b, adv(b, got)), weights(b));
      }),
      { numRuns: 100 },
    );
  });

  it('ppo with a token-level advantage, every aggregation mode', () => {
    fc.assert(
      fc.property(arbRefBatch({ onPolicy: true }), fc.constantFrom(0, 1, 2, 3), (b, mode) => {
        const adv = b.logp.map((lp, t) => Math.sin(3 * t + lp)); // any token-level advantage
        const got = obj.ppo!.run(withInput(toRagged(b), 'advantage', 'token', adv), {
          params: { loss_agg_mode: mode, max_len: 9 },
        });
        expectReinforceGrad(got, b, adv, aggWeights(b, mode, 9));
      }),
      { numRuns: 100 },
    );
  });

  it('same advantage and aggregation → same update: gmpo = gspo = grpo(beta 0) and cispo = dapo (loss and gradient)', () => {
    fc.assert(
      fc.property(arbRefBatch({ onPolicy: true }), (b) => {
        const grpo = run('grpo', b, { beta: 0, eps_low: 0.4, eps_high: 0.4 });
        expectSameRun(run('gmpo', b), grpo);
        expectSameRun(run('gspo', b), grpo);
        const dapo = run('dapo', b);
        const cispo = run('cispo', b);
        // cispo's loss value is -A logp, not -A r: compare gradients only
        expectSameRun({ ...cispo, loss: dapo.loss }, dapo);
      }),
      { numRuns: 150 },
    );
  });
});

describe('Appendix A — Dr.GRPO = GRPO with norm_adv_by_std = False + constant-normaliser token sum', () => {
  it('dr_grpo (verl form, divide_by_seqs = 0) = ppo with A = R - mean_g R, clip_c → ∞, seq-mean-token-sum-norm', () => {
    fc.assert(
      fc.property(arbRefBatch(), fc.constantFrom(3000, 7), fc.constantFrom(0.2, 0.1), (b, maxLen, eps) => {
        const dr = run('dr_grpo', b, { divide_by_seqs: 0, max_len: maxLen, eps_low: eps });
        const viaPpo = runPpo(b, dr.exports.advantage!.data, {
          clip_c: 1e30,
          loss_agg_mode: 5,
          max_len: maxLen,
          eps_low: eps,
        });
        expectSameRun(dr, viaPpo, ['clip_frac', 'ppo_kl']);
      }),
      { numRuns: 200 },
    );
  });

  it('dr_grpo advantage = grpo advantage times (std_g R + adv_eps): R - mean_g R', () => {
    fc.assert(
      fc.property(arbRefBatch(), (b) => {
        const A = run('dr_grpo', b).exports.advantage!.data;
        const S = b.offsets.length - 1;
        for (let s = 0; s < S; s++) {
          const rs = b.reward.filter((_, j) => b.groupOf[j] === b.groupOf[s]);
          const mean = rs.reduce((u, v) => u + v, 0) / rs.length;
          const std = rs.length > 1 ? Math.sqrt(rs.reduce((u, v) => u + (v - mean) ** 2, 0) / (rs.length - 1)) : 0;
          expect(close(A[s]!, grpoAdv(b)[s]! * (std + 1e-6), 1e-8)).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('Appendix A — GMPO', () => {
  it('all L_i = 1, eps_low = -log(1 - e), eps_high = log(1 + e): token PPO-clip = grpo with beta = 0', () => {
    fc.assert(
      fc.property(arbLengthOne, fc.constantFrom(0.2, 0.1), (b, e) => {
        const gmpo = run('gmpo', b, { eps_low: -Math.log(1 - e), eps_high: Math.log(1 + e) });
        expectSameRun(gmpo, run('grpo', b, { beta: 0, eps_low: e, eps_high: e }));
      }),
      { numRuns: 200 },
    );
  });

  it('HölderPO token variant with p → 0 = gmpo with the bounds -log(1 - eps), log(1 + eps) (value and gradient)', () => {
    fc.assert(
      fc.property(arbRefBatch(), fc.constantFrom(0.2, 0.1), (b, e) => {
        const gmpo = run('gmpo', b, { eps_low: -Math.log(1 - e), eps_high: Math.log(1 + e) });
        const holder = obj.holder_po!.run(toRagged(b), {
          params: { variant: 1, p_schedule: 0, p: 0, eps_low: e, eps_high: e },
        });
        expectSameRun(gmpo, holder);
      }),
      { numRuns: 200 },
    );
  });

  it('eps → ∞ (no clipping): the geometric-mean ratio objective = gspo with eps → ∞ (value and gradient)', () => {
    fc.assert(
      fc.property(arbRefBatch(), (b) => {
        const gmpo = run('gmpo', b, { eps_low: 1e30, eps_high: 1e30 });
        expectSameRun(gmpo, run('gspo', b, { eps_low: 1e30, eps_high: 1e30 }));
      }),
      { numRuns: 200 },
    );
  });
});

describe('Appendix A — CISPO', () => {
  it('eps → ∞: unclipped IS-weighted policy gradient, gradient -r_t A_i / N', () => {
    fc.assert(
      fc.property(arbRefBatch(), (b) => {
        const got = run('cispo', b, { eps_low: 1e30, eps_high: 1e30 });
        const A = seqToToken(b, Array.from(got.exports.advantage!.data));
        const weighted = A.map((a, t) => a * Math.exp(Math.min(Math.max(b.logp[t]! - b.old_logp[t]!, -20), 20)));
        expectReinforceGrad(got, b, weighted, aggWeights(b, 0, 0));
        expect(got.metrics.clip_frac).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('on-policy: REINFORCE with token-mean = gpg with alpha = 1, F = std + 1e-6 (loss and gradient)', () => {
    fc.assert(
      fc.property(arbRefBatch({ onPolicy: true }), fc.constantFrom(0, 1, 2, 3), (b, mode) => {
        const cispo = run('cispo', b, { loss_agg_mode: mode });
        const gpg = run('gpg', b, { alpha_mode: 0, std_norm: 1, adv_eps: 1e-6, loss_agg_mode: mode });
        expectSameRun(cispo, gpg);
      }),
      { numRuns: 150 },
    );
  });
});

describe('Appendix A — RLOO and REINFORCE++ are PPO on their advantages', () => {
  const ppoParams = fc.record({
    eps_high: fc.constantFrom(0.2, 0.28),
    clip_c: fc.constantFrom(3, 1e30),
    loss_agg_mode: fc.constantFrom(0, 1, 2, 3),
  });

  it('rloo = ppo with A_i = R_i - mean of the other rewards of the group', () => {
    fc.assert(
      fc.property(arbRefBatch(), ppoParams, (b, p) => {
        const S = b.offsets.length - 1;
        const loo = Array.from({ length: S }, (_, i) => {
          const others = b.reward.filter((_, j) => j !== i && b.groupOf[j] === b.groupOf[i]);
          return others.length ? b.reward[i]! - others.reduce((u, v) => u + v, 0) / others.length : 0;
        });
        const got = run('rloo', b, p);
        // the advantages agree to rounding; compare the update, not the clip counts of zero-advantage tokens
        expectSameRun(got, runPpo(b, loo, p), [], 1e-8);
      }),
      { numRuns: 200 },
    );
  });

  it('reinforce_pp = ppo with the batch-whitened group-centred advantage (whitening over valid tokens)', () => {
    fc.assert(
      fc.property(arbRefBatch(), ppoParams, (b, p) => {
        // whiten a_i = R_i - mean_g R over the valid tokens, written per token
        const S = b.offsets.length - 1;
        const L = seqLengths(b);
        const a = Array.from({ length: S }, (_, i) => {
          const rs = b.reward.filter((_, j) => b.groupOf[j] === b.groupOf[i]);
          return b.reward[i]! - rs.reduce((u, v) => u + v, 0) / rs.length;
        });
        const tok: number[] = [];
        for (let s = 0; s < S; s++) for (let k = 0; k < L[s]!; k++) tok.push(a[s]!);
        const mu = tok.reduce((u, v) => u + v, 0) / Math.max(tok.length, 1);
        const v = tok.reduce((u, x) => u + (x - mu) ** 2, 0) / Math.max(tok.length - 1, 1);
        const white = a.map((x) => (x - mu) / Math.sqrt(v + 1e-8));
        expectSameRun(run('reinforce_pp', b, p), runPpo(b, white, p), [], 1e-7);
      }),
      { numRuns: 200 },
    );
  });
});

/**
 * Co-GRPO reference (reconstructed, methods-dpo.md §9), float64, loops.
 *
 *   A = (R − mean_resp) / (std_resp + adv_eps) (std_norm = 1) or R − mean_resp
 *   level 0: Σ_steps [Σ_tok −surr(d_tok) / #tok] / S + c · Σ_steps [Σ_views −surr(d_sched) / #views] / S
 *   level 1: Σ_steps [Σ_views −surr(d_step) / #views] / S,  d_step = Σ_tok d_tok + d_sched
 *   level 2: Σ_resp −surr(d_traj) / #resp (each view its own A, weight 1/#views),  d_traj = Σ_views of the response d_step
 *   + β · token mean of k3
 *
 * Hand-derived gradient: ∂surr(d)/∂d (ppoSurr) chained through the sums: d_step and d_traj are
 * linear in lp (coefficient 1 at each valid token) and in sched_logp (coefficient 1).
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, sequencesByGroup, validTokensOf, values, zeros } from './family.js';
import { k3Tok, ppoSurr, responseCentred, responseStd } from './diffu_grpo.js';
import { viewsByStep } from './cj_grpo.js';

export interface CoGrpoParams {
  eps: number;
  beta: number;
  std_norm: number;
  adv_eps: number;
  sched_coef: number;
  ratio_level: number;
}

export const CO_GRPO_DEFAULTS: CoGrpoParams = {
  eps: 0.2,
  beta: 0,
  std_norm: 1,
  adv_eps: 1e-6,
  sched_coef: 1,
  ratio_level: 1,
};

export function coGrpoRef(b: RaggedBatch, params: Partial<CoGrpoParams> = {}): FamilyResult {
  const p = { ...CO_GRPO_DEFAULTS, ...params };
  const [lp, old, ref, sl, osl, reward, resp] = [
    'logp',
    'old_logp',
    'ref_logp',
    'sched_logp',
    'old_sched_logp',
    'reward',
    'response',
  ].map((n) => values(b, n)) as number[][];
  const c = responseCentred(b, reward!);
  const sd = responseStd(b, reward!);
  const adv = c.map((x, s) => (p.std_norm > 0 ? x / (sd[s]! + p.adv_eps) : x));
  const [lo, hi] = [1 - p.eps, 1 + p.eps];
  const gLp = zeros(b.numTokens);
  const gS = zeros(b.numSeqs);
  const steps = viewsByStep(b);
  const S = steps.length;
  const dStep = (s: number) => validTokensOf(b, s).reduce((a, t) => a + lp![t]! - old![t]!, 0) + sl![s]! - osl![s]!;
  let loss = 0;
  if (p.ratio_level < 0.5) {
    for (const seqs of steps) {
      const n = seqs.reduce((a, s) => a + validTokensOf(b, s).length, 0);
      for (const s of seqs) {
        for (const t of validTokensOf(b, s)) {
          const q = ppoSurr(lp![t]! - old![t]!, adv[s]!, lo, hi);
          loss += -q.v / Math.max(n, 1) / S;
          gLp[t] += -q.dd / Math.max(n, 1) / S;
        }
        const q = ppoSurr(sl![s]! - osl![s]!, adv[s]!, lo, hi);
        loss += (p.sched_coef * -q.v) / seqs.length / S;
        gS[s] += (p.sched_coef * -q.dd) / seqs.length / S;
      }
    }
  } else if (p.ratio_level < 1.5) {
    for (const seqs of steps)
      for (const s of seqs) {
        const q = ppoSurr(dStep(s), adv[s]!, lo, hi);
        loss += -q.v / seqs.length / S;
        for (const t of validTokensOf(b, s)) gLp[t] += -q.dd / seqs.length / S;
        gS[s] += -q.dd / seqs.length / S;
      }
  } else {
    const responses: number[][] = [];
    for (const seqs of sequencesByGroup(b)) {
      const by = new Map<number, number[]>();
      for (const s of seqs) by.set(resp![s]!, [...(by.get(resp![s]!) ?? []), s]);
      responses.push(...by.values());
    }
    for (const views of responses) {
      const D = views.reduce((a, s) => a + dStep(s), 0);
      for (const s of views) {
        const q = ppoSurr(D, adv[s]!, lo, hi);
        const k = 1 / views.length / responses.length;
        loss += -q.v * k;
        for (const v of views) {
          for (const t of validTokensOf(b, v)) gLp[t] += -q.dd * k;
          gS[v] += -q.dd * k;
        }
      }
    }
  }
  let n = 0;
  let klSum = 0;
  const klG: [number, number][] = [];
  for (let s = 0; s < b.numSeqs; s++)
    for (const t of validTokensOf(b, s)) {
      const k = k3Tok(lp![t]!, ref![t]!);
      klSum += k.v;
      klG.push([t, k.dlp]);
      n++;
    }
  for (const [t, d] of klG) gLp[t] += (p.beta * d) / n;
  return {
    loss: loss + (n ? (p.beta * klSum) / n : 0),
    metrics: { kl: n ? klSum / n : 0 },
    grads: { logp: gLp, sched_logp: gS },
    exports: { adv },
  };
}

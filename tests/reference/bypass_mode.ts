/**
 * bypass_mode reference: verl@1dda039 compute_policy_loss_bypass_mode → compute_policy_loss_vanilla
 * (loss_type ppo_clip) or compute_policy_loss_reinforce with the IS weights of
 * rollout_corr_helper.compute_rollout_correction_weights (loss_type reinforce), float64 loops.
 *   loss_type != 1: the vanilla token term (tests/reference/ppo.ts ppoToken) on old_logp = rollout log-prob
 *   loss_type 1:    l = -A logp w, w detached:
 *     rollout_is 1: min(exp(clip(logp - old_logp, -20, 20)), thr); 2: min(exp(clip(Σ_seq(logp - old_logp),
 *     -20, 20)), thr); other: 1. Batch normalize (rollout_is 1 or 2): w / mean, mean = token-mean of
 *     the token weights / mean over non-empty sequences of the sequence weights, when mean > 1e-8.
 *   loss = agg(l). Detached weights are computed from the `sg` batch (the batch itself by default).
 * Metrics: clip_frac, dual_clip_frac, ppo_kl as ppo (loss_type != 1); 0, 0, token-mean(old - logp) (1).
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, values } from './family.js';
import { ppoToken } from './ppo.js';
import { aggV, aggW, clamp, ins, tokMean, view } from './verl-losses-helpers.js';

export interface BypassParams {
  loss_type: number;
  eps_low: number;
  eps_high: number;
  clip_c: number;
  rollout_is: number;
  is_threshold: number;
  is_batch_normalize: number;
  loss_agg_mode: number;
  max_len: number;
}

export const BYPASS_DEFAULTS: BypassParams = {
  loss_type: 0,
  eps_low: 0.2,
  eps_high: 0.2,
  clip_c: 3,
  rollout_is: 0,
  is_threshold: 2,
  is_batch_normalize: 0,
  loss_agg_mode: 0,
  max_len: 3000,
};

export function bypassRef(b: RaggedBatch, params: Partial<BypassParams> = {}, sg: RaggedBatch = b): FamilyResult {
  const p = { ...BYPASS_DEFAULTS, ...params };
  const v = view(b);
  const { logp, old, adv } = ins(b);
  const lpS = values(sg, 'logp');
  const wAgg = aggW(v, p.loss_agg_mode, p.max_len);
  const l = new Array<number>(v.T).fill(0);
  const grad = new Array<number>(v.T).fill(0);
  if (p.loss_type !== 1) {
    let clip = 0;
    let dual = 0;
    let kl = 0;
    for (let t = 0; t < v.T; t++) {
      if (!v.valid[t]) continue;
      const k = ppoToken(adv[t]!, logp[t]!, old[t]!, p.eps_low, p.eps_high, p.clip_c);
      l[t] = k.l;
      grad[t] = wAgg[t]! * k.dl;
      if (k.clipped) clip++;
      if (k.dual) dual++;
      kl += -k.d;
    }
    return {
      loss: aggV(v, l, p.loss_agg_mode, p.max_len),
      metrics: { clip_frac: v.N ? clip / v.N : 0, dual_clip_frac: v.N ? dual / v.N : 0, ppo_kl: v.N ? kl / v.N : 0 },
      grads: { logp: grad },
    };
  }
  const seqLr = new Array<number>(v.S).fill(0);
  for (let t = 0; t < v.T; t++) if (v.valid[t]) seqLr[v.seq[t]!]! += lpS[t]! - old[t]!;
  const wSeq = seqLr.map((x) => Math.min(Math.exp(clamp(x, -20, 20)), p.is_threshold));
  const wTok = (t: number) => Math.min(Math.exp(clamp(lpS[t]! - old[t]!, -20, 20)), p.is_threshold);
  const raw = (t: number) => (p.rollout_is === 1 ? wTok(t) : p.rollout_is === 2 ? wSeq[v.seq[t]!]! : 1);
  let norm = 1;
  if (p.is_batch_normalize > 0 && (p.rollout_is === 1 || p.rollout_is === 2)) {
    const m =
      p.rollout_is === 1
        ? tokMean(v, wTok)
        : v.nSeqs
          ? wSeq.reduce((a, x, s) => a + (v.L[s]! > 0 ? x : 0), 0) / v.nSeqs
          : 0;
    if (m > 1e-8) norm = m;
  }
  for (let t = 0; t < v.T; t++) {
    if (!v.valid[t]) continue;
    const w = raw(t) / norm;
    l[t] = -adv[t]! * logp[t]! * w;
    grad[t] = wAgg[t]! * -adv[t]! * w;
  }
  return {
    loss: aggV(v, l, p.loss_agg_mode, p.max_len),
    metrics: { clip_frac: 0, dual_clip_frac: 0, ppo_kl: tokMean(v, (t) => old[t]! - logp[t]!) },
    grads: { logp: grad },
  };
}

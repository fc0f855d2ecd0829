/**
 * OpenRLHF actor-loss references (stdlib/openrlhf_ppo.credo, stdlib/openrlhf_gspo.credo), float64,
 * loops, written from OpenRLHF@3c3be623 openrlhf/models/loss.py (PolicyLoss.forward,
 * aggregate_loss), openrlhf/models/utils.py (compute_approx_kl) and ppo_actor.py (training_step).
 *
 * PolicyLoss "ppo", per valid token t (A = advantage):
 *   r = exp(clamp(logp − old, −20, 20)), surr1 = rA, surr2 = clamp(r, 1−εl, 1+εh)A, c1 = min(surr1, surr2)
 *   l = −c1, or with a dual clip c: l = −(A < 0 ? max(c1, cA) : c1)
 *   vLLM IS weight (detached), ρ = exp(old − rollout):
 *     tis: clamp(ρ, lo, hi); icepop: ρ·[lo ≤ ρ ≤ hi]; seq-mask-tis: ρ·[lo ≤ exp(masked_mean_i(old − rollout)) ≤ hi]
 *   aggregate_loss: token-level Σ w l / N (N = valid tokens); per-sample (1/B') Σ_i Σ_t w l / (L_i + 1e-8)
 *   (B' = sequences with L_i > 0: get_loss_batch_info's global_batch_size).
 * PolicyLoss "gspo": δ = logp − (rollout if corrected else old), s_i = exp(Σ_t δ / max(L_i, 1)), the
 *   same clip / dual clip on s_i with the token's A, always per-sample, no IS weight.
 * KL loss (use_loss): compute_approx_kl(logp, ref): Δ = logp − ref; k1 Δ, k2 Δ²/2, k3 e^−Δ − 1 + Δ,
 *   clamp(−10, 10); aggregate_loss's default token level; + kl_coef · that (when kl_coef > 0).
 *
 * Hand-derived gradients w.r.t. logp:
 *   ppo: dl_t = −(A<0 & dual ? max-weight of c1 : 1) · (min-weights on (A dr, A [lo≤r≤hi] dr)),
 *        dr = r [−20 ≤ logp−old ≤ 20]; ∂loss/∂logp_t = agg_weight_t · w_t · dl_t.
 *   gspo: ∂l_t/∂s as above with dr = 1, then ∂loss/∂logp_u = Σ_t agg_weight_t ∂l_t/∂s · s / L_i for
 *        every valid u of sequence i (s depends on all of its tokens).
 *   KL: ∂/∂logp_t = coef/N · [−10 ≤ k ≤ 10] · (1, Δ, 1 − e^−Δ) for k1, k2, k3.
 * An empty batch gives 0 (OpenRLHF: 0/0).
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, validTokensOf, values, zeros } from './family.js';
import { clipG, maxG, minG } from './ops.js';

export interface OpenrlhfPpoParams {
  eps_low: number;
  eps_high: number;
  dual_clip: number;
  token_level_loss: number;
  is_correction: number;
  is_low: number;
  is_high: number;
  use_kl_loss: number;
  kl_estimator: number;
  kl_coef: number;
  seq_eps: number;
}

export const OPENRLHF_PPO_DEFAULTS: OpenrlhfPpoParams = {
  eps_low: 0.2,
  eps_high: 0.2,
  dual_clip: 0,
  token_level_loss: 1,
  is_correction: 0,
  is_low: 0.5,
  is_high: 5,
  use_kl_loss: 0,
  kl_estimator: 1,
  kl_coef: 0.01,
  seq_eps: 1e-8,
};

export type OpenrlhfGspoParams = Omit<OpenrlhfPpoParams, 'token_level_loss' | 'is_low' | 'is_high'>;

export const OPENRLHF_GSPO_DEFAULTS: OpenrlhfGspoParams = {
  eps_low: 0.2,
  eps_high: 0.2,
  dual_clip: 0,
  is_correction: 0,
  use_kl_loss: 0,
  kl_estimator: 1,
  kl_coef: 0.01,
  seq_eps: 1e-8,
};

/** -min(surr1, surr2) with the optional dual clip, and its derivative given d surr1 and d surr2. */
function clippedLoss(
  surr1: number,
  surr2: number,
  dsurr1: number,
  dsurr2: number,
  a: number,
  dual: number,
): { l: number; dl: number } {
  const m = minG(surr1, surr2);
  const dc1 = m.da * dsurr1 + m.db * dsurr2;
  if (dual > 0 && a < 0) {
    const mx = maxG(m.v, dual * a);
    return { l: -mx.v, dl: -mx.da * dc1 };
  }
  return { l: -m.v, dl: -dc1 };
}

/** compute_approx_kl of one token, clamped, with d/dlogp. */
function approxKl(delta: number, estimator: number): { k: number; dk: number } {
  let raw = delta;
  let draw = 1;
  if (estimator === 2) {
    raw = (delta * delta) / 2;
    draw = delta;
  } else if (estimator === 3) {
    raw = Math.exp(-delta) - 1 + delta;
    draw = 1 - Math.exp(-delta);
  }
  const c = clipG(raw, -10, 10);
  return { k: c.v, dk: c.dx * draw };
}

interface Common {
  valid: number[][];
  N: number;
  Bp: number;
}

function common(b: RaggedBatch): Common {
  const valid = Array.from({ length: b.numSeqs }, (_, s) => validTokensOf(b, s));
  let N = 0;
  let Bp = 0;
  for (const ts of valid) {
    N += ts.length;
    if (ts.length > 0) Bp++;
  }
  return { valid, N, Bp };
}

/** The KL loss term (token mean) added to loss and grad; returns the kl and logprobs_diff metrics. */
function addKl(
  b: RaggedBatch,
  c: Common,
  p: { use_kl_loss: number; kl_estimator: number; kl_coef: number },
  grad: number[],
): { term: number; kl: number; diff: number } {
  const logp = values(b, 'logp');
  const ref = values(b, 'ref_logp');
  const coef = p.use_kl_loss !== 0 && p.kl_coef > 0 ? p.kl_coef : 0;
  let klSum = 0;
  let diffSum = 0;
  for (const ts of c.valid)
    for (const t of ts) {
      const delta = logp[t]! - ref[t]!;
      const { k, dk } = approxKl(delta, p.kl_estimator);
      klSum += k;
      diffSum += delta;
      if (coef !== 0) grad[t]! += (coef * dk) / c.N;
    }
  const kl = c.N ? klSum / c.N : 0;
  return { term: coef * kl, kl, diff: c.N ? diffSum / c.N : 0 };
}

export function openrlhfPpoRef(b: RaggedBatch, params: Partial<OpenrlhfPpoParams> = {}): FamilyResult {
  const p = { ...OPENRLHF_PPO_DEFAULTS, ...params };
  const logp = values(b, 'logp');
  const old = values(b, 'old_logp');
  const roll = values(b, 'rollout_logp');
  const adv = values(b, 'advantage');
  const c = common(b);
  const grad = zeros(b.numTokens);
  let policy = 0;
  let clipped = 0;
  let ppoKl = 0;
  let vllmKl = 0;
  c.valid.forEach((ts, s) => {
    const L = ts.length;
    if (L === 0) return;
    let seqLogRatio = 0;
    for (const t of ts) seqLogRatio += old[t]! - roll[t]!;
    const seqIs = Math.exp(seqLogRatio / L);
    const seqKeep = seqIs >= p.is_low && seqIs <= p.is_high;
    // aggregation weight of each token of this sequence
    const aggW = p.token_level_loss === 0 ? 1 / ((L + p.seq_eps) * c.Bp) : 1 / c.N;
    for (const t of ts) {
      const a = adv[t]!;
      const d = clipG(logp[t]! - old[t]!, -20, 20);
      const r = Math.exp(d.v);
      const dr = r * d.dx;
      const rc = clipG(r, 1 - p.eps_low, 1 + p.eps_high);
      const surr1 = r * a;
      const surr2 = rc.v * a;
      const { l, dl } = clippedLoss(surr1, surr2, a * dr, a * rc.dx * dr, a, p.dual_clip);
      const rho = Math.exp(old[t]! - roll[t]!);
      let w = 1;
      if (p.is_correction === 1) w = Math.min(Math.max(rho, p.is_low), p.is_high);
      else if (p.is_correction === 2) w = rho >= p.is_low && rho <= p.is_high ? rho : 0;
      else if (p.is_correction === 3) w = seqKeep ? rho : 0;
      policy += aggW * w * l;
      grad[t]! += aggW * w * dl;
      if (surr2 < surr1) clipped++;
      ppoKl += old[t]! - logp[t]!;
      vllmKl += roll[t]! - old[t]!;
    }
  });
  const kl = addKl(b, c, p, grad);
  const mean = (x: number) => (c.N ? x / c.N : 0);
  return {
    loss: policy + kl.term,
    metrics: {
      clip_frac: mean(clipped),
      ppo_kl: mean(ppoKl),
      vllm_kl: mean(vllmKl),
      policy_loss: policy,
      kl: kl.kl,
      logprobs_diff: kl.diff,
    },
    grads: { logp: grad },
  };
}

export function openrlhfGspoRef(b: RaggedBatch, params: Partial<OpenrlhfGspoParams> = {}): FamilyResult {
  const p = { ...OPENRLHF_GSPO_DEFAULTS, ...params };
  const logp = values(b, 'logp');
  const old = values(b, 'old_logp');
  const roll = values(b, 'rollout_logp');
  const adv = values(b, 'advantage');
  const c = common(b);
  const grad = zeros(b.numTokens);
  let policy = 0;
  let clipped = 0;
  let ppoKl = 0;
  c.valid.forEach((ts) => {
    const L = ts.length;
    if (L === 0) return;
    let sum = 0;
    for (const t of ts) sum += logp[t]! - (p.is_correction !== 0 ? roll[t]! : old[t]!);
    const sRatio = Math.exp(sum / L);
    const aggW = 1 / ((L + p.seq_eps) * c.Bp);
    let dLossDs = 0;
    for (const t of ts) {
      const a = adv[t]!;
      const sc = clipG(sRatio, 1 - p.eps_low, 1 + p.eps_high);
      const surr1 = sRatio * a;
      const surr2 = sc.v * a;
      const { l, dl } = clippedLoss(surr1, surr2, a, a * sc.dx, a, p.dual_clip);
      policy += aggW * l;
      dLossDs += aggW * dl;
      if (surr2 < surr1) clipped++;
      ppoKl += old[t]! - logp[t]!;
    }
    for (const t of ts) grad[t]! += (dLossDs * sRatio) / L;
  });
  const kl = addKl(b, c, p, grad);
  return {
    loss: policy + kl.term,
    metrics: {
      clip_frac: c.N ? clipped / c.N : 0,
      ppo_kl: c.N ? ppoKl / c.N : 0,
      policy_loss: policy,
      kl: kl.kl,
      logprobs_diff: kl.diff,
    },
    grads: { logp: grad },
  };
}

/**
 * The batch with rollout_logp = old_logp − scale·u (u the batch's own rollout_logp draw, in about
 * [−3, 3]): rollout log-ratios near 0, so that the thresholds of the corrections bite on some tokens
 * and not others (independent draws put most weights far outside [0.5, 5]).
 */
export function withNearRollout(b: RaggedBatch, scale: number): RaggedBatch {
  const old = values(b, 'old_logp');
  const u = values(b, 'rollout_logp');
  const tensors = new Map(b.tensors);
  const t = b.tensors.get('rollout_logp')!;
  tensors.set('rollout_logp', { ...t, data: Float64Array.from(old, (o, i) => Math.fround(o - scale * u[i]!)) });
  return { ...b, tensors };
}

/** The batch with tensor `name` replaced by a copy of tensor `from`. */
export function withCopy(b: RaggedBatch, name: string, from: string): RaggedBatch {
  const tensors = new Map(b.tensors);
  const src = b.tensors.get(from)!;
  tensors.set(name, { ...src, data: Float64Array.from(src.data) });
  return { ...b, tensors };
}

/** The batch with every log-ratio logp − old_logp clamped to ±m (old_logp moved; for finite differences). */
export function withTameRatios(b: RaggedBatch, m: number): RaggedBatch {
  const logp = values(b, 'logp');
  const old = values(b, 'old_logp');
  const tensors = new Map(b.tensors);
  const t = b.tensors.get('old_logp')!;
  const data = Float64Array.from(old, (o, i) => Math.fround(logp[i]! - Math.min(Math.max(logp[i]! - o, -m), m)));
  tensors.set('old_logp', { ...t, data });
  return { ...b, tensors };
}

/**
 * RTO reference (stdlib/rto.credo: PPO with GAE on DPO-derived token rewards, OpenRLHF), float64, loops.
 *
 * Per response, over its valid tokens t_1 … t_L (t_L the EOS):
 *   r_dpo = β1 (dpo_logp − ref_logp), clamped to ±dpo_clip when dpo_clip > 0
 *   R_k = r_dpo_k − max(β2, 0)(old_logp_k − ref_logp_k) + [k = L] clip(rm_score, ±rm_clip)
 *   δ_k = R_k + γ V_{k+1} − V_k (V_{L+1} = 0),  A_k = δ_k + γλ A_{k+1}
 *   Â = (A − mean A)/sqrt(max(var_pop A, 1e-8)) over the batch's valid tokens (whiten > 0)
 *   l_k = max(−Â ρ, −Â clip(ρ, 1 − ε, 1 + ε)), ρ = exp(clip(logp − old_logp, −20, 20))
 *   loss = mean over responses with L > 0 of (1/L) Σ_k l_k
 *
 * Hand-derived gradient: Â does not depend on logp; with dρ = ρ [|logp − old_logp| ≤ 20],
 *   ∂l/∂logp = w1·(−Â dρ) + w2·(−Â [1−ε ≤ ρ ≤ 1+ε] dρ), (w1, w2) the max-weights (½ each at a tie),
 * divided by L·B'.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, meanOr0, validTokensOf, values, zeros } from './family.js';
import { clipG, maxG } from './ops.js';

export interface RtoParams {
  beta1: number;
  dpo_clip: number;
  beta2: number;
  rm_clip: number;
  gamma: number;
  lam: number;
  eps: number;
  whiten: number;
}

export const RTO_DEFAULTS: RtoParams = {
  beta1: 0.05,
  dpo_clip: 0.05,
  beta2: 0.01,
  rm_clip: 10,
  gamma: 1,
  lam: 0.95,
  eps: 0.2,
  whiten: 1,
};

const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);

/** The shaped token rewards R and the GAE advantages A (before whitening), at the valid tokens. */
export function rtoRewardsAndGae(b: RaggedBatch, params: Partial<RtoParams> = {}): { R: number[]; A: number[] } {
  const p = { ...RTO_DEFAULTS, ...params };
  const [old, ref, dpoLp, V, rm] = ['old_logp', 'ref_logp', 'dpo_logp', 'value', 'rm_score'].map((n) => values(b, n));
  const R = zeros(b.numTokens);
  const A = zeros(b.numTokens);
  for (let s = 0; s < b.numSeqs; s++) {
    const ts = validTokensOf(b, s);
    ts.forEach((t, k) => {
      let rd = p.beta1 * (dpoLp![t]! - ref![t]!);
      if (p.dpo_clip > 0) rd = clamp(rd, -p.dpo_clip, p.dpo_clip);
      const eos = k === ts.length - 1 ? clamp(rm![s]!, -p.rm_clip, p.rm_clip) : 0;
      R[t] = rd - Math.max(p.beta2, 0) * (old![t]! - ref![t]!) + eos;
    });
    let next = 0;
    for (let k = ts.length - 1; k >= 0; k--) {
      const t = ts[k]!;
      const vNext = k + 1 < ts.length ? V![ts[k + 1]!]! : 0;
      next = R[t]! + p.gamma * vNext - V![t]! + p.gamma * p.lam * next;
      A[t] = next;
    }
  }
  return { R, A };
}

/** The whitened advantage Â and the returns A + V, at the valid tokens (NaN at masked ones). */
export function rtoExports(
  b: RaggedBatch,
  params: Partial<RtoParams> = {},
): { advantage: number[]; returns: number[] } {
  const p = { ...RTO_DEFAULTS, ...params };
  const V = values(b, 'value');
  const { A } = rtoRewardsAndGae(b, p);
  const valid: number[] = [];
  for (let s = 0; s < b.numSeqs; s++) valid.push(...validTokensOf(b, s));
  const mean = meanOr0(valid.map((t) => A[t]!));
  const varPop = meanOr0(valid.map((t) => (A[t]! - mean) ** 2));
  const advantage = new Array<number>(b.numTokens).fill(NaN);
  const returns = new Array<number>(b.numTokens).fill(NaN);
  for (const t of valid) {
    advantage[t] = p.whiten > 0 ? (A[t]! - mean) / Math.sqrt(Math.max(varPop, 1e-8)) : A[t]!;
    returns[t] = A[t]! + V[t]!;
  }
  return { advantage, returns };
}

export function rtoRef(b: RaggedBatch, params: Partial<RtoParams> = {}): FamilyResult {
  const p = { ...RTO_DEFAULTS, ...params };
  const [logp, old, ref, rm] = ['logp', 'old_logp', 'ref_logp', 'rm_score'].map((n) => values(b, n));
  const { R } = rtoRewardsAndGae(b, p);
  const { advantage: adv } = rtoExports(b, p);
  const seqs = [...Array(b.numSeqs).keys()].filter((s) => validTokensOf(b, s).length > 0);
  const grad = zeros(b.numTokens);
  let loss = 0;
  for (const s of seqs) {
    const ts = validTokensOf(b, s);
    const c = 1 / (ts.length * seqs.length);
    for (const t of ts) {
      const a = adv[t]!;
      const d = clipG(logp![t]! - old![t]!, -20, 20);
      const rho = Math.exp(d.v);
      const drho = rho * d.dx;
      const rc = clipG(rho, 1 - p.eps, 1 + p.eps);
      const m = maxG(-a * rho, -a * rc.v);
      loss += c * m.v;
      grad[t] = c * (m.da * -a * drho + m.db * -a * rc.dx * drho);
    }
  }
  const all = [...Array(b.numSeqs).keys()];
  return {
    loss,
    metrics: {
      kl: meanOr0(seqs.map((s) => meanOr0(validTokensOf(b, s).map((t) => old![t]! - ref![t]!)))),
      reward: meanOr0(rm!),
      return: meanOr0(all.map((s) => validTokensOf(b, s).reduce((a, t) => a + R[t]!, 0))),
      response_length: meanOr0(all.map((s) => validTokensOf(b, s).length)),
    },
    grads: { logp: grad },
  };
}

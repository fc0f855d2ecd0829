/**
 * GDPO reference (methods-dpo.md §10, gdpo.github.io), float64, loops.
 *
 *   D_g = Σ_{views v of g} w_v t_v^(−p) Σ_valid (lp − old);  ρ_g = exp(clip(D_g, ±20))
 *   A_g = R_g − mean over responses (÷ (std_unbiased + adv_eps) with std_norm)
 *   J_g = min(ρA, clip(ρ, 1 ± ε)A) / max(|y_g|, 1)^len_norm
 *   loss = −(1/#responses) Σ_g J_g + β · token mean of k3
 *
 * Hand-derived gradient: ∂loss/∂lp at a token of view v of response g =
 *   −(∂J_g/∂D_g) · w_v t_v^(−p) / #responses + β ∂k3/∂lp / #valid tokens, with ∂J/∂D the PPO-clip
 *   derivative times ρ·[|D| ≤ 20] / |y|^len_norm.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, sequencesByGroup, validTokensOf, values, zeros } from './family.js';
import { k3Tok, ppoSurr, responseCentred, responseStd } from './diffu_grpo.js';

export interface GdpoParams {
  eps: number;
  beta: number;
  t_pow: number;
  len_norm: number;
  std_norm: number;
  adv_eps: number;
}

export const GDPO_DEFAULTS: GdpoParams = { eps: 0.2, beta: 0.04, t_pow: 1, len_norm: 1, std_norm: 0, adv_eps: 1e-6 };

export function gdpoRef(b: RaggedBatch, params: Partial<GdpoParams> = {}): FamilyResult {
  const p = { ...GDPO_DEFAULTS, ...params };
  const [lp, old, ref, reward, resp, t, w, len] = [
    'logp',
    'old_logp',
    'ref_logp',
    'reward',
    'response',
    't',
    'elbo_w',
    'resp_len',
  ].map((n) => values(b, n)) as number[][];
  const c = responseCentred(b, reward!);
  const sd = responseStd(b, reward!);
  const grad = zeros(b.numTokens);
  // the responses: views by (group, response id)
  const responses: number[][] = [];
  for (const seqs of sequencesByGroup(b)) {
    const by = new Map<number, number[]>();
    for (const s of seqs) by.set(resp![s]!, [...(by.get(resp![s]!) ?? []), s]);
    responses.push(...by.values());
  }
  const nResp = responses.length;
  const vw = (s: number) => w![s]! * t![s]! ** -p.t_pow;
  const dElbo = zeros(b.numSeqs);
  let pg = 0;
  let clipped = 0;
  for (const views of responses) {
    // each view enters with its own A and |y| (equal over a response's views in the convention), weight 1/#views
    const D = views.reduce((a, s) => a + vw(s) * validTokensOf(b, s).reduce((x, tk) => x + lp![tk]! - old![tk]!, 0), 0);
    for (const s of views) dElbo[s] = D;
    for (const s of views) {
      const A = p.std_norm > 0 ? c[s]! / (sd[s]! + p.adv_eps) : c[s]!;
      const q = ppoSurr(D, A, 1 - p.eps, 1 + p.eps);
      const norm = Math.max(len![s]!, 1) ** p.len_norm;
      pg += q.v / norm / views.length;
      const rho = Math.exp(Math.min(Math.max(D, -20), 20));
      if ((A < 0 && rho < 1 - p.eps) || (A > 0 && rho > 1 + p.eps)) clipped += 1 / views.length;
      const dD = -q.dd / norm / views.length / nResp;
      for (const v of views) for (const tk of validTokensOf(b, v)) grad[tk] += dD * vw(v);
    }
  }
  let n = 0;
  let klSum = 0;
  const klGrad: { tk: number; d: number }[] = [];
  for (let s = 0; s < b.numSeqs; s++)
    for (const tk of validTokensOf(b, s)) {
      const k = k3Tok(lp![tk]!, ref![tk]!);
      klSum += k.v;
      klGrad.push({ tk, d: k.dlp });
      n++;
    }
  for (const { tk, d } of klGrad) grad[tk] += (p.beta * d) / n;
  const adv = c.map((x, s) => (p.std_norm > 0 ? x / (sd[s]! + p.adv_eps) : x));
  return {
    loss: -pg / nResp + (n ? (p.beta * klSum) / n : 0),
    metrics: { kl: n ? klSum / n : 0, clip_ratio: clipped / nResp },
    grads: { logp: grad },
    exports: { adv, d_elbo: dElbo },
  };
}

/**
 * T-REG reference (stdlib/t_reg.credo, a reconstruction: DPO + α·L_REG), float64, loops.
 *
 *   Δ_t = logp_t − ref_logp_t, z_t = (pos_logp_t − neg_logp_t)/τ, r_t = 2σ(z_t) − 1 (squash) or z_t
 *   L_DPO = mean over pairs of −logσ(βδ), δ = S(y_w) − S(y_l)
 *   l_t = −logσ(r_t βΔ_t) (reg_form 0) or ½(βΔ_t − r_t)² (reg_form 1)
 *   L_REG = mean over responses with L > 0 of (1/L) Σ_t l_t,   loss = L_DPO + α L_REG
 *
 * Hand-derived gradient: from L_DPO, ∓βσ(−βδ)/P on the tokens of y_w / y_l; from L_REG,
 * α/(L·B') · ∂l_t/∂logp_t with ∂l_t/∂logp_t = −σ(−r_t βΔ_t)·r_t β (form 0), (βΔ_t − r_t)·β (form 1).
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, logSigmoid, meanOr0, pairs, sigmoid, validTokensOf, values, zeros } from './family.js';

export interface TregParams {
  alpha: number;
  beta: number;
  tau: number;
  squash: number;
  reg_form: number;
}

export const TREG_DEFAULTS: TregParams = { alpha: 1, beta: 0.1, tau: 1, squash: 1, reg_form: 0 };

export function tRegRef(b: RaggedBatch, params: Partial<TregParams> = {}): FamilyResult {
  const { alpha, beta, tau, squash, reg_form } = { ...TREG_DEFAULTS, ...params };
  const logp = values(b, 'logp');
  const ref = values(b, 'ref_logp');
  const pos = values(b, 'pos_logp');
  const neg = values(b, 'neg_logp');
  const D = (t: number) => logp[t]! - ref[t]!;
  const S = (s: number) => validTokensOf(b, s).reduce((a, t) => a + D(t), 0);
  const rOf = (t: number) => {
    const z = (pos[t]! - neg[t]!) / tau;
    return squash === 1 ? 2 * sigmoid(z) - 1 : z;
  };
  const P = pairs(b);
  const grad = zeros(b.numTokens);
  let lDpo = 0;
  for (const { w, l } of P) {
    const delta = S(w) - S(l);
    lDpo -= logSigmoid(beta * delta) / P.length;
    const g = (-beta * sigmoid(-beta * delta)) / P.length;
    for (const t of validTokensOf(b, w)) grad[t] += g;
    for (const t of validTokensOf(b, l)) grad[t] -= g;
  }
  const seqs = [...Array(b.numSeqs).keys()].filter((s) => validTokensOf(b, s).length > 0);
  let lReg = 0;
  let agree = 0;
  let nTok = 0;
  for (const s of seqs) {
    const ts = validTokensOf(b, s);
    for (const t of ts) {
      const r = rOf(t);
      const imp = beta * D(t);
      const c = 1 / (ts.length * seqs.length);
      if (reg_form === 1) {
        lReg += c * 0.5 * (imp - r) ** 2;
        grad[t] += alpha * c * (imp - r) * beta;
      } else {
        lReg -= c * logSigmoid(r * imp);
        grad[t] += alpha * c * -sigmoid(-r * imp) * r * beta;
      }
      if (r * imp > 0) agree++;
      nTok++;
    }
  }
  const rw = P.map(({ w }) => beta * S(w));
  const rl = P.map(({ l }) => beta * S(l));
  const margins = P.map(({ w, l }) => S(w) - S(l));
  return {
    loss: lDpo + alpha * lReg,
    metrics: {
      reward_chosen: meanOr0(rw),
      reward_rejected: meanOr0(rl),
      reward_margin: meanOr0(margins.map((m) => beta * m)),
      reward_accuracy: meanOr0(margins.map((m) => (m > 0 ? 1 : 0))),
      reg_loss: lReg,
      token_agreement: nTok ? agree / nTok : 0,
    },
    grads: { logp: grad },
  };
}

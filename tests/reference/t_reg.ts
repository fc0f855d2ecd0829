/**
 * T-REG reference (stdlib/t_reg.credo, the paper's form: DPO + α·w·(L_REG(y_w) + L_REG(y_l))),
 * float64, loops.
 *
 *   r̂_t = σ(pos_logp_t − neg_logp_t) − 0.5,   L_REG(y) = −β Σ_t r̂_t logp_t
 *   δ = S(y_w) − S(y_l), S(y) = Σ_t (logp_t − ref_logp_t),   L_DPO = mean over pairs of −logσ(βδ)
 *   w = σ(−βδ) held (stop-gradient) if seq_weight = 1, else 1
 *   loss = L_DPO + α · mean over pairs of w (L_REG(y_w) + L_REG(y_l))
 *
 * Hand-derived gradient w.r.t. logp_t, P pairs: from L_DPO, ∓βσ(−βδ)/P on the tokens of y_w / y_l;
 * from the regulariser, −α w β r̂_t / P on the tokens of both responses (w held, r̂ no gradient).
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, logSigmoid, meanOr0, pairs, sigmoid, validTokensOf, values, zeros } from './family.js';

export interface TregParams {
  alpha: number;
  beta: number;
  seq_weight: number;
}

export const TREG_DEFAULTS: TregParams = { alpha: 0.25, beta: 0.1, seq_weight: 1 };

/**
 * @param opts.weightsFrom the batch the held sequence weights w are computed from (default `b`):
 *   finite differences perturb `b` with w held, as `sg` holds it.
 */
export function tRegRef(
  b: RaggedBatch,
  params: Partial<TregParams> = {},
  opts: { weightsFrom?: RaggedBatch } = {},
): FamilyResult {
  const { alpha, beta, seq_weight } = { ...TREG_DEFAULTS, ...params };
  const logp = values(b, 'logp');
  const ref = values(b, 'ref_logp');
  const pos = values(b, 'pos_logp');
  const neg = values(b, 'neg_logp');
  const S = (bb: RaggedBatch, lp: number[], rf: number[], s: number) =>
    validTokensOf(bb, s).reduce((a, t) => a + lp[t]! - rf[t]!, 0);
  const rHat = (t: number) => sigmoid(pos[t]! - neg[t]!) - 0.5;
  const wb = opts.weightsFrom ?? b;
  const wLogp = values(wb, 'logp');
  const wRef = values(wb, 'ref_logp');

  const P = pairs(b);
  const grad = zeros(b.numTokens);
  let lDpo = 0;
  let lReg = 0;
  const ws: number[] = [];
  for (const { w: yw, l: yl } of P) {
    const delta = S(b, logp, ref, yw) - S(b, logp, ref, yl);
    lDpo -= logSigmoid(beta * delta) / P.length;
    const g = (-beta * sigmoid(-beta * delta)) / P.length;
    for (const t of validTokensOf(b, yw)) grad[t] += g;
    for (const t of validTokensOf(b, yl)) grad[t] -= g;

    const wDelta = S(wb, wLogp, wRef, yw) - S(wb, wLogp, wRef, yl);
    const w = seq_weight === 1 ? sigmoid(-beta * wDelta) : 1;
    ws.push(w);
    let pairReg = 0;
    for (const s of [yw, yl])
      for (const t of validTokensOf(b, s)) {
        pairReg -= beta * rHat(t) * logp[t]!;
        grad[t] += (-alpha * w * beta * rHat(t)) / P.length;
      }
    lReg += (w * pairReg) / P.length;
  }

  let agree = 0;
  let nTok = 0;
  for (let s = 0; s < b.numSeqs; s++)
    for (const t of validTokensOf(b, s)) {
      if (rHat(t) * (logp[t]! - ref[t]!) > 0) agree++;
      nTok++;
    }
  const rw = P.map(({ w }) => beta * S(b, logp, ref, w));
  const rl = P.map(({ l }) => beta * S(b, logp, ref, l));
  const margins = P.map(({ w, l }) => S(b, logp, ref, w) - S(b, logp, ref, l));
  return {
    loss: lDpo + alpha * lReg,
    metrics: {
      reward_chosen: meanOr0(rw),
      reward_rejected: meanOr0(rl),
      reward_margin: meanOr0(margins.map((m) => beta * m)),
      reward_accuracy: meanOr0(margins.map((m) => (m > 0 ? 1 : 0))),
      reg_loss: lReg,
      reg_weight: meanOr0(ws),
      token_agreement: nTok ? agree / nTok : 0,
    },
    grads: { logp: grad },
  };
}

/**
 * cDPO (critical tokens) reference (stdlib/cdpo.credo), both forms, float64, loops.
 *
 * Weights: w_l = 1 − p_ce on y_l, w_w = 1 (only_neg) or p_ce on y_w, 1 at the last valid token.
 * l(x) = −(1 − ε) logσ(βx) − ε logσ(−βx),  l'(x) = −β[(1 − ε) σ(−βx) − ε σ(βx)].
 *
 *   form 0: d_k = w_w D_w(k) − w_l D_l(k) over the aligned k-th valid tokens (a missing one is 0),
 *           loss = Σ_pairs Σ_{k<K} l(d_k) / (P·K), K = max(longest response, 1, width)
 *           ∂loss/∂logp at y_w's k-th token = l'(d_k) w_w / (P·K), at y_l's = −l'(d_k) w_l / (P·K)
 *   form 1: u = Σ_t w_w D_w − Σ_t w_l D_l, loss = mean over pairs of l(u)
 *           ∂loss/∂logp_t = ± l'(u) w_t / P
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, logSigmoid, meanOr0, pairs, sigmoid, validTokensOf, values, zeros } from './family.js';

export interface CdpoParams {
  beta: number;
  only_neg: number;
  label_smoothing: number;
  form: number;
  width: number;
}

export const CDPO_DEFAULTS: CdpoParams = { beta: 0.1, only_neg: 1, label_smoothing: 0, form: 0, width: 0 };

export function cdpoRef(b: RaggedBatch, params: Partial<CdpoParams> = {}): FamilyResult {
  const { beta, only_neg, label_smoothing: eps, form, width } = { ...CDPO_DEFAULTS, ...params };
  const logp = values(b, 'logp');
  const ref = values(b, 'ref_logp');
  const pce = values(b, 'p_ce');
  const P = pairs(b);
  const grad = zeros(b.numTokens);
  const l = (x: number) => -(1 - eps) * logSigmoid(beta * x) - eps * logSigmoid(-beta * x);
  const dl = (x: number) => -beta * ((1 - eps) * sigmoid(-beta * x) - eps * sigmoid(beta * x));
  // the weight of the k-th valid token of sequence s (ts its valid tokens)
  const weight = (ts: number[], k: number, isChosen: boolean) =>
    k === ts.length - 1 ? 1 : isChosen ? (only_neg > 0 ? 1 : pce[ts[k]!]!) : 1 - pce[ts[k]!]!;
  const D = (t: number) => logp[t]! - ref[t]!;
  let loss = 0;
  if (form === 1) {
    for (const { w, l: r } of P) {
      const tw = validTokensOf(b, w);
      const tl = validTokensOf(b, r);
      const u =
        tw.reduce((a, t, k) => a + weight(tw, k, true) * D(t), 0) -
        tl.reduce((a, t, k) => a + weight(tl, k, false) * D(t), 0);
      loss += l(u) / P.length;
      tw.forEach((t, k) => (grad[t] += (dl(u) * weight(tw, k, true)) / P.length));
      tl.forEach((t, k) => (grad[t] -= (dl(u) * weight(tl, k, false)) / P.length));
    }
  } else {
    const longest = Math.max(0, ...Array.from({ length: b.numSeqs }, (_, s) => validTokensOf(b, s).length));
    const K = Math.max(longest, 1, width);
    for (const { w, l: r } of P) {
      const tw = validTokensOf(b, w);
      const tl = validTokensOf(b, r);
      for (let k = 0; k < K; k++) {
        const a = k < tw.length ? weight(tw, k, true) * D(tw[k]!) : 0;
        const c = k < tl.length ? weight(tl, k, false) * D(tl[k]!) : 0;
        const d = a - c;
        loss += l(d) / (P.length * K);
        if (k < tw.length) grad[tw[k]!] += (dl(d) * weight(tw, k, true)) / (P.length * K);
        if (k < tl.length) grad[tl[k]!] -= (dl(d) * weight(tl, k, false)) / (P.length * K);
      }
    }
  }
  const S = (s: number) => validTokensOf(b, s).reduce((a, t) => a + D(t), 0);
  const rw = P.map(({ w }) => beta * S(w));
  const rl = P.map(({ l: r }) => beta * S(r));
  const margins = P.map(({ w, l: r }) => S(w) - S(r));
  return {
    loss: P.length ? loss : 0,
    metrics: {
      reward_chosen: meanOr0(rw),
      reward_rejected: meanOr0(rl),
      reward_margin: meanOr0(margins.map((m) => beta * m)),
      reward_accuracy: meanOr0(margins.map((m) => (m > 0 ? 1 : 0))),
    },
    grads: { logp: grad },
  };
}

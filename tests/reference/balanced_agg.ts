/**
 * Balanced Aggregation reference (methods-pg.md §1, reconstructed from the abstract; see
 * stdlib/balanced_agg.credo for the choices), float64, loops.
 *
 * Per valid token (A = A_i of its response, GRPO advantage):
 *   r = exp(clip(logp - old_logp, -20, 20)), l1 = -A r, l2 = -A clip(r, 1-eps_low, 1+eps_high)
 *   lclip = max(l1, l2), l3 = -A clip_c, l = A < 0 ? min(lclip, l3) : lclip
 * For a set U of responses (one group, or the batch): P / N = responses of U with L > 0 and A > 0 / A < 0,
 * n = responses of U with L > 0, SP = sum of l over the tokens of P, TP = sum of L over P (same for N):
 *   BA(U) = (|P|/n) SP / TP + (|N|/n) SN / TN            (a term is 0 when its subset is empty)
 * loss = mean of BA(g) over the groups with n > 0 (per_group = 1) or BA(batch) (per_group = 0).
 *
 * Hand-derived gradient: BA is linear in the token losses, so
 *   dloss/dlogp_t = c(t) * dl_t/dlogp_t,  c(t) = (|P_U|/n_U) / TP_U / G'  for t in a positive response
 *   (|N_U|/n_U) / TN_U / G' for a negative one, 0 when A = 0; G' = number of groups with n > 0 (1 for the batch).
 *   dl/dlogp = (A<0: min weight of lclip) · (max weights on -A dr and -A [clip pass] dr), dr = r [|d| <= 20].
 * Metrics: clip_frac = token-mean[l2 > l1], dual_clip_frac = token-mean[A < 0 and l3 < lclip],
 * pos_seq_frac = |P| / n over the whole batch.
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens, seqLengths } from './batch.js';
import { clipG, maxG, minG } from './ops.js';

export interface BalancedAggParams {
  eps_low: number;
  eps_high: number;
  clip_c: number;
  adv_eps: number;
  per_group: number;
}

export const BALANCED_AGG_DEFAULTS: BalancedAggParams = {
  eps_low: 0.2,
  eps_high: 0.2,
  clip_c: 3,
  adv_eps: 1e-6,
  per_group: 1,
};

export function balancedAggRef(b: RefBatch, params: Partial<BalancedAggParams> = {}): RefResult {
  const q: BalancedAggParams = { ...BALANCED_AGG_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const L = seqLengths(b);
  const A = groupAdvantages(b, b.reward, q.adv_eps);

  // per-token losses and their derivatives
  const l = new Array<number>(T).fill(0);
  const dl = new Array<number>(T).fill(0);
  let N = 0;
  let clipped = 0;
  let dual = 0;
  for (let s = 0; s < S; s++) {
    const a = A[s]!;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      N++;
      const d = clipG(b.logp[t]! - b.old_logp[t]!, -20, 20);
      const r = Math.exp(d.v);
      const dr = r * d.dx;
      const rc = clipG(r, 1 - q.eps_low, 1 + q.eps_high);
      const l1 = -a * r;
      const l2 = -a * rc.v;
      const mx = maxG(l1, l2);
      let v = mx.v;
      let g = mx.da * (-a * dr) + mx.db * (-a * rc.dx * dr);
      const l3 = -a * q.clip_c;
      if (a < 0) {
        const mn = minG(mx.v, l3);
        v = mn.v;
        g = mn.da * g;
      }
      l[t] = v;
      dl[t] = g;
      if (l2 > l1) clipped++;
      if (a < 0 && l3 < mx.v) dual++;
    }
  }

  // the sets U: one per group, or the whole batch
  const setOf = (s: number) => (q.per_group > 0.5 ? b.groupOf[s]! : 0);
  const nSets = q.per_group > 0.5 ? b.numGroups : 1;
  const n = new Array<number>(nSets).fill(0);
  const nP = new Array<number>(nSets).fill(0);
  const nN = new Array<number>(nSets).fill(0);
  const TP = new Array<number>(nSets).fill(0);
  const TN = new Array<number>(nSets).fill(0);
  const SP = new Array<number>(nSets).fill(0);
  const SN = new Array<number>(nSets).fill(0);
  for (let s = 0; s < S; s++) {
    if (L[s]! === 0) continue;
    const u = setOf(s);
    n[u]!++;
    let sum = 0;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) if (b.mask[t] === 1) sum += l[t]!;
    if (A[s]! > 0) {
      nP[u]!++;
      TP[u]! += L[s]!;
      SP[u]! += sum;
    } else if (A[s]! < 0) {
      nN[u]!++;
      TN[u]! += L[s]!;
      SN[u]! += sum;
    }
  }
  let live = 0;
  for (let u = 0; u < nSets; u++) if (n[u]! > 0) live++;
  const reduceBy = q.per_group > 0.5 ? live : 1;

  let loss = 0;
  for (let u = 0; u < nSets; u++) {
    if (n[u]! === 0) continue;
    const pos = nP[u]! > 0 ? ((nP[u]! / n[u]!) * SP[u]!) / TP[u]! : 0;
    const neg = nN[u]! > 0 ? ((nN[u]! / n[u]!) * SN[u]!) / TN[u]! : 0;
    loss += pos + neg;
  }
  if (reduceBy > 0) loss /= reduceBy;

  const grad = new Array<number>(T).fill(0);
  for (let s = 0; s < S; s++) {
    if (L[s]! === 0 || A[s]! === 0) continue;
    const u = setOf(s);
    const c = A[s]! > 0 ? nP[u]! / n[u]! / TP[u]! : nN[u]! / n[u]! / TN[u]!;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) if (b.mask[t] === 1) grad[t] = (c * dl[t]!) / reduceBy;
  }

  let nAll = 0;
  let pAll = 0;
  for (let s = 0; s < S; s++) {
    if (L[s]! === 0) continue;
    nAll++;
    if (A[s]! > 0) pAll++;
  }
  return {
    loss,
    metrics: {
      clip_frac: N > 0 ? clipped / N : 0,
      dual_clip_frac: N > 0 ? dual / N : 0,
      pos_seq_frac: nAll > 0 ? pAll / nAll : 0,
    },
    grad_logp: grad,
  };
}

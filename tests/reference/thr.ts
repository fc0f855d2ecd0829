/**
 * THR-guided reweighting reference (methods-pg.md §8, a reconstruction), float64, loops.
 *
 * Extra input: thr[t] (token hidden reward, no gradient).
 * A_i = GRPO advantage (unbiased std).  M = max |thr| over the valid tokens of the batch (0 if none).
 * u_t = thr_scaled > 0 ? thr_t / max(M, 1e-12) : sign(thr_t);  A'_t = A_i (1 + thr_p (|thr_t| > thr_tau ? u_t : 0))
 * ratio: seq_ratio = 0: r = exp(clip(logp - old_logp, -20, 20));
 *        seq_ratio = 1: log s_i = (sum_valid logp - old_logp) / max(L_i, 1), r = exp(min(log s_i, 10))
 *                       with d r / d logp_t = r [log s_i < 10] (1/2 on a tie) — only the own token (GSPO-token)
 * surr = min(r A', clip(r, 1-eps_low, 1+eps_high) A');  k = clip(ref_logp - logp, -20, 20),
 * kl = clip(exp(k) - k - 1, -10, 10);  l = -(surr - beta kl)
 * loss = seq-mean-token-mean(l) = (1/B') sum_{i: L_i > 0} (1/L_i) sum_valid l.
 *
 * Hand-derived gradient w.r.t. logp_t:
 *   dsurr = min-weights on (A' dr, A' [lo <= r <= hi] dr);  dkl = [-10 <= kl_raw <= 10] (exp(k) - 1) (-[k unclipped])
 *   dl = -(dsurr - beta dkl);  grad_t = dl / (B' L_i);  0 at masked tokens.
 * Metrics: clip_frac = token-mean[(A' > 0 and r > 1+eps_high) or (A' < 0 and r < 1-eps_low)],
 *          kl = token-mean(kl), pos_thr_frac = token-mean[thr > 0].
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens, seqLengths } from './batch.js';
import { clipG, minG } from './ops.js';

export interface ThrBatch extends RefBatch {
  thr: number[]; // [T]
}

export interface ThrParams {
  thr_p: number;
  thr_scaled: number;
  thr_tau: number;
  seq_ratio: number;
  eps_low: number;
  eps_high: number;
  beta: number;
  adv_eps: number;
}

export const THR_DEFAULTS: ThrParams = {
  thr_p: 0.5,
  thr_scaled: 0,
  thr_tau: 0,
  seq_ratio: 0,
  eps_low: 0.2,
  eps_high: 0.2,
  beta: 0.04,
  adv_eps: 1e-6,
};

export function thrRef(b: ThrBatch, params: Partial<ThrParams> = {}): RefResult {
  const p: ThrParams = { ...THR_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const L = seqLengths(b);
  const A = groupAdvantages(b, b.reward, p.adv_eps);

  let N = 0;
  let nSeqs = 0;
  let M = 0;
  for (let s = 0; s < S; s++) {
    N += L[s]!;
    if (L[s]! > 0) nSeqs++;
  }
  for (let t = 0; t < T; t++) if (b.mask[t] === 1) M = Math.max(M, Math.abs(b.thr[t]!));

  const grad = new Array<number>(T).fill(0);
  let loss = 0;
  let clipCount = 0;
  let klSum = 0;
  let posCount = 0;

  for (let s = 0; s < S; s++) {
    if (L[s]! === 0) continue;
    let dSum = 0;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) if (b.mask[t] === 1) dSum += b.logp[t]! - b.old_logp[t]!;
    const logS = dSum / Math.max(L[s]!, 1);
    let seqSum = 0;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      const th = b.thr[t]!;
      const u = p.thr_scaled > 0 ? th / Math.max(M, 1e-12) : Math.sign(th);
      const a = A[s]! * (1 + p.thr_p * (Math.abs(th) > p.thr_tau ? u : 0));
      let r: number;
      let dr: number;
      if (p.seq_ratio > 0) {
        const capped = minG(logS, 10);
        r = Math.exp(capped.v);
        dr = r * capped.da;
      } else {
        const d = clipG(b.logp[t]! - b.old_logp[t]!, -20, 20);
        r = Math.exp(d.v);
        dr = r * d.dx;
      }
      const rc = clipG(r, 1 - p.eps_low, 1 + p.eps_high);
      const m = minG(r * a, rc.v * a);
      const dsurr = m.da * (a * dr) + m.db * (a * rc.dx * dr);
      const k = clipG(b.ref_logp[t]! - b.logp[t]!, -20, 20);
      const klc = clipG(Math.exp(k.v) - k.v - 1, -10, 10);
      const dkl = klc.dx * (Math.exp(k.v) - 1) * -k.dx;
      const l = -(m.v - p.beta * klc.v);
      const dl = -(dsurr - p.beta * dkl);
      seqSum += l;
      grad[t] = dl / (nSeqs * L[s]!);
      if ((a > 0 && r > 1 + p.eps_high) || (a < 0 && r < 1 - p.eps_low)) clipCount++;
      klSum += klc.v;
      if (th > 0) posCount++;
    }
    loss += seqSum / L[s]!;
  }
  if (nSeqs > 0) loss /= nSeqs;

  return {
    loss,
    metrics: {
      clip_frac: N > 0 ? clipCount / N : 0,
      kl: N > 0 ? klSum / N : 0,
      pos_thr_frac: N > 0 ? posCount / N : 0,
    },
    grad_logp: grad,
  };
}

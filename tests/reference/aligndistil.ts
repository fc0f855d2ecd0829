/**
 * AlignDistil reference (stdlib/aligndistil.credo; methods-dpo.md §7, songmzhang/AlignDistil
 * `reward_boost_type`), float64, loops over each valid token's rows of the student logits z
 * (divided by student_temperature), the DPO model's z_d and the second model's z_r:
 *
 *   tvd = Σ_v |p_d − p_r|;  α, weight, teacher z* by mode:
 *     0 aligndistil        α = β2·tvd + 1e-3,  z* = z_d + α(z_d − z_r),     weight β/α
 *     1 theorem1           α = β/β2,           z* = α z_d + (1 − α) z_r,     weight β2
 *     2 theorem1_contrast  α = β/β2,           z* = z_d + α(z_d − z_r),     weight β2
 *     3 theorem1_adaptive  α = β2·tvd + 1e-3,  z* = α z_d + (1 − α) z_r,     weight β/α
 *     4 gkd                α = 0,              q = p_d (no temperature),     weight 1
 *   q = softmax(z* / τ) (modes 0–3);  l_t = weight · KL(π_θ ‖ q)
 *   loss = mean over sequences with a valid token of Σ_t l_t / L (len_norm) or Σ_t l_t
 *
 * Hand-derived gradient (q does not depend on the student): ∂KL/∂z_u = π_u (log π_u − log q_u − KL),
 * times weight, times the sequence's aggregation weight, divided by student_temperature.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, meanOr0, validTokensOf, values, zeros } from './family.js';
import { rowStats } from './vocab.js';

export interface AligndistilParams {
  mode: number;
  beta: number;
  beta2: number;
  temperature: number;
  student_temperature: number;
  len_norm: number;
}

export const ALIGNDISTIL_DEFAULTS: AligndistilParams = {
  mode: 0,
  beta: 0.1,
  beta2: 10,
  temperature: 1,
  student_temperature: 1,
  len_norm: 1,
};

/** Σ_v p_v (lp_v − lq_v) over the entries with p_v > 0. */
function kl(p: readonly number[], lp: readonly number[], lq: readonly number[]): number {
  let s = 0;
  for (let v = 0; v < p.length; v++) if (p[v]! > 0) s += p[v]! * (lp[v]! - lq[v]!);
  return s;
}

/** The teacher's log-probabilities of one row, and α and the weight of its KL term. */
export function aligndistilTeacher(
  zd: readonly number[],
  zr: readonly number[],
  prm: AligndistilParams,
): { lq: number[]; alpha: number; weight: number } {
  const { mode, beta, beta2, temperature: tau } = prm;
  const [d, r] = [rowStats(zd), rowStats(zr)];
  if (mode === 4) return { lq: d.logp, alpha: 0, weight: 1 };
  const tvd = d.p.reduce((a, pv, v) => a + Math.abs(pv - r.p[v]!), 0);
  const adaptive = mode === 0 || mode === 3;
  const alpha = adaptive ? beta2 * tvd + 1e-3 : beta / beta2;
  const weight = adaptive ? beta / alpha : beta2;
  const contrast = mode === 0 || mode === 2;
  const zs = zd.map((x, v) => (contrast ? x + alpha * (x - zr[v]!) : alpha * x + (1 - alpha) * zr[v]!) / tau);
  return { lq: rowStats(zs).logp, alpha, weight };
}

export function aligndistilRef(b: RaggedBatch, params: Partial<AligndistilParams> = {}): FamilyResult {
  const prm = { ...ALIGNDISTIL_DEFAULTS, ...params };
  const { beta, student_temperature: ts, len_norm } = prm;
  const V = b.vocabSize;
  const [logits, dpo, ref] = ['logits', 'dpo_logits', 'ref_logits'].map((n) => values(b, n));
  const row = (x: number[], t: number) => x.slice(t * V, (t + 1) * V);
  const grad = zeros(b.numTokens * V);
  const nonEmpty = Array.from({ length: b.numSeqs }, (_, s) => s).filter((s) => validTokensOf(b, s).length > 0);
  const per: { loss: number; alpha: number; teaKl: number; initKl: number }[] = [];
  const expReward: number[] = [];
  const dpoReward: number[] = [];
  for (let s = 0; s < b.numSeqs; s++) {
    const ts_ = validTokensOf(b, s);
    const L = ts_.length;
    const c = L === 0 ? 0 : (len_norm > 0 ? 1 / L : 1) / nonEmpty.length;
    let lossS = 0;
    let alphaS = 0;
    let teaS = 0;
    let initS = 0;
    let er = 0;
    let dr = 0;
    for (const t of ts_) {
      const st = rowStats(row(logits, t).map((x) => x / ts));
      const [zd, zr] = [row(dpo, t), row(ref, t)];
      const [d, r] = [rowStats(zd), rowStats(zr)];
      const { lq, alpha, weight } = aligndistilTeacher(zd, zr, prm);
      const k = kl(st.p, st.logp, lq);
      lossS += weight * k;
      alphaS += alpha;
      teaS += kl(st.p, st.logp, d.logp);
      initS += kl(st.p, st.logp, r.logp);
      for (let v = 0; v < V; v++) {
        const rd = beta * (d.logp[v]! - r.logp[v]!);
        if (st.p[v]! > 0) er += st.p[v]! * rd;
        if (d.p[v]! > 0) dr += d.p[v]! * rd;
        grad[t * V + v] = st.p[v]! > 0 ? (c * weight * st.p[v]! * (st.logp[v]! - lq[v]! - k)) / ts : 0;
      }
    }
    expReward.push(er);
    dpoReward.push(dr);
    if (L > 0)
      per.push({ loss: len_norm > 0 ? lossS / L : lossS, alpha: alphaS / L, teaKl: teaS / L, initKl: initS / L });
  }
  return {
    loss: meanOr0(per.map((x) => x.loss)),
    metrics: {
      mean_weight: meanOr0(per.map((x) => x.alpha)),
      expected_reward: meanOr0(expReward),
      dpo_model_expected_reward: meanOr0(dpoReward),
      token_tea_kl: meanOr0(per.map((x) => x.teaKl)),
      token_init_kl: meanOr0(per.map((x) => x.initKl)),
    },
    grads: { logits: grad },
  };
}

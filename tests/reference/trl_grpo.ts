/**
 * TRL GRPOTrainer loss reference (stdlib/trl_grpo.credo), float64, loops, written from
 * huggingface/trl@f2cd5771 trl/trainer/grpo_trainer.py (_compute_loss, get_high_entropy_mask,
 * get_off_policy_mask, get_gamma_weights, the advantages and vLLM IS ratio of
 * _generate_and_score_completions) and trl/experimental/gspo_token/grpo_trainer.py.
 *
 * Per valid token t of sequence i (L_i valid tokens, B sequences, N valid tokens):
 *   c1_t = exp(d_t) (token) | exp(s_i) (sequence) | exp(sg(s_i)) with own-token slope (sequence_token),
 *   d_t = logp_t − old_t, s_i = Σ d / max(L_i, 1);
 *   l_t = keep_i · ent_t · ρ_t · p_t + β k_t, loss = Σ_t w_t l_t with the loss type's weight w_t:
 *     grpo/sapo 1/(B max(L_i,1) ga), bnpo 1/(max(N,1) ga), dr_grpo 1/(B M ga),
 *     dapo/cispo/vespo P/n, luspo 1/(B ga).
 * Gradient, hand-derived: ∂loss/∂logp_j = Σ_t w_t [m_t ∂p_t/∂logp_j + β ∂k_t/∂logp_j], with
 *   ∂c1_t/∂logp_j = c1_t [j = t] (token, sequence_token) or c1_i / L_i [j ∈ i] (sequence);
 *   clip family p = −min(c1' A, c2 A): ∂p/∂c1 = −(A·∂min/∂a·∂c1'/∂c1 + A·∂min/∂b·∂c2/∂c1);
 *   sapo ∂p/∂c1 = −4σ(1 − σ)A; cispo ∂p/∂logp_t = −w_t A; vespo ∂p/∂logp_t = −φ_i A;
 *   k3 ∂k/∂logp_t = 1 − e^{ref − logp}; bias-corrected k·c1 adds k ∂c1.
 * `frozen` fixes the stop-gradient values (sequence_token's s_i, cispo's weights, vespo's φ, the
 * off-policy keep) so that finite differences of the loss measure the autograd gradient.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, meanOr0, sequencesByGroup, validTokensOf, values, zeros } from './family.js';
import { clipG, minG } from './ops.js';

export interface TrlGrpoParams {
  loss_type: number;
  is_level: number;
  scale_rewards: number;
  epsilon: number;
  epsilon_high: number;
  delta: number;
  beta: number;
  adv_eps: number;
  top_entropy_quantile: number;
  max_completion_length: number;
  num_items: number;
  num_processes: number;
  ga_steps: number;
  sapo_temperature_pos: number;
  sapo_temperature_neg: number;
  vespo_k_pos: number;
  vespo_lambda_pos: number;
  vespo_k_neg: number;
  vespo_lambda_neg: number;
  vllm_is_mode: number;
  vllm_is_max: number;
  vllm_is_min: number;
  off_policy_threshold: number;
  bias_correction_kl: number;
}

export const TRL_GRPO_DEFAULTS: TrlGrpoParams = {
  loss_type: 2,
  is_level: 0,
  scale_rewards: 0,
  epsilon: 0.2,
  epsilon_high: -1,
  delta: 0,
  beta: 0,
  adv_eps: 1e-4,
  top_entropy_quantile: 1,
  max_completion_length: 512,
  num_items: 0,
  num_processes: 1,
  ga_steps: 1,
  sapo_temperature_pos: 1.0,
  sapo_temperature_neg: 1.05,
  vespo_k_pos: 2,
  vespo_lambda_pos: 3,
  vespo_k_neg: 3,
  vespo_lambda_neg: 2,
  vllm_is_mode: 0,
  vllm_is_max: 3,
  vllm_is_min: 0,
  off_policy_threshold: 1e30,
  bias_correction_kl: 0,
};

/** The stop-gradient values of one batch (per sequence, or per token for cispo's weights). */
export interface TrlFrozen {
  logS: number[];
  cispoW: number[];
  phi: number[];
  keep: boolean[];
  /** sg(logp) of sequence_token's logp − sg(logp). */
  logp0: number[];
}

const sig = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** Unbiased standard deviation (torch.std / TRL nanstd); 0 for fewer than 2 values. */
function stdUnbiased(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = xs.reduce((a, v) => a + v, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, v) => a + (v - m) ** 2, 0) / (xs.length - 1));
}

/** torch.quantile with linear interpolation over xs (non-empty), q clamped to [0, 1]. */
function quantileLinear(xs: readonly number[], q: number): number {
  const v = [...xs].sort((a, b) => a - b);
  const p = Math.min(Math.max(q, 0), 1) * (v.length - 1);
  const lo = Math.floor(p);
  const hi = Math.ceil(p);
  return (1 - (p - lo)) * v[lo]! + (p - lo) * v[hi]!;
}

/** TRL's group-relative advantages by scale_rewards (0 group, 1 batch, 2 none), one per sequence. */
export function trlAdvantages(b: RaggedBatch, scale: number, eps: number): number[] {
  const r = values(b, 'reward');
  const A = zeros(b.numSeqs);
  const batchStd = stdUnbiased(r);
  for (const seqs of sequencesByGroup(b)) {
    const rs = seqs.map((s) => r[s]!);
    const m = meanOr0(rs);
    const sd = scale === 1 ? batchStd : stdUnbiased(rs);
    for (const s of seqs) A[s] = scale === 2 ? r[s]! - m : (r[s]! - m) / (sd + eps);
  }
  return A;
}

export function trlGrpoRef(
  b: RaggedBatch,
  params: Partial<TrlGrpoParams> = {},
  frozen?: TrlFrozen,
): FamilyResult & { frozen: TrlFrozen } {
  const p = { ...TRL_GRPO_DEFAULTS, ...params };
  const lt = p.loss_type;
  const lvl = p.is_level;
  const logp = values(b, 'logp');
  const old = values(b, 'old_logp');
  const ref = values(b, 'ref_logp');
  const samp = values(b, 'sampling_logp');
  const H = values(b, 'entropy');
  const A = trlAdvantages(b, p.scale_rewards, p.adv_eps);
  const B = b.numSeqs;
  const seqs = Array.from({ length: B }, (_, s) => validTokensOf(b, s));
  const N = seqs.reduce((a, ts) => a + ts.length, 0);
  const epsH = p.epsilon_high < 0 ? p.epsilon : p.epsilon_high;
  const clipFamily = lt <= 3 || lt === 6;
  const LOG_EPS = Math.log(1e-8);
  const safeLog = (x: number) => Math.min(Math.max(Math.log(Math.max(x, 1e-8)), LOG_EPS), 20);

  // entropy threshold over the batch's valid tokens
  const allH = seqs.flatMap((ts) => ts.map((t) => H[t]!));
  const entThr = p.top_entropy_quantile < 1 && allH.length ? quantileLinear(allH, 1 - p.top_entropy_quantile) : 0;
  const entOk = (t: number) => p.top_entropy_quantile >= 1 || H[t]! >= entThr;

  // vLLM importance sampling ratios
  const mode = p.vllm_is_mode;
  const constrain = (x: number, truncate: boolean) =>
    truncate ? Math.min(Math.max(x, p.vllm_is_min), p.vllm_is_max) : x < p.vllm_is_min || x > p.vllm_is_max ? 0 : x;
  const isTok = (t: number) => constrain(Math.exp(old[t]! - samp[t]!), mode === 1);
  const isSeq = seqs.map((ts) => constrain(Math.exp(ts.reduce((a, t) => a + old[t]! - samp[t]!, 0)), mode === 3));
  const rho = (s: number, t: number) => (mode === 0 ? 1 : mode >= 3 ? isSeq[s]! : isTok(t));

  // aggregation weight of a token of sequence s
  const nItems = (p.num_items > 0 ? Math.max(p.num_items, 1) : Math.max(N, 1)) / p.num_processes;
  const weight = (s: number): number => {
    const L = seqs[s]!.length;
    if (lt === 0 || lt === 5) return 1 / (B * Math.max(L, 1) * p.ga_steps);
    if (lt === 3) return 1 / (Math.max(N, 1) * p.ga_steps);
    if (lt === 1) return 1 / (Math.max(B, 1) * p.max_completion_length * p.ga_steps);
    if (lt === 2 || lt === 4 || lt === 7) return 1 / nItems;
    return 1 / (Math.max(B, 1) * p.ga_steps); // luspo
  };

  const grad = zeros(b.numTokens);
  const fz: TrlFrozen = {
    logS: zeros(B),
    cispoW: zeros(b.numTokens),
    phi: zeros(B),
    keep: new Array(B).fill(true),
    logp0: [...logp],
  };
  if (frozen) fz.logp0 = frozen.logp0;
  let loss = 0;
  const klVals: number[] = [];
  const m = {
    loTok: [] as number[],
    hiTok: [] as number[],
    loSeqMeans: [] as number[],
    hiSeqMeans: [] as number[],
    loSeq: [] as number[],
    hiSeq: [] as number[],
    cispoTok: [] as number[],
    cispoSeq: [] as number[],
  };
  const capDelta = (c: number) => (p.delta > 0 && clipFamily ? clipG(c, 0, p.delta) : { v: c, dx: 1 });

  for (let s = 0; s < B; s++) {
    const ts = seqs[s]!;
    const L = ts.length;
    const a = A[s]!;
    const logS = ts.reduce((x, t) => x + logp[t]! - old[t]!, 0) / Math.max(L, 1);
    fz.logS[s] = frozen ? frozen.logS[s]! : logS;

    // vespo's φ (no gradient)
    const logRho = mode === 0 ? 0 : mode >= 3 ? safeLog(isSeq[s]!) : ts.reduce((x, t) => x + safeLog(isTok(t)), 0);
    const sumD = ts.reduce((x, t) => x + Math.min(Math.max(logp[t]! - old[t]!, -20), 20), 0);
    const logW = Math.min(Math.max(sumD + logRho, LOG_EPS), 20);
    const k = a >= 0 ? p.vespo_k_pos : p.vespo_k_neg;
    const lam = Math.max(a >= 0 ? p.vespo_lambda_pos : p.vespo_lambda_neg, 1e-4);
    fz.phi[s] = frozen ? frozen.phi[s]! : Math.exp(lam + k * logW - lam * Math.exp(logW));

    // off-policy sequence mask (not in the GSPO-token trainer)
    const q = mode > 0 ? samp : old;
    const opsmKl = ts.reduce((x, t) => x + q[t]! - logp[t]!, 0) / Math.max(L, 1);
    fz.keep[s] = frozen ? frozen.keep[s]! : lvl === 2 || a >= 0 || opsmKl <= p.off_policy_threshold;

    const w = weight(s);
    let seqDc1 = 0; // Σ_t ∂loss/∂c1 over the sequence (sequence level: shared c1)
    const c1Seq = Math.exp(logS);
    let lo = 0;
    let hi = 0;
    for (const t of ts) {
      const c1 =
        lvl === 0 ? Math.exp(logp[t]! - old[t]!) : lvl === 1 ? c1Seq : Math.exp(fz.logS[s]! + logp[t]! - fz.logp0[t]!);
      const mt = fz.keep[s]! && entOk(t) ? (lt === 7 ? 1 : rho(s, t)) : 0;
      let pol: number;
      let dPdC1 = 0; // through c1
      let dPdLogp = 0; // directly (cispo, vespo)
      if (lt === 4) {
        fz.cispoW[t] = frozen ? frozen.cispoW[t]! : Math.min(c1, epsH);
        pol = -fz.cispoW[t]! * a * logp[t]!;
        dPdLogp = -fz.cispoW[t]! * a;
      } else if (lt === 5) {
        const tau = a > 0 ? p.sapo_temperature_pos : p.sapo_temperature_neg;
        const g = sig(tau * (c1 - 1));
        pol = ((-g * 4) / tau) * a;
        dPdC1 = -4 * g * (1 - g) * a;
      } else if (lt === 7) {
        pol = -fz.phi[s]! * a * logp[t]!;
        dPdLogp = -fz.phi[s]! * a;
      } else {
        const c1d = capDelta(c1);
        const c2 = clipG(c1, 1 - p.epsilon, 1 + epsH);
        const mn = minG(c1d.v * a, c2.v * a);
        pol = -mn.v;
        dPdC1 = -(mn.da * a * c1d.dx + mn.db * a * c2.dx);
      }
      // KL
      const kref = ref[t]! - logp[t]!;
      const k3 = Math.exp(kref) - kref - 1;
      const dk3 = 1 - Math.exp(kref);
      const bias = p.bias_correction_kl > 0 && lvl !== 2;
      const klT = bias ? k3 * c1 : k3;
      klVals.push(klT);
      const beta = p.beta;
      loss += w * (mt * pol + (beta !== 0 ? beta * klT : 0));
      let dC1 = w * mt * dPdC1 + (beta !== 0 && bias ? w * beta * k3 : 0);
      grad[t] += w * mt * dPdLogp + (beta !== 0 ? w * beta * dk3 * (bias ? c1 : 1) : 0);
      if (lvl === 1) seqDc1 += dC1;
      else grad[t] += dC1 * c1;
      dC1 = 0;
      // metrics (token level)
      const c1m = capDelta(c1).v;
      const isLo = c1m < 1 - p.epsilon && a < 0 ? 1 : 0;
      const isHi = c1m > 1 + epsH && a > 0 ? 1 : 0;
      m.loTok.push(isLo);
      m.hiTok.push(isHi);
      m.cispoTok.push(c1 > epsH && a > 0 ? 1 : 0);
      lo += isLo;
      hi += isHi;
    }
    if (lvl === 1) for (const t of ts) grad[t] += (seqDc1 * c1Seq) / L;
    if (L > 0) {
      m.loSeqMeans.push(lo / L);
      m.hiSeqMeans.push(hi / L);
    }
    const c1sm = capDelta(c1Seq).v;
    m.loSeq.push(c1sm < 1 - p.epsilon && a < 0 ? 1 : 0);
    m.hiSeq.push(c1sm > 1 + epsH && a > 0 ? 1 : 0);
    m.cispoSeq.push(c1Seq > epsH && a > 0 ? 1 : 0);
  }

  const seqLvl = lvl === 1;
  const region = (los: number[], his: number[]) => meanOr0(los.map((x, i) => (x || his[i] ? 1 : 0)));
  const minOr0 = (xs: number[]) => (xs.length ? Math.min(...xs) : 0);
  const maxOr0 = (xs: number[]) => (xs.length ? Math.max(...xs) : 0);
  return {
    loss,
    metrics: {
      clip_ratio_low_mean: seqLvl ? meanOr0(m.loSeq) : meanOr0(m.loTok),
      clip_ratio_high_mean: seqLvl ? meanOr0(m.hiSeq) : meanOr0(m.hiTok),
      clip_ratio_region_mean: seqLvl ? region(m.loSeq, m.hiSeq) : region(m.loTok, m.hiTok),
      clip_ratio_low_min: seqLvl ? minOr0(m.loSeq) : minOr0(m.loSeqMeans),
      clip_ratio_high_max: seqLvl ? maxOr0(m.hiSeq) : maxOr0(m.hiSeqMeans),
      cispo_clip_ratio: seqLvl ? meanOr0(m.cispoSeq) : meanOr0(m.cispoTok),
      vespo_phi_seq_mean: meanOr0(fz.phi),
      kl: meanOr0(klVals),
      entropy: meanOr0(allH),
    },
    grads: { logp: grad },
    exports: { advantage: A },
    frozen: fz,
  };
}

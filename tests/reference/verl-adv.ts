/**
 * verl's advantage estimators (algorithm.adv_estimator, verl-project/verl@1dda039b
 * verl/trainer/ppo/core_algos.py) and the vanilla PPO loss on their advantages: an independent
 * float64 reference written from verl's functions (loops over the uid groups and over the columns of
 * each response, as verl writes them), never from stdlib/lib/advantages.credo.
 *
 * Group-of-one rule: `singletons` 1 = what verl's function does, 0 = Credo's rule (advantage 0).
 * masked_whiten (verl/utils/torch_functional.py): mean = Σ x / (N + 1e-8),
 *   var = Σ (x - mean)² / (N + 1e-8) · N / (N - 1) (verl raises for N < 2; here N / max(N - 1, 1)),
 *   x' = (x - mean) / sqrt(var + 1e-8), over the N valid tokens of the batch.
 * The loss is ppo.ts's vanilla dual-clip token loss with its aggregation weights; its gradient w.r.t.
 * logp is w_t · dl_t (no advantage depends on logp).
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import type { RefBatch } from './batch.js';
import { type FamilyResult, sequencesByGroup, tokensOf, values } from './family.js';
import { type PpoParams, PPO_DEFAULTS, aggValue, aggWeights, ppoToken } from './ppo.js';

export type { PpoParams };
export { PPO_DEFAULTS };

/** Valid tokens of each sequence (verl: response_mask.sum(-1)). */
export function validLengths(b: RaggedBatch): number[] {
  return Array.from({ length: b.numSeqs }, (_, s) => tokensOf(b, s).filter((t) => b.mask[t] === 1).length);
}

/** verl_F.masked_whiten of a token-level x over the valid tokens (values at masked tokens are (x - mean) · rsqrt). */
export function maskedWhiten(b: RaggedBatch, x: readonly number[]): number[] {
  const st = whitenStats(b, x);
  return x.map((xi) => (xi - st.mean) * st.rsqrt);
}

/** masked_mean and rsqrt(masked_var + 1e-8) of masked_whiten. */
export function whitenStats(b: RaggedBatch, x: readonly number[]): { mean: number; rsqrt: number } {
  let n = 0;
  let s1 = 0;
  for (let t = 0; t < b.numTokens; t++)
    if (b.mask[t] === 1) {
      n++;
      s1 += x[t]!;
    }
  const mean = s1 / (n + 1e-8);
  let s2 = 0;
  for (let t = 0; t < b.numTokens; t++) if (b.mask[t] === 1) s2 += (x[t]! - mean) ** 2;
  const v = (s2 / (n + 1e-8)) * (n / Math.max(n - 1, 1));
  return { mean, rsqrt: 1 / Math.sqrt(v + 1e-8) };
}

/** One value per sequence tiled over its tokens (verl: scores.unsqueeze(-1).tile([1, L])). */
export function tile(b: RaggedBatch, perSeq: readonly number[]): number[] {
  const out = new Array<number>(b.numTokens).fill(0);
  for (let s = 0; s < b.numSeqs; s++) for (const t of tokensOf(b, s)) out[t] = perSeq[s]!;
  return out;
}

const mean = (xs: readonly number[]) => xs.reduce((a, v) => a + v, 0) / xs.length;
/** torch.std (unbiased); NaN for one element as torch, never called so. */
const stdUnbiased = (xs: readonly number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, v) => a + (v - m) ** 2, 0) / (xs.length - 1));
};

/** compute_grpo_outcome_advantage (id2mean / id2std loop). */
export function grpoLoop(
  b: RaggedBatch,
  R: readonly number[],
  eps: number,
  norm: boolean,
  singletons: number,
): number[] {
  const A = new Array<number>(b.numSeqs).fill(0);
  for (const seqs of sequencesByGroup(b)) {
    const rs = seqs.map((s) => R[s]!);
    if (seqs.length === 1) {
      // verl: mean 0, std 1; Credo: no baseline, 0
      A[seqs[0]!] = singletons === 1 ? (norm ? rs[0]! / (1 + eps) : rs[0]!) : 0;
      continue;
    }
    const m = mean(rs);
    const sd = stdUnbiased(rs);
    for (const s of seqs) A[s] = norm ? (R[s]! - m) / (sd + eps) : R[s]! - m;
  }
  return A;
}

/** compute_grpo_vectorized_outcome_advantage: group_mean_std(eps = 0), always normalised. */
export function grpoVectorized(b: RaggedBatch, R: readonly number[], eps: number, singletons: number): number[] {
  const G = b.numGroups;
  const count = new Array<number>(G).fill(0);
  const s1 = new Array<number>(G).fill(0);
  for (let s = 0; s < b.numSeqs; s++) {
    count[b.groupOf[s]!]++;
    s1[b.groupOf[s]!] += R[s]!;
  }
  const m = s1.map((v, g) => v / Math.max(count[g]!, 1));
  const vn = new Array<number>(G).fill(0);
  for (let s = 0; s < b.numSeqs; s++) vn[b.groupOf[s]!] += (R[s]! - m[b.groupOf[s]!]!) ** 2;
  const sd = vn.map((v, g) => Math.sqrt(Math.max(v / Math.max(count[g]! - 1, 1), 0)));
  return R.map((r, s) => {
    const g = b.groupOf[s]!;
    if (count[g]! <= 1 && singletons === 1) return (r - 0) / (1 + eps);
    return (r - m[g]!) / (sd[g]! + eps);
  });
}

/** compute_rloo_outcome_advantage (a group of one keeps its score). */
export function rlooLoop(b: RaggedBatch, R: readonly number[], singletons: number): number[] {
  const A = new Array<number>(b.numSeqs).fill(0);
  for (const seqs of sequencesByGroup(b)) {
    const n = seqs.length;
    if (n === 1) {
      A[seqs[0]!] = singletons === 1 ? R[seqs[0]!]! : 0;
      continue;
    }
    const m = mean(seqs.map((s) => R[s]!));
    for (const s of seqs) A[s] = (R[s]! * n) / (n - 1) - (m * n) / (n - 1);
  }
  return A;
}

/** compute_rloo_vectorized_outcome_advantage (bincount form; 0 for a group of one). */
export function rlooVectorized(b: RaggedBatch, R: readonly number[]): number[] {
  const c = new Array<number>(b.numGroups).fill(0);
  const sum = new Array<number>(b.numGroups).fill(0);
  for (let s = 0; s < b.numSeqs; s++) {
    c[b.groupOf[s]!]++;
    sum[b.groupOf[s]!] += R[s]!;
  }
  return R.map((r, s) => {
    const g = b.groupOf[s]!;
    return c[g]! > 1 ? (c[g]! * r - sum[g]!) / Math.max(c[g]! - 1, 1) : 0;
  });
}

/** id2mean of the rloo / rpp-baseline / gpg loops: mean of the group, 0 (verl) or the score itself (Credo) for one. */
function groupMeans(b: RaggedBatch, R: readonly number[], singletons: number): number[] {
  const out = new Array<number>(b.numSeqs).fill(0);
  for (const seqs of sequencesByGroup(b)) {
    const m = seqs.length === 1 ? (singletons === 1 ? 0 : R[seqs[0]!]!) : mean(seqs.map((s) => R[s]!));
    for (const s of seqs) out[s] = m;
  }
  return out;
}

/** compute_reinforce_plus_plus_baseline_outcome_advantage, per token (tile, whiten, · mask). */
export function rppBaselineTok(b: RaggedBatch, R: readonly number[], singletons: number): number[] {
  const m = groupMeans(b, R, singletons);
  const tiled = tile(
    b,
    R.map((r, s) => r - m[s]!),
  ).map((v, t) => v * b.mask[t]!);
  return maskedWhiten(b, tiled).map((v, t) => v * b.mask[t]!);
}

/** compute_opo_outcome_advantage: baseline = Σ L R / Σ L over the group (0 when Σ L = 0: verl's 0/0). */
export function opo(b: RaggedBatch, R: readonly number[], singletons: number): number[] {
  const L = validLengths(b);
  const A = new Array<number>(b.numSeqs).fill(0);
  for (const seqs of sequencesByGroup(b)) {
    if (seqs.length === 1) {
      A[seqs[0]!] = singletons === 1 ? R[seqs[0]!]! : 0;
      continue;
    }
    let num = 0;
    let den = 0;
    for (const s of seqs) {
      num += L[s]! * R[s]!;
      den += L[s]!;
    }
    const bsl = den > 0 ? num / den : 0;
    for (const s of seqs) A[s] = R[s]! - bsl;
  }
  return A;
}

/** compute_grpo_passk_outcome_advantage: torch.topk(rewards, 2); the first of equal maxima is "best". */
export function grpoPassk(b: RaggedBatch, R: readonly number[], eps: number, norm: boolean): number[] {
  const A = new Array<number>(b.numSeqs).fill(0);
  for (const seqs of sequencesByGroup(b)) {
    if (seqs.length < 2) continue; // verl raises; 0 here
    const order = [...seqs].sort((x, y) => R[y]! - R[x]! || x - y);
    let adv = R[order[0]!]! - R[order[1]!]!;
    if (norm) adv = adv / (stdUnbiased(seqs.map((s) => R[s]!)) + eps);
    A[order[0]!] = adv;
  }
  return A;
}

/** compute_gpg_outcome_advantage: alpha = bsz / max(count_nonzero(scores), 1), f_norm = 1. */
export function gpg(b: RaggedBatch, R: readonly number[], singletons: number): { A: number[]; alpha: number } {
  const m = R.filter((r) => r !== 0).length;
  const alpha = b.numSeqs / Math.max(m, 1);
  const mu = groupMeans(b, R, singletons);
  return { A: R.map((r, s) => (alpha * (r - mu[s]!)) / 1.0), alpha };
}

/** compute_gdpo_outcome_advantage with reward dimensions rs and weights ws (per token, · mask). */
export function gdpoTok(
  b: RaggedBatch,
  rs: readonly (readonly number[])[],
  ws: readonly number[],
  eps: number,
  singletons: number,
): number[] {
  const sum = new Array<number>(b.numTokens).fill(0);
  rs.forEach((R, k) => {
    const a = tile(b, grpoLoop(b, R, eps, true, singletons));
    for (let t = 0; t < b.numTokens; t++) sum[t] += ws[k]! * a[t]! * b.mask[t]!;
  });
  return maskedWhiten(b, sum).map((v, t) => v * b.mask[t]!);
}

/** compute_gae_advantage_return, column loop per sequence; returns [advantages (whitened), returns]. */
export function gae(
  b: RaggedBatch,
  r: readonly number[],
  v: readonly number[],
  gamma: number,
  lam: number,
): { adv: number[]; ret: number[] } {
  const raw = new Array<number>(b.numTokens).fill(0);
  for (let s = 0; s < b.numSeqs; s++) {
    let nextvalues = 0;
    let lastgaelam = 0;
    const ts = tokensOf(b, s);
    for (let k = ts.length - 1; k >= 0; k--) {
      const t = ts[k]!;
      const m = b.mask[t]!;
      const delta = r[t]! + gamma * nextvalues - v[t]!;
      const lg = delta + gamma * lam * lastgaelam;
      nextvalues = v[t]! * m + (1 - m) * nextvalues;
      lastgaelam = lg * m + (1 - m) * lastgaelam;
      raw[t] = lastgaelam;
    }
  }
  const ret = raw.map((a, t) => a + v[t]!);
  return { adv: maskedWhiten(b, raw), ret };
}

/** compute_reinforce_plus_plus_outcome_advantage: running return over valid columns, whitened. */
export function reinforcePp(b: RaggedBatch, r: readonly number[], gamma: number): { adv: number[]; ret: number[] } {
  const ret = new Array<number>(b.numTokens).fill(0);
  for (let s = 0; s < b.numSeqs; s++) {
    let running = 0;
    const ts = tokensOf(b, s);
    for (let k = ts.length - 1; k >= 0; k--) {
      const t = ts[k]!;
      const m = b.mask[t]!;
      const nr = r[t]! + gamma * running;
      ret[t] = nr * m;
      running = nr * m + running * (1 - m);
    }
  }
  return { adv: maskedWhiten(b, ret).map((a, t) => a * b.mask[t]!), ret };
}

/** (token_level_rewards · mask).flip.cumsum.flip within each sequence. */
export function returnsToGo(b: RaggedBatch, r: readonly number[]): number[] {
  const out = new Array<number>(b.numTokens).fill(0);
  for (let s = 0; s < b.numSeqs; s++) {
    let acc = 0;
    const ts = tokensOf(b, s);
    for (let k = ts.length - 1; k >= 0; k--) {
      acc += r[ts[k]!]! * b.mask[ts[k]!]!;
      out[ts[k]!] = acc;
    }
  }
  return out;
}

/** compute_remax_outcome_advantage. */
export function remax(b: RaggedBatch, r: readonly number[], baseline: readonly number[]): number[] {
  const G = returnsToGo(b, r);
  const out = G.slice();
  for (let s = 0; s < b.numSeqs; s++) for (const t of tokensOf(b, s)) out[t] = G[t]! - baseline[s]! * b.mask[t]!;
  return out;
}

export interface OtbParams {
  use_is_weights: number;
  handle_zero_tail: number;
  otb_eps: number;
  verl_singletons: number;
}

/** w_t of the OTB estimators and W = its masked cumsum per sequence (over columns). */
function otbW(
  b: RaggedBatch,
  oldLogp: readonly number[],
  spi: readonly number[],
  isw: readonly number[],
  useIs: number,
) {
  const W = new Array<number>(b.numTokens).fill(0);
  for (let s = 0; s < b.numSeqs; s++) {
    let acc = 0;
    for (const t of tokensOf(b, s)) {
      let w = 1 - 2 * Math.exp(oldLogp[t]!) + spi[t]!;
      if (useIs !== 0) w = w * isw[t]! ** 2;
      acc += w * b.mask[t]!;
      W[t] = acc;
    }
  }
  return W;
}

/**
 * compute_multi_turn_optimal_token_baseline_advantage (tir_optimal_token_baseline): the valid tokens
 * of each response compacted to 0..L-1, groups of non-empty responses, b* per compacted index.
 */
export function otbTir(
  b: RaggedBatch,
  r: readonly number[],
  oldLogp: readonly number[],
  spi: readonly number[],
  isw: readonly number[],
  p: OtbParams,
): number[] {
  const Gt = returnsToGo(b, r);
  const W = otbW(b, oldLogp, spi, isw, p.use_is_weights);
  const valid = Array.from({ length: b.numSeqs }, (_, s) => tokensOf(b, s).filter((t) => b.mask[t] === 1));
  const L = valid.map((v) => v.length);
  const maxL = Math.max(0, ...L);
  const Rc = valid.map((ts) => Array.from({ length: maxL }, (_, k) => (k < ts.length ? Gt[ts[k]!]! : 0)));
  const Wc = valid.map((ts) => Array.from({ length: maxL }, (_, k) => (k < ts.length ? W[ts[k]!]! : 0)));
  const base = Array.from({ length: b.numSeqs }, () => new Array<number>(maxL).fill(0));
  for (const seqs0 of sequencesByGroup(b)) {
    const seqs = seqs0.filter((s) => L[s]! > 0);
    if (seqs.length === 0) continue;
    if (seqs.length === 1) {
      // verl: baseline 0 (A = return); Credo: baseline = return (A = 0)
      if (p.verl_singletons !== 1) base[seqs[0]!] = Rc[seqs[0]!]!.slice();
      continue;
    }
    const bstar = Array.from({ length: maxL }, (_, k) => {
      let num = 0;
      let den = 0;
      for (const s of seqs) {
        num += Rc[s]![k]! * Wc[s]![k]!;
        den += Wc[s]![k]!;
      }
      return num / (den + p.otb_eps);
    });
    for (const s of seqs) base[s] = bstar.slice();
    if (p.handle_zero_tail !== 0) {
      const lens = seqs.map((s) => L[s]!);
      const sorted = [...lens].sort((x, y) => x - y);
      const mx = sorted[sorted.length - 1]!;
      const second = sorted[sorted.length - 2]!;
      const at = lens.flatMap((l, i) => (l === mx ? [i] : []));
      if (at.length === 1 && mx > second) for (let k = second; k < maxL; k++) base[seqs[at[0]!]!]![k] = 0;
    }
  }
  const A = new Array<number>(b.numTokens).fill(0);
  valid.forEach((ts, s) => ts.forEach((t, k) => (A[t] = Rc[s]![k]! - base[s]![k]!)));
  return A;
}

/**
 * compute_optimal_token_baseline_advantage (optimal_token_baseline): baselines per *column* of the
 * padded response (here: index within the sequence, masked tokens included), groups of all responses.
 * verl's singleton rule only (the function as written). Used to show it equals the tir form when no
 * response has a masked token before a valid one.
 */
export function otbColumns(
  b: RaggedBatch,
  r: readonly number[],
  oldLogp: readonly number[],
  spi: readonly number[],
  isw: readonly number[],
  p: OtbParams,
): number[] {
  const Gt = returnsToGo(b, r);
  const W = otbW(b, oldLogp, spi, isw, p.use_is_weights);
  const cols = Array.from({ length: b.numSeqs }, (_, s) => tokensOf(b, s));
  const width = Math.max(0, ...cols.map((c) => c.length));
  const at = (s: number, k: number, arr: readonly number[]) => (k < cols[s]!.length ? arr[cols[s]![k]!]! : 0);
  const m = (s: number, k: number) => (k < cols[s]!.length ? b.mask[cols[s]![k]!]! : 0);
  const base = Array.from({ length: b.numSeqs }, () => new Array<number>(width).fill(0));
  for (const seqs of sequencesByGroup(b)) {
    if (seqs.length === 1) continue;
    const bstar = Array.from({ length: width }, (_, k) => {
      let num = 0;
      let den = 0;
      for (const s of seqs) {
        num += at(s, k, Gt) * at(s, k, W) * m(s, k);
        den += at(s, k, W) * m(s, k);
      }
      return num / (den + p.otb_eps);
    });
    for (const s of seqs) base[s] = bstar.slice();
    if (p.handle_zero_tail !== 0) {
      const lens = seqs.map((s) => cols[s]!.filter((t) => b.mask[t] === 1).length);
      const sorted = [...lens].sort((x, y) => x - y);
      const mx = sorted[sorted.length - 1]!;
      const second = sorted[sorted.length - 2]!;
      const idx = lens.flatMap((l, i) => (l === mx ? [i] : []));
      if (idx.length === 1 && mx > second) for (let k = second; k < width; k++) base[seqs[idx[0]!]!]![k] = 0;
    }
  }
  const A = new Array<number>(b.numTokens).fill(0);
  cols.forEach((ts, s) => ts.forEach((t, k) => (A[t] = (Gt[t]! - base[s]![k]!) * b.mask[t]!)));
  return A;
}

/** A RaggedBatch seen as ppo.ts's RefBatch (only what aggWeights / aggValue read). */
function asRef(b: RaggedBatch): RefBatch {
  return {
    offsets: Array.from(b.offsets),
    groupOf: Array.from(b.groupOf),
    numGroups: b.numGroups,
    mask: Array.from(b.mask),
    logp: values(b, 'logp'),
    old_logp: values(b, 'old_logp'),
    ref_logp: [],
    reward: [],
  };
}

/** verl's vanilla policy loss (compute_policy_loss_vanilla + agg_loss) on a per-token advantage. */
export function vanillaOn(b: RaggedBatch, advTok: readonly number[], params: Partial<PpoParams> = {}): FamilyResult {
  const p: PpoParams = { ...PPO_DEFAULTS, ...params };
  const rb = asRef(b);
  const w = aggWeights(rb, p.loss_agg_mode, p.max_len);
  const l = new Array<number>(b.numTokens).fill(0);
  const g = new Array<number>(b.numTokens).fill(0);
  let n = 0;
  let clip = 0;
  let dual = 0;
  let kl = 0;
  for (let t = 0; t < b.numTokens; t++) {
    if (b.mask[t] !== 1) continue;
    const k = ppoToken(advTok[t]!, rb.logp[t]!, rb.old_logp[t]!, p.eps_low, p.eps_high, p.clip_c);
    l[t] = k.l;
    g[t] = w[t]! * k.dl;
    n++;
    if (k.clipped) clip++;
    if (k.dual) dual++;
    kl += -k.d;
  }
  return {
    loss: aggValue(rb, l, p.loss_agg_mode, p.max_len),
    metrics: { clip_frac: n ? clip / n : 0, dual_clip_frac: n ? dual / n : 0, ppo_kl: n ? kl / n : 0 },
    grads: { logp: g },
  };
}

export interface VerlOutcomeParams extends PpoParams {
  adv_estimator: number;
  norm_adv_by_std_in_grpo: number;
  epsilon: number;
  verl_singletons: number;
}

export const VERL_OUTCOME_DEFAULTS: VerlOutcomeParams = {
  ...PPO_DEFAULTS,
  adv_estimator: 0,
  norm_adv_by_std_in_grpo: 1,
  epsilon: 1e-6,
  verl_singletons: 0,
};

/** The advantage of each sequence under an adv_estimator code (per token for code 4, constant per sequence). */
export function outcomeAdvantage(b: RaggedBatch, p: VerlOutcomeParams): number[] {
  const R = values(b, 'reward');
  const norm = p.norm_adv_by_std_in_grpo !== 0;
  const e = p.epsilon;
  const sg = p.verl_singletons;
  switch (p.adv_estimator) {
    case 1:
      return grpoVectorized(b, R, e, sg);
    case 2:
      return rlooLoop(b, R, sg);
    case 3:
      return rlooVectorized(b, R);
    case 4: {
      // verl's per-token advantage is constant over a sequence's valid tokens; a sequence without
      // any gets the same map (a - mean) rsqrt(var + 1e-8) applied to its centred reward.
      const m = groupMeans(b, R, sg);
      const a = R.map((r, s) => r - m[s]!);
      const st = whitenStats(
        b,
        tile(b, a).map((v, t) => v * b.mask[t]!),
      );
      return a.map((x) => (x - st.mean) * st.rsqrt);
    }
    case 5:
      return opo(b, R, sg);
    case 6:
      return grpoPassk(b, R, e, norm);
    case 7:
      return gpg(b, R, sg).A;
    default:
      return grpoLoop(b, R, e, norm, sg);
  }
}

/** verl_outcome: the estimator's advantage, then the vanilla loss; exports the advantage per sequence. */
export function verlOutcomeRef(b: RaggedBatch, params: Partial<VerlOutcomeParams> = {}): FamilyResult {
  const p = { ...VERL_OUTCOME_DEFAULTS, ...params };
  const A = outcomeAdvantage(b, p);
  return { ...vanillaOn(b, tile(b, A), p), exports: { advantage: A } };
}

/** A per-token advantage read at valid tokens (masked ones set to 0: their value carries no meaning). */
const masked = (b: RaggedBatch, x: readonly number[]) => x.map((v, t) => (b.mask[t] === 1 ? v : 0));

export interface VerlGaeParams extends PpoParams {
  gamma: number;
  lam: number;
}
export function verlGaeRef(
  b: RaggedBatch,
  params: Partial<VerlGaeParams> = {},
): FamilyResult & { tokenAdv: number[]; returns: number[] } {
  const p = { ...PPO_DEFAULTS, gamma: 1, lam: 1, ...params };
  const g = gae(b, values(b, 'token_reward'), values(b, 'value'), p.gamma, p.lam);
  return { ...vanillaOn(b, g.adv, p), tokenAdv: masked(b, g.adv), returns: masked(b, g.ret) };
}

export interface VerlRppParams extends PpoParams {
  gamma: number;
}
export function verlReinforcePpRef(
  b: RaggedBatch,
  params: Partial<VerlRppParams> = {},
): FamilyResult & { tokenAdv: number[]; returns: number[] } {
  const p = { ...PPO_DEFAULTS, gamma: 1, ...params };
  const g = reinforcePp(b, values(b, 'token_reward'), p.gamma);
  return { ...vanillaOn(b, g.adv, p), tokenAdv: masked(b, g.adv), returns: masked(b, g.ret) };
}

export function verlRemaxRef(b: RaggedBatch, params: Partial<PpoParams> = {}): FamilyResult & { tokenAdv: number[] } {
  const A = remax(b, values(b, 'token_reward'), values(b, 'reward_baseline'));
  return { ...vanillaOn(b, A, params), tokenAdv: masked(b, A) };
}

export type VerlOtbParams = PpoParams & OtbParams;
export const OTB_DEFAULTS: OtbParams = { use_is_weights: 0, handle_zero_tail: 1, otb_eps: 1e-8, verl_singletons: 0 };
export function verlOtbRef(b: RaggedBatch, params: Partial<VerlOtbParams> = {}): FamilyResult & { tokenAdv: number[] } {
  const p = { ...PPO_DEFAULTS, ...OTB_DEFAULTS, ...params };
  const A = otbTir(
    b,
    values(b, 'token_reward'),
    values(b, 'old_logp'),
    values(b, 'sum_pi_squared'),
    values(b, 'rollout_is_weights'),
    p,
  );
  return { ...vanillaOn(b, A, p), tokenAdv: masked(b, A) };
}

export interface VerlGdpoParams extends PpoParams {
  w_1: number;
  w_2: number;
  w_3: number;
  epsilon: number;
  verl_singletons: number;
}
export const GDPO_DEFAULTS = { w_1: 1, w_2: 1, w_3: 1, epsilon: 1e-6, verl_singletons: 0 };
export function verlGdpoRef(
  b: RaggedBatch,
  params: Partial<VerlGdpoParams> = {},
): FamilyResult & { tokenAdv: number[] } {
  const p = { ...PPO_DEFAULTS, ...GDPO_DEFAULTS, ...params };
  const rs = [values(b, 'reward_1'), values(b, 'reward_2'), values(b, 'reward_3')];
  const ws = [p.w_1, p.w_2, p.w_3];
  const tok = gdpoTok(b, rs, ws, p.epsilon, p.verl_singletons);
  // per response: the same whitening map applied to its weighted sum (also for responses without valid tokens)
  const sumSeq = new Array<number>(b.numSeqs).fill(0);
  rs.forEach((R, k) => grpoLoop(b, R, p.epsilon, true, p.verl_singletons).forEach((a, s) => (sumSeq[s] += ws[k]! * a)));
  const st = whitenStats(
    b,
    tile(b, sumSeq).map((v, t) => v * b.mask[t]!),
  );
  const A = sumSeq.map((x) => (x - st.mean) * st.rsqrt);
  return { ...vanillaOn(b, tok, p), exports: { advantage: A }, tokenAdv: masked(b, tok) };
}

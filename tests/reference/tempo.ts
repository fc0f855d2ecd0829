/**
 * TEMPO reference (methods-pg.md §9, stdlib/tempo.credo header), float64, loops.
 *
 * Prefix tree per group g, built explicitly from the token ids of the valid tokens of each response:
 *   D(s)   = responses of g whose valid token ids start with s (D(empty) = every response of g)
 *   V(s)   = mean_{j in D(s)} Rt_j,  Rt = GRPO advantage (value_norm > 0) or the raw reward
 *   for the valid token at position p of response i (ids y_0..y_p):
 *     after  = y_0..y_p,  before = y_0..y_{p-1} (the root when p = 0)
 *     branch = |D(after)| < |D(before)|,  td = branch ? V(after) - V(before) : 0
 *   A_t  = A_i + lambda td
 * Token loss (GRPO/DeepSeekMath, as grpo.ts): d = clip(logp - old_logp, -20, 20), r = e^d,
 *   surr = min(r A, clip(r, 1-eps_low, 1+eps_high) A), k = clip(ref_logp - logp, -20, 20),
 *   kl = clip(e^k - k - 1, -10, 10), l = -(surr - beta kl);  loss = seq-mean-token-mean(l).
 * Hand-derived gradient (A is a constant; only the token's own logp enters its loss):
 *   dr = r [-20 <= d <= 20];  dsurr = min-weights on (A dr, A [lo <= r <= hi] dr)
 *   dkl = [-10 <= kl_raw <= 10] (e^k - 1) (-[-20 <= ref_logp - logp <= 20])
 *   dloss/dlogp_t = -(dsurr - beta dkl) / (B' L_i)
 * Metrics: clip_frac (GRPO condition with the token advantage), kl, branch_frac = token-mean(branch),
 *   td_abs_mean = token-mean(|td|).
 */
import { type RefBatch, type RefResult, checkBatch, groupAdvantages, numSeqs, numTokens, seqLengths } from './batch.js';
import { grpoKlToken } from './ops.js';

export interface TempoBatch extends RefBatch {
  token_id: number[]; // [T]
}

export interface TempoParams {
  lambda: number;
  value_norm: number;
  eps_low: number;
  eps_high: number;
  beta: number;
  adv_eps: number;
}

export const TEMPO_DEFAULTS: TempoParams = {
  lambda: 1,
  value_norm: 1,
  eps_low: 0.2,
  eps_high: 0.2,
  beta: 0.04,
  adv_eps: 1e-6,
};

export interface TempoTree {
  td: number[]; // [T], 0 at masked tokens
  value: number[]; // [T] V(after), 0 at masked tokens
  branch: number[]; // [T] 0/1
}

/** The prefix-tree quantities of every token, from explicit prefix lists. */
export function tempoTree(b: TempoBatch, params: Partial<TempoParams> = {}): TempoTree {
  const p: TempoParams = { ...TEMPO_DEFAULTS, ...params };
  const S = numSeqs(b);
  const T = numTokens(b);
  const A = groupAdvantages(b, b.reward, p.adv_eps);
  const outcome = p.value_norm > 0 ? A : b.reward;
  // valid token ids of each response
  const ids: number[][] = [];
  const idx: number[][] = [];
  for (let s = 0; s < S; s++) {
    ids.push([]);
    idx.push([]);
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] === 1) {
        ids[s]!.push(b.token_id[t]!);
        idx[s]!.push(t);
      }
    }
  }
  // D(s) for every prefix that occurs, per group: key = group + the id list
  const members = new Map<string, number[]>();
  const keyOf = (g: number, prefix: number[]) => `${g}:${prefix.join(',')}`;
  for (let s = 0; s < S; s++) {
    const g = b.groupOf[s]!;
    for (let n = 0; n <= ids[s]!.length; n++) {
      const k = keyOf(g, ids[s]!.slice(0, n));
      if (!members.has(k)) members.set(k, []);
      members.get(k)!.push(s);
    }
  }
  const V = (k: string) => {
    const m = members.get(k)!;
    let sum = 0;
    for (const j of m) sum += outcome[j]!;
    return sum / m.length;
  };
  const out: TempoTree = {
    td: new Array<number>(T).fill(0),
    value: new Array<number>(T).fill(0),
    branch: new Array<number>(T).fill(0),
  };
  for (let s = 0; s < S; s++) {
    const g = b.groupOf[s]!;
    for (let q = 0; q < ids[s]!.length; q++) {
      const t = idx[s]![q]!;
      const after = keyOf(g, ids[s]!.slice(0, q + 1));
      const before = keyOf(g, ids[s]!.slice(0, q));
      const isBranch = members.get(after)!.length < members.get(before)!.length;
      out.value[t] = V(after);
      out.branch[t] = isBranch ? 1 : 0;
      out.td[t] = isBranch ? V(after) - V(before) : 0;
    }
  }
  return out;
}

export function tempoRef(b: TempoBatch, params: Partial<TempoParams> = {}): RefResult {
  const p: TempoParams = { ...TEMPO_DEFAULTS, ...params };
  checkBatch(b);
  const S = numSeqs(b);
  const T = numTokens(b);
  const L = seqLengths(b);
  const A = groupAdvantages(b, b.reward, p.adv_eps);
  const tree = tempoTree(b, p);

  let nSeqs = 0;
  let nTokens = 0;
  for (let s = 0; s < S; s++) {
    if (L[s]! > 0) nSeqs++;
    nTokens += L[s]!;
  }
  const grad = new Array<number>(T).fill(0);
  let loss = 0;
  let clipCount = 0;
  let klSum = 0;
  let branchCount = 0;
  let tdAbs = 0;
  for (let s = 0; s < S; s++) {
    if (L[s]! === 0) continue;
    let seqSum = 0;
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) {
      if (b.mask[t] !== 1) continue;
      const a = A[s]! + p.lambda * tree.td[t]!;
      const pt = grpoKlToken(a, b.logp[t]!, b.old_logp[t]!, b.ref_logp[t]!, p);
      seqSum += pt.l;
      grad[t] = pt.dl / (nSeqs * L[s]!);
      if (pt.clipped) clipCount++;
      klSum += pt.kl;
      branchCount += tree.branch[t]!;
      tdAbs += Math.abs(tree.td[t]!);
    }
    loss += seqSum / L[s]!;
  }
  if (nSeqs > 0) loss /= nSeqs;
  const tm = (x: number) => (nTokens > 0 ? x / nTokens : 0);
  return {
    loss,
    metrics: { clip_frac: tm(clipCount), kl: tm(klSum), branch_frac: tm(branchCount), td_abs_mean: tm(tdAbs) },
    grad_logp: grad,
  };
}

/**
 * Hand-written float64 reference for the vocabulary terms: log-softmax, the gathered log-prob of
 * the sampled token, the entropy, and their gradients w.r.t. the logits, written from the
 * formulas (not from the compiler's IR):
 *
 *   lse_t = log Σ_v exp(z_tv)            (max-shifted; −inf when every z_tv is −inf)
 *   p_tv  = exp(z_tv − lse_t)            (0 for a −inf logit and for an all −inf row)
 *   logp_t = z_t,id − lse_t
 *   H_t   = −Σ_v p_tv log p_tv           (0·log 0 = 0)
 *   ∂logp_t/∂z_tv = [v = id] − p_tv
 *   ∂H_t/∂z_tv    = −p_tv (log p_tv + H_t)   (0 where p_tv = 0)
 *
 * The objective: loss = −mean(logp) − c·mean(H) over valid tokens (token-mean; 0 for an empty batch),
 * logits divided by a temperature τ first (∂/∂logits = (1/τ) ∂/∂z).
 */

export interface VocabRefBatch {
  readonly V: number;
  /** [T][V] logits, −inf allowed. */
  readonly logits: readonly (readonly number[])[];
  /** [T] sampled token index into each row. */
  readonly tokenId: readonly number[];
  /** [T] 1 = valid. */
  readonly mask: readonly number[];
}

export interface VocabRefResult {
  readonly loss: number;
  readonly entropyMean: number;
  /** [T][V] ∂loss/∂logits, 0 at masked tokens. */
  readonly grad: number[][];
}

export interface RowStats {
  readonly lse: number;
  readonly p: number[];
  readonly logp: number[];
  readonly entropy: number;
}

export function rowStats(z: readonly number[]): RowStats {
  const m = Math.max(...z);
  if (m === -Infinity) return { lse: -Infinity, p: z.map(() => 0), logp: z.map(() => -Infinity), entropy: 0 };
  let s = 0;
  for (const x of z) s += Math.exp(x - m);
  const lse = m + Math.log(s);
  const logp = z.map((x) => x - lse);
  const p = logp.map((l) => Math.exp(l));
  let entropy = 0;
  for (let v = 0; v < z.length; v++) if (p[v] > 0) entropy -= p[v] * logp[v];
  return { lse, p, logp, entropy };
}

export function logitsPolicyLoss(b: VocabRefBatch, coeff: number, temperature = 1): VocabRefResult {
  const T = b.logits.length;
  const n = b.mask.reduce((a, m) => a + m, 0);
  const grad = b.logits.map((row) => row.map(() => 0));
  let sumLogp = 0;
  let sumH = 0;
  for (let t = 0; t < T; t++) {
    if (!b.mask[t]) continue;
    const z = b.logits[t].map((x) => x / temperature);
    const { p, logp, entropy } = rowStats(z);
    sumLogp += logp[b.tokenId[t]];
    sumH += entropy;
    for (let v = 0; v < b.V; v++) {
      const dLogp = (v === b.tokenId[t] ? 1 : 0) - p[v];
      const dH = p[v] > 0 ? -p[v] * (logp[v] + entropy) : 0;
      grad[t][v] = (-dLogp - coeff * dH) / Math.max(n, 1) / temperature;
    }
  }
  const denom = Math.max(n, 1);
  return { loss: -sumLogp / denom - (coeff * sumH) / denom, entropyMean: sumH / denom, grad };
}

/**
 * Logits of a row whose log-softmax at `id` is exactly `logp` (< 0): the other entries are given,
 * S = Σ_{j≠id} exp(o_j), and z_id = logp + log S − log(1 − exp(logp)).
 */
export function rowWithLogp(others: readonly number[], id: number, logp: number): number[] {
  const S = others.reduce((a, o, j) => (j === id ? a : a + Math.exp(o)), 0);
  const z = [...others];
  z[id] = logp + Math.log(S) - Math.log(-Math.expm1(logp));
  return z;
}

/**
 * Float64 references for the distillation losses over the vocabulary (stdlib/gkd.credo,
 * stdlib/liger_jsd.credo, stdlib/liger_cosine.credo), written from the frameworks' code
 * (huggingface/trl@f2cd5771 GKDTrainer.generalized_jsd_loss; linkedin/Liger-Kernel@ead96b61
 * chunked_loss/jsd_loss.py, cosine_similarity_loss.py, fused_linear_distillation.py), not from the
 * .credo files. Loops over each valid token's rows; s = student logits / τ, t = teacher logits / τ.
 *
 * Generalised JSD of one row (p_s = softmax(s), p_t = softmax(t)):
 *   β = 0: KL(p_t ‖ p_s);  β = 1: KL(p_s ‖ p_t);
 *   else β KL(p_t ‖ M) + (1 − β) KL(p_s ‖ M), M = β p_t + (1 − β) p_s.
 * Hand-derived gradients w.r.t. s (then ÷ τ for the logits):
 *   β = 0: ∂/∂s_u = p_s,u Σ_v p_t,v − p_t,u
 *   β = 1: ∂/∂s_u = p_s,u (log p_s,u − log p_t,u − KL)          (0 where p_s,u = 0)
 *   else : ∂J/∂p_s,v = (1 − β) log(p_s,v / M_v) =: g_v, so ∂/∂s_u = p_s,u (g_u − Σ_v p_s,v g_v)
 *
 * Cosine of one row pair (PyTorch's F.normalize then ATen's cosine_similarity):
 *   a = s / max(‖s‖, 1e-12), b = t / max(‖t‖, 1e-12), c_a = max(‖a‖, 1e-8) (value; the gradient
 *   is the norm's, the clamp runs under no_grad), cos = Σ a_v b_v / (c_a c_b).
 *   Backward by hand through the chain: ∂cos/∂a_v = b_v / (c_a c_b) − (cos / c_a) · a_v / ‖a‖
 *   (the last term 0 at a = 0); ∂a_v/∂s_u = δ_uv / d − s_v s_u / (d² ‖s‖) · [‖s‖ > 1e-12],
 *   d = max(‖s‖, 1e-12).
 */
import type { HostTensor, RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, values, zeros } from './family.js';
import { rowStats } from './vocab.js';

/** The generalised JSD of one row pair and its gradient w.r.t. the student row (at temperature 1). */
export function jsdRow(s: readonly number[], t: readonly number[], beta: number): { value: number; grad: number[] } {
  const S = rowStats(s);
  const T = rowStats(t);
  const V = s.length;
  const ps = S.p;
  const pt = T.p;
  if (beta === 0) {
    let value = 0;
    for (let v = 0; v < V; v++) if (pt[v]! > 0) value += pt[v]! * (T.logp[v]! - S.logp[v]!);
    const mass = pt.reduce((a, x) => a + x, 0);
    return { value, grad: ps.map((p, u) => p * mass - pt[u]!) };
  }
  if (beta === 1) {
    let value = 0;
    for (let v = 0; v < V; v++) if (ps[v]! > 0) value += ps[v]! * (S.logp[v]! - T.logp[v]!);
    return { value, grad: ps.map((p, u) => (p > 0 ? p * (S.logp[u]! - T.logp[u]! - value) : 0)) };
  }
  const M = ps.map((p, v) => beta * pt[v]! + (1 - beta) * p);
  let value = 0;
  for (let v = 0; v < V; v++) {
    if (pt[v]! > 0) value += beta * pt[v]! * (T.logp[v]! - Math.log(M[v]!));
    if (ps[v]! > 0) value += (1 - beta) * ps[v]! * (S.logp[v]! - Math.log(M[v]!));
  }
  const g = ps.map((p, v) => (p > 0 ? (1 - beta) * (S.logp[v]! - Math.log(M[v]!)) : 0));
  const mean = ps.reduce((a, p, v) => a + p * g[v]!, 0);
  return { value, grad: ps.map((p, u) => p * (g[u]! - mean)) };
}

const norm = (x: readonly number[]) => Math.sqrt(x.reduce((a, v) => a + v * v, 0));

/** Liger's cosine of one row pair (after F.normalize) and its gradient w.r.t. the student row. */
export function cosineRow(s: readonly number[], t: readonly number[]): { value: number; grad: number[] } {
  const ns = norm(s);
  const nt = norm(t);
  const ds = Math.max(ns, 1e-12);
  const a = s.map((x) => x / ds);
  const b = t.map((x) => x / Math.max(nt, 1e-12));
  const na = norm(a);
  const ca = Math.max(na, 1e-8);
  const cb = Math.max(norm(b), 1e-8);
  const value = a.reduce((acc, x, v) => acc + x * b[v]!, 0) / (ca * cb);
  const ga = a.map((x, v) => b[v]! / (ca * cb) - (na > 0 ? ((value / ca) * x) / na : 0));
  const dot = ga.reduce((acc, g, v) => acc + g * s[v]!, 0);
  const grad = s.map((x, u) => ga[u]! / ds - (ns > 1e-12 ? (dot * x) / (ds * ds * ns) : 0));
  return { value, grad };
}

const rowOf = (x: readonly number[], t: number, V: number, tau: number) =>
  x.slice(t * V, (t + 1) * V).map((z) => z / tau);

export interface GkdParams {
  beta: number;
  temperature: number;
  reduction: number;
}
export const GKD_DEFAULTS: GkdParams = { beta: 0.5, temperature: 1, reduction: 0 };

/** TRL GKDTrainer.generalized_jsd_loss with labels (the mask) and reduction 0 batchmean, 1 sum, 2 mean. */
export function gkdRef(b: RaggedBatch, params: Partial<GkdParams> = {}): FamilyResult {
  const { beta, temperature: tau, reduction } = { ...GKD_DEFAULTS, ...params };
  const V = b.vocabSize;
  const [logits, teacher] = [values(b, 'logits'), values(b, 'teacher_logits')];
  const grad = zeros(b.numTokens * V);
  let n = 0;
  for (let t = 0; t < b.numTokens; t++) n += b.mask[t]!;
  const denom = reduction === 1 ? 1 : reduction === 2 ? Math.max(n * V, 1) : Math.max(n, 1);
  let total = 0;
  for (let t = 0; t < b.numTokens; t++) {
    if (!b.mask[t]) continue;
    const r = jsdRow(rowOf(logits, t, V, tau), rowOf(teacher, t, V, tau), beta);
    total += r.value;
    r.grad.forEach((g, v) => (grad[t * V + v] = g / denom / tau));
  }
  return { loss: total / denom, metrics: {}, grads: { logits: grad } };
}

export interface LigerParams {
  weight_hard_loss: number;
  weight_soft_loss: number;
  beta: number;
  temperature: number;
}
export const LIGER_DEFAULTS: LigerParams = { weight_hard_loss: 0.5, weight_soft_loss: 0.5, beta: 0.5, temperature: 1 };

/**
 * Liger's chunked loss: hard = Σ CE(logits, label) / N over the labelled rows (temperature 1),
 * soft = Σ distillation(s, t) / N, loss = w_h hard + w_s soft. `labelled(t)` says which rows count
 * for the CE (and N); `softRows(t)` which rows the distillation term sums.
 */
function ligerRef(
  b: RaggedBatch,
  prm: LigerParams,
  row: (s: number[], t: number[]) => { value: number; grad: number[] },
  labelled: (t: number) => boolean,
): FamilyResult {
  const { weight_hard_loss: wh, weight_soft_loss: ws, temperature: tau } = prm;
  const V = b.vocabSize;
  const [logits, teacher, label] = [values(b, 'logits'), values(b, 'teacher_logits'), values(b, 'token_id')];
  const grad = zeros(b.numTokens * V);
  let count = 0;
  for (let t = 0; t < b.numTokens; t++) if (b.mask[t] && labelled(t)) count++;
  const N = Math.max(count, 1);
  let hard = 0;
  let soft = 0;
  for (let t = 0; t < b.numTokens; t++) {
    if (!b.mask[t]) continue;
    if (labelled(t)) {
      const st = rowStats(rowOf(logits, t, V, 1));
      const id = label[t]!;
      hard -= st.logp[id]!;
      // ∂(−log p_id)/∂z_v = p_v − [v = id]
      for (let v = 0; v < V; v++) grad[t * V + v] += (wh * (st.p[v]! - (v === id ? 1 : 0))) / N;
    }
    const r = row(rowOf(logits, t, V, tau), rowOf(teacher, t, V, tau));
    soft += r.value;
    r.grad.forEach((g, v) => (grad[t * V + v] += (ws * g) / N / tau));
  }
  hard /= N;
  soft /= N;
  return { loss: wh * hard + ws * soft, metrics: { soft_loss: soft, hard_loss: hard }, grads: { logits: grad } };
}

/** Liger LigerFusedLinearJSDLoss: CE and the generalised JSD, both over the labelled rows (the mask). */
export function ligerJsdRef(b: RaggedBatch, params: Partial<LigerParams> = {}): FamilyResult {
  const prm = { ...LIGER_DEFAULTS, ...params };
  return ligerRef(
    b,
    prm,
    (s, t) => jsdRow(s, t, prm.beta),
    () => true,
  );
}

/**
 * Liger LigerFusedLinearCosineSimilarityLoss: the CE over the rows with `labeled` (N of them), the
 * cosine term β (1 − cos) over every row passed (the mask), both ÷ N.
 */
export function ligerCosineRef(b: RaggedBatch, params: Partial<LigerParams> = {}): FamilyResult {
  const prm = { ...LIGER_DEFAULTS, ...params };
  const labeled = values(b, 'labeled');
  return ligerRef(
    b,
    prm,
    (s, t) => {
      const c = cosineRow(s, t);
      return { value: prm.beta * (1 - c.value), grad: c.grad.map((g) => -prm.beta * g) };
    },
    (t) => labeled[t] === 1,
  );
}

/**
 * A hand-made batch over the vocabulary for the special-case tests: sequences of the given lengths
 * (each its own group), `V` entries per row, the named `token x vocab` tensors as flat T·V arrays
 * and token tensors as T arrays (i32 / bool by `dtypes`).
 */
export function vocabBatch(
  lengths: readonly number[],
  V: number,
  mask: readonly number[],
  vocab: Record<string, readonly number[]>,
  tokens: Record<string, { dtype: 'i32' | 'bool' | 'f32'; data: readonly number[] }> = {},
): RaggedBatch {
  const offsets = new Int32Array(lengths.length + 1);
  lengths.forEach((l, s) => (offsets[s + 1] = offsets[s]! + l));
  const T = offsets[lengths.length]!;
  const tensors = new Map<string, HostTensor>();
  for (const [name, data] of Object.entries(vocab)) {
    if (data.length !== T * V) throw new Error(`vocabBatch: ${name} has ${data.length} values, not ${T * V}`);
    tensors.set(name, { level: 'vocab', dtype: 'f32', data: Float64Array.from(data) });
  }
  for (const [name, { dtype, data }] of Object.entries(tokens))
    tensors.set(name, { level: 'token', dtype, data: Float64Array.from(data) });
  return {
    numTokens: T,
    numSeqs: lengths.length,
    numGroups: lengths.length,
    vocabSize: V,
    offsets,
    groupOf: Int32Array.from(lengths.map((_, s) => s)),
    groupIds: lengths.map((_, s) => s),
    mask: Uint8Array.from(mask),
    tensors,
    layout: { kind: 'packed' },
  };
}

/**
 * The bench's plain-JS row: DAPO's loss and gradient (stdlib/dapo.credo at its defaults) as the
 * loops a careful user would write by hand over typed arrays — the speed of no compiler at all.
 * tests/bench/plain-js.test.ts checks it against the interpreter, so the row times a correct loop.
 */
import type { RaggedBatch } from '../core/batch/batch.js';

const EPS_LOW = 0.2;
const EPS_HIGH = 0.28;
const CLIP_C = 10;
const ADV_EPS = 1e-6;

export function plainDapo(b: RaggedBatch): { loss: number; grad: Float64Array } {
  const logp = b.tensors.get('logp')!.data;
  const oldLogp = b.tensors.get('old_logp')!.data;
  const reward = b.tensors.get('reward')!.data;
  const { numSeqs: S, numGroups: G, offsets, groupOf, mask } = b;
  // group statistics of the rewards: mean and unbiased std (0 for a group of one)
  const n = new Float64Array(G);
  const sum = new Float64Array(G);
  for (let s = 0; s < S; s++) ((n[groupOf[s]] += 1), (sum[groupOf[s]] += reward[s]));
  const sq = new Float64Array(G);
  for (let s = 0; s < S; s++) {
    const d = reward[s] - sum[groupOf[s]] / n[groupOf[s]];
    sq[groupOf[s]] += d * d;
  }
  let valid = 0;
  for (let t = 0; t < b.numTokens; t++) valid += mask[t];
  const grad = new Float64Array(b.numTokens);
  let total = 0;
  for (let s = 0; s < S; s++) {
    const g = groupOf[s];
    const adv = (reward[s] - sum[g] / n[g]) / (Math.sqrt(sq[g] / Math.max(n[g] - 1, 1)) + ADV_EPS);
    for (let t = offsets[s]; t < offsets[s + 1]; t++) {
      if (!mask[t]) continue;
      const d = logp[t] - oldLogp[t];
      const inside = d >= -20 && d <= 20;
      const ratio = Math.exp(Math.min(20, Math.max(-20, d)));
      const clipped = Math.min(1 + EPS_HIGH, Math.max(1 - EPS_LOW, ratio));
      const l1 = -adv * ratio;
      const l2 = -adv * clipped;
      // max(l1, l2) and, for a negative advantage, min(·, -adv·c); ties split the gradient (torch)
      const w1 = l1 > l2 ? 1 : l1 < l2 ? 0 : 0.5;
      const lclip = Math.max(l1, l2);
      const l3 = -adv * CLIP_C;
      const keep = adv < 0 ? (lclip < l3 ? 1 : lclip > l3 ? 0 : 0.5) : 1;
      total += adv < 0 ? Math.min(lclip, l3) : lclip;
      const dRatio = inside ? ratio : 0;
      const inWindow = ratio >= 1 - EPS_LOW && ratio <= 1 + EPS_HIGH ? 1 : 0;
      grad[t] = (keep * (w1 * -adv * dRatio + (1 - w1) * -adv * inWindow * dRatio)) / valid;
    }
  }
  return { loss: valid > 0 ? total / valid : 0, grad };
}

/**
 * dapo_logits at temperature 1 with an entropy bonus (verl's entropy_coeff) as hand-written loops
 * over [T × V] logits: per row the log-sum-exp, the sampled token's log-prob and the entropy, DAPO
 * on those log-probs (plainDapo), then the gradient row g·([v = id] − p_v) + (c / n)·p_v·(log p_v + H).
 */
export function plainDapoLogits(b: RaggedBatch, entropyCoeff: number): { loss: number; grad: Float64Array } {
  const z = b.tensors.get('logits')!.data;
  const ids = b.tensors.get('token_id')!.data;
  const V = b.vocabSize;
  const T = b.numTokens;
  const lse = new Float64Array(T);
  const logp = new Float64Array(T);
  const entropy = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    const row = t * V;
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, z[row + v]);
    let s = 0;
    let sz = 0;
    for (let v = 0; v < V; v++) {
      const e = Math.exp(z[row + v] - m);
      s += e;
      if (e > 0) sz += e * z[row + v];
    }
    lse[t] = m + Math.log(s);
    logp[t] = z[row + ids[t]] - lse[t];
    entropy[t] = lse[t] - sz / s;
  }
  const withLogp: RaggedBatch = {
    ...b,
    tensors: new Map(b.tensors).set('logp', { level: 'token', dtype: 'f32', data: logp }),
  };
  const dapo = plainDapo(withLogp);
  let valid = 0;
  let hSum = 0;
  for (let t = 0; t < T; t++) if (b.mask[t]) ((valid += 1), (hSum += entropy[t]));
  const n = Math.max(valid, 1);
  const grad = new Float64Array(T * V);
  for (let t = 0; t < T; t++) {
    if (!b.mask[t]) continue;
    const row = t * V;
    const g = dapo.grad[t];
    for (let v = 0; v < V; v++) {
      const lp = z[row + v] - lse[t];
      const p = Math.exp(lp);
      grad[row + v] = g * ((v === ids[t] ? 1 : 0) - p) + (p > 0 ? (entropyCoeff / n) * p * (lp + entropy[t]) : 0);
    }
  }
  return { loss: dapo.loss - (entropyCoeff * hSum) / n, grad };
}

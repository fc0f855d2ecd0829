/**
 * Unmasking-policy reference (Jazbec et al. 2026, methods-dpo.md §12), float64, loops.
 *
 * A group is a prompt, a sequence one denoising step (view) of one response (`response`), its
 * valid tokens the still-masked positions M_k, one Bernoulli unmask decision each:
 *   c(a, u)  = clip(log(a ? σ(u) : 1 − σ(u)), log ε_p, log(1 − ε_p))
 *   logπ_k   = Σ_{i ∈ M_k} c(a_i, u_i),  ρ_k = exp(clip(logπ_k − logπ_old,k, −20, 20))
 *   R_g      = mean reward over the views of response g;  A_g = R_g − mean over the prompt's responses
 *   ℓ_k      = min(ρ_k A, clip(ρ_k, 1 − ε, 1 + ε) A)
 *   loss     = −(1/G) Σ_g (1/#active_g) Σ_{k active} ℓ_k   (active: at least one valid decision)
 *
 * Hand-derived gradient: ∂c/∂u = (a ? 1 − σ(u) : −σ(u)) inside the clamp, 0 outside;
 * ∂ℓ/∂ρ = A·[min picks ρA] + A·[min picks the clipped term]·[1 − ε ≤ ρ ≤ 1 + ε];
 * ∂ρ/∂logπ = ρ·[|logπ − logπ_old| ≤ 20]; ∂loss/∂u_i = −(1/(G·#active_g)) ∂ℓ/∂ρ ∂ρ/∂logπ ∂c/∂u_i.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import {
  type FamilyResult,
  logSigmoid,
  meanOr0,
  sequencesByGroup,
  sigmoid,
  validTokensOf,
  values,
  zeros,
} from './family.js';
import { clipG, minG } from './ops.js';

export interface UnmaskPolicyParams {
  eps: number;
  prob_eps: number;
}

export const UNMASK_POLICY_DEFAULTS: UnmaskPolicyParams = { eps: 0.5, prob_eps: 1.1920929e-7 };

/** The clamped Bernoulli log-likelihood of decision a under logit u, with ∂/∂u. */
function bernoulliClamped(a: number, u: number, eps: number): { v: number; du: number } {
  const raw = a === 1 ? logSigmoid(u) : logSigmoid(-u);
  const draw = a === 1 ? 1 - sigmoid(u) : -sigmoid(u);
  const c = clipG(raw, Math.log(eps), Math.log1p(-eps));
  return { v: c.v, du: c.dx * draw };
}

/** The responses of the batch: for each, its sequences (views), keyed by (group, response id). */
export function responsesOf(b: RaggedBatch): number[][] {
  const response = values(b, 'response');
  const out: number[][] = [];
  for (const seqs of sequencesByGroup(b)) {
    const byId = new Map<number, number[]>();
    for (const s of seqs) {
      const id = response[s]!;
      if (!byId.has(id)) byId.set(id, []);
      byId.get(id)!.push(s);
    }
    out.push(...byId.values());
  }
  return out;
}

export function unmaskPolicyRef(b: RaggedBatch, params: Partial<UnmaskPolicyParams> = {}): FamilyResult {
  const { eps, prob_eps } = { ...UNMASK_POLICY_DEFAULTS, ...params };
  const u = values(b, 'unmask_logit');
  const uOld = values(b, 'old_unmask_logit');
  const a = values(b, 'unmask');
  const reward = values(b, 'reward');
  const group = b.groupOf;
  const responses = responsesOf(b);
  const G = responses.length;

  // R_g per response, the prompt's baseline (mean over its responses), A per sequence
  const rOf = responses.map((seqs) => meanOr0(seqs.map((s) => reward[s]!)));
  const baseline = new Map<number, number[]>();
  responses.forEach((seqs, g) => {
    const key = group[seqs[0]!]!;
    if (!baseline.has(key)) baseline.set(key, []);
    baseline.get(key)!.push(rOf[g]!);
  });
  const adv = zeros(b.numSeqs);
  responses.forEach((seqs, g) => {
    for (const s of seqs) adv[s] = rOf[g]! - meanOr0(baseline.get(group[s]!)!);
  });

  const grad = zeros(b.numTokens);
  let loss = 0;
  let clipped = 0;
  let activeSteps = 0;
  let totalActive = 0;
  responses.forEach((seqs) => {
    const active = seqs.filter((s) => validTokensOf(b, s).length > 0);
    totalActive += active.length;
    for (const s of active) {
      const ts = validTokensOf(b, s);
      const cur = ts.map((t) => bernoulliClamped(a[t]!, u[t]!, prob_eps));
      const old = ts.map((t) => bernoulliClamped(a[t]!, uOld[t]!, prob_eps).v);
      const lp = cur.reduce((x, c) => x + c.v, 0);
      const oldLp = old.reduce((x, v) => x + v, 0);
      const d = clipG(lp - oldLp, -20, 20);
      const rho = Math.exp(d.v);
      const A = adv[s]!;
      const cl = clipG(rho, 1 - eps, 1 + eps);
      const m = minG(rho * A, cl.v * A);
      loss -= m.v / active.length / G;
      const dRho = A * m.da + A * m.db * cl.dx;
      const dLp = (-dRho * rho * d.dx) / active.length / G;
      ts.forEach((t, i) => (grad[t] += dLp * cur[i]!.du));
      activeSteps++;
      if ((A > 0 && rho > 1 + eps) || (A < 0 && rho < 1 - eps)) clipped++;
    }
  });
  let valid = 0;
  let unmasked = 0;
  for (let t = 0; t < b.numTokens; t++)
    if (b.mask[t] === 1) {
      valid++;
      unmasked += a[t]!;
    }
  return {
    loss: G ? loss : 0,
    metrics: {
      clip_frac: activeSteps ? clipped / activeSteps : 0,
      unmask_frac: valid ? unmasked / valid : 0,
      mean_steps: G ? totalActive / G : 0,
    },
    grads: { unmask_logit: grad },
    exports: { advantage: adv },
  };
}

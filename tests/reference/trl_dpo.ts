/**
 * TRL DPOTrainer references (stdlib/trl_dpo.credo, stdlib/mpo.credo), float64, loops, written from
 * huggingface/trl@f2cd5771 trl/trainer/dpo_trainer.py::_compute_loss (not from the .credo files).
 *
 * Per pair (y_w, y_l) with valid tokens tw, tl and K = min(|tw|, |tl|): the k-th valid token weighs
 * ω_k = 1 for k < K, ld_alpha beyond (LD-DPO); lp = Σ ω logp, rlp = Σ ω ref_logp, lr = lp − rlp,
 * ∂lr/∂logp_t = ω_t. The score s = f(lr) (f-divergence) with f' below; c = s_w, r = s_l, d = c − r,
 * n = c / max(|tw|, 1) − r / max(|tl|, 1). Each loss type gives ℓ and its partials ∂ℓ/∂c, ∂ℓ/∂r
 * (through d or n where it uses them) and ∂ℓ/∂lr_w, ∂ℓ/∂lr_l (apo_*); then
 *   ∂ℓ/∂logp_t = ω_t (∂ℓ/∂c · f'(lr_w) + ∂ℓ/∂lr_w) at y_w's tokens, likewise for y_l.
 * loss = Σ_pairs W ℓ / P with the WPO pair weight W (a constant: TRL computes it under no_grad).
 * aot / aot_unpaired: the margins are sorted over the pairs (descending, ties by pair order) and
 * paired by rank; the loss is the mean over ranks of the label-smoothed sigmoid, whose derivative
 * goes to the pair each sorted entry came from.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, logSigmoid, meanOr0, pairs, sigmoid, validTokensOf, values, zeros } from './family.js';
import { clipG, maxG } from './ops.js';

export type TrlDpoParams = {
  beta: number;
  loss_type: number;
  label_smoothing: number;
  discopop_tau: number;
  f_divergence: number;
  f_alpha_divergence_coef: number;
  use_weighting: number;
  ld_alpha: number;
  bco_delta: number;
};

export const TRL_DPO_DEFAULTS: TrlDpoParams = {
  beta: 0.1,
  loss_type: 0,
  label_smoothing: 0,
  discopop_tau: 0.05,
  f_divergence: 0,
  f_alpha_divergence_coef: 0.5,
  use_weighting: 0,
  ld_alpha: 1,
  bco_delta: 0,
};

/** TRL's loss_type names in the order of the numeric code. */
export const LOSS_TYPES = [
  'sigmoid',
  'hinge',
  'ipo',
  'exo_pair',
  'nca_pair',
  'robust',
  'bco_pair',
  'sppo_hard',
  'aot',
  'aot_unpaired',
  'apo_zero',
  'apo_down',
  'discopop',
  'sft',
  'sigmoid_norm',
] as const;

/** TRL's f_divergence_type names in the order of the numeric code. */
export const F_DIVERGENCES = ['reverse_kl', 'forward_kl', 'js_divergence', 'alpha_divergence'] as const;

/** The f-divergence score of a log-ratio and its derivative. */
function score(lr: number, fType: number, alpha: number): { v: number; d: number } {
  if (fType === 1) return { v: -Math.exp(-lr), d: Math.exp(-lr) };
  if (fType === 2) return { v: logSigmoid(lr), d: sigmoid(-lr) };
  if (fType === 3 && !(Math.abs(alpha - 1) < 1e-6)) {
    const k = alpha - 1;
    const t = clipG(k * lr, -1e30, 80); // torch.clamp(max=80): gradient where t ≤ 80
    return { v: Math.exp(t.v) / k, d: Math.exp(t.v) * t.dx };
  }
  return { v: lr, d: 1 };
}

/** One pair's per-sequence quantities. */
interface Side {
  toks: number[];
  omega: number[];
  lp: number;
  rlp: number;
  lr: number;
  s: number;
  ds: number;
  len: number;
}

/** ℓ of one pair (not aot) and its partials w.r.t. c, r, lr_w, lr_l. */
function pairLoss(
  p: TrlDpoParams,
  w: Side,
  l: Side,
  sft: number,
): { v: number; dc: number; dr: number; dlw: number; dll: number } {
  const { beta: B, label_smoothing: eps } = p;
  const c = w.s;
  const r = l.s;
  const d = c - r;
  const x = B * d;
  const lt = p.loss_type;
  const onD = (v: number, g: number) => ({ v, dc: g, dr: -g, dlw: 0, dll: 0 });
  const onN = (v: number, g: number) => ({
    v,
    dc: g / Math.max(w.len, 1),
    dr: -g / Math.max(l.len, 1),
    dlw: 0,
    dll: 0,
  });
  const n = c / Math.max(w.len, 1) - r / Math.max(l.len, 1);
  switch (lt) {
    case 1: {
      const h = maxG(0, 1 - x); // relu; PyTorch's relu passes 0 at 0 (a tie here is a kink anyway)
      return onD(h.v, 1 - x > 0 ? -B : 0);
    }
    case 2: {
      const e = n - 1 / (2 * B);
      return onN(e * e, 2 * e);
    }
    case 3: {
      const qw = sigmoid(x);
      const ql = sigmoid(-x);
      const A = logSigmoid(x) - Math.log1p(-eps);
      const C = logSigmoid(-x) - Math.log(eps);
      return onD(qw * A + ql * C, B * qw * ql * (A - C));
    }
    case 4:
      return {
        v: -logSigmoid(B * c) - 0.5 * logSigmoid(-B * c) - 0.5 * logSigmoid(-B * r),
        dc: -B * sigmoid(-B * c) + 0.5 * B * sigmoid(B * c),
        dr: 0.5 * B * sigmoid(B * r),
        dlw: 0,
        dll: 0,
      };
    case 5:
      return onD(
        (-(1 - eps) * logSigmoid(x) + eps * logSigmoid(-x)) / (1 - 2 * eps),
        (B * (-(1 - eps) * sigmoid(-x) - eps * sigmoid(x))) / (1 - 2 * eps),
      );
    case 6: {
      const zc = B * c - p.bco_delta;
      const zr = B * r - p.bco_delta;
      return {
        v: -logSigmoid(zc) - logSigmoid(-zr),
        dc: -B * sigmoid(-zc),
        dr: B * sigmoid(zr),
        dlw: 0,
        dll: 0,
      };
    }
    case 7: {
      const ec = c - 0.5 / B;
      const er = r + 0.5 / B;
      return { v: ec * ec + er * er, dc: 2 * ec, dr: 2 * er, dlw: 0, dll: 0 };
    }
    case 10: {
      const sw = sigmoid(B * w.lr);
      const sl = sigmoid(B * l.lr);
      return { v: 1 - sw + sl, dc: 0, dr: 0, dlw: -B * sw * (1 - sw), dll: B * sl * (1 - sl) };
    }
    case 11: {
      const sw = sigmoid(B * w.lr);
      const sd = sigmoid(x);
      const g = -B * sd * (1 - sd);
      return { v: sw + 1 - sd, dc: g, dr: -g, dlw: B * sw * (1 - sw), dll: 0 };
    }
    case 12: {
      const tau = p.discopop_tau;
      const m = sigmoid(x / tau);
      const dm = (m * (1 - m)) / tau;
      const v = -logSigmoid(x) * (1 - m) + Math.exp(-x) * m;
      const dx = -sigmoid(-x) * (1 - m) + logSigmoid(x) * dm - Math.exp(-x) * m + Math.exp(-x) * dm;
      return onD(v, B * dx);
    }
    case 13:
      return { v: sft, dc: 0, dr: 0, dlw: 0, dll: 0 };
    case 14:
      return onN(-logSigmoid(B * n), -B * sigmoid(-B * n));
    default:
      return onD(-logSigmoid(x), -B * sigmoid(-x));
  }
}

/**
 * Indices 0 … n−1 ordered by descending v, ties by index (the order of Credo's `rank`). Every
 * comparison is recorded (maxG) so that the finite differences skip a component whose change
 * reorders the sort: the loss has a kink there.
 */
function descendingOrder(v: readonly number[]): number[] {
  for (let i = 0; i < v.length; i++) for (let j = i + 1; j < v.length; j++) maxG(v[i]!, v[j]!);
  return v.map((_, i) => i).sort((i, j) => (v[j]! !== v[i]! ? v[j]! - v[i]! : i - j));
}

export function trlDpoRef(b: RaggedBatch, params: Partial<TrlDpoParams> = {}): FamilyResult {
  const p = { ...TRL_DPO_DEFAULTS, ...params };
  const B = p.beta;
  const eps = p.label_smoothing;
  const logp = values(b, 'logp');
  const ref = values(b, 'ref_logp');
  const denom = p.use_weighting !== 0 ? values(b, 'wpo_log_denom') : [];
  const P = pairs(b);
  const grad = zeros(b.numTokens);
  const side = (s: number, K: number): Side => {
    const toks = validTokensOf(b, s);
    const omega = toks.map((_, k) => (k < K ? 1 : p.ld_alpha));
    const lp = toks.reduce((a, t, k) => a + omega[k]! * logp[t]!, 0);
    const rlp = toks.reduce((a, t, k) => a + omega[k]! * ref[t]!, 0);
    const lr = lp - rlp;
    const sc = score(lr, p.f_divergence, p.f_alpha_divergence_coef);
    return { toks, omega, lp, rlp, lr, s: sc.v, ds: sc.d, len: toks.length };
  };
  const sides = P.map(({ w, l }) => {
    const K = Math.min(validTokensOf(b, w).length, validTokensOf(b, l).length);
    return { w: side(w, K), l: side(l, K) };
  });
  // ∂/∂lr of a side, spread over its tokens
  const push = (sd: Side, g: number) => sd.toks.forEach((t, k) => (grad[t] += g * sd.omega[k]!));
  // the label-smoothed sigmoid of aot / aot_unpaired and its derivative
  const h = (x: number) => -(1 - eps) * logSigmoid(B * x) - eps * logSigmoid(-B * x);
  const dh = (x: number) => -B * ((1 - eps) * sigmoid(-B * x) - eps * sigmoid(B * x));

  let loss = 0;
  const nP = P.length;
  if (p.loss_type === 8 || p.loss_type === 9) {
    if (p.use_weighting !== 0) throw new Error('reference: TRL refuses use_weighting with aot / aot_unpaired');
    // aot: policy and reference margins of the summed log-probs; aot_unpaired: chosen and rejected log-ratios
    const xs = sides.map(({ w, l }) => (p.loss_type === 8 ? w.lp - l.lp : w.lr));
    const ys = sides.map(({ w, l }) => (p.loss_type === 8 ? w.rlp - l.rlp : l.lr));
    const ox = descendingOrder(xs);
    const oy = descendingOrder(ys);
    for (let i = 0; i < nP; i++) {
      const delta = xs[ox[i]!]! - ys[oy[i]!]!;
      loss += h(delta) / nP;
      const g = dh(delta) / nP;
      const sx = sides[ox[i]!]!;
      if (p.loss_type === 8) {
        push(sx.w, g);
        push(sx.l, -g);
      } else {
        push(sx.w, g);
        push(sides[oy[i]!]!.l, -g);
      }
    }
  } else {
    // sft: token-mean NLL of the chosen responses' valid tokens over the batch
    const chosenToks = sides.flatMap(({ w }) => w.toks);
    const sft = chosenToks.length ? chosenToks.reduce((a, t) => a - logp[t]!, 0) / chosenToks.length : 0;
    const seqWeight = (sd: Side) =>
      Math.exp(sd.toks.reduce((a, t) => a + logp[t]! - denom[t]!, 0) / Math.max(sd.len, 1));
    let sftCoef = 0;
    for (const { w, l } of sides) {
      const W = p.use_weighting !== 0 ? seqWeight(w) * seqWeight(l) : 1;
      const r = pairLoss(p, w, l, sft);
      loss += (W * r.v) / nP;
      push(w, (W * (r.dc * w.ds + r.dlw)) / nP);
      push(l, (W * (r.dr * l.ds + r.dll)) / nP);
      sftCoef += W / nP;
    }
    if (p.loss_type === 13 && chosenToks.length) for (const t of chosenToks) grad[t] -= sftCoef / chosenToks.length;
  }

  return {
    loss: nP ? loss : 0,
    metrics: prefMetrics(sides, B),
    grads: { logp: grad },
  };
}

/** TRL's rewards/* and logps/* logs. */
function prefMetrics(sides: { w: Side; l: Side }[], B: number): Record<string, number> {
  const rw = sides.map(({ w }) => B * w.lr);
  const rl = sides.map(({ l }) => B * l.lr);
  return {
    rewards_chosen: meanOr0(rw),
    rewards_rejected: meanOr0(rl),
    rewards_accuracies: meanOr0(rw.map((x, i) => (x > rl[i]! ? 1 : 0))),
    rewards_margins: meanOr0(rw.map((x, i) => x - rl[i]!)),
    logps_chosen: meanOr0(sides.map(({ w }) => w.lp)),
    logps_rejected: meanOr0(sides.map(({ l }) => l.lp)),
  };
}

export type MpoParams = {
  beta: number;
  w_sigmoid: number;
  w_bco_pair: number;
  w_sft: number;
  bco_delta: number;
};

export const MPO_DEFAULTS: MpoParams = { beta: 0.1, w_sigmoid: 0.8, w_bco_pair: 0.2, w_sft: 1, bco_delta: 0 };

/**
 * MPO as TRL's docs write it: loss_type ["sigmoid", "bco_pair", "sft"], loss_weights [0.8, 0.2, 1.0]
 * (reverse_kl, no ld_alpha, no weighting): the weighted sum of the three losses, each its own mean.
 */
export function mpoRef(b: RaggedBatch, params: Partial<MpoParams> = {}): FamilyResult {
  const p = { ...MPO_DEFAULTS, ...params };
  const parts: [string, number, number][] = [
    ['loss_sigmoid', 0, p.w_sigmoid],
    ['loss_bco_pair', 6, p.w_bco_pair],
    ['loss_sft', 13, p.w_sft],
  ];
  const out: FamilyResult = { loss: 0, metrics: {}, grads: { logp: zeros(b.numTokens) } };
  const terms: Record<string, number> = {};
  for (const [name, loss_type, weight] of parts) {
    const r = trlDpoRef(b, { beta: p.beta, bco_delta: p.bco_delta, loss_type });
    out.loss += weight * r.loss;
    r.grads.logp!.forEach((g, t) => (out.grads.logp![t] += weight * g));
    out.metrics = r.metrics;
    terms[name] = r.loss;
  }
  out.metrics = { ...out.metrics, ...terms };
  return out;
}

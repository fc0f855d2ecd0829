/**
 * POAD reference (morning9393/ADRL language_buffer.batch_process_tppo + llm_trainer_tppo.ppo_update;
 * methods-pg.md §16; stdlib/poad.credo header), float64, loops.
 *
 * Backward pass over the valid tokens of each sequence (j = n-1 .. 0, token t = idx[j]):
 *   last  = (j = n-1);  end = action_end_t > 0 or last
 *   V'    = last ? bootstrap_s : value_{idx[j+1]}
 *   end   : delta = r_t + gamma V' nd_t - V_t;   gae_t = delta + gamma lambda nd_t gae_{next}
 *   inside: delta = c V' - V_t;                   gae_t = delta + c lambda gae_{next}
 *           (c = 1 for POAD, variant 0; c = gamma for NTPO, variant 1); gae_{next} = 0 after the last token
 *   ret_t = gae_t + V_t
 * Normalisation: m, s = mean and population std of {gae_t != 0} over the valid tokens (0, 0 if none);
 *   A_t = (gae_t - m) / (s + adv_eps).
 * Policy: ratio = e^{logp - old}; sc = -clip(ratio, 1-eps_low, 1+eps_high) A; su = -ratio A;
 *   l = max(sc, su) - ent_coef H;  L_pi = sum l / N;  approx_kl = sum((ratio - 1) - (logp - old)) / N;
 *   stop = approx_kl > target_kl.
 * Value: Vc = V + clip(Vn - V, -value_clip, value_clip); lv = max((ret - Vc)^2 / 2, (ret - Vn)^2 / 2);
 *   L_V = sum lv / N.  loss = (stop ? 0 : L_pi) + vf_coef L_V.
 * Hand-derived gradients (A, ret are constants):
 *   dloss/dlogp_t = stop ? 0 : (w_c (-A [lo <= ratio <= hi] ratio) + w_u (-A ratio)) / N,
 *                   (w_c, w_u) = max-weights of (sc, su)
 *   dloss/dH_t    = stop ? 0 : -ent_coef / N
 *   dloss/dVn_t   = vf_coef (v_c (-(ret - Vc)) [|Vn - V| <= value_clip] + v_u (-(ret - Vn))) / N,
 *                   (v_c, v_u) = max-weights of the two squared errors
 * Metrics: policy_loss = L_pi, value_loss = L_V, approx_kl, clip_frac = mean[sc > su], entropy = mean H,
 *   early_stop = stop ? 1 : 0.
 */
import { type RefBatch, type RefResult, checkBatch, numSeqs, numTokens } from './batch.js';
import { clipG, maxG } from './ops.js';

export interface PoadBatch extends RefBatch {
  entropy: number[]; // [T]
  value: number[]; // [T]
  value_new: number[]; // [T]
  action_end: number[]; // [T]
  action_reward: number[]; // [T]
  not_done: number[]; // [T]
  bootstrap: number[]; // [S]
}

export interface PoadParams {
  gamma: number;
  lambda: number;
  eps_low: number;
  eps_high: number;
  value_clip: number;
  ent_coef: number;
  vf_coef: number;
  target_kl: number;
  adv_eps: number;
  variant: number;
}

export const POAD_DEFAULTS: PoadParams = {
  gamma: 0.95,
  lambda: 0.95,
  eps_low: 0.2,
  eps_high: 0.2,
  value_clip: 0.2,
  ent_coef: 0.01,
  vf_coef: 0.5,
  target_kl: 0.02,
  adv_eps: 1e-8,
  variant: 0,
};

export interface PoadResult extends RefResult {
  grad_entropy: number[];
  grad_value_new: number[];
  gae: number[]; // [T], 0 at masked tokens
  ret: number[]; // [T], 0 at masked tokens
}

/** The BAD backup (GAE with action decomposition) of every valid token. */
export function poadBackup(b: PoadBatch, params: Partial<PoadParams> = {}): { gae: number[]; ret: number[] } {
  const p: PoadParams = { ...POAD_DEFAULTS, ...params };
  const T = numTokens(b);
  const gae = new Array<number>(T).fill(0);
  const ret = new Array<number>(T).fill(0);
  const c = p.variant === 1 ? p.gamma : 1;
  for (let s = 0; s < numSeqs(b); s++) {
    const idx: number[] = [];
    for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) if (b.mask[t] === 1) idx.push(t);
    let next = 0;
    for (let j = idx.length - 1; j >= 0; j--) {
      const t = idx[j]!;
      const last = j === idx.length - 1;
      const end = b.action_end[t]! > 0 || last;
      const vNext = last ? b.bootstrap[s]! : b.value[idx[j + 1]!]!;
      let g: number;
      if (end) {
        const delta = b.action_reward[t]! + p.gamma * vNext * b.not_done[t]! - b.value[t]!;
        g = delta + p.gamma * p.lambda * b.not_done[t]! * next;
      } else {
        const delta = c * vNext - b.value[t]!;
        g = delta + c * p.lambda * next;
      }
      gae[t] = g;
      ret[t] = g + b.value[t]!;
      next = g;
    }
  }
  return { gae, ret };
}

export function poadRef(b: PoadBatch, params: Partial<PoadParams> = {}): PoadResult {
  const p: PoadParams = { ...POAD_DEFAULTS, ...params };
  checkBatch(b);
  const T = numTokens(b);
  const { gae, ret } = poadBackup(b, p);
  const valid: number[] = [];
  for (let t = 0; t < T; t++) if (b.mask[t] === 1) valid.push(t);
  const N = valid.length;
  const nz = valid.filter((t) => gae[t] !== 0).map((t) => gae[t]!);
  const m = nz.length ? nz.reduce((x, y) => x + y, 0) / nz.length : 0;
  const sd = nz.length ? Math.sqrt(nz.reduce((x, y) => x + (y - m) * (y - m), 0) / nz.length) : 0;

  const gLogp = new Array<number>(T).fill(0);
  const gH = new Array<number>(T).fill(0);
  const gVn = new Array<number>(T).fill(0);
  let lPi = 0;
  let kl = 0;
  let lV = 0;
  let clipCount = 0;
  let hSum = 0;
  for (const t of valid) {
    const a = (gae[t]! - m) / (sd + p.adv_eps);
    const d = b.logp[t]! - b.old_logp[t]!;
    const ratio = Math.exp(d);
    const rc = clipG(ratio, 1 - p.eps_low, 1 + p.eps_high);
    const sc = -rc.v * a;
    const su = -ratio * a;
    const mx = maxG(sc, su);
    lPi += mx.v - p.ent_coef * b.entropy[t]!;
    gLogp[t] = (mx.da * (-a * rc.dx * ratio) + mx.db * (-a * ratio)) / N;
    gH[t] = -p.ent_coef / N;
    kl += ratio - 1 - d;
    if (sc > su) clipCount++;
    hSum += b.entropy[t]!;
    // clipped value loss
    const dv = clipG(b.value_new[t]! - b.value[t]!, -p.value_clip, p.value_clip);
    const vc = b.value[t]! + dv.v;
    const e1 = 0.5 * (ret[t]! - vc) ** 2;
    const e2 = 0.5 * (ret[t]! - b.value_new[t]!) ** 2;
    const vm = maxG(e1, e2);
    lV += vm.v;
    gVn[t] = (p.vf_coef * (vm.da * -(ret[t]! - vc) * dv.dx + vm.db * -(ret[t]! - b.value_new[t]!))) / N;
  }
  const tm = (x: number) => (N > 0 ? x / N : 0);
  lPi = tm(lPi);
  kl = tm(kl);
  lV = tm(lV);
  // the early-stop threshold is a kink of the loss in logp: record it for the finite-difference check
  const stop = maxG(kl, p.target_kl).da === 1;
  if (stop) {
    gLogp.fill(0);
    gH.fill(0);
  }
  return {
    loss: (stop ? 0 : lPi) + p.vf_coef * lV,
    metrics: {
      policy_loss: lPi,
      value_loss: lV,
      approx_kl: kl,
      clip_frac: tm(clipCount),
      entropy: tm(hSum),
      early_stop: stop ? 1 : 0,
    },
    grad_logp: gLogp,
    grad_entropy: gH,
    grad_value_new: gVn,
    gae,
    ret,
  };
}

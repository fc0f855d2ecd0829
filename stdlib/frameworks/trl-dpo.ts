/** TRL DPOTrainer loss_type (every one), f_divergence_type, ld_alpha, WPO, loss_weights: trl_dpo and mpo. */
import { SNAPSHOT, type FrameworkName } from './types.js';

const DPO = `${SNAPSHOT.trl} trl/trainer/dpo_trainer.py (DPOTrainer._compute_loss)`;
const DOCS = `${SNAPSHOT.trl} docs/source/dpo_trainer.md (Multi-loss combinations); trl/trainer/dpo_trainer.py (DPOTrainer._compute_loss)`;

/** TRL's loss_type names in the order of trl_dpo's numeric `loss_type` code. */
const LOSS_TYPES = [
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

const LOSS_CLAIMS: Partial<Record<(typeof LOSS_TYPES)[number], readonly string[]>> = {
  sigmoid: ['trl-dpo-sigmoid-dpo', 'trl-dpo-sigmoid-ignores-label-smoothing'],
  hinge: ['trl-dpo-hinge-slic'],
  ipo: ['trl-dpo-ipo-ipo', 'trl-dpo-ipo-not-paper-form'],
  robust: ['trl-dpo-robust-eps0-sigmoid', 'trl-dpo-robust-not-conservative'],
  aot: ['trl-dpo-aot-one-pair-conservative', 'trl-dpo-aot-not-dpo'],
  aot_unpaired: ['trl-dpo-aot-unpaired-one-pair-conservative'],
  apo_zero: ['trl-dpo-apo-zero-unpaired', 'trl-dpo-apo-zero-kto', 'trl-dpo-apo-zero-vs-kto'],
  bco_pair: ['mpo-bco-only-trl-dpo-bco-pair'],
  sft: ['trl-dpo-sft-chosen-only'],
  sigmoid_norm: ['trl-dpo-sigmoid-norm-simpo'],
};

const LOSS_NOTES: Partial<Record<(typeof LOSS_TYPES)[number], string>> = {
  sigmoid: 'also `dpo`; label_smoothing is ignored (TRL’s refactor moved it to robust / aot)',
  ipo: 'also `ipo`: scores divided by the token count clamped at 1',
  exo_pair: 'needs label_smoothing > 0 (TRL raises; the objective refuses it too); the EXO paper recommends 1e-3',
  robust: 'label_smoothing is the flip probability, in [0, 0.5)',
  bco_pair:
    'no running reward mean at this snapshot (the 2026 refactor removed RunningMoments): bco_delta = 0; older TRL’s running mean δ can be given as bco_delta, fixed per run',
  aot: 'the policy and reference margins sorted over the batch and paired by rank (rank + a keyed sum per batch); TRL refuses use_weighting with it',
  aot_unpaired:
    'the chosen and rejected log-ratios sorted separately over the batch; TRL refuses use_weighting with it',
  apo_zero: 'on the log-ratios, not the f-divergence scores',
  apo_down: 'its chosen term on the log-ratio, its margin term on the scores',
  discopop: 'NaN where β·margin < −88 in float32 (exp(−x) overflows while σ(x/τ) underflows), as TRL computes it',
  sft: 'the token-mean NLL of the chosen responses (TRL: F.cross_entropy over the chosen logits), from logp',
  sigmoid_norm: 'SimPO’s length normalisation with the reference model',
};

const F_DIVERGENCES = ['reverse_kl', 'forward_kl', 'js_divergence', 'alpha_divergence'] as const;
const F_CLAIMS: Record<(typeof F_DIVERGENCES)[number], readonly string[]> = {
  reverse_kl: ['trl-dpo-sigmoid-dpo'],
  forward_kl: ['trl-dpo-alpha0-forward-kl'],
  js_divergence: ['trl-dpo-js-not-reverse-kl'],
  alpha_divergence: ['trl-dpo-alpha1-reverse-kl', 'trl-dpo-alpha0-forward-kl', 'trl-dpo-alpha-half-not-reverse-kl'],
};

export const TRL_DPO_NAMES: readonly FrameworkName[] = [
  ...LOSS_TYPES.map((name, code): FrameworkName => ({
    framework: 'TRL',
    setting: `DPOConfig(loss_type="${name}")`,
    readFrom: DPO,
    objective: 'trl_dpo',
    set: { loss_type: code },
    ...(LOSS_CLAIMS[name] ? { claims: LOSS_CLAIMS[name] } : {}),
    ...(LOSS_NOTES[name] ? { note: LOSS_NOTES[name] } : {}),
  })),
  ...F_DIVERGENCES.map((name, code): FrameworkName => ({
    framework: 'TRL',
    setting: `DPOConfig(f_divergence_type="${name}")`,
    readFrom: DPO,
    objective: 'trl_dpo',
    set: code === 3 ? { f_divergence: code, f_alpha_divergence_coef: 0.5 } : { f_divergence: code },
    claims: F_CLAIMS[name],
    note:
      code === 3
        ? 'with f_alpha_divergence_coef (default 0.5): exp(min((α−1)·lr, 80))/(α−1); |α − 1| < 1e-6 falls back to reverse_kl'
        : 'the scores of every loss type but apo_* / aot* / sft; rewards/* stay on the log-ratios',
  })),
  {
    framework: 'TRL',
    setting: 'DPOConfig(use_weighting=True)',
    readFrom: DPO,
    objective: 'trl_dpo',
    set: { use_weighting: 1 },
    claims: ['trl-dpo-wpo-unit-weights', 'trl-dpo-wpo-weights'],
    note: 'WPO: pair weight exp(mean_t(logp − log Σ_v p_v²)) of y_w times that of y_l, no gradient; log Σ_v p_v² comes in as `wpo_log_denom` (pref.wpo_log_denom(logits) computes it from logits); combines with any loss type but aot / aot_unpaired',
  },
  {
    framework: 'TRL',
    setting: 'DPOConfig(ld_alpha=α)',
    readFrom: DPO,
    objective: 'trl_dpo',
    set: { ld_alpha: 0.5 },
    claims: ['trl-dpo-ld-alpha-equal-lengths', 'trl-dpo-ld-alpha-not-dpo'],
    note: 'LD-DPO: tokens beyond the shorter response of the pair weigh α in the policy and reference log-probs (α = 0.5 shown; None is ld_alpha = 1)',
  },
  {
    framework: 'TRL',
    setting: 'DPOConfig(loss_type=["sigmoid", "bco_pair", "sft"], loss_weights=[0.8, 0.2, 1.0]) (MPO)',
    readFrom: DOCS,
    objective: 'mpo',
    claims: ['mpo-sigmoid-only-dpo', 'mpo-bco-only-trl-dpo-bco-pair', 'mpo-not-dpo'],
    note: 'loss_weights in general: a weighted sum of stdlib/lib/pref.credo defs, as mpo.credo writes this one',
  },
  {
    framework: 'TRL',
    setting: 'DPOConfig(loss_type=["sigmoid", "sft"], loss_weights=[1.0, α]) (RPO; the former rpo_alpha)',
    readFrom: DOCS,
    objective: 'mpo',
    set: { w_sigmoid: 1, w_bco_pair: 0, w_sft: 1 },
    note: 'rpo_alpha no longer exists at this snapshot; RPO is this two-loss combination (α = 1 shown)',
  },
];

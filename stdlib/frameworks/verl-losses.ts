/** verl policy losses (policy_loss.loss_mode × loss_agg_mode) and the estimators the existing objectives compute. */
import { type FrameworkName, SNAPSHOT } from './types.js';

/** verl's core_algos.py as methods-pg.md §0.1 and §B read it (the copy vendored in horizon-llm/CTPO@acc40211). */
const VERL_OLD = 'verl core_algos.py (horizon-llm/CTPO@acc40211 copy; methods-pg.md §0.1, §B)';
/** verl's core_algos.py at the 2026 snapshot, re-read for issue 13. */
const CORE = `${SNAPSHOT.verl} verl/trainer/ppo/core_algos.py`;
const at = (fn: string): string => `${CORE} (${fn})`;
const AGG_NOTE = 'loss_agg_mode is the `loss_agg_mode` param (0 token-mean … 4 token-sum)';

/** verl kl_loss_type names → ppo_kl's `kl_type` code. */
const KL_TYPES: readonly [string, number][] = [
  ['kl (or k1)', 0],
  ['abs', 1],
  ['mse (or k2)', 2],
  ['low_var_kl (or k3)', 3],
  ['k1+', 4],
  ['abs+', 5],
  ['k2+', 6],
  ['k3+', 7],
];

/** verl `loss_agg_mode` names → the `loss_agg_mode` param of the stdlib objectives that take it. */
const AGG_MODES: readonly [string, number][] = [
  ['token-mean', 0],
  ['seq-mean-token-mean', 1],
  ['seq-mean-token-sum', 2],
  ['seq-mean-token-sum-norm', 3],
  ['token-sum', 4],
];

export const VERL_LOSS_NAMES: readonly FrameworkName[] = [
  // verl policy losses (policy_loss.loss_mode) and advantage estimators (algorithm.adv_estimator)
  ...AGG_MODES.map(([name, mode]): FrameworkName => ({
    framework: 'verl',
    setting: `policy_loss.loss_mode=vanilla, loss_agg_mode=${name}`,
    readFrom: `${at('compute_policy_loss_vanilla, agg_loss')}`,
    objective: 'ppo',
    set: { loss_agg_mode: mode },
    claims: mode === 3 ? ['verl-agg-mode3-vs-mode5', 'verl-agg-mode3-vs-mode5-one-seq'] : undefined,
    note:
      mode === 3
        ? 'at 1dda039: seq-mean-token-sum / number of non-empty sequences / loss_scale_factor (`max_len`; verl defaults it to the padded width)'
        : 'on a precomputed per-token `advantage` (any estimator)',
  })),
  {
    framework: 'verl',
    setting:
      'policy_loss.loss_mode=vanilla, loss_agg_mode=seq-mean-token-sum-norm (verl before 2026, volcengine/verl@b178a3c)',
    readFrom: VERL_OLD,
    objective: 'ppo',
    set: { loss_agg_mode: 5 },
    claims: ['verl-agg-mode3-vs-mode5'],
    note: 'the older form: total token sum / loss_scale_factor, no division by the number of sequences',
  },
  ...KL_TYPES.map(([name, code]): FrameworkName => ({
    framework: 'verl',
    setting: `policy_loss.loss_mode=vanilla, use_kl_loss=True, kl_loss_type=${name}`,
    readFrom: `${at('kl_penalty, kl_penalty_forward')}; verl/workers/utils/losses.py (ppo_loss)`,
    objective: 'ppo_kl',
    set: { kl_type: code },
    claims: ['verl-ppo-kl-coef0-ppo', 'verl-ppo-kl-vs-ppo'],
    note: `kl_loss_coef is \`kl_coef\` (0.001); the KL loss uses the same loss_agg_mode${name === 'k2+' ? '; k2+ is k2 (verl skips the straight-through for mse/k2)' : ''}`,
  })),
  {
    framework: 'verl',
    setting: 'policy_loss.loss_mode=dppo_tv',
    readFrom: at('compute_policy_loss_dppo_tv'),
    objective: 'dppo_tv',
    claims: ['verl-dppo-tv-on-policy-ppo', 'verl-dppo-tv-vs-ppo'],
    note: `${AGG_NOTE}; clip_ratio_low/high are the TV thresholds; clip_ratio_c defaults to 3 (ActorConfig), not the 20 of the code's fallback`,
  },
  {
    framework: 'verl',
    setting: 'policy_loss.loss_mode=dppo_kl',
    readFrom: at('compute_policy_loss_dppo_kl'),
    objective: 'dppo_kl',
    claims: ['verl-dppo-kl-on-policy-dppo-tv'],
    note: `${AGG_NOTE}; clip_ratio_low/high are the binary-KL thresholds`,
  },
  {
    framework: 'verl',
    setting: 'policy_loss.loss_mode=sapo',
    readFrom: at('compute_policy_loss_sapo'),
    objective: 'sapo',
    claims: ['verl-sapo-on-policy-ppo-seq-mean', 'verl-sapo-vs-ppo-value'],
    note: 'verl ignores loss_agg_mode for sapo (always seq-mean-token-mean); tau_pos / tau_neg are read from the actor config',
  },
  {
    framework: 'verl',
    setting: 'policy_loss.loss_mode=clip_cov',
    readFrom: at('compute_policy_loss_clip_cov'),
    objective: 'clip_cov',
    claims: ['verl-clip-cov-no-candidate-ppo'],
    note: `${AGG_NOTE}; torch.randperm's subset is the input \`select_u\` (largest n_clip candidates)`,
  },
  {
    framework: 'verl',
    setting: 'policy_loss.loss_mode=kl_cov',
    readFrom: at('compute_policy_loss_kl_cov'),
    objective: 'kl_cov',
    claims: ['verl-kl-cov-coef0-unclipped-ppo'],
    note: `${AGG_NOTE}; ppo_kl_coef defaults to 0.1 (config), not the docstring's 1`,
  },
  {
    framework: 'verl',
    setting: 'policy_loss.loss_mode=dro',
    readFrom: at('compute_policy_loss_dro'),
    objective: 'dro',
    claims: ['verl-dro-on-policy-ppo'],
    note: `${AGG_NOTE}; dro_beta has no default in verl (must be set > 0); the param defaults to 0.05`,
  },
  {
    framework: 'verl',
    setting: 'policy_loss.loss_mode=bypass_mode, rollout_correction.loss_type=ppo_clip',
    readFrom: at('compute_policy_loss_bypass_mode'),
    objective: 'bypass_mode',
    set: { loss_type: 0 },
    claims: ['verl-bypass-ppo-clip-is-vanilla'],
    note: 'the vanilla loss with old_logp = the rollout log-probs; rejection sampling (rollout_rs) not modelled',
  },
  ...(
    [
      ['None', 0],
      ['token', 1],
      ['sequence', 2],
    ] as const
  ).map(([name, code]): FrameworkName => ({
    framework: 'verl',
    setting: `policy_loss.loss_mode=bypass_mode, rollout_correction.loss_type=reinforce, rollout_is=${name}`,
    readFrom: `${at('compute_policy_loss_bypass_mode, compute_policy_loss_reinforce')}; verl/trainer/ppo/rollout_corr_helper.py (compute_rollout_correction_weights)`,
    objective: 'bypass_mode',
    set: { loss_type: 1, rollout_is: code },
    claims: code === 0 ? ['verl-bypass-reinforce-no-is-dro-beta0'] : undefined,
    note: 'rollout_is_threshold is `is_threshold` (2.0), rollout_is_batch_normalize is `is_batch_normalize`',
  })),
  {
    framework: 'verl',
    setting:
      'policy_loss.loss_mode=vanilla with clip_ratio_high=0.28, token-mean, adv_estimator=grpo (the DAPO recipe)',
    readFrom: `${at('compute_policy_loss_vanilla')}; verl docs/algo/dapo.md`,
    objective: 'dapo',
  },
  {
    framework: 'verl',
    setting: 'policy_loss.loss_mode=gspo, adv_estimator=grpo',
    readFrom: at('compute_policy_loss_gspo'),
    objective: 'gspo',
    note: 'verl ignores loss_agg_mode for gspo (always seq-mean-token-mean); the stdlib objective computes the GRPO advantage from `reward`',
  },
  {
    framework: 'verl',
    setting: 'policy_loss.loss_mode=geo_mean, adv_estimator=grpo',
    readFrom: at('compute_policy_loss_geo_mean'),
    objective: 'gmpo',
    note: 'verl ignores loss_agg_mode for geo_mean (torch.mean over all rows; an empty response counts in verl, not here)',
  },
  ...AGG_MODES.map(([name, mode]): FrameworkName => ({
    framework: 'verl',
    setting: `policy_loss.loss_mode=cispo, loss_agg_mode=${name}, adv_estimator=grpo`,
    readFrom: at('compute_policy_loss_cispo'),
    objective: 'cispo',
    set: { loss_agg_mode: mode },
  })),
  {
    framework: 'verl',
    setting: 'policy_loss.loss_mode=gpg, adv_estimator=gpg',
    readFrom: `${at('compute_policy_loss_gpg')}; advantage: ${VERL_OLD}`,
    objective: 'gpg',
    set: { alpha_mode: 2 },
    note: 'verl’s α = B / count_nonzero(scores); the paper’s is alpha_mode=1 (the default)',
  },
  {
    framework: 'verl',
    setting: 'adv_estimator=grpo, norm_adv_by_std_in_grpo=False, loss_agg_mode=seq-mean-token-sum-norm (Dr. GRPO)',
    readFrom: `${at('agg_loss')}; verl docs/algo/grpo.md`,
    objective: 'dr_grpo',
    set: { divide_by_seqs: 1 },
    claims: ['dr-grpo-oat-vs-verl', 'verl-agg-mode3-vs-mode5'],
    note: 'at 1dda039 seq-mean-token-sum-norm divides by the number of non-empty sequences too: OAT’s form (divide_by_seqs=1) when no response is empty (OAT counts every response). verl before 2026 (b178a3c) did not: divide_by_seqs=0. verl’s recipe runs the vanilla loss, i.e. with dual clip (clip_c = 3)',
  },
];

/** verl policy losses (policy_loss.loss_mode × loss_agg_mode) and the estimators the existing objectives compute. */
import type { FrameworkName } from './types.js';

/** verl's core_algos.py as methods-pg.md §0.1 and §B read it (the copy vendored in horizon-llm/CTPO@acc40211). */
const VERL = 'verl core_algos.py (horizon-llm/CTPO@acc40211 copy; methods-pg.md §0.1, §B)';

/** verl `loss_agg_mode` names → the `loss_agg_mode` param of the stdlib objectives that take it. */
const AGG_MODES: readonly [string, number][] = [
  ['token-mean', 0],
  ['seq-mean-token-mean', 1],
  ['seq-mean-token-sum', 2],
  ['seq-mean-token-sum-norm', 3],
];

export const VERL_LOSS_NAMES: readonly FrameworkName[] = [
  // verl policy losses (policy_loss.loss_mode) and advantage estimators (algorithm.adv_estimator)
  ...AGG_MODES.map(([name, mode]): FrameworkName => ({
    framework: 'verl',
    setting: `policy_loss.loss_mode=vanilla, loss_agg_mode=${name}`,
    readFrom: VERL,
    objective: 'ppo',
    set: { loss_agg_mode: mode },
    note: 'on a precomputed per-token `advantage` (any estimator)',
  })),
  {
    framework: 'verl',
    setting:
      'policy_loss.loss_mode=vanilla with clip_ratio_high=0.28, token-mean, adv_estimator=grpo (the DAPO recipe)',
    readFrom: `${VERL}; verl docs/algo/dapo.md`,
    objective: 'dapo',
  },
  { framework: 'verl', setting: 'policy_loss.loss_mode=gspo', readFrom: VERL, objective: 'gspo' },
  { framework: 'verl', setting: 'policy_loss.loss_mode=geo_mean', readFrom: VERL, objective: 'gmpo' },
  ...AGG_MODES.map(([name, mode]): FrameworkName => ({
    framework: 'verl',
    setting: `policy_loss.loss_mode=cispo, loss_agg_mode=${name}, adv_estimator=grpo`,
    readFrom: VERL,
    objective: 'cispo',
    set: { loss_agg_mode: mode },
  })),
  {
    framework: 'verl',
    setting: 'policy_loss.loss_mode=gpg, adv_estimator=gpg',
    readFrom: VERL,
    objective: 'gpg',
    set: { alpha_mode: 2 },
    note: 'verl’s α = B / count_nonzero(scores); the paper’s is alpha_mode=1 (the default)',
  },
  {
    framework: 'verl',
    setting: 'adv_estimator=rloo (with the vanilla loss)',
    readFrom: VERL,
    objective: 'rloo',
  },
  {
    framework: 'verl',
    setting: 'adv_estimator=reinforce_plus_plus_baseline (with the vanilla loss)',
    readFrom: VERL,
    objective: 'reinforce_pp',
  },
  {
    framework: 'verl',
    setting: 'adv_estimator=grpo, loss_agg_mode=seq-mean-token-sum-norm (Dr. GRPO)',
    readFrom: `${VERL}; verl docs/algo/grpo.md`,
    objective: 'dr_grpo',
    set: { divide_by_seqs: 0 },
    note: 'OAT’s form (the paper’s code) also divides by the number of responses: divide_by_seqs=1, the default',
  },
];

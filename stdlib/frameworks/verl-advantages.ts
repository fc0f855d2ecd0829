/** verl advantage estimators (algorithm.adv_estimator), each with verl's vanilla policy loss. */
import { SNAPSHOT, type FrameworkName } from './types.js';

const CORE = `${SNAPSHOT.verl} verl/trainer/ppo/core_algos.py`;
const VANILLA = 'with the vanilla policy loss (PPO-clip, dual clip 3, loss_agg_mode as `loss_agg_mode`)';

const outcome = (
  name: string,
  fn: string,
  code: number,
  claims: string[],
  note: string,
  set: Record<string, number> = {},
): FrameworkName => ({
  framework: 'verl',
  setting: `algorithm.adv_estimator=${name}`,
  readFrom: `${CORE} (${fn})`,
  objective: 'verl_outcome',
  set: { adv_estimator: code, verl_singletons: 1, ...set },
  claims,
  note: `${VANILLA}; ${note}`,
});

export const VERL_ADVANTAGE_NAMES: readonly FrameworkName[] = [
  {
    framework: 'verl',
    setting: 'algorithm.adv_estimator=gae',
    readFrom: `${CORE} (compute_gae_advantage_return)`,
    objective: 'verl_gae',
    note: `${VANILLA}; algorithm.gamma / algorithm.lam are the gamma / lam params (default 1); token_reward and the critic's value are inputs; the value loss is not part of it`,
  },
  outcome(
    'grpo',
    'compute_grpo_outcome_advantage',
    0,
    ['verl-adv-grpo-vectorized', 'verl-adv-grpo-singletons', 'verl-adv-grpo-is-dapo'],
    'verl gives a response alone in its group A = R / (1 + 1e-6) (verl_singletons=1; 0 is Credo’s rule, A = 0)',
  ),
  outcome(
    'grpo, algorithm.norm_adv_by_std_in_grpo=False',
    'compute_grpo_outcome_advantage',
    0,
    ['verl-adv-grpo-vectorized-ignores-norm', 'verl-adv-opo-vs-grpo-unnormalised'],
    'Dr. GRPO’s advantage R - mean_g R',
    { norm_adv_by_std_in_grpo: 0 },
  ),
  outcome(
    'grpo_vectorized',
    'compute_grpo_vectorized_outcome_advantage',
    1,
    ['verl-adv-grpo-vectorized', 'verl-adv-grpo-vectorized-ignores-norm'],
    'always std-normalised: compute_advantage does not pass norm_adv_by_std_in_grpo to it',
  ),
  outcome(
    'rloo',
    'compute_rloo_outcome_advantage',
    2,
    ['verl-adv-rloo-vectorized', 'verl-adv-rloo-vectorized-verl-singletons', 'verl-adv-rloo-loop-vs-stdlib-rloo'],
    'verl keeps A = R for a response alone in its group (verl_singletons=1)',
  ),
  outcome(
    'rloo_vectorized',
    'compute_rloo_vectorized_outcome_advantage',
    3,
    ['verl-adv-rloo-vectorized-is-stdlib-rloo', 'verl-adv-rloo-vectorized-groups-of-2'],
    'a group of one gets 0 (as Credo’s rule); = stdlib rloo',
  ),
  outcome(
    'reinforce_plus_plus_baseline',
    'compute_reinforce_plus_plus_baseline_outcome_advantage',
    4,
    ['verl-adv-rpp-baseline-vs-reinforce-pp', 'verl-adv-rpp-baseline-verl-singletons-vs-reinforce-pp'],
    'masked_whiten over the valid tokens of the batch, with its + 1e-8 in the count; verl keeps R for a group of one (verl_singletons=1)',
  ),
  outcome(
    'opo',
    'compute_opo_outcome_advantage',
    5,
    ['verl-adv-opo-vs-grpo-unnormalised'],
    'length-weighted group baseline; verl keeps R for a group of one (verl_singletons=1)',
  ),
  outcome(
    'grpo_passk',
    'compute_grpo_passk_outcome_advantage',
    6,
    [],
    'only the best response of a group gets (r_max - r_second) / (std + 1e-6); verl raises on a group of one (0 here)',
  ),
  outcome(
    'gpg',
    'compute_gpg_outcome_advantage',
    7,
    ['verl-adv-gpg-on-policy-is-stdlib-gpg', 'verl-adv-gpg-vanilla-vs-gpg-loss'],
    'alpha = B / count_nonzero(R); with policy_loss.loss_mode=gpg use stdlib gpg alpha_mode=2',
  ),
  {
    framework: 'verl',
    setting: 'algorithm.adv_estimator=gdpo (gdpo_reward_keys of up to three components, gdpo_reward_weights)',
    readFrom: `${CORE} (compute_gdpo_outcome_advantage)`,
    objective: 'verl_gdpo',
    set: { verl_singletons: 1 },
    note: `${VANILLA}; the components are reward_1..reward_3 with weights w_1..w_3 (default 1); always std-normalised; unrelated to stdlib gdpo (diffusion LMs)`,
  },
  {
    framework: 'verl',
    setting: 'algorithm.adv_estimator=reinforce_plus_plus',
    readFrom: `${CORE} (compute_reinforce_plus_plus_outcome_advantage)`,
    objective: 'verl_reinforce_pp',
    note: `${VANILLA}; algorithm.gamma is gamma (default 1); discounted token returns, whitened; stdlib reinforce_pp is reinforce_plus_plus_baseline`,
  },
  {
    framework: 'verl',
    setting: 'algorithm.adv_estimator=remax',
    readFrom: `${CORE} (compute_remax_outcome_advantage)`,
    objective: 'verl_remax',
    note: `${VANILLA}; reward_baseline is verl’s reward_baselines (the greedy response’s reward), an input`,
  },
  {
    framework: 'verl',
    setting: 'algorithm.adv_estimator=optimal_token_baseline',
    readFrom: `${CORE} (compute_optimal_token_baseline_advantage)`,
    objective: 'verl_optimal_token_baseline',
    set: { verl_singletons: 1 },
    note: `${VANILLA}; exact when no response has a masked token before a valid one (verl aligns padded columns; Credo has no column index); sum_pi_squared is an input`,
  },
  {
    framework: 'verl',
    setting: 'algorithm.adv_estimator=tir_optimal_token_baseline',
    readFrom: `${CORE} (compute_multi_turn_optimal_token_baseline_advantage)`,
    objective: 'verl_optimal_token_baseline',
    set: { verl_singletons: 1 },
    note: `${VANILLA}; aligns the valid tokens of the responses (multi-turn masks); rollout_is_weights with use_is_weights=1`,
  },
];

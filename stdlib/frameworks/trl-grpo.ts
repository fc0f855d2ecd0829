/** TRL GRPOTrainer loss_type × importance_sampling_level × scale_rewards (stdlib/trl_grpo.credo). */
import { SNAPSHOT, type FrameworkName } from './types.js';

const LOSS = `${SNAPSHOT.trl} trl/trainer/grpo_trainer.py (GRPOTrainer._compute_loss); trl/trainer/grpo_config.py`;
const ADV = `${SNAPSHOT.trl} trl/trainer/grpo_trainer.py (GRPOTrainer._generate_and_score_completions)`;
const GSPO_TOKEN = `${SNAPSHOT.trl} trl/experimental/gspo_token/grpo_trainer.py (GRPOTrainer._compute_loss)`;

const row = (
  setting: string,
  set: Record<string, number>,
  extra: { readFrom?: string; claims?: string[]; note?: string } = {},
): FrameworkName => ({
  framework: 'TRL',
  setting,
  readFrom: extra.readFrom ?? LOSS,
  objective: 'trl_grpo',
  set,
  ...(extra.claims ? { claims: extra.claims } : {}),
  ...(extra.note ? { note: extra.note } : {}),
});

export const TRL_GRPO_NAMES: readonly FrameworkName[] = [
  // loss_type (GRPOConfig order of the objective's codes)
  row(
    'GRPOConfig loss_type="grpo"',
    { loss_type: 0 },
    {
      claims: ['trl-grpo-stdlib-grpo', 'trl-grpo-empty-sequences'],
      note: 'per-sequence token mean, then the mean over all B sequences (empty ones count), / GA steps',
    },
  ),
  row(
    'GRPOConfig loss_type="dr_grpo"',
    { loss_type: 1 },
    {
      claims: [
        'trl-dr-grpo-oat',
        'trl-dr-grpo-verl-1dda039-no-empty',
        'trl-dr-grpo-verl-1dda039-empty',
        'trl-dr-grpo-vs-verl-seq-mean-token-sum-norm',
        'trl-dr-grpo-scaled-rewards',
      ],
      note: 'token sum / (B · max_completion_length), / GA steps; the paper also needs scale_rewards="none"',
    },
  ),
  row(
    'GRPOConfig loss_type="dapo" (the default)',
    { loss_type: 2 },
    {
      claims: ['trl-dapo-stdlib-dapo-no-dual-clip', 'trl-dapo-vs-verl-dapo-recipe', 'trl-dapo-on-policy-reinforce'],
      note: 'token sum / (num_items_in_batch / num_processes): the token mean over the whole accumulated batch; set num_items for a micro-batch',
    },
  ),
  row(
    'GRPOConfig loss_type="bnpo"',
    { loss_type: 3 },
    {
      claims: ['trl-bnpo-dapo-one-step', 'trl-bnpo-dapo-accumulated'],
      note: 'token mean of the local micro-batch, / GA steps',
    },
  ),
  row(
    'GRPOConfig loss_type="cispo"',
    { loss_type: 4 },
    {
      claims: ['trl-cispo-verl-cispo', 'trl-cispo-default-cap'],
      note: 'the IS weight is capped at epsilon_high itself (default None → epsilon = 0.2); ScaleRL recommends epsilon_high=5',
    },
  ),
  row(
    'GRPOConfig loss_type="sapo"',
    { loss_type: 5 },
    {
      claims: ['trl-sapo-verl-sapo'],
      note: 'soft gate σ(τ(r − 1))·4/τ, τ = sapo_temperature_pos (A > 0) or _neg; grpo aggregation',
    },
  ),
  row(
    'GRPOConfig loss_type="luspo", importance_sampling_level="sequence"',
    { loss_type: 6, is_level: 1 },
    {
      claims: ['trl-luspo-dr-grpo-unit-length'],
      note: 'mean over sequences of L_i · l_i; only where TRL’s loss is one value per sequence (beta = 0, no entropy mask, no token-mode IS)',
    },
  ),
  row(
    'GRPOConfig loss_type="vespo"',
    { loss_type: 7 },
    {
      note: 'REINFORCE weighted by the detached gamma weight φ(W) of the sequence ratio; token sum / num_items',
    },
  ),
  // importance_sampling_level
  row('GRPOConfig importance_sampling_level="token" (the default)', { is_level: 0 }),
  row(
    'GRPOConfig importance_sampling_level="sequence", loss_type="grpo" (GSPO)',
    { is_level: 1, loss_type: 0 },
    {
      claims: ['trl-sequence-gspo'],
      note: 'GSPO’s ε are set explicitly (epsilon=3e-4, epsilon_high=4e-4 in TRL’s GSPO example)',
    },
  ),
  row(
    'GRPOConfig importance_sampling_level="sequence", loss_type="dapo"',
    { is_level: 1, loss_type: 2 },
    {
      claims: ['trl-sequence-dapo-length-weighted'],
      note: 'a token sum of a per-sequence ratio: each sequence weighted by its length (TRL warns)',
    },
  ),
  row(
    'experimental.gspo_token GRPOTrainer importance_sampling_level="sequence_token"',
    { is_level: 2, loss_type: 0 },
    {
      readFrom: GSPO_TOKEN,
      claims: ['trl-sequence-token-gspo'],
      note: 'sg(s_i)·π/sg(π); only grpo, bnpo, dr_grpo, dapo; this trainer ignores off_policy_mask_threshold and use_bias_correction_kl',
    },
  ),
  // scale_rewards
  row('GRPOConfig scale_rewards="group" / True (the default)', { scale_rewards: 0 }, { readFrom: ADV }),
  row(
    'GRPOConfig scale_rewards="batch"',
    { scale_rewards: 1 },
    {
      readFrom: ADV,
      note: 'group mean, batch std (PPO Lite)',
    },
  ),
  row('GRPOConfig scale_rewards="none" / False', { scale_rewards: 2 }, { readFrom: ADV }),
  // other settings of _compute_loss
  row(
    'GRPOConfig top_entropy_quantile=0.2',
    { top_entropy_quantile: 0.2 },
    {
      note: 'policy term only on tokens with entropy ≥ the batch’s 0.8 quantile (needs `entropy : token`); the KL term and the normaliser keep every token',
    },
  ),
  row('GRPOConfig delta=1.5 (INTELLECT-2 two-sided clip)', { delta: 1.5 }),
  row('GRPOConfig epsilon_high=0.28 (clip-higher)', { epsilon_high: 0.28 }),
  row(
    'GRPOConfig beta=0.04',
    { beta: 0.04 },
    { note: 'k3 against the reference, unclamped; added after the masks and the IS correction' },
  ),
  row('GRPOConfig beta=0.04, use_bias_correction_kl=True', { beta: 0.04, bias_correction_kl: 1 }),
  row(
    'GRPOConfig off_policy_mask_threshold=0.5',
    { off_policy_threshold: 0.5 },
    {
      note: 'DeepSeek-V3.2 off-policy sequence masking: drop A < 0 sequences whose mean (sampling − current) log-prob exceeds it',
    },
  ),
  row(
    'GRPOConfig use_vllm=True, vllm_importance_sampling_mode="sequence_mask" (the default correction)',
    { vllm_is_mode: 4 },
    {
      readFrom: `${LOSS}; ${ADV}`,
      note: 'needs `sampling_logp : token` (vLLM’s log-probs); clip_max = vllm_is_max = 3',
    },
  ),
  row(
    'GRPOConfig use_vllm=True, vllm_importance_sampling_mode="token_truncate"',
    { vllm_is_mode: 1 },
    {
      readFrom: `${LOSS}; ${ADV}`,
    },
  ),
  row(
    'GRPOConfig use_vllm=True, vllm_importance_sampling_mode="token_mask"',
    { vllm_is_mode: 2 },
    {
      readFrom: `${LOSS}; ${ADV}`,
    },
  ),
  row(
    'GRPOConfig use_vllm=True, vllm_importance_sampling_mode="sequence_truncate"',
    { vllm_is_mode: 3 },
    {
      readFrom: `${LOSS}; ${ADV}`,
    },
  ),
];

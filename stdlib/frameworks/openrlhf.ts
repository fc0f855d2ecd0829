/** OpenRLHF policy losses and rollout importance-sampling corrections. */
import { SNAPSHOT, type FrameworkName } from './types.js';

const LOSS = `${SNAPSHOT.openrlhf} openrlhf/models/loss.py (PolicyLoss.forward, aggregate_loss); openrlhf/cli/train_ppo_ray.py`;
const KL = `${SNAPSHOT.openrlhf} openrlhf/models/utils.py (compute_approx_kl); openrlhf/trainer/ray/ppo_actor.py (PolicyTrainer.training_step)`;
const ADV = `${SNAPSHOT.openrlhf} openrlhf/trainer/ppo_utils/experience_maker.py (compute_advantages_and_returns)`;

const row = (
  setting: string,
  objective: string,
  set: Record<string, number> | undefined,
  extra: { readFrom?: string; claims?: string[]; note?: string } = {},
): FrameworkName => ({
  framework: 'OpenRLHF',
  setting,
  readFrom: extra.readFrom ?? LOSS,
  objective,
  ...(set ? { set } : {}),
  ...(extra.claims ? { claims: extra.claims } : {}),
  ...(extra.note ? { note: extra.note } : {}),
});

export const OPENRLHF_NAMES: readonly FrameworkName[] = [
  // PolicyLoss, policy_loss_type="ppo"
  row('--actor.policy_loss_type ppo (the default)', 'openrlhf_ppo', undefined, {
    claims: ['openrlhf-ppo-verl-vanilla-token-mean'],
    note: 'on a precomputed per-token `advantage`; token mean over the global batch (get_loss_batch_info), eps_clip 0.2, no dual clip',
  }),
  row(
    '--actor.eps_clip_low_high 0.2 0.28',
    'openrlhf_ppo',
    { eps_low: 0.2, eps_high: 0.28 },
    {
      note: 'clip-higher; overrides --actor.eps_clip for both bounds',
    },
  ),
  row(
    '--actor.dual_clip 3',
    'openrlhf_ppo',
    { dual_clip: 3 },
    {
      claims: ['openrlhf-ppo-dual-clip-verl', 'openrlhf-ppo-dual-clip-active'],
      note: 'OpenRLHF asserts dual_clip > 1; the objective requires dual_clip = 0 (None) or > 1',
    },
  ),
  row(
    'PolicyLoss(token_level_loss=False)',
    'openrlhf_ppo',
    { token_level_loss: 0 },
    {
      claims: ['openrlhf-ppo-per-sample-verl-seq-mean', 'openrlhf-ppo-per-sample-eps'],
      note: 'an API argument only (the CLI never sets it for ppo): per-sequence Σ/(L + 1e-8), mean over non-empty sequences; seq_eps=0 gives verl’s seq-mean-token-mean',
    },
  ),
  // vLLM importance-sampling corrections (ppo only)
  row(
    '--algo.advantage.is_correction_enable --algo.advantage.is_correction_type tis',
    'openrlhf_ppo',
    { is_correction: 1 },
    {
      claims: [
        'openrlhf-tis-vs-none',
        'openrlhf-tis-unbounded-plain-is',
        'openrlhf-corrections-identity-on-matching-rollout',
      ],
      note: 'w = clamp(exp(old_logp − rollout_logp), 0.5, 5), detached, times the clipped loss; thresholds: is_low / is_high (--algo.advantage.is_correction_threshold)',
    },
  ),
  row(
    '--algo.advantage.is_correction_enable --algo.advantage.is_correction_type icepop',
    'openrlhf_ppo',
    { is_correction: 2 },
    {
      claims: ['openrlhf-icepop-vs-tis', 'openrlhf-icepop-unbounded-plain-is'],
      note: 'weights outside [is_low, is_high] set to 0 (the token drops out), inside kept unclamped',
    },
  ),
  row(
    '--algo.advantage.is_correction_enable --algo.advantage.is_correction_type seq-mask-tis',
    'openrlhf_ppo',
    { is_correction: 3 },
    {
      claims: ['openrlhf-seq-mask-tis-vs-icepop', 'openrlhf-tis-unbounded-plain-is'],
      note: 'a sequence is kept when the geometric mean of its weights lies in [is_low, is_high]; a kept token’s weight is NOT clamped (the code comment says it is)',
    },
  ),
  // PolicyLoss, policy_loss_type="gspo"
  row('--actor.policy_loss_type gspo', 'openrlhf_gspo', undefined, {
    claims: ['openrlhf-gspo-verl-gspo', 'openrlhf-gspo-uncapped-ratio', 'openrlhf-gspo-default-clip'],
    note: 'per-sample mean forced; the default clip range is eps_clip 0.2 (the paper’s 3e-4 / 4e-4 via --actor.eps_clip_low_high); the sequence log-ratio is neither clamped nor capped',
  }),
  row(
    '--actor.policy_loss_type gspo --algo.advantage.is_correction_enable',
    'openrlhf_gspo',
    { is_correction: 1 },
    {
      note: 'the ratio is taken against rollout_logp instead of old_logp; no IS weight, the correction type is ignored',
    },
  ),
  // the KL loss
  ...[1, 2, 3].map((k) =>
    row(
      `--algo.kl.use_loss --algo.kl.estimator k${k}`,
      'openrlhf_ppo',
      { use_kl_loss: 1, kl_estimator: k },
      {
        readFrom: KL,
        ...(k === 3 ? { claims: ['openrlhf-k3-kl-loss-verl-k3'] } : {}),
        note:
          'kl_coef (--algo.kl.init_coef, 0.01) · token mean of clamp(k, −10, 10), always the token mean (also under gspo or token_level_loss=0); ' +
          (k === 3
            ? 'no ±20 clamp before exp (verl has one), the same values'
            : k === 1
              ? 'k1 clamped to ±10 (verl’s k1 is not)'
              : 'k2 clamped to 10 (verl’s k2 is not)'),
      },
    ),
  ),
  // advantage estimators (upstream of the loss: the objectives read the advantage)
  row(
    '--algo.advantage.estimator group_norm (kl.init_coef 0 or kl.use_loss)',
    'dapo',
    { eps_high: 0.2, clip_c: 1e30, adv_eps: 1e-9 },
    {
      readFrom: ADV,
      claims: ['openrlhf-group-norm-dapo'],
      note: '(r − mean)/(std_unbiased + 1e-9) on every token, PPO-clip 0.2, token mean; the reward clamp to ±10 (reward.clip_range) applies after the normalisation and can bind only for groups of more than 101 responses',
    },
  ),
  row(
    '--algo.advantage.estimator rloo (kl.init_coef 0 or kl.use_loss)',
    'rloo',
    { clip_c: 1e30 },
    {
      readFrom: ADV,
      claims: ['openrlhf-rloo-stdlib-rloo'],
      note: 'r − (Σ_g r − r)/(n − 1), token mean; then clamped to ±10 (reward.clip_range)',
    },
  ),
  row('--algo.advantage.estimator dr_grpo / reinforce_baseline', 'openrlhf_ppo', undefined, {
    readFrom: ADV,
    note: 'advantage = r − mean_g r on every token (dr_grpo); reinforce_baseline then whitens over all valid tokens of the batch, (A − μ)·rsqrt(max(var_pop, 1e-8)) (verl’s reinforce_plus_plus_baseline: var unbiased, + 1e-8, so stdlib reinforce_pp differs); OpenRLHF’s dr_grpo keeps the token mean (no constant normaliser)',
  }),
  row('--algo.advantage.estimator gae / reinforce', 'openrlhf_ppo', undefined, {
    readFrom: ADV,
    note: 'advantage = GAE over the critic values (gae) or the return-to-go (reinforce) of the per-token reward −kl_coef·k + r at the last token, whitened over the batch; compute it upstream (stdlib rto computes GAE as an older OpenRLHF fork did, with per-sample aggregation); the critic’s ValueLoss is not shipped',
  }),
];

/**
 * Issue 13's "every name resolves": each name a verl, TRL, Liger or OpenRLHF user selects (the lists
 * of the snapshots in ../shared/research/frameworks-2026.md) appears in a row of the framework map
 * (stdlib/frameworks.ts, docs/frameworks.md). tests/docs/frameworks.test.ts checks that every row
 * resolves to an objective and params.
 */
import { describe, expect, it } from 'vitest';
import { FRAMEWORK_NAMES, type Framework } from '../../stdlib/frameworks.js';

/** The settings of `fw`'s rows that mention `scope`, split into the words a user writes. */
const words = (fw: Framework, scope: RegExp) =>
  FRAMEWORK_NAMES.filter((r) => r.framework === fw && scope.test(r.setting)).map(
    (r) => new Set(r.setting.split(/[\s=",()/]+/)),
  );

/** [framework, the rows that set it, what the user writes, the names]: each name is a word of one of those rows. */
const REQUIRED: readonly [Framework, RegExp, string, readonly string[]][] = [
  [
    'verl',
    /loss_mode=/,
    'policy_loss.loss_mode',
    [
      'vanilla',
      'dppo_tv',
      'dppo_kl',
      'gspo',
      'sapo',
      'gpg',
      'clip_cov',
      'kl_cov',
      'geo_mean',
      'dro',
      'cispo',
      'bypass_mode',
    ],
  ],
  [
    'verl',
    /loss_agg_mode=/,
    'loss_agg_mode',
    ['token-mean', 'token-sum', 'seq-mean-token-sum', 'seq-mean-token-mean', 'seq-mean-token-sum-norm'],
  ],
  [
    'verl',
    /kl_loss_type=/,
    'kl_loss_type',
    ['kl', 'k1', 'abs', 'mse', 'k2', 'low_var_kl', 'k3', 'k1+', 'abs+', 'k2+', 'k3+'],
  ],
  [
    'verl',
    /adv_estimator=/,
    'algorithm.adv_estimator',
    [
      'gae',
      'grpo',
      'reinforce_plus_plus',
      'reinforce_plus_plus_baseline',
      'remax',
      'rloo',
      'opo',
      'grpo_passk',
      'gpg',
      'rloo_vectorized',
      'grpo_vectorized',
      'optimal_token_baseline',
      'tir_optimal_token_baseline',
      'gdpo',
    ],
  ],
  [
    'TRL',
    /GRPOConfig loss_type=/,
    'GRPOConfig loss_type',
    ['grpo', 'dr_grpo', 'dapo', 'bnpo', 'cispo', 'sapo', 'luspo', 'vespo'],
  ],
  ['TRL', /importance_sampling_level=/, 'importance_sampling_level', ['token', 'sequence', 'sequence_token']],
  ['TRL', /scale_rewards=/, 'scale_rewards', ['group', 'batch', 'none']],
  ['TRL', /GRPOConfig .*delta=/, 'GRPOConfig delta', ['delta']],
  ['TRL', /GRPOConfig top_entropy_quantile=/, 'GRPOConfig top_entropy_quantile', ['top_entropy_quantile']],
  [
    'TRL',
    /DPOConfig\(loss_type=/,
    'DPOConfig loss_type',
    [
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
    ],
  ],
  ['TRL', /f_divergence_type=/, 'f_divergence_type', ['reverse_kl', 'forward_kl', 'js_divergence', 'alpha_divergence']],
  ['TRL', /use_weighting=/, 'DPOConfig use_weighting (WPO)', ['use_weighting']],
  ['TRL', /loss_weights=/, 'DPOConfig loss_weights', ['loss_weights']],
  ['TRL', /^GKD/, 'GKDTrainer (generalised JSD)', ['GKDTrainer']],
  ['Liger', /^Liger/, 'Liger chunked losses', ['LigerFusedLinearJSDLoss', 'LigerFusedLinearCosineSimilarityLoss']],
  ['OpenRLHF', /policy_loss_type/, '--actor.policy_loss_type', ['ppo', 'gspo']],
  ['OpenRLHF', /is_correction_type/, '--algo.advantage.is_correction_type', ['tis', 'icepop', 'seq-mask-tis']],
];

describe('every framework name of issue 13 is in the map', () => {
  for (const [fw, scope, key, names] of REQUIRED) {
    it.each(names)(`${fw} ${key}: %s`, (name) => {
      expect(
        words(fw, scope).some((w) => w.has(name)),
        `${name} in a ${fw} row that matches ${scope}`,
      ).toBe(true);
    });
  }
});

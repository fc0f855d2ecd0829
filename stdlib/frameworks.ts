/**
 * The framework map: a loss, advantage estimator or aggregation as a verl / TRL / Liger / OpenRLHF
 * user selects it by name → the stdlib objective and `--set`s that compute it, and the snapshot the
 * formula was read from (the objective's header gives the formula). `npm run docs` renders
 * docs/frameworks.md from it; tests/docs/frameworks.test.ts checks that every row resolves (the
 * objective exists, the params are its own) and that every claim it names is in the catalog.
 *
 * Only names whose formula a stdlib objective was written from are listed: a row is a statement
 * the objective's reference tests stand behind, not a guess. One module per framework family.
 */
import { DISTILL_NAMES } from './frameworks/distill.js';
import { OPENRLHF_NAMES } from './frameworks/openrlhf.js';
import { TRL_DPO_NAMES } from './frameworks/trl-dpo.js';
import { TRL_GRPO_NAMES } from './frameworks/trl-grpo.js';
import { TRL_PREF_NAMES } from './frameworks/trl-pref.js';
import type { FrameworkName } from './frameworks/types.js';
import { VERL_ADVANTAGE_NAMES } from './frameworks/verl-advantages.js';
import { VERL_LOSS_NAMES } from './frameworks/verl-losses.js';

export type { Framework, FrameworkName } from './frameworks/types.js';

export const FRAMEWORK_NAMES: readonly FrameworkName[] = [
  ...TRL_PREF_NAMES,
  ...TRL_DPO_NAMES,
  ...TRL_GRPO_NAMES,
  ...VERL_LOSS_NAMES,
  ...VERL_ADVANTAGE_NAMES,
  ...OPENRLHF_NAMES,
  ...DISTILL_NAMES,
];

/**
 * Catalog claims that relate a name of one framework to the same name (or the paper's form) in
 * another (issue 13 item 7): docs/frameworks.md shows each with its verdict, and the counterexample
 * for the different ones.
 */
export const CROSS_FRAMEWORK_CLAIMS: readonly string[] = [
  // TRL GRPOTrainer vs verl and the papers
  'trl-dapo-stdlib-dapo-no-dual-clip',
  'trl-dapo-vs-verl-dapo-recipe',
  'trl-dr-grpo-oat',
  'trl-dr-grpo-verl-1dda039-no-empty',
  'trl-dr-grpo-verl-1dda039-empty',
  'trl-dr-grpo-vs-verl-seq-mean-token-sum-norm',
  'trl-cispo-verl-cispo',
  'trl-cispo-default-cap',
  'trl-sapo-verl-sapo',
  'trl-sequence-gspo',
  'trl-grpo-stdlib-grpo',
  'trl-grpo-empty-sequences',
  'trl-bnpo-dapo-one-step',
  // OpenRLHF vs verl
  'openrlhf-ppo-verl-vanilla-token-mean',
  'openrlhf-ppo-dual-clip-verl',
  'openrlhf-ppo-per-sample-verl-seq-mean',
  'openrlhf-ppo-per-sample-eps',
  'openrlhf-gspo-verl-gspo',
  'openrlhf-gspo-uncapped-ratio',
  'openrlhf-k3-kl-loss-verl-k3',
  'openrlhf-group-norm-dapo',
  'openrlhf-rloo-stdlib-rloo',
  // verl now vs verl before 2026, verl's estimators vs the papers' forms
  'verl-agg-mode3-vs-mode5',
  'verl-adv-grpo-is-dapo',
  'verl-adv-grpo-singletons',
  'verl-adv-rloo-vectorized-is-stdlib-rloo',
  'verl-adv-rloo-loop-vs-stdlib-rloo',
  'verl-adv-rpp-baseline-vs-reinforce-pp',
  'verl-adv-gpg-on-policy-is-stdlib-gpg',
  // TRL DPOTrainer vs the stdlib's paper forms
  'trl-dpo-sigmoid-dpo',
  'trl-dpo-sigmoid-ignores-label-smoothing',
  'trl-dpo-ipo-ipo',
  'trl-dpo-sigmoid-norm-simpo',
  'trl-dpo-apo-zero-kto',
  'trl-dpo-apo-zero-vs-kto',
  // distillation: Liger vs TRL GKD
  'liger-jsd-soft-only-is-gkd',
  'liger-jsd-beta-not-mirrored',
  'liger-jsd-hard-loss-not-gkd',
];

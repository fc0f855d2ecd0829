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

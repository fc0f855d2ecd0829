/**
 * The framework map: a loss, advantage estimator or aggregation as a verl / TRL / Liger / OpenRLHF
 * user selects it by name → the stdlib objective and `--set`s that compute it, and the snapshot the
 * formula was read from (the objective's header gives the formula). `npm run docs` renders
 * docs/frameworks.md from it; tests/docs/frameworks.test.ts checks that every row resolves (the
 * objective exists, the params are its own) and that every claim it names is in the catalog.
 *
 * Only names whose formula a stdlib objective was written from are listed: a row is a statement
 * the objective's reference tests stand behind, not a guess.
 */

export type Framework = 'verl' | 'TRL' | 'Liger' | 'OpenRLHF';

export interface FrameworkName {
  readonly framework: Framework;
  /** The setting as the framework's user writes it. */
  readonly setting: string;
  /** Where the formula was read: repository@commit and file (or the research section that did). */
  readonly readFrom: string;
  readonly objective: string;
  readonly set?: Readonly<Record<string, number>>;
  /** Catalog claims relating this name to others (ids in stdlib/claims). */
  readonly claims?: readonly string[];
  readonly note?: string;
}

const TRL = 'huggingface/trl@f2cd5771';
const TRL_DPO = `${TRL} trl/trainer/dpo_trainer.py`;
const TRL_CPO = `${TRL} trl/experimental/cpo/cpo_trainer.py`;
/** verl's core_algos.py as methods-pg.md §0.1 and §B read it (the copy vendored in horizon-llm/CTPO@acc40211). */
const VERL = 'verl core_algos.py (horizon-llm/CTPO@acc40211 copy; methods-pg.md §0.1, §B)';

/** verl `loss_agg_mode` names → the `loss_agg_mode` param of the stdlib objectives that take it. */
const AGG_MODES: readonly [string, number][] = [
  ['token-mean', 0],
  ['seq-mean-token-mean', 1],
  ['seq-mean-token-sum', 2],
  ['seq-mean-token-sum-norm', 3],
];

export const FRAMEWORK_NAMES: readonly FrameworkName[] = [
  // TRL preference trainers (methods-dpo.md §17)
  { framework: 'TRL', setting: 'DPOTrainer loss_type="sigmoid"', readFrom: TRL_DPO, objective: 'dpo' },
  {
    framework: 'TRL',
    setting: 'DPOTrainer loss_type="ipo"',
    readFrom: TRL_DPO,
    objective: 'ipo',
    claims: ['ipo-trl-by-hand', 'ipo-normalised-not-paper-form'],
  },
  {
    framework: 'TRL',
    setting: 'CPOTrainer loss_type="sigmoid"',
    readFrom: TRL_CPO,
    objective: 'cpo',
    claims: ['cpo-alpha0-simpo-unnormalised', 'cpo-nll-term'],
  },
  {
    framework: 'TRL',
    setting: 'CPOTrainer loss_type="simpo", cpo_alpha=0',
    readFrom: TRL_CPO,
    objective: 'simpo',
    claims: ['simpo-eps0-paper-form', 'simpo-unnormalised-dpo-no-ref'],
  },
  {
    framework: 'TRL',
    setting: 'CPOTrainer loss_type="simpo" (cpo_alpha=1, CPO-SimPO, TRL’s default)',
    readFrom: TRL_CPO,
    objective: 'simpo',
    set: { cpo_alpha: 1 },
  },
  {
    framework: 'TRL',
    setting: 'KTOTrainer loss_type="kto"',
    readFrom: `${TRL} trl/trainer/kto_trainer.py`,
    objective: 'kto',
    claims: ['kto-z0-apo-zero-unpaired', 'kto-vs-apo-zero-unpaired'],
  },
  {
    framework: 'TRL',
    setting: 'ORPOTrainer',
    readFrom: `${TRL} trl/experimental/orpo/orpo_trainer.py`,
    objective: 'orpo_trl',
    claims: ['orpo-trl-no-prompt-orpo', 'orpo-trl-prompt-nll'],
    note: 'its NLL covers the chosen prompt and response; `orpo` is the paper’s response-only form',
  },
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

/** TRL's preference trainers (DPO sigmoid/ipo, CPO, SimPO, KTO, ORPO): methods-dpo.md §17. */
import { SNAPSHOT, type FrameworkName } from './types.js';

const TRL_DPO = `${SNAPSHOT.trl} trl/trainer/dpo_trainer.py`;
const TRL_CPO = `${SNAPSHOT.trl} trl/experimental/cpo/cpo_trainer.py`;
const TRL = SNAPSHOT.trl;

export const TRL_PREF_NAMES: readonly FrameworkName[] = [
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
];

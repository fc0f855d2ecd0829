/** Every claim of the catalog, by family. */
import { ACTION_CLAIMS } from './catalog-actions.js';
import { DIFFUSION_CLAIMS } from './catalog-diffusion.js';
import { DISTILL_CLAIMS } from './catalog-distill.js';
import { OPENRLHF_CLAIMS } from './catalog-openrlhf.js';
import { PREF_CLAIMS } from './catalog-pref.js';
import { TOKEN_REWARD_CLAIMS } from './catalog-token-reward.js';
import { TRL_DPO_CLAIMS } from './catalog-trl-dpo.js';
import { TRL_GRPO_CLAIMS } from './catalog-trl-grpo.js';
import { VERL_ADVANTAGE_CLAIMS } from './catalog-verl-advantages.js';
import { VERL_LOSS_CLAIMS } from './catalog-verl-losses.js';
import { VOCAB_METHOD_CLAIMS } from './catalog-vocab-methods.js';
import { CLAIMS, type Claim } from './catalog.js';

export const ALL_CLAIMS: readonly Claim[] = [
  ...CLAIMS,
  ...PREF_CLAIMS,
  ...TOKEN_REWARD_CLAIMS,
  ...VOCAB_METHOD_CLAIMS,
  ...DIFFUSION_CLAIMS,
  ...ACTION_CLAIMS,
  // issue 13: the frameworks' names
  ...VERL_LOSS_CLAIMS,
  ...VERL_ADVANTAGE_CLAIMS,
  ...TRL_GRPO_CLAIMS,
  ...TRL_DPO_CLAIMS,
  ...DISTILL_CLAIMS,
  ...OPENRLHF_CLAIMS,
];

/** Every claim of the catalog, by family. */
import { ACTION_CLAIMS } from './catalog-actions.js';
import { DIFFUSION_CLAIMS } from './catalog-diffusion.js';
import { PREF_CLAIMS } from './catalog-pref.js';
import { TOKEN_REWARD_CLAIMS } from './catalog-token-reward.js';
import { VOCAB_METHOD_CLAIMS } from './catalog-vocab-methods.js';
import { CLAIMS, type Claim } from './catalog.js';

export const ALL_CLAIMS: readonly Claim[] = [
  ...CLAIMS,
  ...PREF_CLAIMS,
  ...TOKEN_REWARD_CLAIMS,
  ...VOCAB_METHOD_CLAIMS,
  ...DIFFUSION_CLAIMS,
  ...ACTION_CLAIMS,
];

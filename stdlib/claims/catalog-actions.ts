/** Equivalence claims of the objectives over actions other than LM tokens and the masked-diffusion training loss (unmask_policy, soft_tokens, cacovid, smdm; methods-dpo.md §12–§15). */
import type { Claim } from './catalog.js';

export const ACTION_CLAIMS: Claim[] = [];

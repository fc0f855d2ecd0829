/** Equivalence claims of the trl-dpo framework names (issue 13). */
import type { Claim } from './catalog.js';

export const TRL_DPO_CLAIMS: Claim[] = [];

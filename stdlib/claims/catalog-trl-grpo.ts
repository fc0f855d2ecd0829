/** Equivalence claims of the trl-grpo framework names (issue 13). */
import type { Claim } from './catalog.js';

export const TRL_GRPO_CLAIMS: Claim[] = [];

/** Equivalence claims of the verl-losses framework names (issue 13). */
import type { Claim } from './catalog.js';

export const VERL_LOSS_CLAIMS: Claim[] = [];

/** Equivalence claims of the verl-advantages framework names (issue 13). */
import type { Claim } from './catalog.js';

export const VERL_ADVANTAGE_CLAIMS: Claim[] = [];

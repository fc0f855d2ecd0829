/** Equivalence claims of the openrlhf framework names (issue 13). */
import type { Claim } from './catalog.js';

export const OPENRLHF_CLAIMS: Claim[] = [];

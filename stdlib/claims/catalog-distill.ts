/** Equivalence claims of the distill framework names (issue 13). */
import type { Claim } from './catalog.js';

export const DISTILL_CLAIMS: Claim[] = [];

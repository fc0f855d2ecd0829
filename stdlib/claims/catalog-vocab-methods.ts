/** Equivalence claims of the vocabulary-axis methods (aligndistil, ilm, diversity_precision; methods-dpo.md §7, §16, methods-pg.md §18). */
import type { Claim } from './catalog.js';

export const VOCAB_METHOD_CLAIMS: Claim[] = [];

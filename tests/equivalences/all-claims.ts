/** Every claim of the catalog: policy-gradient claims and preference-method claims. */
import { CLAIMS, type Claim } from './catalog.js';

export const ALL_CLAIMS: readonly Claim[] = [...CLAIMS];

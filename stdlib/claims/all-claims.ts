/** Every claim of the catalog: policy-gradient claims and preference-method claims. */
import { CLAIMS, type Claim } from './catalog.js';
import { DPO_CLAIMS } from './catalog-dpo.js';

export const ALL_CLAIMS: readonly Claim[] = [...CLAIMS, ...DPO_CLAIMS];

/** OpenRLHF policy losses and rollout importance-sampling corrections. */
import type { FrameworkName } from './types.js';

export const OPENRLHF_NAMES: readonly FrameworkName[] = [];

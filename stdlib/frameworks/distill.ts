/** Distillation: TRL GKD's generalised JSD, Liger's jsd and cosine_similarity. */
import type { FrameworkName } from './types.js';

export const DISTILL_NAMES: readonly FrameworkName[] = [];

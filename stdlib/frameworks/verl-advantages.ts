/** verl advantage estimators (algorithm.adv_estimator). */
import type { FrameworkName } from './types.js';

export const VERL_ADVANTAGE_NAMES: readonly FrameworkName[] = [];

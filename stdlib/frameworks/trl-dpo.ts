/** TRL DPOTrainer loss_type (beyond sigmoid / ipo), f_divergence_type, WPO, loss_weights. */
import type { FrameworkName } from './types.js';

export const TRL_DPO_NAMES: readonly FrameworkName[] = [];

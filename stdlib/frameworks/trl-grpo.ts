/** TRL GRPOTrainer loss_type × importance_sampling_level × scale_rewards. */
import type { FrameworkName } from './types.js';

export const TRL_GRPO_NAMES: readonly FrameworkName[] = [];

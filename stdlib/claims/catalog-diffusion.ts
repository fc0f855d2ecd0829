/** Equivalence claims of the diffusion-LM RL objectives over denoising steps (diffu_grpo, mdpo, cj_grpo, gdpo, co_grpo; methods-dpo.md §8–§11, §17.6). */
import type { Claim } from './catalog.js';

export const DIFFUSION_CLAIMS: Claim[] = [];

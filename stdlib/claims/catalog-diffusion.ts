/** Equivalence claims of the diffusion-LM RL objectives over denoising steps (diffu_grpo, mdpo, cj_grpo, gdpo, co_grpo; methods-dpo.md §8–§11, §17.6). */
import type { Claim } from './catalog.js';
import { OBJ } from './pairs.js';

/** Every view is its own response (d1's one view per completion). */
const ONE_VIEW = ['count(true per group by response) == 1'];

export const DIFFUSION_CLAIMS: Claim[] = [
  {
    id: 'diffu-grpo-ar-trl-grpo',
    a: 'diffu_grpo',
    b: `${OBJ}/diffu_grpo_trl_grpo.credo`,
    assume: ONE_VIEW,
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §17.6',
    note: 'with one view per response, diffu-GRPO is TRL-GRPO for an AR model with a mean-only advantage, unclamped k3 and the global token mean',
  },
  {
    id: 'diffu-grpo-not-std-normalised',
    a: 'diffu_grpo',
    b: `${OBJ}/diffu_grpo_trl_grpo.credo`,
    setB: { std_norm: 1 },
    assume: ONE_VIEW,
    mode: 'value',
    expect: 'different',
    source: 'methods-dpo.md §19 item 10',
    note: 'd1 (like CJ-GRPO and GDPO) only centres the rewards; dividing by the group std, as MDPO does per step, changes the loss',
  },
  {
    id: 'cj-grpo-one-step-diffu-grpo',
    a: 'cj_grpo',
    b: 'diffu_grpo',
    assume: ['t == 1'],
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §11, §17.6',
    note: 'S = 1 (every view at t = 1, all tokens unmasked at once): the mean over steps is over one step, whose token mean is the global one: CJ-GRPO is its "one-step-grpo", diffu-GRPO',
  },
  {
    id: 'cj-grpo-steps-not-diffu-grpo',
    a: 'cj_grpo',
    b: 'diffu_grpo',
    mode: 'value',
    expect: 'different',
    source: 'methods-dpo.md §11',
    note: 'with several steps CJ-GRPO averages the per-step token means (each step weighs 1/S), diffu-GRPO on the same views pools every token',
  },
  {
    id: 'mdpo-adv-offset-cancels',
    a: 'mdpo',
    b: 'mdpo',
    setA: { adv_offset: 0 },
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §19 item 9',
    note: 'the constant +1 of adv-v4 cancels in the per-step z-score (mean subtracted per group and step)',
  },
  {
    id: 'co-grpo-frozen-schedule-cj-grpo',
    a: 'co_grpo',
    b: 'cj_grpo',
    setA: { ratio_level: 0, std_norm: 0, eps: 0.5, beta: 0, sched_coef: 0 },
    setB: { beta: 0 },
    assume: ['old_sched_logp == sched_logp'],
    mode: 'both',
    expect: 'equivalent',
    source: 'co_grpo header (reconstructed), methods-dpo.md §9, §11',
    note: 'Co-GRPO factorised per token, with a frozen schedule, mean-only advantages and CJ-GRPO’s ε is CJ-GRPO: the token term pools each step’s tokens and averages over steps the same way',
  },
  {
    id: 'gdpo-unweighted-co-grpo-trajectory',
    a: 'gdpo',
    b: 'co_grpo',
    setA: { t_pow: 0, len_norm: 0, beta: 0 },
    setB: { ratio_level: 2, std_norm: 0, beta: 0 },
    assume: ['elbo_w == 1', 'old_sched_logp == sched_logp'],
    mode: 'value',
    expect: 'equivalent',
    source: 'gdpo and co_grpo headers, methods-dpo.md §9, §10',
    note: 'GDPO’s ELBO log-ratio with unit weights and no 1/t is the sum of the views’ token log-ratios: Co-GRPO’s per-trajectory joint ratio with a frozen schedule (value only: Co-GRPO also has a schedule gradient)',
  },
];

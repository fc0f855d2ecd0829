/**
 * Equivalence claims of the token-reward preference methods (sft, ift, rto, tgdpo, cdpo, t_reg;
 * methods-dpo.md §2–§6, §19 items 1, 7, 8).
 *
 * Limits of `credo equiv` met here (see the notes of the claims):
 *   - An assumption that two inputs are equal (`rm_logp == ref_logp`) is a substitution: the first
 *     input is drawn as a copy of the second; `p_ce == 0` / `value == 0` draw a constant input.
 *   - A derived input must be at its own level: a sequence reward broadcast to a token input is
 *     written `… + 0 * position`.
 *   - `length == 1` together with a pair's requirements is satisfied too rarely (E0502); the T = 1
 *     claim uses `length <= 1`, which the per-position and summed forms treat alike.
 */
import type { Claim } from './catalog.js';
import { OBJ } from './pairs.js';

export const TOKEN_REWARD_CLAIMS: Claim[] = [
  // item 1 — TGDPO
  {
    id: 'tgdpo-alpha0-dpo',
    a: 'tgdpo',
    b: 'dpo',
    setA: { alpha: 0 },
    mode: 'both',
    expect: 'proved',
    source: 'methods-dpo.md §19 item 1',
    note: 'TGDPO(α = 0) is DPO-sigmoid: the token weights 1 ± α·r̂ become 1 and β factors out of the sums (dpo has label_smoothing = 0)',
  },
  {
    id: 'tgdpo-rm-equals-ref-dpo',
    a: 'tgdpo',
    b: 'dpo',
    assume: ['ref_logp == rm_logp'],
    mode: 'both',
    expect: 'proved',
    source: 'methods-dpo.md §19 item 1',
    note: 'an equality of two inputs is a substitution: rm_logp is drawn as a copy of ref_logp, so the token guidance r̂ is 0',
  },
  {
    id: 'tgdpo-guidance-not-dpo',
    a: 'tgdpo',
    b: 'dpo',
    mode: 'value',
    expect: 'different',
    source: 'methods-dpo.md §19 item 1',
    note: 'with α = 0.5 and a reward model that differs from the reference, the token guidance changes the loss',
  },
  // item 7 — IFT / SFT
  {
    id: 'ift-gamma0-sft',
    a: 'ift',
    b: 'sft',
    setA: { gamma: 0 },
    setB: { per_sequence: 1 },
    mode: 'both',
    expect: 'proved',
    source: 'methods-dpo.md §19 item 7',
    note: 'IFT(λ = 0, γ = 0) is SFT per sequence: per-sequence mean NLL, then the batch mean (λ acts upstream, on the model inputs)',
  },
  {
    id: 'ift-detached-weights-same-value',
    a: 'ift',
    b: `${OBJ}/ift_detached.credo`,
    mode: 'value',
    expect: 'proved',
    source: 'methods-dpo.md §19 item 7',
    note: 'stop-gradient does not change the value',
  },
  {
    id: 'ift-weights-not-detached',
    a: 'ift',
    b: `${OBJ}/ift_detached.credo`,
    mode: 'grad',
    expect: 'different',
    source: 'methods-dpo.md §19 item 7',
    note: 'for γ > 0 the released code differentiates through the relation-propagation weights w',
  },
  {
    id: 'sft-token-mean-not-seq-mean',
    a: 'sft',
    b: 'sft',
    setB: { per_sequence: 1 },
    mode: 'value',
    expect: 'different',
    source: 'sft header',
    note: "a trainer's token mean over the batch weighs long responses more than the IFT repository's per-sequence mean",
  },
  // item 8 — cDPO (critical tokens)
  {
    id: 'cdpo-code-unit-weights-not-dpo',
    a: 'cdpo',
    b: 'dpo',
    assume: ['p_ce == 0'],
    mode: 'value',
    expect: 'different',
    source: 'methods-dpo.md §19 item 8',
    note: 'the code form with all weights 1 (p_ce = 0, only_neg = 1) takes logσ per aligned position, not of the sequence sum: it catches an accidental sequence summation',
  },
  {
    id: 'cdpo-code-unit-weights-dpo-at-t1',
    a: 'cdpo',
    b: 'dpo',
    assume: ['p_ce == 0', 'length <= 1'],
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §19 item 8',
    note: 'with at most one token per response there is one position per pair and per-position DPO is DPO (T = 1; `length == 1` with a pair is too rare for random batches)',
  },
  {
    id: 'cdpo-code-unit-weights-per-position-dpo',
    a: 'cdpo',
    b: `${OBJ}/dpo_per_position.credo`,
    assume: ['p_ce == 0'],
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §5',
    note: 'the code form with all weights 1 is the by-hand per-position DPO',
  },
  {
    id: 'cdpo-paper-unit-weights-dpo',
    a: 'cdpo',
    b: 'dpo',
    setA: { form: 1 },
    assume: ['p_ce == 0'],
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §5, §18',
    note: 'the summed (paper) form with all weights 1 is DPO-sigmoid',
  },
  {
    id: 'cdpo-paper-weights-not-dpo',
    a: 'cdpo',
    b: 'dpo',
    setA: { form: 1 },
    mode: 'value',
    expect: 'different',
    source: 'methods-dpo.md §5',
    note: 'the weights 1 − p_ce on the rejected response change the summed form',
  },
  // T-REG (paper form, from summaries of the paper text; t_reg header)
  {
    id: 't_reg-alpha0-dpo',
    a: 't_reg',
    b: 'dpo',
    setA: { alpha: 0 },
    mode: 'both',
    expect: 'proved',
    source: 't_reg header (paper: L = L_DPO + α·w·(L_REG(y_w) + L_REG(y_l)))',
    note: 'T-REG without its regulariser is DPO-sigmoid (dpo has label_smoothing = 0)',
  },
  {
    id: 't_reg-equal-contrast-dpo',
    a: 't_reg',
    b: 'dpo',
    assume: ['neg_logp == pos_logp'],
    mode: 'both',
    expect: 'proved',
    source: 't_reg header (paper: r̂ = σ(log π(y_t | x_better) − log π(y_t | x_worse)) − 0.5)',
    note: 'an equality of two inputs is a substitution: neg_logp is drawn as a copy of pos_logp, so every token reward r̂ is 0 and L_REG vanishes',
  },
  {
    id: 't_reg-regulariser-not-dpo',
    a: 't_reg',
    b: 'dpo',
    mode: 'value',
    expect: 'different',
    source: 't_reg header',
    note: 'with α > 0 the weighted token-reward regulariser adds to the loss',
  },
  // RTO
  {
    id: 'rto-beta1-0-no-dpo-model',
    a: 'rto',
    b: 'rto',
    setA: { beta1: 0 },
    assume: ['ref_logp == dpo_logp'],
    mode: 'both',
    expect: 'proved',
    source: 'methods-dpo.md §3',
    note: 'β1 = 0 removes the DPO token rewards: the same as a DPO model equal to the reference, i.e. OpenRLHF PPO with a KL-in-reward and a sparse RM reward',
  },
  {
    id: 'rto-dpo-rewards-matter',
    a: 'rto',
    b: 'rto',
    setB: { beta1: 0 },
    mode: 'value',
    expect: 'different',
    source: 'methods-dpo.md §3',
    note: 'with β1 = 0.05 the DPO token rewards change the advantages',
  },
  {
    id: 'rto-sequence-reward-ppo',
    a: 'rto',
    b: 'ppo',
    setA: { beta1: 0, beta2: 0, lam: 1, whiten: 0 },
    setB: { loss_agg_mode: 1, clip_c: 1e30 },
    assume: ['value == 0', 'advantage == clip(rm_score, -10, 10) + 0 * position'],
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §3 (β1 = 0 → PPO)',
    note: 'without DPO and KL rewards, with V = 0, γ = λ = 1 and no whitening, GAE gives every token the clamped sequence reward: PPO-clip, seq-mean-token-mean, no dual clip, on a sequence reward',
  },
];

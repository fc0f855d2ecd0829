/**
 * Equivalence claims of the preference baselines (dpo, ipo, simpo, cpo, orpo, kto; methods-dpo.md
 * §1, §17, §19). Data model: a preference pair is a group of 2 sequences with `chosen : seq bool`
 * marking y_w (PAIRS); KTO is unpaired, `desirable : seq bool`.
 */
import type { Claim } from './catalog.js';
import { OBJ, PAIRS } from './pairs.js';

export const PREF_CLAIMS: Claim[] = [
  // §1 — From r to Q*: token-level DPO is DPO
  {
    id: 'dpo-token-level-credit-assignment',
    a: `${OBJ}/dpo_token_rewards.credo`,
    b: 'dpo',
    assume: PAIRS,
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §1',
    note: 'DPO written with the per-token implicit rewards r_t = β(logp − ref_logp) summed over each response (the V terms telescope, V(s_0) cancels in the pair) is DPO. Not proved: the normal forms sum tokens straight to the group in A and through the sequence in B. dpo.test.ts checks the exported implicit rewards sum to β·S(y)',
  },
  // the DPO / SimPO / CPO triangle (TRL CPOTrainer)
  {
    id: 'simpo-unnormalised-dpo-no-ref',
    a: 'simpo',
    b: 'dpo',
    setA: { gamma: 0, length_normalize: 0 },
    assume: [...PAIRS, 'ref_logp == 0'],
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §17.1, §17.3',
    note: 'SimPO with γ = 0 and summed log-likelihoods is DPO without a reference model. Not proved: the normal forms keep dpo’s ref_logp term, which is 0 only in the data (`ref_logp == 0` draws it as 0)',
  },
  {
    id: 'simpo-defaults-not-dpo-no-ref',
    a: 'simpo',
    b: 'dpo',
    assume: [...PAIRS, 'ref_logp == 0'],
    mode: 'value',
    expect: 'different',
    source: 'methods-dpo.md §17.3',
    note: 'the margin γ/β and the length normalisation make SimPO another loss',
  },
  {
    id: 'cpo-alpha0-simpo-unnormalised',
    a: 'cpo',
    b: 'simpo',
    setA: { cpo_alpha: 0 },
    setB: { gamma: 0, length_normalize: 0 },
    mode: 'both',
    expect: 'proved',
    source: 'methods-dpo.md §17.3',
    note: 'CPOTrainer’s sigmoid loss without its NLL term is its simpo loss with γ = 0 on summed log-likelihoods',
  },
  {
    id: 'cpo-nll-term',
    a: 'cpo',
    b: 'simpo',
    setB: { gamma: 0, length_normalize: 0 },
    mode: 'grad',
    expect: 'different',
    source: 'methods-dpo.md §17.3',
    note: 'cpo_alpha = 1 (TRL’s default) adds the behaviour-cloning NLL of the chosen responses',
  },
  // item 2 — SimPO
  {
    id: 'simpo-eps0-paper-form',
    a: 'simpo',
    b: `${OBJ}/simpo_paper.credo`,
    assume: PAIRS,
    mode: 'both',
    expect: 'proved',
    source: 'methods-dpo.md §19 item 2',
    note: 'TRL CPOTrainer (label_smoothing = 0, cpo_alpha = 0): −logσ(β(Δ − γ/β)) == −logσ(βΔ − γ)',
  },
  {
    id: 'simpo-label-smoothing-not-paper-form',
    a: 'simpo',
    b: `${OBJ}/simpo_paper.credo`,
    setA: { label_smoothing: 0.1 },
    assume: PAIRS,
    mode: 'value',
    expect: 'different',
    source: 'methods-dpo.md §19 item 2',
    note: 'with ε > 0 the conservative term −ε·logσ(−β·logits) is added',
  },
  // item 3 — KTO / APO-zero
  {
    id: 'kto-z0-apo-zero-unpaired',
    a: 'kto',
    b: `${OBJ}/apo_zero_unpaired.credo`,
    assume: ['mean(kl_logp - kl_ref_logp) <= 0'],
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §19 item 3',
    note: 'a non-positive batch KL estimate is clamped to z0 = 0; then 1 − σ(−βr) = σ(βr) example by example. Not proved: the normal forms keep the clamp max(0, mean(kl_logp − kl_ref_logp)), which the canonicalizer cannot drop under an assumption, and the canonicalizer has no rule 1 − σ(−x) = σ(x)',
  },
  {
    id: 'kto-vs-apo-zero-unpaired',
    a: 'kto',
    b: `${OBJ}/apo_zero_unpaired.credo`,
    mode: 'value',
    expect: 'different',
    source: 'methods-dpo.md §19 item 3',
    note: 'a positive KL estimate z0 shifts the KTO reference point',
  },
  // item 4 — IPO
  {
    id: 'ipo-trl-by-hand',
    a: 'ipo',
    b: `${OBJ}/ipo_by_hand.credo`,
    assume: PAIRS,
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §19 item 4',
    note: 'mean of the token log-ratios per sequence == policy and reference log-probs each divided by the length, then (h − 1/(2τ))²; unequal lengths are drawn. Not proved: the canonicalizer does not identify the valid-token count of mean(… per seq) with `length` (nor the group count of mean(…) with `num_groups`), keeps (δ − 5)^2 as a power while (h − 5)·(h − 5) is expanded, and does not split where(c, x, −x) into where(c, x, 0) − where(c, 0, x). dpo-reference.test.ts also checks a hand-computed number',
  },
  {
    id: 'ipo-normalised-not-paper-form',
    a: 'ipo',
    b: 'ipo',
    setB: { length_normalize: 0 },
    assume: PAIRS,
    mode: 'value',
    expect: 'different',
    source: 'methods-dpo.md §19 item 4',
    note: 'TRL length-normalises the log-ratios; the paper form sums them',
  },
  {
    id: 'ipo-normalised-paper-form-short',
    a: 'ipo',
    b: 'ipo',
    setB: { length_normalize: 0 },
    assume: [...PAIRS, 'length <= 1'],
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §19 item 4',
    note: 'with at most one valid token per response the normalisation is the identity (an empty response has S = 0 either way)',
  },
];

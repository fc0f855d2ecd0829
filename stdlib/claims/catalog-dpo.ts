/**
 * Equivalence claims for the DPO family: the cross-checks of methods-dpo.md §19 that Credo can
 * express, written against the catalog objectives in tests/equivalences/objectives/. The claims are
 * checked by tests/equivalences/dpo-reference.test.ts exactly as equivalences.test.ts checks CLAIMS.
 *
 * Data model: a preference pair is a group of 2 sequences with `chosen : seq bool` marking y_w;
 * claims on pairs assume `group_size=2` and exactly one chosen response per group (PAIRS). KTO and
 * APO-zero are unpaired: one sequence per example, `chosen` is the desirable label.
 *
 * §19 items without claims here, and what Credo lacks for them:
 *   5  ORPO, NLL over prompt + response (TRL) vs response only: a batch holds response tokens only;
 *      the TRL variant needs the log-probs of the prompt tokens of the chosen sequence.
 *   6  AlignDistil theorem1, softmax(α z_d + (1−α) z_ref) == normalize(π_ref · exp(…)): full-vocabulary
 *      logits (a vocabulary axis and a softmax over it).
 *   9  MDPO advantage from a per-step reward matrix with per-step group z-scoring: a diffusion-step
 *      axis (values per response × denoising step).
 *   10 mean-only (d1, CJ-GRPO, Apple) vs std + 1e-4 (MDPO, CaCoVID) advantages per step: the same
 *      diffusion-step axis (and CaCoVID's replay memory). The plain group-level difference is the
 *      `dr-grpo-vs-grpo` claim of catalog.ts.
 *   11 SMDM normaliser B·L vs answer-token count and weight 1/p, p = (1−1e-3)t + 1e-3: the masked-
 *      diffusion forward process (which positions are masked at time t, padding counted in B·L) and
 *      the masked-token cross-entropy over the vocabulary.
 *   12 ILM: a joint softmax over the (gap × vocabulary) grid: vocabulary logits and a per-gap axis.
 *
 * Limits of `credo equiv` met here (see the notes of the claims):
 *   - An assumption that two inputs are equal (`rm_logp == ref_logp`, `p_ce == 0`) is only a filter
 *     on random batches, and independent draws never satisfy it (E0502). TGDPO with rmlp = rlp and
 *     cDPO with p_ce = 0 are therefore checked by substitution in dpo-reference.test.ts.
 *   - `length == 1` together with PAIRS is satisfied too rarely (E0502); the T = 1 claims use
 *     `length <= 1`, which the per-position and normalised forms treat alike.
 */
import type { Claim } from './catalog.js';

const OBJ = 'tests/equivalences/objectives';
/** A preference pair: a group of 2 sequences, exactly one chosen. */
const PAIRS = ['group_size=2', 'sum(f32(chosen) per group) == 1'];

export const DPO_CLAIMS: Claim[] = [
  // item 1 — TGDPO
  {
    id: 'tgdpo-alpha0-dpo',
    a: `${OBJ}/tgdpo.credo`,
    b: `${OBJ}/dpo_sigmoid.credo`,
    setA: { alpha: 0 },
    assume: PAIRS,
    mode: 'both',
    expect: 'proved',
    source: 'methods-dpo.md §19 item 1',
    note: 'TGDPO(α = 0) is DPO-sigmoid: the token weights 1 ± α·r̂ become 1 and β factors out of the sums. TGDPO with rm_logp = ref_logp: the next claim',
  },
  {
    id: 'tgdpo-rm-equals-ref-dpo',
    a: `${OBJ}/tgdpo.credo`,
    b: `${OBJ}/dpo_sigmoid.credo`,
    assume: [...PAIRS, 'ref_logp == rm_logp'],
    mode: 'both',
    expect: 'proved',
    source: 'methods-dpo.md §19 item 1',
    note: 'an equality of two inputs is a substitution: rm_logp is drawn as a copy of ref_logp, so the token guidance r̂ is 0',
  },
  {
    id: 'tgdpo-guidance-not-dpo',
    a: `${OBJ}/tgdpo.credo`,
    b: `${OBJ}/dpo_sigmoid.credo`,
    assume: PAIRS,
    mode: 'value',
    expect: 'different',
    source: 'methods-dpo.md §19 item 1',
    note: 'with α = 0.5 and a reward model that differs from the reference, the token guidance changes the loss',
  },
  // item 2 — SimPO
  {
    id: 'simpo-eps0-paper-form',
    a: `${OBJ}/simpo.credo`,
    b: `${OBJ}/simpo_paper.credo`,
    assume: PAIRS,
    mode: 'both',
    expect: 'proved',
    source: 'methods-dpo.md §19 item 2',
    note: 'TRL CPOTrainer (label_smoothing = 0, cpo_alpha = 0): −logσ(β(Δ − γ/β)) == −logσ(βΔ − γ)',
  },
  {
    id: 'simpo-label-smoothing-not-paper-form',
    a: `${OBJ}/simpo.credo`,
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
    a: `${OBJ}/kto.credo`,
    b: `${OBJ}/apo_zero_unpaired.credo`,
    assume: ['mean(kl_logp - kl_ref_logp) <= 0'],
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §19 item 3',
    note: 'a non-positive batch KL estimate is clamped to z0 = 0; then 1 − σ(−βr) = σ(βr) example by example. Not proved: the normal forms keep the clamp max(0, mean(kl_logp − kl_ref_logp)), which the canonicalizer cannot drop under an assumption, and the canonicalizer has no rule 1 − σ(−x) = σ(x)',
  },
  {
    id: 'kto-vs-apo-zero-unpaired',
    a: `${OBJ}/kto.credo`,
    b: `${OBJ}/apo_zero_unpaired.credo`,
    mode: 'value',
    expect: 'different',
    source: 'methods-dpo.md §19 item 3',
    note: 'a positive KL estimate z0 shifts the KTO reference point',
  },
  // item 4 — IPO
  {
    id: 'ipo-trl-by-hand',
    a: `${OBJ}/ipo.credo`,
    b: `${OBJ}/ipo_by_hand.credo`,
    assume: PAIRS,
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §19 item 4',
    note: 'mean of the token log-ratios per sequence == policy and reference log-probs each divided by the length, then (h − 1/(2τ))²; unequal lengths are drawn. Not proved: the canonicalizer does not identify the valid-token count of mean(… per seq) with `length` (nor the group count of mean(…) with `num_groups`), keeps (δ − 5)^2 as a power while (h − 5)·(h − 5) is expanded, and does not split where(c, x, −x) into where(c, x, 0) − where(c, 0, x). dpo-reference.test.ts also checks a hand-computed number',
  },
  {
    id: 'ipo-normalised-not-paper-form',
    a: `${OBJ}/ipo.credo`,
    b: `${OBJ}/ipo_paper.credo`,
    assume: PAIRS,
    mode: 'value',
    expect: 'different',
    source: 'methods-dpo.md §19 item 4',
    note: 'TRL length-normalises the log-ratios; the paper form sums them',
  },
  {
    id: 'ipo-normalised-paper-form-short',
    a: `${OBJ}/ipo.credo`,
    b: `${OBJ}/ipo_paper.credo`,
    assume: [...PAIRS, 'length <= 1'],
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §19 item 4',
    note: 'with at most one valid token per response the normalisation is the identity (an empty response has S = 0 either way)',
  },
  // item 7 — IFT / SFT
  {
    id: 'ift-gamma0-sft',
    a: `${OBJ}/ift.credo`,
    b: `${OBJ}/sft.credo`,
    setA: { gamma: 0 },
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §19 item 7',
    note: 'IFT(λ = 0, γ = 0) is SFT: per-sequence mean NLL, then the batch mean (λ acts upstream, on the model inputs). The loss normal forms are identical; the gradient one keeps a reverse scan of a zero cotangent, scan(0, …), that the canonicalizer does not fold to 0',
  },
  {
    id: 'ift-detached-weights-same-value',
    a: `${OBJ}/ift.credo`,
    b: `${OBJ}/ift_detached.credo`,
    mode: 'value',
    expect: 'proved',
    source: 'methods-dpo.md §19 item 7',
    note: 'stop-gradient does not change the value',
  },
  {
    id: 'ift-weights-not-detached',
    a: `${OBJ}/ift.credo`,
    b: `${OBJ}/ift_detached.credo`,
    mode: 'grad',
    expect: 'different',
    source: 'methods-dpo.md §19 item 7',
    note: 'for γ > 0 the released code differentiates through the relation-propagation weights w',
  },
  // item 8 — cDPO (critical tokens), released-code per-position form
  {
    id: 'cdpo-code-unit-weights-not-dpo',
    a: `${OBJ}/dpo_per_position.credo`,
    b: `${OBJ}/dpo_sigmoid.credo`,
    assume: PAIRS,
    mode: 'value',
    expect: 'different',
    source: 'methods-dpo.md §19 item 8',
    note: 'cDPO-code with all weights 1 (dpo_per_position; cdpo.credo with p_ce = 0, checked by substitution in dpo-reference.test.ts) takes logσ per aligned position, not of the sequence sum',
  },
  {
    id: 'cdpo-code-unit-weights-dpo-at-t1',
    a: `${OBJ}/dpo_per_position.credo`,
    b: `${OBJ}/dpo_sigmoid.credo`,
    assume: [...PAIRS, 'length <= 1'],
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §19 item 8',
    note: 'with at most one token per response there is one position per pair and per-position DPO is DPO (T = 1; `length == 1` with PAIRS is too rare for random batches)',
  },
];

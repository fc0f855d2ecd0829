/**
 * Equivalence claims of the token-reward preference methods (sft, ift, rto, tgdpo, cdpo, t_reg;
 * methods-dpo.md §2–§6, §19).
 *
 * Limits of `credo equiv` met here (see the notes of the claims):
 *   - An assumption that two inputs are equal (`rm_logp == ref_logp`) is a substitution: the first
 *     input is drawn as a copy of the second.
 *   - `length == 1` together with PAIRS is satisfied too rarely (E0502); the T = 1 claims use
 *     `length <= 1`, which the per-position and normalised forms treat alike.
 */
import type { Claim } from './catalog.js';
import { OBJ, PAIRS } from './pairs.js';

export const TOKEN_REWARD_CLAIMS: Claim[] = [
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

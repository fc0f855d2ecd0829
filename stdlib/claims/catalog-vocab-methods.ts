/** Equivalence claims of the vocabulary-axis methods (aligndistil, ilm, diversity_precision; methods-dpo.md §7, §16, methods-pg.md §18). */
import type { Claim } from './catalog.js';

const OBJ = 'tests/equivalences/objectives';

export const VOCAB_METHOD_CLAIMS: Claim[] = [
  // §7 — AlignDistil
  {
    id: 'aligndistil-theorem1-rlhf-teacher',
    a: 'aligndistil',
    b: `${OBJ}/aligndistil_theorem1_rlhf.credo`,
    setA: { mode: 1 },
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §7, §19 item 6',
    note: 'Theorem 1: the teacher softmax(α z_d + (1 − α) z_ref), α = β/β2, is normalize(π_ref · exp(β(log π_d − log π_ref)/β2)), the optimal per-token policy of RLHF with the DPO reward and KL coefficient β2. Not proved: the two teachers differ by a per-row constant, which the normal forms do not cancel inside the log-softmax',
  },
  {
    id: 'aligndistil-theorem1-alpha1-gkd',
    a: 'aligndistil',
    b: 'aligndistil',
    setA: { mode: 1, beta: 1, beta2: 1 },
    setB: { mode: 4 },
    mode: 'both',
    expect: 'proved',
    source: 'methods-dpo.md §7',
    note: 'theorem1 with α = β/β2 = 1 and weight β2 = 1: the teacher is the DPO model, i.e. GKD with reverse KL',
  },
  {
    id: 'aligndistil-contrast-alpha0-gkd',
    a: 'aligndistil',
    b: 'aligndistil',
    setA: { mode: 2, beta: 0, beta2: 1 },
    setB: { mode: 4 },
    mode: 'both',
    expect: 'proved',
    source: 'methods-dpo.md §7 (as α → 0 the contrastive teacher → the DPO model)',
    note: 'theorem1_contrast with α = 0 and weight β2 = 1 is GKD; the adaptive mode never reaches α = 0 (its floor is 1e-3)',
  },
  {
    id: 'aligndistil-adaptive-not-constant',
    a: 'aligndistil',
    b: 'aligndistil',
    setB: { mode: 2 },
    mode: 'value',
    expect: 'different',
    source: 'methods-dpo.md §7',
    note: 'the token-adaptive weight α = β2·tvd + 1e-3 (and the KL weight β/α) is not theorem1_contrast’s constant α = β/β2',
  },
  // §16 — ILM
  {
    id: 'ilm-joint-softmax-factorizes',
    a: 'ilm',
    b: `${OBJ}/ilm_factored.credo`,
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-dpo.md §16',
    note: 'the joint softmax over (gap × vocabulary) is a gap distribution softmax(lse) times a per-gap token distribution, as ILM’s predictor samples. Not proved: logsumexp of logsumexps is not rewritten into log_softmax terms',
  },
  {
    id: 'ilm-not-per-gap-softmax',
    a: 'ilm',
    b: `${OBJ}/ilm_per_gap.credo`,
    mode: 'value',
    expect: 'different',
    source: 'methods-dpo.md §16',
    note: 'a softmax per gap without the normaliser across gaps is another loss: ILM needs the joint one',
  },
  // methods-pg.md §18 — Diversity or Precision: no claims. `credo equiv` runs out of memory on
  // diversity_precision's normal form (the 12-step top-k bisection, each step reading the previous
  // bound twice, expands into a tree of ~2^12 copies); its special cases (β = 0 without negative
  // rewards is cross-entropy, k does not matter when λ_head = λ_tail, the rank-aware split does
  // otherwise) are tests in tests/stdlib/diversity_precision.test.ts.
];

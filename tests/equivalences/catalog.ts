/**
 * The equivalence catalog: special cases from stdlib headers, methods-pg.md Appendix A and
 * methods-dpo.md §19 as `credo equiv` claims, and known non-equivalences as expected
 * counterexamples. tests/equivalences/equivalences.test.ts checks every claim (ALL_CLAIMS);
 * `npm run docs` renders docs/equivalences.md from it.
 */

export interface Claim {
  /** Short stable id. */
  readonly id: string;
  /** stdlib names or paths relative to the repository root. */
  readonly a: string;
  readonly b: string;
  readonly setA?: Readonly<Record<string, number>>;
  readonly setB?: Readonly<Record<string, number>>;
  readonly assume?: readonly string[];
  readonly mode: 'value' | 'grad' | 'both';
  readonly upToScale?: boolean;
  /** `equivalent`: proved or no-difference-found. */
  readonly expect: 'proved' | 'equivalent' | 'different';
  /** Where the claim comes from. */
  readonly source: string;
  readonly note?: string;
}

const OBJ = 'tests/equivalences/objectives';
const NO_DUAL = 1e9;

export const CLAIMS: readonly Claim[] = [
  {
    id: 'self-dapo',
    a: 'dapo',
    b: 'dapo',
    mode: 'both',
    expect: 'proved',
    source: 'sanity',
    note: 'an objective is equivalent to itself, value and gradient',
  },
  {
    id: 'dapo-dual-clip-inf',
    a: 'dapo',
    b: `${OBJ}/ppo_clip_only.credo`,
    setA: { clip_c: NO_DUAL, eps_high: 0.2 },
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-pg.md Appendix A: PPO dual-clip, clip_ratio_c → ∞ = PPO clip',
  },
  {
    id: 'dapo-dual-clip-active',
    a: 'dapo',
    b: `${OBJ}/ppo_clip_only.credo`,
    setA: { eps_high: 0.2, clip_c: 1.5 },
    mode: 'value',
    expect: 'different',
    source: 'methods-pg.md §B.2',
    note: 'with a finite clip_c the dual clip caps the loss of negative-advantage tokens',
  },
  {
    id: 'dapo-on-policy-reinforce',
    a: 'dapo',
    b: `${OBJ}/reinforce_token_mean.credo`,
    assume: ['on_policy'],
    mode: 'grad',
    expect: 'equivalent',
    source: 'methods-pg.md Appendix A: any ratio method on-policy = REINFORCE with its aggregation',
  },
  {
    id: 'grpo-on-policy-reinforce',
    a: 'grpo',
    b: `${OBJ}/reinforce_seq_mean.credo`,
    setA: { beta: 0 },
    assume: ['on_policy'],
    mode: 'grad',
    expect: 'equivalent',
    source: 'methods-pg.md Appendix A; grpo header',
  },
  {
    id: 'gspo-on-policy-reinforce',
    a: 'gspo',
    b: `${OBJ}/reinforce_seq_mean.credo`,
    assume: ['on_policy'],
    mode: 'grad',
    expect: 'equivalent',
    source: 'methods-pg.md Appendix A',
  },
  {
    id: 'dapo-symmetric-vs-grpo-equal-lengths',
    a: 'dapo',
    b: 'grpo',
    setA: { eps_high: 0.2, clip_c: NO_DUAL },
    setB: { beta: 0 },
    assume: ['length == max(length)'],
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-pg.md Appendix A: DAPO with eps_high = eps_low, token-mean = GRPO without KL',
    note: 'our grpo aggregates seq-mean-token-mean, which equals token-mean when every sequence has the same number of valid tokens',
  },
  {
    id: 'dapo-vs-grpo-aggregation',
    a: 'dapo',
    b: 'grpo',
    setA: { eps_high: 0.2, clip_c: NO_DUAL },
    setB: { beta: 0 },
    mode: 'value',
    expect: 'different',
    source: 'methods-pg.md §0.1',
    note: 'token-mean over the batch vs seq-mean-token-mean: they differ as soon as lengths differ',
  },
  {
    id: 'gspo-length-one-ppo',
    a: 'gspo',
    b: 'dapo',
    setB: { eps_low: 3e-4, eps_high: 4e-4, clip_c: NO_DUAL },
    assume: ['length == 1', 'logp - old_logp < 10', 'logp - old_logp > -20'],
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-pg.md Appendix A: GSPO with all L_i = 1 = PPO clip; gspo header',
    note: 'gspo caps the log-ratio at 10 only, dapo clamps it to [-20, 20]; outside that range they differ (equiv finds a counterexample with a log-ratio of -50), hence the log-ratio assumptions',
  },
  {
    id: 'dr-grpo-vs-grpo',
    a: 'dr_grpo',
    b: 'grpo',
    mode: 'value',
    expect: 'different',
    source: 'methods-pg.md §B.4',
    note: 'no std normalisation, and a constant normaliser instead of per-sequence lengths',
  },
];

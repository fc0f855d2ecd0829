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
{
    id: 'holder-p0-gspo',
    a: 'holder_po',
    b: 'gspo',
    setA: { p: 0, p_schedule: 0, eps_low: 3e-4, eps_high: 4e-4 },
    assume: ['logp - old_logp < 10'],
    mode: 'both',
    expect: 'equivalent',
    source: 'holder_po header; methods-pg.md Appendix A: HölderPO-seq, p → 0 = GSPO',
    note: 'with a constant p = 0 and GSPO\'s clip range; gspo caps the log-ratio at 10, holder_po (authors\' code) only at log(float32 max)',
  },
  {
    id: 'holder-p0-gspo-defaults',
    a: 'holder_po',
    b: 'gspo',
    setA: { p: 0 },
    mode: 'both',
    expect: 'different',
    source: 'holder_po and gspo headers',
    note: 'with their own defaults they differ: p follows the linear_dec schedule unless p_schedule = 0, and the clip ranges are 0.2 vs 3e-4/4e-4',
  },
  {
    id: 'holder-token-p1-grpo',
    a: 'holder_po',
    b: 'grpo',
    setA: { variant: 1, p: 1, p_schedule: 0 },
    setB: { beta: 0 },
    assume: ['logp - old_logp < 20', 'logp - old_logp > -20'],
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-pg.md Appendix A: HölderPO-token, p = 1 = GRPO per-token clip, seq-mean-token-mean',
  },
  {
    id: 'holder-token-p0-gmpo',
    a: 'holder_po',
    b: 'gmpo',
    setA: { variant: 1, p: 0, p_schedule: 0, eps_low: 1 - Math.exp(-0.4), eps_high: Math.exp(0.4) - 1 },
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-pg.md Appendix A: HölderPO-token, p → 0 = GMPO (bounds log(1±eps) instead of ±eps)',
  },
  {
    id: 'ctpo-current-token-dapo',
    a: 'ctpo',
    b: 'dapo',
    setA: { cumulative: 0, la: 0 },
    setB: { eps_high: 0.2, clip_c: 3 },
    assume: ['logp - old_logp < 10', 'logp - old_logp > -20'],
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-pg.md Appendix A: CTPO with K_t := d_t = PPO/GRPO token loss; ctpo header',
  },
  {
    id: 'ctpo-current-token-dapo-extreme-ratios',
    a: 'ctpo',
    b: 'dapo',
    setA: { cumulative: 0, la: 0 },
    setB: { eps_high: 0.2, clip_c: 3 },
    mode: 'grad',
    expect: 'different',
    source: 'ctpo header (authors\' code)',
    note: 'CTPO clamps the log-ratio inside sg(·), so a token with log-ratio below -20 still gets a (tiny) gradient where verl\'s clamp passes none',
  },
  {
    id: 'dhpo-w1-grpo',
    a: 'dhpo',
    b: 'grpo',
    setA: { w_tok: 1 },
    setB: { beta: 0 },
    mode: 'both',
    expect: 'equivalent',
    source: 'dhpo header; methods-pg.md Appendix A: DHPO w = 1 = GRPO',
  },
  {
    id: 'dhpo-w0-gspo',
    a: 'dhpo',
    b: 'gspo',
    setA: { w_tok: 0 },
    mode: 'both',
    expect: 'proved',
    source: 'dhpo header; methods-pg.md Appendix A: DHPO w = 0 = GSPO',
  },
  {
    id: 'balanced-agg-equal-lengths',
    a: 'balanced_agg',
    b: 'dapo',
    setB: { eps_high: 0.2, clip_c: 3 },
    assume: ['length == max(length)', 'group_size=2'],
    mode: 'both',
    expect: 'equivalent',
    source: 'methods-pg.md Appendix A: BA, equal lengths = token-mean = seq-mean-token-mean',
  },
  {
    id: 'cispo-on-policy-reinforce',
    a: 'cispo',
    b: `${OBJ}/reinforce_token_mean.credo`,
    assume: ['on_policy'],
    mode: 'grad',
    expect: 'proved',
    source: 'cispo header; methods-pg.md §B.8',
  },
  {
    id: 'gmpo-on-policy-grpo',
    a: 'gmpo',
    b: 'grpo',
    setB: { beta: 0 },
    assume: ['on_policy'],
    mode: 'grad',
    expect: 'equivalent',
    source: 'gmpo header: on-policy = GRPO without KL (the REINFORCE gradient with seq-mean-token-mean)',
  },
  {
    id: 'dr-grpo-oat-vs-verl-fixed-batch',
    a: 'dr_grpo',
    b: 'dr_grpo',
    setA: { divide_by_seqs: 1 },
    setB: { divide_by_seqs: 0 },
    assume: ['num_seqs == 4'],
    mode: 'both',
    upToScale: true,
    expect: 'equivalent',
    source: 'methods-pg.md §0.1/§B.4: Dr.GRPO in verl vs OAT differ by a constant factor',
    note: 'verl = B·OAT; a constant only for a fixed number of sequences B',
  },
  {
    id: 'dr-grpo-oat-vs-verl',
    a: 'dr_grpo',
    b: 'dr_grpo',
    setA: { divide_by_seqs: 1 },
    setB: { divide_by_seqs: 0 },
    mode: 'both',
    upToScale: true,
    expect: 'different',
    source: 'methods-pg.md §0.1',
    note: 'the factor is the number of sequences, so across batch sizes no single constant relates them',
  },
];

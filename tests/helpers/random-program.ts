/**
 * Random well-typed Credo programs for property tests. A program reads token inputs `logp` and
 * `old_logp` (both `grad`), `ref_logp`, the seq input `reward` and the group input `gin`, and its
 * loss sums a few batch-level reductions of random expressions. Every built-in family appears:
 * elementwise math, where/clip/min/max, reductions per seq/group/batch with filters, scans,
 * shifts, quantiles, sizes and schedules. The generator is seeded, so a failing seed reproduces.
 */
import { mulberry32 } from '../../runtime/batch/synthetic.js';

type Level = 'token' | 'seq' | 'group' | 'batch';
const FINER: Record<Level, Level[]> = {
  token: [],
  seq: ['token'],
  group: ['token', 'seq'],
  batch: ['token', 'seq', 'group'],
};
const LEAVES: Record<Level, string[]> = {
  token: ['logp', 'old_logp', 'ref_logp', 'position'],
  seq: ['reward', 'length'],
  group: ['gin', 'group_size'],
  batch: ['p1', 'p2', '0.5', '2', 'num_seqs', 'linear(1, 2)', 'cosine(0.1, 1)', 'piecewise(0, 1, 5, 2)'],
};

export interface GenOptions {
  /** Leave out `sg`, which finite differences cannot see. */
  readonly noStopGradient?: boolean;
}

export function randomProgram(seed: number, opts: GenOptions = {}): string {
  const rng = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];
  const coarserOrEqual = (l: Level): Level[] =>
    (['token', 'seq', 'group', 'batch'] as Level[]).filter(
      (x) => ['token', 'seq', 'group', 'batch'].indexOf(x) >= ['token', 'seq', 'group', 'batch'].indexOf(l),
    );

  const cond = (level: Level, depth: number): string => {
    const l = pick(coarserOrEqual(level));
    return `${expr(l, depth - 1)} ${pick(['>', '<', '>='])} ${expr(l, depth - 1)}`;
  };

  const expr = (level: Level, depth: number): string => {
    if (depth <= 0 || rng() < 0.2) return pick(LEAVES[pick(coarserOrEqual(level))]);
    const r = rng();
    const sub = () => expr(level, depth - 1);
    if (r < 0.2) return `(${sub()} ${pick(['+', '-', '*'])} ${sub()})`;
    if (r < 0.3) return `${sub()} / (1 + ${sub()} ^ 2)`;
    if (r < 0.45) {
      const f = pick([
        'tanh',
        'sigmoid',
        'softplus',
        'logsigmoid',
        'abs',
        'exp_c',
        'log_s',
        'sqrt_s',
        'relu',
        'cos',
        'expm1_c',
        'log1p_s',
      ]);
      if (f === 'exp_c') return `exp(clip(${sub()}, -4, 4))`;
      if (f === 'expm1_c') return `expm1(clip(${sub()}, -4, 4))`;
      if (f === 'log_s') return `log(softplus(${sub()}) + 0.1)`;
      if (f === 'log1p_s') return `log1p(${sub()} ^ 2)`;
      if (f === 'sqrt_s') return `sqrt(1 + ${sub()} ^ 2)`;
      return `${f}(${sub()})`;
    }
    if (r < 0.55) {
      const f = pick(['min', 'max', 'clip', 'where', 'pow']);
      if (f === 'clip') return `clip(${sub()}, -1, ${pick(['1', '0.5', 'p1'])})`;
      if (f === 'where') return `where(${cond(level, depth)}, ${sub()}, ${sub()})`;
      if (f === 'pow') return `pow(softplus(${sub()}) + 0.5, ${pick(['2', '0.5', '-1', 'p2'])})`;
      return `${f}(${sub()}, ${sub()})`;
    }
    if (r < 0.8 && FINER[level].length) {
      const from = pick(FINER[level]);
      const f = pick([
        'sum',
        'mean',
        'max',
        'min',
        'var_pop',
        'var_unbiased',
        'std_pop',
        'std_unbiased',
        'logsumexp',
        'quantile',
        'count',
      ]);
      const per = level === 'batch' && rng() < 0.5 ? '' : ` per ${level}`;
      const where = rng() < 0.3 ? ` where ${cond(from, depth - 1)}` : '';
      // adding a leaf of exactly the source level keeps the argument from being coarser than `from`
      const arg = `(${expr(from, depth - 1)} + ${pick(LEAVES[from])})`;
      if (f === 'quantile') return `quantile(${arg}, ${pick(['0.3', '0.5', '0.9'])}${per}${where})`;
      if (f === 'count') return `count(${arg} > 0${per}${where})`;
      return `${f}(${arg}${per}${where})`;
    }
    if (level === 'token') {
      const f = pick([
        'cumsum',
        'rcumsum',
        'cumprod',
        'rcumprod',
        'discounted',
        'scan',
        'next',
        'prev',
        'sg',
        'keyed',
        'keyed',
      ]);
      if (f === 'keyed') {
        const key = pick(['position', 'floor(position / 2)', 'prefix_id(floor(2 * sigmoid(ref_logp)))', 'length']);
        const where = rng() < 0.3 ? ` where ${cond('token', depth - 1)}` : '';
        return `${pick(['sum', 'mean', 'max', 'min'])}((${sub()} + logp) per ${pick(['seq', 'group', 'batch'])} by ${key}${where})`;
      }
      if (f === 'sg' && opts.noStopGradient) return sub();
      if (f === 'cumprod' || f === 'rcumprod') return `${f}(0.5 + sigmoid(${sub()}))`;
      if (f === 'discounted' || f === 'scan') return `${f}(${sub()}, sigmoid(${sub()}))`;
      if (f === 'next' || f === 'prev') return `${f}(${sub()}, ${pick(['0', '1', '-2'])})`;
      return `${f}(${sub()})`;
    }
    return `(${sub()} + ${sub()})`;
  };

  const lets: string[] = [];
  const terms: string[] = [];
  const nLets = 1 + Math.floor(rng() * 3);
  for (let i = 0; i < nLets; i++) {
    const level = pick(['token', 'token', 'seq', 'group'] as Level[]);
    lets.push(`let v${i} = ${expr(level, 3)} + ${pick(LEAVES[level])}`);
    terms.push(
      `${pick(['mean', 'sum', 'max', 'logsumexp'])}(v${i}${level === 'token' && rng() < 0.3 ? ' where logp > -2' : ''})`,
    );
  }
  terms.push(`mean(logp * ${expr('token', 2)})`);
  return [
    'objective random',
    'param p1 = 0.7',
    'param p2 = 1.5',
    'input logp : token grad',
    'input old_logp : token grad',
    'input ref_logp : token',
    'input reward : seq',
    'input gin : group',
    'mask mask : token',
    ...lets,
    `loss = ${terms.join(' + ')}`,
    `metric m = mean(v0)`,
    `export e = v0`,
  ].join('\n');
}

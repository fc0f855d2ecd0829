/**
 * Random batches in the diffusion-LM convention (docs/batch.md): a group is a prompt, each sequence
 * a *view* of one response (one trajectory step or one sampled timestep). `response : seq i32` says
 * which response of the group a view belongs to, `t : seq` in (0, 1] is its masking level, and
 * every per-response value (`reward`, `resp_len`) is equal over the views of a response. The
 * token mask is the set of positions that count for the view (masked / newly unmasked ones).
 *
 * Views:
 *   - 'trajectory': S steps (1 … maxSteps, one S per batch), step k at t = 1 − k/S; a random subset
 *     of the steps (the same for every response, at least one) is kept, as MDPO's step selection;
 *   - 'one': one view per response at t = 1 (the d1 one-step setting, S = 1);
 *   - 'random': 1 … maxSteps views per response at random t in (0.05, 1] (GDPO's quadrature nodes).
 *
 * Per-step rewards (MDPO) come from one reward matrix r[response][k] over all S steps, kept or not:
 * `step_reward` = r_k, `prev_reward` = r_{k−1} (0 at k = 0), `future_reward` = mean(r_{k+1 … S−1})
 * (r_{S−1} at the last step), and `reward` = r_{S−1} (the final reward). Values are float32 numbers
 * drawn from a seeded generator (no shrinking below the structure).
 */
import fc from 'fast-check';
import { offsetsFromLengths, type HostTensor, type InputSpec, type RaggedBatch } from '../../core/batch/batch.js';
import { mulberry32 } from '../../runtime/batch/synthetic.js';

export type ViewMode = 'trajectory' | 'one' | 'random';

export interface DiffusionArbOpts {
  views?: ViewMode;
  maxSteps?: number;
  maxGroups?: number;
  maxResponses?: number;
  maxLen?: number;
  /** Log-ratios of ±50 among the draws (default true); off for finite differences of unclamped exps. */
  extreme?: boolean;
  /** Only small log-ratios, uniform in ±0.1 (finite differences through a sequence-level exp of a sum). */
  mild?: boolean;
  /** Smallest random t ('random' views; default 0.05). */
  tMin?: number;
}

interface View {
  group: number;
  response: number; // index of the response in its group
  respGlobal: number; // index over the batch
  k: number; // step index (trajectory), else view index
  t: number;
}

/** A random diffusion batch holding every input of `inputs`. */
export function arbDiffusion(inputs: readonly InputSpec[], opts: DiffusionArbOpts = {}): fc.Arbitrary<RaggedBatch> {
  const mode = opts.views ?? 'trajectory';
  const maxSteps = opts.maxSteps ?? 4;
  return fc
    .record({
      seed: fc.integer({ min: 0, max: 0x7fffffff }),
      groups: fc.integer({ min: 1, max: opts.maxGroups ?? 3 }),
      steps: fc.integer({ min: 1, max: mode === 'one' ? 1 : maxSteps }),
      shuffle: fc.boolean(),
      rewardKind: fc.constantFrom('binary', 'uniform', 'equal'),
    })
    .map(({ seed, groups, steps, shuffle, rewardKind }) =>
      build(inputs, { ...opts, views: mode }, seed, groups, steps, shuffle, rewardKind),
    );
}

function build(
  inputs: readonly InputSpec[],
  opts: DiffusionArbOpts,
  seed: number,
  G: number,
  S: number,
  shuffle: boolean,
  rewardKind: string,
): RaggedBatch {
  const u = mulberry32(seed);
  const f = Math.fround;
  const unif = (lo: number, hi: number) => f(lo + (hi - lo) * u());
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(u() * xs.length)]!;
  const maxLen = opts.maxLen ?? 5;

  // the kept steps (trajectory mode), the same for every response of the batch
  let kept = Array.from({ length: S }, (_, k) => k);
  if (opts.views === 'trajectory') {
    kept = kept.filter(() => u() < 0.75);
    if (!kept.length) kept = [Math.floor(u() * S)];
  }

  // responses, their rewards and their per-step reward matrix
  const respPerGroup = Array.from({ length: G }, () => 1 + Math.floor(u() * (opts.maxResponses ?? 4)));
  const drawReward = () => (rewardKind === 'binary' ? pick([0, 1]) : unif(-1, 1));
  const equalR = drawReward();
  const matrix: number[][] = []; // by global response: r_0 … r_{S−1}
  const respLen: number[] = [];
  const views: View[] = [];
  let respGlobal = 0;
  for (let g = 0; g < G; g++) {
    const order: View[] = [];
    for (let r = 0; r < respPerGroup[g]!; r++, respGlobal++) {
      matrix.push(Array.from({ length: S }, () => (rewardKind === 'equal' ? equalR : drawReward())));
      respLen.push(1 + Math.floor(u() * 8));
      if (opts.views === 'random') {
        const n = 1 + Math.floor(u() * S);
        for (let k = 0; k < n; k++)
          order.push({ group: g, response: r, respGlobal, k, t: u() < 0.2 ? 1 : unif(opts.tMin ?? 0.05, 1) });
      } else for (const k of kept) order.push({ group: g, response: r, respGlobal, k, t: f(1 - k / S) });
    }
    if (shuffle)
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(u() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
    views.push(...order);
  }

  const numSeqs = views.length;
  const lengths = views.map(() => Math.floor(u() * (maxLen + 1)));
  const T = lengths.reduce((a, b) => a + b, 0);
  const mask = Uint8Array.from({ length: T }, () => (u() < 0.25 ? 0 : 1));
  const logRatio = () =>
    opts.mild
      ? unif(-0.1, 0.1)
      : pick([
          () => 0,
          () => unif(-0.3, 0.3),
          () => unif(-2, 2),
          () => pick(opts.extreme === false ? [5, -5, 3, -3] : [5, -5, 50, -50]),
        ])();
  const logp = Array.from({ length: T }, () => unif(-5, 0));
  const schedLogp = views.map(() => unif(-3, 0));
  // response ids: distinct per group, not 0 … R−1 (only equality matters)
  const respId = (v: View) => 3 * v.response + (v.group % 2);
  const final = (v: View) => matrix[v.respGlobal]![S - 1]!;

  const seqValue = (name: string, v: View, s: number): number => {
    const row = matrix[v.respGlobal]!;
    switch (name) {
      case 'response':
        return respId(v);
      case 't':
        return v.t;
      case 'reward':
        return final(v);
      case 'step_reward':
        return row[v.k]!;
      case 'prev_reward':
        return v.k > 0 ? row[v.k - 1]! : 0;
      case 'future_reward':
        return v.k < S - 1 ? f(row.slice(v.k + 1).reduce((a, b) => a + b, 0) / (S - 1 - v.k)) : row[S - 1]!;
      case 'resp_len':
        return respLen[v.respGlobal]!;
      case 'elbo_w':
        return unif(0.05, 1);
      case 'sched_logp':
        return schedLogp[s]!;
      case 'old_sched_logp':
        return f(schedLogp[s]! - logRatio());
      default:
        return unif(-3, 3);
    }
  };

  const tensors = new Map<string, HostTensor>();
  for (const spec of inputs) {
    let data: number[];
    if (spec.level === 'token') {
      if (spec.name === 'logp') data = logp;
      else if (spec.name === 'old_logp' || spec.name === 'ref_logp') data = logp.map((x) => f(x - logRatio()));
      else if (spec.name === 'conf') data = logp.map(() => unif(0.01, 1));
      else data = logp.map(() => unif(-3, 3));
    } else if (spec.level === 'seq') {
      data = views.map((v, s) => seqValue(spec.name, v, s));
      if (spec.dtype === 'bool') data = data.map((x) => (x > 0 ? 1 : 0));
    } else if (spec.level === 'group') data = Array.from({ length: G }, () => unif(-1, 1));
    else throw new Error(`arbDiffusion: no values for ${spec.level} input ${spec.name}`);
    tensors.set(spec.name, { level: spec.level, dtype: spec.dtype, data: Float64Array.from(data) });
  }

  return {
    numTokens: T,
    numSeqs,
    numGroups: G,
    vocabSize: 0,
    offsets: offsetsFromLengths(lengths),
    groupOf: Int32Array.from(views.map((v) => v.group)),
    groupIds: Array.from({ length: G }, (_, g) => g),
    mask,
    tensors,
    layout: { kind: 'packed' as const },
  };
}

/**
 * stdlib/trl_grpo.credo (TRL GRPOTrainer's loss types) against tests/reference/trl_grpo.ts, the
 * reference's gradient against finite differences (stop-gradient values held fixed), and the
 * special cases of the header.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { offsetsFromLengths, type HostTensor, type RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { sequencesByGroup, validTokensOf } from '../reference/family.js';
import { TRL_GRPO_DEFAULTS, trlAdvantages, trlGrpoRef, type TrlGrpoParams } from '../reference/trl_grpo.js';
import { arbFor, expectFamilyAgreement, fdFailures } from './family-helpers.js';

const trl = compile('trl_grpo');

/** Random params covering every code of every mode param, kept within the objective's requirements. */
const params: fc.Arbitrary<TrlGrpoParams> = fc
  .record({
    loss_type: fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7),
    is_level: fc.constantFrom(0, 1, 2),
    scale_rewards: fc.constantFrom(0, 1, 2),
    epsilon: fc.constantFrom(0.2, 0.1),
    epsilon_high: fc.constantFrom(-1, 0.28, 5),
    delta: fc.constantFrom(0, 0, 1.5, 0.9),
    beta: fc.constantFrom(0, 0, 0.04),
    adv_eps: fc.constantFrom(1e-4, 1e-6),
    top_entropy_quantile: fc.constantFrom(1, 1, 0.2, 0),
    max_completion_length: fc.constantFrom(512, 8),
    num_items: fc.constantFrom(0, 0, 37),
    num_processes: fc.constantFrom(1, 1, 4),
    ga_steps: fc.constantFrom(1, 1, 3),
    sapo_temperature_pos: fc.constantFrom(1.0, 2),
    sapo_temperature_neg: fc.constantFrom(1.05, 0.5),
    vespo_k_pos: fc.constantFrom(2, 1),
    vespo_lambda_pos: fc.constantFrom(3, 0.5),
    vespo_k_neg: fc.constantFrom(3, 0.5),
    vespo_lambda_neg: fc.constantFrom(2, 1),
    vllm_is_mode: fc.constantFrom(0, 0, 1, 2, 3, 4),
    vllm_is_max: fc.constantFrom(3, 1.2),
    vllm_is_min: fc.constantFrom(0, 0.5),
    off_policy_threshold: fc.constantFrom(1e30, 1e30, 0.1, -0.5),
    bias_correction_kl: fc.constantFrom(0, 1),
  })
  .map((p): TrlGrpoParams => {
    if (p.loss_type === 6)
      return { ...p, is_level: 1, beta: 0, top_entropy_quantile: 1, vllm_is_mode: p.vllm_is_mode % 3 === 0 ? 0 : 4 };
    if (p.is_level === 2 && p.loss_type > 3) return { ...p, is_level: 0 };
    return p;
  });

const batches = arbFor(trl);
const run = (b: RaggedBatch, p: Partial<TrlGrpoParams> = {}) => trl.run(b, { params: p as Record<string, number> });

/** The batch with tensor `name` replaced. */
const withTensor = (b: RaggedBatch, name: string, data: ArrayLike<number>): RaggedBatch => {
  const tensors = new Map(b.tensors);
  tensors.set(name, { ...b.tensors.get(name)!, data: Float64Array.from(data) });
  return { ...b, tensors };
};
/** The batch with each of `names` within ±c of logp (log-ratios clamped). */
const moderate = (b: RaggedBatch, names: string[], c: number): RaggedBatch => {
  const lp = b.tensors.get('logp')!.data;
  return names.reduce(
    (x, n) =>
      withTensor(
        x,
        n,
        Array.from(x.tensors.get(n)!.data, (v, t) => lp[t]! - Math.min(Math.max(lp[t]! - v, -c), c)),
      ),
    b,
  );
};
const onPolicy = (b: RaggedBatch) => withTensor(b, 'old_logp', b.tensors.get('logp')!.data);

/** The sub-batch of the given sequences (whole groups keep their advantages). */
function subBatch(b: RaggedBatch, keep: number[]): RaggedBatch {
  const lengths = keep.map((s) => b.offsets[s + 1]! - b.offsets[s]!);
  const toks = keep.flatMap((s) => Array.from({ length: lengths[keep.indexOf(s)]! }, (_, k) => b.offsets[s]! + k));
  const groups = [...new Set(keep.map((s) => b.groupOf[s]!))];
  const tensors = new Map<string, HostTensor>();
  for (const [name, t] of b.tensors)
    tensors.set(name, {
      ...t,
      data: Float64Array.from(t.level === 'token' ? toks.map((i) => t.data[i]!) : keep.map((s) => t.data[s]!)),
    });
  return {
    ...b,
    numTokens: toks.length,
    numSeqs: keep.length,
    numGroups: groups.length,
    offsets: offsetsFromLengths(lengths),
    groupOf: Int32Array.from(keep.map((s) => groups.indexOf(b.groupOf[s]!))),
    groupIds: groups.map((g) => b.groupIds[g]!),
    mask: Uint8Array.from(toks.map((i) => b.mask[i]!)),
    tensors,
  };
}

describe('trl_grpo equals its reference', () => {
  it('equals its reference on 200 random batches and params (every loss_type, is_level, scale_rewards, vllm_is_mode; tol 1e-9)', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(batches, params, (b0, p) => {
        // k·c1 (bias-corrected KL) has the gradient c1·(1 − e^k) + c1·(e^k − k − 1): at a ref log-ratio of
        // ±50 both terms are 1e21 and their sum is rounding noise in float64 (TRL's autograd alike)
        const b = p.bias_correction_kl && p.beta ? moderate(b0, ['ref_logp'], 5) : b0;
        seen.add(`lt${p.loss_type}`).add(`lvl${p.is_level}`).add(`sr${p.scale_rewards}`).add(`is${p.vllm_is_mode}`);
        expectFamilyAgreement(trl, b, trlGrpoRef(b, p), p as unknown as Record<string, number>);
      }),
      { numRuns: 200 },
    );
    expect(seen.size).toBe(8 + 3 + 3 + 5);
  });

  it("the reference's hand-derived gradients equal finite differences of its loss (stop-gradient values held)", () => {
    let checked = 0;
    fc.assert(
      fc.property(batches, params, (b0, p) => {
        // moderate log-ratios: with a ratio of e^50 the loss is 1e21 and a difference quotient of it is noise
        const b = moderate(b0, ['old_logp', 'ref_logp', 'sampling_logp'], 3);
        const { frozen } = trlGrpoRef(b, p);
        const r = fdFailures((x) => trlGrpoRef(x, p, frozen), b);
        checked += r.checked;
        expect(r.failures).toEqual([]);
      }),
      { numRuns: 60 },
    );
    expect(checked).toBeGreaterThan(0);
  });
});

describe('trl_grpo special cases', () => {
  it('a fully masked batch: loss 0, gradient 0, every metric 0 but the entropy mean', () => {
    for (const b of fc.sample(batches, { numRuns: 20, seed: 3 })) {
      for (const loss_type of [0, 1, 2, 3, 4, 5, 7]) {
        const r = run({ ...b, mask: new Uint8Array(b.numTokens) }, { loss_type, beta: 0.04 });
        expect(r.loss).toBe(0);
        expect(Array.from(r.grads.logp!.data).every((g) => g === 0)).toBe(true);
        for (const k of ['clip_ratio_low_mean', 'clip_ratio_high_mean', 'clip_ratio_low_min', 'kl', 'entropy'])
          expect(r.metrics[k]).toBe(0);
      }
    }
  });

  it('a group of one has advantage 0 in every scale_rewards mode (TRL: NaN std → nan_to_num → 0)', () => {
    let seen = 0;
    fc.assert(
      fc.property(batches, fc.constantFrom(0, 1, 2), (b, scale_rewards) => {
        const adv = run(b, { scale_rewards }).exports.advantage!.data;
        for (const seqs of sequencesByGroup(b))
          if (seqs.length === 1) {
            seen++;
            expect(adv[seqs[0]!]).toBe(0);
          }
      }),
      { numRuns: 100 },
    );
    expect(seen).toBeGreaterThan(0);
  });

  it('scale_rewards batch divides by the batch std, group by the group std: equal on one group, different on several', () => {
    let differs = false;
    fc.assert(
      fc.property(batches, (b) => {
        const g = trlAdvantages(b, 0, 1e-4);
        const a = run(b, { scale_rewards: 1 }).exports.advantage!.data;
        const one = b.numGroups === 1;
        if (one) expectVecClose(a, g, 'one group');
        else if (Array.from(a).some((x, s) => !close(x, g[s]!, 1e-6))) differs = true;
      }),
      { numRuns: 150 },
    );
    expect(differs).toBe(true);
  });

  it('on-policy every ratio loss type is REINFORCE with its aggregation weight, at every is_level', () => {
    fc.assert(
      fc.property(batches, fc.constantFrom(0, 1, 2, 3, 5), fc.constantFrom(0, 1, 2), (b0, loss_type, is_level) => {
        const b = onPolicy(b0);
        const p = { ...TRL_GRPO_DEFAULTS, loss_type, is_level: is_level === 2 && loss_type > 3 ? 0 : is_level };
        const A = trlAdvantages(b, 0, 1e-4);
        const N = Math.max(
          1,
          Array.from(b.mask).reduce((x, v) => x + v, 0),
        );
        const want = new Array<number>(b.numTokens).fill(0);
        for (let s = 0; s < b.numSeqs; s++) {
          const ts = validTokensOf(b, s);
          const w =
            loss_type === 0 || loss_type === 5
              ? 1 / (b.numSeqs * Math.max(ts.length, 1))
              : loss_type === 1
                ? 1 / (b.numSeqs * 512)
                : 1 / N;
          for (const t of ts) want[t] = -A[s]! * w;
        }
        expectVecClose(run(b, p).grads.logp!.data, want, 'grad logp');
      }),
      { numRuns: 100 },
    );
  });

  it('bnpo on one accumulation step is dapo with num_items = 0; with num_items set they differ', () => {
    let differs = false;
    fc.assert(
      fc.property(batches, fc.constantFrom(0, 1, 2), (b, is_level) => {
        const a = run(b, { loss_type: 3, is_level });
        const d = run(b, { loss_type: 2, is_level });
        expect(close(a.loss, d.loss)).toBe(true);
        expectVecClose(a.grads.logp!.data, Array.from(d.grads.logp!.data), 'grad');
        const n = run(b, { loss_type: 2, is_level, num_items: 1000 });
        if (!close(n.loss, a.loss, 1e-6)) differs = true;
      }),
      { numRuns: 100 },
    );
    expect(differs).toBe(true);
  });

  it('dapo with num_items = all valid tokens: the micro-batches of a gradient-accumulation step sum to the full batch; bnpo with ga_steps = 2 does not', () => {
    let bnpoDiffers = false;
    let split = 0;
    fc.assert(
      fc.property(batches, (b) => {
        const groups = sequencesByGroup(b);
        if (groups.length < 2) return;
        split++;
        const half = Math.ceil(groups.length / 2);
        const m1 = subBatch(b, groups.slice(0, half).flat());
        const m2 = subBatch(b, groups.slice(half).flat());
        const N = Array.from(b.mask).reduce((x, v) => x + v, 0);
        const full = run(b, { loss_type: 2 });
        const r1 = run(m1, { loss_type: 2, num_items: N });
        const r2 = run(m2, { loss_type: 2, num_items: N });
        expect(close(r1.loss + r2.loss, full.loss)).toBe(true);
        const g = [...Array.from(r1.grads.logp!.data), ...Array.from(r2.grads.logp!.data)];
        const order = [...groups.slice(0, half).flat(), ...groups.slice(half).flat()].flatMap((s) =>
          Array.from({ length: b.offsets[s + 1]! - b.offsets[s]! }, (_, k) => b.offsets[s]! + k),
        );
        const gf = Array.from(full.grads.logp!.data);
        expectVecClose(
          g,
          order.map((t) => gf[t]!),
          'grad',
        );
        const bn = run(m1, { loss_type: 3, ga_steps: 2 }).loss + run(m2, { loss_type: 3, ga_steps: 2 }).loss;
        if (!close(bn, full.loss, 1e-6)) bnpoDiffers = true;
      }),
      { numRuns: 100 },
    );
    expect(split).toBeGreaterThan(0);
    expect(bnpoDiffers).toBe(true);
  });

  it('luspo at is_level 1 is dr_grpo at is_level 1 with max_completion_length = 1', () => {
    fc.assert(
      fc.property(batches, fc.constantFrom(0, 1.5), fc.constantFrom(0, 4), (b, delta, vllm_is_mode) => {
        const a = run(b, { loss_type: 6, is_level: 1, delta, vllm_is_mode });
        const d = run(b, { loss_type: 1, is_level: 1, delta, vllm_is_mode, max_completion_length: 1 });
        expect(close(a.loss, d.loss)).toBe(true);
        expectVecClose(a.grads.logp!.data, Array.from(d.grads.logp!.data), 'grad');
      }),
      { numRuns: 100 },
    );
  });

  it('top_entropy_quantile = 0 keeps only the highest-entropy tokens in the policy term', () => {
    fc.assert(
      fc.property(batches, (b) => {
        const H = b.tensors.get('entropy')!.data;
        let hmax = -Infinity;
        for (let t = 0; t < b.numTokens; t++) if (b.mask[t]) hmax = Math.max(hmax, H[t]!);
        const g = run(b, { top_entropy_quantile: 0 }).grads.logp!.data;
        for (let t = 0; t < b.numTokens; t++) if (H[t]! < hmax) expect(g[t]).toBe(0);
        const full = run(b).grads.logp!.data;
        for (let t = 0; t < b.numTokens; t++) if (b.mask[t] && H[t] === hmax) expect(close(g[t]!, full[t]!)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it("cispo's default cap is epsilon_high = epsilon = 0.2 (an absolute cap on the ratio, not 1 + ε)", () => {
    fc.assert(
      fc.property(batches, (b) => {
        const g = run(b, { loss_type: 4 }).grads.logp!.data;
        const A = trlAdvantages(b, 0, 1e-4);
        const lp = b.tensors.get('logp')!.data;
        const old = b.tensors.get('old_logp')!.data;
        const N = Math.max(
          1,
          Array.from(b.mask).reduce((x, v) => x + v, 0),
        );
        for (let s = 0; s < b.numSeqs; s++)
          for (const t of validTokensOf(b, s))
            expect(close(g[t]!, (-Math.min(Math.exp(lp[t]! - old[t]!), 0.2) * A[s]!) / N)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('a delta above every ratio changes nothing; off_policy_threshold = 1e30 keeps every sequence', () => {
    fc.assert(
      fc.property(batches, fc.constantFrom(0, 1, 2, 3), (b, loss_type) => {
        const base = run(b, { loss_type });
        const lp = b.tensors.get('logp')!.data;
        const old = b.tensors.get('old_logp')!.data;
        let cmax = 1;
        for (let t = 0; t < b.numTokens; t++) cmax = Math.max(cmax, Math.exp(lp[t]! - old[t]!));
        const d = run(b, { loss_type, delta: 2 * cmax });
        expect(close(d.loss, base.loss)).toBe(true);
        const o = run(b, { loss_type, off_policy_threshold: -1e30 });
        // with a threshold below every KL, the sequences with A < 0 drop out
        const A = trlAdvantages(b, 0, 1e-4);
        const g = o.grads.logp!.data;
        for (let s = 0; s < b.numSeqs; s++) if (A[s]! < 0) for (const t of validTokensOf(b, s)) expect(g[t]).toBe(0);
      }),
      { numRuns: 100 },
    );
  });
});

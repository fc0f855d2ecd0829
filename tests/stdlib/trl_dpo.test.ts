/**
 * stdlib/trl_dpo.credo (TRL DPOTrainer: every loss_type, f_divergence_type, ld_alpha, use_weighting)
 * against tests/reference/trl_dpo.ts, the reference's gradient against finite differences, and the
 * special cases of its header.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { close, expectVecClose } from '../helpers/expect.js';
import { pairs, validTokensOf } from '../reference/family.js';
import { LOSS_TYPES, trlDpoRef, type TrlDpoParams } from '../reference/trl_dpo.js';
import { arbFor, itAgreesWithFamilyRef, itHasFdGradients } from './family-helpers.js';

const trl = compile('trl_dpo');
const dpo = compile('dpo');
const ipo = compile('ipo');
const sft = compile('sft');

/** Random params with a fixed loss_type (TRL's own refusals avoided: exo_pair needs ε > 0, aot no weighting). */
const paramsFor = (loss_type: fc.Arbitrary<number>): fc.Arbitrary<TrlDpoParams> =>
  fc
    .record({
      beta: fc.constantFrom(0.1, 0.5, 2),
      loss_type,
      label_smoothing: fc.constantFrom(0, 0.1, 0.3),
      discopop_tau: fc.constantFrom(0.05, 1),
      f_divergence: fc.constantFrom(0, 1, 2, 3, 4),
      f_alpha_divergence_coef: fc.constantFrom(0.5, 1, 0, 2),
      use_weighting: fc.constantFrom(0, 1),
      ld_alpha: fc.constantFrom(1, 0.5, 0),
      bco_delta: fc.constantFrom(0, 0.3),
    })
    .map((p) => ({
      ...p,
      label_smoothing: p.loss_type === 3 && p.label_smoothing === 0 ? 1e-3 : p.label_smoothing,
      use_weighting: p.loss_type === 8 || p.loss_type === 9 ? 0 : p.use_weighting,
    }));

const CODES = [...LOSS_TYPES.keys(), 15]; // 15: an unknown code behaves as sigmoid

const set = (b: RaggedBatch, name: string, data: Float64Array): RaggedBatch => {
  const tensors = new Map(b.tensors);
  tensors.set(name, { ...b.tensors.get(name)!, data });
  return { ...b, tensors };
};
const expectSame = (x: ReturnType<typeof trl.run>, y: ReturnType<typeof trl.run>, what: string) => {
  expect(close(x.loss, y.loss), `${what}: loss ${x.loss} vs ${y.loss}`).toBe(true);
  expectVecClose(x.grads.logp!.data, Array.from(y.grads.logp!.data), `${what}: grad logp`);
};
const lengths = (b: RaggedBatch) => [...Array(b.numSeqs).keys()].map((s) => validTokensOf(b, s).length);

/**
 * Batches for the finite differences: token log-ratios within ±0.3, so that exp(±lr) of the
 * forward_kl / alpha scores stays small and the loss's rounding stays far below the FD step's effect.
 */
const fdBatches = arbFor(trl).map((b) => {
  const logp = b.tensors.get('logp')!.data;
  const ref = b.tensors.get('ref_logp')!.data.map((r, t) => logp[t]! - Math.max(-0.3, Math.min(0.3, logp[t]! - r)));
  return set(b, 'ref_logp', ref);
});

describe('trl_dpo equals its reference', () => {
  for (const code of CODES) {
    const name = LOSS_TYPES[code] ?? 'unknown code';
    describe(`loss_type ${code} (${name})`, () => {
      // discopop: exp(−βd)·σ(βd/τ) is ∞·0 = NaN below βd ≈ −709 in float64 (TRL: −88 in float32), see below
      const batches = code === 12 ? fdBatches : undefined;
      itAgreesWithFamilyRef(trl, trlDpoRef, paramsFor(fc.constant(code)), { numRuns: 100, batches });
      itHasFdGradients(
        trl,
        trlDpoRef,
        paramsFor(fc.constant(code)).map((p) => ({ ...p, use_weighting: 0 })), // W is detached: FD would see it
        { numRuns: 20, batches: fdBatches },
      );
    });
  }
});

describe('trl_dpo special cases', () => {
  const arb = arbFor(trl);

  it('loss_type 0 (sigmoid) is dpo, and ignores label_smoothing as TRL does since its refactor', () => {
    fc.assert(
      fc.property(arb, fc.constantFrom(0.1, 2), fc.constantFrom(0, 0.1), (b, beta, ls) => {
        expectSame(trl.run(b, { params: { beta, label_smoothing: ls } }), dpo.run(b, { params: { beta } }), 'sigmoid');
      }),
      { numRuns: 100 },
    );
  });

  it('loss_type 2 (ipo) is ipo, length-normalised', () => {
    fc.assert(
      fc.property(arb, fc.constantFrom(0.1, 0.5), (b, beta) => {
        expectSame(trl.run(b, { params: { beta, loss_type: 2 } }), ipo.run(b, { params: { beta } }), 'ipo');
      }),
      { numRuns: 100 },
    );
  });

  it('robust with ε = 0 is sigmoid; with ε > 0 it is not dpo’s conservative form', () => {
    let differs = false;
    fc.assert(
      fc.property(arb, (b) => {
        expectSame(trl.run(b, { params: { loss_type: 5 } }), trl.run(b), 'robust ε = 0');
        const gap = Math.abs(
          trl.run(b, { params: { loss_type: 5, label_smoothing: 0.1 } }).loss -
            dpo.run(b, { params: { label_smoothing: 0.1 } }).loss,
        );
        if (gap > 1e-6) differs = true;
      }),
      { numRuns: 100 },
    );
    expect(differs).toBe(true);
  });

  it('aot and aot_unpaired on a batch of one pair are dpo’s label-smoothed sigmoid; on more pairs they are not', () => {
    let single = 0;
    let differs = false;
    fc.assert(
      fc.property(arb, fc.constantFrom(0, 0.1), (b, ls) => {
        const d = dpo.run(b, { params: { label_smoothing: ls } });
        for (const loss_type of [8, 9]) {
          const a = trl.run(b, { params: { loss_type, label_smoothing: ls } });
          if (b.numGroups === 1) expectSame(a, d, `loss_type ${loss_type}, one pair`);
          else if (Math.abs(a.loss - d.loss) > 1e-6) differs = true;
        }
        if (b.numGroups === 1) single++;
      }),
      { numRuns: 200 },
    );
    expect(single).toBeGreaterThan(0);
    expect(differs).toBe(true);
  });

  it('aot does not depend on how the pairs are matched: permuting the reference margins leaves it unchanged', () => {
    // the policy margin of pair g and the reference margin of pair g enter only through their sorted lists
    fc.assert(
      fc.property(arb, (b) => {
        const P = pairs(b);
        if (P.length < 2) return;
        // swap the reference log-probs of the chosen responses of pairs 0 and 1 when they have the same length
        const [s0, s1] = [P[0]!.w, P[1]!.w];
        const t0 = validTokensOf(b, s0);
        const t1 = validTokensOf(b, s1);
        if (t0.length !== t1.length || validTokensOf(b, P[0]!.l).length !== validTokensOf(b, P[1]!.l).length) return;
        const ref = Float64Array.from(b.tensors.get('ref_logp')!.data);
        const refR = Float64Array.from(ref);
        t0.forEach((t, k) => ([refR[t], refR[t1[k]!]] = [ref[t1[k]!]!, ref[t]!]));
        const rl = [P[0]!.l, P[1]!.l].map((s) => validTokensOf(b, s));
        rl[0]!.forEach((t, k) => ([refR[t], refR[rl[1]![k]!]] = [ref[rl[1]![k]!]!, ref[t]!]));
        const a = trl.run(b, { params: { loss_type: 8 } });
        const c = trl.run(set(b, 'ref_logp', refR), { params: { loss_type: 8 } });
        expectSame(a, c, 'aot, reference pairs swapped');
      }),
      { numRuns: 200 },
    );
  });

  it('alpha_divergence: α = 1 is reverse_kl (TRL’s fallback), α = 0 is forward_kl (log-ratios above −80: the clamp)', () => {
    fc.assert(
      fc.property(fdBatches, fc.constantFrom(0, 1, 2, 7, 14), (b, loss_type) => {
        const at = (f_divergence: number, f_alpha_divergence_coef = 0.5) =>
          trl.run(b, { params: { loss_type, f_divergence, f_alpha_divergence_coef } });
        expectSame(at(3, 1), at(0), 'α = 1');
        expectSame(at(3, 0), at(1), 'α = 0');
      }),
      { numRuns: 100 },
    );
  });

  it('ld_alpha is inert on pairs of equal lengths; ld_alpha = 0 passes no gradient beyond the shorter response', () => {
    fc.assert(
      fc.property(arb, fc.constantFrom(0, 6, 10, 14), (b, loss_type) => {
        const P = pairs(b);
        const L = lengths(b);
        const equal = P.every(({ w, l }) => L[w] === L[l]);
        const cut = trl.run(b, { params: { loss_type, ld_alpha: 0 } });
        if (equal) expectSame(cut, trl.run(b, { params: { loss_type } }), 'equal lengths');
        for (const { w, l } of P) {
          const K = Math.min(L[w]!, L[l]!);
          for (const s of [w, l])
            validTokensOf(b, s).forEach((t, k) => {
              if (k >= K) expect(Math.abs(cut.grads.logp!.data[t]!)).toBe(0);
            });
        }
      }),
      { numRuns: 150 },
    );
  });

  it('use_weighting: weights are detached — with every aligned log-prob 0 (W = 1) it is the unweighted loss, gradient too', () => {
    fc.assert(
      fc.property(arb, fc.constantFrom(0, 2, 4, 12, 13), (b0, loss_type) => {
        const b = set(b0, 'wpo_log_denom', Float64Array.from(b0.tensors.get('logp')!.data));
        expectSame(
          trl.run(b, { params: { loss_type, use_weighting: 1 } }),
          trl.run(b, { params: { loss_type } }),
          'W = 1',
        );
      }),
      { numRuns: 100 },
    );
  });

  it('use_weighting: lowering log Σp² by k at every token scales the loss by e^(2k) when no response is empty', () => {
    let seen = 0;
    fc.assert(
      fc.property(arb, fc.constantFrom(0, 5, 13), (b, loss_type) => {
        if (lengths(b).some((n) => n === 0)) return;
        seen++;
        const k = 0.7;
        const base = trl.run(b, { params: { loss_type, use_weighting: 1 } }).loss;
        const den = b.tensors.get('wpo_log_denom')!.data.map((v) => v - k);
        const shifted = trl.run(set(b, 'wpo_log_denom', den), { params: { loss_type, use_weighting: 1 } }).loss;
        expect(close(shifted, base * Math.exp(2 * k))).toBe(true);
      }),
      { numRuns: 150 },
    );
    expect(seen).toBeGreaterThan(0);
  });

  it('sft is the token-mean NLL of the chosen responses: sft on the batch with the rejected tokens masked', () => {
    fc.assert(
      fc.property(arb, (b) => {
        const chosen = b.tensors.get('chosen')!.data;
        const mask = Uint8Array.from(b.mask);
        for (let s = 0; s < b.numSeqs; s++)
          if (!chosen[s]) for (let t = b.offsets[s]!; t < b.offsets[s + 1]!; t++) mask[t] = 0;
        const a = trl.run(b, { params: { loss_type: 13 } });
        const c = sft.run({ ...b, mask });
        expect(close(a.loss, c.loss)).toBe(true);
        expectVecClose(a.grads.logp!.data, Array.from(c.grads.logp!.data), 'grad logp');
      }),
      { numRuns: 100 },
    );
  });

  it('discopop is NaN, as in TRL, where exp(−βd) overflows and σ(βd/τ) underflows; finite just above', () => {
    const b = fc.sample(arb, { numRuns: 1, seed: 5 })[0]!;
    const chosen = b.tensors.get('chosen')!.data;
    // every chosen token's log-ratio −300, every rejected one's +300: βd ≤ −60·(tokens) per non-empty pair
    const ref = b.tensors.get('ref_logp')!.data.map((_, t) => {
      const s = b.offsets.findIndex((o, i) => t >= o && t < b.offsets[i + 1]!);
      return b.tensors.get('logp')!.data[t]! + (chosen[s] ? 300 : -300);
    });
    const far = set(b, 'ref_logp', ref);
    const anyLong = [...Array(b.numSeqs).keys()].some((s) => validTokensOf(b, s).length > 0);
    const at = (beta: number) => trl.run(far, { params: { loss_type: 12, beta } }).loss;
    expect(anyLong).toBe(true);
    expect(Number.isNaN(at(10))).toBe(true);
    expect(Number.isFinite(at(1e-4))).toBe(true);
    expect(Number.isNaN(trlDpoRef(far, { loss_type: 12, beta: 10 }).loss)).toBe(true);
  });

  it('pref.wpo_log_denom(logits) is log Σ_v softmax(z)_v² (TRL: logsumexp(2z) − 2·logsumexp(z)) at each token', () => {
    const source = [
      'objective wpo_denom',
      'import pref',
      'input logits : token x vocab grad',
      'mask mask : token',
      'export den = pref.wpo_log_denom(logits)',
      'loss = mean(pref.wpo_log_denom(logits))',
    ].join('\n');
    const o = compile({ source, path: 'wpo_denom.credo' });
    fc.assert(
      fc.property(arbFor(o), (b) => {
        const den = o.run(b).exports.den!.data;
        const z = b.tensors.get('logits')!.data;
        const V = b.vocabSize;
        for (let t = 0; t < b.numTokens; t++) {
          if (!b.mask[t]) continue;
          const row = Array.from(z.slice(t * V, (t + 1) * V));
          const m = Math.max(...row);
          const Z = row.reduce((a, v) => a + Math.exp(v - m), 0);
          const want = Math.log(row.reduce((a, v) => a + (Math.exp(v - m) / Z) ** 2, 0));
          expect(close(den[t]!, want), `token ${t}: ${den[t]} vs ${want}`).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('a fully masked batch: sigmoid gives log 2 and a zero gradient; sft gives 0', () => {
    for (const b of fc.sample(arb, { numRuns: 20, seed: 2 })) {
      const m = { ...b, mask: new Uint8Array(b.numTokens) };
      const r = trl.run(m);
      expect(close(r.loss, Math.log(2))).toBe(true);
      expect(Array.from(r.grads.logp!.data).every((g) => g === 0)).toBe(true);
      expect(trl.run(m, { params: { loss_type: 13 } }).loss).toBe(0);
    }
  });

  it('TRL’s refusals: exo_pair with label_smoothing = 0, use_weighting with aot / aot_unpaired', () => {
    const b = fc.sample(arb, { numRuns: 1, seed: 4 })[0]!;
    expect(() => trl.run(b, { params: { loss_type: 3 } })).toThrow(/loss_type == 3 and label_smoothing == 0/);
    for (const loss_type of [8, 9])
      expect(() => trl.run(b, { params: { loss_type, use_weighting: 1 } })).toThrow(/use_weighting/);
    expect(() => trl.run(b, { params: { loss_type: 3, label_smoothing: 1e-3 } })).not.toThrow();
  });
});

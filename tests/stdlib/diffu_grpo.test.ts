/**
 * stdlib/diffu_grpo.credo (d1) against tests/reference/diffu_grpo.ts on random diffusion batches
 * (one view per response as in d1, several views per response, and the generic random batches),
 * its gradient against finite differences, and the special cases: the advantage is mean-centred
 * only (methods-dpo.md §19 item 10), its group mean runs over responses (not views), on-policy the
 * gradient is −A / #tokens.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { arbDiffusion } from '../reference/arb-diffusion.js';
import { diffuGrpoRef } from '../reference/diffu_grpo.js';
import { numValid, validTokensOf, values } from '../reference/family.js';
import { close } from '../helpers/expect.js';
import { itAgreesWithFamilyRef, itHasFdGradients, itHasMeanCentredAdvantage } from './family-helpers.js';

const d1 = compile('diffu_grpo');
const params = fc.record({ eps: fc.constantFrom(0.5, 0.2, 0.1), beta: fc.constantFrom(0.04, 0, 0.5) });
const oneView = arbDiffusion(d1.inputs, { views: 'one' });
const views = arbDiffusion(d1.inputs, { views: 'trajectory' });
// finite differences of e^20-sized k3 terms lose all precision: log-ratios up to ±5 there
const moderate = arbDiffusion(d1.inputs, { views: 'trajectory', extreme: false });

/** The batch with tensor `name` replaced. */
function withTensor(b: RaggedBatch, name: string, data: ArrayLike<number>): RaggedBatch {
  const tensors = new Map(b.tensors);
  tensors.set(name, { ...b.tensors.get(name)!, data: Float64Array.from(data) });
  return { ...b, tensors };
}

/** The batch with the views of sequence `s` appended once more (a second view of the same response). */
function duplicateView(b: RaggedBatch, s: number): RaggedBatch {
  const lo = b.offsets[s]!;
  const hi = b.offsets[s + 1]!;
  const tensors = new Map(b.tensors);
  for (const [name, t] of b.tensors) {
    const extra = t.level === 'token' ? Array.from(t.data.slice(lo, hi)) : t.level === 'seq' ? [t.data[s]!] : [];
    tensors.set(name, { ...t, data: Float64Array.from([...t.data, ...extra]) });
  }
  const offsets = Int32Array.from([...b.offsets, b.numTokens + hi - lo]);
  return {
    ...b,
    numTokens: b.numTokens + hi - lo,
    numSeqs: b.numSeqs + 1,
    offsets,
    groupOf: Int32Array.from([...b.groupOf, b.groupOf[s]!]),
    mask: Uint8Array.from([...b.mask, ...b.mask.slice(lo, hi)]),
    tensors,
  };
}

describe('diffu_grpo equals its reference', () => {
  itAgreesWithFamilyRef(d1, diffuGrpoRef, params, { batches: oneView, what: '(one view per response, d1)' });
  itAgreesWithFamilyRef(d1, diffuGrpoRef, params, { batches: views, what: '(several views per response)' });
  itAgreesWithFamilyRef(d1, diffuGrpoRef, params, { numRuns: 100, what: '(generic random batches)' });
  itHasFdGradients(d1, diffuGrpoRef, params, { batches: moderate });
});

describe('diffu_grpo special cases', () => {
  itHasMeanCentredAdvantage(d1, views);

  it('the group mean counts each response once: another view of one response leaves every advantage unchanged', () => {
    fc.assert(
      fc.property(views, fc.nat(), (b, k) => {
        const s = k % b.numSeqs;
        const a = d1.run(b).exports.adv!.data;
        const a2 = d1.run(duplicateView(b, s)).exports.adv!.data;
        a.forEach((x, i) => expect(close(a2[i]!, x), `view ${i}`).toBe(true));
        expect(close(a2[b.numSeqs]!, a[s]!)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('on-policy with beta = 0 the gradient is −A / #valid tokens (REINFORCE with the mean-only advantage)', () => {
    fc.assert(
      fc.property(oneView, (b0) => {
        const b = withTensor(b0, 'old_logp', values(b0, 'logp'));
        const out = d1.run(b, { params: { beta: 0 } });
        const adv = out.exports.adv!.data;
        const n = numValid(b);
        for (let s = 0; s < b.numSeqs; s++)
          for (const t of validTokensOf(b, s)) expect(close(out.grads.logp!.data[t]!, -adv[s]! / n)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

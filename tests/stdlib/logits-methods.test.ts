/**
 * The objectives that read logits (`dapo_logits`, `grpo_logits`) are their log-prob siblings on the
 * log-probs they compute: with logits built so that gather(log_softmax(logits), token_id) equals a
 * given logp, the loss and metrics are `dapo`'s / `grpo`'s on that logp, and grad.logits is their
 * grad.logp pushed through the log-softmax Jacobian: ∂loss/∂z_v = ∂loss/∂logp · ([v = id] − p_v).
 * With an entropy bonus the gradient gains −c·∂mean(H)/∂z, checked against the reference.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../compiler/interp/eval.js';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { compile } from '../../src/objective.js';
import { toRagged } from '../helpers/batches.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { logitsPolicyLoss, rowStats, rowWithLogp } from '../reference/vocab.js';

const V = 6;

/** The log-prob batch plus logits, token ids (and, for grpo, the same ref_logp) that reproduce its logp. */
function withLogits(b: RaggedBatch, seed: number): RaggedBatch {
  const logp = b.tensors.get('logp')!.data;
  const T = b.numTokens;
  const rows: number[] = [];
  const ids: number[] = [];
  for (let t = 0; t < T; t++) {
    const id = (t * 5 + seed) % V;
    const others = Array.from({ length: V }, (_, v) => Math.sin(7 * t + 3 * v + seed) * 2 - (v === 2 ? Infinity : 0));
    rows.push(...rowWithLogp(others, id, logp[t]));
    ids.push(id);
  }
  const tensors = new Map(b.tensors);
  tensors.set('logits', { level: 'vocab', dtype: 'f32', data: Float64Array.from(rows) });
  tensors.set('token_id', { level: 'token', dtype: 'i32', data: Float64Array.from(ids) });
  return { ...b, vocabSize: V, tensors };
}

// logp strictly below 0 (a log-prob of 1 has no logits with finite other entries) and not ≈ 0
const batches = arbRefBatch().map((rb) => ({ ...rb, logp: rb.logp.map((l) => Math.min(l, -1e-3)) }));

for (const [logits, base] of [
  ['dapo_logits', 'dapo'],
  ['grpo_logits', 'grpo'],
] as const) {
  describe(`${logits} is ${base} on the log-probs it computes`, () => {
    const a = compile(logits).program;
    const b = compile(base).program;
    it('loss, metrics, and grad.logits = grad.logp · (onehot − softmax)', () => {
      fc.assert(
        fc.property(batches, fc.nat(50), (rb, seed) => {
          const batch = withLogits(toRagged(rb, { breakTies: true }), seed);
          const ra = evaluate(a, batch);
          const rbase = evaluate(b, batch);
          const tol = (x: number) => 1e-9 * (1 + Math.abs(x));
          expect(Math.abs(ra.loss - rbase.loss)).toBeLessThanOrEqual(tol(rbase.loss));
          for (const [k, v] of Object.entries(rbase.metrics))
            expect(Math.abs(ra.metrics[k] - v), k).toBeLessThanOrEqual(tol(v));
          const gz = ra.grads.logits.data;
          const glogp = rbase.grads.logp.data;
          const z = batch.tensors.get('logits')!.data;
          const ids = batch.tensors.get('token_id')!.data;
          for (let t = 0; t < batch.numTokens; t++) {
            const { p } = rowStats(Array.from(z.subarray(t * V, (t + 1) * V)));
            for (let v = 0; v < V; v++) {
              const want = glogp[t] * ((v === ids[t] ? 1 : 0) - p[v]);
              expect(Math.abs(gz[t * V + v] - want), `grad.logits[${t}, ${v}]`).toBeLessThanOrEqual(
                1e-9 + 1e-7 * Math.abs(want),
              );
            }
          }
        }),
        { numRuns: 60 },
      );
    });
  });
}

describe('dapo_logits: temperature and the entropy bonus', () => {
  const p = compile('dapo_logits').program;
  it('with all-equal rewards (A = 0) the loss is −c·mean(H(logits / τ)) and the entropy metric is H(logits / τ)', () => {
    fc.assert(
      fc.property(batches, fc.nat(50), fc.constantFrom(0.6, 1, 1.7), fc.constantFrom(0.01, 0.3), (rb, seed, tau, c) => {
        const flat = { ...rb, reward: rb.reward.map(() => 1) };
        const batch = withLogits(toRagged(flat), seed);
        const out = evaluate(p, batch, { params: { temperature: tau, entropy_coeff: c } });
        const z = batch.tensors.get('logits')!.data;
        const rows = Array.from({ length: batch.numTokens }, (_, t) => Array.from(z.subarray(t * V, (t + 1) * V)));
        // the reference's loss is −mean(logp) − c·mean(H): with weight 0 on logp (A = 0), only the entropy term remains
        const ref = logitsPolicyLoss({ V, logits: rows, tokenId: [], mask: Array.from(batch.mask) }, c, tau);
        const entropyOnly = -c * ref.entropyMean;
        expect(Math.abs(out.loss - entropyOnly)).toBeLessThanOrEqual(1e-9 * (1 + Math.abs(entropyOnly)));
        expect(Math.abs(out.metrics.entropy - ref.entropyMean)).toBeLessThanOrEqual(1e-9 * (1 + ref.entropyMean));
      }),
      { numRuns: 40 },
    );
  });
});

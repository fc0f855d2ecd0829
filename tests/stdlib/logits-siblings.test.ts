/**
 * Every generated `_logits` sibling (scripts/logits-siblings.ts) is its base method on the
 * log-probs and entropies it computes: on random batches of the base's inputs, with logits built so
 * that gather(log_softmax(logits), token_id) is the batch's logp and the batch's entropy is
 * H(softmax(logits)), the loss and metrics agree, and grad.logits is the base's gradients pushed
 * through the vocabulary: ∂/∂z_v = g_logp·([v = id] − p_v) + g_H·(−p_v (log p_v + H)) (g_H only
 * where the base's entropy carries a gradient).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../compiler/interp/eval.js';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { LOGITS_SIBLINGS, siblingName } from '../../scripts/logits-siblings.js';
import { arbBatch } from '../../src/equiv/random-batches.js';
import { compile } from '../../src/objective.js';
import { rowStats, rowWithLogp } from '../reference/vocab.js';

const V = 5;

/** The base's batch plus logits and token ids reproducing its logp; its entropy replaced by H of those logits. */
function withLogits(b: RaggedBatch, seed: number): RaggedBatch {
  const logp = b.tensors.get('logp')!.data;
  const rows: number[] = [];
  const ids: number[] = [];
  const entropy = new Float64Array(b.numTokens);
  for (let t = 0; t < b.numTokens; t++) {
    const id = (t * 3 + seed) % V;
    const others = Array.from({ length: V }, (_, v) => Math.sin(5 * t + 2 * v + seed) * 2);
    const row = rowWithLogp(others, id, Math.min(logp[t], -1e-3));
    rows.push(...row);
    ids.push(id);
    entropy[t] = rowStats(row).entropy;
  }
  const tensors = new Map(b.tensors);
  // logp as the logits give it (the batch's, with log-probs of 0 moved just below)
  tensors.set('logp', { ...b.tensors.get('logp')!, data: logp.map((l) => Math.min(l, -1e-3)) });
  tensors.set('entropy', { ...b.tensors.get('entropy')!, data: entropy });
  tensors.set('logits', { level: 'vocab', dtype: 'f32', data: Float64Array.from(rows) });
  tensors.set('token_id', { level: 'token', dtype: 'i32', data: Float64Array.from(ids) });
  return { ...b, vocabSize: V, tensors };
}

/** Params that put the entropy terms to work on rows of 5 entries (H ≤ log 5 ≈ 1.6): spine's band starts at 0.5 by default. */
const PARAMS: Readonly<Record<string, Record<string, number>>> = { spine: { h_low: 1.4 } };

describe.each(LOGITS_SIBLINGS)('$base', ({ base, entropyGrad }) => {
  const a = compile(siblingName(base)).program;
  const b = compile(base).program;
  it(`${siblingName(base)} equals ${base} on the log-probs and entropy its logits give, grad.logits included`, () => {
    const inputs = b.inputs.map(({ name, level, dtype }) => ({ name, level, dtype }));
    let entropyExercised = 0;
    fc.assert(
      fc.property(
        arbBatch({ inputs, onPolicy: false, equalLengths: false, boundaries: [] }),
        fc.nat(40),
        (rb, seed) => {
          const batch = withLogits(rb, seed);
          const params = PARAMS[base] ?? {};
          const ra = evaluate(a, batch, { params });
          const rbase = evaluate(b, batch, { params });
          if (entropyGrad && rbase.grads.entropy.data.some((g) => g !== 0)) entropyExercised++;
          const close = (x: number, y: number) =>
            Math.abs(x - y) <= 1e-8 * (1 + Math.abs(y)) || (Number.isNaN(x) && Number.isNaN(y));
          expect(close(ra.loss, rbase.loss), `loss ${ra.loss} vs ${rbase.loss}`).toBe(true);
          for (const [k, v] of Object.entries(rbase.metrics)) expect(close(ra.metrics[k], v), `metric ${k}`).toBe(true);
          if (!Number.isFinite(rbase.loss)) return;
          const gz = ra.grads.logits.data;
          const gLogp = rbase.grads.logp.data;
          const gH = entropyGrad ? rbase.grads.entropy.data : new Float64Array(batch.numTokens);
          const z = batch.tensors.get('logits')!.data;
          const ids = batch.tensors.get('token_id')!.data;
          for (let t = 0; t < batch.numTokens; t++) {
            const { p, logp, entropy } = rowStats(Array.from(z.subarray(t * V, (t + 1) * V)));
            for (let v = 0; v < V; v++) {
              const want = gLogp[t] * ((v === ids[t] ? 1 : 0) - p[v]) - gH[t] * p[v] * (logp[v] + entropy);
              expect(Math.abs(gz[t * V + v] - want), `grad.logits[${t}, ${v}]`).toBeLessThanOrEqual(
                1e-8 * (1 + Math.abs(want)),
              );
            }
          }
        },
      ),
      { numRuns: 30 },
    );
    // the entropy's gradient path was checked on some batch, not only zeros
    if (entropyGrad) expect(entropyExercised).toBeGreaterThan(0);
  });
});

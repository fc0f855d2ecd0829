/** Test helpers: RefBatch (tests/reference) → RaggedBatch, with extra tensors where a test needs them. */
import type { HostTensor, RaggedBatch } from '../../core/batch/batch.js';
import type { RefBatch } from '../reference/batch.js';

export interface ToRaggedOptions {
  /** Values of the group input `gin` per group (default sin(g + 1)). */
  readonly gin?: readonly number[];
  /**
   * Shift old_logp and ref_logp by small distinct amounts so no token has exact ties with logp
   * (finite differences are meaningless exactly at a kink such as relu(ref_logp - logp) when equal).
   */
  readonly breakTies?: boolean;
}

/** A packed RaggedBatch with the standard tensors of a RefBatch, plus `gin` (a group-level input). */
export function toRagged(b: RefBatch, opts: ToRaggedOptions = {}): RaggedBatch {
  const S = b.offsets.length - 1;
  const T = b.offsets[S];
  const f = (level: HostTensor['level'], data: number[]): HostTensor => ({
    level,
    dtype: 'f32',
    data: Float64Array.from(data),
  });
  const groupIds = Array.from({ length: b.numGroups }, (_, g) => g);
  const jitter = (xs: number[], k: number) => (opts.breakTies ? xs.map((x, t) => x + 1e-3 * (((t * k) % 17) + 1)) : xs);
  return {
    numTokens: T,
    numSeqs: S,
    vocabSize: 0,
    numGroups: b.numGroups,
    offsets: Int32Array.from(b.offsets),
    groupOf: Int32Array.from(b.groupOf),
    groupIds,
    mask: Uint8Array.from(b.mask),
    tensors: new Map([
      ['logp', f('token', b.logp)],
      ['old_logp', f('token', jitter(b.old_logp, 7))],
      ['ref_logp', f('token', jitter(b.ref_logp, 11))],
      ['reward', f('seq', b.reward)],
      ['gin', f('group', opts.gin ? [...opts.gin] : groupIds.map((g) => Math.sin(g + 1)))],
    ]),
    layout: { kind: 'packed' },
  };
}

/** A copy of a batch with one tensor replaced. */
export function withTensor(b: RaggedBatch, name: string, data: Float64Array): RaggedBatch {
  const t = b.tensors.get(name)!;
  const tensors = new Map(b.tensors);
  tensors.set(name, { ...t, data });
  return { ...b, tensors };
}

/** Extra tensors of a batch: name → level, values and dtype (f32 unless given). */
export type ExtraTensors = Record<
  string,
  { level: HostTensor['level']; data: readonly number[]; dtype?: HostTensor['dtype'] }
>;

/** A copy of a batch with extra tensors added (or replaced). */
export function withTensors(b: RaggedBatch, extras: ExtraTensors): RaggedBatch {
  const tensors = new Map(b.tensors);
  for (const [name, { level, data, dtype }] of Object.entries(extras))
    tensors.set(name, { level, dtype: dtype ?? 'f32', data: Float64Array.from(data) });
  return { ...b, tensors };
}

/** toRagged plus extra tensors. */
export function toRaggedWith(b: RefBatch, extras: ExtraTensors = {}): RaggedBatch {
  return withTensors(toRagged(b), extras);
}

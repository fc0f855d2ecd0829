/**
 * Splitting a batch too large for one storage binding into chunks of whole groups. Sequences and
 * groups never straddle chunks, so everything below the batch level (token→seq and seq→group
 * reductions, scans, a group's statistics) stays inside one chunk; only batch-level results cross
 * chunks, through the shared `G` arena (core/device/program.ts).
 *
 * A chunk is itself a RaggedBatch. When its groups' sequences are contiguous in the packed batch
 * (the usual layout) its token data are views of the batch's; otherwise they are gathered copies,
 * refreshed on every run (a caller may refill the batch's tensors in place between steps).
 */
import { countAt, type HostTensor, type RaggedBatch } from '../../core/batch/batch.js';
import type { Level } from '../../core/types/types.js';
import { GpuError } from './device.js';

export interface Chunk {
  readonly batch: RaggedBatch;
  /** The batch's index of each of the chunk's sequences, in the chunk's order. */
  readonly seqs: Int32Array;
  /** The chunk's groups are the batch's groups firstGroup .. firstGroup + numGroups - 1. */
  readonly firstGroup: number;
  /** The chunk's token data are views of the batch's (tokens firstToken .. firstToken + numTokens - 1). */
  readonly contiguous: boolean;
  readonly firstToken: number;
}

/** How a batch is split: kept per batch and per binding limit, so a batch run again reuses its chunks. */
const splits = new WeakMap<RaggedBatch, Map<string, readonly Chunk[]>>();

/**
 * The chunks of `batch` such that each one's largest binding (`bytes` of its sizes) is at most
 * `limit` bytes: groups in order, as many per chunk as fit. One chunk (the batch itself) when it
 * fits whole.
 * @throws GpuError when one group alone needs more than `limit`.
 */
export function splitBatch(
  batch: RaggedBatch,
  limit: number,
  bytes: (sizes: { token: number; seq: number; group: number }) => number,
  key: string,
): readonly Chunk[] {
  const whole = { token: batch.numTokens, seq: batch.numSeqs, group: batch.numGroups };
  if (bytes(whole) <= limit)
    return [
      {
        batch,
        seqs: Int32Array.from({ length: batch.numSeqs }, (_, s) => s),
        firstGroup: 0,
        contiguous: true,
        firstToken: 0,
      },
    ];
  const known = splits.get(batch)?.get(key);
  if (known) {
    for (const c of known) refresh(batch, c);
    return known;
  }
  // the sequences and tokens of each group
  const seqsOf: number[][] = Array.from({ length: batch.numGroups }, () => []);
  for (let s = 0; s < batch.numSeqs; s++) seqsOf[batch.groupOf[s]].push(s);
  const tokensOf = seqsOf.map((ss) => ss.reduce((n, s) => n + batch.offsets[s + 1] - batch.offsets[s], 0));

  const ranges: [number, number][] = [];
  let first = 0;
  let sizes = { token: 0, seq: 0, group: 0 };
  for (let g = 0; g < batch.numGroups; g++) {
    const alone = { token: tokensOf[g], seq: seqsOf[g].length, group: 1 };
    if (bytes(alone) > limit) {
      throw new GpuError(
        `group ${batch.groupIds[g]} (${alone.seq} sequences, ${alone.token} tokens) alone needs a ${bytesText(bytes(alone))} buffer, above the ${bytesText(limit)} binding limit; ` +
          'a group is never split across chunks: use smaller groups or shorter sequences, or --backend cpu',
      );
    }
    const next = { token: sizes.token + alone.token, seq: sizes.seq + alone.seq, group: sizes.group + 1 };
    if (g > first && bytes(next) > limit) {
      ranges.push([first, g]);
      first = g;
      sizes = alone;
    } else sizes = next;
  }
  ranges.push([first, batch.numGroups]);
  const chunks = ranges.map(([g0, g1]) => makeChunk(batch, g0, g1, seqsOf));
  let byKey = splits.get(batch);
  if (!byKey) splits.set(batch, (byKey = new Map()));
  byKey.set(key, chunks);
  return chunks;
}

/** A byte count for messages: MiB, KiB or bytes. */
export function bytesText(b: number): string {
  return b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(0)} MiB` : b >= 2 ** 10 ? `${(b / 2 ** 10).toFixed(0)} KiB` : `${b} B`;
}

function makeChunk(batch: RaggedBatch, g0: number, g1: number, seqsOf: readonly number[][]): Chunk {
  const seqs = Int32Array.from(
    seqsOf
      .slice(g0, g1)
      .flat()
      .sort((a, b) => a - b),
  );
  const lengths = Array.from(seqs, (s) => batch.offsets[s + 1] - batch.offsets[s]);
  const offsets = new Int32Array(seqs.length + 1);
  for (let j = 0; j < seqs.length; j++) offsets[j + 1] = offsets[j] + lengths[j];
  const numTokens = offsets[seqs.length];
  // contiguous: the sequences are one run s0, s0+1, … of the batch's (so are their tokens)
  const contiguous = seqs.every((s, j) => s === seqs[0] + j);
  const firstToken = seqs.length ? batch.offsets[seqs[0]] : 0;
  const tokenData = <T extends Float64Array | Uint8Array>(data: T): T =>
    contiguous
      ? (data.subarray(firstToken, firstToken + numTokens) as T)
      : new (data.constructor as new (n: number) => T)(numTokens);
  const V = batch.vocabSize;
  const tensors = new Map<string, HostTensor>();
  for (const [name, t] of batch.tensors) {
    // groups g0..g1 are always one run; sequences and tokens (and their vocabulary rows) when `contiguous`
    const data =
      t.level === 'vocab'
        ? contiguous
          ? t.data.subarray(firstToken * V, (firstToken + numTokens) * V)
          : new Float64Array(numTokens * V)
        : t.level === 'token'
          ? tokenData(t.data)
          : t.level === 'group'
            ? t.data.subarray(g0, g1)
            : contiguous && seqs.length
              ? t.data.subarray(seqs[0], seqs[0] + seqs.length)
              : new Float64Array(seqs.length);
    tensors.set(name, { ...t, data });
  }
  const chunkBatch: RaggedBatch = {
    numTokens,
    numSeqs: seqs.length,
    numGroups: g1 - g0,
    vocabSize: batch.vocabSize,
    offsets,
    groupOf: Int32Array.from(seqs, (s) => batch.groupOf[s] - g0),
    groupIds: batch.groupIds.slice(g0, g1),
    mask: tokenData(batch.mask),
    tensors,
    layout: batch.layout,
  };
  const chunk = { batch: chunkBatch, seqs, firstGroup: g0, contiguous, firstToken };
  refresh(batch, chunk);
  return chunk;
}

/** Copies the batch's values into a non-contiguous chunk's own (gathered) arrays; views need nothing. */
function refresh(batch: RaggedBatch, chunk: Chunk): void {
  if (chunk.contiguous) return;
  const c = chunk.batch;
  for (const [name, t] of batch.tensors) {
    const own = c.tensors.get(name)!.data;
    if (t.level === 'seq') chunk.seqs.forEach((s, j) => (own[j] = t.data[s]));
    else if (t.level === 'token') gatherTokens(batch, chunk, t.data, own);
    else if (t.level === 'vocab') gatherTokens(batch, chunk, t.data, own, batch.vocabSize);
  }
  gatherTokens(batch, chunk, batch.mask, c.mask);
}

/** Copies each of the chunk's sequences' tokens (`width` values per token: V for vocabulary rows). */
function gatherTokens(
  batch: RaggedBatch,
  chunk: Chunk,
  from: Float64Array | Uint8Array,
  to: Float64Array | Uint8Array,
  width = 1,
): void {
  chunk.seqs.forEach((s, j) =>
    to.set(from.subarray(batch.offsets[s] * width, batch.offsets[s + 1] * width), chunk.batch.offsets[j] * width),
  );
}

/**
 * A whole-batch array at `level` from each chunk's part (values in the chunks' element order).
 * Batch-level values are not split.
 */
export function stitch(
  batch: RaggedBatch,
  chunks: readonly Chunk[],
  level: Level,
  parts: readonly Float64Array[],
): Float64Array {
  if (chunks.length === 1 || level === 'batch') return parts[0];
  const out = new Float64Array(countAt(batch, level));
  chunks.forEach((chunk, c) => {
    const part = parts[c];
    if (level === 'group') out.set(part, chunk.firstGroup);
    else if (level === 'seq') chunk.seqs.forEach((s, j) => (out[s] = part[j]));
    else
      chunk.seqs.forEach((s, j) =>
        out.set(part.subarray(chunk.batch.offsets[j], chunk.batch.offsets[j + 1]), batch.offsets[s]),
      );
  });
  return out;
}

/** Chunk c's part of a whole-batch array at `level` (the inverse of stitch). */
export function partOf(batch: RaggedBatch, chunk: Chunk, level: Level, data: ArrayLike<number>): Float64Array {
  const c = chunk.batch;
  if (level === 'batch') return Float64Array.from(data);
  if (level === 'group') return Float64Array.from({ length: c.numGroups }, (_, g) => data[chunk.firstGroup + g]);
  if (level === 'seq') return Float64Array.from(chunk.seqs, (s) => data[s]);
  const out = new Float64Array(c.numTokens);
  chunk.seqs.forEach((s, j) => {
    for (let k = 0; k < c.offsets[j + 1] - c.offsets[j]; k++) out[c.offsets[j] + k] = data[batch.offsets[s] + k];
  });
  return out;
}

/** The batch's index of each of a chunk's tokens (by the chunk's token index). */
export function batchTokens(batch: RaggedBatch, chunk: Chunk): (t: number) => number {
  if (chunk.contiguous) return (t) => chunk.firstToken + t;
  const map = new Int32Array(chunk.batch.numTokens);
  chunk.seqs.forEach((s, j) => {
    for (let k = 0; k < chunk.batch.offsets[j + 1] - chunk.batch.offsets[j]; k++)
      map[chunk.batch.offsets[j] + k] = batch.offsets[s] + k;
  });
  return (t) => map[t];
}

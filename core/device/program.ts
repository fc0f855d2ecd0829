/**
 * A device program: what a code generator hands a device runtime, described completely enough that
 * the runtime needs nothing else — no IR, no plan, no language. It lists the sections of three
 * storage arenas with how long each one is for a batch's sizes and what fills it, and the steps to
 * run in order: kernel launches (shader text, how many workgroups, when it runs) and host steps
 * (hooks the facade supplies, which read and write sections by id).
 *
 * The arenas (the only bindings a kernel has, so no kernel needs more than three):
 *  - `G` (f32, global): the scalars at fixed indices (params, the clock, batch sizes), then the
 *    batch-level sections; shared by every chunk of a batch;
 *  - `D` (f32, per chunk): inputs, size tables and materialized values below the batch level;
 *  - `I` (u32, per chunk): the header, then index tables. The header of chunk c is
 *      [T, S, G of the chunk, T, S, G caps over all chunks, number of chunks, offset of section 0, …]
 *    so a new batch shape changes data, never shader text.
 * A batch too large for one binding runs in chunks of whole groups; a `perChunk` G section holds
 * one equal slice per chunk (sized for the caps), and chunk c's header points at its own slice.
 *
 * Values over the vocabulary axis (`token x vocab`: logits, their gradient) live in a fourth arena,
 * `L` (u32, bound only by `rows` launches), never in `D`: a row of V entries per token, rows split
 * into *row chunks* of whole rows that each fit one binding, independently of groups (row chunks
 * nest in the chunks of groups above). Every row chunk has its own `L`:
 *   [first row (a token of the chunk), rows, V, then per row slot: offset, encoding, row stride]
 * An input slot holds the batch's tensor in its stored encoding (ROW_ENCODING: f32, or bf16/f16
 * two per word, decoded by the kernels); an output slot (a gradient) is f32. Rows start at
 * multiples of 16 bytes.
 */
import { countAt, type BatchSizes, type RaggedBatch } from '../batch/batch.js';
import type { Level } from '../types/types.js';

/** Element counts per level of a batch or of one chunk of it (batch: 1). */
export type Sizes = Readonly<Record<Level, number>>;

/** Words of `I` before the section offsets: T, S, G, their caps over the chunks, the number of chunks. */
export const HEADER = 7;

/** Tables of the batch's structure, by name (core/batch/segments.ts defines each). */
export type SizeTable = 'position' | 'length' | 'group_size';
export type IndexTable = 'offsets' | 'seq_of' | 'group_of' | 'mask';

/** What the runtime writes into a section before the first step. */
export type SectionFill =
  /** The steps' outputs and partials: zero, whatever an earlier run left. */
  | { readonly kind: 'zero' }
  /** A tensor of the batch, by name. */
  | { readonly kind: 'input'; readonly name: string }
  /** A per-element size table of the batch's structure (f32, in D). */
  | { readonly kind: 'size'; readonly table: SizeTable }
  /** An index table of the batch's structure (u32, in I). */
  | { readonly kind: 'index'; readonly table: IndexTable }
  /**
   * Half of the member lists of the segments at `to` among the elements at `from` (CSR, in I):
   * segment j's members are members[starts[j] .. starts[j+1]), in increasing order.
   */
  | { readonly kind: 'members'; readonly from: Level; readonly to: Level; readonly half: 'starts' | 'members' };

export interface Section {
  readonly arena: 'D' | 'I' | 'G';
  readonly fill: SectionFill;
  /**
   * Elements for a chunk of these sizes (a G section: for the whole batch; a `perChunk` one: each
   * slice, sized for the caps). `whole` is the whole batch's, for sections whose existence follows
   * a strategy chosen on the whole batch.
   */
  readonly length: (sizes: Sizes, whole: Sizes) => number;
  /** A G section with a slice per chunk. */
  readonly perChunk?: boolean;
  /** For sections read back or written by host steps: the level of its elements (to stitch and split chunks). */
  readonly level?: Level;
}

/** The first elements of G: a value given with each run (by name), or a size of the batch. */
export type Scalar =
  | { readonly kind: 'given'; readonly name: string }
  | { readonly kind: 'size'; readonly which: 'num_seqs' | 'num_groups' | 'valid_tokens' | 'vocab_size' };

/** A `token x vocab` tensor of the `L` arena: an input of the batch, or a value kernels write (a gradient, f32). */
export type RowSlot =
  | { readonly kind: 'input'; readonly name: string }
  /**
   * `overwrites`: an input slot that no kernel reads after this output's entries are written (each
   * one right after its own entry is read), so the output may take its memory when that input is
   * f32 and the caller allows it (ExecutorOptions.gradInPlace): a gradient over its logits.
   */
  | { readonly kind: 'output'; readonly overwrites?: number };

/** Words of an `L` arena before its slots' descriptors: first row, rows, V. */
export const ROW_HEADER = 3;
/** Words per row slot descriptor in the `L` header: offset, encoding, row stride (all in words). */
export const ROW_SLOT_WORDS = 3;
/** How an `L` slot stores its entries (the header's encoding word). */
export const ROW_ENCODING = { f32: 0, bf16: 1, f16: 2 } as const;
export type RowEncoding = keyof typeof ROW_ENCODING;

export interface Launch {
  readonly kind: 'launch';
  /** WGSL with one entry point `main` over bindings D (0), I (1), G (2); also the pipeline cache key. */
  readonly code: string;
  /** Workgroups to launch on a chunk of these sizes (the runtime folds counts beyond a dimension's limit into y). */
  readonly workgroups: (sizes: Sizes) => number;
  /** Whether it runs for a batch of these sizes in that many chunks (alternative strategies); always when absent. */
  readonly runIf?: (whole: Sizes, chunks: number) => boolean;
  /**
   * `chunk`: once per chunk, on its own D and I; `batch`: once for the whole batch, touching only G;
   * `rows`: once per row chunk of each chunk, also binding that row chunk's `L`, with one workgroup
   * per row (`workgroups` is given the chunk's sizes with `token` = the row chunk's rows).
   */
  readonly scope: 'chunk' | 'batch' | 'rows';
  /** Compile on first use: only batches in several chunks run it. */
  readonly lazy?: boolean;
  /**
   * `rows` launches: the shader compiled for the encodings of the batch's `L` slots (no decoding
   * branch per load); `code` decodes by the header's encoding, for any batch.
   */
  readonly variant?: (encodings: readonly RowEncoding[]) => string;
  /** Which kernel of the plan it comes from (for profiles), and how it runs, in words. */
  readonly origin: number;
  readonly describe: string;
}

/** What a host step may do with the device's sections. */
export interface HostIo {
  readonly batch: RaggedBatch;
  /** The values given with this run (see Scalar). */
  readonly given: Readonly<Record<string, number>>;
  /** Whole-batch values of sections with a `level`. */
  read(sections: readonly number[]): Promise<Map<number, Float64Array>>;
  /** Writes a whole-batch value into a section with a `level`. */
  write(section: number, data: ArrayLike<number>): void;
}

export interface HostStep {
  readonly kind: 'host';
  readonly origin: number;
  readonly describe: string;
  run(io: HostIo): Promise<void>;
}

export interface DeviceProgram {
  readonly sections: readonly Section[];
  /** The slots of the `L` arena, in slot order (none for a program without values over the vocabulary). */
  readonly rowSlots: readonly RowSlot[];
  readonly scalars: readonly Scalar[];
  readonly steps: readonly (Launch | HostStep)[];
}

/** The sizes of a batch. */
export function sizesOf(b: BatchSizes): Sizes {
  return { vocab: countAt(b, 'vocab'), token: b.numTokens, seq: b.numSeqs, group: b.numGroups, batch: 1 };
}

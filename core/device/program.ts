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
  | { readonly kind: 'size'; readonly which: 'num_seqs' | 'num_groups' | 'valid_tokens' };

export interface Launch {
  readonly kind: 'launch';
  /** WGSL with one entry point `main` over bindings D (0), I (1), G (2); also the pipeline cache key. */
  readonly code: string;
  /** Workgroups to launch on a chunk of these sizes (the runtime folds counts beyond a dimension's limit into y). */
  readonly workgroups: (sizes: Sizes) => number;
  /** Whether it runs for a batch of these sizes in that many chunks (alternative strategies); always when absent. */
  readonly runIf?: (whole: Sizes, chunks: number) => boolean;
  /** `chunk`: once per chunk, on its own D and I; `batch`: once for the whole batch, touching only G. */
  readonly scope: 'chunk' | 'batch';
  /** Compile on first use: only batches in several chunks run it. */
  readonly lazy?: boolean;
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
  readonly scalars: readonly Scalar[];
  readonly steps: readonly (Launch | HostStep)[];
}

/** The sizes of a batch. */
export function sizesOf(b: BatchSizes): Sizes {
  return { vocab: countAt(b, 'vocab'), token: b.numTokens, seq: b.numSeqs, group: b.numGroups, batch: 1 };
}

/**
 * Where kernels find their data. Three storage buffers hold everything, so no kernel ever needs
 * more than three bindings (devices may allow as few as 4–8 storage buffers per stage):
 *  - `G` (f32, global): params and scalars at fixed indices, then the batch-level values and the
 *    partials that batch reductions are combined from;
 *  - `D` (f32): one section per input tensor, per size table and per materialized value below the
 *    batch level;
 *  - `I` (u32): a header (below), then index tables (offsets, seq_of, group_of, mask, and member
 *    lists for segmented reductions).
 * Section offsets live in the header, so a new batch shape changes data, never the shader text.
 *
 * A batch too large for one binding runs in chunks of whole groups (runtime/webgpu/chunks.ts):
 * each chunk has its own `D` and `I`, every chunk shares `G`. The header of chunk c says:
 *   [T, S, G of the chunk (loop bounds), T, S, G caps over all chunks, number of chunks, offsets…]
 * A partials section holds `chunks` equal slices, one per chunk, each sized for the caps; chunk c's
 * header points at its own slice, so its first passes write there with chunk-local indices, and a
 * combine (run once, for the whole batch) folds all slices in chunk order. Zero partials (count 0,
 * a chunk smaller than the caps) are skipped. Every other G section is whole-batch.
 *
 * The runtime sees each slot as a section of a DeviceProgram (device-program.ts gives its length
 * and fill; the contract, arenas and header included, is core/device/program.ts).
 */
import type { Node } from '../../../core/ir/node.js';
import type { Program } from '../../../core/ir/program.js';
import type { Level } from '../../../core/types/types.js';

export type SectionKey =
  | { readonly buffer: 'D'; readonly kind: 'input'; readonly name: string }
  | { readonly buffer: 'D'; readonly kind: 'size'; readonly which: 'position' | 'length' | 'group_size' }
  | { readonly buffer: 'D'; readonly kind: 'value'; readonly node: Node }
  /**
   * (value, count) partials of a reduction to the whole batch (two-pass): `threads` per chunk of
   * `chunk` elements of `over` (default: the level reduced from).
   */
  | {
      readonly buffer: 'D';
      readonly kind: 'partials';
      readonly node: Node;
      readonly chunk: number;
      readonly threads: number;
      readonly over?: Level;
    }
  /**
   * (value, count) partials of a reduction over the `segments` (seqs or groups), `threads` per segment, for the
   * workgroup-per-segment strategy: only laid out when a batch's mean segment length is at least
   * `minMean` (when that strategy runs), else empty.
   */
  | {
      readonly buffer: 'D';
      readonly kind: 'segment_partials';
      readonly node: Node;
      readonly segments: Level;
      readonly threads: number;
      readonly minMean: number;
    }
  | { readonly buffer: 'I'; readonly kind: 'offsets' | 'seq_of' | 'group_of' | 'mask' }
  | { readonly buffer: 'I'; readonly kind: 'csr_starts' | 'csr_members'; readonly from: Level; readonly to: Level };

/** Header expressions (u32): the chunk's element counts, their caps over all chunks, the number of chunks. */
export const CAP: Record<Level, string> = {
  // rows of the vocabulary live in L, whose row chunks have no caps (row kernels loop over V)
  vocab: 'no_cap_over_the_vocabulary',
  token: 'I[3]',
  seq: 'I[4]',
  group: 'I[5]',
  batch: '1u',
};
export const CHUNKS = 'I[6]';

/** The arena a section lives in: batch-level values and batch partials are shared by all chunks. */
export function arenaOf(key: SectionKey): 'D' | 'I' | 'G' {
  if (key.buffer === 'I') return 'I';
  if (key.kind === 'partials') return 'G';
  if (key.kind === 'value' && key.node.type.level === 'batch') return 'G';
  return 'D';
}

/** The values a run gives besides the batch: params by name and the training clock. */
export interface RunValues {
  readonly params: Readonly<Record<string, number>>;
  readonly step: number;
  readonly totalSteps: number;
}

/** A run's values under the names of the given scalars (Slots.scalarIndex). */
export function givenValues(v: RunValues): Record<string, number> {
  const out: Record<string, number> = { 'clock:step': v.step, 'clock:total_steps': v.totalSteps };
  for (const [name, value] of Object.entries(v.params)) out[`param:${name}`] = value;
  return out;
}

/** The inverse of givenValues. */
export function runValuesOf(given: Readonly<Record<string, number>>): RunValues {
  const params: Record<string, number> = {};
  for (const [key, value] of Object.entries(given))
    if (key.startsWith('param:')) params[key.slice('param:'.length)] = value;
  return { params, step: given['clock:step'] ?? 0, totalSteps: given['clock:total_steps'] ?? 0 };
}

/**
 * A slot of the `L` arena (core/device/program.ts): a `token x vocab` input, or a value over the
 * vocabulary that kernels write (a gradient w.r.t. logits). Values over the vocabulary are never
 * stored anywhere else: every other one is recomputed where it is used.
 */
export type RowKey =
  { readonly kind: 'input'; readonly name: string } | { readonly kind: 'output'; readonly node: Node };

export class Slots {
  readonly sections: SectionKey[] = [];
  /** The `L` slots, in slot order. */
  readonly rows: RowKey[] = [];
  /** Output `L` slot → the input slot whose memory it may take (core/device/program.ts RowSlot). */
  readonly rowOverwrites = new Map<number, number>();
  private readonly rowByKey = new Map<string, number>();
  private readonly byKey = new Map<string, number>();
  /** G indices of params, then step, total_steps, num_seqs, num_groups, num_tokens, vocab_size. */
  readonly scalarIndex: ReadonlyMap<string, number>;

  constructor(program: Program) {
    const names = [
      ...program.params.map((p) => `param:${p.name}`),
      'clock:step',
      'clock:total_steps',
      'size:num_seqs',
      'size:num_groups',
      'size:num_tokens',
      'size:vocab_size',
    ];
    this.scalarIndex = new Map(names.map((n, i) => [n, i] as const));
  }

  get scalarCount(): number {
    return this.scalarIndex.size;
  }

  /** Slot number of a section that exists, or undefined (never adds one). */
  find(key: SectionKey): number | undefined {
    return this.byKey.get(keyString(key));
  }

  /** Slot number of an `L` slot (its descriptor is in the `L` header), added if new. */
  rowSlot(key: RowKey): number {
    return numbered(
      this.rows,
      this.rowByKey,
      key,
      key.kind === 'input' ? `input:${key.name}` : `output:${key.node.id}`,
    );
  }

  /** The `L` slot of a value kernels write, or undefined. */
  findRow(node: Node): number | undefined {
    return this.rowByKey.get(`output:${node.id}`);
  }

  /** Slot number of a section (its offset is at I[HEADER + slot]), added if new. */
  slot(key: SectionKey): number {
    return numbered(this.sections, this.byKey, key, keyString(key));
  }
}

/** The number of `key` (by its string `k`) in `list`, appended if new. */
function numbered<K>(list: K[], byKey: Map<string, number>, key: K, k: string): number {
  let s = byKey.get(k);
  if (s === undefined) {
    s = list.length;
    list.push(key);
    byKey.set(k, s);
  }
  return s;
}

export function keyString(key: SectionKey): string {
  switch (key.kind) {
    case 'input':
      return `input:${key.name}`;
    case 'size':
      return `size:${key.which}`;
    case 'value':
      return `value:${key.node.id}`;
    case 'partials':
      return `partials:${key.node.id}:${key.chunk}:${key.threads}:${key.over ?? ''}`;
    case 'segment_partials':
      return `segment_partials:${key.node.id}`;
    case 'csr_starts':
    case 'csr_members':
      return `${key.kind}:${key.from}:${key.to}`;
    default:
      return key.kind;
  }
}

/**
 * Where kernels find their data. Two storage buffers hold everything, so no kernel ever needs more
 * than two bindings (devices may allow as few as 4–8 storage buffers per stage):
 *  - `D` (f32): params and scalars at fixed indices, then one section per input tensor, per size
 *    table and per materialized value;
 *  - `I` (u32): a header [T, S, G, section offsets…], then index tables (offsets, seq_of, group_of,
 *    mask, and member lists for segmented reductions).
 * Section offsets live in the header, so a new batch shape changes data, never the shader text.
 */
import type { Node } from '../../../src/ir/node.js';
import type { Program } from '../../../src/ir/program.js';
import type { Level } from '../../../src/types/types.js';

export type SectionKey =
  | { readonly buffer: 'D'; readonly kind: 'input'; readonly name: string }
  | { readonly buffer: 'D'; readonly kind: 'size'; readonly which: 'position' | 'length' | 'group_size' }
  | { readonly buffer: 'D'; readonly kind: 'value'; readonly node: Node }
  /**
   * (value, count) partials of a reduction to the whole batch (two-pass): `threads` per chunk of
   * `chunk` elements of `over` (default: the level reduced from).
   */
  | { readonly buffer: 'D'; readonly kind: 'partials'; readonly node: Node; readonly chunk: number; readonly threads: number; readonly over?: Level }
  /**
   * (value, count) partials of a reduction over the `segments` (seqs or groups), `threads` per segment, for the
   * workgroup-per-segment strategy: only laid out when a batch's mean segment length is at least
   * `minMean` (when that strategy runs), else empty.
   */
  | { readonly buffer: 'D'; readonly kind: 'segment_partials'; readonly node: Node; readonly segments: Level; readonly threads: number; readonly minMean: number }
  | { readonly buffer: 'I'; readonly kind: 'offsets' | 'seq_of' | 'group_of' | 'mask' }
  | { readonly buffer: 'I'; readonly kind: 'csr_starts' | 'csr_members'; readonly from: Level; readonly to: Level };

/** Header words of `I` before the section offsets: T, S, G. */
export const HEADER = 3;

export class Slots {
  readonly sections: SectionKey[] = [];
  private readonly byKey = new Map<string, number>();
  /** D indices of params, then step, total_steps, num_seqs, num_groups, num_tokens. */
  readonly scalarIndex: ReadonlyMap<string, number>;

  constructor(program: Program) {
    const names = [...program.params.map((p) => `param:${p.name}`), 'clock:step', 'clock:total_steps', 'size:num_seqs', 'size:num_groups', 'size:num_tokens'];
    this.scalarIndex = new Map(names.map((n, i) => [n, i] as const));
  }

  get scalarCount(): number {
    return this.scalarIndex.size;
  }

  /** Slot number of a section (its offset is at I[HEADER + slot]). */
  slot(key: SectionKey): number {
    const k = keyString(key);
    let s = this.byKey.get(k);
    if (s === undefined) {
      s = this.sections.length;
      this.sections.push(key);
      this.byKey.set(k, s);
    }
    return s;
  }
}

export function keyString(key: SectionKey): string {
  switch (key.kind) {
    case 'input': return `input:${key.name}`;
    case 'size': return `size:${key.which}`;
    case 'value': return `value:${key.node.id}`;
    case 'partials': return `partials:${key.node.id}:${key.chunk}:${key.threads}:${key.over ?? ''}`;
    case 'segment_partials': return `segment_partials:${key.node.id}`;
    case 'csr_starts':
    case 'csr_members':
      return `${key.kind}:${key.from}:${key.to}`;
    default: return key.kind;
  }
}

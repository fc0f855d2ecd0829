/**
 * Host-side data of one run: the `D` (f32) and `I` (u32) arenas of codegen/wgsl/slots.ts, filled
 * from a batch, params and the clock.
 */
import { Segments } from '../../compiler/interp/segments.js';
import { HEADER, type SectionKey, type Slots } from '../../compiler/codegen/wgsl/slots.js';
import type { RaggedBatch } from '../batch/batch.js';
import type { Level } from '../../src/types/types.js';

export interface Arenas {
  readonly D: Float32Array;
  readonly I: Uint32Array;
  /** Element offset of each slot's section (in D or I). */
  readonly offsets: readonly number[];
  readonly segments: Segments;
}

export interface RunValues {
  readonly params: Readonly<Record<string, number>>;
  readonly step: number;
  readonly totalSteps: number;
}

/** Members of each segment at level `to` among the elements at level `from`, grouped (CSR). */
function csr(batch: RaggedBatch, seg: Segments, from: Level, to: Level): { starts: Uint32Array; members: Uint32Array } {
  if (from === 'token' && to === 'seq') {
    // packed tokens are already grouped by sequence: the offsets are the starts, members in order
    const members = new Uint32Array(batch.numTokens);
    for (let t = 0; t < members.length; t++) members[t] = t;
    return { starts: Uint32Array.from(batch.offsets), members };
  }
  const n = seg.size(from);
  const m = seg.size(to);
  const counts = new Uint32Array(m + 1);
  for (let i = 0; i < n; i++) counts[seg.parent(from, to, i) + 1]++;
  for (let k = 0; k < m; k++) counts[k + 1] += counts[k];
  const fill = counts.slice(0, m);
  const members = new Uint32Array(n);
  for (let i = 0; i < n; i++) members[fill[seg.parent(from, to, i)]++] = i;
  return { starts: counts, members };
}

function sectionLength(key: SectionKey, batch: RaggedBatch, seg: Segments): number {
  const size = (l: Level) => seg.size(l);
  switch (key.kind) {
    case 'input': return batch.tensors.get(key.name)?.data.length ?? 0;
    case 'size': return key.which === 'position' ? size('token') : key.which === 'length' ? size('seq') : size('group');
    case 'value': return size(key.node.type.level);
    case 'partials': return 2 * Math.ceil(size(key.node.src[0].type.level) / key.chunk);
    case 'offsets': return batch.numSeqs + 1;
    case 'seq_of':
    case 'mask':
      return batch.numTokens;
    case 'group_of': return batch.numSeqs;
    case 'csr_starts': return size(key.to) + 1;
    case 'csr_members': return size(key.from);
  }
}

export function buildArenas(slots: Slots, batch: RaggedBatch, values: RunValues): Arenas {
  const seg = new Segments(batch);
  const offsets: number[] = [];
  let dLen = slots.scalarCount;
  let iLen = HEADER + slots.sections.length;
  for (const key of slots.sections) {
    const len = sectionLength(key, batch, seg);
    if (key.buffer === 'D') {
      offsets.push(dLen);
      dLen += len;
    } else {
      offsets.push(iLen);
      iLen += len;
    }
  }
  const D = new Float32Array(Math.max(1, dLen));
  const I = new Uint32Array(Math.max(1, iLen));
  I[0] = batch.numTokens;
  I[1] = batch.numSeqs;
  I[2] = batch.numGroups;
  for (const [name, index] of slots.scalarIndex) {
    const [kind, what] = name.split(':');
    D[index] =
      kind === 'param' ? values.params[what]
      : what === 'step' ? values.step
      : what === 'total_steps' ? values.totalSteps
      : what === 'num_seqs' ? batch.numSeqs
      : what === 'num_groups' ? batch.numGroups
      : seg.validTokens;
  }
  const csrCache = new Map<string, ReturnType<typeof csr>>();
  slots.sections.forEach((key, k) => {
    const at = offsets[k];
    I[HEADER + k] = at;
    switch (key.kind) {
      case 'input': {
        const t = batch.tensors.get(key.name);
        if (t) D.set(t.data, at);
        break;
      }
      case 'size':
        D.set(key.which === 'position' ? seg.position : key.which === 'length' ? seg.length : seg.groupSize, at);
        break;
      case 'value':
      case 'partials':
        break;
      case 'offsets': I.set(batch.offsets, at); break;
      case 'seq_of': I.set(seg.seqOf, at); break;
      case 'group_of': I.set(batch.groupOf, at); break;
      case 'mask': I.set(batch.mask, at); break;
      case 'csr_starts':
      case 'csr_members': {
        const id = `${key.from}:${key.to}`;
        const c = csrCache.get(id) ?? csr(batch, seg, key.from, key.to);
        csrCache.set(id, c);
        I.set(key.kind === 'csr_starts' ? c.starts : c.members, at);
        break;
      }
    }
  });
  return { D, I, offsets, segments: seg };
}

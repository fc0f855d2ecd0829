/**
 * Host-side data of one run: the `D` (f32) and `I` (u32) arenas of codegen/wgsl/slots.ts, filled
 * from a batch, params and the clock.
 *
 * At a million tokens the arenas are tens of MiB and building them is memory-bound, so:
 *  - every table is written straight into its arena section: no per-token temporaries to
 *    allocate, fill and copy again;
 *  - the arenas' memory is allocated once per compiled program (Slots) and reused by later runs,
 *    because the first write to freshly allocated memory costs a page fault per 4 KiB page, which
 *    costs more than the copying itself (several times more on virtual machines);
 *  - `I` and the size tables in `D` depend only on the batch's structure, so they are rewritten
 *    only when the batch object changes (a benchmark or several objectives may run one batch
 *    again); the inputs, which a caller might refill in place, are copied every time.
 */
import { InternalError } from '../../src/diagnostics/diagnostic.js';
import { Segments, writeGroupSizes, writeLengths, writePositions, writeSeqOf } from '../../compiler/interp/segments.js';
import { HEADER, keyString, type SectionKey, type Slots } from '../../compiler/codegen/wgsl/slots.js';
import type { RaggedBatch } from '../batch/batch.js';
import type { Level } from '../../src/types/types.js';

/**
 * `D` and `I` are views of host memory that the next `buildArenas` call for the same Slots
 * overwrites: upload (or copy) them before building again, and do not write to them (running the
 * same batch again keeps their structure-only parts). The rest stays valid.
 */
export interface Arenas {
  /** The value and partials sections are zero. */
  readonly D: Float32Array;
  readonly I: Uint32Array;
  /** Element offset of each slot's section (in D or I). */
  readonly offsets: readonly number[];
  readonly segments: Segments;
  /** `I` holds the same tables as after the previous call for these Slots (the same batch again). */
  readonly sameStructure: boolean;
}

export interface RunValues {
  readonly params: Readonly<Record<string, number>>;
  readonly step: number;
  readonly totalSteps: number;
}

/** The arenas' memory for one Slots, reused by every run of its program. */
interface HostMemory {
  D: Float32Array;
  I: Uint32Array;
  /**
   * The batch whose structure-only data (all of `I`, the size tables in `D`) the memory holds, and
   * how many sections it was laid out for: running that batch again rewrites only the rest.
   */
  structureOf?: { readonly batch: WeakRef<RaggedBatch>; readonly sections: number };
}

const memoryOf = new WeakMap<Slots, HostMemory>();

/**
 * Per batch, so the tables a host step makes a Segments compute are kept for the batch's next run.
 * Batches are not modified once built (a training loop makes a new one per step), so the object
 * identifies its structure; entries go when the batch is collected.
 */
const segmentsOf = new WeakMap<RaggedBatch, Segments>();

export function buildArenas(slots: Slots, batch: RaggedBatch, values: RunValues): Arenas {
  let seg = segmentsOf.get(batch);
  if (!seg) segmentsOf.set(batch, (seg = new Segments(batch)));
  const { offsets, dLength, iLength } = layout(slots, batch);

  let memory = memoryOf.get(slots);
  if (!memory) memoryOf.set(slots, (memory = { D: new Float32Array(0), I: new Uint32Array(0) }));
  if (memory.D.length < dLength || memory.I.length < iLength) {
    if (memory.D.length < dLength) memory.D = new Float32Array(grown(memory.D.length, dLength));
    if (memory.I.length < iLength) memory.I = new Uint32Array(grown(memory.I.length, iLength));
    memory.structureOf = undefined;
  }
  const known = memory.structureOf;
  const sameStructure = known?.batch.deref() === batch && known.sections === slots.sections.length;
  const D = memory.D.subarray(0, dLength);
  const I = memory.I.subarray(0, iLength);

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
  slots.sections.forEach((key, k) => {
    const at = offsets[k];
    switch (key.kind) {
      case 'input': {
        const t = batch.tensors.get(key.name);
        if (t) D.set(t.data, at);
        break;
      }
      case 'size':
        if (sameStructure) break;
        if (key.which === 'position') writePositions(batch, D, at);
        else if (key.which === 'length') writeLengths(batch, D, at);
        else writeGroupSizes(batch, D, at);
        break;
      case 'value':
      case 'partials':
      case 'segment_partials':
        // the kernels' outputs: zero, as in fresh memory, whatever an earlier run left there
        D.fill(0, at, at + sectionLength(key, batch));
        break;
    }
    // the padding after a section: zero, so a vectorized kernel reads zeros (and a 0 mask) there
    if (key.buffer === 'D') D.fill(0, at + sectionLength(key, batch), align4(at + sectionLength(key, batch)));
  });

  if (!sameStructure) {
    writeIndexTables(slots, batch, offsets, I);
    memory.structureOf = { batch: new WeakRef(batch), sections: slots.sections.length };
  }
  return { D, I, offsets, segments: seg, sameStructure };
}

/** A capacity for `needed` elements; with headroom, so that slightly larger batches fit. */
function grown(capacity: number, needed: number): number {
  return Math.max(1, needed, Math.ceil(capacity * 1.25));
}

function size(batch: RaggedBatch, level: Level): number {
  return level === 'token' ? batch.numTokens : level === 'seq' ? batch.numSeqs : level === 'group' ? batch.numGroups : 1;
}

function sectionLength(key: SectionKey, batch: RaggedBatch): number {
  switch (key.kind) {
    case 'input': return batch.tensors.get(key.name)?.data.length ?? 0;
    case 'size': return size(batch, key.which === 'position' ? 'token' : key.which === 'length' ? 'seq' : 'group');
    case 'value': return size(batch, key.node.type.level);
    case 'partials': return 2 * Math.ceil(size(batch, key.over ?? key.node.src[0].type.level) / key.chunk) * key.threads;
    case 'segment_partials': {
      const segments = size(batch, key.segments);
      return size(batch, key.node.src[0].type.level) / Math.max(1, segments) >= key.minMean ? 2 * segments * key.threads : 0;
    }
    case 'offsets': return batch.numSeqs + 1;
    case 'seq_of':
    case 'mask':
      return batch.numTokens;
    case 'group_of': return batch.numSeqs;
    case 'csr_starts': return size(batch, key.to) + 1;
    case 'csr_members': return size(batch, key.from);
  }
}

const align4 = (n: number) => Math.ceil(n / 4) * 4;

/** Where each section starts (in D or I) and the arenas' lengths. */
function layout(slots: Slots, batch: RaggedBatch): { offsets: number[]; dLength: number; iLength: number } {
  const offsets: number[] = [];
  let dLength = slots.scalarCount;
  let iLength = HEADER + slots.sections.length;
  // every section starts at a multiple of 4 elements and is followed by padding up to the next
  // one: vectorized kernels read and write four tokens at once as one vec4
  for (const key of slots.sections) {
    const len = sectionLength(key, batch);
    if (key.buffer === 'D') {
      dLength = align4(dLength);
      offsets.push(dLength);
      dLength += len;
    } else {
      iLength = align4(iLength);
      offsets.push(iLength);
      iLength += len;
    }
  }
  return { offsets, dLength: align4(Math.max(1, dLength)), iLength: align4(iLength) };
}

/** The whole of `I`: the header (sizes, section offsets) and every index table. */
function writeIndexTables(slots: Slots, batch: RaggedBatch, offsets: readonly number[], I: Uint32Array): void {
  I[0] = batch.numTokens;
  I[1] = batch.numSeqs;
  I[2] = batch.numGroups;
  const slotOf = new Map(slots.sections.map((key, k) => [keyString(key), k] as const));
  /** The part of I that holds a section, if the kernels use it. */
  const section = (key: SectionKey) => {
    const k = slotOf.get(keyString(key));
    return k === undefined ? undefined : I.subarray(offsets[k], offsets[k] + sectionLength(key, batch));
  };
  const csrDone = new Set<string>();
  I.fill(0, HEADER + slots.sections.length, align4(HEADER + slots.sections.length));
  slots.sections.forEach((key, k) => {
    const at = offsets[k];
    I[HEADER + k] = at;
    if (key.buffer === 'I') I.fill(0, at + sectionLength(key, batch), align4(at + sectionLength(key, batch)));
    switch (key.kind) {
      case 'offsets': I.set(batch.offsets, at); break;
      case 'seq_of': writeSeqOf(batch, I, at); break;
      case 'group_of': I.set(batch.groupOf, at); break;
      case 'mask': I.set(batch.mask, at); break;
      case 'csr_starts':
      case 'csr_members': {
        // both halves of a pair are written at once, into their sections (or scratch if one is unused)
        const id = `${key.from}:${key.to}`;
        if (csrDone.has(id)) break;
        csrDone.add(id);
        const half = (kind: 'csr_starts' | 'csr_members') =>
          section({ buffer: 'I', kind, from: key.from, to: key.to }) ?? new Uint32Array(kind === 'csr_starts' ? size(batch, key.to) + 1 : size(batch, key.from));
        writeCsr(batch, key.from, key.to, half('csr_starts'), half('csr_members'));
        break;
      }
    }
  });
}

const ORDER: Readonly<Record<Level, number>> = { token: 0, seq: 1, group: 2, batch: 3 };

/**
 * The members of each segment at level `to` among the elements at level `from`, grouped (CSR):
 * segment j's members are members[starts[j] .. starts[j+1]), in increasing order.
 */
function writeCsr(batch: RaggedBatch, from: Level, to: Level, starts: Uint32Array, members: Uint32Array): void {
  if (ORDER[from] > ORDER[to]) throw new InternalError('gpu-tables', `no segments of ${to} among ${from} elements`);
  const { numSeqs: S, offsets, groupOf } = batch;
  // how many elements each segment has, as prefix sums
  starts.fill(0);
  if (from === to) for (let j = 0; j < starts.length; j++) starts[j] = j;
  else if (to === 'batch') starts[1] = members.length;
  else if (to === 'seq') starts.set(offsets); // from token: packed tokens are grouped by sequence already
  else {
    // to group, from seq or token
    for (let s = 0; s < S; s++) starts[groupOf[s] + 1] += from === 'seq' ? 1 : offsets[s + 1] - offsets[s];
    for (let g = 1; g < starts.length; g++) starts[g] += starts[g - 1];
  }
  // Elements are numbered in sequence order, so the members are 0, 1, 2, … unless the batch lists
  // the sequences of a group apart (to group from seq or token, groupOf not ascending).
  let inOrder = true;
  if (to === 'group' && from !== 'group') for (let s = 1; s < S && inOrder; s++) inOrder = groupOf[s - 1] <= groupOf[s];
  if (inOrder) {
    for (let i = 0; i < members.length; i++) members[i] = i;
    return;
  }
  const next = starts.slice(0, -1); // next free place in each group's member list
  for (let s = 0; s < S; s++) {
    const g = groupOf[s];
    if (from === 'seq') members[next[g]++] = s;
    else for (let t = offsets[s]; t < offsets[s + 1]; t++) members[next[g]++] = t;
  }
}

/**
 * Host-side data of one run: the `G` (f32) arena and each chunk's `D` (f32) and `I` (u32) arenas
 * of codegen/wgsl/slots.ts, filled from a batch, params and the clock.
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
import { InternalError } from '../../core/diagnostics/diagnostic.js';
import { Segments, writeGroupSizes, writeLengths, writePositions, writeSeqOf } from '../../core/batch/segments.js';
import { HEADER, arenaOf, keyString, type SectionKey, type Slots } from '../../compiler/codegen/wgsl/slots.js';
import { countAt, type RaggedBatch } from '../../core/batch/batch.js';
import type { Level } from '../../core/types/types.js';

/**
 * The arenas of one run: `G`, shared by the whole batch, and `D` and `I` per chunk of the batch
 * (one chunk unless the batch is larger than a binding; see slots.ts and chunks.ts). They are views
 * of host memory that the next `buildArenas` call for the same Slots overwrites: upload (or copy)
 * them before building again, and do not write to them (running the same batch again keeps their
 * structure-only parts). The rest stays valid.
 */
export interface Arenas {
  /** Scalars, then the batch-level values and batch partials (zero). */
  readonly G: Float32Array;
  /** Element offset in G of each global section (whole-batch; a partials section's slice 0). */
  readonly gOffsets: readonly number[];
  readonly chunks: readonly ChunkArenas[];
  /** Of the whole batch. */
  readonly segments: Segments;
}

export interface ChunkArenas {
  readonly batch: RaggedBatch;
  /** The value and partials sections are zero. */
  readonly D: Float32Array;
  readonly I: Uint32Array;
  /** Element offset of each slot's section as this chunk's header says it (in D, I, or G). */
  readonly offsets: readonly number[];
  readonly segments: Segments;
  /** `I` holds the same tables as after the previous call for these Slots and chunk (the same batch again). */
  readonly sameStructure: boolean;
}

export interface RunValues {
  readonly params: Readonly<Record<string, number>>;
  readonly step: number;
  readonly totalSteps: number;
}

/** A chunk's arenas' memory, reused by every run of its program. */
interface HostMemory {
  D: Float32Array;
  I: Uint32Array;
  /**
   * The batch whose structure-only data (all of `I`, the size tables in `D`) the memory holds, and
   * how many sections it was laid out for: running that batch again rewrites only the rest.
   */
  structureOf?: { readonly batch: WeakRef<RaggedBatch>; readonly sections: number; readonly header: string };
}

/** Per Slots: G's memory and each chunk's. */
const memoryOf = new WeakMap<Slots, { G: Float32Array; chunks: HostMemory[] }>();

/**
 * Per batch, so the tables a host step makes a Segments compute are kept for the batch's next run.
 * Batches are not modified once built (a training loop makes a new one per step), so the object
 * identifies its structure; entries go when the batch is collected.
 */
const segmentsOf = new WeakMap<RaggedBatch, Segments>();

function segmentsFor(batch: RaggedBatch): Segments {
  let seg = segmentsOf.get(batch);
  if (!seg) segmentsOf.set(batch, (seg = new Segments(batch)));
  return seg;
}

/** Element counts per level. */
type Sizes = Readonly<Record<Level, number>>;

const sizesOf = (b: RaggedBatch): Sizes => ({ token: b.numTokens, seq: b.numSeqs, group: b.numGroups, batch: 1 });

/**
 * Builds the arenas of `batch` run as `chunks` (sub-batches of whole groups, in order; `[batch]`
 * for one chunk): G for the whole batch, D and I per chunk.
 */
export function buildArenas(slots: Slots, batch: RaggedBatch, values: RunValues, chunks: readonly RaggedBatch[] = [batch]): Arenas {
  const seg = segmentsFor(batch);
  const caps: Sizes = {
    token: Math.max(0, ...chunks.map((c) => c.numTokens)),
    seq: Math.max(0, ...chunks.map((c) => c.numSeqs)),
    group: Math.max(0, ...chunks.map((c) => c.numGroups)),
    batch: 1,
  };
  let memory = memoryOf.get(slots);
  if (!memory) memoryOf.set(slots, (memory = { G: new Float32Array(0), chunks: [] }));

  // G: scalars, then the global sections, zero
  const gOffsets: number[] = [];
  let gLength = slots.scalarCount;
  for (const key of slots.sections) {
    gOffsets.push(arenaOf(key) === 'G' ? (gLength = align4(gLength)) : -1);
    if (arenaOf(key) === 'G') gLength += globalLength(key, caps, chunks.length);
  }
  gLength = align4(Math.max(1, gLength));
  if (memory.G.length < gLength) memory.G = new Float32Array(grown(memory.G.length, gLength));
  const G = memory.G.subarray(0, gLength);
  G.fill(0);
  for (const [name, index] of slots.scalarIndex) {
    const [kind, what] = name.split(':');
    G[index] =
      kind === 'param' ? values.params[what]
      : what === 'step' ? values.step
      : what === 'total_steps' ? values.totalSteps
      : what === 'num_seqs' ? batch.numSeqs
      : what === 'num_groups' ? batch.numGroups
      : seg.validTokens;
  }

  const header = { caps, chunks: chunks.length };
  const built = chunks.map((chunk, c) => {
    memory.chunks[c] ??= { D: new Float32Array(0), I: new Uint32Array(0) };
    return buildChunk(slots, chunk, memory.chunks[c], gOffsets, c, header);
  });
  return { G, gOffsets, chunks: built, segments: seg };
}

/** Length in G of a global section: a partials section has a slice per chunk, sized for the caps. */
function globalLength(key: SectionKey, caps: Sizes, chunks: number): number {
  return key.kind === 'partials' ? chunks * partialsPerChunk(key, caps) : 1;
}

function partialsPerChunk(key: Extract<SectionKey, { kind: 'partials' }>, sizes: Sizes): number {
  return 2 * Math.ceil(sizes[key.over ?? key.node.src[0].type.level] / key.chunk) * key.threads;
}

function buildChunk(slots: Slots, batch: RaggedBatch, memory: HostMemory, gOffsets: readonly number[], c: number, header: { caps: Sizes; chunks: number }): ChunkArenas {
  const seg = segmentsFor(batch);
  const { offsets: local, dLength, iLength } = layout(slots, batch);
  // what this chunk's header says: its own sections in D and I; its slice of each partials section in G
  const offsets = slots.sections.map((key, k) => (arenaOf(key) !== 'G' ? local[k] : key.kind === 'partials' ? gOffsets[k] + c * partialsPerChunk(key, header.caps) : gOffsets[k]));
  if (memory.D.length < dLength || memory.I.length < iLength) {
    if (memory.D.length < dLength) memory.D = new Float32Array(grown(memory.D.length, dLength));
    if (memory.I.length < iLength) memory.I = new Uint32Array(grown(memory.I.length, iLength));
    memory.structureOf = undefined;
  }
  const known = memory.structureOf;
  const headerKey = `${header.caps.token},${header.caps.seq},${header.caps.group},${header.chunks},${offsets.join(',')}`;
  const sameStructure = known?.batch.deref() === batch && known.sections === slots.sections.length && known.header === headerKey;
  const D = memory.D.subarray(0, dLength);
  const I = memory.I.subarray(0, iLength);

  slots.sections.forEach((key, k) => {
    if (arenaOf(key) !== 'D') return;
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
      case 'segment_partials':
        // the kernels' outputs: zero, as in fresh memory, whatever an earlier run left there
        D.fill(0, at, at + sectionLength(key, batch));
        break;
    }
    // the padding after a section: zero, so a vectorized kernel reads zeros (and a 0 mask) there
    D.fill(0, at + sectionLength(key, batch), align4(at + sectionLength(key, batch)));
  });

  if (!sameStructure) {
    writeIndexTables(slots, batch, offsets, I, header);
    memory.structureOf = { batch: new WeakRef(batch), sections: slots.sections.length, header: headerKey };
  }
  return { batch, D, I, offsets, segments: seg, sameStructure };
}

/** A capacity for `needed` elements; with headroom, so that slightly larger batches fit. */
function grown(capacity: number, needed: number): number {
  return Math.max(1, needed, Math.ceil(capacity * 1.25));
}

const size = countAt;

/** Elements of a section in a chunk's D or I (global sections: see globalLength). */
function sectionLength(key: SectionKey, batch: RaggedBatch): number {
  switch (key.kind) {
    case 'input': return batch.tensors.get(key.name)?.data.length ?? 0;
    case 'size': return size(batch, key.which === 'position' ? 'token' : key.which === 'length' ? 'seq' : 'group');
    case 'value': return size(batch, key.node.type.level);
    case 'partials': return partialsPerChunk(key, sizesOf(batch));
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

/** Where each of a chunk's own sections starts (in D or I; -1 for global ones) and the arenas' lengths. */
function layout(slots: Slots, batch: RaggedBatch): { offsets: number[]; dLength: number; iLength: number } {
  const offsets: number[] = [];
  let dLength = 0;
  let iLength = HEADER + slots.sections.length;
  // every section starts at a multiple of 4 elements and is followed by padding up to the next
  // one: vectorized kernels read and write four tokens at once as one vec4
  for (const key of slots.sections) {
    const len = sectionLength(key, batch);
    const arena = arenaOf(key);
    if (arena === 'D') {
      dLength = align4(dLength);
      offsets.push(dLength);
      dLength += len;
    } else if (arena === 'I') {
      iLength = align4(iLength);
      offsets.push(iLength);
      iLength += len;
    } else offsets.push(-1);
  }
  return { offsets, dLength: align4(Math.max(1, dLength)), iLength: align4(iLength) };
}

/**
 * The bytes of the largest binding a chunk with these sizes needs (its D or its I), for splitting
 * a batch into chunks: as `layout`, from sizes alone (inputs have their level's size).
 */
export function chunkBindingBytes(slots: Slots, sizes: { token: number; seq: number; group: number }, inputLevel: (name: string) => Level): number {
  let d = 0;
  let i = HEADER + slots.sections.length;
  const count = (l: Level) => (l === 'batch' ? 1 : sizes[l]);
  for (const key of slots.sections) {
    const arena = arenaOf(key);
    if (arena === 'G') continue;
    const len =
      key.kind === 'input' ? count(inputLevel(key.name))
      : key.kind === 'size' ? count(key.which === 'position' ? 'token' : key.which === 'length' ? 'seq' : 'group')
      : key.kind === 'value' ? count(key.node.type.level)
      : key.kind === 'segment_partials' ? 2 * count(key.segments) * key.threads
      : key.kind === 'offsets' ? sizes.seq + 1
      : key.kind === 'seq_of' || key.kind === 'mask' ? sizes.token
      : key.kind === 'group_of' ? sizes.seq
      : key.kind === 'csr_starts' ? count(key.to) + 1
      : key.kind === 'csr_members' ? count(key.from)
      : 0;
    if (arena === 'D') d = align4(d) + len;
    else i = align4(i) + len;
  }
  return 4 * Math.max(align4(d), align4(i));
}

/** The whole of `I`: the header (sizes, section offsets) and every index table. */
function writeIndexTables(slots: Slots, batch: RaggedBatch, offsets: readonly number[], I: Uint32Array, header: { caps: Sizes; chunks: number }): void {
  I[0] = batch.numTokens;
  I[1] = batch.numSeqs;
  I[2] = batch.numGroups;
  I[3] = header.caps.token;
  I[4] = header.caps.seq;
  I[5] = header.caps.group;
  I[6] = header.chunks;
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

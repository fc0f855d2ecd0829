/**
 * Host-side data of one run: the `G` (f32) arena and each chunk's `D` (f32) and `I` (u32) arenas
 * of a DeviceProgram (core/device/program.ts), laid out from its sections' lengths and filled as
 * its sections say, from a batch and the run's given values.
 *
 * At a million tokens the arenas are tens of MiB and building them is memory-bound, so:
 *  - every table is written straight into its arena section: no per-token temporaries to
 *    allocate, fill and copy again;
 *  - the arenas' memory is allocated once per device program and reused by later runs, because
 *    the first write to freshly allocated memory costs a page fault per 4 KiB page, which costs
 *    more than the copying itself (several times more on virtual machines);
 *  - `I` and the size tables in `D` depend only on the batch's structure, so they are rewritten
 *    only when the batch object changes (a benchmark or several objectives may run one batch
 *    again); the inputs, which a caller might refill in place, are copied every time.
 */
import { countAt, type RaggedBatch } from '../../core/batch/batch.js';
import { segmentsOf, writeGroupSizes, writeLengths, writePositions, writeSeqOf } from '../../core/batch/segments.js';
import { HEADER, sizesOf, type DeviceProgram, type Section, type Sizes } from '../../core/device/program.js';
import { InternalError } from '../../core/diagnostics/diagnostic.js';
import type { Level } from '../../core/types/types.js';

/**
 * The arenas of one run: `G`, shared by the whole batch, and `D` and `I` per chunk of the batch
 * (one chunk unless the batch is larger than a binding; see chunks.ts). They are views of host
 * memory that the next `buildArenas` call for the same program overwrites: upload (or copy) them
 * before building again, and do not write to them (running the same batch again keeps their
 * structure-only parts). The rest stays valid.
 */
export interface Arenas {
  /** Scalars, then the batch-level sections (zero). */
  readonly G: Float32Array;
  /** Element offset in G of each G section (a per-chunk section's slice 0), -1 for the others. */
  readonly gOffsets: readonly number[];
  readonly chunks: readonly ChunkArenas[];
}

export interface ChunkArenas {
  readonly batch: RaggedBatch;
  /** Its sections as their fills say (outputs and partials zero). */
  readonly D: Float32Array;
  readonly I: Uint32Array;
  /** Element offset of each section as this chunk's header says it (in D, I, or G). */
  readonly offsets: readonly number[];
  /** `I` holds the same tables as after the previous call for this program and chunk (the same batch again). */
  readonly sameStructure: boolean;
}

/** A chunk's arenas' memory, reused by every run of its program. */
interface HostMemory {
  D: Float32Array;
  I: Uint32Array;
  /**
   * The batch whose structure-only data (all of `I`, the size tables in `D`) the memory holds, and
   * the header it was laid out with: running that batch again rewrites only the rest.
   */
  structureOf?: { readonly batch: WeakRef<RaggedBatch>; readonly header: string };
}

/** Per program: G's memory and each chunk's. */
const memoryOf = new WeakMap<DeviceProgram, { G: Float32Array; chunks: HostMemory[] }>();

const align4 = (n: number) => Math.ceil(n / 4) * 4;

/**
 * Builds the arenas of `batch` run as `chunks` (sub-batches of whole groups, in order; `[batch]`
 * for one chunk): G for the whole batch, D and I per chunk.
 * @param given the values of the program's `given` scalars (params, the clock).
 */
export function buildArenas(
  program: DeviceProgram,
  batch: RaggedBatch,
  given: Readonly<Record<string, number>>,
  chunks: readonly RaggedBatch[] = [batch],
): Arenas {
  const whole = sizesOf(batch);
  const caps: Sizes = {
    vocab: 0,
    token: Math.max(0, ...chunks.map((c) => c.numTokens)),
    seq: Math.max(0, ...chunks.map((c) => c.numSeqs)),
    group: Math.max(0, ...chunks.map((c) => c.numGroups)),
    batch: 1,
  };
  let memory = memoryOf.get(program);
  if (!memory) memoryOf.set(program, (memory = { G: new Float32Array(0), chunks: [] }));

  // G: scalars, then the G sections, zero
  const gOffsets: number[] = [];
  let gLength = program.scalars.length;
  for (const s of program.sections) {
    gOffsets.push(s.arena === 'G' ? (gLength = align4(gLength)) : -1);
    if (s.arena === 'G') gLength += s.perChunk ? chunks.length * s.length(caps, whole) : s.length(whole, whole);
  }
  gLength = align4(Math.max(1, gLength));
  if (memory.G.length < gLength) memory.G = new Float32Array(grown(memory.G.length, gLength));
  const G = memory.G.subarray(0, gLength);
  G.fill(0);
  program.scalars.forEach((s, i) => {
    if (s.kind === 'given') G[i] = given[s.name] ?? fail(`no value given for ${s.name}`);
    else
      G[i] =
        s.which === 'num_seqs'
          ? batch.numSeqs
          : s.which === 'num_groups'
            ? batch.numGroups
            : s.which === 'vocab_size'
              ? batch.vocabSize
              : segmentsOf(batch).validTokens;
  });

  const header = { caps, chunks: chunks.length };
  const built = chunks.map((chunk, c) => {
    memory.chunks[c] ??= { D: new Float32Array(0), I: new Uint32Array(0) };
    return buildChunk(program, chunk, whole, memory.chunks[c], gOffsets, c, header);
  });
  return { G, gOffsets, chunks: built };
}

function buildChunk(
  program: DeviceProgram,
  batch: RaggedBatch,
  whole: Sizes,
  memory: HostMemory,
  gOffsets: readonly number[],
  c: number,
  header: { caps: Sizes; chunks: number },
): ChunkArenas {
  const sizes = sizesOf(batch);
  const { sections } = program;
  const lengths = sections.map((s) => (s.arena === 'G' ? 0 : s.length(sizes, whole)));
  const { offsets: local, dLength, iLength } = layout(sections, lengths);
  // what this chunk's header says: its own sections in D and I; its slice of each per-chunk section in G
  const offsets = sections.map((s, k) =>
    s.arena !== 'G' ? local[k] : s.perChunk ? gOffsets[k] + c * s.length(header.caps, whole) : gOffsets[k],
  );
  if (memory.D.length < dLength || memory.I.length < iLength) {
    if (memory.D.length < dLength) memory.D = new Float32Array(grown(memory.D.length, dLength));
    if (memory.I.length < iLength) memory.I = new Uint32Array(grown(memory.I.length, iLength));
    memory.structureOf = undefined;
  }
  const known = memory.structureOf;
  const headerKey = `${header.caps.token},${header.caps.seq},${header.caps.group},${header.chunks},${offsets.join(',')}`;
  const sameStructure = known?.batch.deref() === batch && known.header === headerKey;
  const D = memory.D.subarray(0, dLength);
  const I = memory.I.subarray(0, iLength);

  sections.forEach((s, k) => {
    if (s.arena !== 'D') return;
    const at = offsets[k];
    const end = at + lengths[k];
    const fill = s.fill;
    switch (fill.kind) {
      case 'input': {
        const t = batch.tensors.get(fill.name);
        if (t) D.set(t.data.subarray(0, lengths[k]), at);
        break;
      }
      case 'size':
        if (sameStructure) break;
        if (fill.table === 'position') writePositions(batch, D, at);
        else if (fill.table === 'length') writeLengths(batch, D, at);
        else writeGroupSizes(batch, D, at);
        break;
      case 'zero':
        // the kernels' outputs: zero, as in fresh memory, whatever an earlier run left there
        D.fill(0, at, end);
        break;
      case 'index':
      case 'members':
        fail(`an ${fill.kind} table in D`);
    }
    // the padding after a section: zero, so a vectorized kernel reads zeros (and a 0 mask) there
    D.fill(0, end, align4(end));
  });

  if (!sameStructure) {
    writeIndexTables(sections, lengths, batch, offsets, I, header);
    memory.structureOf = { batch: new WeakRef(batch), header: headerKey };
  }
  return { batch, D, I, offsets, sameStructure };
}

/** A capacity for `needed` elements; with headroom, so that slightly larger batches fit. */
function grown(capacity: number, needed: number): number {
  return Math.max(1, needed, Math.ceil(capacity * 1.25));
}

/** Where each of a chunk's own sections starts (in D or I; -1 for G ones) and the arenas' lengths. */
function layout(
  sections: readonly Section[],
  lengths: readonly number[],
): { offsets: number[]; dLength: number; iLength: number } {
  const offsets: number[] = [];
  let dLength = 0;
  let iLength = HEADER + sections.length;
  // every section starts at a multiple of 4 elements and is followed by padding up to the next
  // one: vectorized kernels read and write four tokens at once as one vec4
  sections.forEach((s, k) => {
    if (s.arena === 'D') {
      dLength = align4(dLength);
      offsets.push(dLength);
      dLength += lengths[k];
    } else if (s.arena === 'I') {
      iLength = align4(iLength);
      offsets.push(iLength);
      iLength += lengths[k];
    } else offsets.push(-1);
  });
  return { offsets, dLength: align4(Math.max(1, dLength)), iLength: align4(iLength) };
}

/**
 * The bytes of the largest binding a chunk with these sizes needs (its D or its I), for splitting
 * a batch into chunks: as `layout`, from sizes alone.
 */
export function chunkBindingBytes(
  program: DeviceProgram,
  sizes: { token: number; seq: number; group: number },
  whole: Sizes,
): number {
  const chunk: Sizes = { ...sizes, vocab: 0, batch: 1 };
  const lengths = program.sections.map((s) => (s.arena === 'G' ? 0 : s.length(chunk, whole)));
  const { dLength, iLength } = layout(program.sections, lengths);
  return 4 * Math.max(dLength, iLength);
}

/** The whole of `I`: the header (sizes, section offsets) and every index table. */
function writeIndexTables(
  sections: readonly Section[],
  lengths: readonly number[],
  batch: RaggedBatch,
  offsets: readonly number[],
  I: Uint32Array,
  header: { caps: Sizes; chunks: number },
): void {
  I[0] = batch.numTokens;
  I[1] = batch.numSeqs;
  I[2] = batch.numGroups;
  I[3] = header.caps.token;
  I[4] = header.caps.seq;
  I[5] = header.caps.group;
  I[6] = header.chunks;
  /** The part of I that holds the given half of a member list, if the program has it. */
  const half = (from: Level, to: Level, which: 'starts' | 'members') => {
    const k = sections.findIndex(
      (s) => s.fill.kind === 'members' && s.fill.from === from && s.fill.to === to && s.fill.half === which,
    );
    return k < 0 ? undefined : I.subarray(offsets[k], offsets[k] + lengths[k]);
  };
  const csrDone = new Set<string>();
  I.fill(0, HEADER + sections.length, align4(HEADER + sections.length));
  sections.forEach((s, k) => {
    const at = offsets[k];
    I[HEADER + k] = at;
    if (s.arena !== 'I') return;
    I.fill(0, at + lengths[k], align4(at + lengths[k]));
    const fill = s.fill;
    switch (fill.kind) {
      case 'index':
        if (fill.table === 'offsets') I.set(batch.offsets, at);
        else if (fill.table === 'seq_of') writeSeqOf(batch, I, at);
        else if (fill.table === 'group_of') I.set(batch.groupOf, at);
        else I.set(batch.mask, at);
        break;
      case 'members': {
        // both halves of a pair are written at once, into their sections (or scratch if one is unused)
        const id = `${fill.from}:${fill.to}`;
        if (csrDone.has(id)) break;
        csrDone.add(id);
        const starts = half(fill.from, fill.to, 'starts') ?? new Uint32Array(countAt(batch, fill.to) + 1);
        const members = half(fill.from, fill.to, 'members') ?? new Uint32Array(countAt(batch, fill.from));
        writeCsr(batch, fill.from, fill.to, starts, members);
        break;
      }
      default:
        fail(`a ${fill.kind} section in I`);
    }
  });
}

const ORDER: Readonly<Record<Level, number>> = { vocab: -1, token: 0, seq: 1, group: 2, batch: 3 };

/**
 * The members of each segment at level `to` among the elements at level `from`, grouped (CSR):
 * segment j's members are members[starts[j] .. starts[j+1]), in increasing order.
 */
function writeCsr(batch: RaggedBatch, from: Level, to: Level, starts: Uint32Array, members: Uint32Array): void {
  if (ORDER[from] > ORDER[to]) fail(`no segments of ${to} among ${from} elements`);
  const { numSeqs: S, offsets, groupOf } = batch;
  // how many elements each segment has, as prefix sums
  starts.fill(0);
  if (from === to) for (let j = 0; j < starts.length; j++) starts[j] = j;
  else if (to === 'batch') starts[1] = members.length;
  else if (to === 'seq')
    starts.set(offsets); // from token: packed tokens are grouped by sequence already
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

function fail(message: string): never {
  throw new InternalError('gpu-tables', message);
}

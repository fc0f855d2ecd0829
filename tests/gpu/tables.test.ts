/**
 * The host-side arenas of a GPU run (runtime/webgpu/tables.ts) hold exactly what every section is
 * defined to hold, checked against definitions written out here one element at a time, also when
 * the arenas' memory is reused by runs of other batches and when the same batch runs again.
 * Needs no GPU.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deviceScalars, deviceSections } from '../../compiler/codegen/wgsl/device-program.js';
import { Slots, arenaOf, givenValues, type RunValues, type SectionKey } from '../../compiler/codegen/wgsl/slots.js';
import { Segments } from '../../core/batch/segments.js';
import { HEADER, type DeviceProgram } from '../../core/device/program.js';
import type { RaggedBatch } from '../../core/batch/batch.js';
import { syntheticBatch } from '../../runtime/batch/synthetic.js';
import { buildArenas, type Arenas } from '../../runtime/webgpu/tables.js';
import { topoSort } from '../../core/ir/node.js';
import { outputNodes } from '../../core/ir/program.js';
import { compile } from '../../src/objective.js';
import type { Level } from '../../core/types/types.js';
import { toRagged } from '../helpers/batches.js';
import { arbRefBatch } from '../reference/arbitrary.js';

const LEVELS: readonly Level[] = ['token', 'seq', 'group', 'batch'];
const objective = compile('grpo');

/** Slots with a section of every kind: every CSR pair (one with only its starts), every size table. */
function everySection(): Slots {
  const slots = new Slots(objective.program);
  const nodes = topoSort(outputNodes(objective.program));
  for (const node of nodes.slice(0, 6)) slots.slot({ buffer: 'D', kind: 'value', node });
  for (const { name } of objective.inputs) slots.slot({ buffer: 'D', kind: 'input', name });
  for (const which of ['position', 'length', 'group_size'] as const) slots.slot({ buffer: 'D', kind: 'size', which });
  slots.slot({ buffer: 'D', kind: 'partials', node: nodes.find((n) => n.src.length > 0)!, chunk: 4, threads: 2 });
  for (const kind of ['offsets', 'seq_of', 'group_of', 'mask'] as const) slots.slot({ buffer: 'I', kind });
  LEVELS.forEach((from, a) =>
    LEVELS.slice(a).forEach((to) => {
      if (from !== 'group' || to !== 'group') slots.slot({ buffer: 'I', kind: 'csr_members', from, to });
      slots.slot({ buffer: 'I', kind: 'csr_starts', from, to });
    }),
  );
  return slots;
}

/** The device program of a Slots' sections (no steps: the arenas are all this test looks at). */
function deviceOf(slots: Slots): DeviceProgram {
  const level = new Map(objective.inputs.map((i) => [i.name, i.level] as const));
  return {
    sections: deviceSections(slots, (name) => level.get(name)!),
    rowSlots: [],
    scalars: deviceScalars(slots),
    steps: [],
  };
}

function size(b: RaggedBatch, level: Level): number {
  return level === 'token' ? b.numTokens : level === 'seq' ? b.numSeqs : level === 'group' ? b.numGroups : 1;
}

function seqOf(b: RaggedBatch): number[] {
  const out: number[] = [];
  for (let s = 0; s < b.numSeqs; s++) for (let t = b.offsets[s]; t < b.offsets[s + 1]; t++) out[t] = s;
  return out;
}

/** The definition of each section's contents. */
function expected(key: SectionKey, b: RaggedBatch): number[] {
  const valid = (t: number) => b.mask[t] !== 0;
  const seqs = seqOf(b);
  const tokens = (s: number) => Array.from({ length: b.offsets[s + 1] - b.offsets[s] }, (_, k) => b.offsets[s] + k);
  switch (key.kind) {
    case 'input':
      return Array.from(b.tensors.get(key.name)?.data ?? [], Math.fround);
    case 'size':
      if (key.which === 'position') return seqs.map((s, t) => tokens(s).filter((u) => u < t && valid(u)).length);
      if (key.which === 'length') return Array.from({ length: b.numSeqs }, (_, s) => tokens(s).filter(valid).length);
      return Array.from({ length: b.numGroups }, (_, g) => [...b.groupOf].filter((x) => x === g).length);
    case 'value':
    case 'partials':
    case 'segment_partials':
      return [];
    case 'offsets':
      return [...b.offsets];
    case 'seq_of':
      return seqs;
    case 'group_of':
      return [...b.groupOf];
    case 'mask':
      return [...b.mask];
    case 'csr_starts':
    case 'csr_members': {
      const parent = (i: number) =>
        key.from === key.to
          ? i
          : key.to === 'batch'
            ? 0
            : key.to === 'seq'
              ? seqs[i]
              : b.groupOf[key.from === 'token' ? seqs[i] : i];
      const elements = Array.from({ length: size(b, key.from) }, (_, i) => i);
      if (key.kind === 'csr_members') return elements.sort((i, j) => parent(i) - parent(j) || i - j);
      const starts = new Array<number>(size(b, key.to) + 1).fill(0);
      for (const i of elements) starts[parent(i) + 1]++;
      for (let j = 1; j < starts.length; j++) starts[j] += starts[j - 1];
      return starts;
    }
  }
}

function check(arenas: Arenas, slots: Slots, b: RaggedBatch, values: RunValues): void {
  expect(arenas.chunks.length).toBe(1);
  const { D, I, offsets } = arenas.chunks[0];
  const segments = new Segments(b);
  const G = arenas.G;
  // one chunk: its sizes are their own caps
  expect([...I.subarray(0, HEADER)]).toEqual([
    b.numTokens,
    b.numSeqs,
    b.numGroups,
    b.numTokens,
    b.numSeqs,
    b.numGroups,
    1,
  ]);
  expect([...I.subarray(HEADER, HEADER + slots.sections.length)]).toEqual(offsets);
  const validTokens = [...b.mask].filter((m) => m !== 0).length;
  for (const [name, index] of slots.scalarIndex) {
    const [kind, what] = name.split(':');
    const want =
      kind === 'param'
        ? values.params[what]
        : {
            step: values.step,
            total_steps: values.totalSteps,
            num_seqs: b.numSeqs,
            num_groups: b.numGroups,
            num_tokens: validTokens,
            vocab_size: b.vocabSize,
          }[what];
    expect(G[index], name).toBe(Math.fround(want!));
  }
  let dEnd = 0;
  let gEnd = slots.scalarCount;
  slots.sections.forEach((key, k) => {
    const want = expected(key, b);
    const length =
      key.kind === 'value'
        ? size(b, key.node.type.level)
        : key.kind === 'partials'
          ? 2 * Math.ceil(size(b, key.over ?? key.node.src[0].type.level) / key.chunk) * key.threads
          : want.length;
    const arena = arenaOf(key) === 'G' ? G : arenaOf(key) === 'D' ? D : I;
    const got = arena.subarray(offsets[k], offsets[k] + length);
    expect([...got], JSON.stringify({ ...key, node: undefined })).toEqual(
      key.kind === 'value' || key.kind === 'partials' ? new Array(length).fill(0) : want,
    );
    if (arenaOf(key) === 'D') dEnd = offsets[k] + length;
    if (arenaOf(key) === 'G') {
      gEnd = offsets[k] + length;
      expect(offsets[k]).toBe(arenas.gOffsets[k]);
    }
    // sections start at multiples of 4 (vectorized kernels read four tokens as one vec4), padded with zeros
    expect(offsets[k] % 4).toBe(0);
    expect(
      [...arena.subarray(offsets[k] + length, Math.ceil((offsets[k] + length) / 4) * 4)].every((x) => x === 0),
    ).toBe(true);
  });
  expect(D.length).toBe(Math.max(4, Math.ceil(dEnd / 4) * 4));
  expect(G.length).toBe(Math.ceil(gEnd / 4) * 4);
  expect([...segments.seqOf]).toEqual(seqOf(b));
  expect([...segments.position]).toEqual(expected({ buffer: 'D', kind: 'size', which: 'position' }, b));
  expect([...segments.length]).toEqual(expected({ buffer: 'D', kind: 'size', which: 'length' }, b));
  expect([...segments.groupSize]).toEqual(expected({ buffer: 'D', kind: 'size', which: 'group_size' }, b));
  expect(segments.validTokens).toBe(validTokens);
}

const values = (step: number): RunValues => ({
  params: Object.fromEntries(objective.program.params.map((p) => [p.name, p.default + step / 7])),
  step,
  totalSteps: 100,
});

describe('GPU arenas', () => {
  it('hold the definition of every section, across runs of batches of other shapes', () => {
    const slots = everySection();
    const device = deviceOf(slots);
    let step = 0;
    fc.assert(
      fc.property(fc.array(arbRefBatch({ maxGroups: 5, maxLen: 9 }), { minLength: 1, maxLength: 4 }), (refs) => {
        for (const ref of refs) {
          const b = toRagged(ref);
          step++;
          check(buildArenas(device, b, givenValues(values(step))), slots, b, values(step));
        }
      }),
      { numRuns: 60 },
    );
  });

  it('hold the same definitions when the same batch runs again with other values, or after another batch', () => {
    const slots = everySection();
    const device = deviceOf(slots);
    const big = syntheticBatch({
      seed: 3,
      tokens: 1500,
      groupSize: 4,
      inputs: objective.inputs,
      maskName: objective.maskName,
    });
    const small = syntheticBatch({
      seed: 4,
      tokens: 400,
      groupSize: 3,
      inputs: objective.inputs,
      maskName: objective.maskName,
    });
    const first = buildArenas(device, big, givenValues(values(1)));
    const firstI = [...first.chunks[0].I];
    for (const [b, step] of [
      [big, 2],
      [small, 3],
      [small, 4],
      [big, 5],
    ] as const)
      check(buildArenas(device, b, givenValues(values(step))), slots, b, values(step));
    const again = buildArenas(device, big, givenValues(values(6)));
    expect([...again.chunks[0].I]).toEqual(firstI);
    expect(again.chunks[0].sameStructure).toBe(true);
  });

  it('are built for the sections the program uses', () => {
    const slots = new Slots(objective.program);
    const b = toRagged(fc.sample(arbRefBatch({ minGroups: 2 }), { numRuns: 1 })[0]);
    const arenas = buildArenas(deviceOf(slots), b, givenValues(values(0)));
    expect(arenas.G.length).toBe(Math.ceil(slots.scalarCount / 4) * 4);
    expect(arenas.chunks[0].D.length).toBe(4);
    expect(arenas.chunks[0].I.length).toBe(Math.ceil(HEADER / 4) * 4);
  });
});

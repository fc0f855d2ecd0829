/**
 * KernelPlan kernels → WGSL compute shaders. Sizes, section offsets, params and the clock are
 * data (in `D` and `I`), never shader text, so a new batch, step or param value reuses the
 * compiled pipelines. Each shader names the source lines it came from in a comment.
 *
 *  - map: a workgroup per chunk of elements, threads strided over it (no launch per element);
 *  - reduce to the batch from tokens: branch-free first pass storing partials, then one
 *    workgroup folds the partials in a fixed order and runs the batch-level epilogue. The first
 *    pass takes a chunk of tokens per workgroup when sequences are short, a run of sequences per
 *    workgroup (one on a GPU) when they are long (a sequence's values are then one uniform load);
 *  - reduce to the batch from seqs or groups: one workgroup over all of them (one dispatch);
 *  - reduce to seqs or groups: a thread per segment when segments are short; when long, a
 *    workgroup per segment (for sequences, its threads' partials folded in the workgroup; for
 *    groups, a partial per thread, then a thread per group folding them) — chosen per batch by
 *    mean segment length;
 *  - seqwise (scan, cumprod, shift): one thread per sequence walks its tokens, skipping masked ones;
 *  - group-local: one thread per group runs the steps in order, looping over the group's
 *    sequences for seq-level steps (its own writes are visible to it, so no barrier is needed).
 * Every fold happens in a fixed order, so results are bit-identical from run to run. Section
 * offsets and scalars are read once at the top of each kernel (see hoistSections).
 */
import { InternalError } from '../../../core/diagnostics/diagnostic.js';
import type { Level } from '../../../core/types/types.js';
import type { RowEncoding } from '../../../core/device/program.js';
import type { Node } from '../../../core/ir/node.js';
import {
  kernelOutputs,
  overVocabulary,
  type Kernel,
  type KernelPlan,
  type ReduceKernel,
  type RowStep,
} from '../../plan/plan.js';
import { hoistSections, toGlobalArena, toVec4Arenas } from './arena-access.js';
import { combinePartials, reducePartialsVec4, reduceWhole } from './batch-reductions.js';
import { groupLocalKernel } from './group-local.js';
import { CHUNK_PER_THREAD, SHORT_SEGMENT, sequencesPerWorkgroup } from './kernel-parts.js';
import { mapKernel, mapKernelVec4 } from './map-kernels.js';
import {
  foldSegmentPartials,
  reducePerSegment,
  reducePerSequenceVec4,
  reducePerThread,
  reducePerThreadVec4,
  reduceSequencesToBatchVec4,
} from './segment-reductions.js';
import { rowKernel, rowThreads } from './row-kernels.js';
import { seqwiseKernelVec4 } from './seqwise.js';
import { PRELUDE, preludeFor } from './prelude.js';
import { Slots, arenaOf } from './slots.js';

export interface WgslKernel {
  readonly kernel: Kernel;
  /** Shader text; also the pipeline cache key. */
  readonly code: string;
  readonly workgroupSize: number;
  /** How many workgroups to launch, from the batch sizes: per element, per segment or per sequence. */
  readonly grid:
    | { readonly per: 'element' | 'segment'; readonly level: Level }
    | { readonly per: 'chunk'; readonly level: Level; readonly chunk: number };
  /**
   * Runs once per chunk of the batch on the chunk's `D` and `I` (`chunk`), or once for the whole
   * batch, reading and writing only `G` (`batch`: combines and batch-level maps), or once per row
   * chunk of each chunk, with a workgroup per vocabulary row (`rows`, row-kernels.ts). See slots.ts.
   */
  readonly scope: 'chunk' | 'batch' | 'rows';
  /**
   * Alternative strategies of one kernel: the executor runs this one only when the batch's mean
   * segment size (elements of `from` per element of `to`) is below / at least the threshold, or
   * only when the batch runs in one chunk / in several.
   */
  readonly when?:
    | { readonly from: Level; readonly to: Level; readonly meanBelow?: number; readonly meanAtLeast?: number }
    | { readonly chunks: 'one' | 'many' };
  /** Binds the arenas as vec4 arrays (four tokens per step). */
  readonly vec4?: boolean;
  /** Row kernels: the same kernel compiled for these encodings of the `L` slots (Launch.variant). */
  readonly variant?: (encodings: readonly RowEncoding[]) => string;
}

export interface WgslProgram {
  readonly slots: Slots;
  readonly kernels: readonly (WgslKernel | { readonly kernel: Extract<Kernel, { kind: 'host' }> })[];
}

/** @param workgroupSize threads per workgroup: the adapter's choice (compiler/lower-to-device.ts passes it). */
export function emitWgsl(plan: KernelPlan, workgroupSize: number): WgslProgram {
  const slots = new Slots(plan.program);
  const materialized = new Set(plan.materialized.map((n) => n.id));
  // every materialized value and input gets its slot up front, so slot numbers do not depend on kernel order
  // (values over the vocabulary live in L: row-kernels.ts gives them their slots)
  for (const n of plan.materialized) if (n.type.level !== 'vocab') slots.slot({ buffer: 'D', kind: 'value', node: n });
  for (const i of plan.program.inputs)
    if (i.level !== 'vocab') slots.slot({ buffer: 'D', kind: 'input', name: i.name });
  const chunk = workgroupSize * CHUNK_PER_THREAD;
  type Emitted =
    | (Omit<WgslKernel, 'scope'> & { scope?: WgslKernel['scope'] })
    | { readonly kernel: Extract<Kernel, { kind: 'host' }> };
  const kernels = plan.kernels.flatMap((k): Emitted[] => {
    if (overVocabulary(k)) {
      const steps = k.kind === 'rows' ? k.steps : [k as RowStep];
      return [
        {
          kernel: k,
          code: rowKernel(steps, slots, materialized, workgroupSize),
          variant: (encodings) => rowKernel(steps, slots, materialized, workgroupSize, (slot) => encodings[slot]),
          workgroupSize: rowThreads(workgroupSize),
          grid: { per: 'segment', level: 'token' },
          scope: 'rows',
        },
      ];
    }
    switch (k.kind) {
      case 'host':
        return [{ kernel: k }];
      case 'map':
        if (k.level === 'token')
          return [
            {
              kernel: k,
              code: mapKernelVec4(k, slots, materialized, workgroupSize),
              workgroupSize,
              grid: { per: 'chunk', level: k.level, chunk },
              vec4: true,
            },
          ];
        // batch-level maps read and write only G: once for the whole batch
        return [
          {
            kernel: k,
            code: mapKernel(k, slots, materialized, workgroupSize),
            workgroupSize,
            grid: { per: 'chunk', level: k.level, chunk },
            scope: k.level === 'batch' ? 'batch' : 'chunk',
          },
        ];
      case 'reduce': {
        const [first] = k.nodes;
        const from = first.src[0].type.level;
        const to = first.type.level;
        if (to === 'batch' && from !== 'token') {
          // sequences or groups: few enough for one workgroup, one dispatch; a batch in several
          // chunks (each with its own sequences) combines a partial per chunk afterwards
          return [
            {
              kernel: k,
              code: reduceWhole(k, slots, materialized, workgroupSize),
              workgroupSize,
              grid: { per: 'segment', level: 'batch' },
              when: { chunks: 'one' },
            },
            {
              kernel: k,
              code: reduceWhole(k, slots, materialized, workgroupSize, 'chunk-partial'),
              workgroupSize,
              grid: { per: 'segment', level: 'batch' },
              when: { chunks: 'many' },
            },
            {
              kernel: k,
              code: combinePartials(k, slots, materialized, workgroupSize, 'whole'),
              workgroupSize,
              grid: { per: 'segment', level: 'batch' },
              scope: 'batch',
              when: { chunks: 'many' },
            },
          ];
        }
        if (to === 'batch') {
          // two passes: partials across many workgroups, then one fixed-order combine. Short
          // sequences: a workgroup per chunk of tokens, a sequence's values read per token through
          // seq_of. Long ones: a workgroup walks a run of sequences, reading each one's values once
          // (uniform) and gathering nothing.
          const short = { from: 'token' as Level, to: 'seq' as Level, meanBelow: SHORT_SEGMENT };
          const long = { from: 'token' as Level, to: 'seq' as Level, meanAtLeast: SHORT_SEGMENT };
          return [
            {
              kernel: k,
              code: reducePartialsVec4(k, slots, materialized, workgroupSize),
              workgroupSize,
              grid: { per: 'chunk', level: from, chunk },
              when: short,
              vec4: true,
            },
            {
              kernel: k,
              code: combinePartials(k, slots, materialized, workgroupSize),
              workgroupSize,
              grid: { per: 'segment', level: 'batch' },
              scope: 'batch' as const,
              when: short,
            },
            {
              kernel: k,
              code: reduceSequencesToBatchVec4(k, slots, materialized, workgroupSize),
              workgroupSize,
              grid: { per: 'chunk', level: 'seq', chunk: sequencesPerWorkgroup(workgroupSize) },
              when: long,
              vec4: true,
            },
            {
              kernel: k,
              code: combinePartials(k, slots, materialized, workgroupSize, 'sequence-threads'),
              workgroupSize,
              grid: { per: 'segment', level: 'batch' },
              scope: 'batch' as const,
              when: long,
            },
          ];
        }
        if (from !== 'token') {
          // segments of sequences (a group's responses) are small: one thread each, no barriers
          return [
            {
              kernel: k,
              code: reducePerThread(k, slots, materialized, workgroupSize),
              workgroupSize,
              grid: { per: 'element', level: to },
            },
          ];
        }
        // tokens: many short segments → a thread per segment; long ones → a workgroup per segment
        // Reductions to the batch folded through the segments (the plan's fuseAlongside) and the values stored
        // alongside ride in the workgroup-per-segment pass; with short segments, where a thread
        // walks a whole segment, lanes would diverge over the heavy token work: they get the
        // chunked two-pass reduction of their own instead.
        const short = { from: 'token' as Level, to, meanBelow: SHORT_SEGMENT };
        const long = { from: 'token' as Level, to, meanAtLeast: SHORT_SEGMENT };
        const own: ReduceKernel = { ...k, viaSegments: [], alongside: [], epilogue: [] };
        const toBatch: ReduceKernel = { ...k, nodes: k.viaSegments, viaSegments: [] };
        const split = k.viaSegments.length > 0 || k.alongside.length > 0;
        return [
          to === 'seq'
            ? {
                kernel: k,
                code: reducePerThreadVec4(split ? own : k, slots, materialized, workgroupSize),
                workgroupSize,
                grid: { per: 'element', level: to },
                when: short,
                vec4: true,
              }
            : {
                kernel: k,
                code: reducePerThread(split ? own : k, slots, materialized, workgroupSize),
                workgroupSize,
                grid: { per: 'element', level: to },
                when: short,
              },
          ...(split && toBatch.nodes.length
            ? [
                {
                  kernel: k,
                  code: reducePartialsVec4(toBatch, slots, materialized, workgroupSize),
                  workgroupSize,
                  grid: { per: 'chunk' as const, level: from, chunk },
                  when: short,
                  vec4: true,
                },
                {
                  kernel: k,
                  code: combinePartials(toBatch, slots, materialized, workgroupSize),
                  workgroupSize,
                  grid: { per: 'segment' as const, level: 'batch' as Level },
                  scope: 'batch' as const,
                  when: short,
                },
              ]
            : split
              ? [
                  {
                    kernel: k,
                    code: mapKernelVec4(
                      { kind: 'map', level: from, outputs: k.alongside, stage: k.stage },
                      slots,
                      materialized,
                      workgroupSize,
                    ),
                    workgroupSize,
                    grid: { per: 'chunk' as const, level: from, chunk },
                    when: short,
                    vec4: true,
                  },
                ]
              : []),
          to === 'seq'
            ? {
                kernel: k,
                code: reducePerSequenceVec4(k, slots, materialized, workgroupSize),
                workgroupSize,
                grid: { per: 'segment', level: to },
                when: long,
                vec4: true,
              }
            : {
                kernel: k,
                code: reducePerSegment(k, slots, materialized, workgroupSize),
                workgroupSize,
                grid: { per: 'segment', level: to },
                when: long,
              },
          ...(to === 'seq'
            ? []
            : [
                {
                  kernel: k,
                  code: foldSegmentPartials(k, slots, workgroupSize),
                  workgroupSize,
                  grid: { per: 'element' as const, level: to },
                  when: long,
                },
              ]),
          ...(k.viaSegments.length
            ? [
                {
                  kernel: k,
                  code: combinePartials(k, slots, materialized, workgroupSize),
                  workgroupSize,
                  grid: { per: 'segment' as const, level: 'batch' as Level },
                  scope: 'batch' as const,
                  when: long,
                },
              ]
            : []),
        ];
      }
      case 'rows':
        throw new InternalError('codegen-wgsl', 'row kernels are emitted above');
      case 'group-local':
        return [
          {
            kernel: k,
            code: groupLocalKernel(k.steps, slots, materialized, workgroupSize),
            workgroupSize,
            grid: { per: 'element', level: 'group' },
          },
        ];
      case 'seqwise':
        if (k.node.op === 'shift' && !Number.isFinite((k.node.args as { fill: number }).fill))
          throw new InternalError('codegen-wgsl', 'non-finite shift fill');
        return [
          {
            kernel: k,
            code: seqwiseKernelVec4(k.node, slots, materialized, workgroupSize),
            workgroupSize,
            grid: { per: 'element', level: 'seq' },
            vec4: true,
          },
        ];
    }
  });
  markOverwrites(plan, slots, materialized);
  const global = new Set(slots.sections.flatMap((key, k) => (arenaOf(key) === 'G' ? [k] : [])));
  const finish = (k: Omit<WgslKernel, 'scope'> & { scope?: WgslKernel['scope'] }): WgslKernel => {
    if (!k.code.startsWith(PRELUDE))
      throw new InternalError('codegen-wgsl', 'a kernel template must start with the prelude');
    const text = (raw: string) => {
      const code = hoistSections(
        toGlobalArena(preludeFor(raw.slice(PRELUDE.length)) + raw.slice(PRELUDE.length), global),
      );
      return k.vec4 ? toVec4Arenas(code) : code;
    };
    const variant = k.variant;
    return {
      ...k,
      scope: k.scope ?? 'chunk',
      code: text(k.code),
      ...(variant ? { variant: (encodings: readonly RowEncoding[]) => text(variant(encodings)) } : {}),
    };
  };
  return { slots, kernels: kernels.map((k) => ('code' in k ? finish(k) : k)) };
}

/**
 * The gradients over the vocabulary that may be written over their input's memory
 * (Slots.rowOverwrites): written by the last step, of the last kernel, that reads that input — a
 * map over the row, each entry stored right after it is read, by the same thread.
 */
function markOverwrites(plan: KernelPlan, slots: Slots, materialized: ReadonlySet<number>): void {
  const steps = plan.kernels.flatMap((k, i) =>
    (k.kind === 'rows' ? k.steps : [k]).map((step) => ({ step, kernel: i })),
  );
  const reads = (step: Kernel, name: string) => kernelOutputs(step).some((n) => readsInput(n, name, materialized));
  slots.rows.forEach((key, k) => {
    if (key.kind !== 'output') return;
    const input = [...plan.program.grads].find(([, g]) => g === key.node)?.[0];
    const from = input === undefined ? undefined : slots.rows.findIndex((r) => r.kind === 'input' && r.name === input);
    if (input === undefined || from === undefined || from < 0) return;
    const last = steps.filter((s) => reads(s.step, input)).pop();
    if (last?.step.kind === 'map' && last.step.level === 'vocab' && last.step.outputs.includes(key.node))
      slots.rowOverwrites.set(k, from);
  });
}

/** Whether computing `n` reads the input `name` (through every value it recomputes). */
function readsInput(n: Node, name: string, materialized: ReadonlySet<number>): boolean {
  const seen = new Set<number>();
  const stack = [...n.src];
  while (stack.length) {
    const m = stack.pop()!;
    if (seen.has(m.id)) continue;
    seen.add(m.id);
    if (m.op === 'input' && (m.args as { name: string }).name === name) return true;
    if (!materialized.has(m.id)) stack.push(...m.src);
  }
  return false;
}

/**
 * KernelPlan kernels → WGSL compute shaders. Sizes, section offsets, params and the clock are
 * data (in `D` and `I`), never shader text, so a new batch, step or param value reuses the
 * compiled pipelines. Each shader names the source lines it came from in a comment.
 *
 *  - map: a workgroup per chunk of elements, threads strided over it (no launch per element);
 *  - reduce to the batch from tokens: branch-free first pass, a partial per thread, then one
 *    workgroup folds the partials in a fixed order and runs the batch-level epilogue;
 *  - reduce to the batch from seqs or groups: one workgroup over all of them (one dispatch);
 *  - reduce to seqs or groups: a thread per segment when segments are short; when long, a
 *    workgroup per segment storing a partial per thread, then a thread per segment folding them
 *    — chosen per batch by mean segment length;
 *  - seqwise (scan, cumprod, shift): one thread per sequence walks its tokens, skipping masked ones;
 *  - group-local: one thread per group runs the steps in order, looping over the group's
 *    sequences for seq-level steps (its own writes are visible to it, so no barrier is needed).
 * Every fold happens in a fixed order, so results are bit-identical from run to run. Section
 * offsets and scalars are read once at the top of each kernel (see hoistSections).
 */
import { InternalError } from '../../../src/diagnostics/diagnostic.js';
import type { Node } from '../../../src/ir/node.js';
import type { Level } from '../../../src/types/types.js';
import type { GroupStep, Kernel, KernelPlan, ReduceKernel } from '../../plan/plan.js';
import { ExprEmitter, f32Literal } from './expr.js';
import { PRELUDE } from './prelude.js';
import { hoistSections, toVec4Arenas } from './arena-access.js';
import { Slots, type SectionKey } from './slots.js';
import { vectorLanes, type VectorLane } from './vector-lanes.js';

export interface WgslKernel {
  readonly kernel: Kernel;
  /** Shader text; also the pipeline cache key. */
  readonly code: string;
  readonly workgroupSize: number;
  /** How many workgroups to launch, from the batch sizes: per element, per segment or per sequence. */
  readonly grid: { readonly per: 'element' | 'segment'; readonly level: Level } | { readonly per: 'chunk'; readonly level: Level; readonly chunk: number };
  /**
   * Alternative strategies of one kernel: the executor runs this one only when the batch's mean
   * segment size (elements of `from` per element of `to`) is below / at least the threshold.
   */
  readonly when?: { readonly from: Level; readonly to: Level; readonly meanBelow?: number; readonly meanAtLeast?: number };
  /** Binds the arenas as vec4 arrays (four tokens per step). */
  readonly vec4?: boolean;
}

export interface WgslProgram {
  readonly slots: Slots;
  readonly kernels: readonly (WgslKernel | { readonly kernel: Extract<Kernel, { kind: 'host' }> })[];
}

export function emitWgsl(plan: KernelPlan, workgroupSize = 64): WgslProgram {
  const slots = new Slots(plan.program);
  const materialized = new Set(plan.materialized.map((n) => n.id));
  // every materialized value and input gets its slot up front, so slot numbers do not depend on kernel order
  for (const n of plan.materialized) slots.slot({ buffer: 'D', kind: 'value', node: n });
  for (const i of plan.program.inputs) slots.slot({ buffer: 'D', kind: 'input', name: i.name });
  const chunk = workgroupSize * CHUNK_PER_THREAD;
  const kernels = plan.kernels.flatMap((k): WgslProgram['kernels'][number][] => {
    switch (k.kind) {
      case 'host':
        return [{ kernel: k }];
      case 'map':
        if (k.level === 'token') return [{ kernel: k, code: mapKernelVec4(k, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'chunk', level: k.level, chunk }, vec4: true }];
        return [{ kernel: k, code: mapKernel(k, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'chunk', level: k.level, chunk } }];
      case 'reduce': {
        const [first] = k.nodes;
        const from = first.src[0].type.level;
        const to = first.type.level;
        if (to === 'batch' && from !== 'token') {
          // sequences or groups: few enough for one workgroup, one dispatch
          return [{ kernel: k, code: reduceWhole(k, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'segment', level: 'batch' } }];
        }
        if (to === 'batch') {
          // two passes: partials per chunk of elements across many workgroups, then one fixed-order
          // combine. (A workgroup per sequence, which reads a sequence's values once instead of
          // through seq_of per token, measured slower on llvmpipe for dapo at 2^20 tokens in
          // sequences of about 1000: 8.4 + 1.0 ms against 7.6 + 0.3 ms scalar, 7.4–13 + 1.0 ms
          // against 5.0 + 0.3 ms with vec4 steps.)
          return [
            { kernel: k, code: reducePartialsVec4(k, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'chunk', level: from, chunk }, vec4: true },
            { kernel: k, code: combinePartials(k, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'segment', level: 'batch' } },
          ];
        }
        if (from !== 'token') {
          // segments of sequences (a group's responses) are small: one thread each, no barriers
          return [{ kernel: k, code: reducePerThread(k, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'element', level: to } }];
        }
        // tokens: many short segments → a thread per segment; long ones → a workgroup per segment
        // Reductions to the batch folded through the segments (plan rule 6b) and the values stored
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
            ? { kernel: k, code: reducePerThreadVec4(split ? own : k, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'element', level: to }, when: short, vec4: true }
            : { kernel: k, code: reducePerThread(split ? own : k, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'element', level: to }, when: short },
          ...(split && toBatch.nodes.length
            ? [
                { kernel: k, code: reducePartialsVec4(toBatch, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'chunk' as const, level: from, chunk }, when: short, vec4: true },
                { kernel: k, code: combinePartials(toBatch, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'segment' as const, level: 'batch' as Level }, when: short },
              ]
            : split
              ? [{ kernel: k, code: mapKernelVec4({ kind: 'map', level: from, outputs: k.alongside, stage: k.stage }, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'chunk' as const, level: from, chunk }, when: short, vec4: true }]
              : []),
          to === 'seq'
            ? { kernel: k, code: reducePerSequenceVec4(k, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'segment', level: to }, when: long, vec4: true }
            : { kernel: k, code: reducePerSegment(k, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'segment', level: to }, when: long },
          { kernel: k, code: foldSegmentPartials(k, slots, workgroupSize), workgroupSize, grid: { per: 'element', level: to }, when: long },
          ...(k.viaSegments.length ? [{ kernel: k, code: combinePartials(k, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'segment' as const, level: 'batch' as Level }, when: long }] : []),
        ];
      }
      case 'group-local':
        return [{ kernel: k, code: groupLocalKernel(k.steps, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'element', level: 'group' } }];
      case 'seqwise':
        if (k.node.op === 'shift' && !Number.isFinite((k.node.args as { fill: number }).fill)) throw new InternalError('codegen-wgsl', 'non-finite shift fill');
        return [{ kernel: k, code: seqwiseKernelVec4(k.node, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'element', level: 'seq' }, vec4: true }];
    }
  });
  return { slots, kernels: kernels.map((k) => ('code' in k ? { ...k, code: k.vec4 ? toVec4Arenas(hoistSections(k.code)) : hoistSections(k.code) } : k)) };
}

/** Mean segment length (tokens) below which one thread per segment beats one workgroup per segment. */
const SHORT_SEGMENT = 256;

/**
 * Elements each thread handles in a map or in the first pass of a batch reduction. A thread per
 * element costs a workgroup launch per 64 elements, which dominates on CPU-backed adapters
 * (llvmpipe: 13 ms against 3 ms for a 2^20-element stream) and is no faster on GPUs.
 */
const CHUNK_PER_THREAD = 64;

const COUNT: Record<Level, string> = { token: 'I[0]', seq: 'I[1]', group: 'I[2]', batch: '1u' };

function origins(nodes: readonly Node[]): string {
  const lines = new Set<string>();
  for (const n of nodes) if (n.span) lines.add(`${n.span.file.path}:${n.span.file.position(n.span.start).line}`);
  return lines.size ? `// from ${[...lines].join(', ')}\n` : '';
}

function store(slots: Slots, n: Node, index: string, value: string): string {
  const v = n.type.dtype === 'bool' ? `select(0.0, 1.0, ${value})` : value;
  return `D[sec(${slots.slot({ buffer: 'D', kind: 'value', node: n })}u) + ${index}] = ${v};`;
}

function indent(lines: readonly string[], by: string): string {
  return lines.map((l) => by + l).join('\n');
}

function mapKernel(k: Extract<Kernel, { kind: 'map' }>, slots: Slots, materialized: ReadonlySet<number>, wg: number): string {
  // the outputs of this kernel are computed here, not loaded
  const computing = new Set([...materialized].filter((id) => !k.outputs.some((o) => o.id === id)));
  const e = new ExprEmitter(slots, computing, { index: { [k.level]: 'i' } });
  const stores = k.outputs.map((o) => store(slots, o, k.level === 'batch' ? '0u' : 'i', e.value(o)));
  const chunk = wg * CHUNK_PER_THREAD;
  // a workgroup per chunk of elements, its threads strided over it (neighbouring threads, neighbouring elements)
  return `${PRELUDE}
${origins(k.outputs)}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let lo = (wid.x + wid.y * nwg.x) * ${chunk}u;
  let hi = min(${COUNT[k.level]}, lo + ${chunk}u);
  var i = lo + lid.x;
  loop {
    if (i >= hi) { break; }
${indent([...e.lines, ...stores], '    ')}
    i = i + ${wg}u;
  }
}
`;
}

/** How one reduction of a multi-output reduce kernel folds its values. */
function folds(fn: 'sum' | 'max' | 'min', k: number) {
  return {
    // into a thread's accumulator (the first value replaces the identity)
    step: fn === 'sum' ? `acc${k} + xv${k}` : `select(${fn}(acc${k}, xv${k}), xv${k}, cnt${k} == 0.0)`,
    // of two partials a and b
    pair: fn === 'sum' ? 'a + b' : `${fn}(a, b)`,
  };
}

/**
 * The loop body shared by the reduce strategies: the fused prologue of every value (CSE'd across
 * them), then each value folded into its accumulator where it is selected. Branch-free: every
 * element is computed and `select` keeps the valid, selected ones (a value computed for a masked
 * token may be NaN; select drops it). Divergent branches cost more than the math on SIMD lanes.
 * Values stored `alongside` (rule 6 of the plan) share their subexpressions with the prologues.
 */
function accumulate(
  nodes: readonly Node<'reduce'>[],
  slots: Slots,
  materialized: ReadonlySet<number>,
  indent: string,
  opts: { alongside?: readonly Node[]; scope?: Partial<Record<Level, string>>; lane?: VectorLane } = {},
): { decls: string; body: string } {
  const from = nodes[0].src[0].type.level;
  const alongside = opts.alongside ?? [];
  const computing = new Set([...materialized].filter((id) => !alongside.some((o) => o.id === id)));
  const lane = opts.lane;
  const e = new ExprEmitter(slots, computing, { index: { ...opts.scope, [from]: lane ? lane.token : 'e' }, tokenLoad: lane?.load }, lane ? `p${lane.k}_` : 'p');
  const stores = alongside.map((o) => (lane ? lane.store(o, e.value(o)) : store(slots, o, 'e', e.value(o))));
  const maskSlot = () => slots.slot({ buffer: 'I', kind: 'mask' });
  const valid = from !== 'token' ? 'true' : lane ? `${lane.load('I', maskSlot())} != 0u${lane.guard ? ` && ${lane.guard}` : ''}` : `I[sec(${maskSlot()}u) + e] != 0u`;
  const x_ = lane ? `_${lane.k}` : '';
  const parts = nodes.map((n, k) => {
    const [x, cond] = n.src;
    const value = e.value(x);
    const keep = cond ? `${valid} && ${e.value(cond)}` : valid;
    const xv = x.type.dtype === 'bool' ? `select(0.0, 1.0, ${value})` : value;
    const [take, v] = [`take${k}${x_}`, `xv${k}${x_}`];
    const fold = n.args.fn === 'sum' ? `acc${k} + select(0.0, ${v}, ${take})` : `select(acc${k}, select(${n.args.fn}(acc${k}, ${v}), ${v}, cnt${k} == 0.0), ${take})`;
    return [`let ${take}: bool = ${keep};`, `let ${v}: f32 = ${xv};`, `acc${k} = ${fold};`, `cnt${k} = cnt${k} + select(0.0, 1.0, ${take});`];
  });
  return {
    decls: nodes.map((_, k) => `var acc${k}: f32 = 0.0;\n  var cnt${k}: f32 = 0.0;`).join('\n  '),
    body: [...e.lines, ...stores, ...parts.flat()].join(`\n${indent}`),
  };
}

/**
 * First pass of a reduction of tokens to the whole batch: a workgroup per chunk of tokens, its
 * threads strided over the chunk four tokens at a time (vectorLanes: neighbouring threads read
 * neighbouring vec4s), each folding its tokens into its own (value, count) partial. No workgroup
 * barrier: on CPU-backed adapters a barrier turns the shader into coroutines and costs more than
 * the math.
 */
function reducePartialsVec4(k: ReduceKernel, slots: Slots, materialized: ReadonlySet<number>, wg: number): string {
  const nodes = k.nodes;
  const groups = (wg * CHUNK_PER_THREAD) / 4;
  const v = vectorLanes(slots, 'g');
  const bodies = v.lanes.map((lane) => accumulate(nodes, slots, materialized, '    ', { alongside: k.alongside, lane }));
  const results = nodes.map((n, i) => {
    const partials = slots.slot(batchPartials(k, n, wg).key);
    return `D[sec(${partials}u) + 2u * q] = select(0.0, acc${i}, cnt${i} > 0.0);\n  D[sec(${partials}u) + 2u * q + 1u] = cnt${i};`;
  });
  const body = bodies.map((b) => b.body).join('\n    ');
  return `${PRELUDE}
${origins(nodes)}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let w = wid.x + wid.y * nwg.x;
  let q = w * ${wg}u + lid.x;
  let hi = min((I[0] + 3u) / 4u, (w + 1u) * ${groups}u);
  ${bodies[0].decls}
  var g = w * ${groups}u + lid.x;
  loop {
    if (g >= hi) { break; }
    ${v.loads().join('\n    ')}
    ${body}
    ${v.stores().join('\n    ')}
    g = g + ${wg}u;
  }
  ${results.join('\n  ')}
}
`;
}

/** A map over tokens, four per step (vec4 loads and stores, see vectorLanes). */
function mapKernelVec4(k: Extract<Kernel, { kind: 'map' }>, slots: Slots, materialized: ReadonlySet<number>, wg: number): string {
  const computing = new Set([...materialized].filter((id) => !k.outputs.some((o) => o.id === id)));
  const groups = (wg * CHUNK_PER_THREAD) / 4;
  const v = vectorLanes(slots, 'g');
  const bodies = v.lanes.map((lane) => {
    const e = new ExprEmitter(slots, computing, { index: { token: lane.token }, tokenLoad: lane.load }, `p${lane.k}_`);
    const stores = k.outputs.map((o) => lane.store(o, e.value(o)));
    return [...e.lines, ...stores];
  });
  return `${PRELUDE}
${origins(k.outputs)}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let w = wid.x + wid.y * nwg.x;
  let hi = min((I[0] + 3u) / 4u, (w + 1u) * ${groups}u);
  var g = w * ${groups}u + lid.x;
  loop {
    if (g >= hi) { break; }
${indent([...v.loads(), ...bodies.flat(), ...v.stores()], '    ')}
    g = g + ${wg}u;
  }
}
`;
}

/**
 * One workgroup over every element of a small level (sequences, groups) for a reduction to the
 * batch, with its epilogue: one dispatch instead of partials and a combine. Threads stride over
 * the elements, then their partials are folded in a fixed order.
 */
function reduceWhole(k: ReduceKernel, slots: Slots, materialized: ReadonlySet<number>, wg: number): string {
  const nodes = k.nodes;
  const from = nodes[0].src[0].type.level;
  const acc = accumulate(nodes, slots, materialized, '    ', { alongside: k.alongside });
  const results = nodes.map((n, k) => store(slots, n, '0u', `select(0.0, part${k}[0], pcnt${k}[0] > 0.0)`));
  // NOTE: an explicit loop with the increment at the end of the body: `for (…; j += n)` with
  // `continue` hung or crashed llvmpipe (Mesa 25) for some shaders.
  return `${PRELUDE}
${workgroupArrays(nodes.length, wg)}
${origins([...nodes, ...k.epilogue])}@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_id) lid: vec3u) {
  ${acc.decls}
  var j = lid.x;
  loop {
    if (j >= ${COUNT[from]}) { break; }
    let e = j;
    ${acc.body}
    j = j + ${wg}u;
  }
${treeFold(wg, nodes.map((n) => folds(n.args.fn, 0).pair))}
  if (lid.x == 0u) {
    ${results.join('\n    ')}
  }
${epilogue(k, slots, materialized)}}
`;
}

/**
 * What a pass over each segment's members folds (its reductions, then those to the batch folded
 * through the segments), and the loop body that folds one member `e` of segment `seg`.
 */
function segmentPass(k: ReduceKernel, slots: Slots, materialized: ReadonlySet<number>) {
  const nodes = [...k.nodes, ...k.viaSegments];
  const from = nodes[0].src[0].type.level;
  const to = k.nodes[0].type.level;
  const starts = slots.slot({ buffer: 'I', kind: 'csr_starts', from, to });
  // every token of a sequence's pass belongs to it: sequence-level values need no seq_of lookup
  const scope = from === 'token' && to === 'seq' ? { seq: 'seg' } : {};
  const acc = accumulate(nodes, slots, materialized, '    ', { alongside: k.alongside, scope });
  return { nodes, from, to, starts, acc };
}

/**
 * Long segments: a workgroup per segment, its threads strided over the segment's members, each
 * storing its own (value, count) partial — no barrier (see reducePartialsVec4).
 * foldSegmentPartials then folds each segment's partials in order.
 */
function reducePerSegment(k: ReduceKernel, slots: Slots, materialized: ReadonlySet<number>, wg: number): string {
  const { nodes, from, to, starts, acc } = segmentPass(k, slots, materialized);
  const results = nodes.map((n, i) => {
    const partials = slots.slot({ buffer: 'D', kind: 'segment_partials', node: n, segments: to, threads: wg, minMean: SHORT_SEGMENT });
    return `D[sec(${partials}u) + 2u * q] = acc${i};\n  D[sec(${partials}u) + 2u * q + 1u] = cnt${i};`;
  });
  return `${PRELUDE}
${origins(nodes)}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let seg = wid.x + wid.y * nwg.x;
  if (seg >= ${COUNT[to]}) { return; }
  let q = seg * ${wg}u + lid.x;
  let hi = I[sec(${starts}u) + seg + 1u];
  ${acc.decls}
  var j = I[sec(${starts}u) + seg] + lid.x;
  loop {
    if (j >= hi) { break; }
    let e = ${memberOf(slots, from, to, 'j')};
    ${acc.body}
    j = j + ${wg}u;
  }
  ${results.join('\n  ')}
}
`;
}

/**
 * reducePerSegment over a sequence's tokens, four per step (vectorLanes): the vec4s at both ends
 * are shared with the neighbouring sequences, so lanes outside the sequence are left out of the
 * reductions and of the stores. The sequence's own values are one load for the workgroup.
 */
function reducePerSequenceVec4(k: ReduceKernel, slots: Slots, materialized: ReadonlySet<number>, wg: number): string {
  const nodes = [...k.nodes, ...k.viaSegments];
  const starts = slots.slot({ buffer: 'I', kind: 'csr_starts', from: 'token', to: 'seq' });
  const v = vectorLanes(slots, 'g', { lo: 'lo', hi: 'hi' });
  const bodies = v.lanes.map((lane) => accumulate(nodes, slots, materialized, '    ', { alongside: k.alongside, lane, scope: { seq: 'seg' } }));
  const results = nodes.map((n, i) => {
    const partials = slots.slot({ buffer: 'D', kind: 'segment_partials', node: n, segments: 'seq', threads: wg, minMean: SHORT_SEGMENT });
    return `D[sec(${partials}u) + 2u * q] = acc${i};\n  D[sec(${partials}u) + 2u * q + 1u] = cnt${i};`;
  });
  return `${PRELUDE}
${origins(nodes)}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let seg = wid.x + wid.y * nwg.x;
  if (seg >= I[1]) { return; }
  let q = seg * ${wg}u + lid.x;
  let lo = I[sec(${starts}u) + seg];
  let hi = I[sec(${starts}u) + seg + 1u];
  let gh = (hi + 3u) / 4u;
  ${bodies[0].decls}
  var g = lo / 4u + lid.x;
  loop {
    if (g >= gh) { break; }
${indent([...v.loads(), ...bodies.map((b) => b.body), ...v.stores()], '    ')}
    g = g + ${wg}u;
  }
  ${results.join('\n  ')}
}
`;
}

/** Second pass of reducePerSegment: a thread per segment folds its threads' partials in order. */
function foldSegmentPartials(k: ReduceKernel, slots: Slots, wg: number): string {
  const to = k.nodes[0].type.level;
  const blocks = [...k.nodes, ...k.viaSegments].map((n) => {
    const partials = slots.slot({ buffer: 'D', kind: 'segment_partials', node: n, segments: k.nodes[0].type.level, threads: wg, minMean: SHORT_SEGMENT });
    const fn = n.args.fn;
    const fold = fn === 'sum' ? 'a + b' : fn === 'max' ? 'max(a, b)' : 'min(a, b)';
    return `  {
    var acc: f32 = 0.0;
    var cnt: f32 = 0.0;
    for (var i = 0u; i < ${wg}u; i = i + 1u) {
      let b = D[sec(${partials}u) + 2u * (seg * ${wg}u + i)];
      let cb = D[sec(${partials}u) + 2u * (seg * ${wg}u + i) + 1u];
      let a = acc;
      acc = select(acc, select(${fold}, b, cnt == 0.0), cb > 0.0);
      cnt = cnt + cb;
    }
    ${
      k.viaSegments.includes(n)
        ? `D[sec(${slots.slot(batchPartials(k, n, wg).key)}u) + 2u * seg] = acc;\n    D[sec(${slots.slot(batchPartials(k, n, wg).key)}u) + 2u * seg + 1u] = cnt;`
        : store(slots, n, 'seg', 'select(0.0, acc, cnt > 0.0)')
    }
  }`;
  });
  return `${PRELUDE}
${origins(k.nodes)}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let seg = (wid.x + wid.y * nwg.x) * ${wg}u + lid.x;
  if (seg >= ${COUNT[to]}) { return; }
${blocks.join('\n')}
}
`;
}

/** The batch-level epilogue of a reduction kernel (plan rule 7), run by thread 0 after the results are stored. */
function epilogue(k: ReduceKernel, slots: Slots, materialized: ReadonlySet<number>): string {
  if (!k.epilogue.length) return '';
  const computing = new Set([...materialized].filter((id) => !k.epilogue.some((o) => o.id === id)));
  const e = new ExprEmitter(slots, computing, { index: {} }, 'q');
  const stores = k.epilogue.map((o) => store(slots, o, '0u', e.value(o)));
  return `  if (lid.x == 0u) {\n${indent([...e.lines, ...stores], '    ')}\n  }\n`;
}

/**
 * The (value, count) partials a reduction to the batch is combined from: a partial per thread of
 * the chunked first pass, or — folded through segments (plan rule 6b) — one per segment.
 */
function batchPartials(k: ReduceKernel, n: Node<'reduce'>, wg: number): { key: SectionKey; count: string } {
  if (k.viaSegments.includes(n)) return { key: { buffer: 'D', kind: 'partials', node: n, chunk: 1, threads: 1, over: k.nodes[0].type.level }, count: COUNT[k.nodes[0].type.level] };
  const chunk = wg * CHUNK_PER_THREAD;
  const from = n.src[0].type.level;
  // one partial per thread of every first-pass workgroup
  return { key: { buffer: 'D', kind: 'partials', node: n, chunk, threads: wg }, count: `(${COUNT[from]} + ${chunk - 1}u) / ${chunk}u * ${wg}u` };
}

/**
 * Element j of the concatenated member lists of the segments at `to`: packed tokens of a sequence
 * are contiguous (offsets are the list starts), so no list is read there.
 */
function memberOf(slots: Slots, from: Level, to: Level, j: string): string {
  if (from === 'token' && to === 'seq') return j;
  return `I[sec(${slots.slot({ buffer: 'I', kind: 'csr_members', from, to })}u) + ${j}]`;
}

/**
 * Token→seq reductions with a thread per (short) sequence, four tokens per step: the tokens before
 * the first multiple of 4 and after the last one one by one, the rest as vec4s (vectorLanes). The
 * tokens are folded in order, as by reducePerThread. Only the reductions' results are stored (one
 * per sequence): no alongside values, no folding through to the batch.
 */
function reducePerThreadVec4(k: ReduceKernel, slots: Slots, materialized: ReadonlySet<number>, wg: number): string {
  const nodes = k.nodes;
  const starts = slots.slot({ buffer: 'I', kind: 'csr_starts', from: 'token', to: 'seq' });
  const scalar = accumulate(nodes, slots, materialized, '      ', { scope: { seq: 'seg' } });
  const v = vectorLanes(slots, 'g');
  const lanes = v.lanes.map((lane) => accumulate(nodes, slots, materialized, '      ', { lane, scope: { seq: 'seg' } }));
  const stores = nodes.map((n, i) => store(slots, n, 'seg', `select(0.0, acc${i}, cnt${i} > 0.0)`));
  const one = (from: string, to: string) => `  for (var e = ${from}; e < ${to}; e = e + 1u) {
    ${scalar.body}
  }`;
  return `${PRELUDE}
${origins(nodes)}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let seg = (wid.x + wid.y * nwg.x) * ${wg}u + lid.x;
  if (seg >= I[1]) { return; }
  ${scalar.decls}
  let lo = I[sec(${starts}u) + seg];
  let hi = I[sec(${starts}u) + seg + 1u];
  // whole vec4s [first, last) inside the sequence; the tokens before them [lo, h), after them [max(4·last, h), hi)
  let first = min((lo + 3u) / 4u, hi / 4u);
  let last = max(hi / 4u, first);
  let h = max(lo, min(4u * first, hi));
${one('lo', 'h')}
  for (var g = first; g < last; g = g + 1u) {
${indent([...v.loads(), ...lanes.map((l) => l.body)], '    ')}
  }
${one('max(4u * last, h)', 'hi')}
  ${stores.join('\n  ')}
}
`;
}

/** Reductions over small segments: one thread walks one segment's members. */
function reducePerThread(k: ReduceKernel, slots: Slots, materialized: ReadonlySet<number>, wg: number): string {
  const { nodes, from, to, starts, acc } = segmentPass(k, slots, materialized);
  const stores = nodes.map((n, i) => {
    if (!k.viaSegments.includes(n)) return store(slots, n, 'seg', `select(0.0, acc${i}, cnt${i} > 0.0)`);
    const p = slots.slot(batchPartials(k, n, wg).key);
    return `D[sec(${p}u) + 2u * seg] = acc${i};\n  D[sec(${p}u) + 2u * seg + 1u] = cnt${i};`;
  });
  return `${PRELUDE}
${origins(nodes)}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let seg = (wid.x + wid.y * nwg.x) * ${wg}u + lid.x;
  if (seg >= ${COUNT[to]}) { return; }
  ${acc.decls}
  let hi = I[sec(${starts}u) + seg + 1u];
  var j = I[sec(${starts}u) + seg];
  loop {
    if (j >= hi) { break; }
    let e = ${memberOf(slots, from, to, 'j')};
    ${acc.body}
    j = j + 1u;
  }
  ${stores.join('\n  ')}
}
`;
}

function workgroupArrays(count: number, wg: number): string {
  return Array.from({ length: count }, (_, k) => `var<workgroup> part${k}: array<f32, ${wg}>;\nvar<workgroup> pcnt${k}: array<f32, ${wg}>;`).join('\n');
}

/**
 * Folds the workgroup's (value, count) partials of each reduction in a fixed order: one barrier,
 * then thread 0 folds them serially (a barrier tree costs a barrier per level; on CPU-backed
 * adapters each is a coroutine switch of every thread, more than the few adds it saves). Empty
 * partials (count 0) are skipped so max/min of an empty part never wins. Leaves each result in
 * part{k}[0], pcnt{k}[0], for thread 0.
 */
function treeFold(wg: number, pairs: readonly string[]): string {
  const init = pairs.map((_, k) => `  part${k}[lid.x] = acc${k};\n  pcnt${k}[lid.x] = cnt${k};`).join('\n');
  const steps = pairs
    .map(
      (pair, k) => `      {
        let a = part${k}[0];
        let b = part${k}[i];
        let ca = pcnt${k}[0];
        let cb = pcnt${k}[i];
        part${k}[0] = select(select(${pair}, a, cb == 0.0), b, ca == 0.0);
        pcnt${k}[0] = ca + cb;
      }`,
    )
    .join('\n');
  return `${init}
  workgroupBarrier();
  if (lid.x == 0u) {
    for (var i = 1u; i < ${wg}u; i = i + 1u) {
${steps}
    }
  }`;
}

/**
 * Second pass of a batch reduction: one workgroup folds each value's chunk partials in a fixed
 * order, then thread 0 computes the batch-level epilogue from the results it just stored.
 */
function combinePartials(k: ReduceKernel, slots: Slots, materialized: ReadonlySet<number>, wg: number): string {
  const batchNodes = k.nodes[0].type.level === 'batch' ? k.nodes : k.viaSegments;
  const blocks = batchNodes.map((n) => {
    const { key, count } = batchPartials(k, n, wg);
    const partials = slots.slot(key);
    const fn = n.args.fn;
    const fold = fn === 'sum' ? 'a + b' : fn === 'max' ? 'max(a, b)' : 'min(a, b)';
    return `  {
    var acc0: f32 = 0.0;
    var cnt0: f32 = 0.0;
    let chunks = ${count};
    var c = lid.x;
    loop {
      if (c >= chunks) { break; }
      let b = D[sec(${partials}u) + 2u * c];
      let cb = D[sec(${partials}u) + 2u * c + 1u];
      if (cb > 0.0) {
        let a = acc0;
        acc0 = select(${fold}, b, cnt0 == 0.0);
        cnt0 = cnt0 + cb;
      }
      c = c + ${wg}u;
    }
${treeFold(wg, [fold])}
    if (lid.x == 0u) {
      ${store(slots, n, '0u', 'select(0.0, part0[0], pcnt0[0] > 0.0)')}
    }
    workgroupBarrier();
  }`;
  });
  return `${PRELUDE}
${workgroupArrays(1, wg)}
${origins([...batchNodes, ...k.epilogue])}@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_id) lid: vec3u) {
${blocks.join('\n')}
${epilogue(k, slots, materialized)}}
`;
}

/**
 * Group-local steps (rule 5 of the plan) with one thread per group: group-level maps at the group,
 * seq→group reductions and seq-level maps in loops over the group's sequences.
 */
function groupLocalKernel(steps: readonly GroupStep[], slots: Slots, materialized: ReadonlySet<number>, wg: number): string {
  const starts = slots.slot({ buffer: 'I', kind: 'csr_starts', from: 'seq', to: 'group' });
  const members = slots.slot({ buffer: 'I', kind: 'csr_members', from: 'seq', to: 'group' });
  const blocks = steps.map((step) => {
    if (step.kind === 'reduce') {
      const acc = accumulate(step.nodes, slots, materialized, '      ', { scope: { group: 'g' } });
      const stores = step.nodes.map((n, k) => store(slots, n, 'g', `select(0.0, acc${k}, cnt${k} > 0.0)`));
      return `  {
    ${acc.decls}
    var j = lo;
    loop {
      if (j >= hi) { break; }
      let e = I[sec(${members}u) + j];
      ${acc.body}
      j = j + 1u;
    }
    ${stores.join('\n    ')}
  }`;
    }
    const computing = new Set([...materialized].filter((id) => !step.outputs.some((o) => o.id === id)));
    if (step.level === 'group') {
      const e = new ExprEmitter(slots, computing, { index: { group: 'g' } }, 'p');
      const stores = step.outputs.map((o) => store(slots, o, 'g', e.value(o)));
      return `  {\n${indent([...e.lines, ...stores], '    ')}\n  }`;
    }
    const e = new ExprEmitter(slots, computing, { index: { seq: 's', group: 'g' } }, 'p');
    const stores = step.outputs.map((o) => store(slots, o, 's', e.value(o)));
    return `  {
    var j = lo;
    loop {
      if (j >= hi) { break; }
      let s = I[sec(${members}u) + j];
${indent([...e.lines, ...stores], '      ')}
      j = j + 1u;
    }
  }`;
  });
  return `${PRELUDE}
${origins(steps.flatMap((st) => (st.kind === 'map' ? st.outputs : st.nodes)))}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = (wid.x + wid.y * nwg.x) * ${wg}u + lid.x;
  if (g >= I[2]) { return; }
  let lo = I[sec(${starts}u) + g];
  let hi = I[sec(${starts}u) + g + 1u];
${blocks.join('\n')}
}
`;
}

/**
 * Scans, cumprods and shifts: one thread per sequence walks its tokens in order (reversed for
 * reverse scans and `next` shifts), masked tokens carrying the state through; four tokens per step
 * between the sequence's unaligned ends (as in reducePerThreadVec4), whose outputs are stored as
 * one vec4, the ends token by token.
 */
function seqwiseKernelVec4(n: Node<'scan' | 'cumprod' | 'shift'>, slots: Slots, materialized: ReadonlySet<number>, wg: number): string {
  const offsets = slots.slot({ buffer: 'I', kind: 'offsets' });
  const mask = slots.slot({ buffer: 'I', kind: 'mask' });
  const out = slots.slot({ buffer: 'D', kind: 'value', node: n });
  const isShift = n.op === 'shift';
  const reverse = n.op === 'shift' ? (n.args as { dir: 'next' | 'prev' }).dir === 'next' : (n.args as { reverse: boolean }).reverse;
  const v = vectorLanes(slots, 'g');
  /** One token's step: its lines, then its output (before the update for shifts, after it otherwise). */
  const step = (e: ExprEmitter, valid: string, o: string): string[] => {
    if (n.op === 'scan') {
      const [x, c] = n.src;
      const next = `${e.value(x)} + ${e.value(c)} * acc`;
      return [...e.lines.splice(0), `acc = select(acc, ${next}, ${valid});`, `let ${o} = acc;`];
    }
    if (n.op === 'cumprod') {
      const next = `acc * ${e.value(n.src[0])}`;
      return [...e.lines.splice(0), `acc = select(acc, ${next}, ${valid});`, `let ${o} = acc;`];
    }
    const x = e.value(n.src[0]);
    const value = n.src[0].type.dtype === 'bool' ? `select(0.0, 1.0, ${x})` : x;
    return [...e.lines.splice(0), `let ${o} = held;`, `held = select(held, ${value}, ${valid});`];
  };
  const order = reverse ? [3, 2, 1, 0] : [0, 1, 2, 3];
  const lanes = order.flatMap((k) => {
    const lane = v.lanes[k];
    const e = new ExprEmitter(slots, materialized, { index: { token: lane.token, seq: 's' }, tokenLoad: lane.load }, `p${k}_`);
    return step(e, `${lane.load('I', mask)} != 0u`, `o${k}`);
  });
  const scalarEmitter = new ExprEmitter(slots, materialized, { index: { token: 't', seq: 's' } }, 'p');
  const scalar = [...step(scalarEmitter, `I[sec(${mask}u) + t] != 0u`, 'o'), `D[sec(${out}u) + t] = o;`];
  const one = (from: string, to: string) =>
    reverse
      ? `  for (var k = ${to}; k > ${from}; k = k - 1u) {\n    let t = k - 1u;\n${indent(scalar, '    ')}\n  }`
      : `  for (var t = ${from}; t < ${to}; t = t + 1u) {\n${indent(scalar, '    ')}\n  }`;
  const groups = reverse ? `for (var k = last; k > first; k = k - 1u) {\n    let g = k - 1u;` : `for (var g = first; g < last; g = g + 1u) {`;
  const body = `  ${groups}
${indent([...v.loads(), ...lanes, `VD[(sec(${out}u) >> 2u) + g] = vec4f(o0, o1, o2, o3);`], '    ')}
  }`;
  const init = n.op === 'scan' ? '0.0' : n.op === 'cumprod' ? '1.0' : f32Literal((n.args as { fill: number }).fill);
  const [head, tail] = [one('lo', 'h'), one('max(4u * last, h)', 'hi')];
  return `${PRELUDE}
${origins([n])}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let s = (wid.x + wid.y * nwg.x) * ${wg}u + lid.x;
  if (s >= I[1]) { return; }
  let lo = I[sec(${offsets}u) + s];
  let hi = I[sec(${offsets}u) + s + 1u];
  // whole vec4s [first, last) inside the sequence; the tokens before them [lo, h), after them [max(4·last, h), hi)
  let first = min((lo + 3u) / 4u, hi / 4u);
  let last = max(hi / 4u, first);
  let h = max(lo, min(4u * first, hi));
  var ${isShift ? 'held' : 'acc'}: f32 = ${init};
${reverse ? [tail, body, head].join('\n') : [head, body, tail].join('\n')}
}
`;
}

/**
 * KernelPlan kernels → WGSL compute shaders. Sizes, section offsets, params and the clock are
 * data (in `D` and `I`), never shader text, so a new batch, step or param value reuses the
 * compiled pipelines. Each shader names the source lines it came from in a comment.
 *
 *  - map: one thread per element of the kernel's level;
 *  - reduce: one workgroup per segment: each thread folds a strided slice of the segment's members
 *    (prologue fused), then a tree over the workgroup's partials in a fixed order — the result
 *    is bit-identical from run to run;
 *  - seqwise (scan, cumprod, shift): one thread per sequence walks its tokens, skipping masked ones.
 */
import { InternalError } from '../../../src/diagnostics/diagnostic.js';
import type { Node } from '../../../src/ir/node.js';
import type { Level } from '../../../src/types/types.js';
import type { Kernel, KernelPlan } from '../../plan/plan.js';
import { ExprEmitter, f32Literal } from './expr.js';
import { PRELUDE } from './prelude.js';
import { Slots } from './slots.js';

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
        return [{ kernel: k, code: mapKernel(k, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'element', level: k.level } }];
      case 'reduce':
        if (k.node.type.level === 'batch') {
          // two passes: partials per chunk of elements across many workgroups, then one fixed-order combine
          return [
            { kernel: k, code: reduceKernel(k.node, slots, materialized, workgroupSize, chunk), workgroupSize, grid: { per: 'chunk', level: k.node.src[0].type.level, chunk } },
            { kernel: k, code: combinePartials(k.node, slots, workgroupSize, chunk), workgroupSize, grid: { per: 'segment', level: 'batch' } },
          ];
        }
        if (k.node.src[0].type.level !== 'token') {
          // segments of sequences (a group's responses) are small: one thread each, no barriers
          return [{ kernel: k, code: reducePerThread(k.node, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'element', level: k.node.type.level } }];
        } else {
          // tokens: many short segments → a thread per segment; long ones → a workgroup per segment
          const when = { from: 'token' as Level, to: k.node.type.level };
          return [
            { kernel: k, code: reducePerThread(k.node, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'element', level: k.node.type.level }, when: { ...when, meanBelow: SHORT_SEGMENT } },
            { kernel: k, code: reduceKernel(k.node, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'segment', level: k.node.type.level }, when: { ...when, meanAtLeast: SHORT_SEGMENT } },
          ];
        }
      case 'seqwise':
        return [{ kernel: k, code: seqwiseKernel(k.node, slots, materialized, workgroupSize), workgroupSize, grid: { per: 'element', level: 'seq' } }];
    }
  });
  return { slots, kernels };
}

/** Mean segment length (tokens) below which one thread per segment beats one workgroup per segment. */
const SHORT_SEGMENT = 256;

/** Elements each thread folds per chunk in the first pass of a batch reduction. */
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
  return `${PRELUDE}
${origins(k.outputs)}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = (wid.x + wid.y * nwg.x) * ${wg}u + lid.x;
  if (i >= ${COUNT[k.level]}) { return; }
${indent(e.lines, '  ')}
${indent(stores, '  ')}
}
`;
}

function reduceKernel(n: Node<'reduce'>, slots: Slots, materialized: ReadonlySet<number>, wg: number, chunk?: number): string {
  const [x, cond] = n.src;
  const from = x.type.level;
  const to = n.type.level;
  // batch reductions (chunked) walk the elements directly; others go through the segment's member list
  const range = chunk
    ? { lo: `seg * ${chunk}u`, hi: `min(${COUNT[from]}, (seg + 1u) * ${chunk}u)`, element: 'j', live: `seg * ${chunk}u < ${COUNT[from]}` }
    : (() => {
        const starts = slots.slot({ buffer: 'I', kind: 'csr_starts', from, to });
        const members = slots.slot({ buffer: 'I', kind: 'csr_members', from, to });
        return { lo: `I[sec(${starts}u) + seg]`, hi: `I[sec(${starts}u) + seg + 1u]`, element: `I[sec(${members}u) + j]`, live: `seg < ${COUNT[to]}` };
      })();
  const e = new ExprEmitter(slots, materialized, { index: { [from]: 'e' } }, 'p');
  const value = e.value(x);
  const keep = cond ? e.value(cond) : 'true';
  const fn = n.args.fn;
  const identity = fn === 'sum' ? '0.0' : '0.0';
  const combine = fn === 'sum' ? 'acc + xv' : fn === 'max' ? 'select(max(acc, xv), xv, cnt == 0.0)' : 'select(min(acc, xv), xv, cnt == 0.0)';
  const combineShared = fn === 'sum' ? 'a + b' : fn === 'max' ? 'max(a, b)' : 'min(a, b)';
  const valid = from === 'token' ? `I[sec(${slots.slot({ buffer: 'I', kind: 'mask' })}u) + e] != 0u` : 'true';
  // NOTE: an explicit loop with the increment at the end of the body: `for (…; j += n)` with
  // `continue` hung or crashed llvmpipe (Mesa 25) for some shaders.
  return `${PRELUDE}
var<workgroup> part: array<f32, ${wg}>;
var<workgroup> pcnt: array<f32, ${wg}>;
${origins([n])}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let seg = wid.x + wid.y * nwg.x;
  let live = ${range.live};
  var acc: f32 = ${identity};
  var cnt: f32 = 0.0;
  if (live) {
    let lo = ${range.lo};
    let hi = ${range.hi};
    var j = lo + lid.x;
    loop {
      if (j >= hi) { break; }
      let e = ${range.element};
      if (${valid}) {
        ${e.lines.join('\n        ')}
        if (${keep}) {
          let xv: f32 = ${x.type.dtype === 'bool' ? `select(0.0, 1.0, ${value})` : value};
          acc = ${combine};
          cnt = cnt + 1.0;
        }
      }
      j = j + ${wg}u;
    }
  }
${treeFold(wg, combineShared)}
  if (live && lid.x == 0u) {
    ${
      chunk
        ? `D[sec(${slots.slot({ buffer: 'D', kind: 'partials', node: n, chunk })}u) + 2u * seg] = part[0];
    D[sec(${slots.slot({ buffer: 'D', kind: 'partials', node: n, chunk })}u) + 2u * seg + 1u] = pcnt[0];`
        : store(slots, n, to === 'batch' ? '0u' : 'seg', 'select(0.0, part[0], pcnt[0] > 0.0)')
    }
  }
}
`;
}

/** A reduction over small segments: one thread walks one segment's members. */
function reducePerThread(n: Node<'reduce'>, slots: Slots, materialized: ReadonlySet<number>, wg: number): string {
  const [x, cond] = n.src;
  const from = x.type.level;
  const to = n.type.level;
  const starts = slots.slot({ buffer: 'I', kind: 'csr_starts', from, to });
  const members = slots.slot({ buffer: 'I', kind: 'csr_members', from, to });
  const e = new ExprEmitter(slots, materialized, { index: { [from]: 'e' } }, 'p');
  const value = e.value(x);
  const keep = cond ? e.value(cond) : 'true';
  const fn = n.args.fn;
  const combine = fn === 'sum' ? 'acc + xv' : fn === 'max' ? 'select(max(acc, xv), xv, cnt == 0.0)' : 'select(min(acc, xv), xv, cnt == 0.0)';
  return `${PRELUDE}
${origins([n])}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let seg = (wid.x + wid.y * nwg.x) * ${wg}u + lid.x;
  if (seg >= ${COUNT[to]}) { return; }
  var acc: f32 = 0.0;
  var cnt: f32 = 0.0;
  let hi = I[sec(${starts}u) + seg + 1u];
  var j = I[sec(${starts}u) + seg];
  loop {
    if (j >= hi) { break; }
    let e = I[sec(${members}u) + j];
    ${e.lines.join('\n    ')}
    if (${from === 'token' ? `I[sec(${slots.slot({ buffer: 'I', kind: 'mask' })}u) + e] != 0u && ` : ''}${keep}) {
      let xv: f32 = ${x.type.dtype === 'bool' ? `select(0.0, 1.0, ${value})` : value};
      acc = ${combine};
      cnt = cnt + 1.0;
    }
    j = j + 1u;
  }
  ${store(slots, n, to === 'batch' ? '0u' : 'seg', 'select(0.0, acc, cnt > 0.0)')}
}
`;
}

/**
 * Folds the workgroup's (value, count) partials in a fixed tree order; empty partials (count 0)
 * are skipped so max/min of an empty part never wins. Leaves the result in part[0], pcnt[0].
 */
function treeFold(wg: number, fold: string): string {
  return `  part[lid.x] = acc;
  pcnt[lid.x] = cnt;
  workgroupBarrier();
  for (var stride = ${wg / 2}u; stride > 0u; stride = stride / 2u) {
    if (lid.x < stride) {
      let a = part[lid.x];
      let b = part[lid.x + stride];
      let ca = pcnt[lid.x];
      let cb = pcnt[lid.x + stride];
      part[lid.x] = select(select(${fold}, a, cb == 0.0), b, ca == 0.0);
      pcnt[lid.x] = ca + cb;
    }
    workgroupBarrier();
  }`;
}

/** Second pass of a batch reduction: one workgroup folds the chunk partials in a fixed order. */
function combinePartials(n: Node<'reduce'>, slots: Slots, wg: number, chunk: number): string {
  const partials = slots.slot({ buffer: 'D', kind: 'partials', node: n, chunk });
  const fn = n.args.fn;
  const fold = fn === 'sum' ? 'a + b' : fn === 'max' ? 'max(a, b)' : 'min(a, b)';
  return `${PRELUDE}
var<workgroup> part: array<f32, ${wg}>;
var<workgroup> pcnt: array<f32, ${wg}>;
${origins([n])}@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_id) lid: vec3u) {
  let chunks = (${COUNT[n.src[0].type.level]} + ${chunk - 1}u) / ${chunk}u;
  var acc: f32 = 0.0;
  var cnt: f32 = 0.0;
  var c = lid.x;
  loop {
    if (c >= chunks) { break; }
    let b = D[sec(${partials}u) + 2u * c];
    let cb = D[sec(${partials}u) + 2u * c + 1u];
    if (cb > 0.0) {
      let a = acc;
      acc = select(${fold}, b, cnt == 0.0);
      cnt = cnt + cb;
    }
    c = c + ${wg}u;
  }
${treeFold(wg, fold)}
  if (lid.x == 0u) {
    ${store(slots, n, '0u', 'select(0.0, part[0], pcnt[0] > 0.0)')}
  }
}
`;
}

function seqwiseKernel(n: Node<'scan' | 'cumprod' | 'shift'>, slots: Slots, materialized: ReadonlySet<number>, wg: number): string {
  const offsets = slots.slot({ buffer: 'I', kind: 'offsets' });
  const mask = slots.slot({ buffer: 'I', kind: 'mask' });
  const out = slots.slot({ buffer: 'D', kind: 'value', node: n });
  const e = new ExprEmitter(slots, materialized, { index: { token: 't', seq: 's' } }, 'p');
  let init: string;
  let step: string;
  let reverse: boolean;
  if (n.op === 'scan') {
    const [x, c] = n.src;
    reverse = (n.args as { reverse: boolean }).reverse;
    init = '0.0';
    step = `acc = ${e.value(x)} + ${e.value(c)} * acc;`;
  } else if (n.op === 'cumprod') {
    reverse = (n.args as { reverse: boolean }).reverse;
    init = '1.0';
    step = `acc = acc * ${e.value(n.src[0])};`;
  } else {
    const { dir, fill } = n.args as { dir: 'next' | 'prev'; fill: number };
    reverse = dir === 'next';
    init = f32Literal(fill);
    const v = e.value(n.src[0]);
    step = `held = ${n.src[0].type.dtype === 'bool' ? `select(0.0, 1.0, ${v})` : v};`;
  }
  if (n.op === 'shift' && !Number.isFinite((n.args as { fill: number }).fill)) throw new InternalError('codegen-wgsl', 'non-finite shift fill');
  const isShift = n.op === 'shift';
  const loop = reverse ? `for (var k = hi; k > lo; k = k - 1u) {\n    let t = k - 1u;` : `for (var t = lo; t < hi; t = t + 1u) {`;
  const body = isShift
    ? `D[sec(${out}u) + t] = held;\n    if (I[sec(${mask}u) + t] != 0u) {\n      ${e.lines.join('\n      ')}\n      ${step}\n    }`
    : `if (I[sec(${mask}u) + t] != 0u) {\n      ${e.lines.join('\n      ')}\n      ${step}\n    }\n    D[sec(${out}u) + t] = acc;`;
  return `${PRELUDE}
${origins([n])}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let s = (wid.x + wid.y * nwg.x) * ${wg}u + lid.x;
  if (s >= I[1]) { return; }
  let lo = I[sec(${offsets}u) + s];
  let hi = I[sec(${offsets}u) + s + 1u];
  var ${isShift ? 'held' : 'acc'}: f32 = ${init};
  ${loop}
    ${body}
  }
}
`;
}

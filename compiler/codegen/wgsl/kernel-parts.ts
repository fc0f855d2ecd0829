/**
 * Pieces the kernel templates share: sizes and strategy thresholds, stores, the fused loop body
 * of reductions (accumulate), fixed-order folds of partials, and where partials live.
 */
import { InternalError } from '../../../core/diagnostics/diagnostic.js';
import type { Node } from '../../../core/ir/node.js';
import { REDUCERS, emptyValue, type ReduceFn } from '../../../core/ir/op.js';
import type { Level } from '../../../core/types/types.js';
import type { ReduceKernel } from '../../plan/plan.js';
import { ExprEmitter, type Scope } from './expr.js';
import { CAP, CHUNKS, type SectionKey, type Slots } from './slots.js';
import type { VectorQuad } from './vector-lanes.js';

/** Mean segment length (tokens) below which one thread per segment beats one workgroup per segment. */
export const SHORT_SEGMENT = 256;

/**
 * Elements each thread handles in a map or in the first pass of a batch reduction. A thread per
 * element costs a workgroup launch per 64 elements, which dominates on CPU-backed adapters
 * (llvmpipe, 2026-11-29: 13 ms against 3 ms for a 2^20-element stream) and is no faster on GPUs.
 */
export const CHUNK_PER_THREAD = 64;

/**
 * Sequences per workgroup of a pass over long sequences straight to the batch: about 64 threads'
 * worth, so that a GPU's 128-thread workgroups take one sequence each, and a CPU adapter's 8-lane
 * ones a run of 8 (a workgroup launch cost about 0.4 µs on llvmpipe on 2026-11-29: 0.4 ms per 1000 sequences).
 */
export function sequencesPerWorkgroup(wg: number): number {
  return Math.max(1, Math.floor(64 / wg));
}

/** Elements at each level of the chunk (loop bounds); row kernels (row-kernels.ts) bind V as `V`. */
export const COUNT: Record<Level, string> = {
  vocab: 'V',
  token: 'I[0]',
  seq: 'I[1]',
  group: 'I[2]',
  batch: '1u',
};

export function origins(nodes: readonly Node[]): string {
  const lines = new Set<string>();
  for (const n of nodes) if (n.span) lines.add(`${n.span.file.path}:${n.span.file.position(n.span.start).line}`);
  return lines.size ? `// from ${[...lines].join(', ')}\n` : '';
}

export function store(slots: Slots, n: Node, index: string, value: string): string {
  const v = n.type.dtype === 'bool' ? `select(0.0, 1.0, ${value})` : value;
  return `D[sec(${slots.slot({ buffer: 'D', kind: 'value', node: n })}u) + ${index}] = ${v};`;
}

export function indent(lines: readonly string[], by: string): string {
  return lines.map((l) => by + l).join('\n');
}

/**
 * How each reduction combines two values on the device; the same text serves f32 and vec4f
 * operands (WGSL's `+`, `*`, `max` and `min` are component-wise).
 */
const DEVICE_COMBINE: { readonly [K in ReduceFn]: (a: string, b: string) => string } = {
  sum: (a, b) => `(${a} + ${b})`,
  prod: (a, b) => `(${a} * ${b})`,
  max: (a, b) => `max(${a}, ${b})`,
  min: (a, b) => `min(${a}, ${b})`,
};

/** `a` and `b` combined by reduction `fn` (f32 or vec4f). */
export function combine(fn: ReduceFn, a: string, b: string): string {
  return DEVICE_COMBINE[fn](a, b);
}

const literal = (x: number) => (Number.isInteger(x) ? x.toFixed(1) : String(x));

/** A fold's result from its (value, count): the reduction's empty value when nothing was folded. */
export function folded(fn: ReduceFn, acc: string, cnt: string): string {
  return `select(${literal(emptyValue(fn))}, ${acc}, ${cnt} > 0.0)`;
}

/**
 * One member `v` (kept where `take`) folded into accumulator `acc`: from the reduction's identity
 * (sum, prod), or, for those without one (max, min), the first member replacing whatever `acc`
 * holds while the count `cnt` is 0. `zero`/`one` are the literals of the operands' type.
 */
function foldStep(
  fn: ReduceFn,
  acc: string,
  cnt: string,
  v: string,
  take: string,
  wrap: (lit: string) => string,
): string[] {
  const identity = REDUCERS[fn].identity;
  if (identity !== null) return [`${acc} = ${combine(fn, acc, `select(${wrap(literal(identity))}, ${v}, ${take})`)};`];
  return [
    `${acc} = select(${acc}, select(${combine(fn, acc, v)}, ${v}, ${cnt} == ${wrap('0.0')}), ${take});`,
    `${cnt} = ${cnt} + select(${wrap('0.0')}, ${wrap('1.0')}, ${take});`,
  ];
}

/**
 * The loop body shared by the reduce strategies: the fused prologue of every value (CSE'd across
 * them), then each value folded into its accumulator where it is selected. Branch-free: every
 * element is computed and `select` keeps the valid, selected ones (a value computed for a masked
 * token may be NaN; select drops it). Divergent branches cost more than the math on SIMD lanes.
 * Values stored `alongside` (the plan's fuseAlongside) share their subexpressions with the prologues.
 */
export function accumulate(
  nodes: readonly Node<'reduce'>[],
  slots: Slots,
  materialized: ReadonlySet<number>,
  indent: string,
  opts: {
    alongside?: readonly Node[];
    scope?: Partial<Record<Level, string>>;
    quad?: VectorQuad;
    invariant?: Invariant;
    /** Over a vocabulary row (row-kernels.ts): how its `token x vocab` inputs are read. */
    rows?: Scope['rows'];
  } = {},
): { decls: string; vectorDecls: string; body: string; collapse: string; emitter?: ExprEmitter } {
  if (opts.quad) return accumulateQuad(nodes, slots, materialized, indent, { ...opts, quad: opts.quad });
  const from = nodes[0].src[0].type.level;
  const alongside = opts.alongside ?? [];
  const computing = new Set([...materialized].filter((id) => !alongside.some((o) => o.id === id)));
  const e = new ExprEmitter(
    slots,
    computing,
    { index: { ...opts.scope, [from]: 'e' }, invariant: opts.invariant, rows: opts.rows },
    'p',
  );
  const stores = alongside.map((o) => store(slots, o, 'e', e.value(o)));
  const valid = from !== 'token' ? 'true' : `I[sec(${slots.slot({ buffer: 'I', kind: 'mask' })}u) + e] != 0u`;
  const parts = nodes.map((n, k) => {
    const [x, cond] = n.src;
    const value = e.value(x);
    const keep = cond ? `${valid} && ${e.value(cond)}` : valid;
    const xv = x.type.dtype === 'bool' ? `select(0.0, 1.0, ${value})` : value;
    const [take, v] = [`take${k}`, `xv${k}`];
    // a reduction with an identity needs no count: its empty value is the identity it starts from (see decls)
    return [
      `let ${take}: bool = ${keep};`,
      `let ${v}: f32 = ${xv};`,
      ...foldStep(n.args.fn, `acc${k}`, `cnt${k}`, v, take, (l) => l),
    ];
  });
  return {
    decls: scalarDecls(nodes),
    vectorDecls: '',
    body: [...e.lines, ...stores, ...parts.flat()].join(`\n${indent}`),
    collapse: '',
    // the loop body's values by node, for templates that fold more of them (row-kernels.ts)
    emitter: e,
  };
}

/**
 * A reduction with an identity starts from it with a count of 1, so the folds of partials (which
 * skip count-0 partials, for max and min) and the final `folded` keep its value, the identity
 * when empty.
 */
function scalarDecls(nodes: readonly Node<'reduce'>[]): string {
  return nodes
    .map((n, k) => {
      const identity = REDUCERS[n.args.fn].identity;
      return `var acc${k}: f32 = ${literal(identity ?? 0)};\n  var cnt${k}: f32 = ${identity !== null ? '1.0' : '0.0'};`;
    })
    .join('\n  ');
}

/**
 * accumulate on four tokens (or, with `rows`, four entries of a vocabulary row) at once
 * (VectorQuad): vec4 values, a vec4 accumulator per reduction (component c folds every fourth
 * element); `collapse` folds the four components, in order, into the scalar accumulators the
 * kernel templates use after the loop. Over a row every entry counts (`guard`: those inside it).
 */
function accumulateQuad(
  nodes: readonly Node<'reduce'>[],
  slots: Slots,
  materialized: ReadonlySet<number>,
  indent: string,
  opts: {
    alongside?: readonly Node[];
    scope?: Partial<Record<Level, string>>;
    quad: VectorQuad;
    invariant?: Invariant;
    rows?: Scope['rows'];
  },
): { decls: string; vectorDecls: string; body: string; collapse: string; emitter: ExprEmitter } {
  const from = nodes[0].src[0].type.level;
  if (from !== (opts.rows ? 'vocab' : 'token'))
    throw new InternalError('codegen-wgsl', 'four at a time is for tokens and vocabulary rows');
  const alongside = opts.alongside ?? [];
  const computing = new Set([...materialized].filter((id) => !alongside.some((o) => o.id === id)));
  const q = opts.quad;
  const scope: Scope = opts.rows
    ? { index: { ...opts.scope, vocab: q.token }, invariant: opts.invariant, vec4: true, rows: opts.rows }
    : { index: { ...opts.scope, token: q.token }, tokenLoad: q.load, invariant: opts.invariant, vec4: true };
  const e = new ExprEmitter(slots, computing, scope, 'p');
  const stores = alongside.map((o) => q.store(o, e.value(o)));
  const valid = opts.rows
    ? (q.guard ?? 'vec4<bool>(true)')
    : `(${q.load('I', slots.slot({ buffer: 'I', kind: 'mask' }))} != vec4<u32>(0u))${q.guard ? ` & ${q.guard}` : ''}`;
  const parts = nodes.map((n, k) => {
    const [x, cond] = n.src;
    const value = e.value(x);
    const keep = cond ? `${valid} & ${e.value(cond)}` : valid;
    const xv = x.type.dtype === 'bool' ? `select(vec4f(0.0), vec4f(1.0), ${value})` : value;
    const [take, v, acc, cnt] = [`take${k}`, `xv${k}`, `acc${k}v`, `cnt${k}v`];
    return [
      `let ${take} = ${keep};`,
      `let ${v}: vec4f = ${xv};`,
      ...foldStep(n.args.fn, acc, cnt, v, take, (l) => `vec4f(${l})`),
    ];
  });
  const vectorDecls = nodes
    .map((n, k) => `var acc${k}v = vec4f(${literal(REDUCERS[n.args.fn].identity ?? 0)});\n  var cnt${k}v = vec4f(0.0);`)
    .join('\n  ');
  const collapse = nodes.flatMap((n, k) =>
    [0, 1, 2, 3].map((c) =>
      REDUCERS[n.args.fn].identity !== null
        ? `acc${k} = ${combine(n.args.fn, `acc${k}`, `acc${k}v[${c}]`)};`
        : `acc${k} = select(acc${k}, select(${combine(n.args.fn, `acc${k}`, `acc${k}v[${c}]`)}, acc${k}v[${c}], cnt${k} == 0.0), cnt${k}v[${c}] > 0.0); cnt${k} = cnt${k} + cnt${k}v[${c}];`,
    ),
  );
  return {
    // the scalar accumulators too: the templates fold `collapse` into them after the loop
    decls: `${scalarDecls(nodes)}\n  ${vectorDecls}`,
    vectorDecls,
    body: [...e.lines, ...stores, ...parts.flat()].join(`\n${indent}`),
    collapse: collapse.join('\n  '),
    emitter: e,
  };
}

/** Values every element of a reduction loop shares, emitted once before the loop (see Scope.invariant). */
export type Invariant = { readonly outer: ExprEmitter; readonly levels: ReadonlySet<Level> };

/**
 * The loop-invariant part of a reduction kernel over tokens: values at the levels above the
 * token that the scope fixes (the sequence's, its group's, the batch's in a kernel over one
 * sequence; the batch's otherwise). `lines()` goes before the loop.
 */
export function loopInvariant(
  slots: Slots,
  materialized: ReadonlySet<number>,
  alongside: readonly Node[],
  scope: Partial<Record<Level, string>>,
): Invariant & { lines: () => string[] } {
  const computing = new Set([...materialized].filter((id) => !alongside.some((o) => o.id === id)));
  const outer = new ExprEmitter(slots, computing, { index: { ...scope } }, 'inv');
  const levels = new Set<Level>(scope.seq ? ['seq', 'group', 'batch'] : ['batch']);
  return { outer, levels, lines: () => outer.lines };
}

/**
 * A pass over each segment's members (tokens → groups, seqs → groups; token→seq passes have their
 * own vectorized kernels): what it folds, where the member lists start, and the loop body that
 * folds one member `e` of segment `seg`. These passes carry nothing alongside.
 */
export function segmentPass(k: ReduceKernel, slots: Slots, materialized: ReadonlySet<number>) {
  const nodes = k.nodes;
  const from = nodes[0].src[0].type.level;
  const to = nodes[0].type.level;
  const starts = slots.slot({ buffer: 'I', kind: 'csr_starts', from, to });
  const acc = accumulate(nodes, slots, materialized, '    ');
  return { nodes, from, to, starts, acc };
}

/** The batch-level epilogue of a reduction kernel (the plan's fuseEpilogues), run by thread 0 after the results are stored. */
export function epilogue(k: ReduceKernel, slots: Slots, materialized: ReadonlySet<number>): string {
  if (!k.epilogue.length) return '';
  const computing = new Set([...materialized].filter((id) => !k.epilogue.some((o) => o.id === id)));
  const e = new ExprEmitter(slots, computing, { index: {} }, 'q');
  const stores = k.epilogue.map((o) => store(slots, o, '0u', e.value(o)));
  return `  if (lid.x == 0u) {\n${indent([...e.lines, ...stores], '    ')}\n  }\n`;
}

/**
 * The (value, count) partials a reduction to the batch is combined from: a partial per thread of
 * the chunked first pass, or of the workgroup-per-sequence first pass, or — folded through
 * segments (the plan's fuseAlongside) — one per segment.
 */
export function batchPartials(
  k: ReduceKernel,
  n: Node<'reduce'>,
  wg: number,
  layout: BatchPartialsLayout = 'chunks',
): { key: SectionKey; count: string } {
  // `count`: pairs in all chunks' slices together (slots.ts), for the combine
  if (k.viaSegments.includes(n))
    return {
      key: { buffer: 'D', kind: 'partials', node: n, chunk: 1, threads: 1, over: k.nodes[0].type.level },
      count: `${CHUNKS} * ${CAP[k.nodes[0].type.level]}`,
    };
  // a workgroup per run of sequences straight to the batch (reduceSequencesToBatchVec4): one partial per thread of each
  if (layout === 'sequence-threads') {
    const per = sequencesPerWorkgroup(wg);
    return {
      key: { buffer: 'D', kind: 'partials', node: n, chunk: per, threads: wg, over: 'seq' },
      count: `${CHUNKS} * ((${CAP.seq} + ${per - 1}u) / ${per}u * ${wg}u)`,
    };
  }
  // one workgroup over a whole level (reduceWhole), when the batch runs in several chunks: one partial per chunk
  if (layout === 'whole')
    return { key: { buffer: 'D', kind: 'partials', node: n, chunk: 1, threads: 1, over: 'batch' }, count: CHUNKS };
  const chunk = wg * CHUNK_PER_THREAD;
  const from = n.src[0].type.level;
  // one partial per thread of every first-pass workgroup
  return {
    key: { buffer: 'D', kind: 'partials', node: n, chunk, threads: wg },
    count: `${CHUNKS} * ((${CAP[from]} + ${chunk - 1}u) / ${chunk}u * ${wg}u)`,
  };
}

/** Where a batch reduction's first pass leaves its partials: per thread of a chunk of tokens or of a sequence, or one per batch chunk. */
export type BatchPartialsLayout = 'chunks' | 'sequence-threads' | 'whole';

/**
 * Element j of the concatenated member lists of the segments at `to`: packed tokens of a sequence
 * are contiguous (offsets are the list starts), so no list is read there.
 */
export function memberOf(slots: Slots, from: Level, to: Level, j: string): string {
  if (from === 'token' && to === 'seq') return j;
  return `I[sec(${slots.slot({ buffer: 'I', kind: 'csr_members', from, to })}u) + ${j}]`;
}

export function workgroupArrays(count: number, wg: number): string {
  return Array.from(
    { length: count },
    (_, k) => `var<workgroup> part${k}: array<f32, ${wg}>;\nvar<workgroup> pcnt${k}: array<f32, ${wg}>;`,
  ).join('\n');
}

/**
 * Folds the workgroup's (value, count) partials of each reduction in a fixed order: one barrier,
 * then thread 0 folds them serially (a barrier tree costs a barrier per level; on CPU-backed
 * adapters each is a coroutine switch of every thread, more than the few adds it saves). Empty
 * partials (count 0) are skipped so max/min of an empty part never wins. Leaves each result in
 * part{k}[0], pcnt{k}[0], for thread 0.
 */
export function treeFold(wg: number, pairs: readonly string[]): string {
  const init = pairs.map((_, k) => `  part${k}[lid.x] = acc${k};\n  pcnt${k}[lid.x] = cnt${k};`).join('\n');
  // thread 0 folds in registers and stores each result once
  const load = pairs.map((_, k) => `    var f${k} = part${k}[0];\n    var c${k} = pcnt${k}[0];`).join('\n');
  const steps = pairs
    .map(
      (pair, k) => `      {
        let a = f${k};
        let b = part${k}[i];
        let cb = pcnt${k}[i];
        f${k} = select(select(${pair}, a, cb == 0.0), b, c${k} == 0.0);
        c${k} = c${k} + cb;
      }`,
    )
    .join('\n');
  const store = pairs.map((_, k) => `    part${k}[0] = f${k};\n    pcnt${k}[0] = c${k};`).join('\n');
  return `${init}
  workgroupBarrier();
  if (lid.x == 0u) {
${load}
    for (var i = 1u; i < ${wg}u; i = i + 1u) {
${steps}
    }
${store}
  }`;
}

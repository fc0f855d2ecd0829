/**
 * Row kernels: one workgroup per token's row of the vocabulary, its threads strided over the row
 * four entries at a time (a vec4 per load: the one access width CPU-backed adapters stream at;
 * scalar loads run at a third of it), running a row kernel's steps (plan/fuse-rows.ts) in order
 * with a barrier between them:
 *  - reductions from the vocabulary to the token (and the log-sum-exp sums folded online with
 *    their maximum): each thread folds its entries, the workgroup's partials are folded in thread
 *    order (treeFold), thread 0 stores the token's results in `D`;
 *  - a map over the row (a gradient w.r.t. logits): every entry written to its `L` output slot;
 *  - a map at the token: thread 0 computes and stores the token's values.
 * Values over the vocabulary are computed where they are used, from the `L` inputs, and never
 * stored: device memory beyond the logits and their gradient is O(T). Values of the token and
 * coarser levels are computed once per thread before each loop over the row (loop invariants).
 * `L` entries are decoded as their slot's encoding says (f32, or bf16 / f16 halves two per word:
 * core/device/program.ts). Rows are padded to whole vec4s, and entries past V are left out of every
 * reduction (their gradient lands in the padding, which nothing reads).
 */
import { InternalError } from '../../../core/diagnostics/diagnostic.js';
import { ROW_HEADER, ROW_SLOT_WORDS, type RowEncoding } from '../../../core/device/program.js';
import type { Node } from '../../../core/ir/node.js';
import type { Level } from '../../../core/types/types.js';
import type { OnlineSum, RowStep } from '../../plan/kernel-plan.js';
import { ExprEmitter, type Scope } from './expr.js';
import { accumulate, combine, folded, indent, origins, store, treeFold, workgroupArrays } from './kernel-parts.js';
import { PRELUDE } from './prelude.js';
import type { Slots } from './slots.js';
import type { VectorQuad } from './vector-lanes.js';

/** Threads per row at least: a row has thousands of entries, and a workgroup launch costs as much as many of them. */
const MIN_ROW_THREADS = 64;

/**
 * The `L` binding (vec4s of words) and the decoding of four entries (a quad) of a slot: by the
 * encoding the row chunk's header gives (ld4_), or, in a kernel compiled for known encodings
 * (rowKernel's `encodingOf`), by that one alone — no branch per load, which CPU-backed adapters do
 * not hoist out of the loop (about a quarter of a pass's time on llvmpipe).
 */
const ROW_ACCESS = /* wgsl */ `@group(0) @binding(3) var<storage, read_write> L: array<vec4<u32>>;
var<workgroup> rows_: u32;
fn ldf32_(base: u32, q: u32) -> vec4f { return bitcast<vec4f>(L[(base >> 2u) + q]); }
fn half2_(base: u32, q: u32) -> vec2<u32> {
  let w = L[(base >> 2u) + (q >> 1u)];
  return select(w.xy, w.zw, (q & 1u) == 1u);
}
fn ldbf16_(base: u32, q: u32) -> vec4f {
  let h = half2_(base, q);
  return bitcast<vec4f>(vec4<u32>(h.x << 16u, h.x & 0xffff0000u, h.y << 16u, h.y & 0xffff0000u));
}
fn ldf16_(base: u32, q: u32) -> vec4f {
  let h = half2_(base, q);
  return vec4f(unpack2x16float(h.x), unpack2x16float(h.y));
}
fn ld4_(base: u32, enc: u32, q: u32) -> vec4f {
  if (enc == 0u) { return ldf32_(base, q); }
  if (enc == 1u) { return ldbf16_(base, q); }
  return ldf16_(base, q);
}`;

/** Word `i` of the `L` header (a constant index into the vec4 array). */
const word = (i: number) => `L[${i >> 2}u][${i & 3}u]`;

/** Threads per workgroup of row kernels for an adapter whose kernels use `wg`. */
export function rowThreads(wg: number): number {
  return Math.max(wg, MIN_ROW_THREADS);
}

/**
 * @param encodingOf the encoding of each `L` slot, for a kernel compiled for them (a variant);
 *   without it, loads decode by the encoding in the row chunk's header.
 */
export function rowKernel(
  steps: readonly RowStep[],
  slots: Slots,
  materialized: ReadonlySet<number>,
  adapterThreads: number,
  encodingOf?: (slot: number) => RowEncoding,
): string {
  const wg = rowThreads(adapterThreads);
  const inputs = new Set<number>();
  const outputs = new Set<number>();
  const rows: NonNullable<Scope['rows']> = {
    input(name) {
      const k = slots.rowSlot({ kind: 'input', name });
      inputs.add(k);
      return encodingOf ? `ld${encodingOf(k)}_(lb${k}, q)` : `ld4_(lb${k}, le${k}, q)`;
    },
  };
  const quad: VectorQuad = {
    token: 'e4',
    guard: 'in4',
    load: () => fail('a row kernel reads no token-level section four at a time'),
    store: () => fail('a row kernel stores nothing alongside'),
    loads: () => [],
    stores: () => [],
  };
  // the token's and coarser values, once per thread, before the loop of the step that first needs them
  // The token maps of this kernel are computed by every thread where a later step needs them (the
  // same value in every thread: no store and barrier to share them); thread 0 also stores them for
  // the kernels after this one. Only a reduction's result, folded by thread 0, needs a barrier.
  const ownTokenValues = new Set(
    steps.flatMap((s) => (s.kind === 'map' && s.level === 'token' ? s.outputs.map((o) => o.id) : [])),
  );
  const outer = new ExprEmitter(
    slots,
    new Set([...materialized].filter((id) => !ownTokenValues.has(id))),
    { index: { token: 't' } },
    'inv',
  );
  const invariant = { outer, levels: new Set<Level>(['token', 'seq', 'group', 'batch']) };
  let taken = 0;
  const newInvariants = () => {
    const lines = outer.lines.slice(taken);
    taken = outer.lines.length;
    return lines;
  };
  const loop = (body: string[]) =>
    `for (var q = lid.x; q < nq; q = q + ${wg}u) {
      let e4 = 4u * q + vec4<u32>(0u, 1u, 2u, 3u);
      let in4 = e4 < vec4<u32>(V);
${indent(body, '      ')}
    }`;
  // a reduction step ends with a barrier: what thread 0 stored is what the later steps read
  const barrier = '  storageBarrier();\n  workgroupBarrier();';
  let reductions = 0;
  let onlines = 0;
  const parts = steps.map((step, j) => {
    if (step.kind === 'reduce') {
      if (
        step.alongside.length ||
        step.viaSegments.length ||
        step.epilogue.length ||
        step.nodes[0].type.level !== 'token'
      )
        throw new InternalError('codegen-wgsl', 'a row reduction goes from the vocabulary to the token, alone');
      const acc = accumulate(step.nodes, slots, materialized, '      ', {
        scope: { token: 't' },
        invariant,
        rows,
        quad,
      });
      reductions = Math.max(reductions, step.nodes.length);
      const online = onlineSums(step.online ?? [], acc.emitter!, wg);
      onlines = Math.max(onlines, step.online?.length ?? 0);
      const results = [
        ...step.nodes.map((n, i) => store(slots, n, 't', folded(n.args.fn, `part${i}[0]`, `pcnt${i}[0]`))),
        ...(step.online ?? []).map((o, k) => store(slots, o.sum, 't', `os${k}`)),
      ];
      return `  // step ${j}: ${[...step.nodes.map((n) => n.args.fn), ...(step.online ?? []).map(() => 'online sum')].join(', ')} over the row
${indent(newInvariants(), '  ')}
  {
    ${acc.decls}${online.decls}
    ${loop([acc.body, ...online.body])}
    ${acc.collapse}${online.collapse}${online.share}
${treeFold(
  wg,
  step.nodes.map((n) => combine(n.args.fn, 'a', 'b')),
)
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
    if (lid.x == 0u) {${online.fold}
      ${results.join('\n      ')}
    }
  }`;
    }
    const own = new Set(step.outputs.map((o) => o.id));
    const computing = new Set([...materialized].filter((id) => !own.has(id)));
    if (step.level === 'vocab') {
      const e = new ExprEmitter(
        slots,
        computing,
        { index: { token: 't', vocab: 'e4' }, invariant, rows, vec4: true },
        `r${j}_`,
      );
      const stores = step.outputs.map((o) => {
        const k = slots.rowSlot({ kind: 'output', node: o });
        outputs.add(k);
        // the row's padding past V takes whatever the lanes there computed: nothing reads it
        return `L[(lb${k} >> 2u) + q] = bitcast<vec4<u32>>(${f32Of(o, e.value(o))});`;
      });
      return `  // step ${j}: over the row
${indent(newInvariants(), '  ')}
  {
    ${loop([...e.lines, ...stores])}
  }`;
    }
    if (step.level !== 'token') throw new InternalError('codegen-wgsl', `a row kernel step over ${step.level}`);
    const stores = step.outputs.map((o) => store(slots, o, 't', outer.value(o)));
    return `  // step ${j}: the token's values
${indent(newInvariants(), '  ')}
  if (lid.x == 0u) {
${indent(stores, '    ')}
  }`;
  });
  const slotsUsed = [...new Set([...inputs, ...outputs])].sort((a, b) => a - b);
  const bases = slotsUsed.map((k) => {
    const d = ROW_HEADER + ROW_SLOT_WORDS * k;
    return `let lb${k} = ${word(d)} + row * ${word(d + 2)};${inputs.has(k) && !encodingOf ? ` let le${k} = ${word(d + 1)};` : ''}`;
  });
  const nodes = steps.flatMap((s) =>
    s.kind === 'reduce' ? [...s.nodes, ...(s.online ?? []).map((o) => o.sum)] : s.outputs,
  );
  return `${PRELUDE}
${ROW_ACCESS}
${workgroupArrays(reductions, wg)}
${onlineArrays(onlines, wg)}
${origins(nodes)}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  // the row count through workgroup memory, so that the early return (and every barrier after it) is uniform
  if (lid.x == 0u) { rows_ = ${word(1)}; }
  let nrows = workgroupUniformLoad(&rows_);
  let row = wid.x + wid.y * nwg.x;
  if (row >= nrows) { return; }
  let t = ${word(0)} + row;
  let V = ${word(2)};
  let nq = (V + 3u) / 4u;
  ${bases.join('\n  ')}
${parts.map((part, j) => (steps[j].kind === 'reduce' && j < steps.length - 1 ? `${part}\n${barrier}` : part)).join('\n')}
}
`;
}

/** A value as the f32s an `L` output slot holds. */
function f32Of(n: Node, value: string): string {
  return n.type.dtype === 'bool' ? `select(vec4f(0.0), vec4f(1.0), ${value})` : value;
}

const NEG_INF = 'bits_(0xff800000u)';

/**
 * The online sums of a step (OnlineSum: Σ exp(x − M) · weight, M the row's maximum): per maximum,
 * each lane keeps a running maximum and, for each sum over it, the sum of exp(x − running max) ·
 * weight over its entries, rescaled when the maximum grows (rarely after the first entries, so
 * only then); one exp per entry and maximum. The four lanes are folded into a thread's values,
 * the threads' shared in workgroup memory (before the step's barrier) and folded by thread 0 in
 * thread order. Each sum ends relative to the row's maximum, which is what Σ exp(x − M) · w is
 * (0 for an all −inf row, as with M = 0). A term is 0 wherever exp(x − max) is (a weight's
 * infinity never meets a 0 there).
 */
function onlineSums(online: readonly OnlineSum[], e: ExprEmitter, wg: number) {
  const ninf4 = `vec4f(${NEG_INF})`;
  // the groups of sums sharing a maximum, in order of first appearance: group g's members are sums k
  const groups: { max: Node; members: number[] }[] = [];
  online.forEach((o, k) => {
    const g = groups.find((x) => x.max === o.max);
    if (g) g.members.push(k);
    else groups.push({ max: o.max, members: [k] });
  });
  const decls = [
    ...groups.map((_, g) => `\n    var om${g}: f32 = ${NEG_INF};\n    var om${g}v = ${ninf4};`),
    ...online.map((_, k) => `\n    var os${k}: f32 = 0.0;\n    var os${k}v = vec4f(0.0);`),
  ].join('');
  // the values the sums need beyond the step's reductions: their lines go before the statements
  const known = e.lines.length;
  const statements = groups.flatMap((grp, g) => {
    const x = `ox${g}`;
    return [
      `let ${x} = select(${ninf4}, ${e.value(grp.max.src[0])}, in4);`,
      `let up${g} = ${x} > om${g}v;`,
      `if (any(up${g})) {`,
      `  let f${g} = exp(om${g}v - ${x});`,
      ...grp.members.map((k) => `  os${k}v = select(os${k}v, os${k}v * f${g}, up${g});`),
      `  om${g}v = select(om${g}v, ${x}, up${g});`,
      `}`,
      `let ex${g} = select(exp(${x} - om${g}v), vec4f(0.0), om${g}v == ${ninf4});`,
      ...grp.members.map((k) => {
        const w = online[k].weight;
        return w
          ? `os${k}v = os${k}v + select(ex${g} * ${e.value(w)}, vec4f(0.0), ex${g} == vec4f(0.0));`
          : `os${k}v = os${k}v + ex${g};`;
      }),
    ];
  });
  const body = [...e.lines.slice(known), ...statements];
  /** (om, os…) ⊕ (mb, sb…) for group g, every sum relative to its own maximum. */
  const merge = (g: number, mb: string, sb: (k: number) => string) =>
    `{ let mn = max(om${g}, ${mb}); ${groups[g].members
      .map(
        (k) =>
          `os${k} = select(os${k} * exp(om${g} - mn), os${k}, om${g} == mn) + select(${sb(k)} * exp(${mb} - mn), ${sb(k)}, ${mb} == mn);`,
      )
      .join(' ')} om${g} = mn; }`;
  const collapse = groups
    .map((_, g) => [0, 1, 2, 3].map((c) => `\n    ${merge(g, `om${g}v[${c}]`, (k) => `os${k}v[${c}]`)}`).join(''))
    .join('');
  const share = [
    ...groups.map((_, g) => `\n    opm${g}[lid.x] = om${g};`),
    ...online.map((_, k) => `\n    ops${k}[lid.x] = os${k};`),
  ].join('');
  const fold = groups
    .map(
      (grp, g) => `
      om${g} = opm${g}[0];${grp.members.map((k) => `\n      os${k} = ops${k}[0];`).join('')}
      for (var i = 1u; i < ${wg}u; i = i + 1u) ${merge(g, `opm${g}[i]`, (k) => `ops${k}[i]`)}`,
    )
    .join('');
  return { decls, body, collapse, share, fold };
}

/** Workgroup arrays for up to `count` online sums (and as many maxima). */
function onlineArrays(count: number, wg: number): string {
  return Array.from(
    { length: count },
    (_, k) => `var<workgroup> opm${k}: array<f32, ${wg}>;\nvar<workgroup> ops${k}: array<f32, ${wg}>;`,
  ).join('\n');
}

function fail(message: string): never {
  throw new InternalError('codegen-wgsl', message);
}

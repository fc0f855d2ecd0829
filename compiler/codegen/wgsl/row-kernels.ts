/**
 * Row kernels: one workgroup per token's row of the vocabulary, its threads strided over the V
 * entries, running a row kernel's steps (plan/fuse-rows.ts) in order with a barrier between them:
 *  - a reduction from the vocabulary to the token: each thread folds its entries, the workgroup's
 *    partials are folded in thread order (treeFold), thread 0 stores the token's result in `D`;
 *  - a map over the row (a gradient w.r.t. logits): every entry written to its `L` output slot;
 *  - a map at the token: thread 0 computes and stores the token's values.
 * Values over the vocabulary are computed where they are used, from the `L` inputs, and never
 * stored: device memory beyond the logits and their gradient is O(T). Values of the token and
 * coarser levels are computed once per thread before each loop over the row (loop invariants).
 * `L` entries are decoded as their slot's encoding says (f32, bf16 or f16: core/device/program.ts).
 */
import { InternalError } from '../../../core/diagnostics/diagnostic.js';
import { ROW_HEADER, ROW_SLOT_WORDS } from '../../../core/device/program.js';
import type { Node } from '../../../core/ir/node.js';
import type { Level } from '../../../core/types/types.js';
import type { RowStep } from '../../plan/plan.js';
import { ExprEmitter, type Scope } from './expr.js';
import { accumulate, combine, folded, indent, origins, store, treeFold, workgroupArrays } from './kernel-parts.js';
import { PRELUDE } from './prelude.js';
import type { Slots } from './slots.js';

/** The `L` binding and the decoding of its entries: f32 words, or two bf16 / f16 halves per word (low half first). */
const ROW_ACCESS = /* wgsl */ `@group(0) @binding(3) var<storage, read_write> L: array<u32>;
var<workgroup> rows_: u32;
fn ld_(base: u32, enc: u32, v: u32) -> f32 {
  if (enc == 0u) { return bitcast<f32>(L[base + v]); }
  let w = L[base + (v >> 1u)];
  if (enc == 1u) { return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (v & 1u) == 1u)); }
  return unpack2x16float(w)[v & 1u];
}`;

export function rowKernel(
  steps: readonly RowStep[],
  slots: Slots,
  materialized: ReadonlySet<number>,
  wg: number,
): string {
  const inputs = new Set<number>();
  const outputs = new Set<number>();
  const rows: NonNullable<Scope['rows']> = {
    input(name) {
      const k = slots.rowSlot({ kind: 'input', name });
      inputs.add(k);
      return `ld_(lb${k}, le${k}, e)`;
    },
  };
  // the token's and coarser values, once per thread, before the loop of the step that first needs them
  const outer = new ExprEmitter(slots, materialized, { index: { token: 't' } }, 'inv');
  const invariant = { outer, levels: new Set<Level>(['token', 'seq', 'group', 'batch']) };
  let taken = 0;
  const newInvariants = () => {
    const lines = outer.lines.slice(taken);
    taken = outer.lines.length;
    return lines;
  };
  const loop = (body: string[]) => `for (var e = lid.x; e < V; e = e + ${wg}u) {\n${indent(body, '      ')}\n    }`;
  // every step but the last ends with a barrier: what it stored is what the next one reads
  const barrier = '  storageBarrier();\n  workgroupBarrier();';
  let reductions = 0;
  const parts = steps.map((step, j) => {
    if (step.kind === 'reduce') {
      if (
        step.alongside.length ||
        step.viaSegments.length ||
        step.epilogue.length ||
        step.nodes[0].type.level !== 'token'
      )
        throw new InternalError('codegen-wgsl', 'a row reduction goes from the vocabulary to the token, alone');
      const acc = accumulate(step.nodes, slots, materialized, '      ', { scope: { token: 't' }, invariant, rows });
      reductions = Math.max(reductions, step.nodes.length);
      const results = step.nodes.map((n, i) => store(slots, n, 't', folded(n.args.fn, `part${i}[0]`, `pcnt${i}[0]`)));
      return `  // step ${j}: ${step.nodes.map((n) => n.args.fn).join(', ')} over the row
${indent(newInvariants(), '  ')}
  {
    ${acc.decls}
    ${loop([acc.body])}
${treeFold(
  wg,
  step.nodes.map((n) => combine(n.args.fn, 'a', 'b')),
)
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
    if (lid.x == 0u) {
      ${results.join('\n      ')}
    }
  }`;
    }
    const own = new Set(step.outputs.map((o) => o.id));
    const computing = new Set([...materialized].filter((id) => !own.has(id)));
    if (step.level === 'vocab') {
      const e = new ExprEmitter(slots, computing, { index: { token: 't', vocab: 'e' }, invariant, rows }, `r${j}_`);
      const stores = step.outputs.map((o) => {
        const k = slots.rowSlot({ kind: 'output', node: o });
        outputs.add(k);
        return `L[lb${k} + e] = bitcast<u32>(${f32Of(o, e.value(o))});`;
      });
      return `  // step ${j}: over the row
${indent(newInvariants(), '  ')}
  {
    ${loop([...e.lines, ...stores])}
  }`;
    }
    if (step.level !== 'token') throw new InternalError('codegen-wgsl', `a row kernel step over ${step.level}`);
    const e = new ExprEmitter(slots, computing, { index: { token: 't' } }, `m${j}_`);
    const stores = step.outputs.map((o) => store(slots, o, 't', e.value(o)));
    return `  // step ${j}: the token's values
  if (lid.x == 0u) {
${indent([...e.lines, ...stores], '    ')}
  }`;
  });
  const slotsUsed = [...new Set([...inputs, ...outputs])].sort((a, b) => a - b);
  const bases = slotsUsed.map((k) => {
    const d = ROW_HEADER + ROW_SLOT_WORDS * k;
    return `let lb${k} = L[${d}u] + row * L[${d + 2}u];${inputs.has(k) ? ` let le${k} = L[${d + 1}u];` : ''}`;
  });
  const nodes = steps.flatMap((s) => (s.kind === 'reduce' ? s.nodes : s.outputs));
  return `${PRELUDE}
${ROW_ACCESS}
${workgroupArrays(reductions, wg)}
${origins(nodes)}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  // the row count through workgroup memory, so that the early return (and every barrier after it) is uniform
  if (lid.x == 0u) { rows_ = L[1]; }
  let nrows = workgroupUniformLoad(&rows_);
  let row = wid.x + wid.y * nwg.x;
  if (row >= nrows) { return; }
  let t = L[0] + row;
  let V = L[2];
  ${bases.join('\n  ')}
${parts.join(`\n${barrier}\n`)}
}
`;
}

/** A value as the f32 an `L` output slot holds. */
function f32Of(n: Node, value: string): string {
  return n.type.dtype === 'bool' ? `select(0.0, 1.0, ${value})` : value;
}

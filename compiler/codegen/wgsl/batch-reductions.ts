/** Reductions to the whole batch: partials per thread, then one fixed-order combine with the epilogue. */
import type { ReduceKernel } from '../../plan/plan.js';
import {
  CHUNK_PER_THREAD,
  COUNT,
  accumulate,
  batchPartials,
  epilogue,
  combine,
  folded,
  indent,
  loopInvariant,
  origins,
  store,
  treeFold,
  workgroupArrays,
  type BatchPartialsLayout,
} from './kernel-parts.js';
import { PRELUDE } from './prelude.js';
import type { Slots } from './slots.js';
import { vectorQuad } from './vector-lanes.js';

/**
 * First pass of a reduction of tokens to the whole batch: a workgroup per chunk of tokens, its
 * threads strided over the chunk four tokens at a time (vectorQuad: neighbouring threads read
 * neighbouring vec4s), each folding its tokens into its own (value, count) partial. No workgroup
 * barrier: on CPU-backed adapters a barrier turns the shader into coroutines and costs more than
 * the math.
 */
export function reducePartialsVec4(
  k: ReduceKernel,
  slots: Slots,
  materialized: ReadonlySet<number>,
  wg: number,
): string {
  const nodes = k.nodes;
  const groups = (wg * CHUNK_PER_THREAD) / 4;
  const v = vectorQuad(slots, 'g');
  const invariant = loopInvariant(slots, materialized, k.alongside, {});
  const bodies = [accumulate(nodes, slots, materialized, '    ', { alongside: k.alongside, quad: v, invariant })];
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
${indent(invariant.lines(), '  ')}
  var g = w * ${groups}u + lid.x;
  loop {
    if (g >= hi) { break; }
    ${v.loads().join('\n    ')}
    ${body}
    ${v.stores().join('\n    ')}
    g = g + ${wg}u;
  }
  ${bodies[0].collapse}
  ${results.join('\n  ')}
}
`;
}

/**
 * Second pass of a batch reduction: one workgroup folds each value's chunk partials in a fixed
 * order, then thread 0 computes the batch-level epilogue from the results it just stored.
 */
export function combinePartials(
  k: ReduceKernel,
  slots: Slots,
  materialized: ReadonlySet<number>,
  wg: number,
  layout: BatchPartialsLayout = 'chunks',
): string {
  const batchNodes = k.nodes[0].type.level === 'batch' ? k.nodes : k.viaSegments;
  const blocks = batchNodes.map((n) => {
    const { key, count } = batchPartials(k, n, wg, layout);
    const partials = slots.slot(key);
    const fold = combine(n.args.fn, 'a', 'b');
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
      ${store(slots, n, '0u', folded(n.args.fn, 'part0[0]', 'pcnt0[0]'))}
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
 * One workgroup over every element of a small level (sequences, groups) for a reduction to the
 * batch, with its epilogue: one dispatch instead of partials and a combine. Threads stride over
 * the elements, then their partials are folded in a fixed order.
 */
export function reduceWhole(
  k: ReduceKernel,
  slots: Slots,
  materialized: ReadonlySet<number>,
  wg: number,
  output: 'result' | 'chunk-partial' = 'result',
): string {
  const nodes = k.nodes;
  const from = nodes[0].src[0].type.level;
  const acc = accumulate(nodes, slots, materialized, '    ', { alongside: k.alongside });
  // a batch in several chunks: this chunk's (value, count), which combinePartials folds with the other chunks'
  const results = nodes.map((n, i) => {
    if (output === 'result') return store(slots, n, '0u', folded(n.args.fn, `part${i}[0]`, `pcnt${i}[0]`));
    const partials = slots.slot(batchPartials(k, n, wg, 'whole').key);
    return `D[sec(${partials}u)] = part${i}[0];\n    D[sec(${partials}u) + 1u] = pcnt${i}[0];`;
  });
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
${treeFold(
  wg,
  nodes.map((n) => combine(n.args.fn, 'a', 'b')),
)}
  if (lid.x == 0u) {
    ${results.join('\n    ')}
  }
${output === 'result' ? epilogue(k, slots, materialized) : ''}}
`;
}

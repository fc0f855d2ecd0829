/** Reductions to sequences or groups: a thread per short segment, a workgroup per long one. */
import { InternalError } from '../../../core/diagnostics/diagnostic.js';
import type { ReduceKernel } from '../../plan/plan.js';
import {
  COUNT,
  SHORT_SEGMENT,
  accumulate,
  batchPartials,
  combine,
  folded,
  indent,
  loopInvariant,
  memberOf,
  origins,
  segmentPass,
  sequencesPerWorkgroup,
  store,
  treeFold,
  workgroupArrays,
} from './kernel-parts.js';
import { PRELUDE } from './prelude.js';
import type { Slots } from './slots.js';
import { vectorQuad } from './vector-lanes.js';

/**
 * Token→seq reductions with a thread per (short) sequence, four tokens per step: the tokens before
 * the first multiple of 4 and after the last one one by one, the rest as vec4s (vectorQuad). The
 * tokens are folded in order, as by reducePerThread. Only the reductions' results are stored (one
 * per sequence): no alongside values, no folding through to the batch.
 */
export function reducePerThreadVec4(
  k: ReduceKernel,
  slots: Slots,
  materialized: ReadonlySet<number>,
  wg: number,
): string {
  const nodes = k.nodes;
  const starts = slots.slot({ buffer: 'I', kind: 'csr_starts', from: 'token', to: 'seq' });
  const invariant = loopInvariant(slots, materialized, [], { seq: 'seg' });
  const scalar = accumulate(nodes, slots, materialized, '      ', { scope: { seq: 'seg' }, invariant });
  const v = vectorQuad(slots, 'g');
  const quad = accumulate(nodes, slots, materialized, '    ', { quad: v, scope: { seq: 'seg' }, invariant });
  const stores = nodes.map((n, i) => store(slots, n, 'seg', folded(n.args.fn, `acc${i}`, `cnt${i}`)));
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
${indent(invariant.lines(), '  ')}
  // whole vec4s [first, last) inside the sequence; the tokens before them [lo, h), after them [max(4·last, h), hi)
  let first = min((lo + 3u) / 4u, hi / 4u);
  let last = max(hi / 4u, first);
  let h = max(lo, min(4u * first, hi));
${one('lo', 'h')}
  ${quad.vectorDecls}
  for (var g = first; g < last; g = g + 1u) {
${indent([...v.loads(), quad.body], '    ')}
  }
  ${quad.collapse}
${one('max(4u * last, h)', 'hi')}
  ${stores.join('\n  ')}
}
`;
}

/** Reductions over small segments: one thread walks one segment's members. */
export function reducePerThread(k: ReduceKernel, slots: Slots, materialized: ReadonlySet<number>, wg: number): string {
  const { nodes, from, to, starts, acc } = segmentPass(k, slots, materialized);
  const stores = nodes.map((n, i) => store(slots, n, 'seg', folded(n.args.fn, `acc${i}`, `cnt${i}`)));
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

/**
 * Long segments: a workgroup per segment, its threads strided over the segment's members, each
 * storing its own (value, count) partial — no barrier (see reducePartialsVec4).
 * foldSegmentPartials then folds each segment's partials in order.
 */
export function reducePerSegment(k: ReduceKernel, slots: Slots, materialized: ReadonlySet<number>, wg: number): string {
  const { nodes, from, to, starts, acc } = segmentPass(k, slots, materialized);
  const results = nodes.map((n, i) => {
    const partials = slots.slot({
      buffer: 'D',
      kind: 'segment_partials',
      node: n,
      segments: to,
      threads: wg,
      minMean: SHORT_SEGMENT,
    });
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
 * reducePerSegment over a sequence's tokens, four per step (vectorQuad): the vec4s at both ends
 * are shared with the neighbouring sequences, so lanes outside the sequence are left out of the
 * reductions and of the stores. The sequence's own values are one load for the workgroup. The
 * threads' partials are folded in the workgroup, in thread order (one barrier; thread 0 folds):
 * reductions to seqs store their result, reductions to the batch (directly, or folded through the
 * sequences) store the sequence's (value, count) partial for combinePartials.
 */
export function reducePerSequenceVec4(
  k: ReduceKernel,
  slots: Slots,
  materialized: ReadonlySet<number>,
  wg: number,
): string {
  const toBatch = k.nodes[0].type.level === 'batch';
  const nodes = [...k.nodes, ...k.viaSegments];
  const starts = slots.slot({ buffer: 'I', kind: 'csr_starts', from: 'token', to: 'seq' });
  const v = vectorQuad(slots, 'g', { lo: 'lo', hi: 'hi' });
  const invariant = loopInvariant(slots, materialized, k.alongside, { seq: 'seg' });
  const bodies = [
    accumulate(nodes, slots, materialized, '    ', {
      alongside: k.alongside,
      quad: v,
      scope: { seq: 'seg' },
      invariant,
    }),
  ];
  const results = nodes.map((n, i) => {
    if (k.viaSegments.includes(n)) {
      const partials = slots.slot(batchPartials(k, n, wg).key);
      return `D[sec(${partials}u) + 2u * seg] = part${i}[0];\n    D[sec(${partials}u) + 2u * seg + 1u] = pcnt${i}[0];`;
    }
    return store(slots, n, 'seg', folded(n.args.fn, `part${i}[0]`, `pcnt${i}[0]`));
  });
  if (toBatch)
    throw new InternalError('codegen-wgsl', 'a reduction straight to the batch takes reduceSequencesToBatchVec4');
  const fold = `${treeFold(
    wg,
    nodes.map((n) => combine(n.args.fn, 'a', 'b')),
  )}
  if (lid.x == 0u) {
    ${results.join('\n    ')}
  }`;
  return `${PRELUDE}
${workgroupArrays(nodes.length, wg)}
${origins(nodes)}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let seg = wid.x + wid.y * nwg.x;
  if (seg >= I[1]) { return; }
  let lo = I[sec(${starts}u) + seg];
  let hi = I[sec(${starts}u) + seg + 1u];
  let gh = (hi + 3u) / 4u;
  ${bodies[0].decls}
${indent(invariant.lines(), '  ')}
  var g = lo / 4u + lid.x;
  loop {
    if (g >= gh) { break; }
${indent([...v.loads(), ...bodies.map((b) => b.body), ...v.stores()], '    ')}
    g = g + ${wg}u;
  }
  ${bodies[0].collapse}
${fold}
}
`;
}

/**
 * A reduction of long sequences' tokens straight to the batch: a workgroup walks a run of
 * sequences, one after the other, its threads strided over each one's vec4s (so the sequence's
 * own values are one uniform load), each thread folding into its own (value, count) partial, which
 * the combine folds: no barrier, no fold in the workgroup.
 */
export function reduceSequencesToBatchVec4(
  k: ReduceKernel,
  slots: Slots,
  materialized: ReadonlySet<number>,
  wg: number,
): string {
  const nodes = k.nodes;
  const per = sequencesPerWorkgroup(wg);
  const starts = slots.slot({ buffer: 'I', kind: 'csr_starts', from: 'token', to: 'seq' });
  const v = vectorQuad(slots, 'g', { lo: 'lo', hi: 'hi' });
  const invariant = loopInvariant(slots, materialized, k.alongside, { seq: 'seg' });
  const body = accumulate(nodes, slots, materialized, '      ', {
    alongside: k.alongside,
    quad: v,
    scope: { seq: 'seg' },
    invariant,
  });
  const partials = nodes.map((n, i) => {
    const at = slots.slot(batchPartials(k, n, wg, 'sequence-threads').key);
    return `D[sec(${at}u) + 2u * q] = acc${i};\n  D[sec(${at}u) + 2u * q + 1u] = cnt${i};`;
  });
  return `${PRELUDE}
${origins(nodes)}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let w = wid.x + wid.y * nwg.x;
  let q = w * ${wg}u + lid.x;
  let last = min(I[1], (w + 1u) * ${per}u);
  ${body.decls}
  for (var seg = w * ${per}u; seg < last; seg = seg + 1u) {
    let lo = I[sec(${starts}u) + seg];
    let hi = I[sec(${starts}u) + seg + 1u];
    let gh = (hi + 3u) / 4u;
${indent(invariant.lines(), '    ')}
    var g = lo / 4u + lid.x;
    loop {
      if (g >= gh) { break; }
${indent([...v.loads(), body.body, ...v.stores()], '      ')}
      g = g + ${wg}u;
    }
  }
  ${body.collapse}
  ${partials.join('\n  ')}
}
`;
}

/** Second pass of reducePerSegment: a thread per segment folds its threads' partials in order. */
export function foldSegmentPartials(k: ReduceKernel, slots: Slots, wg: number): string {
  const to = k.nodes[0].type.level;
  const blocks = [...k.nodes, ...k.viaSegments].map((n) => {
    const partials = slots.slot({
      buffer: 'D',
      kind: 'segment_partials',
      node: n,
      segments: k.nodes[0].type.level,
      threads: wg,
      minMean: SHORT_SEGMENT,
    });
    const fold = combine(n.args.fn, 'a', 'b');
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
        : store(slots, n, 'seg', folded(n.args.fn, 'acc', 'cnt'))
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

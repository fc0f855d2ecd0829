/** Map kernels: a workgroup per chunk of elements; over tokens, four per step. */
import type { Kernel } from '../../plan/plan.js';
import { ExprEmitter } from './expr.js';
import { CHUNK_PER_THREAD, COUNT, indent, loopInvariant, origins, store } from './kernel-parts.js';
import { PRELUDE } from './prelude.js';
import type { Slots } from './slots.js';
import { vectorQuad } from './vector-lanes.js';

export function mapKernel(
  k: Extract<Kernel, { kind: 'map' }>,
  slots: Slots,
  materialized: ReadonlySet<number>,
  wg: number,
): string {
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

/** A map over tokens, four per step (vec4 values, loads and stores, see vectorQuad). */
export function mapKernelVec4(
  k: Extract<Kernel, { kind: 'map' }>,
  slots: Slots,
  materialized: ReadonlySet<number>,
  wg: number,
): string {
  const computing = new Set([...materialized].filter((id) => !k.outputs.some((o) => o.id === id)));
  const groups = (wg * CHUNK_PER_THREAD) / 4;
  const v = vectorQuad(slots, 'g');
  const invariant = loopInvariant(slots, materialized, k.outputs, {});
  const e = new ExprEmitter(
    slots,
    computing,
    { index: { token: v.token }, tokenLoad: v.load, invariant, vec4: true },
    'p',
  );
  const stores = k.outputs.map((o) => v.store(o, e.value(o)));
  const bodies = [[...e.lines, ...stores]];
  return `${PRELUDE}
${origins(k.outputs)}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let w = wid.x + wid.y * nwg.x;
  let hi = min((I[0] + 3u) / 4u, (w + 1u) * ${groups}u);
${indent(invariant.lines(), '  ')}
  var g = w * ${groups}u + lid.x;
  loop {
    if (g >= hi) { break; }
${indent([...v.loads(), ...bodies.flat(), ...v.stores()], '    ')}
    g = g + ${wg}u;
  }
}
`;
}

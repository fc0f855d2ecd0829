/** Group-local kernels (the plan's fuseGroupLocal): one thread per group runs the steps in order. */
import type { GroupStep } from '../../plan/plan.js';
import { ExprEmitter } from './expr.js';
import { accumulate, folded, indent, origins, store } from './kernel-parts.js';
import { PRELUDE } from './prelude.js';
import type { Slots } from './slots.js';

/**
 * Group-local steps (the plan's fuseGroupLocal) with one thread per group: group-level maps at the group,
 * seq→group reductions and seq-level maps in loops over the group's sequences.
 */
export function groupLocalKernel(
  steps: readonly GroupStep[],
  slots: Slots,
  materialized: ReadonlySet<number>,
  wg: number,
): string {
  const starts = slots.slot({ buffer: 'I', kind: 'csr_starts', from: 'seq', to: 'group' });
  const members = slots.slot({ buffer: 'I', kind: 'csr_members', from: 'seq', to: 'group' });
  const blocks = steps.map((step) => {
    if (step.kind === 'reduce') {
      const acc = accumulate(step.nodes, slots, materialized, '      ', { scope: { group: 'g' } });
      const stores = step.nodes.map((n, k) => store(slots, n, 'g', folded(n.args.fn, `acc${k}`, `cnt${k}`)));
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

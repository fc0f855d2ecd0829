/** Scans, cumprods and shifts: one thread per sequence walks its tokens. */
import type { Node } from '../../../core/ir/node.js';
import { ExprEmitter, f32Literal } from './expr.js';
import { indent, origins } from './kernel-parts.js';
import { PRELUDE } from './prelude.js';
import type { Slots } from './slots.js';
import { vectorLanes } from './vector-lanes.js';

/**
 * Scans, cumprods and shifts: one thread per sequence walks its tokens in order (reversed for
 * reverse scans and `next` shifts), masked tokens carrying the state through; four tokens per step
 * between the sequence's unaligned ends (as in reducePerThreadVec4), whose outputs are stored as
 * one vec4, the ends token by token.
 */
export function seqwiseKernelVec4(
  n: Node<'scan' | 'cumprod' | 'shift'>,
  slots: Slots,
  materialized: ReadonlySet<number>,
  wg: number,
): string {
  const offsets = slots.slot({ buffer: 'I', kind: 'offsets' });
  const mask = slots.slot({ buffer: 'I', kind: 'mask' });
  const out = slots.slot({ buffer: 'D', kind: 'value', node: n });
  const isShift = n.op === 'shift';
  const reverse =
    n.op === 'shift' ? (n.args as { dir: 'next' | 'prev' }).dir === 'next' : (n.args as { reverse: boolean }).reverse;
  const v = vectorLanes('g');
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
    const e = new ExprEmitter(
      slots,
      materialized,
      { index: { token: lane.token, seq: 's' }, tokenLoad: lane.load },
      `p${k}_`,
    );
    return step(e, `${lane.load('I', mask)} != 0u`, `o${k}`);
  });
  const scalarEmitter = new ExprEmitter(slots, materialized, { index: { token: 't', seq: 's' } }, 'p');
  const scalar = [...step(scalarEmitter, `I[sec(${mask}u) + t] != 0u`, 'o'), `D[sec(${out}u) + t] = o;`];
  const one = (from: string, to: string) =>
    reverse
      ? `  for (var k = ${to}; k > ${from}; k = k - 1u) {\n    let t = k - 1u;\n${indent(scalar, '    ')}\n  }`
      : `  for (var t = ${from}; t < ${to}; t = t + 1u) {\n${indent(scalar, '    ')}\n  }`;
  const groups = reverse
    ? `for (var k = last; k > first; k = k - 1u) {\n    let g = k - 1u;`
    : `for (var g = first; g < last; g = g + 1u) {`;
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

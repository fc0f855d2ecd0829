/**
 * Four tokens per step for kernels over tokens: their token-level inputs read as one vec4 per
 * section, their outputs written as one vec4. The math runs on vec4 values (vectorQuad), or token
 * by token where a value carries from one token to the next (vectorLanes, for scans). Arena
 * sections start at multiples of 4 and are zero-padded (runtime/webgpu/tables.ts), so the last
 * step may run past the tokens: the padding's mask is 0.
 */
import type { Node } from '../../../core/ir/node.js';
import type { Slots } from './slots.js';

/**
 * One of the four tokens a vectorized kernel handles per step, for kernels whose math runs token
 * by token (scans carry a value from one token to the next): its index and its elements of
 * token-level sections (components of vec4s loaded once for the four).
 */
export interface VectorLane {
  readonly k: number;
  readonly token: string;
  readonly load: (buffer: 'D' | 'I', slot: number) => string;
}

/**
 * Four tokens per step, one by one: token-level sections are read as one vec4 per step (sections
 * start at multiples of 4 and are padded; the padding's mask is 0). Returns the lanes and, once
 * their code is generated, the loads to put before it.
 */
export function vectorLanes(group: string): { lanes: VectorLane[]; loads: () => string[] } {
  const loaded = new Map<string, { buffer: 'D' | 'I'; slot: number }>();
  const vname = (buffer: 'D' | 'I', slot: number) => `${buffer === 'D' ? 'v' : 'u'}4_${slot}`;
  const lanes = [0, 1, 2, 3].map((k): VectorLane => ({
    k,
    token: `t${k}`,
    load(buffer, slot) {
      loaded.set(`${buffer}${slot}`, { buffer, slot });
      return `${vname(buffer, slot)}[${k}]`;
    },
  }));
  return {
    lanes,
    loads: () => [
      ...lanes.map((l) => `let ${l.token} = 4u * ${group} + ${l.k}u;`),
      ...[...loaded.values()].map(
        ({ buffer, slot }) => `let ${vname(buffer, slot)} = V${buffer}[(sec(${slot}u) >> 2u) + ${group}];`,
      ),
    ],
  };
}

/**
 * Four tokens as one vec4 value (expr.ts in vec4 mode): the kernel's math is written once for the
 * four, on vec4s, instead of once per token — a quarter of the shader text, which is most of what
 * compiling a shader costs. `token` is the vec4<u32> of the four token indices, `guard` (with a
 * range) the vec4<bool> of which belong to it.
 */
export interface VectorQuad {
  readonly token: string;
  readonly guard?: string;
  readonly load: (buffer: 'D' | 'I', slot: number) => string;
  readonly store: (n: Node, value: string) => string;
  readonly loads: () => string[];
  readonly stores: () => string[];
}

export function vectorQuad(slots: Slots, group: string, range?: { lo: string; hi: string }): VectorQuad {
  const loaded = new Map<string, { buffer: 'D' | 'I'; slot: number }>();
  const stored = new Map<number, string>();
  const vname = (buffer: 'D' | 'I', slot: number) => `${buffer === 'D' ? 'v' : 'u'}4_${slot}`;
  const lanes = [0, 1, 2, 3];
  return {
    token: 'tq',
    guard: range ? 'inq' : undefined,
    load(buffer, slot) {
      loaded.set(`${buffer}${slot}`, { buffer, slot });
      return vname(buffer, slot);
    },
    store(n, value) {
      const slot = slots.slot({ buffer: 'D', kind: 'value', node: n });
      stored.set(slot, n.type.dtype === 'bool' ? `select(vec4f(0.0), vec4f(1.0), ${value})` : value);
      return `// output: ${value}`;
    },
    loads: () => [
      `let tq = 4u * ${group} + vec4<u32>(0u, 1u, 2u, 3u);`,
      ...(range ? [`let inq = (tq >= vec4<u32>(${range.lo})) & (tq < vec4<u32>(${range.hi}));`] : []),
      ...[...loaded.values()].map(
        ({ buffer, slot }) => `let ${vname(buffer, slot)} = V${buffer}[(sec(${slot}u) >> 2u) + ${group}];`,
      ),
    ],
    stores: () => {
      const whole = [...stored].map(([slot, value]) => `VD[(sec(${slot}u) >> 2u) + ${group}] = ${value};`);
      if (!range || !whole.length) return whole;
      // a vec4 shared with a neighbouring range: only this range's tokens, one by one (another
      // workgroup writes the others)
      const values = [...stored].map(([slot, value], i) => ({ slot, name: `sq${i}`, value }));
      const parts = lanes.map(
        (k) => `if (inq[${k}]) { ${values.map((v) => `D[sec(${v.slot}u) + tq[${k}]] = ${v.name}[${k}];`).join(' ')} }`,
      );
      return [
        ...values.map((v) => `let ${v.name} = ${v.value};`),
        `if (all(inq)) {`,
        ...values.map((v) => `  VD[(sec(${v.slot}u) >> 2u) + ${group}] = ${v.name};`),
        `} else {`,
        ...parts.map((p) => `  ${p}`),
        `}`,
      ];
    },
  };
}

/**
 * Four tokens per step for kernels over tokens: their token-level inputs read as one vec4 per
 * section, their outputs written as one vec4, the math per token in scalar code. Arena sections
 * start at multiples of 4 and are zero-padded (runtime/webgpu/tables.ts), so the last step may
 * run past the tokens: the padding's mask is 0.
 */
import type { Node } from '../../../src/ir/node.js';
import type { Slots } from './slots.js';

/**
 * One of the four tokens a vectorized kernel handles per step: its index, its elements of
 * token-level sections (components of vec4s loaded once for the four), and where its stores go
 * (components of vec4s stored once).
 */
export interface VectorLane {
  readonly k: number;
  readonly token: string;
  /** Whether this lane's token belongs to the kernel's range (a sequence's tokens); unset: always. */
  readonly guard?: string;
  readonly load: (buffer: 'D' | 'I', slot: number) => string;
  readonly store: (n: Node, value: string) => string;
}

/**
 * Four tokens per step: token-level sections are read as one vec4 per step, outputs written as
 * one vec4 (sections start at multiples of 4 and are padded; the padding's mask is 0). The math
 * stays scalar per token. Returns the lanes, and, once their code is generated, the loads to put
 * before it and the stores after it.
 */
export function vectorLanes(slots: Slots, group: string, range?: { lo: string; hi: string }): { lanes: VectorLane[]; loads: () => string[]; stores: () => string[] } {
  const loaded = new Map<string, { buffer: 'D' | 'I'; slot: number }>();
  const stored = new Map<number, { node: Node; values: string[] }>();
  const vname = (buffer: 'D' | 'I', slot: number) => `${buffer === 'D' ? 'v' : 'u'}4_${slot}`;
  const lanes = [0, 1, 2, 3].map((k): VectorLane => ({
    k,
    token: `t${k}`,
    guard: range ? `in${k}` : undefined,
    load(buffer, slot) {
      loaded.set(`${buffer}${slot}`, { buffer, slot });
      return `${vname(buffer, slot)}[${k}]`;
    },
    store(n, value) {
      const slot = slots.slot({ buffer: 'D', kind: 'value', node: n });
      const entry = stored.get(slot) ?? { node: n, values: [] };
      entry.values[k] = n.type.dtype === 'bool' ? `select(0.0, 1.0, ${value})` : value;
      stored.set(slot, entry);
      return `// ${n.type.dtype === 'bool' ? 'bool' : 'f32'} output lane ${k}: ${value}`;
    },
  }));
  return {
    lanes,
    loads: () => [
      ...lanes.map((l) => `let ${l.token} = 4u * ${group} + ${l.k}u;`),
      ...(range ? lanes.map((l) => `let in${l.k} = ${l.token} >= ${range.lo} && ${l.token} < ${range.hi};`) : []),
      ...[...loaded.values()].map(({ buffer, slot }) => `let ${vname(buffer, slot)} = V${buffer}[(sec(${slot}u) >> 2u) + ${group}];`),
    ],
    stores: () => {
      const whole = [...stored].map(([slot, { values }]) => `VD[(sec(${slot}u) >> 2u) + ${group}] = vec4f(${values.join(', ')});`);
      if (!range || !whole.length) return whole;
      // a vec4 shared with a neighbouring range: only this range's tokens, one by one (another
      // workgroup writes the others)
      const parts = lanes.map((l) => `if (in${l.k}) { ${[...stored].map(([slot, { values }]) => `D[sec(${slot}u) + ${l.token}] = ${values[l.k]};`).join(' ')} }`);
      return [`if (in0 && in3) {`, ...whole.map((w) => `  ${w}`), `} else {`, ...parts.map((p) => `  ${p}`), `}`];
    },
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
      ...[...loaded.values()].map(({ buffer, slot }) => `let ${vname(buffer, slot)} = V${buffer}[(sec(${slot}u) >> 2u) + ${group}];`),
    ],
    stores: () => {
      const whole = [...stored].map(([slot, value]) => `VD[(sec(${slot}u) >> 2u) + ${group}] = ${value};`);
      if (!range || !whole.length) return whole;
      // a vec4 shared with a neighbouring range: only this range's tokens, one by one (another
      // workgroup writes the others)
      const values = [...stored].map(([slot, value], i) => ({ slot, name: `sq${i}`, value }));
      const parts = lanes.map((k) => `if (inq[${k}]) { ${values.map((v) => `D[sec(${v.slot}u) + tq[${k}]] = ${v.name}[${k}];`).join(' ')} }`);
      return [...values.map((v) => `let ${v.name} = ${v.value};`), `if (all(inq)) {`, ...values.map((v) => `  VD[(sec(${v.slot}u) >> 2u) + ${group}] = ${v.name};`), `} else {`, ...parts.map((p) => `  ${p}`), `}`];
    },
  };
}

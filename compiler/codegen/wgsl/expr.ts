/**
 * Scalar WGSL for fused elementwise IR: every node becomes one `let` (emit-time CSE by node id),
 * materialized values and inputs are loads from `D`, and values of a coarser level are read
 * through the index maps (token → seq → group → batch).
 */
import { InternalError } from '../../../core/diagnostics/diagnostic.js';
import type { Node } from '../../../core/ir/node.js';
import type { BinaryOp, UnaryOp } from '../../../core/ir/op.js';
import { levelRank, type Level } from '../../../core/types/types.js';
import { countedSize } from '../../plan/plan.js';
import type { Slots } from './slots.js';

/** Literal f32 text (infinities and NaN through bit patterns). */
export function f32Literal(v: number): string {
  // NOTE: WGSL rejects NaN and infinities in constant expressions, so those come from a runtime bitcast
  if (Number.isNaN(v)) return 'bits_(0x7fc00000u)';
  const f = Math.fround(v);
  if (f === Infinity) return 'bits_(0x7f800000u)';
  if (f === -Infinity) return 'bits_(0xff800000u)';
  if (f === 0) return Object.is(f, -0) ? '-0.0' : '0.0';
  return `bitcast<f32>(0x${(new Uint32Array(new Float32Array([f]).buffer)[0] >>> 0).toString(16)}u)`;
}

/**
 * An f32 literal WGSL cannot evaluate at shader-creation time: for an operation whose operands are
 * all constants (`exp(1000)`, `log(0)`), which WGSL would const-evaluate and reject when the result
 * is not a finite f32; at run time it is IEEE arithmetic like every other value.
 */
function opaqueF32Literal(v: number): string {
  return `bits_(0x${(new Uint32Array(new Float32Array([v]).buffer)[0] >>> 0).toString(16)}u)`;
}

const UNARY: { [K in UnaryOp]: (x: string) => string } = {
  neg: (x) => `(-${x})`,
  exp: (x) => `exp(${x})`,
  log: (x) => `log(${x})`,
  log1p: (x) => `log1p_(${x})`,
  expm1: (x) => `expm1_(${x})`,
  sqrt: (x) => `sqrt(${x})`,
  abs: (x) => `abs(${x})`,
  sign: (x) => `sign(${x})`,
  sigmoid: (x) => `sigmoid_(${x})`,
  logsigmoid: (x) => `(-softplus_(-${x}))`,
  softplus: (x) => `softplus_(${x})`,
  relu: (x) => `max(${x}, 0.0)`,
  tanh: (x) => `tanh_(${x})`,
  floor: (x) => `floor(${x})`,
  ceil: (x) => `ceil(${x})`,
  // WGSL's round, like torch.round, takes ties to the even neighbour
  round: (x) => `round(${x})`,
  cos: (x) => `cos(${x})`,
  sin: (x) => `sin(${x})`,
  not: (x) => `(!${x})`,
};

const BINARY: { [K in BinaryOp]: (a: string, b: string) => string } = {
  add: (a, b) => `(${a} + ${b})`,
  sub: (a, b) => `(${a} - ${b})`,
  mul: (a, b) => `(${a} * ${b})`,
  div: (a, b) => `(${a} / ${b})`,
  pow: (a, b) => `pow_(${a}, ${b})`,
  min: (a, b) => `min(${a}, ${b})`,
  max: (a, b) => `max(${a}, ${b})`,
  lt: (a, b) => `(${a} < ${b})`,
  le: (a, b) => `(${a} <= ${b})`,
  gt: (a, b) => `(${a} > ${b})`,
  ge: (a, b) => `(${a} >= ${b})`,
  eq: (a, b) => `(${a} == ${b})`,
  ne: (a, b) => `(${a} != ${b})`,
  and: (a, b) => `(${a} && ${b})`,
  or: (a, b) => `(${a} || ${b})`,
};

/**
 * The same operations on four tokens at once (vec4 values, component-wise): `&&` and `||` have no
 * vector form in WGSL (`&` and `|` do, without short-circuit, which select-based code never
 * needs), and the prelude's helpers have vec4 twins (`…4_`).
 */
const UNARY4: { [K in UnaryOp]: (x: string) => string } = {
  ...UNARY,
  log1p: (x) => `log1p4_(${x})`,
  expm1: (x) => `expm14_(${x})`,
  sigmoid: (x) => `sigmoid4_(${x})`,
  logsigmoid: (x) => `(-softplus4_(-${x}))`,
  softplus: (x) => `softplus4_(${x})`,
  relu: (x) => `max(${x}, vec4f(0.0))`,
  tanh: (x) => `tanh4_(${x})`,
};

const BINARY4: { [K in BinaryOp]: (a: string, b: string) => string } = {
  ...BINARY,
  pow: (a, b) => `pow4_(${a}, ${b})`,
  and: (a, b) => `(${a} & ${b})`,
  or: (a, b) => `(${a} | ${b})`,
};

export interface Scope {
  /** WGSL expressions (u32) of the element index at each level available here. */
  readonly index: Partial<Record<Level, string>>;
  /**
   * Vectorized kernels: the expression of a token-level section's element at this scope's token,
   * taken from a vec4 the kernel loaded for four tokens at once (see emit.ts). Unset: a scalar load.
   */
  readonly tokenLoad?: (buffer: 'D' | 'I', slot: number) => string;
  /**
   * Where values that are the same for every element of the loop come from: nodes at these levels
   * are emitted once by `outer` (its lines go before the loop), not per element and per lane.
   */
  readonly invariant?: { readonly outer: ExprEmitter; readonly levels: ReadonlySet<Level> };
  /**
   * Four tokens at once: every value is a vec4 (f32, bool or u32 components), `tokenLoad` gives
   * whole vec4s, coarser values are gathered per component or, when invariant, splat.
   */
  readonly vec4?: boolean;
  /**
   * Kernels over the vocabulary (row-kernels.ts): the expression of a `token x vocab` input's entry
   * at this scope's vocabulary index. Unset: no value over the vocabulary is read here.
   */
  readonly rows?: { readonly input: (name: string) => string };
}

/**
 * The ops whose `compute` reads every source through `value`, and in which order (see
 * emitOperandsFirst); other ops (loads, reductions, rows) are emitted by plain recursion.
 */
const OPERANDS_IN_ORDER: Partial<Record<Node['op'], readonly number[]>> = {
  unary: [0],
  binary: [0, 1],
  cast: [0],
  where: [2, 1, 0],
  clip: [0, 1, 2],
  sg: [0],
  broadcast: [0],
};

export class ExprEmitter {
  readonly lines: string[] = [];
  private readonly cache = new Map<number, string>();
  private readonly index: Partial<Record<Level, string>>;
  private readonly tokenLoad?: (buffer: 'D' | 'I', slot: number) => string;
  private readonly invariant?: Scope['invariant'];
  private readonly vec4: boolean;
  private readonly rows?: Scope['rows'];
  private counter = 0;

  constructor(
    private readonly slots: Slots,
    private readonly materialized: ReadonlySet<number>,
    scope: Scope,
    private readonly prefix = 'v',
  ) {
    this.index = { ...scope.index, batch: '0u' };
    this.tokenLoad = scope.tokenLoad;
    this.invariant = scope.invariant;
    this.vec4 = !!scope.vec4;
    this.rows = scope.rows;
  }

  /** The WGSL type of a value of element type `t` here. */
  private type(t: 'f32' | 'bool' | 'u32'): string {
    return this.vec4 ? (t === 'f32' ? 'vec4f' : `vec4<${t}>`) : t;
  }

  /** `code` (a scalar of element type t) as a value here: splat to four components in vec4 mode. */
  private splat(t: 'f32' | 'bool' | 'u32', code: string): string {
    return this.vec4 ? `${this.type(t)}(${code})` : code;
  }

  /** `D` or `I` at a section's elements `index` (a vec4<u32> in vec4 mode: one load per component). */
  private gather(buffer: 'D' | 'I', slot: number, index: string): string {
    if (!this.vec4) return `${buffer}[sec(${slot}u) + ${index}]`;
    const parts = ['x', 'y', 'z', 'w'].map((c) => `${buffer}[sec(${slot}u) + ${index}.${c}]`);
    return `${buffer === 'D' ? 'vec4f' : 'vec4<u32>'}(${parts.join(', ')})`;
  }

  private fresh(): string {
    return `${this.prefix}${this.counter++}`;
  }

  private bind(type: 'f32' | 'bool' | 'u32', code: string): string {
    const name = this.fresh();
    this.lines.push(`let ${name}: ${this.type(type)} = ${code};`);
    return name;
  }

  /** The element index at a level, derived from a finer one when needed. */
  indexAt(level: Level): string {
    const known = this.index[level];
    if (known) return known;
    if (level === 'seq') {
      const t = this.index.token ?? fail('no token index to derive a seq index from');
      return (this.index.seq = this.bind(
        'u32',
        this.tokenElement('I', this.slots.slot({ buffer: 'I', kind: 'seq_of' }), t),
      ));
    }
    if (level === 'group') {
      const s = this.indexAt('seq');
      return (this.index.group = this.bind(
        'u32',
        this.gather('I', this.slots.slot({ buffer: 'I', kind: 'group_of' }), s),
      ));
    }
    return fail(`no index for level ${level}`);
  }

  /** A token-level section's element at this scope's token `t`. */
  private tokenElement(buffer: 'D' | 'I', slot: number, t: string): string {
    return this.tokenLoad ? this.tokenLoad(buffer, slot) : `${buffer}[sec(${slot}u) + ${t}]`;
  }

  private load(slot: number, level: Level, bool: boolean): string {
    if (level === 'vocab') fail('values over the vocabulary are recomputed, never loaded from D');
    const v =
      level === 'token'
        ? this.tokenElement('D', slot, this.indexAt('token'))
        : level === 'batch'
          ? this.splat('f32', `D[sec(${slot}u)]`)
          : this.gather('D', slot, this.indexAt(level));
    return bool ? `(${v} != ${this.splat('f32', '0.0')})` : v;
  }

  /** WGSL expression of a node's value at this scope's element. */
  value(n: Node): string {
    const hit = this.cache.get(n.id);
    if (hit) return hit;
    this.emitOperandsFirst(n);
    const bool = n.type.dtype === 'bool';
    const t = bool ? 'bool' : 'f32';
    if (this.invariant?.levels.has(n.type.level)) {
      const outer = this.invariant.outer.value(n);
      const name = this.vec4 ? this.bind(t, this.splat(t, outer)) : outer;
      this.cache.set(n.id, name);
      return name;
    }
    let code: string;
    if (this.materialized.has(n.id))
      code = this.load(this.slots.slot({ buffer: 'D', kind: 'value', node: n }), n.type.level, bool);
    else code = this.compute(n, bool);
    // literals are inlined, and pass-throughs (stop-gradient, broadcast) name their operand: no
    // `let` that only renames (shorter shaders compile faster)
    const passThrough = !this.materialized.has(n.id) && (n.op === 'sg' || n.op === 'broadcast');
    const name = n.op === 'const' || passThrough ? code : this.bind(t, code);
    this.cache.set(n.id, name);
    return name;
  }

  /**
   * Emits the elementwise operands under `n` before `n`, with a loop in the order `compute` would
   * visit them (so the shader is the same), which leaves `compute` one level to recurse: a chain of
   * thousands of `let`s or terms in one kernel never nests thousands of calls.
   */
  private emitOperandsFirst(root: Node): void {
    const pending = (x: Node) =>
      !this.cache.has(x.id) &&
      !this.materialized.has(x.id) &&
      !this.invariant?.levels.has(x.type.level) &&
      OPERANDS_IN_ORDER[x.op] !== undefined;
    if (!pending(root)) return;
    const stack: { node: Node; order: readonly number[]; next: number }[] = [
      { node: root, order: OPERANDS_IN_ORDER[root.op]!, next: 0 },
    ];
    const seen = new Set<number>([root.id]);
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (top.next < top.order.length) {
        const src = top.node.src[top.order[top.next++]]!;
        if (seen.has(src.id) || !pending(src)) continue;
        seen.add(src.id);
        stack.push({ node: src, order: OPERANDS_IN_ORDER[src.op]!, next: 0 });
      } else {
        stack.pop();
        if (top.node !== root) this.value(top.node);
      }
    }
  }

  private rowsScope(): NonNullable<Scope['rows']> {
    return this.rows ?? fail('a value over the vocabulary outside a row kernel');
  }

  /** Source i of an arithmetic node; constants are opaque when every source is one (see opaqueF32Literal). */
  private operand(n: Node, i: number): string {
    const src = n.src[i]!;
    if (src.op === 'const' && src.type.dtype !== 'bool' && n.src.every((s) => s.op === 'const'))
      return this.splat('f32', opaqueF32Literal((src.args as { value: number }).value));
    return this.value(src);
  }

  private compute(n: Node, bool: boolean): string {
    const a = n.args as Record<string, unknown>;
    switch (n.op) {
      case 'input':
        if (n.type.level === 'vocab') {
          const entry = this.rowsScope().input(a.name as string);
          return bool ? `(${entry} != 0.0)` : entry;
        }
        return this.load(this.slots.slot({ buffer: 'D', kind: 'input', name: a.name as string }), n.type.level, bool);
      case 'mask':
        return `(${this.tokenElement('I', this.slots.slot({ buffer: 'I', kind: 'mask' }), this.indexAt('token'))} != ${this.splat('u32', '0u')})`;
      case 'param':
        return this.splat('f32', `D[${this.slots.scalarIndex.get(`param:${a.name}`)}u]`);
      case 'clock':
        return this.splat('f32', `D[${this.slots.scalarIndex.get(`clock:${a.which}`)}u]`);
      case 'size': {
        const which = a.which as string;
        if (which === 'vocab_index') return `${this.vec4 ? 'vec4f' : 'f32'}(${this.indexAt('vocab')})`;
        if (which === 'position' || which === 'length' || which === 'group_size') {
          return this.load(this.slots.slot({ buffer: 'D', kind: 'size', which }), n.type.level, false);
        }
        return this.splat('f32', `D[${this.slots.scalarIndex.get(`size:${which}`)}u]`);
      }
      case 'const':
        return this.splat(bool ? 'bool' : 'f32', bool ? (a.value ? 'true' : 'false') : f32Literal(a.value as number));
      case 'unary':
        return (this.vec4 ? UNARY4 : UNARY)[a.fn as UnaryOp](this.operand(n, 0));
      case 'binary':
        return (this.vec4 ? BINARY4 : BINARY)[a.fn as BinaryOp](this.operand(n, 0), this.operand(n, 1));
      case 'cast': {
        const x = this.value(n.src[0]);
        if (n.src[0].type.dtype === 'bool')
          return `select(${this.splat('f32', '0.0')}, ${this.splat('f32', '1.0')}, ${x})`;
        return a.to === 'i32' ? `trunc(${x})` : x;
      }
      case 'where':
        return `select(${this.value(n.src[2])}, ${this.value(n.src[1])}, ${this.value(n.src[0])})`;
      case 'clip':
        return `min(max(${this.value(n.src[0])}, ${this.value(n.src[1])}), ${this.value(n.src[2])})`;
      case 'sg':
        return this.value(n.src[0]);
      case 'broadcast':
        if (levelRank(n.src[0].type.level) < levelRank(n.type.level)) fail('broadcast to a coarser level');
        return this.value(n.src[0]);
      case 'reduce': {
        // a count (countedSize, plan/kernel-plan.ts): the summed batch constant times a size the host filled in
        const size = countedSize(n);
        if (!size) return fail('reduce must be materialized before an elementwise kernel reads it');
        const count =
          size === 'length' || size === 'group_size'
            ? this.load(this.slots.slot({ buffer: 'D', kind: 'size', which: size }), n.type.level, false)
            : this.splat('f32', `D[${this.slots.scalarIndex.get(`size:${size}`)}u]`);
        // the batch scalar itself (a broadcast of it may be materialized, as a gradient say)
        let c = n.src[0];
        while (c.op === 'broadcast') c = c.src[0];
        return `(${this.value(c)} * ${count})`;
      }
      // every other boundary op is materialized by its kernel (or host step); no default, so a new
      // op fails `tsc` here until it says how (or whether) an elementwise kernel computes it
      case 'scan':
      case 'cumprod':
      case 'shift':
      case 'keyed_reduce':
      case 'quantile':
      case 'quantile_weight':
      case 'rank':
      case 'sum_before':
      case 'prefix_id':
        return fail(`${n.op} must be materialized before an elementwise kernel reads it`);
    }
  }
}

function fail(message: string): never {
  throw new InternalError('codegen-wgsl', message);
}

/**
 * The float64 reference interpreter: the living definition of Credo's semantics. Every other
 * backend is tested against it. Values are Float64Arrays, one entry per element of the node's
 * level (bools as 0/1). It evaluates nodes in topological order, each op by one rule in `RULES`.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import type { Level } from '../../core/types/types.js';
import { InternalError } from '../../core/diagnostics/diagnostic.js';
import { topoSort, type Node } from '../../core/ir/node.js';
import {
  REDUCERS,
  emptyValue,
  type Op,
  type OpArgs,
  type QuantileMethod,
  type UnaryOp,
  type BinaryOp,
} from '../../core/ir/op.js';
import { outputNodes, type Program } from '../../core/ir/program.js';
import { Segments } from '../../core/batch/segments.js';

export interface EvalOptions {
  readonly params?: Readonly<Record<string, number>>;
  readonly step?: number;
  readonly totalSteps?: number;
}

export interface EvalResult {
  readonly loss: number;
  readonly metrics: Record<string, number>;
  readonly exports: Record<string, { level: string; data: Float64Array }>;
  readonly grads: Record<string, { level: Exclude<Level, 'batch'>; data: Float64Array }>;
}

interface Ctx {
  readonly seg: Segments;
  readonly batch: RaggedBatch;
  readonly params: Readonly<Record<string, number>>;
  readonly step: number;
  readonly totalSteps: number;
  readonly value: (n: Node) => Float64Array;
}

type Rule<K extends Op> = (n: Node<K> & { args: OpArgs[K] }, ctx: Ctx, out: Float64Array) => void;

export function evaluate(program: Program, batch: RaggedBatch, opts: EvalOptions = {}): EvalResult {
  const params: Record<string, number> = {};
  for (const p of program.params) params[p.name] = opts.params?.[p.name] ?? p.default;
  const values = evaluateNodes(outputNodes(program), batch, { ...opts, params });
  const scalar = (n: Node) => values.get(n.id)![0];
  const perLevel = <L extends string>(n: Node, level: L) => ({ level, data: values.get(n.id)! });
  return {
    loss: scalar(program.loss),
    metrics: Object.fromEntries([...program.metrics].map(([k, n]) => [k, scalar(n)])),
    exports: Object.fromEntries([...program.exports].map(([k, n]) => [k, perLevel(n, n.type.level)])),
    grads: Object.fromEntries(
      [...program.grads].map(([k, n]) => [k, perLevel(n, program.inputs.find((i) => i.name === k)!.level)]),
    ),
  };
}

/** Values of the given nodes, keyed by node id (an ancestor is dropped once its last consumer ran). */
export function evaluateNodes(
  roots: readonly Node[],
  batch: RaggedBatch,
  opts: EvalOptions,
): Map<number, Float64Array> {
  const seg = new Segments(batch);
  const values = new Map<number, Float64Array>();
  const ctx: Ctx = {
    seg,
    batch,
    params: opts.params ?? {},
    step: opts.step ?? 0,
    totalSteps: opts.totalSteps ?? 0,
    value: (n) => values.get(n.id) ?? fail(`value of %${n.id} needed before it was computed`),
  };
  const order = topoSort(roots);
  // a value is dropped after its last consumer ran (roots are kept): over the vocabulary axis each
  // value is T × V numbers, and a program's whole graph of them would not fit in memory
  const lastUse = new Map<number, number>();
  order.forEach((n, i) => n.src.forEach((s) => lastUse.set(s.id, i)));
  const keep = new Set(roots.map((r) => r.id));
  order.forEach((n, i) => {
    const out = new Float64Array(seg.size(n.type.level));
    (RULES[n.op] as Rule<Op>)(n, ctx, out);
    values.set(n.id, out);
    for (const s of n.src) if (lastUse.get(s.id) === i && !keep.has(s.id)) values.delete(s.id);
  });
  return values;
}

/**
 * One op applied to given source values (the runtime's host steps use this for ops that have no
 * GPU kernel yet, so they share the reference semantics exactly).
 */
export function evaluateOp(
  n: Node,
  sources: readonly Float64Array[],
  batch: RaggedBatch,
  seg: Segments = new Segments(batch),
): Float64Array {
  const byId = new Map(n.src.map((s, i) => [s.id, sources[i]] as const));
  const ctx: Ctx = {
    seg,
    batch,
    params: {},
    step: 0,
    totalSteps: 0,
    value: (m) => byId.get(m.id) ?? fail(`host step for ${n.op} is missing source %${m.id}`),
  };
  const out = new Float64Array(seg.size(n.type.level));
  (RULES[n.op] as Rule<Op>)(n, ctx, out);
  return out;
}

function fail(message: string): never {
  throw new InternalError('interpreter', message);
}

function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** The nearest integer, ties to the even one (torch.round, WGSL's round); Math.round takes ties up. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Scalar semantics of the unary ops (also used to fold constants in equivalence proofs). */
export const UNARY: { [K in UnaryOp]: (x: number) => number } = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  log1p: Math.log1p,
  expm1: Math.expm1,
  sqrt: Math.sqrt,
  abs: Math.abs,
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0),
  sigmoid,
  logsigmoid: (x) => -softplus(-x),
  softplus,
  relu: (x) => (x > 0 ? x : 0),
  tanh: Math.tanh,
  floor: Math.floor,
  ceil: Math.ceil,
  round: roundHalfEven,
  cos: Math.cos,
  sin: Math.sin,
  not: (x) => (x ? 0 : 1),
};

/** Scalar semantics of the binary ops. */
export const BINARY: { [K in BinaryOp]: (a: number, b: number) => number } = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: Math.pow,
  min: Math.min,
  max: Math.max,
  lt: (a, b) => +(a < b),
  le: (a, b) => +(a <= b),
  gt: (a, b) => +(a > b),
  ge: (a, b) => +(a >= b),
  eq: (a, b) => +(a === b),
  ne: (a, b) => +(a !== b),
  and: (a, b) => +(a !== 0 && b !== 0),
  or: (a, b) => +(a !== 0 || b !== 0),
};

function map(out: Float64Array, f: (i: number) => number): void {
  for (let i = 0; i < out.length; i++) out[i] = f(i);
}

/** Elements of each segment at level `to` that take part (valid and selected by `cond`). */
function members(ctx: Ctx, x: Node, cond: Node | undefined, to: Node['type']['level']): number[][] {
  const groups: number[][] = Array.from({ length: ctx.seg.size(to) }, () => []);
  const c = cond ? ctx.value(cond) : undefined;
  const from = x.type.level;
  for (let i = 0; i < ctx.seg.size(from); i++) {
    if (!ctx.seg.valid(from, i) || (c && !c[i])) continue;
    groups[ctx.seg.parent(from, to, i)].push(i);
  }
  return groups;
}

/** Sorted positions and weights that `quantile` interpolates between, for n sorted elements. */
function quantilePick(n: number, q: number, method: QuantileMethod): [number, number][] {
  const pos = Math.min(1, Math.max(0, q)) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const frac = pos - lo;
  switch (method) {
    case 'lower':
      return [[lo, 1]];
    case 'higher':
      return [[hi, 1]];
    case 'nearest': {
      // round half to even, as torch.quantile(interpolation='nearest')
      const r = frac === 0.5 ? (lo % 2 === 0 ? lo : hi) : Math.round(pos);
      return [[r, 1]];
    }
    case 'midpoint':
      return lo === hi
        ? [[lo, 1]]
        : [
            [lo, 0.5],
            [hi, 0.5],
          ];
    case 'linear':
      return lo === hi
        ? [[lo, 1]]
        : [
            [lo, 1 - frac],
            [hi, frac],
          ];
  }
}

/** Walks the valid tokens of each sequence in order (or reverse), calling visit(t, valid). */
function eachToken(ctx: Ctx, reverse: boolean, startSeq: () => void, visit: (t: number, valid: boolean) => void): void {
  const { offsets, numSeqs, mask } = ctx.batch;
  for (let s = 0; s < numSeqs; s++) {
    startSeq();
    if (reverse) for (let t = offsets[s + 1] - 1; t >= offsets[s]; t--) visit(t, mask[t] === 1);
    else for (let t = offsets[s]; t < offsets[s + 1]; t++) visit(t, mask[t] === 1);
  }
}

const RULES: { [K in Op]: Rule<K> } = {
  input: (n, ctx, out) => {
    const t = ctx.batch.tensors.get(n.args.name) ?? fail(`input '${n.args.name}' missing from the batch`);
    out.set(t.data);
  },
  mask: (_n, ctx, out) => map(out, (i) => ctx.batch.mask[i]),
  param: (n, ctx, out) => {
    out[0] = ctx.params[n.args.name] ?? fail(`param '${n.args.name}' has no value`);
  },
  clock: (n, ctx, out) => {
    out[0] = n.args.which === 'step' ? ctx.step : ctx.totalSteps;
  },
  size: (n, ctx, out) => {
    const s = ctx.seg;
    switch (n.args.which) {
      case 'position':
        return out.set(s.position);
      case 'length':
        return out.set(s.length);
      case 'group_size':
        return out.set(s.groupSize);
      case 'num_seqs':
        out[0] = ctx.batch.numSeqs;
        return;
      case 'num_groups':
        out[0] = ctx.batch.numGroups;
        return;
      case 'num_tokens':
        out[0] = s.validTokens;
        return;
      case 'vocab_index': {
        const V = ctx.batch.vocabSize;
        map(out, (i) => i % V);
        return;
      }
      case 'vocab_size':
        out[0] = ctx.batch.vocabSize;
        return;
    }
  },
  const: (n, _ctx, out) => out.fill(n.args.value),
  unary: (n, ctx, out) => {
    const x = ctx.value(n.src[0]);
    const f = UNARY[n.args.fn];
    map(out, (i) => f(x[i]));
  },
  binary: (n, ctx, out) => {
    const [a, b] = n.src.map(ctx.value);
    const f = BINARY[n.args.fn];
    map(out, (i) => f(a[i], b[i]));
  },
  cast: (n, ctx, out) => {
    const x = ctx.value(n.src[0]);
    map(out, (i) => (n.args.to === 'i32' ? Math.trunc(x[i]) : n.args.to === 'bool' ? +(x[i] !== 0) : x[i]));
  },
  where: (n, ctx, out) => {
    const [c, a, b] = n.src.map(ctx.value);
    map(out, (i) => (c[i] ? a[i] : b[i]));
  },
  clip: (n, ctx, out) => {
    const [x, lo, hi] = n.src.map(ctx.value);
    map(out, (i) => Math.min(Math.max(x[i], lo[i]), hi[i]));
  },
  sg: (n, ctx, out) => out.set(ctx.value(n.src[0])),
  broadcast: (n, ctx, out) => {
    const x = ctx.value(n.src[0]);
    const from = n.src[0].type.level;
    map(out, (i) => x[ctx.seg.parent(n.type.level, from, i)]);
  },
  reduce: (n, ctx, out) => {
    const x = ctx.value(n.src[0]);
    const segs = members(ctx, n.src[0], n.src[1], n.type.level);
    const { identity, combine } = REDUCERS[n.args.fn];
    segs.forEach((m, s) => {
      if (m.length === 0) return void (out[s] = emptyValue(n.args.fn));
      let acc = identity ?? x[m[0]];
      for (let j = identity === null ? 1 : 0; j < m.length; j++) acc = combine(acc, x[m[j]]);
      out[s] = acc;
    });
  },
  keyed_reduce: (n, ctx, out) => {
    const [xn, kn, cond] = n.src;
    const [x, key] = [ctx.value(xn), ctx.value(kn)];
    const c = cond ? ctx.value(cond) : undefined;
    const from = xn.type.level;
    const bucketOf = (i: number) => `${ctx.seg.parent(from, n.args.to, i)}|${key[i]}`;
    const { combine } = REDUCERS[n.args.fn];
    const acc = new Map<string, number>();
    for (let i = 0; i < out.length; i++) {
      if (!ctx.seg.valid(from, i) || (c && !c[i])) continue;
      const k = bucketOf(i);
      const prev = acc.get(k);
      acc.set(k, prev === undefined ? x[i] : combine(prev, x[i]));
    }
    map(out, (i) => acc.get(bucketOf(i)) ?? emptyValue(n.args.fn)); // a bucket with no member
  },
  prefix_id: (n, ctx, out) => {
    const x = ctx.value(n.src[0]);
    // intern (parent prefix, value) pairs: exact, no hashing collisions
    const ids = new Map<string, number>();
    let prefix = -1;
    eachToken(
      ctx,
      false,
      () => (prefix = -1),
      (t, valid) => {
        if (valid) {
          const k = `${prefix}|${x[t]}`;
          let id = ids.get(k);
          if (id === undefined) ids.set(k, (id = ids.size));
          prefix = id;
        }
        out[t] = prefix;
      },
    );
  },
  scan: (n, ctx, out) => {
    const [x, c] = n.src.map(ctx.value);
    let acc = 0;
    eachToken(
      ctx,
      n.args.reverse,
      () => (acc = 0),
      (t, valid) => {
        if (valid) acc = x[t] + c[t] * acc;
        out[t] = acc;
      },
    );
  },
  cumprod: (n, ctx, out) => {
    const x = ctx.value(n.src[0]);
    let acc = 1;
    eachToken(
      ctx,
      n.args.reverse,
      () => (acc = 1),
      (t, valid) => {
        if (valid) acc *= x[t];
        out[t] = acc;
      },
    );
  },
  shift: (n, ctx, out) => {
    const x = ctx.value(n.src[0]);
    // next: walk backwards remembering the last valid value seen; prev: walk forwards.
    let held = n.args.fill;
    eachToken(
      ctx,
      n.args.dir === 'next',
      () => (held = n.args.fill),
      (t, valid) => {
        out[t] = held;
        if (valid) held = x[t];
      },
    );
  },
  quantile: (n, ctx, out) => {
    const [xn, qn, cond] = n.src;
    const x = ctx.value(xn);
    const q = ctx.value(qn)[0];
    members(ctx, xn, cond, n.type.level).forEach((m, s) => {
      if (m.length === 0) return void (out[s] = 0);
      const sorted = m.map((i) => x[i]).sort((a, b) => a - b);
      const picks = quantilePick(m.length, q, n.args.method);
      // a + w·(b − a) as torch does: exact when a = b, and never outside [a, b]
      out[s] =
        picks.length === 1
          ? sorted[picks[0][0]]
          : sorted[picks[0][0]] + picks[1][1] * (sorted[picks[1][0]] - sorted[picks[0][0]]);
    });
  },
  quantile_weight: (n, ctx, out) => {
    const [xn, qn, cond] = n.src;
    const x = ctx.value(xn);
    const q = ctx.value(qn)[0];
    members(ctx, xn, cond, n.args.to).forEach((m) => {
      if (m.length === 0) return;
      const order = [...m].sort((a, b) => x[a] - x[b] || a - b);
      for (const [k, w] of quantilePick(m.length, q, n.args.method)) out[order[k]] += w;
    });
  },
  rank: (n, ctx, out) => {
    const [xn, cond] = n.src;
    const x = ctx.value(xn);
    const segs = members(ctx, xn, cond, n.args.to);
    // elements outside every segment (masked or filtered out) have rank +inf, so no top-k selects them
    out.fill(Infinity);
    for (const m of segs) {
      const order = [...m].sort((a, b) => x[b] - x[a] || a - b);
      order.forEach((i, r) => (out[i] = r));
    }
  },
  sum_before: (n, ctx, out) => {
    const [xn, cond] = n.src;
    const x = ctx.value(xn);
    out.fill(Infinity); // outside every segment: never within a top-p mass
    for (const m of members(ctx, xn, cond, n.args.to)) {
      let acc = 0;
      for (const i of [...m].sort((a, b) => x[b] - x[a] || a - b)) {
        out[i] = acc;
        acc += x[i];
      }
    }
  },
};

/**
 * One vector-Jacobian product rule per op, following PyTorch's conventions: clip passes the
 * gradient on the closed interval [lo, hi]; binary min/max split it equally on ties; abs'(0) = 0;
 * `where` routes it to the taken branch; `sg` blocks it. A rule returns, for each source, its
 * adjoint contribution at the source's level, or null where no gradient flows.
 */
import type { IrBuilder } from '../../src/ir/build.js';
import type { Node } from '../../src/ir/node.js';
import type { Op, OpArgs, UnaryOp } from '../../src/ir/op.js';

export type VjpRule<K extends Op> = (b: IrBuilder, node: Node<K> & { args: OpArgs[K] }, g: Node) => (Node | null)[];

const leaf = () => [];
const none = (_b: IrBuilder, n: Node) => n.src.map(() => null);

const UNARY: { [K in UnaryOp]: ((b: IrBuilder, x: Node, y: Node, g: Node) => Node | null) } = {
  neg: (b, _x, _y, g) => b.unary('neg', g),
  exp: (b, _x, y, g) => b.mul(g, y),
  log: (b, x, _y, g) => b.div(g, x),
  log1p: (b, x, _y, g) => b.div(g, b.add(b.constant(1), x)),
  expm1: (b, _x, y, g) => b.mul(g, b.add(y, b.constant(1))),
  sqrt: (b, _x, y, g) => b.div(g, b.mul(b.constant(2), y)),
  abs: (b, x, _y, g) => b.mul(g, b.unary('sign', x)),
  sign: () => null,
  sigmoid: (b, _x, y, g) => b.mul(g, b.mul(y, b.sub(b.constant(1), y))),
  logsigmoid: (b, x, _y, g) => b.mul(g, b.unary('sigmoid', b.unary('neg', x))),
  softplus: (b, x, _y, g) => b.mul(g, b.unary('sigmoid', x)),
  relu: (b, x, _y, g) => b.where(b.binary('gt', x, b.constant(0)), g, b.constant(0)),
  tanh: (b, _x, y, g) => b.mul(g, b.sub(b.constant(1), b.mul(y, y))),
  floor: () => null,
  cos: (b, x, _y, g) => b.unary('neg', b.mul(g, b.unary('sin', x))),
  sin: (b, x, _y, g) => b.mul(g, b.unary('cos', x)),
  not: () => null,
};

/** Share of the gradient a side of min/max gets: 1 if it alone wins, ½ on a tie, else 0. */
function tieShare(b: IrBuilder, wins: 'lt' | 'gt', self: Node, other: Node): Node {
  const strict = b.where(b.binary(wins, self, other), b.constant(1), b.constant(0));
  return b.where(b.binary('eq', self, other), b.constant(0.5), strict);
}

export const VJP: { [K in Op]: VjpRule<K> } = {
  input: leaf,
  mask: leaf,
  param: leaf,
  clock: leaf,
  size: leaf,
  const: leaf,
  unary: (b, n, g) => [UNARY[n.args.fn](b, n.src[0], n, g)],
  binary: (b, n, g) => {
    const [x, y] = n.src;
    switch (n.args.fn) {
      case 'add': return [g, g];
      case 'sub': return [g, b.unary('neg', g)];
      case 'mul': return [b.mul(g, y), b.mul(g, x)];
      case 'div': return [b.div(g, y), b.unary('neg', b.div(b.mul(g, x), b.mul(y, y)))];
      case 'pow': {
        const dx = b.mul(g, b.mul(y, b.binary('pow', x, b.sub(y, b.constant(1)))));
        // d/dy x^y = x^y log x, defined as 0 where x ≤ 0 (PyTorch masks x == 0 the same way).
        const pos = b.binary('gt', x, b.constant(0));
        const dy = b.where(pos, b.mul(g, b.mul(n, b.unary('log', b.where(pos, x, b.constant(1))))), b.constant(0));
        return [dx, dy];
      }
      case 'min': return [b.mul(g, tieShare(b, 'lt', x, y)), b.mul(g, tieShare(b, 'lt', y, x))];
      case 'max': return [b.mul(g, tieShare(b, 'gt', x, y)), b.mul(g, tieShare(b, 'gt', y, x))];
      default: return [null, null];
    }
  },
  cast: none,
  where: (b, n, g) => [null, b.where(n.src[0], g, b.constant(0)), b.where(n.src[0], b.constant(0), g)],
  clip: (b, n, g) => {
    const [x, lo, hi] = n.src;
    const inside = b.binary('and', b.binary('ge', x, lo), b.binary('le', x, hi));
    return [
      b.where(inside, g, b.constant(0)),
      b.where(b.binary('lt', x, lo), g, b.constant(0)),
      b.where(b.binary('and', b.binary('gt', x, hi), b.binary('ge', x, lo)), g, b.constant(0)),
    ];
  },
  sg: none,
  broadcast: (b, n, g) => [b.reduce('sum', g, n.src[0].type.level)],
  reduce: (b, n, g) => {
    const [x, cond] = n.src;
    const gx = b.broadcast(g, x.type.level);
    const selected = (v: Node) => (cond ? b.where(cond, v, b.constant(0)) : v);
    if (n.args.fn === 'sum') return [selected(gx), null];
    // max/min: split evenly among the elements equal to the extreme value.
    const hit = b.binary('eq', x, b.broadcast(n, x.type.level));
    const ties = b.reduce('sum', b.where(hit, b.constant(1), b.constant(0)), n.type.level, cond);
    return [selected(b.where(hit, b.div(gx, b.broadcast(b.binary('max', ties, b.constant(1)), x.type.level)), b.constant(0))), null];
  },
  keyed_reduce: (b, n, g) => {
    const [x, key, cond] = n.src;
    const { to } = n.args;
    // every element of a bucket receives the bucket's value, so a member's adjoint sums the bucket's adjoints
    const spread = b.keyedReduce('sum', g, key, to);
    if (n.args.fn === 'sum') return [cond ? b.where(cond, spread, b.constant(0)) : spread, null, null];
    const hit = cond ? b.binary('and', cond, b.binary('eq', x, n)) : b.binary('eq', x, n);
    const ties = b.keyedReduce('sum', b.where(hit, b.constant(1), b.constant(0)), key, to, cond);
    return [b.where(hit, b.div(spread, b.binary('max', ties, b.constant(1))), b.constant(0)), null, null];
  },
  prefix_id: none,
  scan: (b, n, g) => {
    const [, c] = n.src;
    const rev = n.args.reverse;
    // y_t = x_t + c_t·y_{t∓1}  ⇒  a = scan in the other direction with c shifted by one.
    const a = b.scan(g, b.shift(c, rev ? 'prev' : 'next', 0), !rev);
    return [a, b.mul(a, b.shift(n, rev ? 'next' : 'prev', 0))];
  },
  cumprod: (b, n, g) => {
    const [x] = n.src;
    const rev = n.args.reverse;
    // x̄_s = (product of the others before s) · Σ_{t after s} ȳ_t Π_{s<u≤t} x_u — no division by x.
    const acc = b.scan(g, b.shift(x, rev ? 'prev' : 'next', 0), !rev);
    return [b.mul(b.shift(n, rev ? 'next' : 'prev', 1), acc)];
  },
  shift: (b, n, g) => [b.shift(g, n.args.dir === 'next' ? 'prev' : 'next', 0)],
  quantile: (b, n, g) => {
    const [x, q, cond] = n.src;
    const w = b.quantileWeight(x, q, n.type.level, n.args.method, cond);
    return [b.mul(b.broadcast(g, x.type.level), w), null, null];
  },
  quantile_weight: none,
  rank: none,
};

/**
 * One vector-Jacobian product rule per op, following PyTorch's conventions: clip passes the
 * gradient on the closed interval [lo, hi]; binary min/max split it equally on ties; abs'(0) = 0;
 * `where` routes it to the taken branch; `sg` blocks it. A rule returns, for each source, its
 * adjoint contribution at the source's level, or null where no gradient flows.
 */
import type { IrBuilder } from '../../core/ir/build.js';
import type { Node } from '../../core/ir/node.js';
import type { KeyedReduceFn, Op, OpArgs, ReduceFn, UnaryOp } from '../../core/ir/op.js';

export type VjpRule<K extends Op> = (b: IrBuilder, node: Node<K> & { args: OpArgs[K] }, g: Node) => (Node | null)[];

const leaf = () => [];
const none = (_b: IrBuilder, n: Node) => n.src.map(() => null);

const UNARY: { [K in UnaryOp]: (b: IrBuilder, x: Node, y: Node, g: Node) => Node | null } = {
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
  ceil: () => null,
  round: () => null,
  cos: (b, x, _y, g) => b.unary('neg', b.mul(g, b.unary('sin', x))),
  sin: (b, x, _y, g) => b.mul(g, b.unary('cos', x)),
  not: () => null,
};

/**
 * The adjoint of each member `x` of a reduction `n` (result y per segment) given the result's
 * adjoint `gx`, already broadcast to the members' level. The caller zeroes non-members.
 */
type ReduceVjp = (b: IrBuilder, n: Node, x: Node, gx: Node, cond: Node | undefined) => Node;

/** max/min: split evenly among the members equal to the extreme value. */
const extremeVjp: ReduceVjp = (b, n, x, gx, cond) => {
  const hit = b.binary('eq', x, b.broadcast(n, x.type.level));
  const ties = b.reduce('sum', b.where(hit, b.constant(1), b.constant(0)), n.type.level, cond);
  return b.where(hit, b.div(gx, b.broadcast(b.binary('max', ties, b.constant(1)), x.type.level)), b.constant(0));
};

const REDUCE_VJP: { readonly [K in ReduceFn]: ReduceVjp } = {
  sum: (_b, _n, _x, gx) => gx,
  // torch.prod's rule: ∂y/∂x_i is the product of the other members — y / x_i when no member is 0;
  // with exactly one zero member, the product of the others for it and 0 for the rest; with two
  // or more, 0 for all. Never a division by zero.
  prod: (b, n, x, gx, cond) => {
    const level = x.type.level;
    const zero = b.binary('eq', x, b.constant(0));
    const zeros = b.broadcast(b.reduce('sum', b.where(zero, b.constant(1), b.constant(0)), n.type.level, cond), level);
    const othersOfZero = b.broadcast(b.reduce('prod', b.where(zero, b.constant(1), x), n.type.level, cond), level);
    const noZero = b.div(b.broadcast(n, level), b.where(zero, b.constant(1), x));
    const oneZero = b.where(zero, othersOfZero, b.constant(0));
    const share = b.where(
      b.binary('eq', zeros, b.constant(0)),
      noZero,
      b.where(b.binary('eq', zeros, b.constant(1)), oneZero, b.constant(0)),
    );
    return b.mul(gx, share);
  },
  max: extremeVjp,
  min: extremeVjp,
};

/** Keyed reductions: every element of a bucket receives the bucket's value, so a member's adjoint sums the bucket's adjoints (`spread`). */
const KEYED_VJP: { readonly [K in KeyedReduceFn]: (b: IrBuilder, n: Node<'keyed_reduce'>, spread: Node) => Node } = {
  sum: (b, n, spread) => (n.src[2] ? b.where(n.src[2], spread, b.constant(0)) : spread),
  max: (b, n, spread) => keyedExtremeVjp(b, n, spread),
  min: (b, n, spread) => keyedExtremeVjp(b, n, spread),
};

function keyedExtremeVjp(b: IrBuilder, n: Node<'keyed_reduce'>, spread: Node): Node {
  const [x, key, cond] = n.src;
  const hit = cond ? b.binary('and', cond, b.binary('eq', x, n)) : b.binary('eq', x, n);
  const ties = b.keyedReduce('sum', b.where(hit, b.constant(1), b.constant(0)), key, n.args.to, cond);
  return b.where(hit, b.div(spread, b.binary('max', ties, b.constant(1))), b.constant(0));
}

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
      case 'add':
        return [g, g];
      case 'sub':
        return [g, b.unary('neg', g)];
      case 'mul':
        return [b.mul(g, y), b.mul(g, x)];
      case 'div':
        return [b.div(g, y), b.unary('neg', b.div(b.mul(g, x), b.mul(y, y)))];
      case 'pow': {
        const dx = b.mul(g, b.mul(y, b.binary('pow', x, b.sub(y, b.constant(1)))));
        // d/dy x^y = x^y log x, defined as 0 where x ≤ 0 (PyTorch masks x == 0 the same way).
        const pos = b.binary('gt', x, b.constant(0));
        const dy = b.where(pos, b.mul(g, b.mul(n, b.unary('log', b.where(pos, x, b.constant(1))))), b.constant(0));
        return [dx, dy];
      }
      case 'min':
        return [b.mul(g, tieShare(b, 'lt', x, y)), b.mul(g, tieShare(b, 'lt', y, x))];
      case 'max':
        return [b.mul(g, tieShare(b, 'gt', x, y)), b.mul(g, tieShare(b, 'gt', y, x))];
      default:
        return [null, null];
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
  broadcast: (b, n, g) => {
    // A coarser value broadcast to `token x vocab` (a seq value times a row, say) gets the sum of the
    // adjoints of the rows of the *valid* tokens only. Summed from vocab straight to the seq/group/
    // batch the row entries of masked tokens (whose adjoint is not zeroed) would count too; so sum
    // over each row first (every entry of every token, as a forward row reduction does), then over
    // the tokens, where the mask applies as in every token reduction. The IR never reduces the
    // vocabulary axis past a token (IrBuilder.reduce).
    const to = n.src[0].type.level;
    const rows = g.type.level === 'vocab' && to !== 'token' ? b.reduce('sum', g, 'token') : g;
    return [b.reduce('sum', rows, to)];
  },
  reduce: (b, n, g) => {
    const [x, cond] = n.src;
    const gx = b.broadcast(g, x.type.level);
    const share = REDUCE_VJP[n.args.fn](b, n, x, gx, cond);
    return [cond ? b.where(cond, share, b.constant(0)) : share, null];
  },
  keyed_reduce: (b, n, g) => [KEYED_VJP[n.args.fn](b, n, b.keyedReduce('sum', g, n.src[1], n.args.to)), null, null],
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
  sum_before: none,
};

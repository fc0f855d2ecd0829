/**
 * Where two normal forms first differ: walks both terms in parallel and returns the smallest pair
 * of subterms that still differ, with the source spans they came from.
 */
import { asMonomials, type Term } from './term.js';

export interface Difference {
  readonly a: Term;
  readonly b: Term;
  /** Why this pair is where the difference starts. */
  readonly reason: string;
}

export function firstDifference(a: Term, b: Term): Difference | undefined {
  if (a.key === b.key) return undefined;
  if (a.kind === 'app' && b.kind === 'app' && a.op === b.op && a.kids.length === b.kids.length) {
    for (let i = 0; i < a.kids.length; i++) {
      const d = firstDifference(a.kids[i], b.kids[i]);
      if (d) return d;
    }
  }
  if (a.kind !== 'app' || b.kind !== 'app') {
    const ma = asMonomials(a);
    const mb = asMonomials(b);
    const key = (m: { factors: readonly { term: Term; power: number }[] }) =>
      m.factors.map((f) => `${f.term.key}^${f.power}`).join('·');
    const onlyA = ma.filter((m) => !mb.some((n) => key(n) === key(m) && n.coef === m.coef));
    const onlyB = mb.filter((m) => !ma.some((n) => key(n) === key(m) && n.coef === m.coef));
    if (onlyA.length === 1 && onlyB.length === 1) {
      const [x, y] = [onlyA[0], onlyB[0]];
      if (key(x) === key(y)) return { a, b, reason: `the same term has coefficient ${x.coef} in A and ${y.coef} in B` };
      if (x.factors.length === y.factors.length) {
        for (let i = 0; i < x.factors.length; i++) {
          if (x.factors[i].term.key !== y.factors[i].term.key)
            return firstDifference(x.factors[i].term, y.factors[i].term) ?? { a, b, reason: 'different factors' };
        }
      }
    }
    if (onlyA.length + onlyB.length > 0 && (a.kind === 'poly' || b.kind === 'poly')) {
      return { a, b, reason: `${onlyA.length} term(s) only in A, ${onlyB.length} only in B` };
    }
  }
  return {
    a,
    b,
    reason:
      a.kind === 'app' && b.kind === 'app' && a.op !== b.op
        ? `\`${a.op}\` in A, \`${b.op}\` in B`
        : 'different expressions',
  };
}

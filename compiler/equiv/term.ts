/**
 * Normal-form terms for equivalence proofs. Arithmetic is kept as a polynomial — a sum of
 * monomials, each a coefficient times factors raised to integer powers — so that commutativity,
 * associativity, distribution of constants and cancellation are decided by comparing keys.
 * Everything else is an `app` of an operator to canonical children. Every term remembers the
 * source spans of the IR nodes it came from, for `credo equiv --explain`.
 */
import type { Span } from '../../core/source/source-file.js';
import type { Level } from '../../core/types/types.js';

export interface Factor {
  readonly term: Term;
  readonly power: number;
}

export interface Monomial {
  readonly coef: number;
  readonly factors: readonly Factor[];
}

export type Term =
  | {
      readonly kind: 'num';
      readonly value: number;
      readonly key: string;
      readonly level: Level;
      readonly spans: readonly Span[];
    }
  | {
      readonly kind: 'poly';
      readonly monomials: readonly Monomial[];
      readonly key: string;
      readonly level: Level;
      readonly spans: readonly Span[];
    }
  | {
      readonly kind: 'app';
      readonly op: string;
      readonly kids: readonly Term[];
      readonly key: string;
      readonly level: Level;
      readonly spans: readonly Span[];
    };

/** Coefficients are compared at 12 significant digits, so 0.1 + 0.2 and 0.3 agree. */
export function coefKey(c: number): string {
  return Object.is(c, -0) ? '0' : Number(c.toPrecision(12)).toString();
}

export function num(value: number, level: Level = 'batch', spans: readonly Span[] = []): Term {
  return { kind: 'num', value, key: coefKey(value), level, spans };
}

export function app(op: string, kids: readonly Term[], level: Level, spans: readonly Span[]): Term {
  return { kind: 'app', op, kids, level, spans, key: compactKey(`${op}(${kids.map((k) => k.key).join(', ')})`) };
}

/**
 * Keys longer than this are replaced by a short id, the same for the same structure (one table for
 * the process): a key spells out its subterms, so a term that uses a shared subterm many times
 * (x in eˣ − 1 written as a polynomial) would otherwise have a key exponential in its depth.
 */
const KEY_LIMIT = 200;
const interned = new Map<string, string>();

function compactKey(key: string): string {
  if (key.length <= KEY_LIMIT) return key;
  let id = interned.get(key);
  if (id === undefined) {
    id = `#${interned.size}`;
    interned.set(key, id);
  }
  return id;
}

/** A term written out for people (`credo equiv --explain`), cut after about `budget` characters. */
export function showTerm(t: Term, budget = 4000): string {
  let left = budget;
  const go = (u: Term): string => {
    if (left <= 0) return '…';
    let out: string;
    if (u.kind === 'num') out = u.key;
    else if (u.kind === 'app') {
      left -= u.op.length + 2;
      out = `${u.op}(${u.kids.map(go).join(', ')})`;
    } else {
      out = u.monomials
        .map((m) => {
          const fs = m.factors.map((f) => {
            const x = f.term.kind === 'poly' ? `(${go(f.term)})` : go(f.term);
            return f.power === 1 ? x : `${x}^${f.power}`;
          });
          const c = coefKey(m.coef);
          return fs.length === 0 ? c : c === '1' ? fs.join('·') : `${c}·${fs.join('·')}`;
        })
        .join(' + ');
    }
    if (u.kind === 'num') left -= out.length;
    return out;
  };
  return go(t);
}

function monomialKey(m: Monomial): string {
  return m.factors.map((f) => (f.power === 1 ? wrap(f.term) : `${wrap(f.term)}^${f.power}`)).join('·');
}

function wrap(t: Term): string {
  return t.kind === 'poly' ? `(${t.key})` : t.key;
}

/** Builds a polynomial term in normal form (merged like monomials, sorted, zero terms dropped). */
export function poly(monomials: readonly Monomial[], level: Level, spans: readonly Span[]): Term {
  const merged = new Map<string, Monomial>();
  for (const m of monomials) {
    const factors = normaliseFactors(m.factors);
    const k = monomialKey({ coef: 1, factors });
    const prev = merged.get(k);
    merged.set(k, { coef: (prev?.coef ?? 0) + m.coef, factors });
  }
  const kept = [...merged.entries()]
    .filter(([, m]) => coefKey(m.coef) !== '0')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (kept.length === 0) return num(0, level, spans);
  if (kept.length === 1 && kept[0][1].factors.length === 0) return num(kept[0][1].coef, level, spans);
  // a lone factor with coefficient 1 and power 1 is that factor itself
  if (
    kept.length === 1 &&
    coefKey(kept[0][1].coef) === '1' &&
    kept[0][1].factors.length === 1 &&
    kept[0][1].factors[0].power === 1
  ) {
    const t = kept[0][1].factors[0].term;
    return { ...t, spans: [...t.spans, ...spans] };
  }
  const ms = kept.map(([, m]) => m);
  const key = compactKey(
    kept
      .map(([k, m]) => (k === '' ? coefKey(m.coef) : coefKey(m.coef) === '1' ? k : `${coefKey(m.coef)}·${k}`))
      .join(' + '),
  );
  return { kind: 'poly', monomials: ms, key, level, spans };
}

function normaliseFactors(factors: readonly Factor[]): Factor[] {
  const byKey = new Map<string, Factor>();
  for (const f of factors) {
    const prev = byKey.get(f.term.key);
    byKey.set(f.term.key, { term: f.term, power: (prev?.power ?? 0) + f.power });
  }
  return [...byKey.values()]
    .filter((f) => f.power !== 0)
    .sort((a, b) => (a.term.key < b.term.key ? -1 : a.term.key > b.term.key ? 1 : 0));
}

/** A term as a polynomial (atoms become one monomial). */
export function asMonomials(t: Term): Monomial[] {
  if (t.kind === 'num') return [{ coef: t.value, factors: [] }];
  if (t.kind === 'poly') return [...t.monomials];
  return [{ coef: 1, factors: [{ term: t, power: 1 }] }];
}

/** The positive constant k with a = k·b, if the two terms differ only by such a factor. */
export function scaleBetween(a: Term, b: Term): number | undefined {
  if (a.key === b.key) return 1;
  const ma = asMonomials(a);
  const mb = asMonomials(b);
  if (ma.length !== mb.length) return undefined;
  const key = (m: Monomial) => monomialKey(m);
  const sa = [...ma].sort((x, y) => (key(x) < key(y) ? -1 : 1));
  const sb = [...mb].sort((x, y) => (key(x) < key(y) ? -1 : 1));
  let k: number | undefined;
  for (let i = 0; i < sa.length; i++) {
    if (key(sa[i]) !== key(sb[i]) || sb[i].coef === 0) return undefined;
    const r = sa[i].coef / sb[i].coef;
    if (k === undefined) k = r;
    else if (coefKey(k) !== coefKey(r)) return undefined;
  }
  return k !== undefined && k > 0 ? k : undefined;
}

/**
 * Scalar min / max / clip returning the value together with its hand-written local partial
 * derivatives, using the tie conventions of the references:
 *   - min(a,b) / max(a,b) with a == b split the gradient equally (1/2 each), as PyTorch does;
 *   - clip(x, lo, hi) passes the gradient when lo <= x <= hi (closed interval), else 0.
 *
 * Each call also records which branch it took when a branch trace is active
 * (withBranchTrace). The finite-difference tests use the trace to find kinks: if the branch
 * pattern changes inside [x - 10h, x + 10h], the component is not compared.
 */

let active: number[] | null = null;

function record(outcome: number): void {
  if (active !== null) active.push(outcome);
}

/** Runs fn while recording the outcome of every minG/maxG/clipG call it makes. */
export function withBranchTrace<T>(fn: () => T): { value: T; branches: number[] } {
  const prev = active;
  const rec: number[] = [];
  active = rec;
  try {
    const value = fn();
    return { value, branches: rec };
  } finally {
    active = prev;
  }
}

/** min(a, b) with d/da and d/db. */
export function minG(a: number, b: number): { v: number; da: number; db: number } {
  if (a < b) {
    record(-1);
    return { v: a, da: 1, db: 0 };
  }
  if (a > b) {
    record(1);
    return { v: b, da: 0, db: 1 };
  }
  record(0);
  return { v: a, da: 0.5, db: 0.5 };
}

/** max(a, b) with d/da and d/db. */
export function maxG(a: number, b: number): { v: number; da: number; db: number } {
  if (a > b) {
    record(1);
    return { v: a, da: 1, db: 0 };
  }
  if (a < b) {
    record(-1);
    return { v: b, da: 0, db: 1 };
  }
  record(0);
  return { v: a, da: 0.5, db: 0.5 };
}

/** clip(x, lo, hi) with d/dx (1 on the closed interval [lo, hi], else 0). */
export function clipG(x: number, lo: number, hi: number): { v: number; dx: number } {
  if (x < lo) {
    record(-2);
    return { v: lo, dx: 0 };
  }
  if (x > hi) {
    record(2);
    return { v: hi, dx: 0 };
  }
  record(x === lo ? -1 : x === hi ? 1 : 0);
  return { v: x, dx: 1 };
}

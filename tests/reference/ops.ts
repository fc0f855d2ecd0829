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

/**
 * One token's dual-clip PPO term (verl): r = exp(clip(logp - old_logp, -20, 20)), l1 = -a r,
 * l2 = -a clip(r, 1 - eps_low, 1 + eps_high), lclip = max(l1, l2), l = a < 0 ? min(lclip, -a clip_c)
 * : lclip; with dl/dlogp (dr = r [|d| ≤ 20]; max- and min-weights from maxG / minG, l3 constant).
 * `clipped`: l2 > l1; `dualClipped`: a < 0 and -a clip_c < lclip.
 */
export function dualClipToken(
  a: number,
  logp: number,
  oldLogp: number,
  p: { readonly eps_low: number; readonly eps_high: number; readonly clip_c: number },
): { l: number; dl: number; clipped: boolean; dualClipped: boolean } {
  const d = clipG(logp - oldLogp, -20, 20);
  const r = Math.exp(d.v);
  const dr = r * d.dx;
  const rc = clipG(r, 1 - p.eps_low, 1 + p.eps_high);
  const l1 = -a * r;
  const l2 = -a * rc.v;
  const mx = maxG(l1, l2);
  const dlclip = mx.da * (-a * dr) + mx.db * (-a * rc.dx * dr);
  const l3 = -a * p.clip_c;
  let l = mx.v;
  let dl = dlclip;
  if (a < 0) {
    const mn = minG(mx.v, l3);
    l = mn.v;
    dl = mn.da * dlclip;
  }
  return { l, dl, clipped: l2 > l1, dualClipped: a < 0 && l3 < mx.v };
}

/**
 * One token's GRPO term with the k3 KL penalty (the per-token loss of tests/reference/grpo.ts):
 * r = exp(clip(logp - old_logp, -20, 20)), surrogate min(r a, clip(r, 1 - eps_low, 1 + eps_high) a),
 * kl = clip(e^k - k - 1, -10, 10) with k = clip(ref_logp - logp, -20, 20); l = -(surrogate - beta kl),
 * with dl/dlogp. `clipped`: the clip binds in the direction of a (verl's clip fraction).
 */
export function grpoKlToken(
  a: number,
  logp: number,
  oldLogp: number,
  refLogp: number,
  p: { readonly eps_low: number; readonly eps_high: number; readonly beta: number },
): { l: number; dl: number; kl: number; clipped: boolean } {
  const d = clipG(logp - oldLogp, -20, 20);
  const r = Math.exp(d.v);
  const dr = r * d.dx;
  const rc = clipG(r, 1 - p.eps_low, 1 + p.eps_high);
  const m = minG(r * a, rc.v * a);
  const dsurr = m.da * a * dr + m.db * a * rc.dx * dr;
  const k = clipG(refLogp - logp, -20, 20);
  const klc = clipG(Math.exp(k.v) - k.v - 1, -10, 10);
  const dkl = klc.dx * (Math.exp(k.v) - 1) * -k.dx;
  return {
    l: -(m.v - p.beta * klc.v),
    dl: -(dsurr - p.beta * dkl),
    kl: klc.v,
    clipped: (a > 0 && r > 1 + p.eps_high) || (a < 0 && r < 1 - p.eps_low),
  };
}

/**
 * Central finite-difference check of a reference's analytic grad_logp against its own loss.
 *
 * For each token j: fd = (loss(logp + h e_j) - loss(logp - h e_j)) / (2h) and the check is
 *   |analytic_j - fd| <= atol + rtol * |fd|      (defaults h = 1e-6, atol = 1e-6, rtol = 1e-5).
 * Kinks: the references route every min / max / clip through ops.ts, which records the branch
 * taken. Component j is skipped when the branch pattern differs between any of logp_j + k*h,
 * k in {-kinkSteps, -1, 0, 1, kinkSteps} (i.e. a kink lies within kinkSteps*h, default 10h).
 */
import type { RefBatch, RefResult } from './batch.js';
import { withBranchTrace } from './ops.js';

export interface FdOptions {
  h?: number;
  atol?: number;
  rtol?: number;
  kinkSteps?: number;
}

export interface FdReport {
  checked: number;
  skipped: number;
  failures: { index: number; analytic: number; fd: number }[];
}

export function checkGradFD(fn: (b: RefBatch) => RefResult, b: RefBatch, opts: FdOptions = {}): FdReport {
  const h = opts.h ?? 1e-6;
  const atol = opts.atol ?? 1e-6;
  const rtol = opts.rtol ?? 1e-5;
  const kink = opts.kinkSteps ?? 10;
  const base = withBranchTrace(() => fn(b));
  const grad = base.value.grad_logp;
  const sig0 = base.branches.join(',');
  const report: FdReport = { checked: 0, skipped: 0, failures: [] };

  const at = (j: number, x: number) => {
    const logp = b.logp.slice();
    logp[j] = x;
    return withBranchTrace(() => fn({ ...b, logp }));
  };

  for (let j = 0; j < b.logp.length; j++) {
    const x = b.logp[j]!;
    const xp = x + h;
    const xm = x - h;
    const plus = at(j, xp);
    const minus = at(j, xm);
    const farPlus = at(j, x + kink * h);
    const farMinus = at(j, x - kink * h);
    const sigs = [plus, minus, farPlus, farMinus].map((r) => r.branches.join(','));
    if (sigs.some((s) => s !== sig0)) {
      report.skipped++;
      continue;
    }
    const fd = (plus.value.loss - minus.value.loss) / (xp - xm);
    const an = grad[j]!;
    report.checked++;
    if (!(Math.abs(an - fd) <= atol + rtol * Math.abs(fd))) {
      report.failures.push({ index: j, analytic: an, fd });
    }
  }
  return report;
}

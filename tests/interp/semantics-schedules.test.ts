/**
 * Schedules of the training clock: progress = clip(step / max(total_steps, 1), 0, 1);
 * linear(a, b) = a + (b − a)·progress; cosine(a, b) = b + (a − b)·½(1 + cos(π·progress));
 * exp_decay(a, b) = a·(b / a)^progress; step_decay(a, γ, every) = a·γ^⌊step / every⌋ (raw step);
 * piecewise(s0, v0, s1, v1, …) linear between knots of the raw step, constant outside.
 */
import { describe, it } from 'vitest';
import { batch, expectClose, run } from './helpers.js';

const B = batch({ seqs: [{ logp: [1] }] });
const BODY = [
  'loss = mean(logp)',
  'metric st  = step',
  'metric tot = total_steps',
  'metric p   = progress()',
  'metric lin = linear(1, 0.1)',
  'metric cos = cosine(1, 0.1)',
  'metric ed  = exp_decay(1, 0.01)',
  'metric sd  = step_decay(1, 0.5, 10)',
  'metric pw  = piecewise(0, 1, 100, 0.5, 200, 0.1)',
].join('\n');

const c = Math.SQRT1_2; // cos(π/4)
// [step, totalSteps, progress, linear, cosine, exp_decay, step_decay, piecewise]
const CASES: [number, number, number, number, number, number, number, number][] = [
  // p 0: linear 1; cosine ½(1 + 1) → 1; exp_decay 0.01^0 = 1; step_decay 0.5^0 = 1; piecewise at knot 0 → 1
  [0, 100, 0, 1, 1, 1, 1, 1],
  // p 0.25: linear 1 − 0.9·0.25 = 0.775; cosine 0.1 + 0.9·½(1 + cos(π/4)); exp_decay 0.01^0.25 = √0.1;
  // step_decay 0.5^⌊2.5⌋ = 0.25; piecewise 1 + (0.5 − 1)·0.25 = 0.875
  [25, 100, 0.25, 0.775, 0.1 + 0.45 * (1 + c), Math.sqrt(0.1), 0.25, 0.875],
  // p 0.5: linear 0.55; cosine 0.1 + 0.45 = 0.55; exp_decay 0.1; step_decay 0.5^5; piecewise 0.75
  [50, 100, 0.5, 0.55, 0.55, 0.1, 1 / 32, 0.75],
  // p 1: end values; step_decay 0.5^10; piecewise at knot 100 → 0.5
  [100, 100, 1, 0.1, 0.1, 0.01, 2 ** -10, 0.5],
  // step > total_steps: progress clamps at 1; step_decay and piecewise use the raw step:
  // 0.5^15; piecewise 0.5 + (0.1 − 0.5)·0.5 = 0.3
  [150, 100, 1, 0.1, 0.1, 0.01, 2 ** -15, 0.3],
  // beyond the last knot: piecewise constant 0.1
  [250, 100, 1, 0.1, 0.1, 0.01, 2 ** -25, 0.1],
  // total_steps = 0: divides by max(0, 1) = 1 → step 0 gives progress 0
  [0, 0, 0, 1, 1, 1, 1, 1],
  // total_steps = 0, step 7: 7 / 1 clamped to 1; step_decay 0.5^⌊0.7⌋ = 1; piecewise 1 − 0.5·0.07 = 0.965
  [7, 0, 1, 0.1, 0.1, 0.01, 1, 0.965],
];

describe('schedules', () => {
  it.each(CASES)('step %d of %d', (step, totalSteps, p, lin, cos, ed, sd, pw) => {
    const m = run(BODY, B, { step, totalSteps }).metrics;
    expectClose(m.st, step, 0, 'step');
    expectClose(m.tot, totalSteps, 0, 'total_steps');
    expectClose(m.p, p, 1e-15, 'progress');
    expectClose(m.lin, lin, 1e-14, 'linear');
    expectClose(m.cos, cos, 1e-14, 'cosine');
    expectClose(m.ed, ed, 1e-14, 'exp_decay');
    expectClose(m.sd, sd, 1e-15, 'step_decay');
    expectClose(m.pw, pw, 1e-14, 'piecewise');
  });

  it('the clock defaults to step 0 of 0 total steps', () => {
    const m = run(BODY, B).metrics;
    expectClose(m.st, 0, 0);
    expectClose(m.p, 0, 0);
    expectClose(m.lin, 1, 1e-15);
    expectClose(m.pw, 1, 1e-15);
  });

  it('piecewise holds the first value before the first knot', () => {
    // knots (10, 1), (20, 0): step 5 → 1; step 15 → 0.5; step 30 → 0
    const body = ['loss = mean(logp)', 'metric pw = piecewise(10, 1, 20, 0)'].join('\n');
    expectClose(run(body, B, { step: 5, totalSteps: 100 }).metrics.pw, 1, 0);
    expectClose(run(body, B, { step: 15, totalSteps: 100 }).metrics.pw, 0.5, 1e-15);
    expectClose(run(body, B, { step: 30, totalSteps: 100 }).metrics.pw, 0, 0);
  });

  it('schedules with params as arguments', () => {
    // linear(lr0, lr1) at p = 0.5 with lr0 = 2, lr1 = 4 → 3
    const m = run(
      ['param lr0 = 2', 'param lr1 = 4', 'loss = mean(logp)', 'metric l = linear(lr0, lr1)'].join('\n'),
      B,
      { step: 5, totalSteps: 10 },
    ).metrics;
    expectClose(m.l, 3, 1e-15);
  });
});

/**
 * The planning pipeline: `planKernels` runs PLAN_PASSES in order and reports the state after each,
 * which prints; unfused, delayBatchReductions and the fusions change nothing.
 */
import { describe, expect, it } from 'vitest';
import { describePlanState, PLAN_PASSES, planKernels, printPlan, type PlanState } from '../../compiler/plan/plan.js';
import { compile } from '../../src/objective.js';

function trace(name: string, fuse: 'default' | 'none'): { names: string[]; states: PlanState[] } {
  const names: string[] = [];
  const states: PlanState[] = [];
  planKernels(compile(name).program, { fuse }, (n, s) => (names.push(n), states.push(s)));
  return { names, states };
}

describe('the planning passes', () => {
  it('run in PLAN_PASSES order, each reported once', () => {
    expect(trace('grpo', 'default').names).toEqual(PLAN_PASSES.map((p) => p.name));
    expect(PLAN_PASSES.map((p) => p.name)).toEqual([
      'materialize',
      'assignStages',
      'delayBatchReductions',
      'formKernels',
      'fuseGroupLocal',
      'fuseRows',
      'fuseAlongside',
      'fuseEpilogues',
    ]);
  });

  it('leave a printable state: materialized nodes, then stages, then the kernels printPlan prints', () => {
    const { states } = trace('grpo', 'default');
    const at = (name: string) => describePlanState(states[PLAN_PASSES.findIndex((p) => p.name === name)]);
    expect(at('materialize')).toMatch(/^grpo: \d+ materialized values\n  %\d+/);
    expect(at('assignStages')).toContain('  stage 1: ');
    const kernels = printPlan(planKernels(compile('grpo').program))
      .split('\n')
      .slice(1)
      .join('\n');
    expect(at('fuseEpilogues')).toContain(kernels);
  });

  it('unfused, leave the kernels formKernels made', () => {
    const { names, states } = trace('dapo', 'none');
    const formed = states[names.indexOf('formKernels')];
    expect(states[names.indexOf('delayBatchReductions')].stages).toBe(states[names.indexOf('assignStages')].stages);
    for (const s of states.slice(names.indexOf('formKernels') + 1)) expect(s).toBe(formed);
  });
});

/**
 * Kernel planning, without a device: the fused schedules of the main objectives stay within their
 * dispatch budgets, and every plan (stdlib and random programs, fused or not) is a valid schedule —
 * each kernel reads only values that earlier kernels (or its own earlier steps) produced.
 */
import { describe, expect, it } from 'vitest';
import { lowerToDevice } from '../../compiler/lower-to-device.js';
import {
  countedSize,
  kernelOutputs,
  materializedReads,
  overVocabulary,
  planKernels,
  printPlan,
  type Kernel,
  type KernelPlan,
} from '../../compiler/plan/plan.js';
import { topoSort, type Node } from '../../core/ir/node.js';
import { outputNodes } from '../../core/ir/program.js';
import { compileSource } from '../../src/compile.js';
import { compile } from '../../src/objective.js';
import { objectiveNames } from '../../src/stdlib.js';
import { randomProgram } from '../helpers/random-program.js';

/** Launches in one run on a batch of short sequences (64 tokens each) in one chunk, as the device program decides. */
function dispatches(plan: KernelPlan): number {
  const short = { vocab: 0, token: 6400, seq: 100, group: 25, batch: 1 };
  const { device } = lowerToDevice(plan.program, { workgroupSize: 64 });
  return device.steps.filter((s) => s.kind === 'launch' && (!s.runIf || s.runIf(short, 1))).length;
}

/** Throws unless every kernel reads only leaves and values produced before it (or by itself). */
function checkSchedule(plan: KernelPlan): void {
  const materialized = new Set(plan.materialized.map((n) => n.id));
  const ready = new Set<number>();
  const readsOf = (n: Node) => materializedReads(n, materialized);
  plan.kernels.forEach((k: Kernel, i) => {
    const own = new Set(kernelOutputs(k).map((n) => n.id));
    for (const n of kernelOutputs(k)) {
      for (const s of readsOf(n)) {
        if (!ready.has(s.id) && !own.has(s.id))
          throw new Error(`k${i} (${k.kind}) reads %${s.id} before it is produced\n${printPlan(plan)}`);
      }
    }
    for (const id of own) ready.add(id);
  });
  for (const n of plan.materialized)
    if (!ready.has(n.id)) throw new Error(`%${n.id} is materialized but no kernel produces it\n${printPlan(plan)}`);
  for (const r of outputNodes(plan.program))
    if (r.src.length && !ready.has(r.id)) throw new Error(`output %${r.id} is never produced`);
}

describe('fused plans', () => {
  it('dapo: loss + gradient in at most 3 dispatches', () => {
    const plan = planKernels(compile('dapo').program);
    expect(dispatches(plan), printPlan(plan)).toBeLessThanOrEqual(3);
  });

  it('ctpo (a scan) in at most 4 dispatches; gspo and grpo (seq-mean-token-mean) in at most 8', () => {
    for (const [name, budget] of [
      ['ctpo', 4],
      ['gspo', 8],
      ['grpo', 8],
    ] as const) {
      const plan = planKernels(compile(name).program);
      expect(dispatches(plan), printPlan(plan)).toBeLessThanOrEqual(budget);
    }
  });

  it('a count of valid tokens is a host size, not a reduction', () => {
    const plan = planKernels(compile('dapo').program);
    const counts = topoSort(outputNodes(plan.program)).filter((n) => countedSize(n) === 'num_tokens');
    expect(counts.length).toBeGreaterThan(0);
    for (const n of counts) expect(plan.materialized.some((m) => m.id === n.id)).toBe(false);
  });

  it('the GRPO advantage is one group-local kernel', () => {
    const plan = planKernels(compile('grpo').program);
    expect(plan.kernels.filter((k) => k.kind === 'group-local')).toHaveLength(1);
    expect(plan.kernels.some((k) => k.kind === 'map' && k.level !== 'token')).toBe(false);
  });

  it('dapo_logits: its vocabulary work is one row kernel — one pass over the logits, then the gradient pass', () => {
    const { plan } = lowerToDevice(compile('dapo_logits').program, { workgroupSize: 64 });
    checkSchedule(plan);
    const rows = plan.kernels.filter((k): k is Extract<Kernel, { kind: 'rows' }> => k.kind === 'rows');
    expect(rows).toHaveLength(1);
    const passes = rows[0].steps.filter((s) => s.kind === 'reduce');
    expect(passes).toHaveLength(1);
    // log-sum-exp's sum, and the entropy's sums over the softmax, ride with the maximum (online)
    expect(passes[0].kind === 'reduce' && passes[0].online?.length).toBeGreaterThanOrEqual(3);
    expect(rows[0].steps.filter((s) => s.kind === 'map' && s.level === 'vocab')).toHaveLength(1);
    expect(plan.kernels.filter((k) => k.kind !== 'rows' && overVocabulary(k))).toHaveLength(0);
    // nothing over the vocabulary has a buffer but the gradient w.r.t. the logits
    expect(plan.materialized.filter((n) => n.type.level === 'vocab')).toEqual([...plan.program.grads.values()]);
  });

  it('fusion off gives more kernels (one per op)', () => {
    const p = compile('dapo').program;
    expect(planKernels(p, { fuse: 'none' }).kernels.length).toBeGreaterThan(3 * planKernels(p).kernels.length);
  });
});

describe('every plan is a valid schedule', () => {
  it.each(objectiveNames())('stdlib %s (fused and unfused)', (name) => {
    const p = compile(name).program;
    checkSchedule(planKernels(p));
    checkSchedule(planKernels(p, { fuse: 'none' }));
  });

  it('200 random well-typed programs', () => {
    for (let seed = 0; seed < 200; seed++) {
      const { program } = compileSource(randomProgram(seed), `random-${seed}.credo`);
      checkSchedule(planKernels(program!));
    }
  });
});

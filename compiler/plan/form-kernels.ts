/**
 * Plan pass `formKernels`: the materialized nodes of each stage, grouped into kernels. A host op
 * is a host step and a scan, cumprod or shift a per-sequence kernel, each of its own. Reductions
 * between the same two levels share one kernel (up to MAX_FUSED_REDUCTIONS), so their inputs are
 * read and their elementwise prologues computed once. Every other materialized node (an output, a
 * broadcast value, a host step's source) is stored by one map kernel per level. Within a stage:
 * host and per-sequence kernels in node order, then the reductions, then the maps. Unfused, every
 * reduction gets a kernel of its own.
 */
import type { Node } from '../../core/ir/node.js';
import { OP_INFO } from '../../core/ir/op.js';
import type { Level } from '../../core/types/types.js';
import { isBoundary, runsOnHost, type Kernel } from './kernel-plan.js';
import type { PlanPass } from './plan-state.js';

/** Reductions sharing one kernel, at most (their partials live in workgroup memory). */
const MAX_FUSED_REDUCTIONS = 4;
/**
 * Reductions over a vocabulary row sharing one pass, at most: each more one is a register and two
 * workgroup arrays, each one fewer a pass over T × V logits (8 × 2 arrays of 256 f32 fill the
 * 16 KiB of workgroup memory every adapter has).
 */
const MAX_FUSED_ROW_REDUCTIONS = 8;

function append<K, V>(groups: Map<K, V[]>, key: K, value: V): void {
  const list = groups.get(key);
  if (list) list.push(value);
  else groups.set(key, [value]);
}

/** Plan pass: one stage after the other, its nodes grouped into kernels (see the header). */
export const formKernels: PlanPass = {
  name: 'formKernels',
  run(state) {
    const { fuse, order, stages } = state;
    const kernels: Kernel[] = [];
    const maxStage = Math.max(0, ...stages.values());
    for (let st = 1; st <= maxStage; st++) {
      const maps = new Map<Level, Node[]>();
      const reduces = new Map<string, Node<'reduce'>[]>();
      for (const n of order) {
        if (stages.get(n.id) !== st) continue;
        if (runsOnHost(n)) kernels.push({ kind: 'host', node: n, stage: st });
        else if (isBoundary(n, fuse) && n.op === 'reduce') {
          // a full kernel for these levels opens the next one (`token→batch#1`, …)
          const base = `${n.src[0].type.level}→${n.type.level}`;
          let key = base;
          const most = !fuse ? 1 : n.src[0].type.level === 'vocab' ? MAX_FUSED_ROW_REDUCTIONS : MAX_FUSED_REDUCTIONS;
          for (let i = 1; (reduces.get(key)?.length ?? 0) >= most; i++) key = `${base}#${i}`;
          append(reduces, key, n as Node<'reduce'>);
        } else if (OP_INFO[n.op].role === 'seqwise')
          kernels.push({ kind: 'seqwise', node: n as Node<'scan' | 'cumprod' | 'shift'>, stage: st });
        else append(maps, n.type.level, n);
      }
      for (const nodes of reduces.values())
        kernels.push({ kind: 'reduce', nodes, stage: st, alongside: [], epilogue: [], viaSegments: [] });
      for (const [level, outputs] of maps) kernels.push({ kind: 'map', level, outputs, stage: st });
    }
    return { ...state, kernels };
  },
};

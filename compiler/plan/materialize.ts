/**
 * Plan pass `materialize`: which nodes get a buffer section. Elementwise ops never do on their own:
 * they fuse into every kernel that consumes them (recomputed, CSE'd within the kernel). What does:
 *  - every boundary op (reduce, scan, cumprod, shift and the host ops), which one kernel computes —
 *    except a count, a batch constant times a size the host knows (`countedSize`);
 *  - the sources of host steps, which the host reads from buffers;
 *  - the program outputs (loss, metrics, exports, gradients);
 *  - broadcast values, at their own level: a value broadcast to a finer level is materialized
 *    where it varies, one value per seq or group, so every token does not recompute it (a
 *    sequence's advantage from its group's statistics, say). What is materialized is the last
 *    value with two or more varying operands: cheap one-operand ops on top of it (`-adv`,
 *    `adv < 0`, `adv * c`) are recomputed.
 * Unfused (`fuse: 'none'`), every op but leaves and broadcasts is materialized. Values over the
 * vocabulary (`token x vocab`) never are, fused or not, except the outputs among them (gradients
 * w.r.t. logits): the row kernels recompute them from the inputs (T × V values each).
 */
import type { Node } from '../../core/ir/node.js';
import { isBoundaryOp } from '../../core/ir/op.js';
import { outputNodes } from '../../core/ir/program.js';
import { isBoundary, runsOnHost, scalarValued } from './kernel-plan.js';
import type { PlanPass } from './plan-state.js';

const isLeaf = (n: Node) => n.src.length === 0;

/**
 * Where a value broadcast to a finer level is best materialized. Walks down through elementwise
 * ops with a single varying operand (the rest are batch scalars); null when the walk ends at a leaf
 * or an already materialized node (nothing to add).
 */
function broadcastSource(n: Node, materialized: ReadonlySet<number>): Node | null {
  for (;;) {
    if (isLeaf(n) || materialized.has(n.id) || isBoundaryOp(n.op) || scalarValued(n)) return null;
    const varying = n.src.filter((s) => !scalarValued(s));
    if (varying.length !== 1 || varying[0].type.level !== n.type.level) return n;
    n = varying[0];
  }
}

/** Plan pass: the nodes with a buffer section (see the header). */
export const materialize: PlanPass = {
  name: 'materialize',
  run(state) {
    const { order, fuse } = state;
    const materialized = new Set<number>();
    for (const n of order) {
      // values over the vocabulary are recomputed by every row pass that needs them, never stored
      // (T × V of them): only the outputs among them (gradients w.r.t. logits) are written
      if (n.type.level === 'vocab') continue;
      if (isBoundary(n, fuse)) materialized.add(n.id);
      if (runsOnHost(n)) for (const s of n.src) if (!isLeaf(s)) materialized.add(s.id);
      if (!fuse && !isLeaf(n) && n.op !== 'broadcast') materialized.add(n.id);
    }
    for (const r of outputNodes(state.program)) if (!isLeaf(r)) materialized.add(r.id);
    if (fuse) {
      // in order: a broadcast's source found here is already materialized for the broadcasts after it
      for (const n of order) {
        if (n.op !== 'broadcast') continue;
        const p = broadcastSource(n.src[0], materialized);
        if (p) materialized.add(p.id);
      }
    }
    return { ...state, materialized };
  },
};

/**
 * Plan pass `fuseAlongside`: work at the elements a reduction already walks rides along its pass
 * (one pass over memory, one dispatch saved). Fused plans only. Two steps, in this order, so that
 * maps find the merged pass:
 *  - through segments: a token→batch reduction at the same stage as a token→seq one is folded
 *    through the sequences in that pass (`viaSegments`), up to MAX_PASS_REDUCTIONS in all;
 *  - alongside: a map over the level a reduction walks, at the same stage, is stored in its pass
 *    (the gradient of a token-mean loss beside the loss sum). The pass is a batch reduction, or a
 *    token→seq reduction (packed tokens cover every token once); one ending at the batch first.
 */
import { reducesToBatch, type Kernel, type ReduceKernel } from './kernel-plan.js';
import type { PlanPass } from './plan-state.js';

/** Reductions in one pass over tokens, at most, counting those folded through segments (registers). */
const MAX_PASS_REDUCTIONS = 8;

/** Whether a reduce kernel walks every token exactly once: to the batch, or to seqs (packed tokens). */
const walksAllTokens = (k: ReduceKernel) =>
  k.nodes[0].src[0].type.level === 'token' && (k.nodes[0].type.level === 'batch' || k.nodes[0].type.level === 'seq');

/** Token→batch reduce kernels folded into a token→seq pass of the same stage, where one has room. */
function foldThroughSegments(kernels: readonly Kernel[]): Kernel[] {
  let ks = [...kernels];
  for (const r of kernels) {
    if (r.kind !== 'reduce' || r.nodes[0].type.level !== 'batch' || r.nodes[0].src[0].type.level !== 'token') continue;
    const q = ks.find(
      (k): k is ReduceKernel =>
        k.kind === 'reduce' &&
        k.stage === r.stage &&
        k.nodes[0].src[0].type.level === 'token' &&
        k.nodes[0].type.level === 'seq' &&
        k.nodes.length + k.viaSegments.length + r.nodes.length <= MAX_PASS_REDUCTIONS,
    );
    const current = ks.find((k) => k === r) as ReduceKernel | undefined;
    if (!q || !current) continue;
    ks = ks
      .filter((k) => k !== current)
      .map((k) =>
        k === q
          ? {
              ...q,
              viaSegments: [...q.viaSegments, ...current.nodes],
              alongside: [...q.alongside, ...current.alongside],
              epilogue: [...q.epilogue, ...current.epilogue],
            }
          : k,
      );
  }
  return ks;
}

/** Maps below the batch stored by a reduction pass over their level at the same stage, where there is one. */
function storeAlongside(kernels: readonly Kernel[]): Kernel[] {
  const ks = [...kernels];
  const merged = new Set<Kernel>();
  for (const m of ks) {
    if (m.kind !== 'map' || m.level === 'batch') continue;
    const fits = (r: Kernel): r is ReduceKernel =>
      r.kind === 'reduce' &&
      r.stage === m.stage &&
      r.nodes[0].src[0].type.level === m.level &&
      (r.nodes[0].type.level === 'batch' || walksAllTokens(r));
    const host: ReduceKernel | undefined = ks.filter(fits).find(reducesToBatch) ?? ks.find(fits);
    if (!host) continue;
    merged.add(m);
    ks[ks.indexOf(host)] = { ...host, alongside: [...host.alongside, ...m.outputs] };
  }
  return ks.filter((k) => !merged.has(k));
}

/** Plan pass: batch reductions folded through segments, then maps stored alongside (see the header). */
export const fuseAlongside: PlanPass = {
  name: 'fuseAlongside',
  run: (state) => (state.fuse ? { ...state, kernels: storeAlongside(foldThroughSegments(state.kernels)) } : state),
};

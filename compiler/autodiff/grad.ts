/**
 * Reverse-mode autodiff on the typed IR: walks the loss's ancestors in reverse topological order,
 * applies one VJP rule per op (vjp-rules.ts) and sums the contributions of several consumers.
 * Only nodes that depend on a `grad` input through differentiable edges are visited.
 * Gradients at masked-out tokens (and at every vocabulary entry of one) are 0 by definition: those
 * tokens never reach the loss.
 */
import { IrBuilder } from '../../core/ir/build.js';
import { topoSort, type Node } from '../../core/ir/node.js';
import type { Program } from '../../core/ir/program.js';
import { InternalError } from '../../core/diagnostics/diagnostic.js';
import { VJP, type VjpRule } from './vjp-rules.js';
import { OP_INFO, type Op } from '../../core/ir/op.js';

export function differentiate(program: Program): Program {
  const b = new IrBuilder(program.graph);
  const order = topoSort([program.loss]);
  const active = activeNodes(program, order);

  const adjoint = new Map<number, Node>();
  if (active.has(program.loss.id)) adjoint.set(program.loss.id, b.constant(1));
  for (let i = order.length - 1; i >= 0; i--) {
    const n = order[i];
    const g = adjoint.get(n.id);
    if (!g || n.op === 'input') continue;
    const contributions = (VJP[n.op] as VjpRule<Op>)(b, n, g);
    n.src.forEach((s, k) => {
      const c = contributions[k];
      if (!c || !active.has(s.id)) return;
      if (c.type.level !== s.type.level)
        throw new InternalError('autodiff', `VJP of ${n.op} gave ${c.type.level} for a ${s.type.level} source`);
      const prev = adjoint.get(s.id);
      adjoint.set(s.id, prev ? b.add(prev, c) : c);
    });
  }

  const grads = new Map<string, Node>();
  for (const input of program.inputs.filter((i) => i.grad)) {
    const node = order.find((n) => n.op === 'input' && (n.args as { name: string }).name === input.name);
    let g = (node && adjoint.get(node.id)) ?? b.broadcast(b.constant(0), input.level);
    if (input.level === 'token' || input.level === 'vocab')
      g = b.where(b.graph.node('mask', { dtype: 'bool', level: 'token' }, [], {}), g, b.constant(0));
    grads.set(input.name, g);
  }
  return { ...program, grads };
}

/** Ids of the loss's ancestors that depend on a `grad` input through differentiable edges. */
function activeNodes(program: Program, order: readonly Node[]): Set<number> {
  const wrt = new Set(program.inputs.filter((i) => i.grad).map((i) => i.name));
  const active = new Set<number>();
  for (const n of order) {
    if (n.type.dtype !== 'f32' || !OP_INFO[n.op].differentiable) continue;
    if (n.op === 'input' ? wrt.has((n.args as { name: string }).name) : n.src.some((s) => active.has(s.id)))
      active.add(n.id);
  }
  return active;
}

/** True when the loss does not depend on any `grad` input (a warning for the user). */
export function lossIgnoresGradInputs(program: Program): boolean {
  return !activeNodes(program, topoSort([program.loss])).has(program.loss.id);
}

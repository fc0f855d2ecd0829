/**
 * The human-readable schedule `credo plan` prints: one line per kernel with its stage, naming each
 * node `%i` (its index among the program's nodes, sources first) and the source line it comes from.
 */
import { topoSort, type Node } from '../../core/ir/node.js';
import { outputNodes, type Program } from '../../core/ir/program.js';
import type { Kernel, KernelPlan } from './kernel-plan.js';

/** How the plan names a node: `ref` is `%i`; `named` adds ` (file:line)` where the node has a span. */
export function nodeNames(program: Program): { ref: (n: Node) => string; named: (n: Node) => string } {
  const ids = new Map(topoSort(outputNodes(program)).map((n, i) => [n.id, i] as const));
  const ref = (n: Node) => `%${ids.get(n.id)}`;
  const where = (n: Node) => (n.span ? ` (${n.span.file.path}:${n.span.file.position(n.span.start).line})` : '');
  return { ref, named: (n) => `${ref(n)}${where(n)}` };
}

/** One line per kernel (`  k0 stage 1 …`, then its parts indented), in dispatch order. */
export function kernelLines(program: Program, kernels: readonly Kernel[]): string[] {
  const { named } = nodeNames(program);
  const list = (ns: readonly Node[]) => ns.map(named).join(', ');
  const reductions = (ns: readonly Node<'reduce'>[]) => ns.map((n) => `${n.args.fn} ${named(n)}`).join(', ');
  const describe = (k: Kernel): string[] => {
    switch (k.kind) {
      case 'map':
        return [`map over ${k.level}: ${list(k.outputs)}`];
      case 'reduce': {
        const lines = [`reduce ${k.nodes[0].src[0].type.level}→${k.nodes[0].type.level}: ${reductions(k.nodes)}`];
        if (k.viaSegments.length)
          lines.push(`  and to the batch through each ${k.nodes[0].type.level}: ${reductions(k.viaSegments)}`);
        if (k.alongside.length) lines.push(`  alongside, per ${k.nodes[0].src[0].type.level}: ${list(k.alongside)}`);
        if (k.epilogue.length) lines.push(`  then over batch: ${list(k.epilogue)}`);
        for (const o of k.online ?? [])
          lines.push(`  and, online in the same pass: sum of exp(x − max) ${named(o.sum)} with max ${named(o.max)}`);
        return lines;
      }
      case 'seqwise':
        return [`${k.node.op} per sequence: ${named(k.node)}`];
      case 'host':
        return [`host ${k.node.op}: ${named(k.node)}`];
      case 'group-local':
        return [
          `group-local (one thread per group), ${k.steps.length} steps:`,
          ...k.steps.flatMap(describe).map((l) => `  ${l}`),
        ];
      case 'rows':
        return [
          `rows (one workgroup per vocabulary row), ${k.steps.length} steps:`,
          ...k.steps.flatMap(describe).map((l) => `  ${l}`),
        ];
    }
  };
  return kernels.flatMap((k, i) => {
    const [head, ...rest] = describe(k);
    return [`  k${i} stage ${k.stage} ${head}`, ...rest.map((l) => `    ${l}`)];
  });
}

/** Human-readable plan (`credo plan`). */
export function printPlan(plan: KernelPlan): string {
  const head = `plan ${plan.program.name}: ${plan.kernels.length} kernels, ${plan.materialized.length} materialized values`;
  return [head, ...kernelLines(plan.program, plan.kernels)].join('\n') + '\n';
}

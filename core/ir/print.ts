/**
 * Text form of a typed IR program (`credo ir`). Nodes are numbered in topological order, so the
 * text is canonical: printing a parsed printout gives the same text (see parse.ts).
 *
 *   %3 = binary fn=sub %1 %2 : f32[token]    # dapo.credo:12:13
 */
import { showType } from '../types/types.js';
import { topoSort, type Node } from './node.js';
import { outputNodes, type Program } from './program.js';

export interface PrintOptions {
  /** Append `# file:line:col` of each node's origin. */
  readonly spans?: boolean;
  /** Print only the forward part (no `grad` lines). */
  readonly forwardOnly?: boolean;
}

export function printProgram(p: Program, opts: PrintOptions = {}): string {
  const lines: string[] = [`program ${p.name}`];
  for (const prm of p.params) lines.push(`param ${prm.name} = ${formatNumber(prm.default)}`);
  for (const i of p.inputs) lines.push(`input ${i.name} : ${i.dtype}[${i.level}]${i.grad ? ' grad' : ''}`);
  if (p.maskName) lines.push(`mask ${p.maskName}`);
  const roots = opts.forwardOnly ? outputNodes({ ...p, grads: new Map() }) : outputNodes(p);
  const ids = new Map<number, number>();
  for (const n of topoSort(roots)) {
    ids.set(n.id, ids.size);
    lines.push(printNode(n, ids, opts));
  }
  const ref = (n: Node) => `%${ids.get(n.id)}`;
  lines.push(`loss ${ref(p.loss)}`);
  for (const [k, n] of p.metrics) lines.push(`metric ${k} ${ref(n)}`);
  for (const [k, n] of p.exports) lines.push(`export ${k} ${ref(n)}`);
  if (!opts.forwardOnly) for (const [k, n] of p.grads) lines.push(`grad ${k} ${ref(n)}`);
  return lines.join('\n') + '\n';
}

function printNode(n: Node, ids: Map<number, number>, opts: PrintOptions): string {
  const args = Object.entries(n.args)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${typeof v === 'number' ? formatNumber(v) : String(v)}`);
  const src = n.src.map((s) => `%${ids.get(s.id)}`);
  const text = [`%${ids.get(n.id)} =`, n.op, ...args, ...src, ':', showType(n.type)].join(' ');
  if (!opts.spans || !n.span) return text;
  const { line, col } = n.span.file.position(n.span.start);
  return `${text}    # ${n.span.file.path}:${line}:${col}`;
}

/** Shortest text that parses back to the same double (keeps -0). */
export function formatNumber(v: number): string {
  return Object.is(v, -0) ? '-0' : String(v);
}

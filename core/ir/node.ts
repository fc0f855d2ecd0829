/**
 * Hash-consed IR nodes. A `Graph` interns every node by (op, type, sources, args), so structural
 * equality is identity and CSE is free. Spans are origins for messages; they are not part of the key
 * (the first creator's span wins).
 */
import type { Span } from '../source/source-file.js';
import type { ValueType } from '../types/types.js';
import type { Op, OpArgs } from './op.js';

export interface Node<K extends Op = Op> {
  readonly id: number;
  readonly op: K;
  readonly type: ValueType;
  readonly src: readonly Node[];
  readonly args: OpArgs[K];
  readonly span?: Span;
}

export class Graph {
  private readonly table = new Map<string, Node>();
  private nextId = 0;

  node<K extends Op>(op: K, type: ValueType, src: readonly Node[], args: OpArgs[K], span?: Span): Node<K> {
    const key = `${op}|${type.dtype}|${type.level}|${src.map((s) => s.id).join(',')}|${argsKey(args)}`;
    const found = this.table.get(key);
    if (found) return found as Node<K>;
    const n: Node<K> = { id: this.nextId++, op, type, src, args, span };
    this.table.set(key, n);
    return n;
  }

  get size(): number {
    return this.table.size;
  }
}

function argsKey(args: object): string {
  const entries = Object.entries(args).sort(([a], [b]) => (a < b ? -1 : 1));
  // NOTE: Object.is distinguishes -0 and 0, which JSON would merge.
  return entries.map(([k, v]) => `${k}=${typeof v === 'number' && Object.is(v, -0) ? '-0' : String(v)}`).join(';');
}

/** Nodes reachable from the roots, sources before users. */
export function topoSort(roots: readonly Node[]): Node[] {
  const out: Node[] = [];
  const seen = new Set<number>();
  const stack: [Node, number][] = roots.map((r) => [r, 0]);
  stack.reverse();
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [n, i] = top;
    if (seen.has(n.id)) {
      stack.pop();
      continue;
    }
    if (i < n.src.length) {
      top[1]++;
      const s = n.src[i];
      if (!seen.has(s.id)) stack.push([s, 0]);
    } else {
      stack.pop();
      seen.add(n.id);
      out.push(n);
    }
  }
  return out;
}

/**
 * Parses the text form of print.ts back into a program, for golden tests and the print/parse
 * round trip. Malformed text throws an Error naming the line (this input comes from tools, not
 * from users writing objectives).
 */
import { isDType, isLevel, type ValueType } from '../types/types.js';
import { IrBuilder } from './build.js';
import type { Node } from './node.js';
import { OPS, type Op } from './op.js';
import type { InputDecl, ParamDecl, Program } from './program.js';

const NUMERIC_ARGS = new Set(['value', 'fill']);
// `to` and `fn` stay strings.
const BOOLEAN_ARGS = new Set(['reverse']);

export function parseProgram(text: string): Program {
  const b = new IrBuilder();
  const nodes = new Map<string, Node>();
  const inputs: InputDecl[] = [];
  const params: ParamDecl[] = [];
  const metrics = new Map<string, Node>();
  const exports = new Map<string, Node>();
  const grads = new Map<string, Node>();
  let name = '';
  let maskName: string | null = null;
  let loss: Node | undefined;

  text.split('\n').forEach((raw, lineNo) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const fail = (why: string): never => {
      throw new Error(`IR line ${lineNo + 1}: ${why}: ${raw}`);
    };
    const ref = (r: string) => nodes.get(r) ?? fail(`unknown node ${r}`);
    const w = line.split(/\s+/);
    switch (w[0]) {
      case 'program':
        name = w[1];
        return;
      case 'param':
        params.push({ name: w[1], default: Number(w[3]) });
        return;
      case 'mask':
        maskName = w[1];
        return;
      case 'input': {
        const m = /^(\w+)\[(\w+)\]$/.exec(w[3]) ?? fail('bad input type');
        if (!isDType(m[1]) || !isLevel(m[2]) || m[2] === 'batch') fail('bad input type');
        inputs.push({
          name: w[1],
          dtype: m[1] as InputDecl['dtype'],
          level: m[2] as InputDecl['level'],
          grad: w[4] === 'grad',
        });
        return;
      }
      case 'loss':
        loss = ref(w[1]);
        return;
      case 'metric':
        metrics.set(w[1], ref(w[2]));
        return;
      case 'export':
        exports.set(w[1], ref(w[2]));
        return;
      case 'grad':
        grads.set(w[1], ref(w[2]));
        return;
    }
    if (!w[0].startsWith('%') || w[1] !== '=') fail('expected `%N = op …`');
    const op = w[2] as Op;
    if (!OPS.includes(op)) fail(`unknown op ${w[2]}`);
    const colon = w.lastIndexOf(':');
    const m = /^(\w+)\[(\w+)\]$/.exec(w[colon + 1] ?? '') ?? fail('bad type');
    const [dtype, level] = [m[1], m[2]];
    if (!isDType(dtype) || !isLevel(level)) return fail('bad type');
    const type: ValueType = { dtype, level };
    const args: Record<string, unknown> = {};
    const src: Node[] = [];
    for (const tok of w.slice(3, colon)) {
      if (tok.startsWith('%')) src.push(ref(tok));
      else {
        const [k, v] = tok.split('=');
        args[k] = NUMERIC_ARGS.has(k) ? Number(v) : BOOLEAN_ARGS.has(k) ? v === 'true' : v;
      }
    }
    nodes.set(w[0], b.graph.node(op, type, src, args as never));
  });
  if (!loss) throw new Error('IR has no loss line');
  return { name, graph: b.graph, inputs, params, maskName, loss, metrics, exports, requires: [], grads };
}

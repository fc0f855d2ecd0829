/**
 * A run whose loss, a metric or a gradient is NaN or ±Infinity is never silent (silent NaN is the
 * costliest bug in training): `credo run` names each such output, where its first non-finite
 * element is (sequence and position, vocabulary entry, group) and how many there are, and exits 1
 * unless --allow-nonfinite. JSON spells the values "NaN", "Infinity", "-Infinity" (JSON has none).
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import type { EvalResult } from '../../compiler/interp/eval.js';

export interface NonFinite {
  /** `loss`, `metric NAME` or `grad.NAME`. */
  readonly output: string;
  /** The first non-finite value. */
  readonly value: number;
  /** How many elements are not finite (1 for the loss and metrics). */
  readonly count: number;
  /** Where the first one is, for a gradient. */
  readonly where?: string;
}

/** Every output of a run that is not finite, in the order they are printed. */
export function nonFiniteOutputs(result: EvalResult, batch: RaggedBatch): NonFinite[] {
  const out: NonFinite[] = [];
  if (!Number.isFinite(result.loss)) out.push({ output: 'loss', value: result.loss, count: 1 });
  for (const [k, v] of Object.entries(result.metrics))
    if (!Number.isFinite(v)) out.push({ output: `metric ${k}`, value: v, count: 1 });
  for (const [k, g] of Object.entries(result.grads)) {
    let first = -1;
    let count = 0;
    g.data.forEach((x, i) => {
      if (Number.isFinite(x)) return;
      if (first < 0) first = i;
      count++;
    });
    if (first >= 0)
      out.push({ output: `grad.${k}`, value: g.data[first]!, count, where: elementAt(batch, g.level, first) });
  }
  return out;
}

/** `token 17 (sequence 3, position 2)`, `sequence 4`, `group 7`, `token 5 (…), vocabulary entry 12`. */
function elementAt(batch: RaggedBatch, level: string, i: number): string {
  const token = (t: number) => {
    let s = 0;
    while (s + 1 < batch.numSeqs && batch.offsets[s + 1]! <= t) s++;
    return `token ${t} (sequence ${s}, position ${t - batch.offsets[s]!})`;
  };
  if (level === 'token') return token(i);
  if (level === 'seq') return `sequence ${i}`;
  if (level === 'group') return `group ${batch.groupIds[i] ?? i}`;
  const V = Math.max(batch.vocabSize, 1);
  return `${token(Math.floor(i / V))}, vocabulary entry ${i % V}`;
}

/** One line per output: `loss is NaN`, `grad.logp is Infinity at token 17 (…) and 3 more elements`. */
export function describeNonFinite(bad: readonly NonFinite[], backend: string): string {
  const lines = bad.map((b) => {
    const more = b.count > 1 ? ` and ${b.count - 1} more element${b.count > 2 ? 's' : ''}` : '';
    return `  ${b.output} is ${b.value}${b.where ? ` at ${b.where}` : ''}${more}`;
  });
  return [
    `the run gives values that are not finite (${backend}):`,
    ...lines,
    'help: check the batch (a zero-variance group, a log of 0, a ratio of e^±∞) and the params; run with --allow-nonfinite to print and write them anyway',
  ].join('\n');
}

/** JSON.stringify replacer: non-finite numbers as the strings "NaN", "Infinity", "-Infinity". */
export function nonFiniteAsString(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

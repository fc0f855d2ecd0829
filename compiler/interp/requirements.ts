/**
 * The `require` items of a program, checked on a batch before a run, and its optional inputs
 * (`input X : token when COND`) completed: each condition's failing
 * elements are counted by the interpreter (on the host, whatever the backend), and a batch in
 * another data convention (groups of 3 given to a preference-pair objective) is a BatchError that
 * names the condition and its source line, never a silently different number.
 */
import { BatchError, countAt, type HostTensor, type RaggedBatch } from '../../core/batch/batch.js';
import { topoSort, type Node } from '../../core/ir/node.js';
import type { Program } from '../../core/ir/program.js';
import { evaluateNodes, type EvalOptions } from './eval.js';

const ELEMENTS = { token: 'valid tokens', seq: 'sequences', group: 'groups', batch: 'batch' } as const;

/** K when the program requires `group_size == K` (what a synthetic batch for it should use). */
export function requiredGroupSize(program: Program): number | undefined {
  return program.requires.find((r) => r.groupSize !== undefined)?.groupSize;
}

/** Whether a batch meets every `require` of the program (random batches for an objective are filtered by it). */
export function meetsRequirements(program: Program, batch: RaggedBatch, opts: EvalOptions = {}): boolean {
  try {
    checkRequirements(program, batch, opts);
    return true;
  } catch (e) {
    if (e instanceof BatchError) return false;
    throw e;
  }
}

/** @throws BatchError for the first requirement the batch does not meet. */
export function checkRequirements(program: Program, batch: RaggedBatch, opts: EvalOptions = {}): void {
  if (program.requires.length === 0) return;
  const params: Record<string, number> = {};
  for (const p of program.params) params[p.name] = opts.params?.[p.name] ?? p.default;
  const values = evaluateNodes(
    program.requires.map((r) => r.failing),
    batch,
    { ...opts, params },
  );
  for (const r of program.requires) {
    const failing = values.get(r.failing.id)![0];
    if (failing === 0) continue;
    const { line, col } = r.span.file.position(r.span.start);
    const where = `${r.span.file.path}:${line}:${col}`;
    const total =
      r.level === 'token' ? batch.mask.reduce((n, m) => n + m, 0) : r.level === 'batch' ? 1 : countAt(batch, r.level);
    const extent = r.level === 'batch' ? 'it is false' : `it fails for ${failing} of ${total} ${ELEMENTS[r.level]}`;
    const hint =
      r.groupSize !== undefined
        ? `; this objective takes groups of ${r.groupSize} sequences (a synthetic batch: --group-size ${r.groupSize})`
        : '';
    throw new BatchError(
      r.groupSize !== undefined ? 'group_size' : 'require',
      `the batch does not meet \`require ${r.text}\` (${where}): ${extent}${hint}`,
    );
  }
}

/**
 * The batch with every optional input it leaves out filled as its `else` says (0 by default), after checking that the
 * input's `when` condition is false for these params (the objective promises not to read it then).
 * @throws BatchError naming the input, its condition and where it is declared, when it is needed.
 */
/** `beta = 0.5, k = 2`: the values of the params a condition reads. */
function paramsOf(root: Node, params: Readonly<Record<string, number>>): string {
  const names = new Set(topoSort([root]).flatMap((n) => (n.op === 'param' ? [(n.args as { name: string }).name] : [])));
  return names.size === 0 ? 'this run' : [...names].map((k) => `${k} = ${params[k]}`).join(', ');
}

function fail(tensor: string, message: string): never {
  throw new BatchError(tensor, message);
}

export function withOptionalInputs(program: Program, batch: RaggedBatch, opts: EvalOptions = {}): RaggedBatch {
  const absent = program.inputs.filter((i) => i.when !== undefined && !batch.tensors.has(i.name));
  if (absent.length === 0) return batch;
  const params: Record<string, number> = {};
  for (const p of program.params) params[p.name] = opts.params?.[p.name] ?? p.default;
  const values = evaluateNodes(
    absent.map((i) => i.when!.node),
    batch,
    { ...opts, params },
  );
  const tensors = new Map(batch.tensors);
  for (const input of absent) {
    const cond = input.when!;
    const { line, col } = cond.span.file.position(cond.span.start);
    if (values.get(cond.node.id)![0] !== 0) {
      throw new BatchError(
        input.name,
        `missing; this objective reads it when \`${cond.text}\` (${cond.span.file.path}:${line}:${col}), which holds for ${paramsOf(cond.node, params)}: add the tensor to the batch, or change the params`,
      );
    }
    const size =
      input.level === 'token'
        ? batch.numTokens
        : input.level === 'seq'
          ? batch.numSeqs
          : input.level === 'group'
            ? batch.numGroups
            : batch.numTokens * batch.vocabSize;
    const fill = cond.fill;
    const data =
      'input' in fill
        ? Float64Array.from(
            tensors.get(fill.input)?.data ??
              fail(input.name, `missing, and so is \`${fill.input}\`, which it reads when it is left out`),
          )
        : new Float64Array(size).fill(fill.value);
    const filled: HostTensor = { level: input.level, dtype: input.dtype, data };
    tensors.set(input.name, filled);
  }
  return { ...batch, tensors };
}

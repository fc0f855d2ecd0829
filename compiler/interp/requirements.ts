/**
 * The `require` items of a program, checked on a batch before a run: each condition's failing
 * elements are counted by the interpreter (on the host, whatever the backend), and a batch in
 * another data convention (groups of 3 given to a preference-pair objective) is a BatchError that
 * names the condition and its source line, never a silently different number.
 */
import { BatchError, countAt, type RaggedBatch } from '../../core/batch/batch.js';
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

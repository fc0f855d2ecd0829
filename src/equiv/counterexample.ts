/** Counterexample batches of `credo equiv`: saved as a packed batch file, and described in words. */
import type { EvalResult } from '../../compiler/interp/eval.js';
import { countAt, type RaggedBatch } from '../../core/batch/batch.js';
import { writeSafetensors, type TensorToWrite } from '../../runtime/batch/safetensors.js';

/** The batch in the packed layout of BATCH.md (seq_lens, group_id, mask and every input). */
export function batchToSafetensors(batch: RaggedBatch): Uint8Array {
  const lens = Array.from({ length: batch.numSeqs }, (_, s) => batch.offsets[s + 1] - batch.offsets[s]);
  const tensors: TensorToWrite[] = [
    { name: 'seq_lens', dtype: 'I32', shape: [batch.numSeqs], data: lens },
    {
      name: 'group_id',
      dtype: 'I32',
      shape: [batch.numSeqs],
      data: Array.from(batch.groupOf, (g) => batch.groupIds[g]),
    },
    { name: 'mask', dtype: 'U8', shape: [batch.numTokens], data: batch.mask },
  ];
  for (const [name, t] of batch.tensors) {
    // a token x vocab tensor is [T, V]: one row per token
    const shape = t.level === 'vocab' ? [batch.numTokens, batch.vocabSize] : [countAt(batch, t.level)];
    tensors.push({
      name,
      // values beyond float32 (an input derived by `--assume NAME == EXPR`) are written exactly
      dtype:
        t.dtype === 'f32'
          ? t.data.every((v) => Math.fround(v) === v || Number.isNaN(v))
            ? 'F32'
            : 'F64'
          : t.dtype === 'i32'
            ? 'I32'
            : 'U8',
      shape,
      data: t.data,
    });
  }
  return writeSafetensors(tensors);
}

const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toPrecision(6));

/** Sizes, values, both losses and where the gradients differ, in a few lines. */
export function describeBatch(
  batch: RaggedBatch,
  a: EvalResult,
  b: EvalResult,
  gradNames: string[],
  labelA: string,
  labelB: string,
): string {
  const lens = Array.from({ length: batch.numSeqs }, (_, s) => batch.offsets[s + 1] - batch.offsets[s]);
  const lines = [
    `${batch.numGroups} group(s), ${batch.numSeqs} sequence(s) of lengths [${lens.join(', ')}] in groups [${Array.from(batch.groupOf).join(', ')}], mask [${Array.from(batch.mask).join(', ')}]`,
  ];
  for (const [name, t] of batch.tensors) lines.push(`  ${name} (${t.level}) = [${Array.from(t.data, fmt).join(', ')}]`);
  lines.push(`  loss: ${labelA} = ${a.loss}, ${labelB} = ${b.loss}`);
  for (const name of gradNames) {
    const ga = a.grads[name]?.data;
    const gb = b.grads[name]?.data;
    if (!ga || !gb) continue;
    let worst = -1;
    let gap = 0;
    for (let i = 0; i < ga.length; i++) if (Math.abs(ga[i] - gb[i]) > gap) [worst, gap] = [i, Math.abs(ga[i] - gb[i])];
    if (worst >= 0 && gap > 1e-12)
      lines.push(`  grad ${name} differs most at element ${worst}: ${labelA} ${ga[worst]}, ${labelB} ${gb[worst]}`);
  }
  return lines.join('\n');
}

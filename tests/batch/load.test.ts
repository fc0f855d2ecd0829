/** Tests of loadBatch (the batch contract's rules) and writeOutputs. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BatchError, type InputSpec, type RaggedBatch } from '../../core/batch/batch.js';
import { loadBatch, type LoadSpec } from '../../runtime/batch/load.js';
import { writeOutputs } from '../../runtime/batch/outputs.js';
import {
  readSafetensors,
  writeSafetensors,
  type RawTensor,
  type TensorToWrite,
} from '../../runtime/batch/safetensors.js';
import { expectBatchError, file, raw, with_ } from '../helpers/raw-tensors.js';

const LOGP: InputSpec = { name: 'logp', level: 'token', dtype: 'f32' };
const TOKEN_ID: InputSpec = { name: 'token_id', level: 'token', dtype: 'i32' };
const REWARD: InputSpec = { name: 'reward', level: 'seq', dtype: 'f32' };
const CHOSEN: InputSpec = { name: 'chosen', level: 'seq', dtype: 'bool' };
const SEQ_ADV: InputSpec = { name: 'advantage', level: 'seq', dtype: 'f32' };
const TOKEN_ADV: InputSpec = { name: 'advantage', level: 'token', dtype: 'f32' };
const SPEC: LoadSpec = { inputs: [LOGP, REWARD], maskName: 'mask' };
const SPEC_LOGP: LoadSpec = { inputs: [LOGP], maskName: 'mask' };

/** A small padded batch: S = 2, L = 4, lengths [3, 2], token (0, 1) masked out. */
function paddedFile(): Map<string, RawTensor> {
  return file({
    logp: raw('F32', [2, 4], [-1, -2, -3, 99, -4, -5, 98, 97]),
    mask: raw('U8', [2, 4], [1, 0, 1, 0, 1, 1, 0, 0]),
    seq_lens: raw('I64', [2], [3, 2]),
    reward: raw('F32', [2], [1, 0]),
  });
}

/** The same batch, packed. */
function packedFile(): Map<string, RawTensor> {
  return file({
    logp: raw('F32', [5], [-1, -2, -3, -4, -5]),
    mask: raw('BOOL', [5], [1, 0, 1, 1, 1]),
    seq_lens: raw('I32', [2], [3, 2]),
    reward: raw('F32', [2], [1, 0]),
  });
}

/** Everything of a batch except its layout, as plain arrays for comparison. */
function contents(batch: RaggedBatch): unknown {
  return {
    numTokens: batch.numTokens,
    numSeqs: batch.numSeqs,
    numGroups: batch.numGroups,
    offsets: [...batch.offsets],
    groupOf: [...batch.groupOf],
    groupIds: [...batch.groupIds],
    mask: [...batch.mask],
    tensors: [...batch.tensors].map(([name, t]) => [name, t.level, t.dtype, [...t.data]]),
  };
}

describe('loadBatch layouts', () => {
  it('loads a padded batch into packed form', () => {
    const batch = loadBatch(paddedFile(), SPEC);
    expect(batch.layout).toEqual({ kind: 'padded', maxLen: 4 });
    expect(batch.numTokens).toBe(5);
    expect([...batch.offsets]).toEqual([0, 3, 5]);
    expect([...batch.mask]).toEqual([1, 0, 1, 1, 1]);
    expect([...batch.tensors.get('logp')!.data]).toEqual([-1, -2, -3, -4, -5]);
    expect(batch.tensors.get('logp')!.level).toBe('token');
    expect([...batch.tensors.get('reward')!.data]).toEqual([1, 0]);
    expect([...batch.groupOf]).toEqual([0, 1]);
    expect(batch.numGroups).toBe(2);
  });

  it('loads the same batch packed to identical contents', () => {
    const packed = loadBatch(packedFile(), SPEC);
    expect(packed.layout).toEqual({ kind: 'packed' });
    expect(contents(packed)).toEqual(contents(loadBatch(paddedFile(), SPEC)));
  });

  it('derives padded seq_lens from the mask: last 1 plus one, 0 for a row without a 1', () => {
    const tensors = file({
      logp: raw('F32', [3, 4], [-1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12]),
      mask: raw('F32', [3, 4], [1, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1]),
    });
    const batch = loadBatch(tensors, { inputs: [LOGP], maskName: 'mask' });
    expect([...batch.offsets]).toEqual([0, 3, 3, 7]);
    expect([...batch.mask]).toEqual([1, 0, 1, 1, 1, 1, 1]);
    expect([...batch.tensors.get('logp')!.data]).toEqual([-1, -2, -3, -9, -10, -11, -12]);
  });

  it('without a mask, every token within the lengths counts (padded: full rows unless seq_lens)', () => {
    const logp = raw('F32', [2, 3], [-1, -2, -3, -4, -5, -6]);
    const noMask = loadBatch(file({ logp }), { inputs: [LOGP], maskName: null });
    expect([...noMask.offsets]).toEqual([0, 3, 6]);
    expect([...noMask.mask]).toEqual([1, 1, 1, 1, 1, 1]);
    const absent = loadBatch(file({ logp, seq_lens: raw('I32', [2], [1, 2]) }), { inputs: [LOGP], maskName: 'mask' });
    expect([...absent.offsets]).toEqual([0, 1, 3]);
    expect([...absent.mask]).toEqual([1, 1, 1]);
    expect([...absent.tensors.get('logp')!.data]).toEqual([-1, -4, -5]);
  });

  it('ignores a tensor named like the mask when maskName is null', () => {
    const tensors = with_(packedFile(), { mask: raw('F32', [5], [7, 7, 7, 7, 7]) });
    expect([...loadBatch(tensors, { inputs: [LOGP], maskName: null }).mask]).toEqual([1, 1, 1, 1, 1]);
  });

  it('uses the mask under a custom name', () => {
    const tensors = with_(packedFile(), { mask: null, loss_mask: raw('U8', [5], [0, 1, 1, 1, 0]) });
    expect([...loadBatch(tensors, { inputs: [LOGP], maskName: 'loss_mask' }).mask]).toEqual([0, 1, 1, 1, 0]);
  });

  it('converts BF16/F16/F64 to f32 inputs, I64 to i32 and U8/BOOL/F32 to bool', () => {
    const tensors = file({
      logp: raw('BF16', [3], [-1, -0.5, -2]),
      token_id: raw('I64', [3], [5, 31999, 0]),
      seq_lens: raw('I64', [1], [3]),
      chosen: raw('F32', [1], [1]),
    });
    const batch = loadBatch(tensors, { inputs: [LOGP, TOKEN_ID, CHOSEN], maskName: 'mask' });
    expect([...batch.tensors.get('token_id')!.data]).toEqual([5, 31999, 0]);
    expect(batch.tensors.get('token_id')!.dtype).toBe('i32');
    expect(batch.tensors.get('chosen')!.dtype).toBe('bool');
  });

  it('takes advantage at the declared level: seq [S] or token-shaped', () => {
    const seq = with_(paddedFile(), { advantage: raw('F32', [2], [0.5, -0.5]) });
    expect([...loadBatch(seq, { inputs: [LOGP, SEQ_ADV], maskName: 'mask' }).tensors.get('advantage')!.data]).toEqual([
      0.5, -0.5,
    ]);
    const tok = with_(paddedFile(), { advantage: raw('F32', [2, 4], [1, 2, 3, 4, 5, 6, 7, 8]) });
    expect([...loadBatch(tok, { inputs: [LOGP, TOKEN_ADV], maskName: 'mask' }).tensors.get('advantage')!.data]).toEqual(
      [1, 2, 3, 5, 6],
    );
  });

  it('loads a batch with no token tensors (seq-only method)', () => {
    const batch = loadBatch(file({ reward: raw('F32', [3], [1, 0, 1]) }), { inputs: [REWARD], maskName: 'mask' });
    expect(batch.numSeqs).toBe(3);
    expect(batch.numTokens).toBe(0);
    expect([...batch.tensors.get('reward')!.data]).toEqual([1, 0, 1]);
  });
});

describe('loadBatch groups', () => {
  const five = file({ logp: raw('F32', [5, 1], [-1, -2, -3, -4, -5]) });

  it('groups by group_id: dense indices in order of first appearance', () => {
    const tensors = with_(five, { group_id: raw('I64', [5], [7, 7, 3, 3, 7]) });
    const batch = loadBatch(tensors, { inputs: [LOGP], maskName: null });
    expect(batch.numGroups).toBe(2);
    expect([...batch.groupOf]).toEqual([0, 0, 1, 1, 0]);
    expect(batch.groupIds).toEqual([7, 3]);
  });

  it('groups consecutively by groupSize', () => {
    const tensors = file({ logp: raw('F32', [6, 1], [1, 2, 3, 4, 5, 6]) });
    const batch = loadBatch(tensors, { inputs: [LOGP], maskName: null, groupSize: 3 });
    expect([...batch.groupOf]).toEqual([0, 0, 0, 1, 1, 1]);
    expect(batch.groupIds).toEqual([0, 1]);
  });

  it('makes each sequence its own group when neither is given', () => {
    const batch = loadBatch(five, { inputs: [LOGP], maskName: null });
    expect(batch.numGroups).toBe(5);
    expect([...batch.groupOf]).toEqual([0, 1, 2, 3, 4]);
  });

  it('loads group-level inputs of shape [G]', () => {
    const tensors = with_(five, { group_id: raw('I32', [5], [1, 1, 2, 2, 2]), baseline: raw('F32', [2], [0.5, 0.25]) });
    const spec: LoadSpec = { inputs: [LOGP, { name: 'baseline', level: 'group', dtype: 'f32' }], maskName: null };
    expect([...loadBatch(tensors, spec).tensors.get('baseline')!.data]).toEqual([0.5, 0.25]);
    const wrong = with_(tensors, { baseline: raw('F32', [5], [1, 2, 3, 4, 5]) });
    expectBatchError(() => loadBatch(wrong, spec), 'baseline', /\[G\] = \[2\].*seq-level shape/);
  });

  it('rejects a group size that does not divide S', () => {
    expectBatchError(
      () => loadBatch(five, { inputs: [LOGP], maskName: null, groupSize: 2 }),
      'group_size',
      /--group-size 2 does not divide the number of sequences S = 5/,
    );
    expectBatchError(
      () => loadBatch(five, { inputs: [LOGP], maskName: null, groupSize: 0 }),
      'group_size',
      /positive integer/,
    );
  });

  it('rejects group_id together with groupSize', () => {
    const tensors = with_(five, { group_id: raw('I32', [5], [0, 0, 1, 1, 2]) });
    expectBatchError(
      () => loadBatch(tensors, { inputs: [LOGP], maskName: null, groupSize: 5 }),
      'group_id',
      /give either group_id or --group-size, not both/,
    );
  });

  it('rejects a group_id of the wrong dtype or shape', () => {
    expectBatchError(
      () => loadBatch(with_(five, { group_id: raw('F32', [5], [0, 0, 1, 1, 2]) }), SPEC_LOGP),
      'group_id',
      /expected I32 or I64/,
    );
    expectBatchError(
      () => loadBatch(with_(five, { group_id: raw('I32', [4], [0, 0, 1, 1]) }), SPEC_LOGP),
      'group_id',
      /\[S\] = \[5\]/,
    );
  });
});

describe('loadBatch errors', () => {
  it('names a missing tensor with its expected level and shape', () => {
    expectBatchError(
      () => loadBatch(with_(paddedFile(), { logp: null }), SPEC),
      'logp',
      /missing; expected a token-level f32 tensor of shape \[S, L\] = \[2, 4\]/,
    );
    expectBatchError(() => loadBatch(with_(packedFile(), { logp: null }), SPEC), 'logp', /missing.*\[T\] = \[5\]/);
    expectBatchError(
      () => loadBatch(with_(paddedFile(), { reward: null }), SPEC),
      'reward',
      /missing; expected a seq-level f32 tensor of shape \[S\] = \[2\]/,
    );
    expectBatchError(() => loadBatch(file({}), SPEC), 'logp', /missing.*\[S, L\] \(padded\) or \[T\] \(packed\)/);
  });

  it('rejects wrong dtypes', () => {
    expectBatchError(
      () => loadBatch(with_(paddedFile(), { logp: raw('I32', [2, 4], [0, 0, 0, 0, 0, 0, 0, 0]) }), SPEC),
      'logp',
      /dtype I32 .* f32 input; expected one of F32, F16, BF16, F64/,
    );
    const ids = with_(packedFile(), { token_id: raw('F32', [5], [1, 2, 3, 4, 5]) });
    expectBatchError(
      () => loadBatch(ids, { inputs: [TOKEN_ID], maskName: 'mask' }),
      'token_id',
      /expected one of I32, I64/,
    );
    const chosen = with_(packedFile(), { chosen: raw('I64', [2], [1, 0]) });
    expectBatchError(
      () => loadBatch(chosen, { inputs: [CHOSEN], maskName: 'mask' }),
      'chosen',
      /expected one of U8, BOOL, F32/,
    );
    expectBatchError(
      () => loadBatch(with_(packedFile(), { seq_lens: raw('F32', [2], [3, 2]) }), SPEC),
      'seq_lens',
      /I32 or I64/,
    );
    expectBatchError(
      () => loadBatch(with_(packedFile(), { mask: raw('I64', [5], [1, 1, 1, 1, 1]) }), SPEC),
      'mask',
      /F32, U8, BOOL/,
    );
  });

  it('rejects wrong shapes', () => {
    expectBatchError(
      () => loadBatch(with_(paddedFile(), { logp: raw('F32', [2, 5], new Array(10).fill(0)) }), SPEC),
      'logp',
      /shape \[2, 5\]; expected \[S, L\] = \[2, 4\]/,
    );
    expectBatchError(
      () => loadBatch(with_(paddedFile(), { logp: raw('F32', [5], [0, 0, 0, 0, 0]) }), SPEC),
      'logp',
      /expected \[S, L\] = \[2, 4\]/,
    );
    expectBatchError(
      () => loadBatch(with_(paddedFile(), { reward: raw('F32', [3], [0, 0, 0]) }), SPEC),
      'reward',
      /\[S\] = \[2\]/,
    );
    expectBatchError(
      () => loadBatch(with_(paddedFile(), { reward: raw('F32', [2, 1], [0, 0]) }), SPEC),
      'reward',
      /\[S\] = \[2\]/,
    );
    expectBatchError(
      () => loadBatch(with_(packedFile(), { mask: raw('U8', [4], [1, 1, 1, 1]) }), SPEC),
      'mask',
      /\[T\] = \[5\]/,
    );
    expectBatchError(
      () => loadBatch(file({ logp: raw('F32', [1, 2, 3], [0, 0, 0, 0, 0, 0]) }), SPEC_LOGP),
      'logp',
      /\[S, L\] \(padded layout\) or \[T\] \(packed layout\)/,
    );
  });

  it('explains a token/seq level mix-up for advantage', () => {
    const seqGiven = with_(paddedFile(), { advantage: raw('F32', [2], [1, -1]) });
    expectBatchError(
      () => loadBatch(seqGiven, { inputs: [LOGP, TOKEN_ADV], maskName: 'mask' }),
      'advantage',
      /shape \[2\]; expected \[S, L\] = \[2, 4\].*seq-level shape, but the method declares advantage at token level/,
    );
    const tokenGiven = with_(packedFile(), { advantage: raw('F32', [5], [1, 2, 3, 4, 5]) });
    expectBatchError(
      () => loadBatch(tokenGiven, { inputs: [LOGP, SEQ_ADV], maskName: 'mask' }),
      'advantage',
      /token-level shape, but the method declares advantage at seq level/,
    );
    // Without a mask, a per-sequence advantage must not decide the layout.
    const noMask = with_(seqGiven, { mask: null });
    expectBatchError(
      () => loadBatch(noMask, { inputs: [TOKEN_ADV, LOGP], maskName: 'mask' }),
      'advantage',
      /seq-level shape/,
    );
  });

  it('rejects NaN/Inf at valid positions, naming the first bad index', () => {
    const padded = with_(paddedFile(), { logp: raw('F32', [2, 4], [-1, -2, -3, 0, -4, NaN, 0, 0]) });
    expectBatchError(
      () => loadBatch(padded, SPEC),
      'logp',
      /NaN at \[1, 1\], a valid \(mask = 1\) position; expected finite values/,
    );
    const packed = with_(packedFile(), { logp: raw('F32', [5], [-1, -2, -3, Infinity, -5]) });
    expectBatchError(() => loadBatch(packed, SPEC), 'logp', /\+Inf at index 3 \(sequence 1, position 0\)/);
    const seq = with_(packedFile(), { reward: raw('F32', [2], [1, -Infinity]) });
    expectBatchError(() => loadBatch(seq, SPEC), 'reward', /-Inf at index 1; expected finite/);
  });

  it('accepts NaN/Inf at padded and masked-out positions and stores 0 there', () => {
    const tensors = with_(paddedFile(), { logp: raw('F32', [2, 4], [-1, NaN, -3, NaN, -4, -5, Infinity, NaN]) });
    expect([...loadBatch(tensors, SPEC).tensors.get('logp')!.data]).toEqual([-1, 0, -3, -4, -5]);
    const bf16 = with_(packedFile(), { logp: raw('BF16', [5], [-1, NaN, -3, -4, -5]) });
    expect([...loadBatch(bf16, SPEC).tensors.get('logp')!.data]).toEqual([-1, 0, -3, -4, -5]);
  });

  it('checks bool and i32 values at valid positions', () => {
    const chosen = with_(packedFile(), { chosen: raw('F32', [2], [1, 0.5]) });
    expectBatchError(
      () => loadBatch(chosen, { inputs: [CHOSEN], maskName: 'mask' }),
      'chosen',
      /value 0.5 at index 1; expected 0 or 1/,
    );
    const ids = with_(packedFile(), { token_id: raw('I64', [5], [1, 2, 2 ** 40, 4, 5]) });
    expectBatchError(() => loadBatch(ids, { inputs: [TOKEN_ID], maskName: 'mask' }), 'token_id', /outside i32/);
  });

  it('rejects inconsistent seq_lens', () => {
    expectBatchError(
      () => loadBatch(with_(packedFile(), { seq_lens: raw('I32', [2], [4, 2]) }), SPEC),
      'seq_lens',
      /sums to 6; expected T = 5/,
    );
    expectBatchError(
      () => loadBatch(with_(packedFile(), { seq_lens: raw('I32', [3], [6, -1, 0]) }), SPEC),
      'seq_lens',
      /value -1 at index 1; expected a non-negative length/,
    );
    expectBatchError(
      () => loadBatch(with_(packedFile(), { seq_lens: null }), SPEC),
      'seq_lens',
      /missing; the packed layout .* needs seq_lens/,
    );
    expectBatchError(
      () => loadBatch(with_(paddedFile(), { seq_lens: raw('I32', [2], [5, 2]) }), SPEC),
      'seq_lens',
      /seq_lens\[0\] = 5 exceeds the padded width L = 4/,
    );
    expectBatchError(
      () => loadBatch(with_(paddedFile(), { seq_lens: raw('I32', [3], [1, 1, 1]) }), SPEC),
      'seq_lens',
      /\[S\] = \[2\]/,
    );
    expectBatchError(
      () => loadBatch(with_(paddedFile(), { seq_lens: raw('I32', [2, 1], [1, 1]) }), SPEC),
      'seq_lens',
      /expected \[S\]/,
    );
  });

  it('rejects a mask that is not 0/1 or has a 1 beyond a sequence', () => {
    expectBatchError(
      () => loadBatch(with_(paddedFile(), { mask: raw('F32', [2, 4], [1, 0, 1, 0, 1, 0.5, 0, 0]) }), SPEC),
      'mask',
      /value 0.5 at \[1, 1\]; expected 0 or 1/,
    );
    expectBatchError(
      () => loadBatch(with_(packedFile(), { mask: raw('F32', [5], [1, 1, NaN, 1, 1]) }), SPEC),
      'mask',
      /NaN at index 2/,
    );
    expectBatchError(
      () => loadBatch(with_(paddedFile(), { mask: raw('U8', [2, 4], [1, 0, 1, 0, 1, 1, 1, 0]) }), SPEC),
      'mask',
      /is 1 at \[1, 2\] but seq_lens\[1\] = 2/,
    );
  });
});

describe('loadBatch blames the tensor that is wrong and prints sizes exactly', () => {
  const OLD_LOGP: InputSpec = { name: 'old_logp', level: 'token', dtype: 'f32' };

  it('a mask whose shape disagrees with every token input is the one reported', () => {
    const tensors = with_(paddedFile(), {
      mask: raw('U8', [2, 5], new Array(10).fill(1)),
      old_logp: raw('F32', [2, 4], new Array(8).fill(0)),
      seq_lens: null,
    });
    expectBatchError(
      () => loadBatch(tensors, { inputs: [LOGP, OLD_LOGP], maskName: 'mask' }),
      'mask',
      /^mask: shape \[2, 5\]; expected \[S, L\] = \[2, 4\] \(padded layout, like logp\)$/,
    );
    // one against one: the mask decides, as before
    expectBatchError(
      () => loadBatch(with_(tensors, { old_logp: null }), SPEC_LOGP),
      'logp',
      /shape \[2, 4\]; expected \[S, L\] = \[2, 5\]/,
    );
  });

  it('without a mask, the token input outvoted by the others is the one reported', () => {
    const tensors = file({
      logp: raw('F32', [3, 4], new Array(12).fill(0)),
      old_logp: raw('F32', [2, 4], new Array(8).fill(0)),
      advantage: raw('F32', [2, 4], new Array(8).fill(0)),
    });
    expectBatchError(
      () => loadBatch(tensors, { inputs: [LOGP, OLD_LOGP, TOKEN_ADV], maskName: 'mask' }),
      'logp',
      /shape \[3, 4\]; expected \[S, L\] = \[2, 4\]/,
    );
  });

  it('seq_lens summing past 2^53 prints the exact sum', () => {
    const count = 2 ** 22 + 11;
    const lens = new Float64Array(count).fill(2 ** 31 - 1);
    const exact = BigInt(count) * BigInt(2 ** 31 - 1);
    expect(BigInt(lens.reduce((a, b) => a + b, 0))).not.toBe(exact); // a float64 sum would be rounded
    expectBatchError(
      () => loadBatch(with_(packedFile(), { seq_lens: { dtype: 'I64', shape: [count], data: lens } }), SPEC),
      'seq_lens',
      new RegExp(`sums to ${exact} tokens; expected at most 2147483647`),
    );
  });

  it('a padded batch of more than 2^31 - 1 tokens is refused before its arrays are allocated', () => {
    // the shape alone decides: no value is read before the refusal
    const huge: RawTensor = { dtype: 'F32', shape: [65536, 65536], data: new Float64Array(0) };
    expectBatchError(
      () => loadBatch(file({ logp: huge }), SPEC_LOGP),
      'logp',
      /65536 sequences of up to L = 65536 tokens hold 4294967296 tokens; expected at most 2147483647/,
    );
  });
});

describe('loadBatch robustness (property)', () => {
  const DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I32', 'I64', 'U8', 'BOOL'];
  const tensorArb = fc
    .record({ dtype: fc.constantFrom(...DTYPES), shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }) })
    .chain(({ dtype, shape }) => {
      const count = shape.reduce((a, b) => a * b, 1);
      const value = dtype.startsWith('F')
        ? fc.constantFrom(0, 1, -1, 0.5, 3, NaN, Infinity)
        : dtype === 'BOOL'
          ? fc.constantFrom(0, 1)
          : fc.constantFrom(...(dtype === 'U8' ? [0, 1, 2, 255] : [-2, -1, 0, 1, 2, 3, 7, 2 ** 31]));
      return fc.array(value, { minLength: count, maxLength: count }).map((data) => raw(dtype, shape, data));
    });
  const filesArb = fc.dictionary(
    fc.constantFrom('logp', 'mask', 'seq_lens', 'group_id', 'reward', 'advantage', 'token_id', 'baseline'),
    tensorArb,
  );
  const specs: LoadSpec[] = [
    { inputs: [LOGP, REWARD], maskName: 'mask' },
    {
      inputs: [TOKEN_ADV, TOKEN_ID, { name: 'baseline', level: 'group', dtype: 'bool' }],
      maskName: 'mask',
      groupSize: 2,
    },
    { inputs: [SEQ_ADV, CHOSEN], maskName: null },
  ];

  it('throws nothing but one-line BatchErrors, whatever the tensors', () => {
    fc.assert(
      fc.property(filesArb, fc.constantFrom(...specs), (entries, spec) => {
        try {
          const batch = loadBatch(file(entries), spec);
          expect(batch.offsets[batch.numSeqs]).toBe(batch.numTokens);
          expect(batch.mask.length).toBe(batch.numTokens);
        } catch (e) {
          expect(e).toBeInstanceOf(BatchError);
          expect((e as Error).message).not.toContain('\n');
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('padded and packed equivalence (property)', () => {
  /** A random ragged batch: lengths, per-token mask and values, rewards. */
  const batchArb = fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 6 }).chain((lengths) => {
    const total = lengths.reduce((a, b) => a + b, 0);
    return fc.record({
      lengths: fc.constant(lengths),
      extra: fc.integer({ min: 0, max: 2 }),
      mask: fc.array(fc.boolean(), { minLength: total, maxLength: total }),
      logp: fc.array(fc.float({ min: -10, max: 0, noNaN: true }), { minLength: total, maxLength: total }),
      ids: fc.array(fc.integer({ min: 0, max: 31999 }), { minLength: total, maxLength: total }),
      reward: fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), {
        minLength: lengths.length,
        maxLength: lengths.length,
      }),
      withSeqLens: fc.boolean(),
      garbage: fc.constantFrom(0, NaN, 1e30, -Infinity),
    });
  });

  const spec: LoadSpec = { inputs: [LOGP, TOKEN_ID, REWARD], maskName: 'mask' };

  /** The packed file: masked-out logp values are NaN (ignored). */
  function packedTensors(b: BatchCase): TensorToWrite[] {
    const total = b.mask.length;
    return [
      { name: 'logp', dtype: 'F32', shape: [total], data: b.logp.map((v, i) => (b.mask[i] ? v : NaN)) },
      { name: 'token_id', dtype: 'I32', shape: [total], data: b.ids },
      { name: 'mask', dtype: 'U8', shape: [total], data: b.mask.map(Number) },
      { name: 'seq_lens', dtype: 'I32', shape: [b.lengths.length], data: b.lengths },
      { name: 'reward', dtype: 'F32', shape: [b.lengths.length], data: b.reward },
    ];
  }

  /** The padded file: rows of width max + extra, garbage in padding. */
  function paddedTensors(b: BatchCase): TensorToWrite[] {
    const width = Math.max(...b.lengths) + b.extra;
    const S = b.lengths.length;
    const pad = (values: number[], fill: number): number[] => {
      const out = new Array<number>(S * width).fill(fill);
      let at = 0;
      b.lengths.forEach((len, s) => {
        for (let t = 0; t < len; t++) out[s * width + t] = values[at++];
      });
      return out;
    };
    const logp = b.logp.map((v, i) => (b.mask[i] ? v : NaN));
    const tensors: TensorToWrite[] = [
      { name: 'logp', dtype: 'F32', shape: [S, width], data: pad(logp, b.garbage) },
      { name: 'token_id', dtype: 'I32', shape: [S, width], data: pad(b.ids, 7) },
      { name: 'mask', dtype: 'U8', shape: [S, width], data: pad(b.mask.map(Number), 0) },
      { name: 'reward', dtype: 'F32', shape: [S], data: b.reward },
    ];
    if (b.withSeqLens) tensors.push({ name: 'seq_lens', dtype: 'I32', shape: [S], data: b.lengths });
    return tensors;
  }

  it('padded and packed files of the same batch load to identical contents', () => {
    fc.assert(
      fc.property(batchArb, (b) => {
        // Without seq_lens, lengths come from the mask, so each sequence must end on a valid token.
        if (!b.withSeqLens) endOnValidToken(b);
        const packed = loadBatch(readSafetensors(writeSafetensors(packedTensors(b))), spec);
        const padded = loadBatch(readSafetensors(writeSafetensors(paddedTensors(b))), spec);
        expect(padded.layout).toEqual({ kind: 'padded', maxLen: Math.max(...b.lengths) + b.extra });
        expect(contents(padded)).toEqual(contents(packed));
        expect([...packed.offsets]).toEqual([0, ...cumsum(b.lengths)]);
        expect([...packed.mask]).toEqual(b.mask.map(Number));
      }),
    );
  });

  it('writeOutputs puts token grads back in the input layout, 0 at padding (round trip)', () => {
    fc.assert(
      fc.property(batchArb, (b) => {
        if (!b.withSeqLens) endOnValidToken(b);
        for (const tensors of [packedTensors(b), paddedTensors(b)]) {
          const batch = loadBatch(readSafetensors(writeSafetensors(tensors)), spec);
          const grad = batch.tensors.get('logp')!.data.map((v) => 2 * v);
          const bytes = writeOutputs(batch, {
            loss: 1.5,
            metrics: { kl: 0.25 },
            grads: {
              logp: { level: 'token', data: grad },
              reward: { level: 'seq', data: Float64Array.from(b.reward) },
            },
          });
          const out = readSafetensors(bytes);
          const input = tensors.find((t) => t.name === 'logp')!;
          const mask = tensors.find((t) => t.name === 'mask')!;
          expect(out.get('grad.logp')!.shape).toEqual(input.shape);
          const expected = Array.from(input.data, (v, i) => (mask.data[i] ? Math.fround(2 * v) : 0));
          expect([...out.get('grad.logp')!.data]).toEqual(expected);
          expect([...out.get('grad.reward')!.data]).toEqual(b.reward.map(Math.fround));
          expect([...out.get('loss')!.data]).toEqual([1.5]);
          expect(out.get('loss')!.shape).toEqual([]);
          expect([...out.get('metric.kl')!.data]).toEqual([0.25]);
        }
      }),
    );
  });
});

type BatchCase = {
  lengths: number[];
  extra: number;
  mask: boolean[];
  logp: number[];
  ids: number[];
  reward: number[];
  withSeqLens: boolean;
  garbage: number;
};

function endOnValidToken(b: BatchCase): void {
  let at = 0;
  for (const len of b.lengths) {
    at += len;
    if (len > 0) b.mask[at - 1] = true;
  }
}

function cumsum(values: number[]): number[] {
  let total = 0;
  return values.map((v) => (total += v));
}

describe('writeOutputs', () => {
  it('writes padded token grads as [S, L], seq grads [S], group grads [G], loss and metrics as scalars', () => {
    const tensors = with_(paddedFile(), { group_id: raw('I32', [2], [4, 4]) });
    const batch = loadBatch(tensors, SPEC);
    const out = readSafetensors(
      writeOutputs(batch, {
        loss: -0.75,
        metrics: { clip_frac: 0.125, entropy: 2 },
        grads: {
          logp: { level: 'token', data: Float64Array.from([1, 2, 3, 4, 5]) },
          reward: { level: 'seq', data: Float64Array.from([6, 7]) },
          baseline: { level: 'group', data: Float64Array.from([8]) },
        },
      }),
    );
    expect([...out.keys()].sort()).toEqual([
      'grad.baseline',
      'grad.logp',
      'grad.reward',
      'loss',
      'metric.clip_frac',
      'metric.entropy',
    ]);
    expect(out.get('grad.logp')).toEqual({
      dtype: 'F32',
      shape: [2, 4],
      data: Float64Array.from([1, 2, 3, 0, 4, 5, 0, 0]),
    });
    expect(out.get('grad.reward')!.shape).toEqual([2]);
    expect(out.get('grad.baseline')!.shape).toEqual([1]);
    expect(out.get('loss')).toEqual({ dtype: 'F32', shape: [], data: Float64Array.from([-0.75]) });
    expect([...out.get('metric.clip_frac')!.data]).toEqual([0.125]);
  });

  it('writes packed token grads as [T]', () => {
    const batch = loadBatch(packedFile(), SPEC);
    const out = readSafetensors(
      writeOutputs(batch, {
        loss: 0,
        metrics: {},
        grads: { logp: { level: 'token', data: Float64Array.from([1, 2, 3, 4, 5]) } },
      }),
    );
    expect(out.get('grad.logp')!.shape).toEqual([5]);
    expect([...out.get('grad.logp')!.data]).toEqual([1, 2, 3, 4, 5]);
  });

  it('rejects a gradient of the wrong length, naming it', () => {
    const batch = loadBatch(packedFile(), SPEC);
    expectBatchError(
      () =>
        writeOutputs(batch, { loss: 0, metrics: {}, grads: { logp: { level: 'token', data: new Float64Array(4) } } }),
      'grad.logp',
      /has 4 values; expected 5 for a token-level gradient/,
    );
  });
});

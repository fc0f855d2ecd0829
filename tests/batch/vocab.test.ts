/** Tests of `token x vocab` tensors in batch files: layouts, dtypes, value checks, shared V, grads. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BatchError, type InputSpec, type RaggedBatch } from '../../core/batch/batch.js';
import { loadBatch, type LoadSpec } from '../../runtime/batch/load.js';
import { writeOutputs } from '../../runtime/batch/outputs.js';
import { compile } from '../../src/objective.js';
import {
  bf16ToNumber,
  f16ToNumber,
  readSafetensors,
  writeSafetensors,
  type RawTensor,
} from '../../runtime/batch/safetensors.js';
import { expectBatchError, file, raw, with_ } from '../helpers/raw-tensors.js';

const LOGITS: InputSpec = { name: 'logits', level: 'vocab', dtype: 'f32' };
const REF_LOGITS: InputSpec = { name: 'ref_logits', level: 'vocab', dtype: 'f32' };
const LOGP: InputSpec = { name: 'logp', level: 'token', dtype: 'f32' };
const TOKEN_ID: InputSpec = { name: 'token_id', level: 'token', dtype: 'i32' };
const SPEC: LoadSpec = { inputs: [LOGITS, TOKEN_ID], maskName: 'mask' };
const ONLY_LOGITS: LoadSpec = { inputs: [LOGITS], maskName: 'mask' };

/** Row r of the test logits: [r, -r / 2, 0.25 r] (exact in BF16 and F16 for r < 16). */
function row(r: number): number[] {
  return [r, -r / 2, 0.25 * r];
}

/** The five valid token rows, packed: S = 2, lengths [3, 2], V = 3. */
const ROWS = [row(1), row(2), row(3), row(4), row(5)];
const PACKED_ROWS = ROWS.flat();

/** A padded batch: S = 2, L = 4, lengths [3, 2], token (0, 1) masked out; NaN in padding rows. */
function paddedFile(): Map<string, RawTensor> {
  const pad = [NaN, Infinity, 7];
  return file({
    logits: raw('F32', [2, 4, 3], [...ROWS[0], ...ROWS[1], ...ROWS[2], ...pad, ...ROWS[3], ...ROWS[4], ...pad, ...pad]),
    token_id: raw('I32', [2, 4], [0, 1, 2, 9, 1, 2, 9, 9]),
    mask: raw('U8', [2, 4], [1, 0, 1, 0, 1, 1, 0, 0]),
    seq_lens: raw('I64', [2], [3, 2]),
  });
}

/** The same batch, packed. */
function packedFile(): Map<string, RawTensor> {
  return file({
    logits: raw('F32', [5, 3], PACKED_ROWS),
    token_id: raw('I32', [5], [0, 1, 2, 1, 2]),
    mask: raw('BOOL', [5], [1, 0, 1, 1, 1]),
    seq_lens: raw('I32', [2], [3, 2]),
  });
}

function contents(batch: RaggedBatch): unknown {
  return {
    numTokens: batch.numTokens,
    numSeqs: batch.numSeqs,
    vocabSize: batch.vocabSize,
    offsets: [...batch.offsets],
    mask: [...batch.mask],
    tensors: [...batch.tensors].map(([name, t]) => [name, t.level, t.dtype, [...t.data]]),
  };
}

// ---------------------------------------------------------------------------------------------
// Hand-built safetensors bytes (the writer only writes F32/I32/U8)
// ---------------------------------------------------------------------------------------------

interface HandTensor {
  readonly name: string;
  readonly dtype: 'F32' | 'F64' | 'F16' | 'BF16' | 'I32' | 'U8';
  readonly shape: number[];
  readonly values: readonly number[];
}

/** bfloat16 bits of a value exactly representable in bfloat16. */
function bf16Bits(v: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, v);
  const bits = view.getUint32(0);
  if ((bits & 0xffff) !== 0 && !Number.isNaN(v)) throw new Error(`${v} is not exact in bf16`);
  return Number.isNaN(v) ? 0x7fc0 : bits >>> 16;
}

/** IEEE binary16 bits of a value exactly representable in binary16 (normal, zero, ±Inf, NaN). */
function f16Bits(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a === Infinity) return sign | 0x7c00;
  if (a === 0) return sign;
  const e = Math.floor(Math.log2(a));
  const mantissa = (a / 2 ** e - 1) * 1024;
  if (e < -14 || e > 15 || !Number.isInteger(mantissa)) throw new Error(`${v} is not exact in f16`);
  return sign | ((e + 15) << 10) | mantissa;
}

/** A safetensors file with the tensors' data packed in the given order, no alignment padding. */
function handFile(tensors: readonly HandTensor[]): Uint8Array {
  const size = { F64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, U8: 1 };
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    const end = offset + t.values.length * size[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, end] };
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const bytes = new Uint8Array(8 + json.length + offset);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  bytes.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors) {
    for (const v of t.values) {
      if (t.dtype === 'F64') view.setFloat64(at, v, true);
      else if (t.dtype === 'F32') view.setFloat32(at, v, true);
      else if (t.dtype === 'I32') view.setInt32(at, v, true);
      else if (t.dtype === 'BF16') view.setUint16(at, bf16Bits(v), true);
      else if (t.dtype === 'F16') view.setUint16(at, f16Bits(v), true);
      else view.setUint8(at, v);
      at += size[t.dtype];
    }
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Layouts
// ---------------------------------------------------------------------------------------------

describe('token x vocab layouts', () => {
  it('loads padded [S, L, V] rows into packed [T, V], dropping padding rows like token tensors', () => {
    const batch = loadBatch(paddedFile(), SPEC);
    expect(batch.layout).toEqual({ kind: 'padded', maxLen: 4 });
    expect(batch.numTokens).toBe(5);
    expect(batch.vocabSize).toBe(3);
    const logits = batch.tensors.get('logits')!;
    expect(logits.level).toBe('vocab');
    expect(logits.dtype).toBe('f32');
    expect([...logits.data]).toEqual(PACKED_ROWS);
    expect([...batch.tensors.get('token_id')!.data]).toEqual([0, 1, 2, 1, 2]);
  });

  it('loads packed [T, V] to the same contents as padded', () => {
    const packed = loadBatch(packedFile(), SPEC);
    expect(packed.layout).toEqual({ kind: 'packed' });
    expect(packed.vocabSize).toBe(3);
    expect([...packed.tensors.get('logits')!.data]).toEqual(PACKED_ROWS);
    expect(contents(packed)).toEqual(contents(loadBatch(paddedFile(), SPEC)));
  });

  it('sets vocabSize to 0 when the method has no token x vocab input', () => {
    const batch = loadBatch(packedFile(), { inputs: [TOKEN_ID], maskName: 'mask' });
    expect(batch.vocabSize).toBe(0);
    expect(batch.numTokens).toBe(5);
  });

  it('takes S and L from a padded token x vocab tensor when it is the only token tensor', () => {
    const logits = raw('F32', [2, 2, 3], [...ROWS[0], ...ROWS[1], ...ROWS[2], ...ROWS[3]]);
    const full = loadBatch(file({ logits }), ONLY_LOGITS);
    expect(full.layout).toEqual({ kind: 'padded', maxLen: 2 });
    expect([...full.offsets]).toEqual([0, 2, 4]);
    expect(full.vocabSize).toBe(3);
    expect([...full.mask]).toEqual([1, 1, 1, 1]);
    expect([...full.tensors.get('logits')!.data]).toEqual(ROWS.slice(0, 4).flat());
    const ragged = loadBatch(file({ logits, seq_lens: raw('I32', [2], [1, 2]) }), ONLY_LOGITS);
    expect([...ragged.offsets]).toEqual([0, 1, 3]);
    expect([...ragged.tensors.get('logits')!.data]).toEqual([...ROWS[0], ...ROWS[2], ...ROWS[3]]);
  });

  it('takes T from a packed token x vocab tensor when it is the only token tensor (seq_lens required)', () => {
    const logits = raw('F32', [5, 3], PACKED_ROWS);
    const batch = loadBatch(file({ logits, seq_lens: raw('I32', [2], [3, 2]) }), ONLY_LOGITS);
    expect(batch.layout).toEqual({ kind: 'packed' });
    expect([...batch.offsets]).toEqual([0, 3, 5]);
    expect([...batch.tensors.get('logits')!.data]).toEqual(PACKED_ROWS);
    expectBatchError(
      () => loadBatch(file({ logits }), ONLY_LOGITS),
      'seq_lens',
      /^seq_lens: missing; the packed layout \(logits has shape \[T, V\] = \[5, 3\]\) needs seq_lens of shape \[S\]/,
    );
    expectBatchError(
      () => loadBatch(file({ logits, seq_lens: raw('I32', [2], [3, 3]) }), ONLY_LOGITS),
      'seq_lens',
      /sums to 6; expected T = 5 \(the first dimension of logits\)/,
    );
  });

  it('blames the token x vocab reference when another tensor agrees with seq_lens', () => {
    // logits has the most rows, so it sets the layout; ref_logits agrees with seq_lens
    const tensors = file({
      logits: raw('F32', [6, 3], [...PACKED_ROWS, 0, 0, 0]),
      ref_logits: raw('F32', [5, 3], PACKED_ROWS),
      seq_lens: raw('I32', [2], [3, 2]),
    });
    expectBatchError(
      () => loadBatch(tensors, { inputs: [LOGITS, REF_LOGITS], maskName: null }),
      'logits',
      /^logits: shape \[6, 3\]; expected \[T, V\] = \[5, 3\] \(the sum of seq_lens, like ref_logits\)$/,
    );
  });

  it('rejects a token x vocab reference that has no token dimensions', () => {
    expectBatchError(
      () => loadBatch(file({ logits: raw('F32', [3], [1, 2, 3]) }), ONLY_LOGITS),
      'logits',
      /shape \[3\] is not token x vocab-shaped; expected \[S, L, V\] \(padded layout\) or \[T, V\] \(packed layout\)/,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Dtypes
// ---------------------------------------------------------------------------------------------

describe('token x vocab dtypes', () => {
  const lengths = [3, 2];
  /** Exact in BF16 and F16, including -Inf and -0. */
  const packedValues = [1, -0.5, 0.25, -Infinity, 3, -0, 0.125, -2, 8, 1.5, -Infinity, -Infinity, 4, 0, -0.75];
  const paddedValues = (fill: number): number[] => {
    const out: number[] = [];
    let at = 0;
    for (const len of lengths) {
      for (let t = 0; t < 4; t++) {
        for (let v = 0; v < 3; v++) out.push(t < len ? packedValues[at++] : fill);
      }
    }
    return out;
  };

  for (const dtype of ['F32', 'BF16', 'F16', 'F64'] as const) {
    it(`round-trips ${dtype} values exactly, padded and packed, keeping -Inf`, () => {
      const seqLens: HandTensor = { name: 'seq_lens', dtype: 'I32', shape: [2], values: lengths };
      const packed = handFile([{ name: 'logits', dtype, shape: [5, 3], values: packedValues }, seqLens]);
      // NaN/+Inf padding rows are dropped unchecked; a U8 tensor first leaves the floats unaligned
      const odd: HandTensor = { name: 'a_byte', dtype: 'U8', shape: [1], values: [1] };
      const padded = handFile([odd, { name: 'logits', dtype, shape: [2, 4, 3], values: paddedValues(NaN) }, seqLens]);
      for (const bytes of [packed, padded]) {
        const tensors = readSafetensors(bytes);
        expect(tensors.get('logits')!.dtype).toBe(dtype);
        const batch = loadBatch(tensors, { inputs: [LOGITS], maskName: null });
        const data = batch.tensors.get('logits')!.data;
        expect([...data]).toEqual(packedValues);
        expect(Object.is(data[5], -0)).toBe(true);
        expect(batch.vocabSize).toBe(3);
      }
    });
  }

  it('rejects integer dtypes for an f32 token x vocab input', () => {
    expectBatchError(
      () => loadBatch(with_(packedFile(), { logits: raw('I32', [5, 3], new Array(15).fill(0)) }), SPEC),
      'logits',
      /dtype I32 is not accepted for a f32 input; expected one of F32, F16, BF16, F64/,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

describe('token x vocab values', () => {
  it('keeps -Inf at valid tokens (a masked-out vocabulary entry)', () => {
    const values = PACKED_ROWS.slice();
    values[4] = -Infinity;
    values[14] = -Infinity;
    const batch = loadBatch(with_(packedFile(), { logits: raw('BF16', [5, 3], values) }), SPEC);
    expect([...batch.tensors.get('logits')!.data]).toEqual(values);
  });

  it('rejects NaN at a valid token, naming the tensor and [s, t, v] of a padded file', () => {
    const tensors = paddedFile();
    const data = Float64Array.from(tensors.get('logits')!.data);
    data[(1 * 4 + 0) * 3 + 2] = NaN; // sequence 1, position 0, vocabulary entry 2
    expectBatchError(
      () => loadBatch(with_(tensors, { logits: raw('F32', [2, 4, 3], data) }), SPEC),
      'logits',
      /^logits: NaN at \[1, 0, 2\], a valid \(mask = 1\) position; expected finite values or -Inf \(a masked-out vocabulary entry\)$/,
    );
  });

  it('rejects +Inf at a valid token, naming [t, v] and (sequence, position, entry) of a packed file', () => {
    const values = PACKED_ROWS.slice();
    values[3 * 3 + 1] = Infinity;
    expectBatchError(
      () => loadBatch(with_(packedFile(), { logits: raw('F32', [5, 3], values) }), SPEC),
      'logits',
      /^logits: \+Inf at \[3, 1\] \(sequence 1, position 0, vocabulary entry 1\), a valid \(mask = 1\) position;/,
    );
  });

  it('reports the first bad value in file order', () => {
    const values = PACKED_ROWS.slice();
    values[14] = NaN;
    values[7] = Infinity;
    expectBatchError(
      () => loadBatch(with_(packedFile(), { logits: raw('F32', [5, 3], values) }), SPEC),
      'logits',
      /\+Inf at \[2, 1\] \(sequence 0, position 2, vocabulary entry 1\)/,
    );
  });

  it('stores 0 for NaN/+Inf at masked-out tokens, keeps -Inf there, and leaves the file tensor alone', () => {
    const values = PACKED_ROWS.slice();
    values.splice(3, 3, NaN, Infinity, -Infinity); // token 1 has mask 0
    const logits = raw('F32', [5, 3], values);
    const batch = loadBatch(with_(packedFile(), { logits }), SPEC);
    const expected = PACKED_ROWS.slice();
    expected.splice(3, 3, 0, 0, -Infinity);
    expect([...batch.tensors.get('logits')!.data]).toEqual(expected);
    expect(Number.isNaN(logits.data[3])).toBe(true);
    expect(logits.data[4]).toBe(Infinity);
  });

  it('checks i32 and bool token x vocab inputs like other levels', () => {
    const ALLOWED: InputSpec = { name: 'allowed', level: 'vocab', dtype: 'bool' };
    const allowed = new Array(15).fill(1);
    allowed[13] = 2;
    expectBatchError(
      () =>
        loadBatch(with_(packedFile(), { allowed: raw('U8', [5, 3], allowed) }), {
          inputs: [ALLOWED],
          maskName: 'mask',
        }),
      'allowed',
      /value 2 at \[4, 1\] \(sequence 1, position 1, vocabulary entry 1\), a valid \(mask = 1\) position; expected 0 or 1/,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Shapes and the shared V
// ---------------------------------------------------------------------------------------------

describe('token x vocab shapes', () => {
  it('requires every token x vocab tensor to have the same V, naming both tensors and sizes', () => {
    const tensors = with_(paddedFile(), { ref_logits: raw('F32', [2, 4, 5], new Array(40).fill(0)) });
    expectBatchError(
      () => loadBatch(tensors, { inputs: [LOGITS, REF_LOGITS], maskName: 'mask' }),
      'ref_logits',
      /^ref_logits: vocabulary size V = 5 \(the last dimension of \[2, 4, 5\]\) differs from V = 3 of logits; expected every token x vocab tensor to have the same V$/,
    );
    const same = with_(paddedFile(), { ref_logits: raw('F32', [2, 4, 3], new Array(24).fill(-1)) });
    expect(loadBatch(same, { inputs: [LOGITS, REF_LOGITS], maskName: 'mask' }).vocabSize).toBe(3);
  });

  it('rejects V = 0', () => {
    expectBatchError(
      () => loadBatch(with_(packedFile(), { logits: raw('F32', [5, 0], []) }), SPEC),
      'logits',
      /vocabulary size V = 0 \(the last dimension of \[5, 0\]\); expected V ≥ 1/,
    );
  });

  it('rejects wrong S or L of a padded file, saying what was expected', () => {
    expectBatchError(
      () => loadBatch(with_(paddedFile(), { logits: raw('F32', [2, 5, 3], new Array(30).fill(0)) }), SPEC),
      'logits',
      /^logits: shape \[2, 5, 3\]; expected \[S, L, V\] = \[2, 4, V\] \(padded layout\)$/,
    );
    expectBatchError(
      () => loadBatch(with_(paddedFile(), { logits: raw('F32', [3, 4, 3], new Array(36).fill(0)) }), SPEC),
      'logits',
      /shape \[3, 4, 3\]; expected \[S, L, V\] = \[2, 4, V\]/,
    );
  });

  it('gives V in the expected shape once another tensor has fixed it', () => {
    const tensors = with_(paddedFile(), { ref_logits: raw('F32', [2, 3, 3], new Array(18).fill(0)) });
    expectBatchError(
      () => loadBatch(tensors, { inputs: [LOGITS, REF_LOGITS], maskName: 'mask' }),
      'ref_logits',
      /shape \[2, 3, 3\]; expected \[S, L, V\] = \[2, 4, 3\] \(padded layout; V = 3, as in logits\)/,
    );
  });

  it('rejects a wrong T of a packed file', () => {
    expectBatchError(
      () => loadBatch(with_(packedFile(), { logits: raw('F32', [6, 3], new Array(18).fill(0)) }), SPEC),
      'logits',
      /^logits: shape \[6, 3\]; expected \[T, V\] = \[5, V\] \(packed layout\)$/,
    );
    expectBatchError(
      () => loadBatch(with_(packedFile(), { logits: raw('F32', [15], PACKED_ROWS) }), SPEC),
      'logits',
      /shape \[15\]; expected \[T, V\] = \[5, V\]/,
    );
  });

  it('explains a token / token x vocab level mix-up', () => {
    expectBatchError(
      () => loadBatch(with_(paddedFile(), { logits: raw('F32', [2, 4], new Array(8).fill(0)) }), SPEC),
      'logits',
      /expected \[S, L, V\] = \[2, 4, V\] \(padded layout\) \(that is the token-level shape, but the method declares logits at token x vocab level\)/,
    );
    const logp = raw('F32', [5, 3], PACKED_ROWS);
    expectBatchError(
      () => loadBatch(with_(packedFile(), { logp }), { inputs: [TOKEN_ID, LOGP], maskName: 'mask' }),
      'logp',
      /expected \[T\] = \[5\] \(packed layout\) \(that is the token x vocab shape, but the method declares logp at token level\)/,
    );
  });

  it('names a missing token x vocab tensor with its expected shape', () => {
    expectBatchError(
      () => loadBatch(with_(paddedFile(), { logits: null }), SPEC),
      'logits',
      /^logits: missing; expected a token x vocab f32 tensor of shape \[S, L, V\] = \[2, 4, V\] \(padded layout\)$/,
    );
    expectBatchError(
      () => loadBatch(with_(packedFile(), { logits: null }), SPEC),
      'logits',
      /missing; expected a token x vocab f32 tensor of shape \[T, V\] = \[5, V\] \(packed layout\)/,
    );
    expectBatchError(
      () => loadBatch(file({}), ONLY_LOGITS),
      'logits',
      /missing; expected a token x vocab f32 tensor of shape \[S, L, V\] \(padded\) or \[T, V\] \(packed\)/,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Gradients
// ---------------------------------------------------------------------------------------------

describe('token x vocab gradients', () => {
  const grad = Float64Array.from({ length: 15 }, (_, i) => i + 1);

  it('writes a padded batch grad as [S, L, V], zero in padding rows', () => {
    const batch = loadBatch(paddedFile(), SPEC);
    const out = readSafetensors(
      writeOutputs(batch, { loss: 0, metrics: {}, grads: { logits: { level: 'vocab', data: grad } } }),
    );
    const g = out.get('grad.logits')!;
    expect(g.dtype).toBe('F32');
    expect(g.shape).toEqual([2, 4, 3]);
    // sequence 0: rows 0-2 then padding; sequence 1: rows 3-4 then padding
    expect([...g.data]).toEqual([
      ...[1, 2, 3, 4, 5, 6, 7, 8, 9],
      ...[0, 0, 0],
      ...[10, 11, 12, 13, 14, 15],
      ...[0, 0, 0, 0, 0, 0],
    ]);
  });

  it('writes a packed batch grad as [T, V]', () => {
    const batch = loadBatch(packedFile(), SPEC);
    const out = readSafetensors(
      writeOutputs(batch, { loss: 0, metrics: {}, grads: { logits: { level: 'vocab', data: grad } } }),
    );
    expect(out.get('grad.logits')).toEqual({ dtype: 'F32', shape: [5, 3], data: grad });
  });

  it('rejects a token x vocab grad of the wrong length, naming it', () => {
    const batch = loadBatch(packedFile(), SPEC);
    expectBatchError(
      () =>
        writeOutputs(batch, {
          loss: 0,
          metrics: {},
          grads: { logits: { level: 'vocab', data: new Float64Array(14) } },
        }),
      'grad.logits',
      /has 14 values; expected 15 for a token x vocab gradient \(\[T, V\] = \[5, 3\]\)/,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

describe('token x vocab padded/packed equivalence (property)', () => {
  const value = fc.oneof(fc.float({ min: -20, max: 20, noNaN: true }), fc.constant(-Infinity));
  const caseArb = fc.record({
    lengths: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 5 }),
    extra: fc.integer({ min: 0, max: 2 }),
    vocab: fc.integer({ min: 1, max: 4 }),
    withSeqLens: fc.boolean(),
    // at least S · L · V ≤ 5 · 5 · 4 values; the first T · V are used
    pool: fc.array(value, { minLength: 100, maxLength: 100 }),
  });

  it('loads both layouts to the same rows and writes grads back in each layout', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const S = c.lengths.length;
        const V = c.vocab;
        // without seq_lens (nor a mask) a padded vocab-only batch has full rows
        const lengths = c.withSeqLens ? c.lengths : c.lengths.map(() => Math.max(...c.lengths));
        const width = Math.max(...lengths) + (c.withSeqLens ? c.extra : 0);
        const count = lengths.reduce((a, b) => a + b, 0);
        const values = c.pool.slice(0, count * V);
        const padded = new Array<number>(S * width * V).fill(NaN);
        let at = 0;
        lengths.forEach((len, s) => {
          for (let t = 0; t < len; t++) {
            for (let v = 0; v < V; v++) padded[(s * width + t) * V + v] = values[at++];
          }
        });
        const seqLens = raw('I32', [S], lengths);
        const paddedFile = file({
          logits: raw('F32', [S, width, V], padded),
          ...(c.withSeqLens ? { seq_lens: seqLens } : {}),
        });
        const packedFile = file({ logits: raw('F32', [count, V], values), seq_lens: seqLens });
        const a = loadBatch(paddedFile, { inputs: [LOGITS], maskName: null });
        const b = loadBatch(packedFile, { inputs: [LOGITS], maskName: null });
        expect(contents(a)).toEqual(contents(b));
        expect([...a.tensors.get('logits')!.data]).toEqual(values.map(Math.fround));
        const grad = Float64Array.from({ length: count * V }, (_, i) => i + 0.5);
        const outA = readSafetensors(
          writeOutputs(a, { loss: 0, metrics: {}, grads: { logits: { level: 'vocab', data: grad } } }),
        );
        const outB = readSafetensors(
          writeOutputs(b, { loss: 0, metrics: {}, grads: { logits: { level: 'vocab', data: grad } } }),
        );
        expect(outB.get('grad.logits')!.shape).toEqual([count, V]);
        expect([...outB.get('grad.logits')!.data]).toEqual([...grad]);
        expect(outA.get('grad.logits')!.shape).toEqual([S, width, V]);
        const expectedPadded = padded.map(() => 0);
        let g = 0;
        lengths.forEach((len, s) => {
          for (let t = 0; t < len; t++) {
            for (let v = 0; v < V; v++) expectedPadded[(s * width + t) * V + v] = grad[g++];
          }
        });
        expect([...outA.get('grad.logits')!.data]).toEqual(expectedPadded);
      }),
    );
  });

  it('throws nothing but one-line BatchErrors, whatever the tensors', () => {
    const DTYPES = ['F32', 'BF16', 'I32', 'U8'];
    const NAMES = ['logits', 'ref_logits', 'mask', 'seq_lens', 'logp'] as const;
    const floats = (count: number): fc.Arbitrary<number[]> =>
      fc.array(
        fc.oneof({ weight: 20, arbitrary: fc.constantFrom(0, -1, 0.5, -Infinity) }, fc.constantFrom(NaN, Infinity)),
        {
          minLength: count,
          maxLength: count,
        },
      );
    /** A valid batch (padded or packed) of S sequences of width L with V entries, some tensors left out. */
    const baseArb = fc
      .record({
        S: fc.integer({ min: 1, max: 3 }),
        L: fc.integer({ min: 0, max: 3 }),
        V: fc.integer({ min: 0, max: 3 }),
        packed: fc.boolean(),
      })
      .chain(({ S, L, V, packed }) =>
        fc.array(fc.integer({ min: 0, max: L }), { minLength: S, maxLength: S }).chain((lengths) => {
          const T = lengths.reduce((a, b) => a + b, 0);
          const tokens = packed ? [T] : [S, L];
          const count = tokens.reduce((a, b) => a * b, 1);
          return fc.record(
            {
              logits: floats(count * V).map((d) => raw('F32', [...tokens, V], d)),
              ref_logits: floats(count * V).map((d) => raw('BF16', [...tokens, V], d)),
              logp: floats(count).map((d) => raw('F32', tokens, d)),
              mask: fc
                .array(fc.constantFrom(0, 1), { minLength: count, maxLength: count })
                .map((d) =>
                  raw('U8', tokens, packed ? d : d.map((m, i) => (i % L < lengths[Math.floor(i / L)] ? m : 0))),
                ),
              seq_lens: fc.constant(raw('I32', [S], lengths)),
            },
            { requiredKeys: packed ? ['logits', 'seq_lens'] : ['logits'] },
          );
        }),
      );
    const tensorArb = fc
      .record({ dtype: fc.constantFrom(...DTYPES), shape: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 4 }) })
      .chain(({ dtype, shape }) => {
        const count = shape.reduce((a, b) => a * b, 1);
        const value = dtype === 'U8' ? fc.constantFrom(0, 1, 2) : fc.constantFrom(0, 1, -1, NaN, Infinity, -Infinity);
        return fc.array(value, { minLength: count, maxLength: count }).map((data) => raw(dtype, shape, data));
      });
    /** The base batch with up to two tensors replaced by arbitrary ones or removed. */
    const filesArb = fc
      .tuple(baseArb, fc.array(fc.tuple(fc.constantFrom(...NAMES), fc.option(tensorArb)), { maxLength: 2 }))
      .map(([base, changes]) => {
        const entries: Record<string, RawTensor> = Object.fromEntries(
          Object.entries(base).filter((e): e is [string, RawTensor] => e[1] !== undefined),
        );
        for (const [name, t] of changes) {
          if (t === null) delete entries[name];
          else entries[name] = t;
        }
        return entries;
      });
    const specs: LoadSpec[] = [
      { inputs: [LOGITS], maskName: 'mask' },
      { inputs: [LOGITS, REF_LOGITS], maskName: null },
      { inputs: [LOGP, LOGITS], maskName: 'mask' },
    ];
    let loaded = 0;
    fc.assert(
      fc.property(filesArb, fc.constantFrom(...specs), (entries, spec) => {
        try {
          const batch = loadBatch(file(entries), spec);
          loaded++;
          expect(batch.vocabSize).toBeGreaterThanOrEqual(1);
          expect(batch.tensors.get('logits')!.data.length).toBe(batch.numTokens * batch.vocabSize);
        } catch (e) {
          expect(e).toBeInstanceOf(BatchError);
          expect((e as Error).message).not.toContain('\n');
        }
      }),
      { numRuns: 1000 },
    );
    // about a quarter of the files load, so the success branch's checks ran
    expect(loaded).toBeGreaterThan(50);
  });
});

// ---------------------------------------------------------------------------------------------
// The reader's and writer's typed-array paths
// ---------------------------------------------------------------------------------------------

describe('float fast paths of readSafetensors / writeSafetensors', () => {
  const words = Array.from({ length: 0x10000 }, (_, i) => i);

  /** A file holding every 16-bit pattern as `dtype`, after `lead` single bytes (misaligning it when odd). */
  function allPatterns(dtype: 'F16' | 'BF16', lead: number): Uint8Array {
    const header = {
      lead: { dtype: 'U8', shape: [lead], data_offsets: [0, lead] },
      h: { dtype, shape: [0x10000], data_offsets: [lead, lead + 0x20000] },
    };
    const json = new TextEncoder().encode(JSON.stringify(header));
    const bytes = new Uint8Array(8 + json.length + lead + 0x20000);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    const at = 8 + json.length + lead;
    for (const w of words) {
      bytes[at + 2 * w] = w & 0xff;
      bytes[at + 2 * w + 1] = w >> 8;
    }
    return bytes;
  }

  for (const dtype of ['F16', 'BF16'] as const) {
    it(`decodes every ${dtype} pattern like the scalar decoder, aligned or not`, () => {
      const decode = dtype === 'F16' ? f16ToNumber : bf16ToNumber;
      for (const lead of [1, 2, 3]) {
        const data = readSafetensors(allPatterns(dtype, lead)).get('h')!.data;
        const failures = words.filter(
          (w) => !Object.is(data[w], decode(w)) && !(Number.isNaN(data[w]) && Number.isNaN(decode(w))),
        );
        expect(failures).toEqual([]);
      }
    });
  }

  it('decodes unaligned F32 and F64 tensors', () => {
    const f32 = [1.5, -0, -Infinity, 3.4028234663852886e38, 1e-45, NaN];
    const f64 = [Math.PI, -0, 1e300, -Infinity, 5e-324];
    for (const lead of [1, 2, 3, 4]) {
      const bytes = handFile([
        { name: 'lead', dtype: 'U8', shape: [lead], values: new Array(lead).fill(0) },
        { name: 'x', dtype: 'F32', shape: [f32.length], values: f32 },
        { name: 'y', dtype: 'F64', shape: [f64.length], values: f64 },
      ]);
      const out = readSafetensors(bytes);
      expect([...out.get('x')!.data]).toEqual(f32.map(Math.fround));
      expect(Object.is(out.get('x')!.data[1], -0)).toBe(true);
      expect([...out.get('y')!.data]).toEqual(f64);
    }
  });

  it('reads a Node Buffer that starts at any offset of its memory (as readFileSync returns)', () => {
    const f32 = [1.5, -0, -Infinity, 0.1];
    const bytes = handFile([
      { name: 'a', dtype: 'F32', shape: [4], values: f32 },
      { name: 'b', dtype: 'BF16', shape: [3], values: [1, -2, -Infinity] },
      { name: 'c', dtype: 'F64', shape: [2], values: [Math.E, -0] },
    ]);
    for (let shift = 0; shift < 8; shift++) {
      const memory = new ArrayBuffer(bytes.length + 8);
      new Uint8Array(memory).set(bytes, shift);
      const out = readSafetensors(Buffer.from(memory, shift, bytes.length));
      expect([...out.get('a')!.data]).toEqual(f32.map(Math.fround));
      expect([...out.get('b')!.data]).toEqual([1, -2, -Infinity]);
      expect([...out.get('c')!.data]).toEqual([Math.E, -0]);
      expect(Object.is(out.get('c')!.data[1], -0)).toBe(true);
    }
  });

  it('writes F32 after an aligning or misaligning U8 tensor, rounding to float32', () => {
    const values = [1 / 3, -0, -Infinity, 1e-46, 16777217];
    for (const lead of [3, 4]) {
      const bytes = writeSafetensors([
        { name: 'a', dtype: 'U8', shape: [lead], data: new Array(lead).fill(7) },
        { name: 'b', dtype: 'F32', shape: [5], data: values },
        { name: 'c', dtype: 'F32', shape: [5], data: Float64Array.from(values) },
      ]);
      const out = readSafetensors(bytes);
      expect([...out.get('a')!.data]).toEqual(new Array(lead).fill(7));
      for (const name of ['b', 'c']) {
        expect([...out.get(name)!.data]).toEqual(values.map(Math.fround));
        expect(Object.is(out.get(name)!.data[1], -0)).toBe(true);
      }
    }
  });
});

describe('token ids that index the vocabulary', () => {
  const INDEX: InputSpec = { ...TOKEN_ID, vocabIndex: true };
  const spec: LoadSpec = { inputs: [LOGITS, INDEX], maskName: 'mask' };

  it('are checked against V at valid tokens only (padding and masked tokens may hold anything)', () => {
    // token (0, 1) is masked and holds 1; the padding holds 9 (≥ V = 3): both fine
    expect(loadBatch(paddedFile(), spec).vocabSize).toBe(3);
  });

  it('an id ≥ V, a negative id at a valid token: a one-line error naming the token', () => {
    for (const bad of [3, -1]) {
      const f = with_(paddedFile(), { token_id: raw('I32', [2, 4], [0, 1, 2, 9, bad, 2, 9, 9]) });
      expectBatchError(
        () => loadBatch(f, spec),
        'token_id',
        new RegExp(`^token_id: ${bad} at token 3 \\(sequence 1, position 0\\).*0 ≤ token_id < V = 3`),
      );
    }
  });

  it('the checker marks the inputs gather indexes with, and the library API checks them too', () => {
    const obj = compile({
      path: 'index-test.credo',
      source:
        'objective t\ninput logits : token x vocab grad\ninput token_id : token i32\ninput other : token i32\nmask mask : token\nloss = -mean(gather(log_softmax(logits), token_id)) + 0 * mean(other)\n',
    });
    expect(obj.inputs.find((i) => i.name === 'token_id')?.vocabIndex).toBe(true);
    expect(obj.inputs.find((i) => i.name === 'other')?.vocabIndex).toBeUndefined();
    const batch = loadBatch(with_(paddedFile(), { other: raw('I32', [2, 4], [5, 5, 5, 5, 5, 5, 5, 5]) }), {
      inputs: obj.inputs,
      maskName: 'mask',
    });
    const ids = batch.tensors.get('token_id')!;
    const tampered = {
      ...batch,
      tensors: new Map([...batch.tensors, ['token_id', { ...ids, data: Float64Array.from([0, 1, 2, 7, 2]) }]]),
    };
    expectBatchError(() => obj.run(tampered), 'token_id', /7 at token 3/);
  });
});

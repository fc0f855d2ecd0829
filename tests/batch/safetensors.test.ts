/** Tests of the safetensors reader and writer: round trips, exact decoding, malformed files. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BatchError } from '../../core/batch/batch.js';
import {
  bf16ToNumber,
  f16ToNumber,
  readSafetensors,
  writeSafetensors,
  type TensorToWrite,
} from '../../runtime/batch/safetensors.js';
import { expectBatchError } from '../helpers/raw-tensors.js';

/** Builds a file from a header (object or raw string) and data bytes, without any validation. */
function rawFile(header: unknown, data: ArrayLike<number> = [], declaredLength?: bigint): Uint8Array {
  const json = typeof header === 'string' ? header : JSON.stringify(header);
  const headerBytes = new TextEncoder().encode(json);
  return concatFile(headerBytes, Uint8Array.from(data), declaredLength ?? BigInt(headerBytes.length));
}

function concatFile(header: Uint8Array, data: Uint8Array, declaredLength: bigint): Uint8Array {
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, declaredLength, true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

/** Little-endian bytes of 16-bit words. */
function u16le(words: number[]): number[] {
  return words.flatMap((w) => [w & 0xff, w >> 8]);
}

function i64le(values: bigint[]): number[] {
  const buf = new DataView(new ArrayBuffer(values.length * 8));
  values.forEach((v, i) => buf.setBigInt64(i * 8, v, true));
  return [...new Uint8Array(buf.buffer)];
}

describe('writeSafetensors → readSafetensors', () => {
  it('round-trips F64, F32, I32 and U8 tensors, scalars and empty tensors', () => {
    const tensors: TensorToWrite[] = [
      { name: 'x', dtype: 'F32', shape: [2, 3], data: [0, -1.5, 2.25, 1e-30, -0, 3.4e38] },
      { name: 'exact', dtype: 'F64', shape: [3], data: [0.1, -Math.PI, 1e-300] },
      { name: 'ids', dtype: 'I32', shape: [4], data: [0, -1, 2147483647, -2147483648] },
      { name: 'm', dtype: 'U8', shape: [3], data: [0, 1, 255] },
      { name: 'loss', dtype: 'F32', shape: [], data: [0.5] },
      { name: 'empty', dtype: 'F32', shape: [0, 4], data: [] },
    ];
    const read = readSafetensors(writeSafetensors(tensors));
    expect([...read.keys()].sort()).toEqual(['empty', 'exact', 'ids', 'loss', 'm', 'x']);
    for (const t of tensors) {
      const r = read.get(t.name)!;
      expect(r.dtype).toBe(t.dtype);
      expect(r.shape).toEqual(t.shape);
      expect([...r.data]).toEqual(Array.from(t.data).map((v) => (t.dtype === 'F32' ? Math.fround(v) : v)));
    }
    expect(Object.is(read.get('x')!.data[4], -0)).toBe(true);
  });

  it('keeps NaN and infinities in F32', () => {
    const read = readSafetensors(
      writeSafetensors([{ name: 'v', dtype: 'F32', shape: [3], data: [NaN, Infinity, -Infinity] }]),
    );
    expect([...read.get('v')!.data]).toEqual([NaN, Infinity, -Infinity]);
  });

  it('pads the header with spaces to a multiple of 8 and writes tensors in name order', () => {
    const bytes = writeSafetensors([
      { name: 'b', dtype: 'U8', shape: [1], data: [2] },
      { name: 'a', dtype: 'U8', shape: [1], data: [1] },
      { name: '10', dtype: 'U8', shape: [1], data: [3] },
    ]);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(header.trimEnd()).toBe(
      '{"10":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},' +
        '"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},' +
        '"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}',
    );
    expect(/^ *$/.test(header.slice(header.trimEnd().length))).toBe(true);
    expect([...bytes.subarray(8 + n)]).toEqual([3, 1, 2]);
  });

  it('writes __metadata__ when given and the reader accepts it', () => {
    const bytes = writeSafetensors([{ name: 'x', dtype: 'F32', shape: [1], data: [1] }], { format: 'pt' });
    expect(new TextDecoder().decode(bytes)).toContain('"__metadata__":{"format":"pt"}');
    expect([...readSafetensors(bytes).keys()]).toEqual(['x']);
  });

  it('round-trips random tensors of every writable dtype (property)', () => {
    const tensorArb = fc
      .record({
        dtype: fc.constantFrom('F32' as const, 'I32' as const, 'U8' as const),
        shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
      })
      .chain(({ dtype, shape }) => {
        const count = shape.reduce((a, b) => a * b, 1);
        const value =
          dtype === 'F32'
            ? fc.float({ noNaN: true })
            : dtype === 'I32'
              ? fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })
              : fc.integer({ min: 0, max: 255 });
        return fc.array(value, { minLength: count, maxLength: count }).map((data) => ({ dtype, shape, data }));
      });
    const filesArb = fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), tensorArb), {
      selector: ([name]) => name,
      maxLength: 5,
    });
    fc.assert(
      fc.property(filesArb, (entries) => {
        const tensors = entries.filter(([name]) => name !== '__metadata__').map(([name, t]) => ({ name, ...t }));
        const read = readSafetensors(writeSafetensors(tensors));
        expect(read.size).toBe(tensors.length);
        for (const t of tensors) {
          const r = read.get(t.name)!;
          expect(r.dtype).toBe(t.dtype);
          expect(r.shape).toEqual(t.shape);
          expect([...r.data]).toEqual(t.data);
        }
      }),
    );
  });

  it('rejects bad tensors on write, naming them', () => {
    expectBatchError(() => writeSafetensors([{ name: 'x', dtype: 'F32', shape: [2], data: [1] }]), 'x', /expected 2/);
    expectBatchError(() => writeSafetensors([{ name: 'i', dtype: 'I32', shape: [1], data: [1.5] }]), 'i', /integer/);
    expectBatchError(() => writeSafetensors([{ name: 'u', dtype: 'U8', shape: [1], data: [256] }]), 'u', /\[0, 255\]/);
    expectBatchError(
      () =>
        writeSafetensors([
          { name: 'd', dtype: 'U8', shape: [], data: [1] },
          { name: 'd', dtype: 'U8', shape: [], data: [1] },
        ]),
      'd',
      /unique/,
    );
    expectBatchError(
      () => writeSafetensors([{ name: 'h', dtype: 'F16' as 'F32', shape: [], data: [1] }]),
      'h',
      /F32, I32, U8/,
    );
    expectBatchError(() => writeSafetensors([{ name: 's', dtype: 'F32', shape: [1.5], data: [1] }]), 's', /shape/);
  });
});

describe('readSafetensors decoding', () => {
  it('decodes F16 exactly', () => {
    const words = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x8000, 0x7c00, 0xfc00, 0x3555, 0x7e00];
    const expected = [1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, -0, Infinity, -Infinity, 0.333251953125, NaN];
    const file = rawFile(
      { h: { dtype: 'F16', shape: [words.length], data_offsets: [0, words.length * 2] } },
      u16le(words),
    );
    const data = readSafetensors(file).get('h')!.data;
    expect([...data]).toEqual(expected);
    expect(Object.is(data[6], -0)).toBe(true);
  });

  it('decodes BF16 exactly', () => {
    const words = [0x3f80, 0xc0a0, 0x7f7f, 0x0001, 0x0080, 0x8000, 0x7f80, 0xff80, 0x3eab, 0x7fc0];
    const expected = [1, -5, 255 * 2 ** 120, 2 ** -133, 2 ** -126, -0, Infinity, -Infinity, 0.333984375, NaN];
    const file = rawFile({ b: { dtype: 'BF16', shape: [2, 5], data_offsets: [0, 20] } }, u16le(words));
    const t = readSafetensors(file).get('b')!;
    expect(t.shape).toEqual([2, 5]);
    expect([...t.data]).toEqual(expected);
  });

  it('agrees with the bit-level definitions for every 16-bit pattern', () => {
    const scratch = new DataView(new ArrayBuffer(4));
    const failures: number[] = [];
    for (let bits = 0; bits < 0x10000; bits++) {
      scratch.setUint32(0, (bits << 16) >>> 0);
      if (!Object.is(bf16ToNumber(bits), scratch.getFloat32(0))) failures.push(bits);
      // binary16: each pattern is the previous one plus the previous one's ulp, 2^(max(e, 1) - 25);
      // negatives mirror positives.
      const h = f16ToNumber(bits);
      const magnitude = bits & 0x7fff;
      if (magnitude < 0x7c00) {
        const previous = magnitude === 0 ? 0 : Math.abs(f16ToNumber(magnitude - 1));
        const step = magnitude === 0 ? 0 : 2 ** (Math.max((magnitude - 1) >> 10, 1) - 25);
        const sign = bits & 0x8000 ? -1 : 1;
        if (!Object.is(h, sign * (previous + step))) failures.push(bits);
      } else if (magnitude === 0x7c00 ? h !== (bits & 0x8000 ? -Infinity : Infinity) : !Number.isNaN(h)) {
        failures.push(bits);
      }
    }
    expect(failures).toEqual([]);
  });

  it('decodes I64 exactly up to 2^53 and rejects larger magnitudes', () => {
    const values = [0n, -1n, 31999n, 2n ** 53n, -(2n ** 53n), 2n ** 40n + 7n];
    const file = rawFile({ ids: { dtype: 'I64', shape: [6], data_offsets: [0, 48] } }, i64le(values));
    expect([...readSafetensors(file).get('ids')!.data]).toEqual(values.map(Number));
    const big = rawFile({ ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, i64le([1n, 2n ** 53n + 1n]));
    expectBatchError(() => readSafetensors(big), 'ids', /element 1 .*2\^53/);
    const low = rawFile({ ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, i64le([-(2n ** 63n)]));
    expectBatchError(() => readSafetensors(low), 'ids', /2\^53/);
  });

  it('decodes BOOL as 0/1 and rejects other bytes', () => {
    const file = rawFile({ m: { dtype: 'BOOL', shape: [4], data_offsets: [0, 4] } }, [1, 0, 0, 1]);
    expect([...readSafetensors(file).get('m')!.data]).toEqual([1, 0, 0, 1]);
    const bad = rawFile({ m: { dtype: 'BOOL', shape: [2], data_offsets: [0, 2] } }, [1, 2]);
    expectBatchError(() => readSafetensors(bad), 'm', /element 1 is byte 2; expected 0 or 1/);
  });

  it('decodes F64, I32, U8 and unaligned data sections', () => {
    const buf = new DataView(new ArrayBuffer(8 + 8 + 2));
    buf.setFloat64(0, Math.PI, true);
    buf.setInt32(8, -123456, true);
    buf.setInt32(12, 7, true);
    buf.setUint8(16, 200);
    buf.setUint8(17, 0);
    const header = {
      d: { dtype: 'F64', shape: [], data_offsets: [0, 8] },
      i: { dtype: 'I32', shape: [2], data_offsets: [8, 16] },
      u: { dtype: 'U8', shape: [2], data_offsets: [16, 18] },
    };
    // Pad the header to an odd length so the data section starts unaligned.
    let json = JSON.stringify(header);
    if (json.length % 2 === 0) json += ' ';
    const read = readSafetensors(rawFile(json, [...new Uint8Array(buf.buffer)]));
    expect([...read.get('d')!.data]).toEqual([Math.PI]);
    expect([...read.get('i')!.data]).toEqual([-123456, 7]);
    expect([...read.get('u')!.data]).toEqual([200, 0]);
  });

  it('reads from a subarray view (non-zero byteOffset)', () => {
    const file = writeSafetensors([{ name: 'x', dtype: 'F32', shape: [2], data: [1, 2] }]);
    const padded = new Uint8Array(file.length + 3);
    padded.set(file, 3);
    expect([...readSafetensors(padded.subarray(3)).get('x')!.data]).toEqual([1, 2]);
  });

  it('accepts an empty header and empty tensors at any boundary between tensors', () => {
    expect(readSafetensors(rawFile({})).size).toBe(0);
    const file = rawFile(
      {
        a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] },
        none: { dtype: 'F32', shape: [0, 3], data_offsets: [1, 1] },
        b: { dtype: 'U8', shape: [1], data_offsets: [1, 2] },
        last: { dtype: 'I64', shape: [0], data_offsets: [2, 2] },
      },
      [5, 6],
    );
    const read = readSafetensors(file);
    expect([...read.get('a')!.data, ...read.get('b')!.data]).toEqual([5, 6]);
    expect(read.get('none')!.shape).toEqual([0, 3]);
  });
});

describe('readSafetensors on malformed files', () => {
  const good = { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const eight = [0, 0, 128, 63, 0, 0, 0, 64];

  it('truncated before the length prefix', () => {
    expectBatchError(() => readSafetensors(new Uint8Array(5)), 'file', /truncated.*8 bytes/);
    expectBatchError(() => readSafetensors(new Uint8Array(0)), 'file', /truncated/);
  });

  it('header length beyond the file', () => {
    expectBatchError(() => readSafetensors(rawFile(good, eight, 10_000n)), 'file', /header length 10000 runs past/);
    expectBatchError(() => readSafetensors(rawFile(good, eight, 2n ** 64n - 1n)), 'file', /runs past/);
  });

  it('truncated data section', () => {
    const full = rawFile(good, eight);
    expectBatchError(() => readSafetensors(full.subarray(0, full.length - 1)), 'x', /out of range.*≤ 7/);
  });

  it('invalid JSON, invalid UTF-8, or a header that is not an object', () => {
    expectBatchError(() => readSafetensors(rawFile('{"x": ')), 'file', /not valid JSON/);
    expectBatchError(() => readSafetensors(rawFile('{"a":\n\n')), 'file', /not valid JSON/);
    expectBatchError(() => readSafetensors(rawFile('')), 'file', /not valid JSON/);
    const badUtf8 = concatFile(Uint8Array.from([0x7b, 0xff, 0x7d]), new Uint8Array(0), 3n);
    expectBatchError(() => readSafetensors(badUtf8), 'file', /UTF-8/);
    expectBatchError(() => readSafetensors(rawFile('[1, 2]')), 'file', /an array; expected a JSON object/);
    expectBatchError(() => readSafetensors(rawFile('null')), 'file', /null/);
  });

  it('bad __metadata__', () => {
    expectBatchError(() => readSafetensors(rawFile({ __metadata__: { a: 1 } })), '__metadata__', /expected a string/);
    expectBatchError(() => readSafetensors(rawFile({ __metadata__: 3 })), '__metadata__', /object/);
  });

  it('unknown dtype', () => {
    const file = rawFile({ w: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, [0]);
    expectBatchError(() => readSafetensors(file), 'w', /unsupported dtype "F8_E4M3"; expected one of .*BF16/);
    expectBatchError(() => readSafetensors(rawFile({ w: { shape: [], data_offsets: [0, 0] } })), 'w', /dtype missing/);
  });

  it('data_offsets out of range, malformed or reversed', () => {
    const cases: unknown[] = [[0, 16], [4, 2], [0], [-1, 7], [0.5, 8], 'x', null];
    for (const data_offsets of cases) {
      const file = rawFile({ x: { dtype: 'F32', shape: [2], data_offsets } }, eight);
      expectBatchError(() => readSafetensors(file), 'x', /data_offsets/);
    }
    expectBatchError(() => readSafetensors(rawFile({ x: { dtype: 'F32', shape: [2] } }, eight)), 'x', /data_offsets/);
  });

  it('overlapping tensors', () => {
    const file = rawFile(
      { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'U8', shape: [2], data_offsets: [6, 8] } },
      eight,
    );
    expectBatchError(() => readSafetensors(file), 'b', /overlap tensor "a"/);
  });

  it('a duplicate tensor name, also when spelled with escapes (JSON.parse would keep the last)', () => {
    const entry = '{"dtype":"U8","shape":[1],"data_offsets":[0,1]}';
    const twice = rawFile(`{"a":${entry},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, [1, 2]);
    expectBatchError(
      () => readSafetensors(twice),
      'a',
      /^a: is named twice in the header; expected each tensor name once/,
    );
    const escaped = rawFile(`{"a":${entry}, "\\u0061" :{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, [1, 2]);
    expectBatchError(() => readSafetensors(escaped), 'a', /named twice in the header \(as "a" and "\\u0061"\)/);
    const meta = rawFile(`{"__metadata__":{"k":"v"},"x":${entry},"__metadata__":{}}`, [1]);
    expectBatchError(() => readSafetensors(meta), '__metadata__', /named twice/);
  });

  it('equal names inside entries, metadata or string values are not duplicates', () => {
    const header =
      '{"__metadata__":{"a":"a","b":"{\\"a\\": 1, \\"a\\": 2}"},' +
      '"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":{"a":[{"a":1}],"a":2}},' +
      '"a\\"":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}';
    const read = readSafetensors(rawFile(header, [1, 2]));
    expect([...read.keys()]).toEqual(['a', 'a"']);
  });

  it('a hole between tensors, before the first or trailing bytes after the last (the reference rejects them)', () => {
    const a = { dtype: 'U8', shape: [1], data_offsets: [0, 1] };
    const hole = rawFile({ a, b: { dtype: 'U8', shape: [1], data_offsets: [3, 4] } }, [5, 0, 0, 6]);
    expectBatchError(
      () => readSafetensors(hole),
      'b',
      /data_offsets \[3, 4\] leave bytes \[1, 3\) unused after tensor "a" at \[0, 1\]; expected begin 1/,
    );
    const late = rawFile({ b: { dtype: 'U8', shape: [1], data_offsets: [2, 3] } }, [0, 0, 6]);
    expectBatchError(() => readSafetensors(late), 'b', /leave bytes \[0, 2\) unused at the start of the data section/);
    const trailing = rawFile({ a }, [5, 0, 0]);
    expectBatchError(
      () => readSafetensors(trailing),
      'file',
      /2 trailing bytes after the tensor data \(the tensors cover 1 bytes, the data section has 3\)/,
    );
    expectBatchError(() => readSafetensors(rawFile({}, [1])), 'file', /1 trailing bytes .*declares no tensor data/);
  });

  it('an empty tensor inside another one, and two tensors on the same bytes', () => {
    const inside = rawFile(
      { a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, e: { dtype: 'U8', shape: [0], data_offsets: [2, 2] } },
      [1, 2, 3, 4],
    );
    expectBatchError(() => readSafetensors(inside), 'e', /\[2, 2\] start inside tensor "a" at \[0, 4\]/);
    const same = rawFile(
      { a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] }, b: { dtype: 'U8', shape: [2], data_offsets: [0, 2] } },
      [1, 2],
    );
    expectBatchError(() => readSafetensors(same), 'b', /overlap tensor "a" at \[0, 2\]/);
  });

  it("a header over the reference reader's 100 MB bound is refused before decoding it", () => {
    const big = concatFile(new Uint8Array(100_000_001).fill(0x20), new Uint8Array(0), 100_000_001n);
    expectBatchError(
      () => readSafetensors(big),
      'file',
      /header length 100000001 is over the limit of 100000000 bytes/,
    );
  });

  it('sizes far beyond 2^53 are computed and printed exactly', () => {
    const file = rawFile({ x: { dtype: 'U8', shape: [2 ** 32, 2 ** 32], data_offsets: [0, 0] } });
    expectBatchError(() => readSafetensors(file), 'x', /span 0 bytes; expected 18446744073709551616 for U8/);
    const f32 = rawFile({ x: { dtype: 'F32', shape: [3, 2 ** 52, 5], data_offsets: [0, 0] } });
    expectBatchError(() => readSafetensors(f32), 'x', new RegExp(`expected ${3n * 2n ** 52n * 5n * 4n} for F32`));
  });

  it('a batch whose float64 values would pass the memory limit is refused before decoding', () => {
    const file = writeSafetensors([
      { name: 'm', dtype: 'U8', shape: [1000], data: new Uint8Array(1000) },
      { name: 'x', dtype: 'F32', shape: [24], data: new Float32Array(24) },
    ]);
    expect(readSafetensors(file, { maxDecodedBytes: 8 * 1024 }).size).toBe(2);
    expectBatchError(
      () => readSafetensors(file, { maxDecodedBytes: 8 * 1023 }),
      'file',
      /decoding needs 8192 bytes \(8\.0 KiB\) for 1024 values as float64, more than the 8184 bytes \(8\.0 KiB\) available/,
    );
  });

  it('data_offsets inconsistent with shape × dtype size', () => {
    const file = rawFile({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, eight);
    expectBatchError(() => readSafetensors(file), 'x', /span 8 bytes; expected 12 for F32 of shape \[3\]/);
    const f16 = rawFile({ y: { dtype: 'F16', shape: [2, 2], data_offsets: [0, 4] } }, eight);
    expectBatchError(() => readSafetensors(f16), 'y', /expected 8/);
  });

  it('non-integer or otherwise invalid shape', () => {
    for (const shape of [[1.5], [-1], ['2'], 3, null, [2 ** 60]]) {
      const file = rawFile({ x: { dtype: 'U8', shape, data_offsets: [0, 1] } }, [0]);
      expectBatchError(() => readSafetensors(file), 'x', /shape|span/);
    }
  });

  it('a header entry that is not an object', () => {
    expectBatchError(() => readSafetensors(rawFile({ x: [1, 2] })), 'x', /expected \{dtype, shape, data_offsets\}/);
  });

  it('never throws anything but a BatchError on corrupted or truncated files (property)', () => {
    const valid = writeSafetensors([
      { name: 'logp', dtype: 'F32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] },
      { name: 'ids', dtype: 'I32', shape: [2], data: [7, 8] },
      { name: 'mask', dtype: 'U8', shape: [6], data: [1, 1, 0, 1, 1, 1] },
    ]);
    const mutation = fc.record({
      cut: fc.nat({ max: valid.length }),
      flips: fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    });
    fc.assert(
      fc.property(mutation, ({ cut, flips }) => {
        const bytes = valid.slice();
        for (const [at, value] of flips) bytes[at] = value;
        try {
          readSafetensors(bytes.subarray(0, cut));
        } catch (e) {
          expect(e).toBeInstanceOf(BatchError);
          expect((e as Error).message).not.toContain('\n');
        }
      }),
      { numRuns: 500 },
    );
  });
});

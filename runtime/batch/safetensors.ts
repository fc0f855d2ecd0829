/**
 * The safetensors file format: reading any well-formed file into float64 tensors and writing the
 * F32/I32/U8 tensors Credo produces. Owns every check on the file's structure, so a malformed file
 * is always reported as a one-line BatchError naming the tensor (or 'file' for the header).
 *
 * Layout: 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { key: string } }`,
 * then the raw little-endian tensor bytes; data_offsets are relative to the end of the header.
 * As in the reference reader (the Rust `safetensors` crate), tensor names are unique and the
 * tensors' bytes tile the data section exactly: no holes, no overlaps, no trailing bytes.
 */
import { BatchError } from '../../core/batch/batch.js';

/** A tensor as stored in a file, its values converted to float64 (bools as 0/1, ints exact). */
export interface RawTensor {
  /** The file's dtype string, e.g. 'F32', 'BF16', 'I64'. */
  readonly dtype: string;
  readonly shape: number[];
  /** Row-major values, length = product of shape. */
  readonly data: Float64Array;
}

/** Limits a caller sets on reading (the CLI: the machine's memory). */
export interface ReadOptions {
  /** The most bytes the decoded float64 values may take; the file is refused before decoding beyond it. */
  readonly maxDecodedBytes?: number;
}

/** Dtypes the writer can produce. */
export type WritableDtype = 'F64' | 'F32' | 'I32' | 'U8';

/** One tensor to write with {@link writeSafetensors}. */
export interface TensorToWrite {
  readonly name: string;
  readonly dtype: WritableDtype;
  readonly shape: readonly number[];
  /** Row-major values, length = product of shape. */
  readonly data: ArrayLike<number>;
}

/** Bytes per element of every dtype the reader accepts. */
const DTYPE_SIZE: Readonly<Record<string, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  U8: 1,
  BOOL: 1,
};

/** The dtypes {@link readSafetensors} accepts, in the order error messages list them. */
export const READABLE_DTYPES: readonly string[] = Object.keys(DTYPE_SIZE);

const WRITABLE_DTYPES: readonly string[] = ['F64', 'F32', 'I32', 'U8'];
const METADATA_KEY = '__metadata__';
const TWO_POW_53 = 2n ** 53n;
/** The reference reader's bound on the JSON header (beyond it JSON.parse alone could exhaust memory). */
export const MAX_HEADER_BYTES = 100_000_000;

/** A header entry after validation; offsets are relative to the start of the data section. */
interface Entry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: number[];
  readonly begin: number;
  readonly end: number;
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/**
 * Parses a safetensors file. Tensors come back in header order with values converted to float64
 * (F16/BF16 decoded exactly, I64 exactly when |v| ≤ 2^53, BOOL as 0/1).
 * @throws BatchError naming the tensor (or 'file') for any malformed input; never anything else.
 */
export function readSafetensors(bytes: Uint8Array, opts: ReadOptions = {}): Map<string, RawTensor> {
  const { header, dataStart } = readHeader(bytes);
  const dataLength = bytes.length - dataStart;
  const entries = parseEntries(header, dataLength);
  checkTiling(entries, dataLength);
  checkDecodedSize(entries, opts.maxDecodedBytes ?? Infinity);
  const view = new DataView(bytes.buffer, bytes.byteOffset + dataStart, dataLength);
  const out = new Map<string, RawTensor>();
  for (const entry of entries) {
    const data = decodeFloats(entry, bytes.subarray(dataStart)) ?? decodeEntry(entry, view);
    out.set(entry.name, { dtype: entry.dtype, shape: entry.shape, data });
  }
  return out;
}

/** Reads the length prefix and the JSON header; returns the parsed object and where data starts. */
function readHeader(bytes: Uint8Array): { header: Record<string, unknown>; dataStart: number } {
  if (bytes.length < 8) {
    throw new BatchError('file', `truncated: expected at least 8 bytes (the header length), got ${bytes.length}`);
  }
  const declared = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  const available = bytes.length - 8;
  if (declared > BigInt(available)) {
    throw new BatchError(
      'file',
      `header length ${declared} runs past the end of the file (${available} bytes follow the length); expected a complete safetensors file`,
    );
  }
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    throw new BatchError(
      'file',
      `header length ${declared} is over the limit of ${MAX_HEADER_BYTES} bytes (that of the reference reader); expected a header of tensor entries, not data`,
    );
  }
  const length = Number(declared);
  const text = decodeUtf8(bytes.subarray(8, 8 + length));
  const header = parseJson(text);
  if (!isPlainObject(header)) {
    throw new BatchError(
      'file',
      `header is ${describeJsonType(header)}; expected a JSON object mapping tensor names to entries`,
    );
  }
  checkUniqueNames(text);
  return { header, dataStart: 8 + length };
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new BatchError('file', 'header is not valid UTF-8; expected UTF-8 JSON');
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const detail = oneLine(e instanceof Error ? e.message : String(e), 120);
    throw new BatchError('file', `header is not valid JSON (${detail}); expected a JSON object`);
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;

/**
 * JSON.parse silently keeps the last of two equal keys, so a duplicate tensor name is found in the
 * header text: a scan of the top-level object's keys (`text` is known to be a valid JSON object),
 * each decoded by JSON.parse so that `"a"` and `"\u0061"` are the same name.
 */
function checkUniqueNames(text: string): void {
  const seen = new Map<string, string>();
  let depth = 0;
  let atKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (depth === 1 && atKey) {
        const spelling = text.slice(i, end + 1);
        const name = JSON.parse(spelling) as string;
        const earlier = seen.get(name);
        if (earlier !== undefined) {
          const as = earlier === spelling ? '' : ` (as ${oneLine(earlier, 40)} and ${oneLine(spelling, 40)})`;
          throw new BatchError(
            name,
            `is named twice in the header${as}; expected each tensor name once (a JSON reader would silently keep only the last entry)`,
          );
        }
        seen.set(name, spelling);
        atKey = false;
      }
      i = end;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      atKey = depth === 1;
    } else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === COMMA && depth === 1) atKey = true;
  }
}

/** Index of the quote closing the JSON string that opens at `start`. */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH) i += 2;
    else if (c === QUOTE) return i;
    else i++;
  }
  return text.length - 1;
}

/** Validates every header entry against the data section's length. */
function parseEntries(header: Record<string, unknown>, dataLength: number): Entry[] {
  const entries: Entry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) checkMetadata(value);
    else entries.push(parseEntry(name, value, dataLength));
  }
  return entries;
}

function checkMetadata(value: unknown): void {
  if (!isPlainObject(value)) {
    throw new BatchError(METADATA_KEY, `is ${describeJsonType(value)}; expected an object of string values`);
  }
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') {
      throw new BatchError(METADATA_KEY, `key ${JSON.stringify(key)} is ${describeJsonType(v)}; expected a string`);
    }
  }
}

function parseEntry(name: string, value: unknown, dataLength: number): Entry {
  if (!isPlainObject(value)) {
    throw new BatchError(name, `header entry is ${describeJsonType(value)}; expected {dtype, shape, data_offsets}`);
  }
  const dtype = parseDtype(name, value.dtype);
  const shape = parseShape(name, value.shape);
  const [begin, end] = parseOffsets(name, value.data_offsets, dataLength);
  // exact: a product of shape dimensions can pass 2^53 and print rounded
  const expected = shape.reduce((a, b) => a * BigInt(b), 1n) * BigInt(DTYPE_SIZE[dtype]);
  if (BigInt(end - begin) !== expected) {
    throw new BatchError(
      name,
      `data_offsets [${begin}, ${end}] span ${end - begin} bytes; expected ${expected} for ${dtype} of shape ${formatShape(shape)}`,
    );
  }
  return { name, dtype, shape, begin, end };
}

function parseDtype(name: string, dtype: unknown): string {
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_SIZE, dtype)) {
    const got = typeof dtype === 'string' ? `"${oneLine(dtype, 40)}"` : describeJsonType(dtype);
    throw new BatchError(name, `unsupported dtype ${got}; expected one of ${READABLE_DTYPES.join(', ')}`);
  }
  return dtype;
}

function parseShape(name: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
    throw new BatchError(
      name,
      `shape ${oneLine(safeStringify(shape), 60)} is invalid; expected an array of non-negative integers`,
    );
  }
  return shape.slice();
}

function parseOffsets(name: string, offsets: unknown, dataLength: number): [number, number] {
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
    throw new BatchError(
      name,
      `data_offsets ${oneLine(safeStringify(offsets), 60)} are invalid; expected [begin, end] with non-negative integers`,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > dataLength) {
    throw new BatchError(
      name,
      `data_offsets [${begin}, ${end}] out of range; expected begin ≤ end ≤ ${dataLength} (the data section's length)`,
    );
  }
  return [begin, end];
}

/**
 * The tensors' bytes must tile the data section exactly, as the reference reader requires: sorted
 * by offset, the first starts at 0, each where the previous one ends, and the last ends the file.
 * Bytes no tensor owns (a hole, a trailing tail) mean the file was not written as its header says.
 */
function checkTiling(entries: readonly Entry[], dataLength: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let prev: Entry | null = null;
  for (const cur of sorted) {
    const range = `data_offsets [${cur.begin}, ${cur.end}]`;
    if (prev !== null && cur.begin < covered) {
      const how = cur.begin === cur.end ? 'start inside' : 'overlap';
      throw new BatchError(
        cur.name,
        `${range} ${how} tensor "${prev.name}" at [${prev.begin}, ${prev.end}]; expected disjoint byte ranges, each tensor starting where the previous one ends (${covered})`,
      );
    }
    if (cur.begin > covered) {
      const after =
        prev === null
          ? 'at the start of the data section'
          : `after tensor "${prev.name}" at [${prev.begin}, ${prev.end}]`;
      throw new BatchError(
        cur.name,
        `${range} leave bytes [${covered}, ${cur.begin}) unused ${after}; expected begin ${covered}, so that the tensors cover the data section without holes`,
      );
    }
    covered = cur.end;
    prev = cur;
  }
  if (covered < dataLength) {
    const what = prev === null ? 'the header declares no tensor data' : `the tensors cover ${covered} bytes`;
    throw new BatchError(
      'file',
      `${dataLength - covered} trailing bytes after the tensor data (${what}, the data section has ${dataLength}); expected the file to end where the last tensor ends`,
    );
  }
}

/**
 * Refuses before allocating when the float64 values would take more than `limit` bytes; every
 * element takes 8 bytes once decoded (a U8 file grows eightfold).
 */
function checkDecodedSize(entries: readonly Entry[], limit: number): void {
  let count = 0;
  for (const e of entries) count += (e.end - e.begin) / DTYPE_SIZE[e.dtype];
  const bytes = 8 * count;
  if (bytes > limit) {
    throw new BatchError(
      'file',
      `decoding needs ${formatByteCount(bytes)} for ${count} values as float64, more than the ${formatByteCount(limit)} available; split the batch into smaller files`,
    );
  }
}

/**
 * A float64 array for a tensor's values. Past what a typed array can hold (2^32 elements in Node 20)
 * or past what the runtime can allocate, a BatchError naming the tensor rather than a RangeError.
 */
function allocValues(entry: Entry, count: number): Float64Array {
  try {
    return new Float64Array(count);
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    throw new BatchError(
      entry.name,
      `${count} values need ${formatByteCount(8 * count)} as float64, which this runtime cannot allocate (${oneLine(detail, 60)}); split the batch into smaller files`,
    );
  }
}

/** Decodes one tensor's bytes into float64 values. */
function decodeEntry(entry: Entry, view: DataView): Float64Array {
  const size = DTYPE_SIZE[entry.dtype];
  const count = (entry.end - entry.begin) / size;
  const out = allocValues(entry, count);
  const read = elementReader(entry, view);
  for (let i = 0; i < count; i++) out[i] = read(entry.begin + i * size, i);
  return out;
}

/** Whether this machine is little-endian like safetensors, so typed-array views read a file's values as they are. */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** The number each 16-bit pattern stands for, per dtype, built on first use. */
const halfTables: Partial<Record<'F16' | 'BF16', Float64Array>> = {};

function halfTable(dtype: 'F16' | 'BF16'): Float64Array {
  let table = halfTables[dtype];
  if (table === undefined) {
    table = new Float64Array(0x10000);
    const decode = dtype === 'F16' ? f16ToNumber : bf16ToNumber;
    for (let bits = 0; bits < 0x10000; bits++) table[bits] = decode(bits);
    halfTables[dtype] = table;
  }
  return table;
}

/**
 * The fast path for float tensors (a `token x vocab` tensor can hold 10^8 values): typed-array
 * loops instead of a DataView call per element, with the same results as {@link elementReader}.
 * F16/BF16 go through a 65536-entry table. `data` is the file's data section. Null for other dtypes.
 */
function decodeFloats(entry: Entry, data: Uint8Array): Float64Array | null {
  const { dtype, begin, end } = entry;
  if (dtype === 'F16' || dtype === 'BF16') {
    const table = halfTable(dtype);
    const count = (end - begin) / 2;
    const out = allocValues(entry, count);
    if (LITTLE_ENDIAN && (data.byteOffset + begin) % 2 === 0) {
      const words = new Uint16Array(data.buffer, data.byteOffset + begin, count);
      for (let i = 0; i < count; i++) out[i] = table[words[i]];
    } else {
      for (let i = 0, at = begin; i < count; i++, at += 2) out[i] = table[data[at] | (data[at + 1] << 8)];
    }
    return out;
  }
  if ((dtype === 'F32' || dtype === 'F64') && LITTLE_ENDIAN) {
    const size = DTYPE_SIZE[dtype];
    // a typed-array view needs an aligned offset: copy the bytes when the file's are not (into a
    // new Uint8Array: a Node Buffer's slice() would be a view, as unaligned as the file)
    const aligned = (data.byteOffset + begin) % size === 0;
    const bytes = aligned ? data.subarray(begin, end) : new Uint8Array(data.subarray(begin, end));
    const count = (end - begin) / size;
    const out = allocValues(entry, count);
    if (dtype === 'F32') out.set(new Float32Array(bytes.buffer, bytes.byteOffset, count));
    else out.set(new Float64Array(bytes.buffer, bytes.byteOffset, count));
    return out;
  }
  return null;
}

/** Returns a function reading element `index` at byte offset `at` of the data section. */
function elementReader(entry: Entry, view: DataView): (at: number, index: number) => number {
  switch (entry.dtype) {
    case 'F64':
      return (at) => view.getFloat64(at, true);
    case 'F32':
      return (at) => view.getFloat32(at, true);
    case 'F16':
      return (at) => f16ToNumber(view.getUint16(at, true));
    case 'BF16':
      return (at) => bf16ToNumber(view.getUint16(at, true));
    case 'I64':
      return (at, index) => i64ToNumber(entry.name, view.getBigInt64(at, true), index);
    case 'I32':
      return (at) => view.getInt32(at, true);
    case 'U8':
      return (at) => view.getUint8(at);
    default:
      return (at, index) => boolToNumber(entry.name, view.getUint8(at), index);
  }
}

/** Exact IEEE 754 binary16 → number. */
export function f16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

const bf16Scratch = new DataView(new ArrayBuffer(4));

/** Exact bfloat16 (the top 16 bits of a binary32) → number. */
export function bf16ToNumber(bits: number): number {
  bf16Scratch.setUint32(0, ((bits & 0xffff) << 16) >>> 0);
  return bf16Scratch.getFloat32(0);
}

function i64ToNumber(name: string, value: bigint, index: number): number {
  if (value > TWO_POW_53 || value < -TWO_POW_53) {
    throw new BatchError(name, `element ${index} is ${value}, beyond exact float64 range; expected |value| ≤ 2^53`);
  }
  return Number(value);
}

function boolToNumber(name: string, byte: number, index: number): number {
  if (byte > 1) throw new BatchError(name, `BOOL element ${index} is byte ${byte}; expected 0 or 1`);
  return byte;
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/**
 * Serializes tensors to safetensors bytes: tensors sorted by name, data packed contiguously in
 * that order, and the header padded with spaces to a multiple of 8 bytes (as the reference
 * implementation does), so the data section starts 8-byte aligned.
 * @throws BatchError naming the tensor for a bad name, dtype, shape, length or value.
 */
export function writeSafetensors(
  tensors: readonly TensorToWrite[],
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const sorted = checkWritable(tensors);
  const entries: string[] = [];
  if (metadata !== undefined) entries.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const t of sorted) {
    const end = offset + t.data.length * DTYPE_SIZE[t.dtype];
    const info = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, end] };
    entries.push(`${JSON.stringify(t.name)}:${JSON.stringify(info)}`);
    offset = end;
  }
  const header = paddedHeader(`{${entries.join(',')}}`);
  const bytes = new Uint8Array(8 + header.length + offset);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt(header.length), true);
  bytes.set(header, 8);
  let at = 8 + header.length;
  for (const t of sorted) at = encodeTensor(t, view, at);
  return bytes;
}

/** Validates names, dtypes, shapes and lengths; returns the tensors sorted by name. */
function checkWritable(tensors: readonly TensorToWrite[]): TensorToWrite[] {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (typeof t.name !== 'string' || t.name === '' || t.name === METADATA_KEY) {
      throw new BatchError(String(t.name), 'invalid tensor name; expected a non-empty string other than __metadata__');
    }
    if (seen.has(t.name)) throw new BatchError(t.name, 'given twice; expected unique tensor names');
    seen.add(t.name);
    if (!WRITABLE_DTYPES.includes(t.dtype)) {
      throw new BatchError(
        t.name,
        `cannot write dtype ${String(t.dtype)}; expected one of ${WRITABLE_DTYPES.join(', ')}`,
      );
    }
    if (!Array.isArray(t.shape) || !t.shape.every(isNonNegativeInteger)) {
      throw new BatchError(
        t.name,
        `shape ${safeStringify(t.shape)} is invalid; expected an array of non-negative integers`,
      );
    }
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== count) {
      throw new BatchError(t.name, `has ${t.data.length} values; expected ${count} for shape ${formatShape(t.shape)}`);
    }
  }
  return [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** UTF-8 encodes the header JSON and pads it with spaces to a multiple of 8 bytes. */
function paddedHeader(json: string): Uint8Array {
  const raw = new TextEncoder().encode(json);
  const padded = new Uint8Array(Math.ceil(raw.length / 8) * 8).fill(0x20);
  padded.set(raw);
  return padded;
}

/** Writes one tensor's values at byte `at`; returns the byte after them. */
function encodeTensor(t: TensorToWrite, view: DataView, at: number): number {
  if (t.dtype === 'F32' && LITTLE_ENDIAN && (view.byteOffset + at) % 4 === 0) {
    // one typed-array copy, rounding as setFloat32 does: a `token x vocab` gradient can hold 10^8 values
    new Float32Array(view.buffer, view.byteOffset + at, t.data.length).set(t.data);
    return at + 4 * t.data.length;
  }
  for (let i = 0; i < t.data.length; i++) {
    const v = t.data[i];
    if (t.dtype === 'F64') {
      view.setFloat64(at, v, true);
      at += 8;
    } else if (t.dtype === 'F32') {
      view.setFloat32(at, v, true);
      at += 4;
    } else if (t.dtype === 'I32') {
      checkIntegerValue(t.name, v, i, -(2 ** 31), 2 ** 31 - 1);
      view.setInt32(at, v, true);
      at += 4;
    } else {
      checkIntegerValue(t.name, v, i, 0, 255);
      view.setUint8(at, v);
      at += 1;
    }
  }
  return at;
}

function checkIntegerValue(name: string, v: number, index: number, lo: number, hi: number): void {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new BatchError(name, `element ${index} is ${v}; expected an integer in [${lo}, ${hi}]`);
  }
}

// ---------------------------------------------------------------------------------------------
// Small shared helpers
// ---------------------------------------------------------------------------------------------

/** Formats a shape the way messages show it: `[4, 12]`, `[]` for a scalar. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** A byte count for messages, exact and readable: `4294967296 bytes (4.0 GiB)`. */
export function formatByteCount(bytes: number): string {
  const units: [number, string][] = [
    [2 ** 30, 'GiB'],
    [2 ** 20, 'MiB'],
    [2 ** 10, 'KiB'],
  ];
  const unit = units.find(([size]) => bytes >= size);
  return unit === undefined ? `${bytes} bytes` : `${bytes} bytes (${(bytes / unit[0]).toFixed(1)} ${unit[1]})`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonNegativeInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function describeJsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v === undefined) return 'missing';
  return `a ${typeof v}`;
}

function safeStringify(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** Collapses whitespace (so messages stay on one line) and truncates to `max` characters. */
function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

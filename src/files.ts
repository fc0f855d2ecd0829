/**
 * The user's files, read and written without surprises. Reading (readInputFile): only a regular
 * file of bounded size is read — a directory, FIFO, device or socket is refused from its `stat`,
 * before it is opened, so `/dev/zero` or a pipe never hangs or fills memory. Writing
 * (writeFileSafely): an output is written to a temporary file beside it and renamed over the
 * target, so a failure (a full disk, a missing folder) never leaves a half-written file; a target
 * that is one of the command's inputs (also through a link) or not a regular file (a directory,
 * /dev/full) is refused before anything is written.
 */
import { constants as bufferConstants } from 'node:buffer';
import {
  closeSync,
  constants as fsConstants,
  existsSync,
  fstatSync,
  openSync,
  readSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** A file the command cannot read or must not write: a one-line message, exit 1. */
export class FileError extends Error {}

/** What an input file is, for messages and its size limit. */
export interface InputKind {
  /** How messages name it: `batch file`. */
  readonly noun: string;
  /** The option that names it (`--batch`), for the message on an empty path; none for an argument. */
  readonly flag?: string;
  /** What to give instead, appended to messages about the wrong kind of file. */
  readonly hint: string;
  readonly maxBytes: number;
  /** Why maxBytes is what it is, for the message. */
  readonly limit: string;
}

/**
 * A batch file is read whole into one buffer, so its bound is the largest buffer Node can hold
 * (4 GiB in Node 20), at most 2^32 bytes: the loader's element counts stay within what one typed
 * array can index.
 */
export const BATCH_FILE: InputKind = {
  noun: 'batch file',
  flag: '--batch',
  hint: 'give the path of a .safetensors file',
  maxBytes: Math.min(bufferConstants.MAX_LENGTH, 2 ** 32),
  limit: 'the largest batch file Credo reads into memory',
};

/** Program sources are small: 16 MiB is far beyond any hand-written or generated objective. */
export const PROGRAM_FILE: InputKind = {
  noun: 'program file',
  hint: 'give a .credo file or a stdlib objective name (`credo list` shows them)',
  maxBytes: 16 * 2 ** 20,
  limit: 'the limit on program sources',
};

/**
 * Reads a regular file of at most `kind.maxBytes` bytes.
 * @throws FileError for an empty path, a missing or unreadable file, one that is not a regular
 * file (checked before it is opened, and again on the open file), or one over the limit.
 */
export function readInputFile(path: string, kind: InputKind): Buffer {
  if (path.trim() === '') {
    throw new FileError(
      kind.flag !== undefined ? `${kind.flag} needs a file name` : `the ${kind.noun} path is empty; ${kind.hint}`,
    );
  }
  checkReadable(path, statOrThrow(path, kind), kind);
  let fd: number;
  try {
    // O_NONBLOCK: should a FIFO replace the file after the stat, opening it must not wait for a writer
    fd = openSync(path, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw new FileError(`cannot read ${kind.noun} \`${path}\`: ${reason(e)}`);
  }
  try {
    const st = fstatSync(fd);
    checkReadable(path, st, kind);
    return readBounded(fd, st.size, path, kind);
  } finally {
    closeSync(fd);
  }
}

function statOrThrow(path: string, kind: InputKind): Stats {
  try {
    return statSync(path);
  } catch (e) {
    throw new FileError(`cannot read ${kind.noun} \`${path}\`: ${reason(e)}`);
  }
}

function checkReadable(path: string, st: Stats, kind: InputKind): void {
  if (!st.isFile()) {
    const { what, why } = fileType(st);
    throw new FileError(`\`${path}\` is ${what}, not a ${kind.noun}${why ? ` (${why})` : ''}; ${kind.hint}`);
  }
  if (st.size > kind.maxBytes) throw tooLarge(path, st.size, kind);
}

function tooLarge(path: string, size: number | string, kind: InputKind): FileError {
  const got = typeof size === 'number' ? formatBytes(size) : size;
  return new FileError(
    `${kind.noun} \`${path}\` is ${got}, over ${kind.limit} (${formatBytes(kind.maxBytes)}); split it into smaller files`,
  );
}

/** What a non-regular file is, and why it is not read, for the message. */
function fileType(st: Stats): { what: string; why?: string } {
  if (st.isDirectory()) return { what: 'a directory' };
  if (st.isFIFO())
    return { what: 'a named pipe (FIFO)', why: 'reading it could wait forever; save the data to a file' };
  if (st.isCharacterDevice()) return { what: 'a character device', why: 'it can stream without end' };
  if (st.isBlockDevice()) return { what: 'a block device' };
  if (st.isSocket()) return { what: 'a socket' };
  return { what: 'a special file' };
}

/**
 * Reads until end of file, never more than maxBytes: the size from fstat is only where to start
 * (a file in /proc says 0, a file being written grows).
 */
function readBounded(fd: number, statSize: number, path: string, kind: InputKind): Buffer {
  let buffer = Buffer.allocUnsafe(Math.min(statSize, kind.maxBytes));
  let length = 0;
  for (;;) {
    if (length === buffer.length) {
      // full: one more byte tells the end of the file from a file that grew (or said size 0)
      const probe = Buffer.allocUnsafe(1);
      if (readChunk(fd, probe, 0, 1, path, kind) === 0) break;
      if (length === kind.maxBytes) throw tooLarge(path, `more than ${formatBytes(length)}`, kind);
      const grown = Buffer.allocUnsafe(Math.min(Math.max(2 * length, 2 ** 16), kind.maxBytes));
      buffer.copy(grown, 0, 0, length);
      grown[length++] = probe[0];
      buffer = grown;
      continue;
    }
    const got = readChunk(fd, buffer, length, Math.min(buffer.length - length, 2 ** 30), path, kind);
    if (got === 0) break;
    length += got;
  }
  return buffer.subarray(0, length);
}

function readChunk(fd: number, into: Buffer, at: number, count: number, path: string, kind: InputKind): number {
  try {
    return readSync(fd, into, at, count, null);
  } catch (e) {
    throw new FileError(`cannot read ${kind.noun} \`${path}\`: ${reason(e)}`);
  }
}

/** The reason an fs call failed, in words (Node's message repeats the path and the syscall). */
function reason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a component of the path is not a folder';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    case 'ENAMETOOLONG':
      return 'the name is too long';
    case 'EISDIR':
      return 'it is a directory';
    case 'EAGAIN':
      return 'it has no data to read now (not a regular file?)';
    default:
      return (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ');
  }
}

/** A byte count for messages, exact and readable: `17179869184 bytes (16.0 GiB)`. */
function formatBytes(bytes: number): string {
  const unit = (
    [
      [2 ** 30, 'GiB'],
      [2 ** 20, 'MiB'],
      [2 ** 10, 'KiB'],
    ] as const
  ).find(([size]) => bytes >= size);
  return unit === undefined ? `${bytes} bytes` : `${bytes} bytes (${(bytes / unit[0]).toFixed(1)} ${unit[1]})`;
}

export interface WriteOptions {
  /** Files the command reads (the batch): the output must not be one of them. */
  readonly inputs?: readonly string[];
  /** How the output is named in messages (`--out`). */
  readonly flag?: string;
}

/** @throws FileError, with the target unchanged. */
export function writeFileSafely(path: string, bytes: Uint8Array, opts: WriteOptions = {}): void {
  const flag = opts.flag ?? '--out';
  if (path.trim() === '') throw new FileError(`${flag} needs a file name`);
  if (existsSync(path)) {
    const st = statSync(path);
    if (!st.isFile()) throw new FileError(`${flag} \`${path}\` is not a regular file; choose a file path`);
    for (const input of opts.inputs ?? []) {
      if (existsSync(input) && sameFile(path, input))
        throw new FileError(
          `${flag} \`${path}\` is the input \`${input}\`: writing there would destroy it; choose another path`,
        );
    }
  }
  // through a link: replace the file it points to, not the link
  const target = existsSync(path) ? realpathSync(path) : path;
  const dir = dirname(target);
  if (!existsSync(dir)) throw new FileError(`cannot write \`${path}\`: the folder \`${dir}\` does not exist`);
  const tmp = join(dir, `.${basename(target)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  try {
    writeFileSync(tmp, bytes, { flag: 'wx' });
    renameSync(tmp, target);
  } catch (e) {
    try {
      if (existsSync(tmp)) unlinkSync(tmp);
    } catch {
      // the temporary file could not be removed: the message below is what matters
    }
    throw new FileError(`cannot write \`${path}\`: ${(e as Error).message}`);
  }
}

function sameFile(a: string, b: string): boolean {
  const [sa, sb] = [statSync(a), statSync(b)];
  return (sa.dev === sb.dev && sa.ino === sb.ino) || realpathSync(a) === realpathSync(b);
}

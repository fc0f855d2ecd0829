/**
 * Writing the user's files without destroying anything: an output is written to a temporary file
 * beside it and renamed over the target, so a failure (a full disk, a missing folder) never leaves a
 * half-written file; a target that is one of the command's inputs (also through a link) or not a
 * regular file (a directory, /dev/full) is refused before anything is written.
 */
import { existsSync, realpathSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** A file the command cannot or must not write: a one-line message, exit 1. */
export class FileError extends Error {}

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

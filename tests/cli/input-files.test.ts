/**
 * Bounded, strict reading of input files (src/files.ts readInputFile): a directory, FIFO or device
 * given as the batch or the program is a one-line exit-1 error from its stat, never a hang or an
 * endless read; an empty path, a missing file and a file over the size limit say so; a malformed
 * batch (duplicate names, holes, trailing bytes) is a one-line batch error naming the tensor.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, existsSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { syntheticBatch } from '../../runtime/batch/synthetic.js';
import { batchToSafetensors } from '../../src/equiv/counterexample.js';
import { compile } from '../../src/objective.js';
import { BATCH_FILE, FileError, PROGRAM_FILE, readInputFile, type InputKind } from '../../src/files.js';

async function credo(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

/** Exit 1 with exactly one line on stderr matching `message`. */
function expectOneLineError(r: { code: number; err: string }, message: RegExp): void {
  expect(r.code).toBe(1);
  expect(r.err.trim()).toMatch(message);
  expect(r.err.trim().split('\n')).toHaveLength(1);
}

const dir = mkdtempSync(join(tmpdir(), 'credo-inputs-'));
const folder = join(dir, 'a-folder');
mkdirSync(folder);

const fifo = join(dir, 'pipe');
let fifoSkip: string | null = null;
try {
  execFileSync('mkfifo', [fifo]);
} catch (e) {
  fifoSkip = `mkfifo is unavailable here (${(e as Error).message.split('\n')[0]})`;
}

const hasDevZero = existsSync('/dev/zero');
const zeroLink = join(dir, 'zero.credo');
if (hasDevZero) symlinkSync('/dev/zero', zeroLink);

const dapo = compile('dapo');
const good = batchToSafetensors(
  syntheticBatch({ seed: 3, tokens: 64, groupSize: 4, inputs: dapo.inputs, maskName: 'mask' }),
);

describe('a file that is not a regular file, as the batch or the program', () => {
  it.skipIf(!hasDevZero)('/dev/zero as the batch: refused from its stat, not read forever', async () => {
    const r = await credo('run', 'dapo', '--backend', 'cpu', '--batch', '/dev/zero');
    expectOneLineError(
      r,
      /^error: `\/dev\/zero` is a character device, not a batch file \(it can stream without end\)/,
    );
  });

  it.skipIf(!hasDevZero)('/dev/zero as the program, directly and through a link', async () => {
    expectOneLineError(await credo('check', '/dev/zero'), /`\/dev\/zero` is a character device, not a program file/);
    expectOneLineError(await credo('run', zeroLink), /is a character device, not a program file/);
  });

  it('a directory as the batch and as the program', async () => {
    const batch = await credo('run', 'dapo', '--backend', 'cpu', '--batch', folder);
    expectOneLineError(batch, /is a directory, not a batch file; give the path of a \.safetensors file/);
    for (const command of ['check', 'run', 'plan']) {
      const program = await credo(command, folder);
      expectOneLineError(program, /is a directory, not a program file; give a \.credo file or a stdlib objective name/);
    }
  });

  it.skipIf(fifoSkip !== null)('a FIFO as the batch and as the program: refused before it is opened', async () => {
    // opening the FIFO for reading would wait for a writer: a hang shows as this test's time-out
    expectOneLineError(
      await credo('run', 'dapo', '--backend', 'cpu', '--batch', fifo),
      /is a named pipe \(FIFO\), not a batch file \(reading it could wait forever/,
    );
    expectOneLineError(await credo('check', fifo), /is a named pipe \(FIFO\), not a program file/);
  });
  if (fifoSkip !== null) it.skip(`FIFO cases: ${fifoSkip}`, () => {});

  it('--json reports it as a file error on stdout', async () => {
    const r = await credo('run', 'dapo', '--backend', 'cpu', '--json', '--batch', folder);
    expect(r.code).toBe(1);
    const error = JSON.parse(r.out).error;
    expect(error.kind).toBe('file');
    expect(error.message).toMatch(/is a directory, not a batch file/);
  });
});

describe('empty, missing and oversized input paths', () => {
  it('an empty --batch is an error, not a silent synthetic batch', async () => {
    expectOneLineError(
      await credo('run', 'dapo', '--backend', 'cpu', '--batch', ''),
      /^error: --batch needs a file name$/,
    );
  });

  it('an empty program path', async () => {
    expectOneLineError(await credo('check', ''), /the program file path is empty; give a \.credo file or a stdlib/);
    expectOneLineError(await credo('run', '  '), /the program file path is empty/);
  });

  it('a missing batch file says so', async () => {
    const r = await credo('run', 'dapo', '--backend', 'cpu', '--batch', join(dir, 'nope.safetensors'));
    expectOneLineError(r, /cannot read batch file `.*nope\.safetensors`: no such file$/);
  });

  it.skipIf(process.getuid?.() === 0)('an unreadable batch file says permission denied', async () => {
    const locked = join(dir, 'locked.safetensors');
    writeFileSync(locked, good);
    chmodSync(locked, 0o000);
    const r = await credo('run', 'dapo', '--backend', 'cpu', '--batch', locked);
    expectOneLineError(r, /cannot read batch file `.*`: permission denied/);
  });

  it('a program source over 16 MiB is refused before it is read', async () => {
    const big = join(dir, 'big.credo');
    writeFileSync(big, Buffer.alloc(16 * 2 ** 20 + 1, 0x20));
    const r = await credo('check', big);
    expectOneLineError(
      r,
      /program file `.*big\.credo` is 16777217 bytes \(16\.0 MiB\), over the limit on program sources \(16777216 bytes \(16\.0 MiB\)\)/,
    );
  });

  it('a program source of exactly the limit is read (and then checked)', async () => {
    const edge = join(dir, 'edge.credo');
    writeFileSync(edge, Buffer.alloc(16 * 2 ** 20, 0x20));
    const r = await credo('check', edge);
    expect(r.code).toBe(1);
    expect(r.err).not.toMatch(/over the limit/);
  });
});

describe('readInputFile', () => {
  const tiny: InputKind = { noun: 'test file', hint: 'give another', maxBytes: 16, limit: 'the test limit' };

  it('reads a regular file whole, and an empty one as no bytes', () => {
    const path = join(dir, 'sixteen');
    writeFileSync(path, 'abcdefghijklmnop');
    expect(readInputFile(path, tiny).toString()).toBe('abcdefghijklmnop');
    writeFileSync(join(dir, 'empty'), '');
    expect(readInputFile(join(dir, 'empty'), tiny).length).toBe(0);
  });

  it('refuses a file one byte over the limit, with both sizes exact', () => {
    const path = join(dir, 'seventeen');
    writeFileSync(path, 'abcdefghijklmnopq');
    expect(() => readInputFile(path, tiny)).toThrow(
      new FileError(`test file \`${path}\` is 17 bytes, over the test limit (16 bytes); split it into smaller files`),
    );
  });

  it.skipIf(!existsSync('/proc/self/status'))(
    'reads to the end of a file whose stat says 0 bytes, still bounded',
    () => {
      expect(readInputFile('/proc/self/status', BATCH_FILE).toString()).toMatch(/^Name:/);
      expect(() => readInputFile('/proc/self/status', tiny)).toThrow(/is more than 16 bytes, over the test limit/);
    },
  );

  it('states the limits: 16 MiB for programs, 4 GiB at most for batches', () => {
    expect(PROGRAM_FILE.maxBytes).toBe(16 * 2 ** 20);
    expect(BATCH_FILE.maxBytes).toBeLessThanOrEqual(2 ** 32);
    expect(BATCH_FILE.maxBytes).toBeGreaterThanOrEqual(2 ** 31);
  });
});

describe('a malformed batch file through the CLI', () => {
  /** The good batch with its header text edited (data offsets count from the header's end: they stay valid). */
  function withHeader(edit: (header: string) => string, tail: Uint8Array = new Uint8Array(0)): string {
    const n = Number(new DataView(good.buffer, good.byteOffset).getBigUint64(0, true));
    const header = new TextEncoder().encode(edit(new TextDecoder().decode(good.subarray(8, 8 + n))));
    const data = good.subarray(8 + n);
    const bytes = new Uint8Array(8 + header.length + data.length + tail.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(header, 8);
    bytes.set(data, 8 + header.length);
    bytes.set(tail, 8 + header.length + data.length);
    const path = join(dir, `edited-${Math.random().toString(36).slice(2)}.safetensors`);
    writeFileSync(path, bytes);
    return path;
  }

  it('runs the unedited batch (the edits below are what breaks it)', async () => {
    expect(
      (
        await credo(
          'run',
          'dapo',
          '--backend',
          'cpu',
          '--batch',
          withHeader((h) => h),
        )
      ).code,
    ).toBe(0);
  });

  it('a duplicate tensor name (spelled "\\u006dask" for "mask")', async () => {
    // renames "logp" to an escaped "mask": JSON.parse would silently keep one of the two
    const path = withHeader((h) => h.replace('"logp"', '"\\u006dask"'));
    const r = await credo('run', 'dapo', '--backend', 'cpu', '--batch', path);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: batch: mask: is named twice in the header/);
  });

  it('trailing bytes after the last tensor', async () => {
    const r = await credo(
      'run',
      'dapo',
      '--backend',
      'cpu',
      '--batch',
      withHeader((h) => h, Uint8Array.of(1, 2, 3)),
    );
    expectOneLineError(r, /^error: batch: file: 3 trailing bytes after the tensor data/);
  });
});

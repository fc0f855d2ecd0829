/**
 * The library facade: find an objective (stdlib name or file), compile it, and run it on batches.
 *
 *   const obj = compile('dapo');            // or compile({ source, path })
 *   const out = obj.run(batch, { params: { eps_high: 0.3 }, step: 10, totalSteps: 100 });
 *
 * Compiling happens once; `run` takes new batches, param values and clock values every call.
 */
import { existsSync, readFileSync } from 'node:fs';
import { evaluate, type EvalResult } from '../compiler/interp/eval.js';
import { checkRequirements, withOptionalInputs } from '../compiler/interp/requirements.js';
import { checkVocabIndexes, type InputSpec, type RaggedBatch } from '../core/batch/batch.js';
import { compileSource } from './compile.js';
import { error, UserError, type Diagnostic } from '../core/diagnostics/diagnostic.js';
import { closest } from '../core/diagnostics/suggest.js';
import type { Program } from '../core/ir/program.js';
import { objectiveNames, objectivePath } from './stdlib.js';
import { PROGRAM_FILE, readInputFile } from './files.js';

export interface RunOptions {
  readonly params?: Readonly<Record<string, number>>;
  readonly step?: number;
  readonly totalSteps?: number;
}

export interface Objective {
  readonly name: string;
  readonly program: Program;
  /** Warnings from compilation. */
  readonly diagnostics: readonly Diagnostic[];
  /** What the batch must contain. */
  readonly inputs: readonly InputSpec[];
  readonly maskName: string;
  run(batch: RaggedBatch, opts?: RunOptions): EvalResult;
}

/**
 * Source text of a stdlib objective name or a `.credo` path; a UserError when neither exists, a
 * FileError for an empty path or one that is not a readable regular file of bounded size.
 */
export function locateObjective(method: string): { source: string; path: string } {
  const path = objectivePath(method);
  if (path) return { source: readFileSync(path, 'utf8'), path: `stdlib/${method}.credo` };
  // existsSync only stats: a FIFO or a device is refused by readInputFile, never opened to wait
  if (method.trim() === '' || existsSync(method))
    return { source: readInputFile(method, PROGRAM_FILE).toString('utf8'), path: method };
  const suggestion = closest(method, objectiveNames());
  throw new UserError([
    error('E0103', `no stdlib objective or file named \`${method}\``, undefined, {
      help: suggestion
        ? `did you mean \`${suggestion}\`? (\`credo list\` shows all objectives)`
        : '`credo list` shows the stdlib objectives; a file path must exist',
    }),
  ]);
}

export function compile(method: string | { source: string; path: string }): Objective {
  const { source, path } = typeof method === 'string' ? locateObjective(method) : method;
  const result = compileSource(source, path);
  if (!result.program) throw new UserError(result.diagnostics);
  const program = result.program;
  return {
    name: program.name,
    program,
    diagnostics: result.diagnostics,
    inputs: program.inputs.map(({ name, level, dtype, vocabIndex, when }) => ({
      name,
      level,
      dtype,
      vocabIndex,
      ...(when ? { optional: true } : {}),
    })),
    maskName: program.maskName ?? 'mask',
    run(given, opts = {}) {
      const params = checkParams(program, opts.params ?? {});
      const clock = { params, step: opts.step, totalSteps: opts.totalSteps };
      const batch = withOptionalInputs(program, given, clock);
      checkVocabIndexes(batch, program.inputs);
      checkRequirements(program, batch, clock);
      return evaluate(program, batch, clock);
    },
  };
}

/** Validates param overrides by name and value (E0501, E0502). */
export function checkParams(program: Program, params: Readonly<Record<string, number>>): Record<string, number> {
  const diags: Diagnostic[] = [];
  const known = program.params.map((p) => p.name);
  for (const [k, v] of Object.entries(params)) {
    if (!known.includes(k)) {
      const s = closest(k, known);
      diags.push(
        error('E0501', `\`${program.name}\` has no param \`${k}\``, undefined, {
          help: s
            ? `did you mean \`${s}\`?`
            : known.length
              ? `its params are: ${known.join(', ')}`
              : 'this objective has no params',
        }),
      );
    } else if (!Number.isFinite(v)) {
      diags.push(
        error('E0502', `param \`${k}\` must be a finite number, got ${v}`, undefined, { help: `e.g. --set ${k}=0.2` }),
      );
    }
  }
  if (diags.length) throw new UserError(diags);
  return { ...params };
}

/** Parses `--set NAME=VALUE` flags (E0502 for a malformed one). */
export function parseSetFlags(flags: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  const diags: Diagnostic[] = [];
  for (const f of flags) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(f);
    const value = m ? Number(m[2]) : Number.NaN;
    if (!m || m[2].trim() === '' || !Number.isFinite(value)) {
      diags.push(
        error('E0502', `bad --set value \`${f}\``, undefined, {
          help: 'write --set NAME=NUMBER, e.g. --set eps_high=0.28',
        }),
      );
    } else out[m[1]] = value;
  }
  if (diags.length) throw new UserError(diags);
  return out;
}

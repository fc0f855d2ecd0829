/**
 * The pipeline, one line per stage: source → tokens → CST → AST → names → typed IR → gradient IR.
 * Stages return diagnostics; this function stops at the first stage with errors. Set
 * `CREDO_DEBUG=1` to dump the IR after each stage to stderr.
 */
import { readFileSync } from 'node:fs';
import { buildAst } from '../compiler/front/ast-builder.js';
import { Checker } from '../compiler/front/check.js';
import { resolve } from '../compiler/front/resolve.js';
import { differentiate, lossIgnoresGradInputs } from '../compiler/autodiff/grad.js';
import { tokenize } from '../grammar/lexer.js';
import { nestingDiagnostics } from '../grammar/nesting.js';
import { parseTokens } from '../grammar/parser.js';
import { syntaxDiagnostics } from '../grammar/syntax-errors.js';
import { hasErrors, warning, type Diagnostic } from '../core/diagnostics/diagnostic.js';
import { printProgram } from '../core/ir/print.js';
import type { Program } from '../core/ir/program.js';
import { SourceFile } from '../core/source/source-file.js';
import { modulePath, moduleNames } from './stdlib.js';
import type { Module } from '../compiler/front/ast.js';

export interface CompileResult {
  /** The typed program with gradients; absent when there were errors. */
  readonly program?: Program;
  /** The forward program before autodiff (for `credo ir`). */
  readonly forward?: Program;
  readonly diagnostics: Diagnostic[];
}

/** Parses one file into an AST, or reports its lexical and syntax errors. */
export function parseSource(file: SourceFile): { module?: Module; diagnostics: Diagnostic[] } {
  const lexed = tokenize(file);
  const tooDeep = nestingDiagnostics(file, lexed.tokens);
  if (tooDeep.length) return { diagnostics: [...lexed.diagnostics, ...tooDeep] };
  const parsed = parseTokens(lexed.tokens);
  const lexErrorLines = new Set(lexed.diagnostics.map((d) => file.position(d.span!.start).line));
  const diagnostics = [...lexed.diagnostics, ...syntaxDiagnostics(file, lexed.tokens, parsed.errors, lexErrorLines)];
  if (hasErrors(diagnostics)) return { diagnostics };
  return { module: buildAst(parsed.cst, file), diagnostics };
}

function loadStdlibModule(name: string) {
  const path = modulePath(name);
  if (!path) return undefined;
  const parsed = parseSource(new SourceFile(`stdlib/lib/${name}.credo`, readFileSync(path, 'utf8')));
  return parsed.module ? { module: parsed.module, diagnostics: parsed.diagnostics } : undefined;
}

/**
 * Results by source text, path and the text of every stdlib module (importable or not): compiling
 * the same objective again in one process (a training script that builds its objective each run,
 * several backends of one objective) skips the front end. Results are never modified after they
 * are made, so they can be shared.
 */
const compiled = new Map<string, CompileResult>();
const COMPILED_KEPT = 32;

export function compileSource(text: string, path: string): CompileResult {
  if (process.env.CREDO_DEBUG) return compileUncached(text, path); // the dumps come from the stages
  const key = JSON.stringify([path, text, moduleNames().map((m) => readFileSync(modulePath(m)!, 'utf8'))]);
  const hit = compiled.get(key);
  if (hit) return hit;
  const result = compileUncached(text, path);
  if (compiled.size >= COMPILED_KEPT) compiled.delete(compiled.keys().next().value!);
  compiled.set(key, result);
  return result;
}

function compileUncached(text: string, path: string): CompileResult {
  const file = new SourceFile(path, text);
  const parsed = parseSource(file);
  debug('ast', () => JSON.stringify(parsed.module?.items.map((i) => i.kind)));
  if (!parsed.module) return { diagnostics: parsed.diagnostics };
  const resolved = resolve(parsed.module, { loadImport: loadStdlibModule, availableImports: moduleNames });
  const diagnostics = [...parsed.diagnostics, ...resolved.diagnostics];
  if (hasErrors(diagnostics)) return { diagnostics };
  const checker = new Checker(resolved.scope);
  const forward = checker.run();
  diagnostics.push(...checker.diagnostics);
  if (!forward || hasErrors(diagnostics)) return { diagnostics };
  debug('typed IR', () => printProgram(forward));
  if (lossIgnoresGradInputs(forward)) {
    const lossItem = parsed.module.items.find((i) => i.kind === 'loss');
    const gradInputs = forward.inputs.filter((i) => i.grad).map((i) => i.name);
    diagnostics.push(
      warning('W0601', 'the loss does not depend on any `grad` input, so every gradient is 0', lossItem?.span, {
        label: 'constant with respect to the differentiable inputs',
        notes: [
          gradInputs.length
            ? `grad inputs: ${gradInputs.join(', ')}; a path through sg(…) carries no gradient`
            : 'no input is marked `grad`',
        ],
        help: gradInputs.length
          ? 'check for an `sg(…)` around the term that should train the policy'
          : 'mark the policy log-probs, e.g. `input logp : token grad`',
      }),
    );
  }
  const program = differentiate(forward);
  debug('gradient IR', () => printProgram(program));
  return { program, forward, diagnostics };
}

function debug(stage: string, dump: () => string): void {
  if (process.env.CREDO_DEBUG) process.stderr.write(`── ${stage} ──\n${dump()}\n`);
}

/**
 * Diagnostics: user-facing errors and warnings with a code, a primary span, optional secondary
 * labels, notes and a help line. Stages return them; they never throw for user mistakes.
 */
import type { Span } from '../source/source-file.js';
import type { Code } from './codes.js';

export type Severity = 'error' | 'warning';

export interface Label {
  readonly span: Span;
  readonly message: string;
}

export interface Diagnostic {
  readonly severity: Severity;
  readonly code: Code;
  readonly message: string;
  /** Where the problem is; absent only for problems outside any source (e.g. a `--set` flag). */
  readonly span?: Span;
  readonly label?: string;
  readonly secondary?: readonly Label[];
  readonly notes?: readonly string[];
  readonly help?: string;
}

export function error(
  code: Code,
  message: string,
  span: Span | undefined,
  extra: Partial<Diagnostic> = {},
): Diagnostic {
  return { severity: 'error', code, message, span, ...extra };
}

export function warning(
  code: Code,
  message: string,
  span: Span | undefined,
  extra: Partial<Diagnostic> = {},
): Diagnostic {
  return { severity: 'warning', code, message, span, ...extra };
}

export function hasErrors(diags: readonly Diagnostic[]): boolean {
  return diags.some((d) => d.severity === 'error');
}

/** A broken compiler invariant (not a user mistake): names the pass that found it. */
export class InternalError extends Error {
  constructor(
    readonly pass: string,
    message: string,
  ) {
    super(`internal error in ${pass}: ${message}`);
    this.name = 'InternalError';
  }
}

/** Thrown by the facade when a user error must stop the pipeline; carries the diagnostics. */
export class UserError extends Error {
  constructor(readonly diagnostics: readonly Diagnostic[]) {
    super(diagnostics.map((d) => `${d.code}: ${d.message}`).join('\n'));
    this.name = 'UserError';
  }
}

/**
 * What lowering a built-in call (calls.ts) needs from the checker (check.ts): a narrow interface,
 * so the two modules do not import each other.
 */
import type { Diagnostic } from '../../core/diagnostics/diagnostic.js';
import type { IrBuilder } from '../../core/ir/build.js';
import type { Node } from '../../core/ir/node.js';
import type { Span } from '../../core/source/source-file.js';
import type { Expr } from './ast.js';
import type { Scope } from './resolve.js';

/** Names visible while lowering an expression. */
export interface Env {
  readonly scope: Scope;
  readonly locals: ReadonlyMap<string, Node>;
  /** `def`s being inlined, to report recursion. */
  readonly defStack: readonly string[];
}

export interface Lowering {
  readonly b: IrBuilder;
  /** Records a diagnostic; returns null so a caller can `return c.report(…)`. */
  report(d: Diagnostic): null;
  expr(e: Expr, env: Env): Node | null;
  requireNumber(x: Node, span: Span, what: string): boolean;
  requireBool(x: Node, span: Span, what: string): boolean;
  /** Records that an input indexes the vocabulary (`gather(x, NAME)`), so its values get checked against V. */
  markVocabIndex(input: string): void;
  /** Reports an unknown name (with a suggestion); `functions`: the name was called. */
  unknown(id: { text: string; span: Span }, env: Env, functions?: boolean): null;
}

/**
 * The nesting limit of expressions, checked on the tokens before parsing. The parser is recursive
 * descent (chevrotain), so every open bracket, prefix `-`/`not` and right-nested `^` is a few stack
 * frames; without a limit a few hundred nested parentheses overflow the stack. Like Python's
 * "too many nested parentheses" (limit 200) the limit is checked up front and reported at the
 * token that crosses it. Long *flat* expressions (`a + b + … + z`) and long `let` chains do not
 * nest and have no such limit.
 */
import type { IToken } from 'chevrotain';
import { error, type Diagnostic } from '../core/diagnostics/diagnostic.js';
import type { SourceFile } from '../core/source/source-file.js';
import * as T from './tokens.js';

/** Brackets, prefix operators and `^` that may be open at once (docs/language.md, "Limits"). */
export const MAX_NESTING = 100;

/** Tokens after which a `-` is binary (they end an operand). */
const ENDS_OPERAND = new Set([T.Ident, T.NumberLit, T.True, T.False, T.RParen].map((t) => t.name));
/** Infix operators and separators: the operands before them are complete. */
const ENDS_CHAIN = new Set(
  [T.Or, T.And, T.LessEq, T.GreaterEq, T.EqEq, T.NotEq, T.Less, T.Greater, T.Plus, T.Minus, T.Star, T.Slash]
    .concat([T.Comma, T.Assign, T.Colon, T.Per, T.By])
    .map((t) => t.name),
);
/** Keywords that start an item: a new item starts from nothing open (also after an unclosed bracket). */
const STARTS_ITEM = new Set(
  [T.Objective, T.Param, T.Input, T.Let, T.Def, T.Loss, T.Metric, T.Export, T.Import].map((t) => t.name),
);

/**
 * E0004 at the first token that makes the nesting exceed {@link MAX_NESTING}; nothing otherwise.
 * Nesting counts open brackets plus, per bracket level, the prefix operators and carets whose
 * operand is still being read (an infix operator other than `^`, a comma or a new item ends them).
 */
export function nestingDiagnostics(file: SourceFile, tokens: readonly IToken[]): Diagnostic[] {
  const chains: number[] = [0]; // prefix operators / carets still open at each bracket level
  let open = 0; // Σ chains + brackets: what the parser's stack holds
  let prev: IToken | undefined;
  for (const t of tokens) {
    const name = t.tokenType.name;
    const prefix = (name === T.Minus.name || name === T.Not.name) && !(prev && ENDS_OPERAND.has(prev.tokenType.name));
    if (STARTS_ITEM.has(name)) {
      chains.length = 1;
      chains[0] = 0;
      open = 0;
    } else if (name === T.LParen.name) {
      chains.push(0);
      open++;
    } else if (name === T.RParen.name) {
      if (chains.length > 1) open -= 1 + chains.pop()!;
    } else if (prefix || name === T.Caret.name) {
      chains[chains.length - 1]++;
      open++;
    } else if (ENDS_CHAIN.has(name)) {
      open -= chains[chains.length - 1];
      chains[chains.length - 1] = 0;
    }
    if (open > MAX_NESTING) {
      const start = t.startOffset;
      return [
        error(
          'E0004',
          `expression nested too deeply (more than ${MAX_NESTING} levels)`,
          file.span(start, start + t.image.length),
          {
            label: `level ${MAX_NESTING + 1} of brackets, prefix operators and \`^\` here`,
            help: 'name a part of it with `let` and use the name; a flat chain such as `a + b + c` has no limit',
          },
        ),
      ];
    }
    prev = t;
  }
  return [];
}

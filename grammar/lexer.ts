/** source text → tokens, with unexpected characters reported as diagnostics (E0003). */
import { Lexer, type IToken } from 'chevrotain';
import { error, type Diagnostic } from '../core/diagnostics/diagnostic.js';
import type { SourceFile } from '../core/source/source-file.js';
import { allTokens } from './tokens.js';

const lexer = new Lexer(allTokens, { positionTracking: 'full', ensureOptimizations: false });

export function tokenize(file: SourceFile): { tokens: IToken[]; diagnostics: Diagnostic[] } {
  const result = lexer.tokenize(file.text);
  const diagnostics = result.errors.map((e) => {
    const ch = file.text.slice(e.offset, e.offset + e.length);
    return error(
      'E0003',
      `unexpected character${[...ch].length > 1 ? 's' : ''} \`${ch}\``,
      file.span(e.offset, e.offset + e.length),
      {
        label: 'not part of the language',
        help: 'comments start with `#`; operators are + - * / ^ < <= > >= == != and, or, not',
      },
    );
  });
  return { tokens: result.tokens, diagnostics };
}

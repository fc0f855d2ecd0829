/**
 * chevrotain parse errors → diagnostics (E0001), with the unclosed opening bracket as a secondary
 * span when the parser was waiting for its `)` (E0002).
 */
import type { IRecognitionException, IToken } from 'chevrotain';
import { error, type Diagnostic } from '../core/diagnostics/diagnostic.js';
import type { SourceFile, Span } from '../core/source/source-file.js';
import { LParen, RParen } from './tokens.js';

export function syntaxDiagnostics(
  file: SourceFile,
  tokens: IToken[],
  errors: IRecognitionException[],
  lexErrorLines: ReadonlySet<number> = new Set(),
): Diagnostic[] {
  const out: Diagnostic[] = [];
  const seen = new Set<number>();
  const neverClosed = unmatchedOpens(tokens);
  for (const e of errors) {
    const at = errorSpan(file, tokens, e.token);
    // a character the lexer dropped explains the parse error on its line; report it once
    if (lexErrorLines.has(file.position(at.start).line)) continue;
    if (seen.has(at.start)) continue; // recovery can report the same place twice
    seen.add(at.start);
    const found = e.token.tokenType.name === 'EOF' ? 'end of file' : `\`${e.token.image}\``;
    const open = unclosedBefore(tokens, at.start);
    const reallyOpen = open !== undefined && neverClosed.has(open);
    const expected = expectedFrom(e.message);
    if (open && reallyOpen && /`\)`/.test(e.message)) {
      out.push(
        error('E0002', `unclosed \`(\`: expected \`)\`, found ${found}`, at, {
          label: 'expected `)` before this',
          secondary: [
            { span: file.span(open.startOffset, open.startOffset + 1), message: 'this bracket is never closed' },
          ],
          help: 'add the missing `)`',
        }),
      );
    } else if (e.name === 'NotAllInputParsedException') {
      out.push(
        error('E0001', `syntax error: unexpected ${found} after the end of an item`, at, {
          label: 'not part of the item before it',
          help: 'each item starts on a keyword (objective, import, param, input, mask, let, def, loss, metric, export, require); an operator may be missing',
        }),
      );
    } else {
      out.push(
        error('E0001', `syntax error: expected ${expected ?? 'an operator, `)` or a new item'}, found ${found}`, at, {
          label: 'unexpected here',
          help: 'a program is a list of items: objective, import, param, input, mask, let, def, loss, metric, export, require',
        }),
      );
    }
  }
  return out;
}

function errorSpan(file: SourceFile, tokens: IToken[], t: IToken): Span {
  if (t.tokenType.name === 'EOF' || Number.isNaN(t.startOffset)) {
    // at the last token, not inside a trailing comment
    const last = tokens[tokens.length - 1];
    const end = last ? last.endOffset! + 1 : 0;
    return file.span(Math.max(0, end - 1), end);
  }
  return file.span(t.startOffset, (t.endOffset ?? t.startOffset) + 1);
}

/** The innermost `(` still open at an offset, if any. */
function unclosedBefore(tokens: IToken[], offset: number): IToken | undefined {
  const stack: IToken[] = [];
  for (const t of tokens) {
    if (t.startOffset >= offset) break;
    if (t.tokenType === LParen) stack.push(t);
    else if (t.tokenType === RParen) stack.pop();
  }
  return stack.at(-1);
}

/** The `(` tokens that no `)` ever closes. */
function unmatchedOpens(tokens: IToken[]): Set<IToken> {
  const stack: IToken[] = [];
  for (const t of tokens) {
    if (t.tokenType === LParen) stack.push(t);
    else if (t.tokenType === RParen) stack.pop();
  }
  return new Set(stack);
}

/** chevrotain's messages list what it expected between `-->` and `<--`; keep that part readable. */
function expectedFrom(message: string): string | undefined {
  const m = /Expecting(?: token of type)? --> (.*?) <--/.exec(message);
  if (m) return m[1] === 'EOF' ? 'the end of the item (an operator may be missing)' : m[1];
  if (/one of these possible Token sequences/.test(message)) {
    const alts = [...new Set([...message.matchAll(/\[([^\]]+)\]/g)].map((x) => x[1]))];
    return alts.length ? `one of ${alts.slice(0, 8).join(', ')}${alts.length > 8 ? ', …' : ''}` : undefined;
  }
  return undefined;
}

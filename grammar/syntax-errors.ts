/**
 * chevrotain parse errors → diagnostics (E0001), with the unclosed opening bracket as a secondary
 * span when the parser was waiting for its `)` (E0002).
 */
import type { IRecognitionException, IToken } from 'chevrotain';
import { error, type Diagnostic } from '../src/diagnostics/diagnostic.js';
import type { SourceFile, Span } from '../src/source/source-file.js';
import { LParen, RParen } from './tokens.js';

export function syntaxDiagnostics(file: SourceFile, tokens: IToken[], errors: IRecognitionException[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const seen = new Set<number>();
  for (const e of errors) {
    const at = errorSpan(file, e.token);
    if (seen.has(at.start)) continue; // recovery can report the same place twice
    seen.add(at.start);
    const found = e.token.tokenType.name === 'EOF' ? 'end of file' : `\`${e.token.image}\``;
    const open = unclosedBefore(tokens, at.start);
    const expected = expectedFrom(e.message);
    if (open && /`\)`/.test(e.message)) {
      out.push(
        error('E0002', `unclosed \`(\`: expected \`)\`, found ${found}`, at, {
          label: 'expected `)` before this',
          secondary: [{ span: file.span(open.startOffset, open.startOffset + 1), message: 'this bracket is never closed' }],
          help: 'add the missing `)`',
        }),
      );
    } else {
      out.push(
        error('E0001', `syntax error: expected ${expected ?? 'something else'}, found ${found}`, at, {
          label: 'unexpected here',
          help: 'a program is a list of items: objective, import, param, input, mask, let, def, loss, metric, export',
        }),
      );
    }
  }
  return out;
}

function errorSpan(file: SourceFile, t: IToken): Span {
  if (t.tokenType.name === 'EOF' || Number.isNaN(t.startOffset)) {
    const end = file.text.replace(/\s+$/, '').length;
    return file.span(Math.max(0, end - 1), Math.max(1, end));
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

/** chevrotain's messages list what it expected between `-->` and `<--`; keep that part readable. */
function expectedFrom(message: string): string | undefined {
  const m = /Expecting(?: token of type)? --> (.*?) <--/.exec(message);
  if (m) return m[1];
  if (/one of these possible Token sequences/.test(message)) {
    const alts = [...message.matchAll(/\[([^\]]+)\]/g)].map((x) => x[1]).slice(0, 6);
    return alts.length ? `one of ${alts.join(', ')}` : undefined;
  }
  return undefined;
}

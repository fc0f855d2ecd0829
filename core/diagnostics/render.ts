/**
 * Renders diagnostics in the rustc style:
 *
 *   error[E0101]: unknown name `ratoi`
 *     --> dapo.credo:12:14
 *      |
 *   12 | let surr = ratoi * adv
 *      |            ^^^^^ not defined
 *      = help: did you mean `ratio`?
 *
 * and as JSON for tools.
 */
import type { Span } from '../source/source-file.js';
import type { Diagnostic } from './diagnostic.js';

export function renderDiagnostic(d: Diagnostic): string {
  const out: string[] = [`${d.severity}[${d.code}]: ${d.message}`];
  if (d.span) {
    const labels = [
      { span: d.span, message: d.label ?? '', primary: true },
      ...(d.secondary ?? []).map((l) => ({ ...l, primary: false })),
    ];
    const { line, col } = d.span.file.position(d.span.start);
    const width = String(Math.max(...labels.map((l) => l.span.file.position(l.span.start).line))).length;
    const pad = ' '.repeat(width);
    out.push(`${pad}--> ${d.span.file.path}:${line}:${col}`);
    out.push(`${pad} |`);
    const sorted = [...labels].sort((a, b) => a.span.start - b.span.start);
    let shownLine = -1;
    for (const label of sorted) {
      const rendered = renderLabel(label.span, label.message, label.primary, width);
      const line = label.span.file.position(label.span.start).line;
      // labels on one line share the source line (rustc style)
      out.push(...(line === shownLine ? rendered.slice(1) : rendered));
      shownLine = line;
    }
  }
  for (const note of d.notes ?? []) out.push(`${' '.repeat(spanWidth(d))} = note: ${note}`);
  if (d.help) out.push(`${' '.repeat(spanWidth(d))} = help: ${d.help}`);
  return out.join('\n');
}

function spanWidth(d: Diagnostic): number {
  return d.span ? String(d.span.file.position(d.span.start).line).length : 0;
}

function renderLabel(span: Span, message: string, primary: boolean, width: number): string[] {
  const { line, col } = span.file.position(span.start);
  const text = span.file.lineText(line);
  const endPos = span.file.position(Math.max(span.start, span.end - 1));
  const lastCol = endPos.line === line ? endPos.col : text.length;
  const len = Math.max(1, lastCol - col + 1);
  const mark = (primary ? '^' : '-').repeat(len);
  return [
    `${String(line).padStart(width)} | ${text}`,
    `${' '.repeat(width)} | ${' '.repeat(col - 1)}${mark}${message ? ' ' + message : ''}`,
  ];
}

export function renderDiagnostics(diags: readonly Diagnostic[]): string {
  return diags.map(renderDiagnostic).join('\n\n');
}

/** Diagnostic as plain data for `--json`. */
export function diagnosticToJson(d: Diagnostic): Record<string, unknown> {
  const where = (s: Span) => {
    const a = s.file.position(s.start);
    const b = s.file.position(s.end);
    return {
      file: s.file.path,
      line: a.line,
      col: a.col,
      end_line: b.line,
      end_col: b.col,
      start: s.start,
      end: s.end,
    };
  };
  return {
    severity: d.severity,
    code: d.code,
    message: d.message,
    span: d.span ? where(d.span) : null,
    label: d.label ?? null,
    secondary: (d.secondary ?? []).map((l) => ({ ...where(l.span), message: l.message })),
    notes: d.notes ?? [],
    help: d.help ?? null,
  };
}

/** A source excerpt with carets under a span (for explanations that point at source lines). */
export function renderSnippet(span: Span, message = ''): string {
  const { line, col } = span.file.position(span.start);
  const width = String(line).length;
  return [`${' '.repeat(width)}--> ${span.file.path}:${line}:${col}`, ...renderLabel(span, message, true, width)].join(
    '\n',
  );
}

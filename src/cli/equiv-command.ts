/** `credo equiv A B …`: argument handling and output of the equivalence checker (src/equiv). */
import { basename } from 'node:path';
import { error, UserError } from '../../core/diagnostics/diagnostic.js';
import { renderSnippet } from '../../core/diagnostics/render.js';
import { equiv, type EquivResult, type Mode } from '../equiv/equiv.js';
import { showTerm, type Term } from '../../compiler/equiv/term.js';

export interface EquivFlags {
  set: string[];
  assume: string[];
  mode: string;
  upToScale?: boolean;
  runs: number;
  seed: number;
  step?: number;
  totalSteps?: number;
  json?: boolean;
  explain?: boolean;
  out?: string;
}

/** Splits `--set SIDE.NAME=VALUE` flags by side; SIDE is A's or B's name as given, or `a`/`b`. */
function splitSets(flags: string[], a: string, b: string): [Record<string, number>, Record<string, number>] {
  const sides: [Record<string, number>, Record<string, number>] = [{}, {}];
  for (const f of flags) {
    const m = /^([^=]+)\.([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(f);
    const value = m ? Number(m[3]) : Number.NaN;
    if (!m || !Number.isFinite(value)) {
      throw new UserError([
        error('E0502', `bad --set value \`${f}\``, undefined, {
          help: `write --set SIDE.NAME=NUMBER, e.g. --set ${a}.eps_high=0.28 (SIDE is \`${a}\`, \`${b}\`, \`a\` or \`b\`)`,
        }),
      ]);
    }
    const who = m[1];
    const isA = who === 'a' || (who === a && who !== b);
    const isB = who === 'b' || (who === b && who !== a);
    if (!isA && !isB) {
      const why =
        who === a
          ? `both sides are \`${a}\`; use \`a.${m[2]}\` or \`b.${m[2]}\``
          : `\`${who}\` is neither \`${a}\` nor \`${b}\``;
      throw new UserError([
        error('E0501', `cannot tell which side --set ${f} is for: ${why}`, undefined, {
          help: `prefix the param with \`${a}.\`, \`${b}.\`, \`a.\` or \`b.\``,
        }),
      ]);
    }
    sides[isA ? 0 : 1][m[2]] = value;
  }
  return sides;
}

export function runEquiv(a: string, b: string, o: EquivFlags, io: { out: (s: string) => void }): void {
  if (!['value', 'grad', 'both'].includes(o.mode))
    throw new UserError([error('E0502', `--mode must be value, grad or both, got \`${o.mode}\``, undefined)]);
  const [setA, setB] = splitSets(o.set, a, b);
  const stem = (s: string) => basename(s).replace(/\.credo$/, '');
  const r = equiv({
    a,
    b,
    setA,
    setB,
    assume: o.assume,
    mode: o.mode as Mode,
    upToScale: o.upToScale,
    runs: o.runs,
    seed: o.seed,
    step: o.step,
    totalSteps: o.totalSteps,
    counterexamplePath: o.out ?? `${stem(a)}-vs-${stem(b)}.counterexample.safetensors`,
  });
  if (o.json) {
    const { verdict, mode, runs, max_rel_diff, scale, counterexample, explanation } = r;
    const extra = o.explain
      ? {
          normal_forms: r.normalForms.map((f) => ({ label: f.label, a: showTerm(f.a), b: showTerm(f.b) })),
          first_difference: r.firstDifference
            ? {
                label: r.firstDifference.label,
                reason: r.firstDifference.reason,
                a: showTerm(r.firstDifference.a),
                b: showTerm(r.firstDifference.b),
              }
            : null,
        }
      : {};
    io.out(
      JSON.stringify({ verdict, mode, runs, max_rel_diff, scale, counterexample, explanation, ...extra }, null, 2) +
        '\n',
    );
    return;
  }
  io.out(
    `verdict: ${r.verdict}  (${a} vs ${b}, mode ${r.mode}${r.scale !== 1 ? `, scale ${r.scale}` : ''})\n${r.explanation}\n`,
  );
  if (r.verdict === 'different' && r.counterexample) {
    io.out(
      `counterexample saved to ${r.counterexample}; reproduce with:\n  credo run ${a} --batch ${r.counterexample}\n  credo run ${b} --batch ${r.counterexample}\n`,
    );
  }
  if (o.explain) io.out(explain(r, a, b));
}

const MAX_FORM = 1500;
const clipText = (s: string) => (s.length > MAX_FORM ? `${s.slice(0, MAX_FORM)} … (${s.length} chars)` : s);

function explain(r: EquivResult, a: string, b: string): string {
  const out: string[] = ['', 'normal forms:'];
  for (const f of r.normalForms) {
    out.push(`  ${f.label}`, `    A (${a}): ${clipText(showTerm(f.a))}`, `    B (${b}): ${clipText(showTerm(f.b))}`);
  }
  const d = r.firstDifference;
  if (!d) {
    out.push('', 'the normal forms are identical');
    return out.join('\n') + '\n';
  }
  out.push('', `first difference (${d.label}): ${d.reason}`);
  const where = (label: string, t: Term) => {
    out.push(`  ${label}: ${clipText(showTerm(t))}`);
    const seen = new Set<string>();
    for (const s of t.spans.slice(0, 3)) {
      const k = `${s.file.path}:${s.start}:${s.end}`;
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(renderSnippet(s).replace(/^/gm, '    '));
    }
  };
  where(`A (${a})`, d.a);
  where(`B (${b})`, d.b);
  return out.join('\n') + '\n';
}

/**
 * The standard library on disk: objectives in stdlib/*.credo (what `credo run NAME` finds) and
 * importable modules in stdlib/lib/*.credo (what `import NAME` finds). Each objective's header
 * carries `# summary:` and `# confidence:` lines, which `credo list` shows.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './package-root.js';

export type Confidence = 'code-verified' | 'paper-text' | 'reconstructed';

export interface StdlibEntry {
  readonly name: string;
  readonly summary: string;
  readonly confidence: Confidence | 'unknown';
  readonly path: string;
}

export function stdlibDir(): string {
  return join(packageRoot(), 'stdlib');
}

function names(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.credo'))
    .map((f) => f.slice(0, -'.credo'.length))
    .sort();
}

export function objectiveNames(): string[] {
  return names(stdlibDir());
}

export function moduleNames(): string[] {
  return names(join(stdlibDir(), 'lib'));
}

export function objectivePath(name: string): string | undefined {
  return /^[a-z0-9_]+$/.test(name) && objectiveNames().includes(name) ? join(stdlibDir(), `${name}.credo`) : undefined;
}

export function modulePath(name: string): string | undefined {
  return /^[a-z0-9_]+$/.test(name) && moduleNames().includes(name)
    ? join(stdlibDir(), 'lib', `${name}.credo`)
    : undefined;
}

export function listObjectives(): StdlibEntry[] {
  return objectiveNames().map((name) => {
    const path = join(stdlibDir(), `${name}.credo`);
    const text = readFileSync(path, 'utf8');
    const field = (key: string) => new RegExp(`^#\\s*${key}:\\s*(.+)$`, 'm').exec(text)?.[1].trim();
    const confidence = field('confidence');
    return {
      name,
      summary: field('summary') ?? '',
      confidence:
        confidence === 'code-verified' || confidence === 'paper-text' || confidence === 'reconstructed'
          ? confidence
          : 'unknown',
      path,
    };
  });
}

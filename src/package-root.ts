/** Locates the installed package (for stdlib/ files), whether running from src/ or dist/. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'credo') return (cached = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the credo package root');
    dir = up;
  }
}

/** Generated docs are fresh: regenerate with `npm run docs` when this fails. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GENERATED } from '../../scripts/render-docs.js';

describe.each(Object.entries(GENERATED))('%s', (path, render) => {
  it('matches what `npm run docs` generates', () => {
    expect(readFileSync(path, 'utf8'), `${path} is stale: run \`npm run docs\``).toBe(render());
  });
});

/**
 * stdlib/frameworks.ts (docs/frameworks.md): every framework name resolves to a stdlib objective
 * whose params include the row's `--set`s (checkParams accepts them), no setting is listed twice,
 * and every claim a row names is in the equivalence catalog.
 */
import { describe, expect, it } from 'vitest';
import { checkParams, compile } from '../../src/objective.js';
import { objectiveNames } from '../../src/stdlib.js';
import { ALL_CLAIMS } from '../../stdlib/claims/all-claims.js';
import { FRAMEWORK_NAMES } from '../../stdlib/frameworks.js';

describe('the framework map', () => {
  it.each(FRAMEWORK_NAMES.map((r) => [`${r.framework} ${r.setting}`, r] as const))('%s resolves', (_, row) => {
    expect(objectiveNames()).toContain(row.objective);
    expect(() => checkParams(compile(row.objective).program, row.set ?? {})).not.toThrow();
    const ids = new Set(ALL_CLAIMS.map((c) => c.id));
    for (const id of row.claims ?? []) expect(ids.has(id), `claim ${id}`).toBe(true);
    expect(row.readFrom).toMatch(/@[0-9a-f]{7,40}/);
  });

  it('lists each framework setting once', () => {
    const keys = FRAMEWORK_NAMES.map((r) => `${r.framework}: ${r.setting}`);
    expect(new Set(keys).size).toBe(keys.length);
  });
});

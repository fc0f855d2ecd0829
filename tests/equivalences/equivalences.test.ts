/**
 * Every claim of the equivalence catalog holds: equivalences are proved or survive randomized
 * testing; known non-equivalences produce a counterexample batch that `credo run` reproduces.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadBatch } from '../../runtime/batch/load.js';
import { readSafetensors } from '../../runtime/batch/safetensors.js';
import { equiv } from '../../src/equiv/equiv.js';
import { compile } from '../../src/objective.js';
import { ALL_CLAIMS as CLAIMS } from '../../stdlib/claims/all-claims.js';

const dir = mkdtempSync(join(tmpdir(), 'credo-equiv-'));

describe.each(CLAIMS)('$id: $a vs $b ($mode)', (claim) => {
  it(`is ${claim.expect}`, () => {
    const path = join(dir, `${claim.id}.safetensors`);
    const r = equiv({
      a: claim.a,
      b: claim.b,
      setA: claim.setA,
      setB: claim.setB,
      assume: claim.assume,
      mode: claim.mode,
      upToScale: claim.upToScale,
      runs: 150,
      seed: 7,
      counterexamplePath: path,
    });
    if (claim.expect === 'proved') expect(r.verdict, r.explanation).toBe('proved');
    else if (claim.expect === 'equivalent')
      expect(['proved', 'no-difference-found'], r.explanation).toContain(r.verdict);
    else {
      expect(r.verdict, r.explanation).toBe('different');
      // the saved counterexample reproduces through the batch loader, as `credo run --batch` reads it
      const results = [claim.a, claim.b].map((name, i) => {
        const objective = compile(name);
        const batch = loadBatch(readSafetensors(readFileSync(path)), {
          inputs: objective.inputs,
          maskName: objective.maskName,
        });
        return objective.run(batch, { params: i === 0 ? claim.setA : claim.setB });
      });
      if (claim.mode !== 'grad') {
        expect(results[0].loss).toBe(r.losses!.a);
        expect(results[1].loss).toBe(r.losses!.b);
      }
    }
  });
});

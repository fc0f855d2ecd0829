/**
 * `ceil`, `round` and the `prod` reduction: values by hand (round takes ties to even, as
 * torch.round; an empty product is 1, as torch.prod), gradients by hand (torch's rules: ceil and
 * round pass none; prod gives each member the product of the others, zeros included), and
 * gradients against finite differences on random batches.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../../src/compile.js';
import { renderDiagnostics } from '../../core/diagnostics/render.js';
import { arbRefBatch } from '../reference/arbitrary.js';
import { toRagged } from '../helpers/batches.js';
import { checkGradients } from '../helpers/gradcheck.js';
import { batch, expectArray, expectClose, header, run } from './helpers.js';

describe('ceil and round', () => {
  it('ceil rounds up; round takes ties to the even neighbour (torch.round), -0.5 to -0', () => {
    const xs = [2.5, 3.5, -2.5, -1.5, 0.5, -0.5, 1.2, -1.2, 1.7, -1.7, 4, 0];
    const b = batch({ seqs: [{ logp: xs }] });
    expectArray(
      run('export c = ceil(logp)\nloss = sum(logp)', b).exports.c.data,
      [3, 4, -2, -1, 1, -0, 2, -1, 2, -1, 4, 0],
      0,
      'ceil',
    );
    const r = run('export r = round(logp)\nloss = sum(logp)', b).exports.r.data;
    expectArray(r, [2, 4, -2, -2, 0, -0, 1, -1, 2, -2, 4, 0], 0, 'round');
    expect(Object.is(r[5], -0), 'round(-0.5) is -0').toBe(true);
  });

  it('pass no gradient (torch: zero almost everywhere)', () => {
    const b = batch({ seqs: [{ logp: [0.3, -1.6, 2.2] }] });
    expectArray(run('loss = sum(ceil(logp) + round(logp))', b).grads.logp.data, [0, 0, 0], 0, 'alone');
    // through the other factor only: d/dx x·ceil(x) = ceil(x), d/dx x·round(x) = round(x)
    expectArray(run('loss = sum(logp * ceil(logp))', b).grads.logp.data, [1, -1, 3], 0, 'x·ceil(x)');
    expectArray(run('loss = sum(logp * round(logp))', b).grads.logp.data, [0, -2, 2], 0, 'x·round(x)');
  });

  it('keep an integer integral (i32 in, i32 out)', () => {
    const { program, diagnostics } = compileSource(
      `${header()}let k = ceil(i32(length)) + round(i32(length))\nloss = mean(logp * k)\nexport k = k`,
      'ints.credo',
    );
    expect(program, renderDiagnostics(diagnostics)).toBeDefined();
    // exports are reported as f32: what is cast is the i32 value
    const k = program!.exports.get('k')!;
    expect([k.op, k.src[0].type.dtype]).toEqual(['cast', 'i32']);
  });
});

describe('prod', () => {
  it('multiplies the valid members of each segment, with filters; an empty product is 1', () => {
    // s0: [2, 3, (5 masked), 0.5] → 3; s1: [] → 1; s2: [-1, 4] → -4; groups: g0 = {s0, s1}, g1 = {s2}
    const b = batch({
      seqs: [
        { logp: [2, 3, 5, 0.5], mask: [1, 1, 0, 1], reward: 2 },
        { logp: [], reward: 3, group: 0 },
        { logp: [-1, 4], reward: -1, group: 1 },
      ],
    });
    const out = run(
      [
        'export per_seq = prod(logp per seq)',
        'export filtered = prod(logp per seq where logp > 1)',
        'export per_group = prod(reward per group)',
        'metric all = prod(logp)',
        'metric none = prod(logp where logp > 100)',
        'loss = sum(logp)',
      ].join('\n'),
      b,
    );
    expectArray(out.exports.per_seq.data, [3, 1, -4], 0, 'per seq');
    expectArray(out.exports.filtered.data, [6, 1, 4], 0, 'per seq where logp > 1');
    expectArray(out.exports.per_group.data, [6, -1], 0, 'per group');
    expectClose(out.metrics.all, -12, 0, 'whole batch');
    expectClose(out.metrics.none, 1, 0, 'empty set');
  });

  it('gives each member the product of the others, with no, one or two zeros (torch.prod)', () => {
    // s0 [2, 3, 4]: no zero → [12, 8, 6]; s1 [0, 5, 2]: one zero → [10, 0, 0]; s2 [0, 0, 7]: → 0;
    // s3 [3, (0 masked), 2]: the masked zero is not a member → [2, 0, 3]
    const b = batch({
      seqs: [{ logp: [2, 3, 4] }, { logp: [0, 5, 2] }, { logp: [0, 0, 7] }, { logp: [3, 0, 2], mask: [1, 0, 1] }],
    });
    const out = run('loss = sum(prod(logp per seq))', b);
    expectClose(out.loss, 24 + 0 + 0 + 6, 0, 'loss');
    expectArray(out.grads.logp.data, [12, 8, 6, 10, 0, 0, 0, 0, 0, 2, 0, 3], 0, 'd/dx');
    // a filter excludes members like a mask: prod(x where x != 0) of [0, 5, 2] → [0, 2, 5]
    expectArray(
      run('loss = sum(prod(logp per seq where logp != 0))', batch({ seqs: [{ logp: [0, 5, 2] }] })).grads.logp.data,
      [0, 2, 5],
      0,
      'filtered zero',
    );
  });

  it('to the batch and through groups: the gradient reaches seq and token inputs', () => {
    // prod(reward per group) for g0 = {2, 3}: d/dr = [3, 2]; prod over all tokens [1, 2, 3] → [6, 3, 2]
    const b = batch({
      seqs: [
        { logp: [1, 2], reward: 2 },
        { logp: [3], reward: 3 },
      ],
    });
    expectArray(
      run('loss = sum(prod(reward per group))', b, { grads: { reward: true } }).grads.reward.data,
      [3, 2],
      0,
      'seq input',
    );
    expectArray(run('loss = prod(logp)', b).grads.logp.data, [6, 3, 2], 0, 'token input');
  });

  it('equals finite differences on random batches (per seq, per group, to the batch, filtered)', () => {
    const programs = [
      'loss = mean(prod(0.5 + sigmoid(logp) per seq) * old_logp)',
      'loss = sum(prod(logp - old_logp per group where logp > -2))',
      'loss = prod(1 + 0.1 * logp) + mean(logp * ceil(old_logp) + round(ref_logp) * logp)',
      'let s = prod(exp(logp - old_logp) per seq)\nloss = mean(prod(s per group) * reward)',
    ];
    for (const body of programs) {
      const source = header({ logp: true, old_logp: true }) + body;
      const { program, diagnostics } = compileSource(source, 'prod.credo');
      expect(program, renderDiagnostics(diagnostics)).toBeDefined();
      fc.assert(
        fc.property(arbRefBatch({ maxGroups: 3, maxLen: 5 }), (rb) => {
          const problem = checkGradients(program!, toRagged(rb, { breakTies: true }));
          expect(problem, `${problem}\nprogram:\n${source}`).toBeNull();
        }),
        { numRuns: 80, seed: 11 },
      );
    }
  });
});

/** Tests of the synthetic batch generator: determinism, structure and realistic values. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BatchError, type InputSpec, type RaggedBatch } from '../../core/batch/batch.js';
import { loadBatch } from '../../runtime/batch/load.js';
import { readSafetensors, writeSafetensors } from '../../runtime/batch/safetensors.js';
import { mulberry32, syntheticBatch, type SyntheticOptions } from '../../runtime/batch/synthetic.js';

const STANDARD: InputSpec[] = [
  { name: 'logp', level: 'token', dtype: 'f32' },
  { name: 'old_logp', level: 'token', dtype: 'f32' },
  { name: 'ref_logp', level: 'token', dtype: 'f32' },
  { name: 'entropy', level: 'token', dtype: 'f32' },
  { name: 'value', level: 'token', dtype: 'f32' },
  { name: 'token_id', level: 'token', dtype: 'i32' },
  { name: 'advantage', level: 'token', dtype: 'f32' },
  { name: 'reward', level: 'seq', dtype: 'f32' },
  { name: 'chosen', level: 'seq', dtype: 'bool' },
];

const DEFAULTS: SyntheticOptions = { seed: 1, tokens: 4096, groupSize: 8, inputs: STANDARD, maskName: 'mask' };

function data(batch: RaggedBatch, name: string): Float64Array {
  return batch.tensors.get(name)!.data;
}

function snapshot(batch: RaggedBatch): unknown {
  return {
    ...batch,
    offsets: [...batch.offsets],
    groupOf: [...batch.groupOf],
    mask: [...batch.mask],
    tensors: [...batch.tensors].map(([n, t]) => [n, t.level, t.dtype, [...t.data]]),
  };
}

describe('syntheticBatch', () => {
  it('is deterministic: same seed, same batch; another seed, another batch', () => {
    expect(snapshot(syntheticBatch(DEFAULTS))).toEqual(snapshot(syntheticBatch(DEFAULTS)));
    expect([...data(syntheticBatch({ ...DEFAULTS, seed: 2 }), 'logp')]).not.toEqual([
      ...data(syntheticBatch(DEFAULTS), 'logp'),
    ]);
  });

  it("does not change a tensor's values when other inputs are declared", () => {
    const alone = syntheticBatch({ ...DEFAULTS, inputs: [STANDARD[1]] });
    expect([...data(alone, 'old_logp')]).toEqual([...data(syntheticBatch(DEFAULTS), 'old_logp')]);
  });

  it('sizes groups and sequences from tokens and groupSize', () => {
    const batch = syntheticBatch(DEFAULTS);
    expect(batch.numGroups).toBe(8); // round(4096 / (8 · 64))
    expect(batch.numSeqs).toBe(64);
    expect(batch.numTokens).toBe(4096);
    expect(batch.layout).toEqual({ kind: 'packed' });
    expect([...batch.groupOf]).toEqual(Array.from({ length: 64 }, (_, s) => Math.floor(s / 8)));
    expect(batch.groupIds).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('lengths sum exactly to tokens, each ≥ 1 when tokens ≥ S (property)', () => {
    fc.assert(
      fc.property(
        fc.integer(),
        fc.integer({ min: 0, max: 20000 }),
        fc.integer({ min: 1, max: 16 }),
        (seed, tokens, groupSize) => {
          const batch = syntheticBatch({ seed, tokens, groupSize, inputs: [], maskName: 'mask' });
          const lengths = Array.from({ length: batch.numSeqs }, (_, s) => batch.offsets[s + 1] - batch.offsets[s]);
          expect(batch.offsets[0]).toBe(0);
          expect(batch.offsets[batch.numSeqs]).toBe(tokens);
          expect(batch.numSeqs % groupSize).toBe(0);
          expect(Math.min(...lengths)).toBeGreaterThanOrEqual(tokens >= batch.numSeqs ? 1 : 0);
          expect(batch.mask.length).toBe(tokens);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('allows empty sequences when tokens < S', () => {
    const batch = syntheticBatch({ ...DEFAULTS, tokens: 3, groupSize: 8 });
    expect(batch.numSeqs).toBe(8);
    expect(batch.offsets[8]).toBe(3);
    expect(syntheticBatch({ ...DEFAULTS, tokens: 0 }).numTokens).toBe(0);
  });

  it('masks a short run inside about 10% of sequences, never the first or last token', () => {
    const batch = syntheticBatch({ ...DEFAULTS, tokens: 64 * 1000, groupSize: 10 });
    let masked = 0;
    for (let s = 0; s < batch.numSeqs; s++) {
      const row = batch.mask.subarray(batch.offsets[s], batch.offsets[s + 1]);
      if (row.includes(0)) {
        masked++;
        expect(row[0]).toBe(1);
        expect(row[row.length - 1]).toBe(1);
        const zeros = row.reduce((n, v) => n + (v === 0 ? 1 : 0), 0);
        expect(row.lastIndexOf(0) - row.indexOf(0) + 1).toBe(zeros); // one contiguous run
      }
    }
    expect(masked / batch.numSeqs).toBeGreaterThan(0.05);
    expect(masked / batch.numSeqs).toBeLessThan(0.15);
    expect(syntheticBatch(DEFAULTS).mask.includes(0)).toBe(true);
    expect(syntheticBatch({ ...DEFAULTS, maskName: null }).mask.every((v) => v === 1)).toBe(true);
  });

  it('gives the standard names realistic values', () => {
    const batch = syntheticBatch({ ...DEFAULTS, tokens: 20000 });
    const logp = data(batch, 'logp');
    expect(Math.min(...logp)).toBeGreaterThanOrEqual(-6);
    expect(Math.max(...logp)).toBeLessThanOrEqual(-0.01);
    const diff = (name: string): number[] => Array.from(data(batch, name), (v, i) => v - logp[i]);
    expect(std(diff('old_logp'))).toBeCloseTo(0.05, 2);
    expect(std(diff('ref_logp'))).toBeCloseTo(0.1, 2);
    expect(Math.max(...data(batch, 'old_logp'), ...data(batch, 'ref_logp'))).toBeLessThanOrEqual(0);
    const entropy = data(batch, 'entropy');
    expect(Math.min(...entropy)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...entropy)).toBeLessThanOrEqual(3);
    for (const name of ['value', 'advantage']) {
      expect(Math.abs(mean([...data(batch, name)]))).toBeLessThan(0.05);
      expect(std([...data(batch, name)])).toBeCloseTo(1, 1);
    }
    const ids = data(batch, 'token_id');
    expect(ids.every((v) => Number.isInteger(v) && v >= 0 && v < 32000)).toBe(true);
    expect([...data(batch, 'chosen').subarray(0, 4)]).toEqual([1, 0, 1, 0]);
    expect(data(batch, 'reward').every((v) => v === 0 || v === 1)).toBe(true);
    for (const name of ['logp', 'old_logp', 'value'])
      expect(data(batch, name).every((v) => Math.fround(v) === v)).toBe(true);
  });

  it('makes one group of rewards all-equal and keeps the first group mixed', () => {
    for (let seed = 0; seed < 20; seed++) {
      const batch = syntheticBatch({ ...DEFAULTS, seed });
      const reward = data(batch, 'reward');
      const group = (g: number): number[] => [...reward.subarray(g * 8, (g + 1) * 8)];
      expect(new Set(group(batch.numGroups - 1)).size).toBe(1);
      expect(new Set(group(0)).size).toBe(2);
    }
  });

  it('fills other inputs by dtype and level', () => {
    const inputs: InputSpec[] = [
      { name: 'w', level: 'token', dtype: 'f32' },
      { name: 'k', level: 'seq', dtype: 'i32' },
      { name: 'flag', level: 'group', dtype: 'bool' },
      { name: 'advantage', level: 'seq', dtype: 'f32' },
    ];
    const batch = syntheticBatch({ ...DEFAULTS, inputs });
    expect(data(batch, 'w').length).toBe(batch.numTokens);
    expect(data(batch, 'k').length).toBe(batch.numSeqs);
    expect(data(batch, 'k').every((v) => Number.isInteger(v) && v >= 0 && v < 100)).toBe(true);
    expect(data(batch, 'flag').length).toBe(batch.numGroups);
    expect(data(batch, 'flag').every((v) => v === 0 || v === 1)).toBe(true);
    expect(batch.tensors.get('advantage')!.level).toBe('seq');
    expect(data(batch, 'advantage').length).toBe(batch.numSeqs);
  });

  it('survives a round trip through a batch file unchanged', () => {
    const batch = syntheticBatch({ ...DEFAULTS, tokens: 700, groupSize: 4 });
    const lengths = Array.from({ length: batch.numSeqs }, (_, s) => batch.offsets[s + 1] - batch.offsets[s]);
    const bytes = writeSafetensors([
      ...STANDARD.map((i) => ({
        name: i.name,
        dtype: i.dtype === 'i32' ? ('I32' as const) : ('F32' as const),
        shape: [data(batch, i.name).length],
        data: data(batch, i.name),
      })),
      { name: 'mask', dtype: 'U8', shape: [batch.numTokens], data: batch.mask },
      { name: 'seq_lens', dtype: 'I32', shape: [batch.numSeqs], data: lengths },
    ]);
    const loaded = loadBatch(readSafetensors(bytes), { inputs: STANDARD, maskName: 'mask', groupSize: 4 });
    expect(snapshot(loaded)).toEqual(snapshot(batch));
  });

  it('rejects invalid counts', () => {
    expect(() => syntheticBatch({ ...DEFAULTS, tokens: -1 })).toThrow(BatchError);
    expect(() => syntheticBatch({ ...DEFAULTS, tokens: 1.5 })).toThrow(/--tokens/);
    expect(() => syntheticBatch({ ...DEFAULTS, groupSize: 0 })).toThrow(/--group-size/);
  });
});

describe('syntheticBatch with a vocabulary axis', () => {
  const logits: InputSpec = { name: 'logits', level: 'vocab', dtype: 'f32' };
  const tokenId: InputSpec = { name: 'token_id', level: 'token', dtype: 'i32' };
  const base = { seed: 3, groupSize: 4, maskName: 'mask', inputs: [logits, tokenId] };

  it('holds T × V logits and token ids below V (default V = 256)', () => {
    const b = syntheticBatch({ ...base, tokens: 300 });
    expect(b.vocabSize).toBe(256);
    expect(b.tensors.get('logits')!.data.length).toBe(300 * 256);
    expect(Math.max(...b.tensors.get('token_id')!.data)).toBeLessThan(256);
    expect(syntheticBatch({ ...base, tokens: 10, vocabSize: 7 }).tensors.get('logits')!.data.length).toBe(70);
  });

  it('refuses sizes whose T × V would not fit the host, with the default V too', () => {
    expect(() => syntheticBatch({ ...base, tokens: 2 ** 21 })).toThrow(BatchError);
    expect(() => syntheticBatch({ ...base, tokens: 2 ** 21 })).toThrow(/--vocab 256 is over 2\^28/);
    expect(() => syntheticBatch({ ...base, tokens: 4, vocabSize: 0 })).toThrow(
      /--vocab 0; expected a positive integer/,
    );
  });
});

describe('mulberry32', () => {
  it('is reproducible and uniform on [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const draws = Array.from({ length: 10000 }, () => a());
    expect(draws.slice(0, 5)).toEqual(Array.from({ length: 5 }, () => b()));
    expect(draws.every((v) => v >= 0 && v < 1)).toBe(true);
    expect(mean(draws)).toBeCloseTo(0.5, 1);
  });
});

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function std(values: number[]): number {
  const m = mean(values);
  return Math.sqrt(mean(values.map((v) => (v - m) ** 2)));
}

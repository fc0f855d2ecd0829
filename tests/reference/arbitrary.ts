/**
 * fast-check arbitrary for random ragged, grouped, packed batches (RefBatch).
 *
 * Defaults: 0-6 groups of 1-4 sequences, sequence lengths 0-7, random masks (mostly 1),
 * logp in [-5, 0], old_logp / ref_logp = logp + noise where the noise is usually small
 * (|noise| <= 0.15), sometimes exactly 0 (on-policy token) and occasionally large (|noise| <= 3.5).
 * Sequences are shuffled so groups are not contiguous. Rewards are either all in {0, 1}
 * or all continuous in [-1, 1] (chosen per batch).
 */
import fc from 'fast-check';
import type { RefBatch } from './batch.js';

export interface ArbRefBatchOptions {
  minGroups?: number; // default 0
  maxGroups?: number; // default 6
  maxSeqsPerGroup?: number; // default 4
  maxLen?: number; // default 7
  largeNoise?: number; // bound of the occasional large log-ratio noise, default 3.5
  onPolicy?: boolean; // old_logp = logp exactly (default false)
  rewards?: 'binary' | 'continuous' | 'any'; // default 'any'
}

interface ArbSeq {
  tokens: { logp: number; dOld: number; dRef: number; mask: number }[];
  rewardBin: number;
  rewardCont: number;
  key: number;
}

const STEPS = 2 ** 30;

/**
 * Roughly uniform double in [lo, hi] (fc.double is uniform over bit patterns, i.e. almost all
 * its values would be tiny in magnitude). Shrinks towards the midpoint.
 */
export function uniformDouble(lo: number, hi: number): fc.Arbitrary<number> {
  return fc.integer({ min: -STEPS, max: STEPS }).map((k) => (lo + hi) / 2 + ((hi - lo) / 2) * (k / STEPS));
}

function noise(large: number): fc.Arbitrary<number> {
  return fc.oneof(
    { arbitrary: uniformDouble(-0.15, 0.15), weight: 6 },
    { arbitrary: fc.constant(0), weight: 2 },
    { arbitrary: uniformDouble(-large, large), weight: 2 },
  );
}

export function arbRefBatch(opts: ArbRefBatchOptions = {}): fc.Arbitrary<RefBatch> {
  const minGroups = opts.minGroups ?? 0;
  const maxGroups = opts.maxGroups ?? 6;
  const maxSeqs = opts.maxSeqsPerGroup ?? 4;
  const maxLen = opts.maxLen ?? 7;
  const large = opts.largeNoise ?? 3.5;
  const rewards = opts.rewards ?? 'any';

  const token = fc.record({
    logp: uniformDouble(-5, 0),
    dOld: opts.onPolicy ? fc.constant(0) : noise(large),
    dRef: noise(large),
    mask: fc.oneof({ arbitrary: fc.constant(1), weight: 4 }, { arbitrary: fc.constant(0), weight: 1 }),
  });
  const seq: fc.Arbitrary<ArbSeq> = fc.record({
    tokens: fc.array(token, { minLength: 0, maxLength: maxLen }),
    rewardBin: fc.constantFrom(0, 1),
    rewardCont: uniformDouble(-1, 1),
    key: fc.nat({ max: 1000 }),
  });
  const group = fc.array(seq, { minLength: 1, maxLength: maxSeqs });
  const useBinary =
    rewards === 'binary' ? fc.constant(true) : rewards === 'continuous' ? fc.constant(false) : fc.boolean();

  return fc
    .record({ groups: fc.array(group, { minLength: minGroups, maxLength: maxGroups }), binary: useBinary })
    .map(({ groups, binary }) => {
      const flat: { g: number; s: ArbSeq; idx: number }[] = [];
      groups.forEach((seqs, g) => seqs.forEach((s) => flat.push({ g, s, idx: flat.length })));
      // interleave groups: order by random key, ties by original position
      flat.sort((x, y) => x.s.key - y.s.key || x.idx - y.idx);
      const b: RefBatch = {
        offsets: [0],
        groupOf: [],
        numGroups: groups.length,
        mask: [],
        logp: [],
        old_logp: [],
        ref_logp: [],
        reward: [],
      };
      for (const { g, s } of flat) {
        for (const tok of s.tokens) {
          b.mask.push(tok.mask);
          b.logp.push(tok.logp);
          b.old_logp.push(tok.logp + tok.dOld);
          b.ref_logp.push(tok.logp + tok.dRef);
        }
        b.offsets.push(b.offsets[b.offsets.length - 1]! + s.tokens.length);
        b.groupOf.push(g);
        b.reward.push(binary ? s.rewardBin : s.rewardCont);
      }
      return b;
    });
}

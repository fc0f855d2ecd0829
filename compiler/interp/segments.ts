/**
 * Index structure of a ragged batch for the interpreter: which sequence each token belongs to,
 * positions among valid tokens, and the map from an element of one level to its segment at a
 * coarser level.
 */
import type { RaggedBatch } from '../../runtime/batch/batch.js';
import type { Level } from '../../src/types/types.js';

export class Segments {
  readonly seqOf: Int32Array;
  readonly position: Float64Array;
  readonly length: Float64Array;
  readonly groupSize: Float64Array;
  readonly validTokens: number;

  constructor(readonly batch: RaggedBatch) {
    const { numTokens: T, numSeqs: S, numGroups: G, offsets, mask, groupOf } = batch;
    this.seqOf = new Int32Array(T);
    this.position = new Float64Array(T);
    this.length = new Float64Array(S);
    this.groupSize = new Float64Array(G);
    let valid = 0;
    for (let s = 0; s < S; s++) {
      let k = 0;
      for (let t = offsets[s]; t < offsets[s + 1]; t++) {
        this.seqOf[t] = s;
        this.position[t] = k;
        if (mask[t]) k++;
      }
      this.length[s] = k;
      valid += k;
      this.groupSize[groupOf[s]]++;
    }
    this.validTokens = valid;
  }

  size(level: Level): number {
    switch (level) {
      case 'token': return this.batch.numTokens;
      case 'seq': return this.batch.numSeqs;
      case 'group': return this.batch.numGroups;
      case 'batch': return 1;
    }
  }

  /** Whether element i of a level takes part in reductions (masked-out tokens do not). */
  valid(level: Level, i: number): boolean {
    return level !== 'token' || this.batch.mask[i] === 1;
  }

  /** Index at level `to` (coarser or equal) of element i at level `from`. */
  parent(from: Level, to: Level, i: number): number {
    if (from === to) return i;
    if (to === 'batch') return 0;
    if (from === 'token') i = this.seqOf[i];
    if (to === 'seq') return i;
    return this.batch.groupOf[i];
  }
}

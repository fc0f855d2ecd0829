/**
 * Deterministic synthetic batches, so `credo run METHOD` works without a batch file. Owns the
 * PRNG, the sequence/group/mask structure and realistic values for the standard input names.
 * Each tensor draws from its own stream (seeded from the seed and its name), so a tensor's values
 * do not depend on which other inputs a method declares.
 */
import {
  BatchError,
  countAt,
  offsetsFromLengths,
  type HostTensor,
  type InputSpec,
  type RaggedBatch,
} from '../../core/batch/batch.js';

/** Options of {@link syntheticBatch}. */
export interface SyntheticOptions {
  readonly seed: number;
  /** Total number of tokens T (a non-negative integer). */
  readonly tokens: number;
  /** Sequences per group G (a positive integer). */
  readonly groupSize: number;
  readonly inputs: readonly InputSpec[];
  /** null: every token counts (no masked-out runs). */
  readonly maskName: string | null;
  /** Mean sequence length the group count is sized for (default 64); lengths spread over [1, 2·mean). */
  readonly meanSeqLen?: number;
  /** Entries of the vocabulary axis for `token x vocab` inputs (default 256: T × V float64 values are held on the host). */
  readonly vocabSize?: number;
}

/** Sequences per group when neither the user nor a `require` says: 4 responses × 4 views for diffusion objectives, else 8. */
export function defaultGroupSize(inputs: readonly InputSpec[]): number {
  return isDiffusion(inputs) ? 4 * DIFFUSION_VIEWS : 8;
}

/** A diffusion-LM objective (docs/batch.md): its sequences are views of responses, `response` / `t` per sequence. */
function isDiffusion(inputs: readonly InputSpec[]): boolean {
  return inputs.some((i) => (i.name === 'response' || i.name === 't') && i.level === 'seq');
}

/** The mean sequence length the group count is sized for. */
const MEAN_SEQ_LEN = 64;
const MAX_SEQ_LEN = 127;
const MASKED_SEQ_FRACTION = 0.1;
const VOCAB_SIZE = 32000;
const SYNTHETIC_VOCAB_SIZE = 256;
const DIFFUSION_VIEWS = 4;

/** Batch structure shared by every tensor. */
interface Structure {
  readonly numSeqs: number;
  readonly numGroups: number;
  readonly groupSize: number;
  /**
   * Views per response (docs/batch.md, diffusion LMs): 4 when the program declares `response` or `t` and
   * the group size is a multiple of 4 — sequence j of a group is view j mod 4 of response ⌊j / 4⌋,
   * at time t = 1 − (j mod 4)/4 — else 1 (every sequence is its own response).
   */
  readonly views: number;
  readonly lengths: Int32Array;
  readonly offsets: Int32Array;
  readonly mask: Uint8Array;
}

/**
 * Generates a packed batch: max(1, round(tokens / (groupSize·64))) groups of `groupSize`
 * consecutive sequences whose lengths sum exactly to `tokens` (each ≥ 1 when tokens ≥ S), a mask
 * with a short masked-out run in about 10% of sequences, and values for every declared input.
 * Same options → identical batch.
 * @throws BatchError when tokens or groupSize is not a valid count.
 */
export function syntheticBatch(opts: SyntheticOptions): RaggedBatch {
  checkOptions(opts);
  const structure = makeStructure(opts);
  const tensors = new Map<string, HostTensor>();
  // token ids index the vocabulary the batch carries, when it carries one
  const vocabSize = vocabSizeOf(opts);
  for (const input of opts.inputs)
    tensors.set(input.name, makeInput(input, opts.inputs, structure, opts.seed, vocabSize));
  return {
    numTokens: opts.tokens,
    numSeqs: structure.numSeqs,
    numGroups: structure.numGroups,
    vocabSize,
    offsets: structure.offsets,
    groupOf: Int32Array.from({ length: structure.numSeqs }, (_, s) => Math.floor(s / structure.groupSize)),
    groupIds: Array.from({ length: structure.numGroups }, (_, g) => g),
    mask: structure.mask,
    tensors,
    layout: { kind: 'packed' },
  };
}

/** V of the batch: the option (or the default) when an input is `token x vocab`, else 0. */
function vocabSizeOf(opts: SyntheticOptions): number {
  return opts.inputs.some((i) => i.level === 'vocab') ? (opts.vocabSize ?? SYNTHETIC_VOCAB_SIZE) : 0;
}

function checkOptions(opts: SyntheticOptions): void {
  if (!Number.isSafeInteger(opts.tokens) || opts.tokens < 0) {
    throw new BatchError('batch', `--tokens ${opts.tokens}; expected a non-negative integer`);
  }
  if (!Number.isSafeInteger(opts.groupSize) || opts.groupSize < 1) {
    throw new BatchError('group_size', `--group-size ${opts.groupSize}; expected a positive integer`);
  }
  if (opts.meanSeqLen !== undefined && !(Number.isSafeInteger(opts.meanSeqLen) && opts.meanSeqLen >= 1)) {
    throw new BatchError('batch', `mean sequence length ${opts.meanSeqLen}; expected a positive integer`);
  }
  if (opts.vocabSize !== undefined && !(Number.isSafeInteger(opts.vocabSize) && opts.vocabSize >= 1)) {
    throw new BatchError('batch', `--vocab ${opts.vocabSize}; expected a positive integer`);
  }
  const V = vocabSizeOf(opts);
  if (opts.tokens * V > 2 ** 28) {
    throw new BatchError(
      'batch',
      `--tokens ${opts.tokens} × --vocab ${V} is over 2^28 vocabulary values; the CPU interpreter holds them as float64: use fewer tokens or a smaller vocabulary`,
    );
  }
  if (!Number.isFinite(opts.seed)) {
    throw new BatchError('batch', `--seed ${opts.seed}; expected a number`);
  }
}

// ---------------------------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------------------------

/** A uniform [0, 1) generator. */
export type Rng = () => number;

/** mulberry32: a small, fast 32-bit PRNG; same seed → same sequence. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A stream for one purpose: mixes the seed with the name (FNV-1a) so streams are independent. */
function stream(seed: number, name: string): Rng {
  let h = 0x811c9dc5 ^ (seed >>> 0) ^ Math.floor(seed / 4294967296);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return mulberry32(h);
}

/** Standard normal via Box–Muller. */
function normal(rng: Rng): number {
  const u = 1 - rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

function intBelow(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

// ---------------------------------------------------------------------------------------------
// Structure
// ---------------------------------------------------------------------------------------------

function makeStructure(opts: SyntheticOptions): Structure {
  const mean = opts.meanSeqLen ?? MEAN_SEQ_LEN;
  const numGroups = Math.max(1, Math.round(opts.tokens / (opts.groupSize * mean)));
  const numSeqs = numGroups * opts.groupSize;
  const lengths = makeLengths(
    stream(opts.seed, '#lengths'),
    numSeqs,
    opts.tokens,
    mean === MEAN_SEQ_LEN ? MAX_SEQ_LEN : 2 * mean - 1,
  );
  const offsets = offsetsFromLengths(lengths);
  const mask = new Uint8Array(opts.tokens).fill(1);
  if (opts.maskName !== null) maskRuns(stream(opts.seed, '#mask'), offsets, mask);
  const views = isDiffusion(opts.inputs) && opts.groupSize % DIFFUSION_VIEWS === 0 ? DIFFUSION_VIEWS : 1;
  return { numSeqs, numGroups, groupSize: opts.groupSize, views, lengths, offsets, mask };
}

/**
 * Random lengths in [1, maxLen] (127 by default), rescaled so they sum exactly to `tokens`: every sequence gets a base
 * of 1 (0 when tokens < S), the rest is shared in proportion to the draws, and rounding leftovers
 * go to the largest remainders.
 */
function makeLengths(rng: Rng, numSeqs: number, tokens: number, maxLen: number): Int32Array {
  const weights = Array.from({ length: numSeqs }, () => 1 + intBelow(rng, maxLen));
  const total = weights.reduce((a, b) => a + b, 0);
  const base = tokens >= numSeqs ? 1 : 0;
  const rest = tokens - base * numSeqs;
  const shares = weights.map((w) => (rest * w) / total);
  const lengths = Int32Array.from(shares, (x) => base + Math.floor(x));
  let leftover = tokens - lengths.reduce((a, b) => a + b, 0);
  const byRemainder = shares.map((x, s) => ({ s, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.s - b.s);
  for (let k = 0; leftover > 0; k++, leftover--) lengths[byRemainder[k].s]++;
  return lengths;
}

/**
 * Masks a short run (like a tool output) inside ~10% of the sequences long enough to hold one
 * with valid tokens on both sides; at least one such sequence gets a run when any exists.
 */
function maskRuns(rng: Rng, offsets: Int32Array, mask: Uint8Array): void {
  const eligible: number[] = [];
  for (let s = 0; s + 1 < offsets.length; s++) if (offsets[s + 1] - offsets[s] >= 4) eligible.push(s);
  const chosen = eligible.filter(() => rng() < MASKED_SEQ_FRACTION);
  if (chosen.length === 0 && eligible.length > 0) chosen.push(eligible[intBelow(rng, eligible.length)]);
  for (const s of chosen) {
    const len = offsets[s + 1] - offsets[s];
    const run = 1 + intBelow(rng, Math.min(16, Math.floor(len / 2)));
    const start = 1 + intBelow(rng, len - run - 1);
    mask.fill(0, offsets[s] + start, offsets[s] + start + run);
  }
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

function makeInput(
  input: InputSpec,
  inputs: readonly InputSpec[],
  st: Structure,
  seed: number,
  vocabSize: number,
): HostTensor {
  const count = countAt(
    { numTokens: st.offsets[st.numSeqs], numSeqs: st.numSeqs, numGroups: st.numGroups, vocabSize },
    input.level,
  );
  const data =
    standardValues(input, st, seed, count, vocabSize) ??
    behaviourValues(input, inputs, seed, count) ??
    genericValues(input, stream(seed, input.name), count);
  return { level: input.level, dtype: input.dtype, data };
}

/**
 * `old_X` beside an f32 input `X` of the same level (a behaviour policy's copy of any policy output,
 * e.g. `old_unmask_logit`): X's values plus N(0, 0.05²), as old_logp is to logp — drawn
 * independently, their log-ratios would be far from any on-policy batch.
 */
function behaviourValues(
  input: InputSpec,
  inputs: readonly InputSpec[],
  seed: number,
  count: number,
): Float64Array | null {
  if (!input.name.startsWith('old_') || input.dtype !== 'f32') return null;
  const current = inputs.find((i) => i.name === input.name.slice(4) && i.level === input.level && i.dtype === 'f32');
  if (!current) return null;
  const base = genericValues(current, stream(seed, current.name), count);
  const rng = stream(seed, input.name);
  return f32(base.map((v) => v + 0.05 * normal(rng)));
}

/** Values for the standard names of the batch contract, or null for any other name. */
function standardValues(
  input: InputSpec,
  st: Structure,
  seed: number,
  count: number,
  vocabSize: number,
): Float64Array | null {
  const rng = stream(seed, input.name);
  switch (input.name) {
    case 'logp':
      return baseLogp(seed, count);
    case 'old_logp':
      return perturbedLogp(baseLogp(seed, count), rng, 0.05);
    case 'rollout_logp': // the inference engine's log-prob (OpenRLHF; TRL: sampling_logp): near the trainer's, as old_logp is
    case 'sampling_logp':
      return perturbedLogp(baseLogp(seed, count), rng, 0.05);
    case 'ref_logp':
      return perturbedLogp(baseLogp(seed, count), rng, 0.1);
    case 'entropy':
      return f32(Float64Array.from({ length: count }, () => 3 * rng()));
    case 'token_id':
      return Float64Array.from({ length: count }, () => intBelow(rng, vocabSize || VOCAB_SIZE));
    case 'prompt': // the prompt's tokens lead each sequence: its first quarter (a response keeps ≥ 1 token)
      return input.level === 'token' && input.dtype === 'bool' ? promptPrefix(st) : null;
    case 'target': // counts per (position, vocabulary entry), e.g. ILM's dropped tokens per gap: sparse
      return input.level === 'vocab' && vocabSize > 0 ? sparseCounts(rng, count / vocabSize, vocabSize) : null;
    case 'chosen':
      return Float64Array.from({ length: count }, (_, i) => (i % 2 === 0 ? 1 : 0));
    case 'reward':
      return input.level === 'seq' ? seqRewards(rng, st) : Float64Array.from({ length: count }, () => bernoulli(rng));
    case 'response':
      return input.level === 'seq'
        ? Float64Array.from({ length: count }, (_, s) => Math.floor((s % st.groupSize) / st.views))
        : null;
    case 't':
      return input.level === 'seq'
        ? Float64Array.from({ length: count }, (_, s) => 1 - (s % st.views) / st.views)
        : null;
    case 'seq_lens':
      return input.level === 'seq' ? Float64Array.from(st.lengths) : null;
    case 'group_id':
      return input.level === 'seq'
        ? Float64Array.from({ length: count }, (_, s) => Math.floor(s / st.groupSize))
        : null;
    default:
      return null; // value, advantage and any other name: generic by dtype (f32 → N(0, 1)).
  }
}

/** 1 at the first ⌊L/4⌋ tokens of each sequence of length L. */
function promptPrefix(st: Structure): Float64Array {
  const out = new Float64Array(st.offsets[st.numSeqs]);
  for (let s = 0; s < st.numSeqs; s++) out.fill(1, st.offsets[s], st.offsets[s] + Math.floor(st.lengths[s] / 4));
  return out;
}

/** One count at a random entry of a third of the rows, every other entry 0 (rows of V entries). */
function sparseCounts(rng: Rng, rows: number, V: number): Float64Array {
  const out = new Float64Array(rows * V);
  for (let r = 0; r < rows; r++) if (rng() < 1 / 3) out[r * V + intBelow(rng, V)] = 1;
  return out;
}

/** Log-probs in about [-6, -0.01], skewed towards likely tokens; the same for every logp variant. */
function baseLogp(seed: number, count: number): Float64Array {
  const rng = stream(seed, 'logp');
  return f32(Float64Array.from({ length: count }, () => -0.01 - 5.99 * rng() ** 2));
}

/** logp + N(0, sd²), kept ≤ 0 so it stays a log-probability. */
function perturbedLogp(logp: Float64Array, rng: Rng, sd: number): Float64Array {
  return f32(logp.map((v) => Math.min(v + sd * normal(rng), -1e-6)));
}

/**
 * Bernoulli(0.5) rewards, one per response (equal over its views); with ≥ 2 groups, the last group
 * is all-equal and the first is mixed.
 */
function seqRewards(rng: Rng, st: Structure): Float64Array {
  const rewards = new Float64Array(st.numSeqs);
  for (let s = 0; s < st.numSeqs; s += st.views) rewards.fill(bernoulli(rng), s, s + st.views);
  if (st.numGroups < 2) return rewards;
  const last = (st.numGroups - 1) * st.groupSize;
  rewards.fill(rewards[last], last, st.numSeqs);
  const first = rewards.subarray(0, st.groupSize);
  if (st.groupSize > st.views && first.every((r) => r === first[0])) first.fill(1 - first[0], 0, st.views);
  return rewards;
}

/** Any other input: f32 N(0, 1), i32 in [0, 100), bool Bernoulli(0.5). */
function genericValues(input: InputSpec, rng: Rng, count: number): Float64Array {
  if (input.dtype === 'i32') return Float64Array.from({ length: count }, () => intBelow(rng, 100));
  if (input.dtype === 'bool') return Float64Array.from({ length: count }, () => bernoulli(rng));
  // logits: N(0, 2²), a peaked-enough distribution over the vocabulary
  const scale = input.level === 'vocab' ? 2 : 1;
  return f32(Float64Array.from({ length: count }, () => scale * normal(rng)));
}

function bernoulli(rng: Rng): number {
  return rng() < 0.5 ? 1 : 0;
}

/** Rounds to float32 so every backend (and a file round trip) sees exactly the same inputs. */
function f32(values: Float64Array): Float64Array {
  return values.map(Math.fround);
}

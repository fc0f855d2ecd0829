/**
 * Random ragged grouped batches for differential testing (`credo equiv`), as fast-check
 * arbitraries so counterexamples shrink. Values aim at the places where objectives differ:
 * log-ratios of 0, on clip boundaries and of ±50; all-equal rewards; empty and length-1
 * sequences; groups of one. Every float is a float32 value, so a saved counterexample reproduces
 * exactly when read back.
 */
import fc from 'fast-check';
import { offsetsFromLengths, type HostTensor, type InputSpec, type RaggedBatch } from '../../core/batch/batch.js';
import type { Program } from '../../core/ir/program.js';
import { meetsRequirements, requiredGroupSize } from '../../compiler/interp/requirements.js';

export interface BatchShape {
  readonly inputs: readonly InputSpec[];
  /** old_logp equals logp exactly. */
  readonly onPolicy: boolean;
  readonly equalLengths: boolean;
  readonly groupSize?: number;
  /** Log-ratios worth hitting exactly (clip boundaries of the programs' params). */
  readonly boundaries: readonly number[];
  /** Inputs drawn as copies of another input (`--assume a == b`): copy name → source name. */
  readonly copies?: Readonly<Record<string, string>>;
}

const STEPS = 1 << 20;

/** Entries of the vocabulary axis when a program reads `token x vocab` inputs: i32 values (token ids) are drawn below it. */
export const EQUIV_VOCAB_SIZE = 5;

function uniform(lo: number, hi: number): fc.Arbitrary<number> {
  return fc.integer({ min: -STEPS, max: STEPS }).map((k) => Math.fround((lo + hi) / 2 + ((hi - lo) / 2) * (k / STEPS)));
}

interface Structure {
  readonly groupSizes: number[];
  readonly lengths: number[];
}

function structure(shape: BatchShape): fc.Arbitrary<Structure> {
  const sizes = fc.array(shape.groupSize ? fc.constant(shape.groupSize) : fc.integer({ min: 1, max: 4 }), {
    minLength: 1,
    maxLength: 4,
  });
  return sizes.chain((groupSizes) => {
    const S = groupSizes.reduce((a, b) => a + b, 0);
    const lengths = shape.equalLengths
      ? fc.integer({ min: 1, max: 6 }).map((L) => new Array<number>(S).fill(L))
      : fc.array(fc.integer({ min: 0, max: 6 }), { minLength: S, maxLength: S });
    return lengths.map((ls) => ({ groupSizes, lengths: ls }));
  });
}

function logRatio(shape: BatchShape): fc.Arbitrary<number> {
  const targeted = shape.boundaries.length ? [fc.constantFrom(...shape.boundaries.map((b) => Math.fround(b)))] : [];
  return fc.oneof(fc.constant(0), uniform(-0.3, 0.3), uniform(-2, 2), fc.constantFrom(50, -50, 5, -5), ...targeted);
}

function values(spec: InputSpec, n: number): fc.Arbitrary<number[]> {
  const of = (a: fc.Arbitrary<number>) => fc.array(a, { minLength: n, maxLength: n });
  if (spec.dtype === 'bool') return of(fc.constantFrom(0, 1));
  if (spec.dtype === 'i32') return of(fc.integer({ min: 0, max: EQUIV_VOCAB_SIZE - 1 }));
  if (spec.level === 'vocab') return of(fc.oneof(uniform(-4, 4), fc.constantFrom(0, 8, -8)));
  switch (spec.name) {
    case 'logp':
      return of(uniform(-5, 0));
    case 'reward':
      return fc.oneof(
        of(fc.constantFrom(0, 1)),
        of(uniform(-1, 1)),
        fc.constantFrom(0, 1).map((r) => new Array<number>(n).fill(r)),
      );
    case 'entropy':
      return of(uniform(0, 3));
    case 't': // a diffusion timestep (docs/batch.md): in (0, 1]
      return of(fc.oneof(uniform(0.05, 1), fc.constant(1)));
    case 'p_ce': // a probability
      return of(fc.oneof(uniform(0, 1), fc.constantFrom(0, 1)));
    default:
      return of(fc.oneof(uniform(-3, 3), fc.constantFrom(0, 1, -1)));
  }
}

/**
 * Random batches an objective accepts: groups of its `require`d size, then filtered by its other
 * `require`s (a preference pair's `sum(f32(chosen) per group) == 1` holds for half the groups of
 * 2, so for 1 in 16 batches of 4 pairs at worst).
 */
export function arbBatchFor(
  program: Program,
  inputs: readonly InputSpec[],
  shape: Partial<BatchShape> = {},
): fc.Arbitrary<RaggedBatch> {
  const groupSize = shape.groupSize ?? requiredGroupSize(program);
  const arb = arbBatch({ onPolicy: false, equalLengths: false, boundaries: [], ...shape, inputs, groupSize });
  return program.requires.length ? arb.filter((b) => meetsRequirements(program, b)) : arb;
}

/** An arbitrary batch with every declared input, honouring the structural assumptions. */
export function arbBatch(shape: BatchShape): fc.Arbitrary<RaggedBatch> {
  return structure(shape).chain((st) => {
    const S = st.lengths.length;
    const T = st.lengths.reduce((a, b) => a + b, 0);
    const G = st.groupSizes.length;
    const V = shape.inputs.some((i) => i.level === 'vocab') ? EQUIV_VOCAB_SIZE : 0;
    const size = (level: InputSpec['level']) =>
      level === 'vocab' ? T * V : level === 'token' ? T : level === 'seq' ? S : G;
    const tensors: Record<string, fc.Arbitrary<number[]>> = {};
    for (const spec of shape.inputs) {
      if (
        (spec.name === 'old_logp' || spec.name === 'ref_logp') &&
        spec.level === 'token' &&
        shape.inputs.some((i) => i.name === 'logp')
      ) {
        // relative to logp: drawn as a log-ratio, combined below
        tensors[spec.name] = fc.array(spec.name === 'old_logp' && shape.onPolicy ? fc.constant(0) : logRatio(shape), {
          minLength: T,
          maxLength: T,
        });
      } else tensors[spec.name] = values(spec, size(spec.level));
    }
    const mask = fc.array(fc.constantFrom(1, 1, 1, 0), { minLength: T, maxLength: T });
    return fc.record({ mask, tensors: fc.record(tensors) }).map(({ mask: m, tensors: raw }) => {
      const logp = raw.logp;
      const map = new Map<string, HostTensor>();
      for (const spec of shape.inputs) {
        let data = raw[spec.name];
        if (logp && (spec.name === 'old_logp' || spec.name === 'ref_logp') && spec.level === 'token')
          data = data.map((d, t) => Math.fround(logp[t] - d));
        map.set(spec.name, { level: spec.level, dtype: spec.dtype, data: Float64Array.from(data) });
      }
      for (const [copy, source] of Object.entries(shape.copies ?? {})) {
        const s = map.get(source)!;
        map.set(copy, { ...s, data: Float64Array.from(s.data) });
      }
      const groupOf = Int32Array.from(st.groupSizes.flatMap((k, g) => new Array<number>(k).fill(g)));
      return {
        numTokens: T,
        numSeqs: S,
        numGroups: G,
        vocabSize: V,
        offsets: offsetsFromLengths(st.lengths),
        groupOf,
        groupIds: Array.from({ length: G }, (_, g) => g),
        mask: Uint8Array.from(m),
        tensors: map,
        layout: { kind: 'packed' as const },
      };
    });
  });
}

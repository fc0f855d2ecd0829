/**
 * The jax-js comparison row of `npm run bench`: the same three objectives (dapo, gspo, ctpo)
 * written with jax-js's numpy API, differentiated with `valueAndGrad` and fused with `jit`, run on
 * jax-js's WebGPU backend (Dawn through the npm `webgpu` package, like the rest of the bench).
 *
 * Bench-only: `@jax-js/jax` is a devDependency and nothing under src/, compiler/, runtime/ or
 * tests/ may import it (or this file).
 *
 * What runs where: everything that depends only on the batch's structure (offsets, groups, mask) is
 * precomputed on the host as index arrays (token → sequence ids, sequence/group boundaries, the
 * mask as float, token positions, valid-token counts); all float math on logp / old_logp / reward
 * (advantages, ratios, clipping, segmented sums and scans, the loss) and the gradient run in jax-js.
 *
 * Ragged sums and scans over tokens: jax-js has no segment-sum (and its scatter cannot be called
 * directly), so they use one global `cumulativeSum` with a leading 0 plus gathers: the sum over a
 * sequence is C[end] - C[start], and the inclusive scan at token t is C[t+1] - C[start of t's
 * sequence]. In float32 this costs precision as the global prefix grows (absolute error about
 * 2^-24 · |prefix|), which stays small for logp - old_logp (a random walk around 0). Per-group
 * reward statistics instead gather each group into a dense [G, maxGroupSize] block (padding masked)
 * and sum along the row, so an all-equal group has exactly zero variance as in the reference.
 *
 * Memory: jax-js frees device buffers by explicit reference counting ("move" semantics: every
 * argument passed to an operation or jitted function is consumed; `.ref` adds a reference). The
 * loss functions below consume each argument exactly once, and the bench passes `.ref`s of its
 * resident inputs and disposes every output, so repeated calls do not leak.
 */
import type { Array as JaxArray, OwnedFunction } from '@jax-js/jax';
import { withTimeout } from '../runtime/webgpu/device.js';

export interface JaxBatch {
  offsets: Int32Array;
  groupOf: Int32Array;
  numGroups: number;
  mask: Uint8Array;
  logp: Float32Array;
  old_logp: Float32Array;
  reward: Float32Array;
}

export interface JaxResult {
  resident_ms: number;
  e2e_ms: number;
  loss: number;
  grad: Float32Array;
  compile_ms: number;
}

export type JaxObjective = 'dapo' | 'gspo' | 'ctpo';

type Jax = typeof import('@jax-js/jax');
type DawnModule = { create: (flags: string[]) => GPU; globals: Record<string, unknown> };

let jax: Jax | null = null;
/** Dawn's GPU object: must stay reachable while jax-js's device lives (dawn.node tears down otherwise). */
let dawnGpu: GPU | null = null;
let initResult: Promise<{ ok: true } | { ok: false; reason: string }> | null = null;

/** Opens jax-js on the WebGPU (Dawn) device once; returns null with a reason if it cannot. */
export function initJax(): Promise<{ ok: true } | { ok: false; reason: string }> {
  initResult ??= openJax();
  return initResult;
}

async function openJax(): Promise<{ ok: true } | { ok: false; reason: string }> {
  if (process.env.CREDO_GPU === 'off') return { ok: false, reason: 'GPU disabled by CREDO_GPU=off' };
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  let mod: DawnModule;
  try {
    mod = (await import('webgpu')) as unknown as DawnModule;
  } catch (e) {
    return { ok: false, reason: `the \`webgpu\` package (Dawn) could not be loaded: ${(e as Error).message}` };
  }
  let lib: Jax;
  try {
    lib = await import('@jax-js/jax');
  } catch (e) {
    return { ok: false, reason: `@jax-js/jax could not be loaded: ${(e as Error).message}` };
  }
  Object.assign(globalThis, mod.globals);
  try {
    dawnGpu = mod.create([]);
    installNavigatorGpu(dawnGpu);
    const devices = await withTimeout(lib.init('webgpu'), 30_000, "jax-js init('webgpu')");
    if (!devices.includes('webgpu'))
      return { ok: false, reason: `jax-js found no WebGPU adapter (devices: ${devices.join(', ')})` };
  } catch (e) {
    return { ok: false, reason: `jax-js could not open WebGPU: ${(e as Error).message}` };
  }
  jax = lib;
  return { ok: true };
}

/**
 * jax-js looks for `navigator.gpu` (and reads `navigator.userAgent`). Node 20 has no `navigator`;
 * Node 21+ has a getter-only one, so the property is defined rather than assigned.
 */
function installNavigatorGpu(gpu: GPU): void {
  const g = globalThis as unknown as { navigator?: Record<string, unknown> };
  const existing = g.navigator;
  if (existing && typeof existing === 'object') {
    try {
      Object.defineProperty(existing, 'gpu', { value: gpu, configurable: true, writable: true });
      if ((existing as { gpu?: unknown }).gpu === gpu) return;
    } catch {
      // fall through: replace the whole global
    }
  }
  const nav = {
    userAgent: typeof existing?.userAgent === 'string' ? existing.userAgent : `Node.js/${process.version}`,
    hardwareConcurrency: typeof existing?.hardwareConcurrency === 'number' ? existing.hardwareConcurrency : 4,
    gpu,
  };
  Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true, writable: true, enumerable: false });
}

// ---------------------------------------------------------------------------------------------
// Host-side index structure
// ---------------------------------------------------------------------------------------------

/** Index arrays derived only from offsets / groupOf / mask. */
interface HostIndex {
  /** [T] sequence id of each token. */
  seg: Int32Array;
  /** [T] 1.0 where the token is valid. */
  maskF: Float32Array;
  /** [S] first token of each sequence; [S] one past its last token. */
  segStart: Int32Array;
  segEnd: Int32Array;
  /** [S] number of valid tokens of each sequence. */
  lenF: Float32Array;
  /** [T] first token of the token's sequence (ctpo scan). */
  tokStart: Int32Array;
  /** [T] 1-based position of the token among its sequence's valid tokens (ctpo). */
  pos: Float32Array;
  /** [G, maxGroupSize] the sequences of each group (0 as padding); 1.0 where not padding; [G] group sizes. */
  gIdx: Int32Array;
  gValid: Float32Array;
  gCount: Float32Array;
  maxGroupSize: number;
}

function hostIndex(b: JaxBatch, objective: JaxObjective): HostIndex {
  const S = b.offsets.length - 1;
  const T = b.offsets[S];
  const G = b.numGroups;
  const seg = new Int32Array(T);
  const maskF = new Float32Array(T);
  const segStart = b.offsets.subarray(0, S);
  const segEnd = b.offsets.subarray(1, S + 1);
  const lenF = new Float32Array(S);
  const scan = objective === 'ctpo';
  const tokStart = new Int32Array(scan ? T : 0);
  const pos = new Float32Array(scan ? T : 0);
  for (let s = 0; s < S; s++) {
    const a = b.offsets[s];
    const e = b.offsets[s + 1];
    let n = 0;
    for (let t = a; t < e; t++) {
      seg[t] = s;
      const m = b.mask[t] ? 1 : 0;
      maskF[t] = m;
      n += m;
      if (scan) {
        tokStart[t] = a;
        pos[t] = Math.max(n, 1);
      }
    }
    lenF[s] = n;
  }
  const gCountI = new Int32Array(G);
  for (let s = 0; s < S; s++) gCountI[b.groupOf[s]]++;
  const maxGroupSize = Math.max(1, ...gCountI);
  const gIdx = new Int32Array(G * maxGroupSize);
  const gValid = new Float32Array(G * maxGroupSize);
  const fill = new Int32Array(G);
  for (let s = 0; s < S; s++) {
    const g = b.groupOf[s];
    const k = g * maxGroupSize + fill[g]++;
    gIdx[k] = s;
    gValid[k] = 1;
  }
  return {
    seg,
    maskF,
    segStart,
    segEnd,
    lenF,
    tokStart,
    pos,
    gIdx,
    gValid,
    gCount: Float32Array.from(gCountI),
    maxGroupSize,
  };
}

// ---------------------------------------------------------------------------------------------
// The objectives in jax-js (each consumes every argument exactly once)
// ---------------------------------------------------------------------------------------------

type GroupIx = { groupOf: JaxArray; gIdx: JaxArray; gValid: JaxArray; gCount: JaxArray };
type DapoIx = GroupIx & { seg: JaxArray; maskF: JaxArray };
type GspoIx = DapoIx & { segStart: JaxArray; segEnd: JaxArray; lenF: JaxArray };
type CtpoIx = DapoIx & { tokStart: JaxArray; pos: JaxArray };
type AnyIx = DapoIx | GspoIx | CtpoIx;

const IX_KEYS: Record<JaxObjective, (Exclude<keyof HostIndex, 'maxGroupSize'> | 'groupOf')[]> = {
  dapo: ['groupOf', 'gIdx', 'gValid', 'gCount', 'seg', 'maskF'],
  gspo: ['groupOf', 'gIdx', 'gValid', 'gCount', 'seg', 'maskF', 'segStart', 'segEnd', 'lenF'],
  ctpo: ['groupOf', 'gIdx', 'gValid', 'gCount', 'seg', 'maskF', 'tokStart', 'pos'],
};

/** Sums of `x` over the index ranges [start, end) of a prefix-sum array with a leading 0. */
function rangeSums(j: Jax, x: JaxArray, start: JaxArray, end: JaxArray): JaxArray {
  const np = j.numpy;
  const c = np.cumulativeSum(x, { includeInitial: true });
  return np.take(c.ref, end).sub(np.take(c, start));
}

/**
 * GRPO advantage per sequence: (r - mean_g) / (std_g + 1e-6), unbiased std, 0 when var <= 0.
 * Group sums use a dense [G, maxGroupSize] gather (padding masked out) rather than a global prefix
 * sum, so that an all-equal group gets exactly zero variance.
 */
function advantages(j: Jax, reward: JaxArray, ix: GroupIx): JaxArray {
  const np = j.numpy;
  const { groupOf, gIdx, gValid, gCount } = ix;
  const groupSum = (x: JaxArray, idx: JaxArray, valid: JaxArray) => np.sum(np.take(x, idx).mul(valid), 1);
  const mean = groupSum(reward.ref, gIdx.ref, gValid.ref).div(gCount.ref);
  const dev = reward.sub(np.take(mean, groupOf.ref));
  const variance = groupSum(dev.ref.mul(dev.ref), gIdx, gValid).div(np.maximum(gCount.sub(1), 1));
  const std = np.where(variance.ref.greater(0), np.sqrt(variance), 0);
  return dev.div(np.take(std, groupOf).add(1e-6));
}

/** Dual clip of a clipped surrogate lclip: adv < 0 ? min(lclip, -adv·cap) : lclip. */
function dualClip(j: Jax, advT: JaxArray, lclip: JaxArray, cap: JaxArray | number): JaxArray {
  const np = j.numpy;
  const l3 = advT.ref.neg().mul(cap);
  return np.where(advT.less(0), np.minimum(lclip.ref, l3), lclip);
}

function dapoLoss(j: Jax, logp: JaxArray, old: JaxArray, reward: JaxArray, ix: DapoIx): JaxArray {
  const np = j.numpy;
  const advT = np.take(advantages(j, reward, ix), ix.seg);
  const ratio = np.exp(np.clip(logp.sub(old), -20, 20));
  const l1 = advT.ref.neg().mul(ratio.ref);
  const l2 = advT.ref.neg().mul(np.clip(ratio, 0.8, 1.28));
  const l = dualClip(j, advT, np.maximum(l1, l2), 10);
  const n = np.maximum(np.sum(ix.maskF.ref), 1);
  return np.sum(l.mul(ix.maskF)).div(n);
}

function gspoLoss(j: Jax, logp: JaxArray, old: JaxArray, reward: JaxArray, ix: GspoIx): JaxArray {
  const np = j.numpy;
  const adv = advantages(j, reward, ix);
  const lenSafe = np.maximum(ix.lenF.ref, 1);
  const logS = rangeSums(j, logp.ref.sub(old).mul(ix.maskF.ref), ix.segStart, ix.segEnd).div(lenSafe.ref);
  const logSt = np.minimum(
    np.take(j.lax.stopGradient(logS), ix.seg.ref).add(logp.ref).sub(j.lax.stopGradient(logp)),
    10,
  );
  const st = np.exp(logSt);
  const advT = np.take(adv, ix.seg.ref);
  const l = np.maximum(advT.ref.neg().mul(st.ref), advT.neg().mul(np.clip(st, 1 - 3e-4, 1 + 4e-4)));
  // Token weight mask / length_s, averaged over the sequences that have a valid token.
  const seqs = np.maximum(np.sum(ix.lenF.greater(0).astype(np.float32)), 1);
  const w = ix.maskF.div(np.take(lenSafe, ix.seg));
  return np.sum(l.mul(w)).div(seqs);
}

function ctpoLoss(j: Jax, logp: JaxArray, old: JaxArray, reward: JaxArray, ix: CtpoIx): JaxArray {
  const np = j.numpy;
  const T = logp.shape[0];
  const advT = np.take(advantages(j, reward, ix), ix.seg);
  const d = np.clip(logp.ref.sub(old), -20, 20).mul(ix.maskF.ref);
  // Segmented inclusive scan: global prefix sums (leading 0) minus the prefix at the sequence start.
  const c = np.cumulativeSum(d, { includeInitial: true });
  const k = c.ref.slice([1, T + 1]).sub(np.take(c, ix.tokStart));
  const logR = np.minimum(j.lax.stopGradient(k).add(logp.ref).sub(j.lax.stopGradient(logp)), 10);
  const scale = np.sqrt(ix.pos);
  const rc = np.exp(np.clip(logR.ref, scale.ref.mul(-0.025), scale.ref.mul(0.05)));
  const ratio = np.exp(logR);
  const cap = np.exp(scale.mul(0.05));
  const l1 = advT.ref.neg().mul(ratio);
  const l2 = advT.ref.neg().mul(rc);
  const l = dualClip(j, advT, np.maximum(l1, l2), cap);
  const n = np.maximum(np.sum(ix.maskF.ref), 1);
  return np.sum(l.mul(ix.maskF)).div(n);
}

type LossFn = (logp: JaxArray, old: JaxArray, reward: JaxArray, ix: AnyIx) => JaxArray;
type Compiled = OwnedFunction<(logp: JaxArray, old: JaxArray, reward: JaxArray, ix: AnyIx) => [JaxArray, JaxArray]>;

function lossFn(j: Jax, objective: JaxObjective): LossFn {
  switch (objective) {
    case 'dapo':
      return (logp, old, reward, ix) => dapoLoss(j, logp, old, reward, ix);
    case 'gspo':
      return (logp, old, reward, ix) => gspoLoss(j, logp, old, reward, ix as GspoIx);
    case 'ctpo':
      return (logp, old, reward, ix) => ctpoLoss(j, logp, old, reward, ix as CtpoIx);
  }
}

// ---------------------------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------------------------

interface DeviceInputs {
  logp: JaxArray;
  old: JaxArray;
  reward: JaxArray;
  ix: AnyIx;
}

function upload(j: Jax, objective: JaxObjective, b: JaxBatch, h: HostIndex): DeviceInputs {
  const np = j.numpy;
  const put = (a: Float32Array | Int32Array, shape = [a.length]) => np.array(a, { shape, device: 'webgpu' });
  const { maxGroupSize, ...arrays } = h;
  const src: Record<string, Float32Array | Int32Array> = { ...arrays, groupOf: b.groupOf };
  const dense = [b.numGroups, maxGroupSize];
  const ix: Record<string, JaxArray> = {};
  for (const k of IX_KEYS[objective]) ix[k] = put(src[k], k === 'gIdx' || k === 'gValid' ? dense : undefined);
  return { logp: put(b.logp), old: put(b.old_logp), reward: put(b.reward), ix: ix as unknown as AnyIx };
}

/** New references to every input (the jitted function consumes what it is given). */
function refs(d: DeviceInputs): DeviceInputs {
  const ix: Record<string, JaxArray> = {};
  for (const [k, v] of Object.entries(d.ix)) ix[k] = (v as JaxArray).ref;
  return { logp: d.logp.ref, old: d.old.ref, reward: d.reward.ref, ix: ix as unknown as AnyIx };
}

function disposeInputs(d: DeviceInputs): void {
  d.logp.dispose();
  d.old.dispose();
  d.reward.dispose();
  for (const v of Object.values(d.ix)) (v as JaxArray).dispose();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const compiledCache = new Map<JaxObjective, Compiled>();

function compiled(j: Jax, objective: JaxObjective): Compiled {
  let f = compiledCache.get(objective);
  if (!f) {
    f = j.jit(j.valueAndGrad(lossFn(j, objective))) as unknown as Compiled;
    compiledCache.set(objective, f);
  }
  return f;
}

/** One call on resident inputs: loss read back, gradient complete on device (returned, owned by the caller). */
async function callResident(f: Compiled, d: DeviceInputs): Promise<{ loss: number; grad: JaxArray }> {
  const a = refs(d);
  const [loss, grad] = f(a.logp, a.old, a.reward, a.ix);
  const [data] = await Promise.all([loss.data(), grad.blockUntilReady()]);
  return { loss: Number(data[0]), grad };
}

/** Host arrays in, host loss and gradient out. */
async function callE2e(
  j: Jax,
  f: Compiled,
  objective: JaxObjective,
  b: JaxBatch,
): Promise<{ loss: number; grad: Float32Array }> {
  const d = upload(j, objective, b, hostIndex(b, objective));
  const [loss, grad] = f(d.logp, d.old, d.reward, d.ix);
  const [l, g] = await Promise.all([loss.data(), grad.data()]);
  return { loss: Number(l[0]), grad: g as Float32Array };
}

/**
 * Times jit(valueAndGrad(loss wrt logp)) for objective 'dapo' | 'gspo' | 'ctpo' on the batch: median
 * of `reps` calls after one warm-up. resident = inputs already device arrays, ending when the loss is
 * read back and the gradient is complete on device; e2e = from host Float32Arrays to loss + gradient
 * in a host Float32Array (host index precomputation, uploads, the call and both read-backs).
 * compile_ms = the first (tracing + kernel compilation) call on resident inputs.
 */
export async function benchJax(objective: JaxObjective, batch: JaxBatch, reps: number): Promise<JaxResult> {
  const init = await initJax();
  if (!init.ok) throw new Error(init.reason);
  const j = jax!;
  const f = compiled(j, objective);
  const d = upload(j, objective, batch, hostIndex(batch, objective));
  try {
    let t = performance.now();
    (await callResident(f, d)).grad.dispose();
    const compile_ms = performance.now() - t;
    (await callResident(f, d)).grad.dispose(); // warm-up
    const resident: number[] = [];
    for (let i = 0; i < reps; i++) {
      t = performance.now();
      const r = await callResident(f, d);
      resident.push(performance.now() - t);
      r.grad.dispose();
    }
    let last = await callE2e(j, f, objective, batch); // warm-up
    const e2e: number[] = [];
    for (let i = 0; i < reps; i++) {
      t = performance.now();
      last = await callE2e(j, f, objective, batch);
      e2e.push(performance.now() - t);
    }
    return { resident_ms: median(resident), e2e_ms: median(e2e), loss: last.loss, grad: last.grad, compile_ms };
  } finally {
    disposeInputs(d);
  }
}

/** Frees the jitted functions' cached constants (jax-js's own device stays open for the process). */
export function disposeJax(): void {
  for (const f of compiledCache.values()) f.dispose();
  compiledCache.clear();
  logitsCompiled?.dispose();
  logitsCompiled = null;
}

// ---------------------------------------------------------------------------------------------
// Over logits (the vocabulary rows of the bench, bench/vocab.ts)
// ---------------------------------------------------------------------------------------------

/** A JaxBatch with [T × V] logits and the sampled token ids instead of logp. */
export interface JaxLogitsBatch extends Omit<JaxBatch, 'logp'> {
  logits: Float32Array;
  tokenId: Int32Array;
  vocab: number;
}

type LogitsCompiled = OwnedFunction<
  (logits: JaxArray, old: JaxArray, reward: JaxArray, ix: AnyIx, ids: JaxArray) => [JaxArray, JaxArray]
>;
let logitsCompiled: LogitsCompiled | null = null;

/**
 * dapo_logits (temperature 1, entropy bonus `ENTROPY_COEFF`) as jax-js writes it: log_softmax over
 * the rows, the sampled token's log-prob by takeAlongAxis, DAPO on it, minus the bonus times the
 * valid tokens' mean entropy. Every [T × V] intermediate (log-softmax, softmax, their products and
 * the gradient's) is an array of its own: what a framework without vocabulary fusion does.
 */
const ENTROPY_COEFF = 0.01;

function dapoLogitsLoss(j: Jax, logits: JaxArray, old: JaxArray, reward: JaxArray, ix: DapoIx, ids: JaxArray) {
  const np = j.numpy;
  const ls = j.nn.logSoftmax(logits, -1);
  const entropy = np.sum(np.exp(ls.ref).mul(ls.ref), -1).neg();
  // the sampled token's log-prob through a one-hot mask (takeAlongAxis's gradient, a scatter, cannot be jitted)
  const logp = np.sum(ls.mul(ids), -1);
  const maskF = ix.maskF.ref;
  const n = np.maximum(np.sum(maskF.ref), 1);
  const bonus = np.sum(entropy.mul(maskF)).div(n).mul(ENTROPY_COEFF);
  return dapoLoss(j, logp, old, reward, ix).sub(bonus);
}

/**
 * Times jit(valueAndGrad(dapo_logits wrt logits)) on resident inputs (median of `reps` after a
 * warm-up). Throws what jax-js throws when it cannot (a [T × V] array beyond a binding, say).
 */
export async function benchJaxLogits(
  batch: JaxLogitsBatch,
  reps: number,
): Promise<{ resident_ms: number; loss: number; compile_ms: number }> {
  const init = await initJax();
  if (!init.ok) throw new Error(init.reason);
  const j = jax!;
  const np = j.numpy;
  logitsCompiled ??= j.jit(
    j.valueAndGrad((logits: JaxArray, old: JaxArray, reward: JaxArray, ix: AnyIx, ids: JaxArray) =>
      dapoLogitsLoss(j, logits, old, reward, ix as DapoIx, ids),
    ),
  ) as unknown as LogitsCompiled;
  const f = logitsCompiled;
  const T = batch.tokenId.length;
  const base = upload(
    j,
    'dapo',
    { ...batch, logp: new Float32Array(T) },
    hostIndex({ ...batch, logp: new Float32Array(T) }, 'dapo'),
  );
  const logits = np.array(batch.logits, { shape: [T, batch.vocab], device: 'webgpu' });
  const ids = j.nn.oneHot(np.array(batch.tokenId, { shape: [T], device: 'webgpu' }), batch.vocab).astype(np.float32);
  const call = async () => {
    const a = refs(base);
    const [loss, grad] = f(logits.ref, a.old, a.reward, a.ix, ids.ref);
    a.logp.dispose();
    const [data] = await Promise.all([loss.data(), grad.blockUntilReady()]);
    grad.dispose();
    return Number(data[0]);
  };
  try {
    let t = performance.now();
    await call();
    const compile_ms = performance.now() - t;
    await call();
    const times: number[] = [];
    let loss = NaN;
    for (let i = 0; i < reps; i++) {
      t = performance.now();
      loss = await call();
      times.push(performance.now() - t);
    }
    return { resident_ms: median(times), loss, compile_ms };
  } finally {
    disposeInputs(base);
    logits.dispose();
    ids.dispose();
  }
}

/**
 * The emitted WGSL program as a self-describing DeviceProgram (core/device/program.ts): each slot
 * of slots.ts becomes a section with its length and fill, each kernel a launch with its grid and
 * the condition under which it runs, each host kernel the step the caller makes for it. The runtime
 * executes the result without knowing the language.
 */
import type { DeviceProgram, HostStep, Launch, Scalar, Section, Sizes } from '../../../core/device/program.js';
import { InternalError } from '../../../core/diagnostics/diagnostic.js';
import type { Program } from '../../../core/ir/program.js';
import type { Level } from '../../../core/types/types.js';
import type { Kernel } from '../../plan/plan.js';
import type { WgslKernel, WgslProgram } from './emit.js';
import { arenaOf, type SectionKey, type Slots } from './slots.js';

export type HostKernel = Extract<Kernel, { kind: 'host' }>;

/**
 * @param hostStep makes the host step of a host kernel (it runs on the reference semantics, which
 *   the code generator does not know); `origin` is the kernel's index in the plan.
 */
export function toDeviceProgram(
  wgsl: WgslProgram,
  program: Program,
  hostStep: (k: HostKernel, origin: number) => HostStep,
): DeviceProgram {
  const plan = wgsl.kernels.map((k) => k.kernel);
  const origin = (k: Kernel) => plan.indexOf(k);
  const levelOf = new Map(program.inputs.map((i) => [i.name, i.level] as const));
  return {
    sections: deviceSections(wgsl.slots, (name) => levelOf.get(name) ?? fail(`no input ${name}`)),
    rowSlots: wgsl.slots.rows.map((key, k) => {
      if (key.kind === 'input') return { kind: 'input', name: key.name };
      const overwrites = wgsl.slots.rowOverwrites.get(k);
      return overwrites === undefined ? { kind: 'output' } : { kind: 'output', overwrites };
    }),
    scalars: deviceScalars(wgsl.slots),
    steps: wgsl.kernels.map((k) => ('code' in k ? launch(k, origin(k.kernel)) : hostStep(k.kernel, origin(k.kernel)))),
  };
}

/** The sections of every slot, in slot order (section k's offset is at I[HEADER + k]). */
export function deviceSections(slots: Slots, inputLevel: (name: string) => Level): Section[] {
  return slots.sections.map((key) => section(key, inputLevel));
}

function section(key: SectionKey, inputLevel: (name: string) => Level): Section {
  const arena = arenaOf(key);
  const at = (level: Level) => (sizes: Sizes) => sizes[level];
  switch (key.kind) {
    case 'input':
      return { arena, fill: { kind: 'input', name: key.name }, length: at(inputLevel(key.name)) };
    case 'size': {
      const level: Level = key.which === 'position' ? 'token' : key.which === 'length' ? 'seq' : 'group';
      return { arena, fill: { kind: 'size', table: key.which }, length: at(level) };
    }
    case 'value':
      return { arena, fill: { kind: 'zero' }, length: at(key.node.type.level), level: key.node.type.level };
    case 'partials': {
      // (value, count) pairs: `threads` per chunk of `chunk` elements of the level walked
      const over = key.over ?? key.node.src[0].type.level;
      return {
        arena,
        fill: { kind: 'zero' },
        perChunk: true,
        length: (caps) => 2 * Math.ceil(caps[over] / key.chunk) * key.threads,
      };
    }
    case 'segment_partials': {
      // laid out only when the workgroup-per-segment strategy runs, which the whole batch's mean
      // segment length decides (every chunk takes the same strategy)
      const from = key.node.src[0].type.level;
      const runs = (whole: Sizes) => whole[from] / Math.max(1, whole[key.segments]) >= key.minMean;
      return {
        arena,
        fill: { kind: 'zero' },
        length: (sizes, whole) => (runs(whole) ? 2 * sizes[key.segments] * key.threads : 0),
      };
    }
    case 'offsets':
      return { arena, fill: { kind: 'index', table: 'offsets' }, length: (s) => s.seq + 1 };
    case 'seq_of':
    case 'mask':
      return { arena, fill: { kind: 'index', table: key.kind }, length: at('token') };
    case 'group_of':
      return { arena, fill: { kind: 'index', table: 'group_of' }, length: at('seq') };
    case 'csr_starts':
      return {
        arena,
        fill: { kind: 'members', from: key.from, to: key.to, half: 'starts' },
        length: (s) => s[key.to] + 1,
      };
    case 'csr_members':
      return { arena, fill: { kind: 'members', from: key.from, to: key.to, half: 'members' }, length: at(key.from) };
  }
}

/** The scalars at the start of G, in Slots.scalarIndex order. */
export function deviceScalars(slots: Slots): Scalar[] {
  return [...slots.scalarIndex.keys()].map(scalarOf);
}

function scalarOf(name: string): Scalar {
  switch (name) {
    case 'size:num_seqs':
      return { kind: 'size', which: 'num_seqs' };
    case 'size:num_groups':
      return { kind: 'size', which: 'num_groups' };
    case 'size:num_tokens':
      return { kind: 'size', which: 'valid_tokens' };
    case 'size:vocab_size':
      return { kind: 'size', which: 'vocab_size' };
    default:
      return { kind: 'given', name };
  }
}

function launch(k: WgslKernel, origin: number): Launch {
  const { grid, when } = k;
  const workgroups = (sizes: Sizes) => {
    const count = sizes[grid.level];
    return grid.per === 'segment'
      ? count
      : grid.per === 'chunk'
        ? Math.ceil(count / grid.chunk)
        : Math.ceil(count / k.workgroupSize);
  };
  let runIf: Launch['runIf'];
  if (when && 'chunks' in when) runIf = (_whole, chunks) => (when.chunks === 'one') === (chunks === 1);
  else if (when) {
    runIf = (whole) => {
      const mean = whole[when.from] / Math.max(1, whole[when.to]);
      return (
        !(when.meanBelow !== undefined && mean >= when.meanBelow) &&
        !(when.meanAtLeast !== undefined && mean < when.meanAtLeast)
      );
    };
  }
  return {
    kind: 'launch',
    code: k.code,
    workgroups,
    ...(runIf ? { runIf } : {}),
    scope: k.scope,
    lazy: !!(when && 'chunks' in when && when.chunks === 'many'),
    ...(k.variant ? { variant: k.variant } : {}),
    origin,
    describe: `${k.kernel.kind} (${describeLaunch(k)})`,
  };
}

/** How a kernel is launched and when it runs, in words (`credo wgsl`). */
function describeLaunch(k: WgslKernel): string {
  const grid =
    k.grid.per === 'segment'
      ? k.grid.level === 'batch'
        ? 'one workgroup'
        : `one workgroup per ${k.grid.level}`
      : k.grid.per === 'chunk'
        ? k.grid.chunk === 1
          ? `one workgroup per ${k.grid.level}`
          : `a workgroup per ${k.grid.chunk} ${k.grid.level}s`
        : `one thread per ${k.grid.level}`;
  const when = !k.when
    ? []
    : 'chunks' in k.when
      ? [k.when.chunks === 'one' ? 'when the batch fits one binding' : 'when the batch runs in chunks']
      : [
          `when ${k.when.from}s per ${k.when.to} ${k.when.meanBelow !== undefined ? `< ${k.when.meanBelow}` : `≥ ${k.when.meanAtLeast}`}`,
        ];
  if (k.scope === 'rows') return 'one workgroup per vocabulary row, per row chunk';
  return [grid, ...(k.scope === 'batch' ? ['once for the whole batch'] : []), ...when].join('; ');
}

function fail(message: string): never {
  throw new InternalError('codegen-wgsl', message);
}

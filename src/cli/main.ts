/**
 * The `credo` command: check, run, ir, list. Exit codes: 0 ok, 1 user error (program, arguments
 * or batch), 2 internal error.
 */
import { totalmem } from 'node:os';
import { BATCH_FILE, FileError, readInputFile, writeFileSafely } from '../files.js';
import { Command, CommanderError } from 'commander';
import { BatchError, type RaggedBatch } from '../../core/batch/batch.js';
import { loadBatch } from '../../runtime/batch/load.js';
import { describeNonFinite, nonFiniteAsString, nonFiniteOutputs, type NonFinite } from './nonfinite.js';
import { writeOutputs } from '../../runtime/batch/outputs.js';
import { readSafetensors } from '../../runtime/batch/safetensors.js';
import { defaultGroupSize, syntheticBatch } from '../../runtime/batch/synthetic.js';
import { requiredGroupSize } from '../../compiler/interp/requirements.js';
import { compileSource } from '../compile.js';
import { hasErrors, UserError, type Diagnostic } from '../../core/diagnostics/diagnostic.js';
import { diagnosticToJson, renderDiagnostics } from '../../core/diagnostics/render.js';
import { printProgram } from '../../core/ir/print.js';
import { checkParams, compile, locateObjective, parseSetFlags } from '../objective.js';
import { listObjectives } from '../stdlib.js';
import { runEquiv, type EquivFlags } from './equiv-command.js';
import type { EvalResult } from '../../compiler/interp/eval.js';
import { deviceUnsupported, lowerToDevice, NotOnDeviceError } from '../../compiler/lower-to-device.js';
import { printPlan } from '../../compiler/plan/plan.js';
import { GpuError, gpuWorkgroupSize, NoAdapterError, openDevice, type GpuDevice } from '../../runtime/webgpu/device.js';
import { compileGpu } from '../gpu.js';

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const defaultIo: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  let json = argv.includes('--json');
  try {
    const program = buildCli(io, (j) => (json = j));
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 1;
    if (e instanceof UserError) return (reportDiagnostics(e.diagnostics, json, io), 1);
    if (e instanceof BatchError) {
      if (json) io.out(JSON.stringify({ error: { kind: 'batch', tensor: e.tensor, message: e.message } }) + '\n');
      else io.err(`error: batch: ${e.message}\n`);
      return 1;
    }
    if (e instanceof GpuError || e instanceof NotOnDeviceError) {
      if (json) io.out(JSON.stringify({ error: { kind: 'gpu', message: e.message } }) + '\n');
      else io.err(`error: gpu: ${e.message}\n`);
      return 1;
    }
    if (e instanceof NonFiniteError) {
      if (json)
        io.out(
          JSON.stringify({ error: { kind: 'nonfinite', message: e.message, outputs: e.outputs } }, nonFiniteAsString) +
            '\n',
        );
      else io.err(`error: ${e.message}\n`);
      return 1;
    }
    if (e instanceof FileError) {
      if (json) io.out(JSON.stringify({ error: { kind: 'file', message: e.message } }) + '\n');
      else io.err(`error: ${e.message}\n`);
      return 1;
    }
    if (e instanceof CliError) {
      if (json) io.out(JSON.stringify({ error: { kind: 'usage', message: e.message } }) + '\n');
      else io.err(`error: ${e.message}\n`);
      return 1;
    }
    const detail = e instanceof Error ? (e.stack ?? e.message) : String(e);
    io.err(`internal error (a bug in credo, please report it):\n${detail}\n`);
    return 2;
  }
}

class CliError extends Error {}

/** Outputs that are NaN or infinite (src/cli/nonfinite.ts): exit 1 unless --allow-nonfinite. */
class NonFiniteError extends Error {
  constructor(
    message: string,
    readonly outputs: readonly NonFinite[],
  ) {
    super(message);
  }
}

function reportDiagnostics(diags: readonly Diagnostic[], json: boolean, io: Io): void {
  if (json) io.out(JSON.stringify({ diagnostics: diags.map(diagnosticToJson) }, null, 2) + '\n');
  else if (diags.length) io.err(renderDiagnostics(diags) + '\n');
}

function intOption(name: string, min: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new CliError(`${name} must be an integer ≥ ${min}, got \`${v}\``);
    return n;
  };
}

function buildCli(io: Io, setJson: (j: boolean) => void): Command {
  const cli = new Command('credo')
    .description('Credo: a language and compiler for RL training objectives')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError();

  cli
    .command('check')
    .description('parse and type-check an objective (file or stdlib name)')
    .argument('<file>')
    .option('--json', 'print diagnostics as JSON')
    .action((file: string, o: { json?: boolean }) => {
      setJson(!!o.json);
      const { source, path } = locateObjective(file);
      const r = compileSource(source, path);
      if (hasErrors(r.diagnostics)) throw new UserError(r.diagnostics);
      reportDiagnostics(r.diagnostics, !!o.json, io);
      if (!o.json)
        io.out(`ok: ${r.program!.name} (${r.program!.inputs.length} inputs, ${r.program!.params.length} params)\n`);
    });

  cli
    .command('ir')
    .description('print the typed IR and the gradient IR of an objective')
    .argument('<file>')
    .option('--spans', 'annotate each node with its source line')
    .action((file: string, o: { spans?: boolean }) => {
      const { source, path } = locateObjective(file);
      const r = compileSource(source, path);
      if (!r.program || !r.forward) throw new UserError(r.diagnostics);
      io.out(
        `# typed IR\n${printProgram(r.forward, { spans: o.spans, forwardOnly: true })}\n# with gradients\n${printProgram(r.program, { spans: o.spans })}`,
      );
    });

  cli
    .command('list')
    .description('list the stdlib objectives')
    .option('--json', 'print as JSON')
    .action((o: { json?: boolean }) => {
      const entries = listObjectives();
      if (o.json)
        io.out(
          JSON.stringify(
            entries.map(({ name, summary, confidence }) => ({ name, summary, confidence })),
            null,
            2,
          ) + '\n',
        );
      else {
        const w = Math.max(...entries.map((e) => e.name.length));
        for (const e of entries) io.out(`${e.name.padEnd(w)}  [${e.confidence}]  ${e.summary}\n`);
      }
    });

  cli
    .command('run')
    .description('run an objective on a batch: loss, metrics, gradients')
    .argument('<method>', 'stdlib objective name or .credo file')
    .option('--batch <file>', 'input batch (safetensors); default: a synthetic batch')
    .option('--out <file>', 'write loss, metric.NAME and grad.NAME as safetensors')
    .option('--json', 'print results as JSON')
    .option(
      '--set <name=value>',
      'override a param (repeatable)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option('--step <n>', 'training step for schedules', intOption('--step', 0), 0)
    .option('--total-steps <n>', 'total training steps for schedules', intOption('--total-steps', 0), 0)
    .option('--backend <kind>', 'auto | cpu | gpu', 'auto')
    .option('--allow-nonfinite', 'print and write a NaN or infinite loss, metric or gradient instead of exiting 1')
    .option('--seed <n>', 'synthetic batch seed', intOption('--seed', 0), 0)
    .option('--tokens <n>', 'synthetic batch size in tokens', intOption('--tokens', 0), 4096)
    .option(
      '--vocab <n>',
      'synthetic vocabulary size, for `token x vocab` inputs (default 256)',
      intOption('--vocab', 1),
    )
    .option(
      '--group-size <n>',
      'sequences per group of the synthetic batch (consecutive groups; default: what the objective requires, else 16 = 4 responses × 4 views when it declares `response`, else 8)',
      intOption('--group-size', 1),
    )
    .action(async (method: string, o: RunFlags) => {
      setJson(!!o.json);
      await run(method, o, io);
    });

  cli
    .command('plan')
    .description('print the kernel plan of an objective (how it is split into GPU kernels)')
    .argument('<file>')
    .option('--fuse <mode>', 'default | none (every op its own kernel)', 'default')
    .action((file: string, o: { fuse: string }) => {
      if (o.fuse !== 'default' && o.fuse !== 'none')
        throw new CliError(`--fuse must be default or none, got \`${o.fuse}\``);
      io.out(
        printPlan(
          lowerToDevice(compile(locateObjective(file)).program, { fuse: o.fuse, workgroupSize: gpuWorkgroupSize() })
            .plan,
        ),
      );
    });

  cli
    .command('wgsl')
    .description('print the WGSL kernels of an objective, with the source lines they come from')
    .argument('<file>')
    .option(
      '--workgroup-size <n>',
      'workgroup size (default: what the runtime chooses for a GPU, 128, or CREDO_WORKGROUP_SIZE; on a CPU adapter such as llvmpipe it takes the SIMD width)',
      intOption('--workgroup-size', 1),
    )
    .action((file: string, o: { workgroupSize?: number }) => {
      const { device } = lowerToDevice(compile(locateObjective(file)).program, {
        workgroupSize: o.workgroupSize ?? gpuWorkgroupSize(),
      });
      device.steps.forEach((step, i) => {
        io.out(`// ───── kernel ${i}: ${step.describe}${step.kind === 'host' ? ' — runs on the host' : ''}\n`);
        if (step.kind === 'launch') io.out(step.code);
      });
    });

  cli
    .command('equiv')
    .description('prove or refute that two objectives are the same method')
    .argument('<a>', 'stdlib objective name or .credo file')
    .argument('<b>', 'stdlib objective name or .credo file')
    .option(
      '--set <side.name=value>',
      'override a param of one side: holder_po.p=0 by its name, or a.p=0 / b.p=0 (repeatable)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option(
      '--assume <cond>',
      'on_policy | equal_lengths | group_size=K | a boolean Credo expression over inputs (repeatable)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option('--mode <mode>', 'compare value | grad | both', 'value')
    .option('--up-to-scale', 'allow a positive constant factor between the two')
    .option('--runs <n>', 'random batches to try', intOption('--runs', 1), 200)
    .option('--seed <n>', 'random seed', intOption('--seed', 0), 1)
    .option('--step <n>', 'bind the training step (schedules)', intOption('--step', 0))
    .option('--total-steps <n>', 'bind total_steps', intOption('--total-steps', 0))
    .option('--out <file>', 'where to save a counterexample batch (default: A-vs-B.counterexample.safetensors)')
    .option('--json', 'print the verdict as JSON')
    .option('--explain', 'show both normal forms and the first differing subexpression with its source lines')
    .action((a: string, b: string, o: EquivFlags) => {
      setJson(!!o.json);
      runEquiv(a, b, o, io);
    });
  return cli;
}

interface RunFlags {
  batch?: string;
  out?: string;
  json?: boolean;
  allowNonfinite?: boolean;
  set: string[];
  step: number;
  totalSteps: number;
  backend: string;
  seed: number;
  tokens: number;
  vocab?: number;
  groupSize?: number;
}

/** The device for --backend gpu|auto, or null to run on the CPU interpreter. */
async function chooseDevice(backend: string, io: Io): Promise<GpuDevice | null> {
  if (backend === 'cpu') return null;
  try {
    return await openDevice();
  } catch (e) {
    if (!(e instanceof NoAdapterError)) throw e;
    if (backend === 'gpu')
      throw new CliError(`--backend gpu: ${e.message}; use --backend cpu for the float64 interpreter`);
    io.err(`note: ${e.message}; running on the CPU (float64 reference interpreter)\n`);
    return null;
  }
}

async function run(method: string, o: RunFlags, io: Io): Promise<void> {
  if (!['auto', 'cpu', 'gpu'].includes(o.backend))
    throw new CliError(`--backend must be auto, cpu or gpu, got \`${o.backend}\``);
  const t0 = performance.now();
  const objective = compile(locateObjective(method));
  const params = checkParams(objective.program, parseSetFlags(o.set));
  if (!o.json) reportDiagnostics(objective.diagnostics, false, io);
  const t1 = performance.now();
  let batch;
  if (o.batch !== undefined) {
    // refused before decoding when the float64 values alone would not fit in this machine's memory
    const tensors = readSafetensors(readInputFile(o.batch, BATCH_FILE), { maxDecodedBytes: totalmem() });
    batch = loadBatch(tensors, {
      inputs: objective.inputs,
      maskName: objective.maskName,
      groupSize: o.groupSize,
    });
  } else {
    batch = syntheticBatch({
      seed: o.seed,
      tokens: o.tokens,
      groupSize: o.groupSize ?? requiredGroupSize(objective.program) ?? defaultGroupSize(objective.inputs),
      vocabSize: o.vocab,
      inputs: objective.inputs,
      maskName: objective.maskName,
    });
  }
  const t2 = performance.now();
  const unsupported = o.backend === 'cpu' ? null : deviceUnsupported(objective.program);
  if (unsupported && o.backend === 'gpu') throw new CliError(`--backend gpu: ${unsupported}; use --backend cpu`);
  if (unsupported) io.err(`note: ${unsupported}; running on the CPU (float64 reference interpreter)\n`);
  const device = unsupported ? null : await chooseDevice(o.backend, io);
  let result: EvalResult;
  let backend = 'cpu-interpreter';
  let adapter: string | undefined;
  let gpuTimings: Record<string, number> = {};
  let dispatches = 0;
  let chunks = 1;
  if (device) {
    try {
      const gpu = await compileGpu(objective, { device });
      const r = await gpu.run(batch, { params, step: o.step, totalSteps: o.totalSteps });
      gpu.dispose();
      result = r;
      dispatches = r.dispatches;
      chunks = r.chunks;
      backend = 'webgpu';
      adapter = device.adapterName;
      gpuTimings = {
        gpu_compile: gpu.compileMs,
        gpu_upload: r.timings_ms.upload,
        gpu_kernels: r.timings_ms.kernels,
        gpu_readback: r.timings_ms.readback,
      };
    } finally {
      device.dispose();
    }
  } else result = objective.run(batch, { params, step: o.step, totalSteps: o.totalSteps });
  const t3 = performance.now();
  // a NaN or infinite output is an error unless asked for: it is neither printed as a number to trust nor written
  const nonFinite = o.allowNonfinite ? [] : nonFiniteOutputs(result, batch);
  if (nonFinite.length > 0) {
    if (!o.json) printResult(io, objective.name, o, batch, result, undefined, undefined);
    throw new NonFiniteError(
      describeNonFinite(nonFinite, adapter ? `webgpu: ${adapter}` : 'cpu interpreter'),
      nonFinite,
    );
  }
  if (o.out !== undefined) {
    const bytes = writeOutputs(batch, { loss: result.loss, metrics: result.metrics, grads: result.grads });
    writeFileSafely(o.out, bytes, { inputs: o.batch ? [o.batch] : [], flag: '--out' });
  }
  const timings = { compile: t1 - t0, load: t2 - t1, run: t3 - t2, ...gpuTimings };
  if (o.json) {
    io.out(
      JSON.stringify(
        {
          objective: objective.name,
          loss: result.loss,
          metrics: result.metrics,
          backend,
          ...(adapter ? { adapter, dispatches, chunks } : {}),
          batch: {
            sequences: batch.numSeqs,
            groups: batch.numGroups,
            tokens: batch.numTokens,
            layout: batch.layout.kind,
            synthetic: !o.batch,
          },
          timings_ms: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v * 1000) / 1000])),
          ...(o.out ? { out: o.out } : {}),
        },
        nonFiniteAsString,
        2,
      ) + '\n',
    );
    return;
  }
  printResult(io, objective.name, o, batch, result, timings, adapter);
  if (o.out) io.out(`wrote ${o.out}\n`);
}

/** The human-readable table of a run (without the time row when `timings` is not given). */
function printResult(
  io: Io,
  name: string,
  o: RunFlags,
  batch: RaggedBatch,
  result: EvalResult,
  timings: { compile: number; run: number } | undefined,
  adapter: string | undefined,
): void {
  const src = o.batch ? o.batch : `synthetic batch (seed ${o.seed})`;
  io.out(`${name} on ${src}: ${batch.numSeqs} sequences in ${batch.numGroups} groups, ${batch.numTokens} tokens\n`);
  const rows: [string, string][] = [
    ['loss', fmt(result.loss)],
    ...Object.entries(result.metrics).map(([k, v]): [string, string] => [k, fmt(v)]),
    ...Object.entries(result.grads).map(([k, g]): [string, string] => [
      `grad.${k}`,
      // NaN never wins Math.max: report it as the max when present
      `max |g| ${fmt(g.data.reduce((m, x) => (Number.isNaN(x) || Number.isNaN(m) ? NaN : Math.max(m, Math.abs(x))), 0))}`,
    ]),
    ...(timings
      ? [
          [
            'time',
            `compile ${timings.compile.toFixed(1)} ms, run ${timings.run.toFixed(1)} ms (${adapter ? `webgpu: ${adapter}` : 'cpu interpreter'})`,
          ] as [string, string],
        ]
      : []),
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) io.out(`${k.padEnd(w)}  ${v}\n`);
}

function fmt(v: number): string {
  return Number.isFinite(v) ? v.toPrecision(8) : String(v);
}

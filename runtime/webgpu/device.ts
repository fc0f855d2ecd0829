/**
 * Finding a WebGPU device through Dawn (npm `webgpu`): a core adapter first (Vulkan, Metal, D3D12;
 * Mesa's llvmpipe on machines without a GPU), then Mesa's GL ES compatibility adapter. Never
 * hangs: each request has a timeout. Knows nothing about the language.
 */
export interface GpuDevice {
  readonly device: GPUDevice;
  readonly instance: GPU;
  readonly adapterName: string;
  readonly featureLevel: 'core' | 'compatibility';
  /** Largest workgroup size we use on this device (a power of two). */
  readonly workgroupSize: number;
  /** Why the device was lost, once it has been. */
  lostReason(): string | null;
  dispose(): void;
}

export class NoAdapterError extends Error {}

/** A GPU problem the user can act on (device lost, batch beyond the device's limits). */
export class GpuError extends Error {}

type DawnModule = { create: (flags: string[]) => GPU; globals: Record<string, unknown> };

/** `p`, or a NoAdapterError naming `what` once `ms` have passed. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new NoAdapterError(`${what} did not answer within ${ms} ms`)), ms)),
  );
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Opens a device, or throws NoAdapterError saying what was tried. */
export async function openDevice(): Promise<GpuDevice> {
  if (process.env.CREDO_GPU === 'off') throw new NoAdapterError('GPU disabled by CREDO_GPU=off');
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  let mod: DawnModule;
  try {
    mod = (await import('webgpu')) as unknown as DawnModule;
  } catch (e) {
    throw new NoAdapterError(`the \`webgpu\` package (Dawn) could not be loaded: ${(e as Error).message}`);
  }
  Object.assign(globalThis, mod.globals);
  const tries: { flags: string[]; featureLevel: 'core' | 'compatibility' }[] = [
    { flags: [], featureLevel: 'core' },
    { flags: ['backend=opengles'], featureLevel: 'compatibility' },
  ];
  const failures: string[] = [];
  for (const t of tries) {
    try {
      const gpu = mod.create(t.flags);
      const adapter = await withTimeout(
        gpu.requestAdapter({ featureLevel: t.featureLevel } as GPURequestAdapterOptions),
        20_000,
        'requestAdapter',
      );
      if (!adapter) {
        failures.push(`${t.featureLevel}: no adapter`);
        continue;
      }
      const info = adapter.info as GPUAdapterInfo & {
        description?: string;
        device?: string;
        subgroupMaxSize?: number;
        isFallbackAdapter?: boolean;
      };
      const workgroupSize = chooseWorkgroupSize(info, adapter.limits);
      // the adapter's own buffer limits, not the defaults (128 MiB bindings, 256 MiB buffers): a
      // batch's arenas grow with its tokens, and GPUs allow gigabytes
      const requiredLimits = {
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        maxBufferSize: adapter.limits.maxBufferSize,
      };
      const device = await withTimeout(adapter.requestDevice({ requiredLimits }), 20_000, 'requestDevice');
      let lost: string | null = null;
      void device.lost.then((l) => {
        if (l.reason !== 'destroyed') lost = l.message || 'unknown reason';
      });
      const name =
        [info.vendor, info.architecture, info.device, info.description].filter((x) => x).join(' ') || 'unknown adapter';
      return {
        device,
        // NOTE: the GPU instance must stay reachable: when it is garbage-collected, dawn.node tears
        // down its event loop under the live device and the process crashes at a random later point.
        instance: gpu,
        adapterName: `${name} (${t.featureLevel})`,
        featureLevel: t.featureLevel,
        workgroupSize,
        lostReason: () => lost,
        dispose: () => device.destroy(),
      };
    } catch (e) {
      if (e instanceof GpuError) throw e;
      failures.push(`${t.featureLevel}: ${(e as Error).message}`);
    }
  }
  throw new NoAdapterError(`no WebGPU adapter (${failures.join('; ')})`);
}

/**
 * The workgroup size of every kernel. A GPU wants many threads per workgroup (128: four warps or
 * two wavefronts, enough to hide memory latency). A CPU-backed adapter (Mesa's llvmpipe) runs a
 * workgroup as one job that loops over its invocations in SIMD batches of the subgroup size: a
 * workgroup of exactly one batch (8 lanes with 256-bit vectors) needs no loop, and a workgroup per
 * sequence then measured 1.5–2× faster than with 64 or 128 threads (dapo, gspo, ctpo at 2^20
 * tokens, 2026-11-29). `CREDO_WORKGROUP_SIZE` overrides the choice (a power of two the device allows), for
 * comparing strategies.
 */
export function chooseWorkgroupSize(
  info: { isFallbackAdapter?: boolean; subgroupMaxSize?: number; architecture?: string },
  limits: { maxComputeWorkgroupSizeX: number; maxComputeInvocationsPerWorkgroup: number },
): number {
  const most = Math.min(limits.maxComputeWorkgroupSizeX, limits.maxComputeInvocationsPerWorkgroup);
  const forced = process.env.CREDO_WORKGROUP_SIZE;
  if (forced !== undefined && forced !== '') {
    const n = Number(forced);
    if (!Number.isInteger(n) || n < 1 || n > most || (n & (n - 1)) !== 0)
      throw new GpuError(
        `CREDO_WORKGROUP_SIZE must be a power of two from 1 to ${most} (this device's limit), got \`${forced}\``,
      );
    return n;
  }
  const cpu = info.isFallbackAdapter === true || info.architecture === 'software';
  const lanes = info.subgroupMaxSize && info.subgroupMaxSize >= 4 ? info.subgroupMaxSize : 8;
  const wanted = cpu ? lanes : 128;
  return 2 ** Math.floor(Math.log2(Math.min(wanted, most)));
}

/**
 * The workgroup size chooseWorkgroupSize picks for a GPU with WebGPU's default limits (or
 * CREDO_WORKGROUP_SIZE): for showing shaders without opening a device.
 */
export function gpuWorkgroupSize(): number {
  return chooseWorkgroupSize({}, { maxComputeWorkgroupSizeX: 256, maxComputeInvocationsPerWorkgroup: 256 });
}

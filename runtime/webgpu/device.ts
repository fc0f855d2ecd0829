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
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new NoAdapterError(`${what} did not answer within ${ms} ms`)), ms)));
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
      const adapter = await withTimeout(gpu.requestAdapter({ featureLevel: t.featureLevel } as GPURequestAdapterOptions), 20_000, 'requestAdapter');
      if (!adapter) {
        failures.push(`${t.featureLevel}: no adapter`);
        continue;
      }
      // the adapter's own buffer limits, not the defaults (128 MiB bindings, 256 MiB buffers): a
      // batch's arenas grow with its tokens, and GPUs allow gigabytes
      const requiredLimits = { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize };
      const device = await withTimeout(adapter.requestDevice({ requiredLimits }), 20_000, 'requestDevice');
      let lost: string | null = null;
      void device.lost.then((l) => {
        if (l.reason !== 'destroyed') lost = l.message || 'unknown reason';
      });
      const info = adapter.info as GPUAdapterInfo & { description?: string; device?: string };
      const name = [info.vendor, info.architecture, info.device, info.description].filter((x) => x).join(' ') || 'unknown adapter';
      const workgroupSize = Math.min(256, device.limits.maxComputeWorkgroupSizeX, device.limits.maxComputeInvocationsPerWorkgroup, 128);
      return {
        device,
        // NOTE: the GPU instance must stay reachable: when it is garbage-collected, dawn.node tears
        // down its event loop under the live device and the process crashes at a random later point.
        instance: gpu,
        adapterName: `${name} (${t.featureLevel})`,
        featureLevel: t.featureLevel,
        workgroupSize: 2 ** Math.floor(Math.log2(workgroupSize)),
        lostReason: () => lost,
        dispose: () => device.destroy(),
      };
    } catch (e) {
      failures.push(`${t.featureLevel}: ${(e as Error).message}`);
    }
  }
  throw new NoAdapterError(`no WebGPU adapter (${failures.join('; ')})`);
}

import { afterEach, describe, expect, it } from 'vitest';
import { chooseWorkgroupSize, GpuError } from '../../runtime/webgpu/device.js';

const limits = { maxComputeWorkgroupSizeX: 1024, maxComputeInvocationsPerWorkgroup: 1024 };

describe('workgroup size from the adapter', () => {
  afterEach(() => {
    delete process.env.CREDO_WORKGROUP_SIZE;
  });

  it('a GPU gets 128 threads, within its limits', () => {
    expect(chooseWorkgroupSize({ isFallbackAdapter: false, subgroupMaxSize: 32, architecture: 'ampere' }, limits)).toBe(
      128,
    );
    expect(chooseWorkgroupSize({}, { maxComputeWorkgroupSizeX: 96, maxComputeInvocationsPerWorkgroup: 256 })).toBe(64);
  });

  it('a CPU-backed adapter gets one SIMD batch (its subgroup size)', () => {
    expect(chooseWorkgroupSize({ isFallbackAdapter: true, subgroupMaxSize: 8 }, limits)).toBe(8);
    expect(chooseWorkgroupSize({ architecture: 'software', subgroupMaxSize: 16 }, limits)).toBe(16);
    // no subgroup size reported: 8 lanes (256-bit vectors)
    expect(chooseWorkgroupSize({ isFallbackAdapter: true }, limits)).toBe(8);
  });

  it('CREDO_WORKGROUP_SIZE overrides it, and a bad value is a clear error', () => {
    process.env.CREDO_WORKGROUP_SIZE = '32';
    expect(chooseWorkgroupSize({ isFallbackAdapter: true, subgroupMaxSize: 8 }, limits)).toBe(32);
    for (const bad of ['48', '0', 'abc', '2048']) {
      process.env.CREDO_WORKGROUP_SIZE = bad;
      expect(() => chooseWorkgroupSize({}, limits)).toThrow(GpuError);
      expect(() => chooseWorkgroupSize({}, limits)).toThrow(/power of two from 1 to 1024/);
    }
  });
});

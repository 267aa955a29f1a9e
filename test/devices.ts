// The devices the engine suites run on: 'cpu', plus 'webgpu' where an adapter is available (Mesa's
// llvmpipe here, with EGL_PLATFORM=surfaceless). Without one the WebGPU half is left out with the reason,
// except in CI (CI=true), where that fails. Suites use `describe.each(DEVICES)`.
import { expect } from 'vitest';
import { webgpuAvailable } from '../backends/webgpu/index.ts';
import { registerBackend, type Device, type DType, type Tensor } from '../index.ts';
import { CpuBackend } from '../backends/cpu/index.ts';
import type { Buf } from '../engine/backend.ts';

/**
 * The CPU backend with read/readSync returning copies, which the backend contract allows: a caller that writes
 * into a read result (instead of Backend.writeSync) or relies on it aliasing the buffer fails on this device.
 */
export class CopyingCpuBackend extends CpuBackend {
  override readSync(buf: Buf) { return super.readSync(buf).slice(); }
  override async read(buf: Buf) { return super.readSync(buf).slice(); }
}
registerBackend('cpu-copy', new CopyingCpuBackend());

const avail = await webgpuAvailable();
if (!avail.ok) {
  if (process.env.CI === 'true') throw new Error(`engine tests: no WebGPU adapter in CI: ${avail.reason}`);
  console.warn(`[devices] webgpu left out: ${avail.reason}`);
}

export const DEVICES: Device[] = avail.ok ? ['cpu', 'cpu-copy', 'webgpu'] : ['cpu', 'cpu-copy'];

/** Devices that compute like the CPU (float64, exact comparisons). */
export const cpuLike = (device: Device) => device === 'cpu' || device === 'cpu-copy';

/**
 * How a suite runs on a device: the floating dtype it computes in (float64 on the CPU, where float64
 * finite differences and 1e-12 comparisons hold; float32 elsewhere), how input values are rounded to it,
 * and a relative tolerance for results that are not exact copies.
 */
export interface DeviceProfile {
  device: Device;
  dtype: DType;
  /** values as the device holds them (Math.fround for float32) */
  round: (v: number) => number;
  /** relative tolerance for arithmetic results against a float64 reference */
  rtol: number;
}

export function profile(device: Device): DeviceProfile {
  return cpuLike(device)
    ? { device, dtype: 'float64', round: (v) => v, rtol: 1e-12 }
    : { device, dtype: 'float32', round: Math.fround, rtol: 2e-6 };
}

/** Values of a tensor on any device (an async read). */
export async function read(t: Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

/** |got - want| <= rtol * max(1, |want|) elementwise; infinities and NaN must match exactly. */
export function expectNear(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, what = ''): void {
  expect(got.length, `${what} length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    if (!Number.isFinite(w) || !Number.isFinite(g)) {
      if (!Object.is(g, w)) expect(g, `${what}[${i}]`).toBe(w);
      continue;
    }
    if (!(Math.abs(g - w) <= rtol * Math.max(1, Math.abs(w)))) expect(g, `${what}[${i}] (rtol ${rtol})`).toBe(w);
  }
}

// expm1 / log1p of the shared elementwise language on WebGPU (WGSL has neither: backends/webgpu/wgsl.ts), and the
// ops written with them (tanh, softplus): relative precision kept near 0 in float32, against float64 Math.
import { describe, it, expect } from 'vitest';
import * as gg from '../index.ts';
import { webgpuAvailable, initWebGPU } from '../backends/webgpu/index.ts';

const avail = await webgpuAvailable();
if (!avail.ok) {
  if (process.env.CI === 'true') throw new Error(`webgpu tests: no WebGPU adapter in CI: ${avail.reason}`);
  console.warn(`[webgpu_precision.test] skipped: ${avail.reason}`);
}

const mags = Array.from({ length: 200 }, (_, i) => Math.fround(10 ** (-12 + (i / 199) * (12 + Math.log10(20)))));
const grid = [...mags, ...mags.map((x) => -x)];
const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const REF: Record<string, [(x: number) => number, (x: number) => boolean]> = {
  expm1: [Math.expm1, () => true],
  log1p: [Math.log1p, (x) => x > -1],
  tanh: [Math.tanh, () => true],
  softplus: [softplus, () => true],
};

describe.skipIf(!avail.ok)('expm1 / log1p on webgpu (float32)', () => {
  it('expm1, log1p, tanh, softplus within 8 float32 ulp (relative 1e-6) over |x| in [1e-12, 20]', async () => {
    await initWebGPU();
    const x = gg.tensor(Float32Array.from(grid), [grid.length], { device: 'webgpu' });
    for (const [op, [ref, inDomain]] of Object.entries(REF)) {
      const y = (gg as unknown as Record<string, (t: gg.Tensor) => gg.Tensor>)[op](x);
      const got = await y.data();
      y.dispose();
      let worst = 0, at = 0;
      grid.forEach((v, i) => {
        if (!inDomain(v)) return;
        const r = ref(v), e = Math.abs(got[i] - r) / Math.abs(r);
        if (!(e <= worst)) { worst = e; at = v; }
      });
      expect({ op, worst: worst <= 8 * 2 ** -23 ? 'ok' : `${worst} at x = ${at}` }).toEqual({ op, worst: 'ok' });
    }
    x.dispose();
  });

  it('softplus(-16.65) is 5.88e-8, not 0 (log(1 + tiny) in float32 was)', async () => {
    await initWebGPU();
    const x = gg.tensor([-16.65], [1], { device: 'webgpu' });
    const y = await gg.softplus(x).data();
    expect(Math.abs(y[0] - softplus(Math.fround(-16.65))) / 5.88e-8).toBeLessThan(1e-6);
  });
});

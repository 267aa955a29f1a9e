// The fused linear (+ bias + relu) on WebGPU against the CPU backend: values and all three gradients
// within float32 tolerance, on the VAE's shapes and on odd sizes (k and n not multiples of 4, one row).
import { describe, it, expect } from 'vitest';
import * as gg from '../index.ts';
import type { Tensor } from '../index.ts';
import { webgpuAvailable, initWebGPU } from '../backends/webgpu/index.ts';

const avail = await webgpuAvailable();
if (!avail.ok) {
  if (process.env.CI === 'true') throw new Error(`webgpu tests: no WebGPU adapter in CI: ${avail.reason}`);
  console.warn(`[webgpu_linear.test] skipped: ${avail.reason}`);
}

function values(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  expect(got.length, what).toBe(want.length);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < got.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol * (1 + scale))) throw new Error(`${what}: element ${i}: got ${got[i]}, want ${want[i]}`);
  }
}

async function run(device: string, rows: number, inn: number, out: number, act: 'relu' | 'none', bias: boolean, seed: number) {
  const x = gg.tensor(values(rows * inn, seed), [rows, inn], { device, requiresGrad: true });
  const w = gg.tensor(values(out * inn, seed + 1, 1 / Math.sqrt(inn)), [out, inn], { device, requiresGrad: true });
  const b = bias ? gg.tensor(values(out, seed + 2, 0.3), [out], { device, requiresGrad: true }) : null;
  const up = gg.tensor(values(rows * out, seed + 3), [rows, out], { device });
  const y = gg.linear(x, w, b, act);
  gg.sum(gg.mul(y, up)).backward();
  const res: Record<string, Float32Array> = {};
  const all: [string, Tensor | null][] = [['y', y], ['dx', x.grad], ['dw', w.grad], ['db', b ? b.grad : null]];
  for (const [k, t] of all) if (t) res[k] = (await t.data()) as Float32Array;
  for (const t of [x, w, b, up, y]) t?.dispose();
  return res;
}

describe.skipIf(!avail.ok)('fused linear on webgpu vs cpu', () => {
  const cases: [number, number, number][] = [
    [100, 784, 512], [100, 512, 256], [100, 256, 300], [100, 300, 256], [100, 512, 784], // the VAE's layers
    [7, 13, 5], [1, 3, 9], [33, 6, 17], [5, 1, 1], [64, 130, 66],
  ];
  for (const [rows, inn, out] of cases) {
    for (const act of ['relu', 'none'] as const) {
      it(`rows ${rows}, in ${inn}, out ${out}, act ${act}`, async () => {
        await initWebGPU();
        for (const bias of [true, false]) {
          const seed = rows * 7 + inn * 13 + out + (bias ? 1 : 0);
          const want = await run('cpu', rows, inn, out, act, bias, seed);
          const got = await run('webgpu', rows, inn, out, act, bias, seed);
          expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
          for (const k of Object.keys(want)) expectClose(got[k], want[k], 2e-5 * Math.sqrt(Math.max(inn, rows)), `${k} (bias ${bias})`);
          if (act === 'relu') {
            // the relu mask is exact: zero outputs on both devices at the same places (away from ties)
            let agree = 0;
            for (let i = 0; i < want.y.length; i++) if ((want.y[i] > 1e-4) === (got.y[i] > 1e-4) || Math.abs(want.y[i]) < 1e-4) agree++;
            expect(agree).toBe(want.y.length);
          }
        }
      });
    }
  }

  it('linear without the fused method (composed path) matches on webgpu', async () => {
    const gpu = await initWebGPU();
    const saved = gpu.matmulBiasAct;
    (gpu as { matmulBiasAct?: unknown }).matmulBiasAct = undefined;
    try {
      const want = await run('cpu', 9, 10, 11, 'relu', true, 3);
      const got = await run('webgpu', 9, 10, 11, 'relu', true, 3);
      for (const k of Object.keys(want)) expectClose(got[k], want[k], 1e-4, k);
    } finally {
      (gpu as { matmulBiasAct?: unknown }).matmulBiasAct = saved;
    }
  });
});

describe.skipIf(!avail.ok)('vec4 elementwise and buffer-copy paths on webgpu vs cpu', () => {
  it('rank-1 texture runs (aligned and unaligned offsets), broadcast scalars, int32, sizes not multiples of 4', async () => {
    const gpu = await initWebGPU();
    const cpu = gg.getBackend('cpu');
    for (const n of [64, 1024, 1027, 4099, 78400]) {
      const total = n + 9;
      const da = values(total, n), db = values(total, n + 1);
      const ga = gpu.fromArray(da), gb = gpu.fromArray(db), ca = cpu.fromArray(da), cb = cpu.fromArray(db);
      const ia = Int32Array.from(da, (v) => Math.round(v * 100)), gi = gpu.fromArray(ia), ci = cpu.fromArray(ia);
      for (const [oa, ob, sb] of [[0, 0, 1], [4, 8, 1], [1, 4, 1], [0, 5, 0], [3, 2, 0]]) {
        const cases: [string, (be: typeof cpu, a: gg.Buf, b: gg.Buf, i: gg.Buf) => gg.Buf][] = [
          ['add', (be, a, b) => be.binary('add', { buf: a, strides: [1], offset: oa }, { buf: b, strides: [sb], offset: ob }, [n], 'float32')],
          ['bceLogits', (be, a, b) => be.binary('bceLogits', { buf: a, strides: [1], offset: oa }, { buf: b, strides: [sb], offset: ob }, [n], 'float32')],
          ['where', (be, a, b) => be.where({ buf: a, strides: [1], offset: oa }, { buf: b, strides: [sb], offset: ob }, { buf: a, strides: [0], offset: 2 }, [n], 'float32')],
          ['relu', (be, a) => be.unary('relu', { buf: a, strides: [1], offset: oa }, [n], 'float32')],
          ['copy', (be, a) => be.copy({ buf: a, strides: [1], offset: oa }, [n], 'float32')],
          ['int add', (be, _a, _b, i) => be.binary('add', { buf: i, strides: [1], offset: oa }, { buf: i, strides: [sb], offset: ob }, [n], 'int32')],
          ['int->float', (be, _a, _b, i) => be.copy({ buf: i, strides: [1], offset: oa }, [n], 'float32')],
        ];
        for (const [name, f] of cases) {
          const want = await cpu.read(f(cpu, ca, cb, ci));
          const out = f(gpu, ga, gb, gi);
          const got = await gpu.read(out);
          gpu.release(out);
          expectClose(got, want, 1e-6, `${name} n ${n} offsets ${oa} ${ob} stride ${sb}`);
        }
      }
      // rank 2 after merging: per-row and per-column broadcasts beside contiguous (aligned or not) inputs
      if (n % 10 === 0 || n === 1027) {
        const C = n === 1027 ? 13 : 10, rowsN = Math.floor(n / C);
        for (const [oa, sr] of [[0, [1, 0]], [4, [0, 1]], [2, [1, 0]]] as [number, number[]][]) {
          for (const op of ['sub', 'mul', 'maximum'] as const) {
            const f = (be: typeof cpu, a: gg.Buf, b: gg.Buf) => be.binary(op, { buf: a, strides: [C, 1], offset: oa }, { buf: b, strides: sr, offset: 1 }, [rowsN, C], 'float32');
            const want = await cpu.read(f(cpu, ca, cb));
            const out = f(gpu, ga, gb);
            const got = await gpu.read(out);
            gpu.release(out);
            expectClose(got, want, 1e-6, `${op} [${rowsN},${C}] offset ${oa} b strides ${sr}`);
          }
        }
      }
      // copyInto through the buffer-copy path
      const dst = gpu.fromArray(new Float32Array(total)), cdst = cpu.fromArray(new Float32Array(total));
      gpu.copyInto({ buf: dst, strides: [1], offset: 3 }, { buf: ga, strides: [1], offset: 5 }, [n]);
      cpu.copyInto({ buf: cdst, strides: [1], offset: 3 }, { buf: ca, strides: [1], offset: 5 }, [n]);
      expectClose(await gpu.read(dst), await cpu.read(cdst), 0, `copyInto n ${n}`);
      for (const b of [ga, gb, gi, dst]) gpu.release(b);
    }
  });
});

describe.skipIf(!avail.ok)('reduceLast through textures on webgpu vs cpu', () => {
  it('sum and max over the last axis (one and two passes, NaN in max)', async () => {
    const gpu = await initWebGPU();
    const cpu = gg.getBackend('cpu');
    for (const [rows, cols] of [[3000, 10], [1, 78400], [100, 512], [7, 2049], [300, 5]]) {
      const d = values(rows * cols, rows + cols);
      d[cols + 1] = NaN; // row 1 (or row 0's second column)
      const g = gpu.fromArray(d), c = cpu.fromArray(d);
      for (const op of ['sum', 'max'] as const) {
        const want = await cpu.read(cpu.reduceLast(op, c, rows, cols));
        const out = gpu.reduceLast(op, g, rows, cols);
        const got = await gpu.read(out);
        gpu.release(out);
        for (let i = 0; i < rows; i++) {
          if (Number.isNaN(want[i])) { expect(Number.isNaN(got[i]), `${op} ${rows}x${cols} row ${i}`).toBe(true); continue; }
          expect(Math.abs(got[i] - want[i]), `${op} ${rows}x${cols} row ${i}`).toBeLessThanOrEqual(1e-5 * Math.sqrt(cols) * (1 + Math.abs(want[i])));
        }
      }
      gpu.release(g);
    }
  });
});

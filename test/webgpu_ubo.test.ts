// Conformance of the software-adapter (llvmpipe) paths of the WebGPU backend against the CPU backend:
// the uniform-block matmul ('ubo': A through uniform blocks, B through linear textures), its fused
// bias + relu epilogue, Adam through texture copies, and elementwise kernels reading textures.
import { describe, it, expect, beforeAll } from 'vitest';
import fc from 'fast-check';
import * as gg from '../index.ts';
import type { Buf } from '../index.ts';
import { webgpuAvailable, type WebGpuBackend } from '../backends/webgpu/index.ts';

const avail = await webgpuAvailable();
if (!avail.ok) {
  if (process.env.CI === 'true') throw new Error(`webgpu tests: no WebGPU adapter in CI: ${avail.reason}`);
  console.warn(`[webgpu_ubo.test] skipped: ${avail.reason}`);
}
const cpu = gg.getBackend('cpu');
let gpu: WebGpuBackend;

function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}
function both(data: Float32Array): { c: Buf; g: Buf } {
  return { c: cpu.fromArray(data), g: gpu.fromArray(data) };
}
async function read(b: Buf, be: typeof cpu | WebGpuBackend): Promise<Float32Array> {
  // a copy: the CPU backend may hand out its own array and reuse it once the buffer is released
  const r = (await be.read(b)).slice() as Float32Array;
  be.release(b);
  return r;
}
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= atol + rtol * Math.abs(want[i]))) {
      throw new Error(`${what}: element ${i}: got ${got[i]}, want ${want[i]}`);
    }
  }
}

describe.skipIf(!avail.ok)('webgpu software-adapter paths', () => {
  let saved: WebGpuBackend['matmulPlan'];
  beforeAll(async () => {
    gpu = (await import('../backends/webgpu/index.ts').then((m) => m.initWebGPU()));
    saved = gpu.matmulPlan;
  });
  const ubo = () => { gpu.matmulPlan = { kind: 'ubo', tm: 8, tn: 8, wg: 8 }; };

  async function checkMatmul(m: number, n: number, k: number, batch: number, tA: boolean, tB: boolean, bcA: boolean, bcB: boolean, seed: number) {
    const aBS = bcA ? 0 : m * k, bBS = bcB ? 0 : k * n;
    const A = both(values(Math.max(1, aBS * batch || m * k), seed));
    const B = both(values(Math.max(1, bBS * batch || k * n), seed + 1));
    const args = { batch, m, n, k, transA: tA, transB: tB, aBatchStride: aBS, bBatchStride: bBS };
    const want = await read(cpu.matmul({ ...args, a: A.c, b: B.c }), cpu);
    const got = await read(gpu.matmul({ ...args, a: A.g, b: B.g }), gpu);
    expectClose(got, want, 1e-4, 2e-6 * k, `matmul ubo b${batch} ${m}x${k}x${n} tA${tA} tB${tB} bcA${bcA} bcB${bcB}`);
    for (const b of [A.g, B.g]) gpu.release(b);
  }

  it('ubo matmul matches the CPU on random shapes (odd sizes, batches, transposes, broadcast batches)', async () => {
    ubo();
    try {
      const dim = fc.oneof(fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 20 }).map((x) => 4 * x));
      await fc.assert(fc.asyncProperty(dim, dim, dim, fc.integer({ min: 1, max: 3 }), fc.boolean(), fc.boolean(), fc.boolean(), fc.boolean(), fc.nat(),
        (m, n, k, batch, tA, tB, bcA, bcB, seed) => checkMatmul(m, n, k, batch, tA, tB, bcA, bcB, seed)), { numRuns: 25 });
    } finally { gpu.matmulPlan = saved; }
  });

  it('ubo matmul: the VAE shapes, several uniform chunks, long k (fallback)', async () => {
    ubo();
    try {
      for (const [m, n, k, tA, tB] of [
        [100, 512, 784, false, true], [100, 784, 512, false, false], [784, 512, 100, true, false], [512, 784, 100, true, false],
        [100, 300, 256, false, true], [300, 256, 100, true, false], [257, 33, 781, false, false], [130, 301, 999, true, true], [9, 7, 3001, false, true],
      ] as const) await checkMatmul(m, n, k, 1, tA, tB, false, false, m + n + k);
      await checkMatmul(45, 19, 333, 3, true, false, false, true, 7);
    } finally { gpu.matmulPlan = saved; }
  });

  it('ubo tile plans: rows per invocation fitted to m, uniform-block chunks aligned and covering m', () => {
    const maxFloats = 16384;
    for (const [m, n, k, batch] of [[100, 784, 512, 1], [100, 512, 784, 1], [784, 512, 100, 1], [37, 96, 19, 1], [1, 1, 1, 1], [300, 95, 333, 2], [9, 7, 3001, 1], [16, 16, 4100, 1]]) {
      const plan = gpu.uboPlan(m, n, k, batch);
      const kp = 4 * Math.ceil(k / 4);
      // no plan (the plain kernels run) only where A does not fit one uniform block and no aligned chunking exists
      if (!plan) { expect(Math.ceil(m / 4) * 4 * kp, `${m}x${k}x${n}`).toBeGreaterThan(maxFloats); continue; }
      const { TM, TQ, R, chunks } = plan;
      const what = `${m}x${k}x${n} -> TM ${TM} TQ ${TQ} R ${R} chunks ${chunks}`;
      expect(R % TM, what).toBe(0);
      expect(R * kp, what).toBeLessThanOrEqual(maxFloats);
      expect(chunks * R, what).toBeGreaterThanOrEqual(m);
      expect((chunks - 1) * R, what).toBeLessThan(m);
      if (chunks > 1) expect((R * kp) % 64, what).toBe(0); // 256-byte aligned dynamic offsets
      expect([2, 3, 4]).toContain(TQ);
    }
    // m = 100 runs as 5 x 20 rows rather than 7 x 16 (112); n = 96 (24 quads) as 3 quads x 8 invocations
    expect(gpu.uboPlan(100, 784, 256, 1)!.TM).toBe(20);
    expect(gpu.uboPlan(100, 784, 784, 1)!.R).toBe(20); // 20 rows of k = 784 fill a 64 KiB block
    expect(gpu.uboPlan(37, 96, 19, 1)!.TQ).toBe(3);
  });

  it('ubo matmul on the tile plans' + "'" + ' edge cases: odd row tiles, 3-quad column tiles, chunked k, batches, bias + relu', async () => {
    ubo();
    try {
      for (const [m, n, k, batch, tA, tB] of [
        [100, 96, 256, 1, false, false], [37, 95, 19, 1, true, true], [100, 300, 512, 1, false, true], [101, 97, 333, 2, true, false],
        [100, 784, 512, 1, true, true], [15, 24, 784, 3, false, true], [31, 33, 2049, 1, false, false],
      ] as const) await checkMatmul(m, n, k, batch, tA, tB, false, batch > 1 && m % 2 === 1, m * 7 + n + k);
      for (const [m, n, k, tB] of [[37, 95, 19, true], [100, 96, 300, false], [45, 23, 781, true]] as const) {
        const A = both(values(m * k, 9)), B = both(values(k * n, 10)), bias = both(values(n, 11));
        const args = { batch: 1, m, n, k, transA: false, transB: tB, aBatchStride: 0, bBatchStride: 0 };
        const mm = cpu.matmul({ ...args, a: A.c, b: B.c });
        const sum = cpu.binary('add', { buf: mm, strides: [n, 1], offset: 0 }, { buf: bias.c, strides: [0, 1], offset: 0 }, [m, n], 'float32');
        const want = await read(cpu.unary('relu', { buf: sum, strides: [1], offset: 0 }, [m * n], 'float32'), cpu);
        cpu.release(mm); cpu.release(sum);
        const got = await read(gpu.matmulBiasAct({ ...args, a: A.g, b: B.g }, bias.g, 'relu'), gpu);
        expectClose(got, want, 1e-4, 2e-6 * k, `ubo bias+relu ${m}x${k}x${n} tB${tB}`);
        for (const b of [A.g, B.g, bias.g]) gpu.release(b);
      }
    } finally { gpu.matmulPlan = saved; }
  });

  it('matmulBiasAct (fused bias + relu) matches matmul + bias + relu on the CPU', async () => {
    for (const kind of ['ubo', 'tex'] as const) {
      gpu.matmulPlan = kind === 'ubo' ? { kind: 'ubo', tm: 8, tn: 8, wg: 8 } : { kind: 'tex', tm: 16, tn: 8 };
      try {
        for (const [m, n, k, batch, tB, act] of [[100, 512, 784, 1, true, 'relu'], [37, 30, 19, 2, false, 'relu'], [5, 3, 7, 1, true, 'none'], [64, 65, 66, 1, false, 'relu']] as const) {
          const A = both(values(batch * m * k, 3)), B = both(values(k * n, 4)), bias = both(values(n, 5));
          const args = { batch, m, n, k, transA: false, transB: tB, aBatchStride: m * k, bBatchStride: 0 };
          const mm = cpu.matmul({ ...args, a: A.c, b: B.c });
          const sum = cpu.binary('add', { buf: mm, strides: [n, 1], offset: 0 }, { buf: bias.c, strides: [0, 1], offset: 0 }, [batch * m, n], 'float32');
          const fin = act === 'relu' ? cpu.unary('relu', { buf: sum, strides: [1], offset: 0 }, [batch * m * n], 'float32') : sum;
          const want = await read(fin, cpu);
          const got = await read(gpu.matmulBiasAct({ ...args, a: A.g, b: B.g }, bias.g, act), gpu);
          expectClose(got, want, 1e-4, 2e-6 * k, `${kind} bias+${act} ${m}x${k}x${n}`);
        }
      } finally { gpu.matmulPlan = saved; }
    }
  });

  it('Adam through texture copies matches the CPU update (odd sizes, weight decay)', async () => {
    ubo();
    try {
      for (const [n, wd] of [[1, 0], [3, 0.1], [1025, 0], [401411, 0.01]] as const) {
        const p = both(values(n, 1)), g = both(values(n, 2)), m = both(values(n, 3).map((x) => x * 0.1)), v = both(values(n, 4).map((x) => x * x));
        const hp = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: wd, step: 3 };
        gpu.adamUpdate(p.g, g.g, m.g, v.g, hp);
        // CPU reference with the composed rule (PyTorch's)
        const P = values(n, 1), G = values(n, 2), M = values(n, 3).map((x) => x * 0.1), V = values(n, 4).map((x) => x * x);
        const bc1 = 1 - 0.9 ** 3, bc2 = 1 - 0.999 ** 3;
        for (let i = 0; i < n; i++) {
          const gi = G[i] + wd * P[i];
          M[i] = 0.9 * M[i] + 0.1 * gi;
          V[i] = 0.999 * V[i] + 0.001 * gi * gi;
          P[i] = P[i] - (hp.lr / bc1) * M[i] / (Math.sqrt(V[i]) / Math.sqrt(bc2) + hp.eps);
        }
        expectClose(await read(p.g, gpu), P, 1e-5, 1e-6, `adam p n=${n}`);
        expectClose(await read(m.g, gpu), M, 1e-5, 1e-7, `adam m n=${n}`);
        expectClose(await read(v.g, gpu), V, 1e-5, 1e-8, `adam v n=${n}`);
      }
    } finally { gpu.matmulPlan = saved; }
  });

  it('elementwise index arithmetic through float32 division (fastDiv) matches integer division up to 2^21 elements', async () => {
    ubo();
    try {
      // transposed and broadcast views: every output index goes through the coordinate split
      for (const [r, c] of [[2047, 1023], [3, 699049], [1021, 7], [1, 5]] as const) {
        const n = r * c;
        const a = both(values(n, 21)), b = both(values(c, 22));
        const shape = [c, r];
        const va = { strides: [1, c], offset: 0 }, vb = { strides: [1, 0], offset: 0 };
        const want = await read(cpu.binary('sub', { buf: a.c, ...va }, { buf: b.c, ...vb }, shape, 'float32'), cpu);
        for (const fd of [true, false]) {
          gpu.fastDiv = fd;
          const got = await read(gpu.binary('sub', { buf: a.g, ...va }, { buf: b.g, ...vb }, shape, 'float32'), gpu);
          expectClose(got, want, 0, 0, `sub ${c}x${r} (transposed) fastDiv=${fd}`);
        }
        for (const x of [a.g, b.g]) gpu.release(x);
      }
    } finally { gpu.matmulPlan = saved; gpu.fastDiv = true; }
  });

  it('elementwise kernels reading textures match the storage-buffer kernels and the CPU (strided, broadcast, offsets)', async () => {
    ubo();
    try {
      for (const [rows, cols] of [[33, 47], [100, 784], [1, 1031]] as const) {
        const a = both(values(rows * cols + 5, 11)), b = both(values(cols, 12));
        const va = { strides: [1, rows], offset: 5 }; // transposed view of a (cols x rows) read as (rows, cols)... with an offset
        const shape = [cols, rows];
        const vb = { strides: [1, 0], offset: 0 };
        const want = await read(cpu.binary('mul', { buf: a.c, ...va }, { buf: b.c, ...vb }, shape, 'float32'), cpu);
        for (const texIn of [true, false]) {
          gpu.texInputs = texIn;
          const got = await read(gpu.binary('mul', { buf: a.g, ...va }, { buf: b.g, ...vb }, shape, 'float32'), gpu);
          expectClose(got, want, 1e-6, 0, `mul ${rows}x${cols} tex=${texIn}`);
          const e = await read(gpu.unary('exp', { buf: a.g, strides: [1], offset: 3 }, [rows * cols], 'float32'), gpu);
          const ec = await read(cpu.unary('exp', { buf: a.c, strides: [1], offset: 3 }, [rows * cols], 'float32'), cpu);
          expectClose(e, ec, 1e-5, 0, `exp tex=${texIn}`);
        }
        gpu.texInputs = true;
      }
    } finally { gpu.matmulPlan = saved; gpu.texInputs = true; }
  });
});

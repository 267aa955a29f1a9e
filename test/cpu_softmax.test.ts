// The CPU backend's one-pass softmax / log-softmax (softmaxLast, softmaxLastVjp) against the
// composition of primitives that ops.softmax and ops.logSoftmax use on backends without them.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import * as g from '../index.ts';
import { CpuBackend } from '../backends/cpu/index.ts';

const composed = new CpuBackend();
(composed as { softmaxLast?: unknown }).softmaxLast = undefined;
(composed as { softmaxLastVjp?: unknown }).softmaxLastVjp = undefined;
g.registerBackend('cpu-composed-softmax', composed);

function run(device: string, log: boolean, dtype: 'float32' | 'float64', shape: number[], xs: number[], gs: number[]) {
  return g.tidy(() => {
    const x = g.tensor(xs, shape, { dtype, device, requiresGrad: true });
    const y = log ? g.logSoftmax(x, -1) : g.softmax(x, -1);
    y.backward(g.tensor(gs, shape, { dtype, device }));
    return { y: Array.from(y.dataSync()), dx: Array.from(x.grad!.dataSync()) };
  });
}

// Both compute exp and log in float64 (Math.exp/Math.log) and differ only in where results are
// rounded to the dtype: the composition rounds after each of its ~6 ops, the fused kernel once. With
// |x| <= 30 (|x - max| <= 60) each rounding of an intermediate of size up to ~60 moves the result by at
// most 60 * eps relative, so 8 roundings bound the difference by 8 * 60 * eps (relative to 1 + |y|,
// since log-softmax values go up to ~60 and softmax values are <= 1; the VJPs scale with max|g| <= 1).
const close = (a: number[], b: number[], eps: number) => a.every((v, i) =>
  (Number.isNaN(v) && Number.isNaN(b[i])) || v === b[i] || Math.abs(v - b[i]) <= 8 * 60 * eps * (1 + Math.abs(b[i])));

describe('fused softmax on the CPU backend', () => {
  for (const dtype of ['float64', 'float32'] as const) {
    it(`${dtype}: values and gradients match the composed path (random rows, -inf masks)`, () => {
      const eps = dtype === 'float64' ? 2 ** -52 : 2 ** -23;
      fc.assert(fc.property(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 2 }), fc.integer({ min: 1, max: 9 }),
        fc.boolean(), fc.integer({ min: 0, max: 1e6 }),
        (lead, cols, log, seed) => {
          const shape = [...lead, cols];
          const n = shape.reduce((p, q) => p * q, 1);
          let s = seed;
          const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
          const xs = Array.from({ length: n }, () => (rnd() < 0.15 ? -Infinity : (rnd() * 2 - 1) * 30));
          const gs = Array.from({ length: n }, () => rnd() * 2 - 1);
          const a = run('cpu', log, dtype, shape, xs, gs), b = run('cpu-composed-softmax', log, dtype, shape, xs, gs);
          return close(a.y, b.y, eps) && close(a.dx, b.dx, eps);
        }), { seed: dtype === 'float64' ? 7 : 8, numRuns: 150 });
    });
  }

  it('special rows behave as the composition: all -inf, a +inf, a NaN', () => {
    for (const log of [false, true]) {
      for (const row of [[-Infinity, -Infinity, -Infinity], [1, Infinity, 2], [0, NaN, 1], [3, -Infinity, 3]]) {
        const a = run('cpu', log, 'float64', [3], row, [0.5, -1, 0.25]);
        const b = run('cpu-composed-softmax', log, 'float64', [3], row, [0.5, -1, 0.25]);
        expect(a.y.map(String), `${log ? 'log' : ''}softmax ${row}`).toEqual(b.y.map(String));
        expect(close(a.dx, b.dx, 2 ** -52), `grad ${row}: ${a.dx} vs ${b.dx}`).toBe(true);
      }
    }
  });
});

// The float32 WebAssembly kernels behind softmaxLast / softmaxLastVjp (log) / exp (backends/cpu/wasm/softmax_rows.ts)
// against float64 references, with error bounds derived from the float32 steps (u = 2^-24, the unit roundoff):
//  - softmax: t = fl(x - shift) moves exp's argument by <= u |t|; the vector exp adds <= 1.5 ulp <= 3u; the row sum of
//    non-negative terms (cols - 1) u; 1/z and the product u each. Relative error <= u (2 tmax + cols + 7), tmax the
//    row's largest |x - shift|; the vector exp flushes results below 2^-125 to 0 (an absolute 2^-120 covers it).
//  - log-softmax: x - (log z + shift) with z off by (cols + tmax + 3) u relatively, log's 1 ulp, and two roundings
//    of values of size |lz + shift| and |out|: absolute error <= u (cols + tmax + 3 + 2 |log z| + |lz + shift| + |out|).
//  - log-softmax VJP g - exp(y) sum(g): the float32 sum (cols - 1) u sum|g|, exp 3u, product and difference u each:
//    absolute error <= u ((cols + 4) exp(y) sum|g| + |out|).
import { softmaxRowsF32, logSoftmaxVjpRowsF32, expF32, softmaxWasmAvailable } from '../backends/cpu/wasm/softmax_rows.ts';

describe('float32 wasm softmax kernels', () => {
  const u = 2 ** -24;
  const lcg = (seed: number) => { let s = seed >>> 0; return () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32); };

  it('are available here', () => { expect(softmaxWasmAvailable()).toBe(true); });

  it('softmax and log-softmax rows are within the derived float32 bounds; non-finite-maximum rows are handed back', () => {
    const rnd = lcg(11);
    for (const [rows, cols] of [[3000, 10], [700, 1], [129, 3], [40, 64], [9, 1000], [2, 8192], [5, 8193]] as [number, number][]) {
      const n = rows * cols;
      const x = Float32Array.from({ length: n }, () => (rnd() < 0.1 ? -Infinity : (rnd() * 2 - 1) * 30));
      if (rows > 4) {
        x[1 * cols] = NaN;
        for (let j = 0; j < cols; j++) x[2 * cols + j] = -Infinity;
        x[3 * cols + cols - 1] = Infinity;
      }
      // rows whose maximum is NaN, +Infinity or -Infinity (every entry masked)
      const specialRows = new Set<number>();
      for (let r = 0; r < rows; r++) {
        let m = -Infinity;
        for (let j = 0; j < cols; j++) m = Math.max(m, x[r * cols + j]);
        if (!Number.isFinite(m)) specialRows.add(r);
      }
      for (const log of [false, true]) {
        const out = new Float32Array(n);
        const sp = softmaxRowsF32(x, out, rows, cols, log);
        if (cols > 8192) { expect(sp).toBeNull(); continue; }
        expect(new Set(sp), `${rows}x${cols}`).toEqual(specialRows);
        for (let r = 0; r < rows; r++) {
          if (specialRows.has(r)) continue;
          const o = r * cols;
          let m = -Infinity;
          for (let j = 0; j < cols; j++) m = Math.max(m, x[o + j]);
          let z = 0, tmax = 0;
          for (let j = 0; j < cols; j++) { z += Math.exp(x[o + j] - m); if (x[o + j] > -Infinity) tmax = Math.max(tmax, m - x[o + j]); }
          for (let j = 0; j < cols; j++) {
            const got = out[o + j];
            if (x[o + j] === -Infinity) { expect(got).toBe(log ? -Infinity : 0); continue; }
            const ref = log ? x[o + j] - m - Math.log(z) : Math.exp(x[o + j] - m) / z;
            const tol = log
              ? u * (cols + tmax + 3 + 2 * Math.abs(Math.log(z)) + Math.abs(Math.log(z) + m) + Math.abs(ref))
              : u * (2 * tmax + cols + 7) * Math.abs(ref) + 2 ** -120;
            if (!(Math.abs(got - ref) <= tol)) expect.fail(`${log ? 'log-' : ''}softmax ${rows}x${cols} row ${r} col ${j}: ${got} vs ${ref} (tol ${tol})`);
          }
        }
      }
    }
  });

  it('the log-softmax VJP is within its bound', () => {
    const rnd = lcg(12);
    for (const [rows, cols] of [[3000, 10], [64, 33], [3, 5000]] as [number, number][]) {
      const n = rows * cols;
      const x = Float64Array.from({ length: n }, () => (rnd() * 2 - 1) * 10);
      const y = new Float32Array(n);
      for (let r = 0; r < rows; r++) {
        let m = -Infinity, z = 0;
        for (let j = 0; j < cols; j++) m = Math.max(m, x[r * cols + j]);
        for (let j = 0; j < cols; j++) z += Math.exp(x[r * cols + j] - m);
        for (let j = 0; j < cols; j++) y[r * cols + j] = x[r * cols + j] - m - Math.log(z);
      }
      const g = Float32Array.from({ length: n }, () => rnd() * 2 - 1);
      const out = new Float32Array(n);
      expect(logSoftmaxVjpRowsF32(y, g, out, rows, cols)).toBe(true);
      for (let r = 0; r < rows; r++) {
        let sg = 0, sa = 0;
        for (let j = 0; j < cols; j++) { sg += g[r * cols + j]; sa += Math.abs(g[r * cols + j]); }
        for (let j = 0; j < cols; j++) {
          const i = r * cols + j, ey = Math.exp(y[i]);
          const ref = g[i] - ey * sg;
          const tol = u * ((cols + 4) * ey * sa + Math.abs(ref));
          if (!(Math.abs(out[i] - ref) <= tol)) expect.fail(`vjp ${rows}x${cols} at ${i}: ${out[i]} vs ${ref} (tol ${tol})`);
        }
      }
    }
    // NaN in y: declined (the backend's JS loop then computes it)
    const y = new Float32Array(300).fill(-1); y[7] = NaN;
    expect(logSoftmaxVjpRowsF32(y, new Float32Array(300), new Float32Array(300), 30, 10)).toBe(false);
  });

  it('exp through the CPU backend: within 1.5 ulp of Math.exp; overflow, NaN and -Infinity exactly as Math.exp', () => {
    const rnd = lcg(13);
    const n = 20000;
    const xs = Float32Array.from({ length: n }, (_, i) => (i % 997 === 5 ? 89 + rnd() * 10 : (rnd() * 2 - 1) * 87));
    xs[3] = NaN; xs[4] = -Infinity; xs[6] = Infinity;
    const got = g.exp(g.tensor(xs, [n], { dtype: 'float32' })).dataSync();
    for (let i = 0; i < n; i++) {
      const ref = Math.exp(xs[i]), r32 = Math.fround(ref);
      if (!Number.isFinite(r32) || xs[i] > 88.7) { expect(Object.is(got[i], r32), `x = ${xs[i]}`).toBe(true); continue; }
      if (r32 < 2 ** -125) { expect(got[i]).toBeLessThanOrEqual(2 ** -125); continue; }
      const ulp = 2 ** (Math.floor(Math.log2(r32)) - 23);
      if (!(Math.abs(got[i] - ref) <= 1.5 * ulp)) expect.fail(`exp(${xs[i]}) = ${got[i]}, want ${ref}`);
    }
    // the direct entry reports the chunks it could not do
    expect(expF32(Float32Array.from([1, 2, 100]), new Float32Array(3))).toEqual([[0, 3]]);
  });

  it('softmaxLast on the backend: special rows (NaN, +inf, all -inf) come out as the composition gives them', () => {
    const rows = 40, cols = 10;
    const xs: number[] = [];
    for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) xs.push(Math.sin(r * 7 + j) * 5);
    xs[5 * cols + 2] = NaN; xs[9 * cols + 4] = Infinity;
    for (let j = 0; j < cols; j++) xs[12 * cols + j] = -Infinity;
    const gs = xs.map((_, i) => Math.cos(i));
    for (const log of [false, true]) {
      const a = run('cpu', log, 'float32', [rows, cols], xs, gs), b = run('cpu-composed-softmax', log, 'float32', [rows, cols], xs, gs);
      for (const r of [5, 9, 12]) expect(a.y.slice(r * cols, (r + 1) * cols).map(String), `row ${r}`).toEqual(b.y.slice(r * cols, (r + 1) * cols).map(String));
      expect(close(a.y, b.y, 2 ** -23)).toBe(true);
      expect(close(a.dx, b.dx, 2 ** -23)).toBe(true);
    }
  });
});

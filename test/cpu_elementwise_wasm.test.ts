// The float32 WebAssembly elementwise kernels (backends/cpu/wasm/elementwise.ts) behind the CPU backend's add, sub,
// mul, div and reluGrad on contiguous arrays: bit-identical to the JS kernels' float64-then-round results (for
// these four operations rounding twice through float64 gives the correctly rounded float32 result), special
// values included, for array and scalar second operands and lengths across the kernel's chunk size.
import { describe, it, expect } from 'vitest';
import * as g from '../index.ts';
import { ewF32, ewInMemory, ewWasmOp, type EwOp } from '../backends/cpu/wasm/elementwise.ts';
import { createGemm } from '../backends/cpu/wasm/gemm.ts';

const SPECIALS = [0, -0, 1, -1, NaN, Infinity, -Infinity, 1e-45, -1e-45, 1e-40, 3.4028234663852886e38, -3.4028234663852886e38, 0.1, 7];

function ref(op: EwOp, a: number, b: number): number {
  switch (op) {
    case 'add': return Math.fround(a + b);
    case 'sub': return Math.fround(a - b);
    case 'mul': return Math.fround(a * b);
    case 'div': return Math.fround(a / b);
    case 'reluGrad': return b > 0 ? a : 0;
  }
}

function data(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  return Float32Array.from({ length: n }, (_, i) => (i % 7 === 3 ? SPECIALS[Math.floor(rnd() * SPECIALS.length)] : (rnd() * 2 - 1) * 10 ** (rnd() * 8 - 4)));
}

describe('wasm float32 elementwise kernels', () => {
  const ops: EwOp[] = ['add', 'sub', 'mul', 'div', 'reluGrad'];

  it('are available here', () => { for (const op of ops) expect(ewWasmOp(op)).toBe(true); });

  it('equal the float64-then-round results bit for bit (arrays and scalars, specials, odd lengths)', () => {
    for (const n of [1, 15, 17, 1000, 16384, 16385, 40000]) {
      const a = data(n, n), b = data(n, n + 1);
      for (const op of ops) {
        const out = new Float32Array(n);
        expect(ewF32(op, a, b, out, n)).toBe(true);
        for (let i = 0; i < n; i++) if (!Object.is(out[i], ref(op, a[i], b[i]))) expect.fail(`${op}(${a[i]}, ${b[i]}) = ${out[i]}, want ${ref(op, a[i], b[i])}`);
        for (const sc of SPECIALS) {
          const s = Math.fround(sc);
          ewF32(op, a, s, out, n);
          for (let i = 0; i < n; i++) if (!Object.is(out[i], ref(op, a[i], s))) expect.fail(`${op}(${a[i]}, scalar ${s}) = ${out[i]}`);
        }
      }
    }
  });

  it('the backend uses them for float32 and gives what its float64 path rounds to', () => {
    const n = 5000;
    const a = data(n, 3), b = data(n, 4);
    for (const [name, fn] of [['add', g.add], ['sub', g.sub], ['mul', g.mul], ['div', g.div]] as const) {
      const y32 = fn(g.tensor(a, [50, 100]), g.tensor(b, [50, 100])).dataSync();
      const y64 = fn(g.tensor(Float64Array.from(a), [50, 100], { dtype: 'float64' }), g.tensor(Float64Array.from(b), [50, 100], { dtype: 'float64' })).dataSync();
      for (let i = 0; i < n; i++) if (!Object.is(y32[i], Math.fround(y64[i]))) expect.fail(`${name} at ${i}: ${y32[i]} vs ${y64[i]}`);
      const s32 = fn(g.tensor(a, [50, 100]), 0.3).dataSync();
      for (let i = 0; i < n; i++) if (!Object.is(s32[i], ref(name, a[i], Math.fround(0.3)))) expect.fail(`${name} scalar at ${i}`);
    }
  });
});

describe('the same kernels over the GEMM memory (operands read in place)', () => {
  const ops: EwOp[] = ['add', 'sub', 'mul', 'div', 'reluGrad'];

  it('equal the float64-then-round results bit for bit, on one thread and split across two', async () => {
    const gm = await createGemm({ threads: 2, backoff: false }); // split whatever the machine's load
    try {
      const ew = ewInMemory(gm.arena.memory)!;
      for (const n of [1, 15, 17, 1000, 40960, 65553, 140001]) {
        const a = gm.allocArray(1, n)!, b = gm.allocArray(1, n)!, out = gm.allocArray(1, n)!;
        a.set(data(n, n)); b.set(data(n, 2 * n));
        const at = (x: Float32Array) => gm.arena.addressOf(x);
        for (const op of ops) {
          for (const sp of [null, gm]) {
            out.fill(12345);
            ew.run(op, at(a), at(b), at(out), n, sp);
            for (let i = 0; i < n; i++) if (!Object.is(out[i], ref(op, a[i], b[i]))) expect.fail(`${op}(${a[i]}, ${b[i]}) = ${out[i]} (n ${n})`);
            const s = Math.fround(-0.7);
            ew.run(op, at(a), { scalar: s }, at(out), n, sp);
            for (let i = 0; i < n; i++) if (!Object.is(out[i], ref(op, a[i], s))) expect.fail(`${op}(${a[i]}, scalar) = ${out[i]} (n ${n})`);
          }
        }
        for (const x of [a, b, out]) gm.freeArray(x);
      }
    } finally {
      await gm.close();
    }
  });

  it('the backend writes large float32 results there and reads operands that live there in place, with the same values', () => {
    const n = 100 * 512;
    const a = data(n, 5), b = data(n, 6);
    // a matmul output lives in the GEMM memory: multiply it by the identity to get one
    const eye = new Float32Array(512 * 512);
    for (let i = 0; i < 512; i++) eye[i * 512 + i] = 1;
    const x = g.matmul(g.tensor(a, [100, 512]), g.tensor(eye, [512, 512]));
    const y = g.matmul(g.tensor(b, [100, 512]), g.tensor(eye, [512, 512]));
    const gm = g.cpuBackend.gemm as unknown as { arena: { addressOf(v: Float32Array): number } };
    const stor = (t: g.Tensor) => g.cpuBackend.readSync(t.buf) as Float32Array;
    expect(gm.arena.addressOf(stor(x))).toBeGreaterThanOrEqual(0);
    for (const [name, fn] of [['add', g.add], ['sub', g.sub], ['mul', g.mul], ['div', g.div]] as const) {
      const z = fn(x, y);
      expect(gm.arena.addressOf(stor(z))).toBeGreaterThanOrEqual(0);
      const zd = z.dataSync(), xd = x.dataSync(), yd = y.dataSync();
      for (let i = 0; i < n; i++) if (!Object.is(zd[i], ref(name, xd[i], yd[i]))) expect.fail(`${name} at ${i}`);
    }
  });
});

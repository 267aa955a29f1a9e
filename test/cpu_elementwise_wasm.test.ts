// The float32 WebAssembly elementwise kernels (backends/cpu/wasm/elementwise.ts) behind the CPU backend's add, sub,
// mul, div and reluGrad on contiguous arrays: bit-identical to the JS kernels' float64-then-round results (for
// these four operations rounding twice through float64 gives the correctly rounded float32 result), special
// values included, for array and scalar second operands and lengths across the kernel's chunk size.
import { describe, it, expect } from 'vitest';
import * as g from '../index.ts';
import { ewF32, ewWasmOp, type EwOp } from '../backends/cpu/wasm/elementwise.ts';

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

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

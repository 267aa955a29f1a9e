// backends/cpu/wasm/bce.ts: float32 WebAssembly SIMD binary cross-entropy with logits and its gradient,
// against the float64 JS formula of engine/elementwise.ts (bceLogits, bceLogitsGrad).
import { describe, it, expect } from 'vitest';
import { bceLogitsF32, bceLogitsGradF32, bceWasmAvailable } from '../backends/cpu/wasm/bce.ts';
import { mulberry32 } from './estimators_stats.ts';

const EPS = 2 ** -23;

function inputs(n: number, seed: number) {
  const rnd = mulberry32(seed);
  const x = new Float32Array(n), y = new Float32Array(n), g = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rnd();
    // mostly moderate logits, some large (saturated), some tiny, a few exact zeros
    x[i] = r < 0.7 ? (2 * rnd() - 1) * 8 : r < 0.9 ? (2 * rnd() - 1) * 120 : r < 0.99 ? (2 * rnd() - 1) * 1e-6 : 0;
    y[i] = i % 5 === 0 ? 0 : i % 5 === 1 ? 1 : rnd();
    g[i] = 2 * rnd() - 1;
  }
  return { x, y, g };
}

describe('bce with logits, float32 wasm kernels', () => {
  it('uses WebAssembly SIMD here', () => expect(bceWasmAvailable()).toBe(true));

  it('loss: within its float32 error bound of the float64 formula (lengths off the vector width and over chunks)', () => {
    for (const n of [1, 3, 4, 7, 8192, 78400 + 3]) {
      const { x, y } = inputs(n, n);
      const out = new Float32Array(n);
      bceLogitsF32(x, y, out);
      for (let i = 0; i < n; i++) {
        const a = x[i], b = y[i];
        const want = Math.max(a, 0) - a * b + Math.log(1 + Math.exp(-Math.abs(a))); // the JS formula, float64
        const sp = Math.log1p(Math.exp(-Math.abs(a)));
        // float32: x y rounds (|xy| eps/2), the difference (|max(x,0) - xy| eps/2), log1p(exp(-|x|)) is within
        // ~3.5 eps relative (exp 1.5 ulp scaled by t/(1+t) <= 1, log 1 ulp, the correction term), the sum
        // (|l| eps/2); the reference rounds once more to float32 (|l| eps/2) and its log(1 + t) errs by <= 2^-52
        const tol = EPS * (Math.abs(a * b) + Math.abs(Math.max(a, 0) - a * b) + 4 * sp + 2 * Math.abs(want)) + 2 ** -52;
        expect(Math.abs(out[i] - want), `x ${a} y ${b}`).toBeLessThanOrEqual(tol);
      }
    }
  });

  it('gradient: (sigmoid(x) - y) g within its float32 error bound', () => {
    for (const n of [1, 5, 78400 + 3]) {
      const { x, y, g } = inputs(n, 100 + n);
      const out = new Float32Array(n);
      bceLogitsGradF32(x, y, g, out);
      for (let i = 0; i < n; i++) {
        const a = x[i];
        const sig = a >= 0 ? 1 / (1 + Math.exp(-a)) : Math.exp(a) / (1 + Math.exp(a));
        const want = (sig - y[i]) * g[i];
        // sigmoid: exp 1.5 ulp, 1 + t and the division: <= 3.5 eps relative; then (sig - y) and the product with g
        // round once each (eps/2 of their magnitudes); the reference's float32 rounding adds another eps/2. The
        // vector exp returns 0 below -86.5 (true value < 2.7e-38), so sigmoid(x < -86.5) errs by that, times g
        const tol = EPS * Math.abs(g[i]) * (4 * sig + 2 * Math.abs(sig - y[i])) + 2.7e-38 * Math.abs(g[i]) + 1e-45;
        expect(Math.abs(out[i] - want), `x ${a} y ${y[i]} g ${g[i]}`).toBeLessThanOrEqual(tol);
      }
    }
  });

  it('NaN propagates; in-place output works; mismatched lengths throw', () => {
    const x = Float32Array.from([NaN, 1, -2, 3]), y = Float32Array.from([0.5, 1, 0, 0.25]);
    const out = new Float32Array(4);
    bceLogitsF32(x, y, out);
    expect(out[0]).toBeNaN();
    const g = Float32Array.from([1, 1, 1, 1]);
    bceLogitsGradF32(x, y, g, out);
    expect(out[0]).toBeNaN();
    const ref = new Float32Array(4);
    bceLogitsF32(x, y, ref);
    bceLogitsF32(x, y, x); // out aliases x
    expect(Array.from(x.subarray(1))).toEqual(Array.from(ref.subarray(1)));
    expect(() => bceLogitsF32(x, y, new Float32Array(3))).toThrow(/equal lengths/);
  });
});

describe('the CPU backend routes float32 bceLogits / bceLogitsGrad through the kernels', () => {
  it('binaryCrossEntropyWithLogits on a 100x784 float32 batch: loss and gradient as the kernels give them', async () => {
    const g = await import('../index.ts');
    const n = 100 * 784;
    const { x, y } = inputs(n, 7);
    const z = g.tensor(x, [100, 784], { requiresGrad: true });
    const t = g.tensor(y, [100, 784]);
    const l = g.binaryCrossEntropyWithLogits(z, t, 'none');
    const want = new Float32Array(n);
    bceLogitsF32(x, y, want);
    expect(l.dataSync()).toEqual(want); // the backend's binary op is the kernel itself
    g.sum(l).backward();
    const wantG = new Float32Array(n);
    bceLogitsGradF32(x, y, new Float32Array(n).fill(1), wantG);
    expect(z.grad!.dataSync()).toEqual(wantG); // upstream of sum is exactly 1
  });
});

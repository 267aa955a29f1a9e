// The one-pass CPU estimator kernels (estimators/fused.ts) against the op-composed reference path
// (impl: 'ops'): identical one-hot samples, gradients equal up to float rounding, on random shapes,
// masks, temperatures and dtypes.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { tensor, tidy, random, estimators, type DType } from '../index.ts';
import { philoxWords, philoxFill, mulhi32 } from '../engine/philox.ts';
import { mulberry32 } from './estimators_stats.ts';
import { wasmGradTol } from './wasm_estimator_tol.ts';

// the built-in methods that request a fused kernel (from the registry)
const METHODS = estimators.list().filter((m) => m.builtin && m.fused).flatMap((m) => m.examples);

function run(impl: 'fused' | 'ops', method: string, dtype: DType, shape: number[], logits: Float64Array, up: Float64Array, mask: { shape: number[]; data: Float64Array } | null, tau: number, seed: number) {
  return tidy(() => {
    const x = tensor(logits, shape, { dtype, requiresGrad: true });
    const m = mask ? tensor(mask.data, mask.shape, { dtype }) : undefined;
    const y = estimators.sample(x, { method, tau, key: random.key(seed), mask: m, k: 7, impl });
    y.backward(tensor(up, shape, { dtype }));
    return { y: Float64Array.from(y.dataSync()), g: Float64Array.from(x.grad!.dataSync()) };
  });
}

describe('fused CPU estimators agree with the op-composed path', () => {
  for (const dtype of ['float64', 'float32'] as DType[]) {
    it(`${dtype}: same sample, same gradient (every method, masks, taus)`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 12 }), // C
          fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 2 }), // batch shape
          fc.constantFrom(...METHODS),
          fc.constantFrom(1, 0.5, 0.1, 2),
          fc.constantFrom('none', 'full', 'row'),
          fc.integer({ min: 0, max: 1e6 }),
          (C, batch, method, tau, maskMode, seed) => {
            const shape = [...batch, C];
            const n = shape.reduce((a, b) => a * b, 1);
            const rnd = mulberry32(seed + 1);
            const logits = Float64Array.from({ length: n }, () => (2 * rnd() - 1) * 3);
            const up = Float64Array.from({ length: n }, () => 2 * rnd() - 1);
            let mask: { shape: number[]; data: Float64Array } | null = null;
            if (maskMode !== 'none' && C > 1) {
              const ms = maskMode === 'full' ? shape : [C];
              const mn = ms.reduce((a, b) => a * b, 1);
              const data = Float64Array.from({ length: mn }, () => (rnd() < 0.3 ? 0 : 1));
              for (let o = 0; o < mn; o += C) data[o + Math.floor(rnd() * C)] = 1; // one allowed per row
              mask = { shape: ms, data };
            }
            const a = run('fused', method, dtype, shape, logits, up, mask, tau, seed);
            const b = run('ops', method, dtype, shape, logits, up, mask, tau, seed);
            expect(Array.from(a.y)).toEqual(Array.from(b.y));
            // Error bound: the gradient is (1/tau) s (g - <s, g>) (reinmax: the same form, coefficients <= 2), so a
            // relative error d of s moves it by at most 2.5 d max|g| / tau. The exponents (x - max) / tau have
            // |x| <= 3 logits + gap 2.5 + Gumbel noise (< 17 in float32's uniforms), rounded at most ~30
            // times along the op path: d <= 30 eps (1 + 23 / tau). float64 logits take the JS kernel (float64
            // internals, exact to a few eps); float32 logits take the wasm kernels, whose float32 internals add
            // their own bound (wasmGradTol, derived in test/wasm_estimator_tol.ts).
            const eps = dtype === 'float64' ? 2 ** -52 : 2 ** -23;
            const tol = (2.5 / tau) * 30 * eps * (1 + 23 / tau) + (dtype === 'float32' ? wasmGradTol(C, 7, tau) : 0);
            for (let i = 0; i < n; i++) expect(Math.abs(a.g[i] - b.g[i])).toBeLessThanOrEqual(tol);
          },
        ),
        { seed: dtype === 'float64' ? 11 : 12, numRuns: 120 },
      );
    });
  }

  it('masked categories get exactly zero gradient and are never sampled', () => {
    const C = 6, rows = 50;
    const logits = Float64Array.from({ length: rows * C }, (_, i) => Math.sin(i));
    const mask = Float64Array.from({ length: rows * C }, (_, i) => (i % C === 2 || i % C === 5 ? 0 : 1));
    for (const method of METHODS) {
      const { y, g } = run('fused', method, 'float64', [rows, C], logits, Float64Array.from(logits, Math.cos), { shape: [rows, C], data: mask }, 0.5, 3);
      for (let i = 0; i < rows * C; i++) {
        if (!mask[i]) {
          expect(y[i], method).toBe(0);
          expect(g[i], method).toBe(0);
        }
      }
    }
  });

  it('rejects NaN and +Infinity logits and fully masked rows, naming the argument', () => {
    const x = tensor([0, Number.NaN, 1], [1, 3]);
    expect(() => estimators.sample(x, { method: 'gst-1.0', seed: 1 })).toThrow(/argument 'logits' contains NaN at flat index 1/);
    const y = tensor([0, Infinity, 1], [1, 3]);
    expect(() => estimators.sample(y, { method: 'rao_gumbel', seed: 1 })).toThrow(/contains Infinity/);
    const z = tensor([0, 1, 2, 3], [2, 2]);
    expect(() => estimators.sample(z, { method: 'st', seed: 1, mask: tensor([1, 1, 0, 0], [2, 2]) })).toThrow(/row 1 of 'logits'.*every category masked/);
    expect(() => estimators.sample(z, { method: 'nd_gst-1.0', seed: 1, impl: 'fused' })).toThrow(/impl 'fused' needs/);
  });
});

describe('Philox stream helpers', () => {
  it('philoxWords(start) is the philoxFill stream from word start, at any alignment', () => {
    const full = new Int32Array(64);
    philoxFill(123, 456, 0, full);
    for (const start of [0, 1, 2, 3, 5, 17, 30]) {
      for (const n of [0, 1, 3, 4, 7, 20]) {
        const part = new Int32Array(n);
        philoxWords(123, 456, start, part);
        expect(Array.from(part)).toEqual(Array.from(full.subarray(start, start + n)));
      }
    }
  });

  it('mulhi32 (two exact double products) equals the BigInt high word', () => {
    const rnd = mulberry32(9);
    for (let i = 0; i < 2000; i++) {
      const a = Math.floor(rnd() * 4294967296) >>> 0;
      for (const b of [0xd2511f53, 0xcd9e8d57, 0xffffffff, a]) {
        const want = Number((BigInt(a) * BigInt(b)) >> 32n);
        expect(mulhi32(a, b)).toBe(want);
      }
    }
  });
});

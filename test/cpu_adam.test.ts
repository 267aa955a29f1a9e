// The WebAssembly SIMD Adam update (backends/cpu/wasm/adam.ts) against the JS loop it replaces,
// and the CPU backend's dispatch between the two.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createAdamWasm } from '../backends/cpu/wasm/adam.ts';
import { adamJs, CpuBackend } from '../backends/cpu/index.ts';
import type { AdamHyper } from '../engine/backend.ts';

const kernel = createAdamWasm();

function rand(n: number, seed: number, scale: number, positive = false): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32;
    out[i] = (positive ? u : u * 2 - 1) * scale * 2 ** Math.floor((u * 997) % 6 - 3);
  }
  return out;
}

// The JS loop computes in float64 and rounds once per stored value; the wasm kernel rounds every
// float32 operation. Bounds (per element, K units of float32 rounding u = 2^-24, no tuning beyond
// K): m and v are sums of two products, so their error is relative to the sum of the magnitudes
// of the terms (cancellation in m makes a relative-to-result bound wrong); the step on p is
// relative to itself plus the propagated error of m, and p's own rounding.
const U = 2 ** -24, K = 8;
function close(got: Float32Array, want: Float32Array, tol: Float64Array): string | null {
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol[i])) return `[${i}] got ${got[i]} want ${want[i]} tol ${tol[i]}`;
  }
  return null;
}

function compare(n: number, seed: number, hp: AdamHyper): string | null {
  const p = rand(n, seed, 1), g = rand(n, seed + 1, 0.1), m = rand(n, seed + 2, 0.01), v = rand(n, seed + 3, 1e-4, true);
  const [p1, g1, m1, v1] = [p.slice(), g.slice(), m.slice(), v.slice()];
  const [p2, m2, v2] = [p.slice(), m.slice(), v.slice()];
  adamJs(p1, g1, m1, v1, hp);
  kernel!.update(p2, g.slice(), m2, v2, hp);
  if (!g1.every((x, i) => x === g[i])) return 'gradient modified';
  const { beta1: b1, beta2: b2, weightDecay: wd, lr, eps, step } = hp;
  const ss = lr / (1 - b1 ** step), sq2 = Math.sqrt(1 - b2 ** step);
  const tm = new Float64Array(n), tv = new Float64Array(n), tp = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const gi = Math.abs(g[i]) + Math.abs(wd * p[i]);
    tm[i] = K * U * (Math.abs(b1 * m[i]) + Math.abs((1 - b1) * gi));
    tv[i] = K * U * (Math.abs(b2 * v[i]) + Math.abs((1 - b2) * gi * gi));
    const den = Math.sqrt(v1[i]) / sq2 + eps;
    const upd = Math.abs(ss * m1[i] / den);
    tp[i] = K * U * (Math.abs(p[i]) + upd) + ss * tm[i] / den + upd * (tv[i] / Math.max(v1[i], 1e-300));
  }
  return close(m2, m1, tm) ?? close(v2, v1, tv) ?? close(p2, p1, tp);
}

describe('wasm Adam', () => {
  it('is available on this Node', () => {
    expect(kernel).not.toBeNull();
  });

  it('matches the JS loop within float32 rounding (property: lengths, steps, weight decay)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 20000 }), fc.integer({ min: 1, max: 1000 }), fc.boolean(), fc.integer({ min: 0, max: 1e6 }),
      fc.constantFrom(0.9, 0.5, 0), fc.constantFrom(0.999, 0.9),
      (n, step, wd, seed, beta1, beta2) => compare(n, seed, { lr: 1e-3, beta1, beta2, eps: 1e-8, weightDecay: wd ? 0.01 : 0, step }) === null,
    ), { numRuns: 60 });
  });

  it('handles lengths around the chunk size and vector width', () => {
    for (const n of [1, 3, 4, 5, 8191, 8192, 8193, 16387]) {
      const hp = { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 7 };
      expect(compare(n, n, hp), `n=${n}`).toBeNull();
    }
  });

  it('without weight decay, an infinite parameter does not poison its own update with 0 * inf', () => {
    const hp = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1 };
    const p = new Float32Array([Infinity, 1, 2, 3, 4]), g = new Float32Array([0.5, 0.5, 0.5, 0.5, 0.5]);
    const m = new Float32Array(5), v = new Float32Array(5);
    kernel!.update(p, g, m, v, hp);
    expect(m[0]).toBeCloseTo(0.05, 6);
    expect(p[0]).toBe(Infinity);
  });

  it('the CPU backend uses it for float32 and falls back to JS for float64 or when disabled', () => {
    const be = new CpuBackend();
    const hp = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, step: 3 };
    const mk = (dt: 'float32' | 'float64') => {
      const A = dt === 'float32' ? Float32Array : Float64Array;
      return [A.from(rand(37, 1, 1)), A.from(rand(37, 2, 0.1)), A.from(rand(37, 3, 0.01)), A.from(rand(37, 4, 1e-4, true))];
    };
    const ref = mk('float32');
    adamJs(ref[0], ref[1], ref[2], ref[3], hp);
    const f32 = mk('float32');
    const pBuf = be.fromArray(f32[0]);
    be.adamUpdate(pBuf, be.fromArray(f32[1]), be.fromArray(f32[2]), be.fromArray(f32[3]), hp);
    expect(be.adamKernel).toBeTruthy();
    const got = be.readSync(pBuf); // the buffer's storage (moved into wasm memory by the first step)
    for (let i = 0; i < 37; i++) expect(Math.abs(got[i] - ref[0][i])).toBeLessThan(1e-6 * (Math.abs(ref[0][i]) + 0.01));
    const f64 = mk('float64');
    be.adamUpdate(be.fromArray(f64[0]), be.fromArray(f64[1]), be.fromArray(f64[2]), be.fromArray(f64[3]), hp);
    const ref64 = mk('float64');
    adamJs(ref64[0], ref64[1], ref64[2], ref64[3], hp);
    expect(Array.from(f64[0])).toEqual(Array.from(ref64[0])); // float64: the JS loop itself
    const js = new CpuBackend();
    js.adamKernel = null;
    const f32b = mk('float32');
    js.adamUpdate(js.fromArray(f32b[0]), js.fromArray(f32b[1]), js.fromArray(f32b[2]), js.fromArray(f32b[3]), hp);
    expect(Array.from(f32b[0])).toEqual(Array.from(ref[0])); // disabled: bit-identical to the JS loop
  });
});

describe('resident Adam (parameter and moments in wasm memory)', () => {
  it('gives bit-identical results to the copying kernel over many steps, and survives new moment buffers', () => {
    const be = new CpuBackend();
    const n = 1003, hp = (step: number): AdamHyper => ({ lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: step > 5 ? 0.01 : 0, step });
    const p0 = rand(n, 1, 1);
    const P = be.fromArray(p0.slice()), M = be.fromArray(new Float32Array(n)), V = be.fromArray(new Float32Array(n));
    const [rp, rm, rv] = [p0.slice(), new Float32Array(n), new Float32Array(n)];
    for (let step = 1; step <= 12; step++) {
      const g = rand(n, 100 + step, 0.1);
      be.adamUpdate(P, be.fromArray(g.slice()), M, V, hp(step));
      kernel!.update(rp, g, rm, rv, hp(step));
      expect(be.readSync(P)).toEqual(rp);
      expect(be.readSync(M)).toEqual(rm);
      expect(be.readSync(V)).toEqual(rv);
    }
    // the buffers now view wasm memory, away from the arrays handed in
    expect(be.readSync(P).buffer).not.toBe(p0.buffer);
    // new moment buffers (e.g. a restored checkpoint): adopted again, from their values
    const M2 = be.fromArray(rm.slice()), V2 = be.fromArray(rv.slice());
    const g = rand(n, 999, 0.1);
    be.adamUpdate(P, be.fromArray(g.slice()), M2, V2, hp(13));
    kernel!.update(rp, g, rm, rv, hp(13));
    expect(be.readSync(P)).toEqual(rp);
    expect(be.readSync(M2)).toEqual(rm);
    expect(be.readSync(V)).not.toEqual(rv); // the old moments are left alone
  });
});

describe('wasm Adam split across the matmul worker thread', () => {
  it('a large parameter updated on two threads is bit-identical to one thread (with and without weight decay)', async () => {
    const { createGemm } = await import('../backends/cpu/wasm/gemm.ts');
    const g2 = await createGemm({ threads: 2, backoff: false }); // split whatever the machine's load
    try {
      expect(g2.workerActive).toBe(true);
      let splits = 0;
      const splitRange = g2.splitRange.bind(g2);
      g2.splitRange = (...a: Parameters<typeof g2.splitRange>) => { splits++; splitRange(...a); };
      for (const n of [131072, 200003, 300017]) {
        const a = kernel!.slot(n), b = kernel!.slot(n);
        const p0 = rand(n, n, 1);
        a.P.set(p0); b.P.set(p0);
        for (let step = 1; step <= 4; step++) {
          const G = rand(n, n + step, 0.1);
          const hp: AdamHyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: step > 2 ? 0.01 : 0, step };
          kernel!.updateSlot(a, G, hp, null);
          // a sleeping worker is only woken, not given the job: wait until it is awake
          const t0 = Date.now();
          while (!g2.workerActive && Date.now() - t0 < 5000) { /* the check wakes it */ }
          kernel!.updateSlot(b, G, hp, g2);
        }
        for (const f of ['P', 'M', 'V'] as const) {
          let same = true;
          for (let i = 0; i < n; i++) if (!Object.is(a[f][i], b[f][i])) { same = false; break; }
          expect(same, `${f}, n = ${n}`).toBe(true);
        }
        // the parameter moved at the end of its second half too
        expect(b.P[n - 1]).not.toBe(p0[n - 1]);
      }
      // the two-thread path ran (normally all 12 calls, 3 sizes x 4 steps; on an overloaded machine the worker can fall
      // asleep between the wake-up above and the call, and that call runs on one thread, with the same bits)
      expect(splits).toBeGreaterThanOrEqual(1);
    } finally {
      await g2.close();
    }
  });
});

// The WebAssembly SIMD estimator kernels (backends/cpu/wasm/estimator_kernels.ts, philox.ts, vmath.ts):
// Philox words, the vector exp / log against Math.exp / Math.log over the inputs they see, the Gumbel noise
// against the op path's for every possible uniform, and the wasm path of estimators.sample against the
// op path (samples) and the JS kernel (gradients, masks, fully masked rows, NaN handling, determinism).
import { describe, it, expect, afterEach, afterAll } from 'vitest';
import { tensor, tidy, noGrad, random, estimators, type DType } from '../index.ts';
import { philoxWords } from '../engine/philox.ts';
import { buildEstimatorKernelsStrict, estimatorKernels, GUMBEL_ERR, FWD_KINDS } from '../backends/cpu/wasm/estimator_kernels.ts';
import { cpuBackend } from '../index.ts';
const useWasmEstimators = (on: boolean) => { cpuBackend.wasmEstimators = on; };
import { createGemm, type Gemm } from '../backends/cpu/wasm/gemm.ts';
import { mulberry32 } from './estimators_stats.ts';
import { wasmGradTol } from './wasm_estimator_tol.ts';

const K = buildEstimatorKernelsStrict();

/** float32 ulp of v (the spacing of float32 values at |v|, for normal |v|) */
function ulp32(v: number): number {
  return 2 ** (Math.floor(Math.log2(Math.abs(v))) - 23);
}

/** all 2^23 uniforms the noise can see: ((k + 0.5) 2^-23) */
function allUniforms(): Float32Array {
  const n = 2 ** 23;
  const u = new Float32Array(n);
  for (let k = 0; k < n; k++) u[k] = (k + 0.5) * 1.1920928955078125e-7;
  return u;
}

describe('wasm Philox4x32-10', () => {
  it('equals engine/philox.ts words for random keys, starts (any alignment, across 2^32 blocks) and lengths', () => {
    const rnd = mulberry32(5);
    const starts = [0, 1, 2, 3, 5, 17, 30, 1001, 4 * (2 ** 32 - 3) + 1, 4 * (2 ** 32 - 1) + 3, 2 ** 40 + 6];
    for (let t = 0; t < 60; t++) {
      const k0 = Math.floor(rnd() * 2 ** 32) | 0, k1 = Math.floor(rnd() * 2 ** 32) | 0;
      const start = t < starts.length ? starts[t] : Math.floor(rnd() * 1e6);
      const n = [1, 3, 4, 15, 16, 17, 63, 200][t % 8];
      const want = new Int32Array(n);
      philoxWords(k0, k1, start, want);
      expect(Array.from(K.philoxWords(k0, k1, start, n)), `start ${start} n ${n}`).toEqual(Array.from(want));
    }
  });
});

describe('vector log / exp (float32)', () => {
  it('log: within 1 ulp of Math.log on every input of the Gumbel noise (all u, all -fround(log u))', () => {
    const u = allUniforms();
    const l1 = K.map('log', u);
    const x2 = new Float32Array(u.length);
    let worst = 0;
    for (let i = 0; i < u.length; i++) {
      const r = Math.log(u[i]);
      worst = Math.max(worst, Math.abs(l1[i] - r) / ulp32(r));
      x2[i] = -Math.fround(r);
    }
    const l2 = K.map('log', x2);
    for (let i = 0; i < x2.length; i++) {
      const r = Math.log(x2[i]);
      if (r !== 0) worst = Math.max(worst, Math.abs(l2[i] - r) / ulp32(r));
      else expect(l2[i]).toBe(0);
    }
    expect(worst).toBeLessThanOrEqual(1);
  });

  it('log: within 1 ulp on random normal inputs, and the special variant handles 0, subnormals and NaN', () => {
    const rnd = mulberry32(7);
    const x = Float32Array.from({ length: 1 << 18 }, () => 2 ** (rnd() * 250 - 125) * (1 + rnd()));
    for (const which of ['log', 'logs'] as const) {
      const y = K.map(which, x);
      let worst = 0;
      for (let i = 0; i < x.length; i++) {
        const r = Math.log(x[i]);
        if (r !== 0) worst = Math.max(worst, Math.abs(y[i] - r) / ulp32(r));
      }
      expect(worst, which).toBeLessThanOrEqual(1);
    }
    const special = Float32Array.from([0, NaN, 1, 2 ** -149, 3e-42, 2 ** -127, 1e-40]);
    const y = K.map('logs', special);
    expect(y[0]).toBe(-Infinity);
    expect(y[1]).toBeNaN();
    expect(y[2]).toBe(0);
    for (let i = 3; i < special.length; i++) expect(Math.abs(y[i] - Math.log(special[i])) / ulp32(Math.log(special[i]))).toBeLessThanOrEqual(1);
  });

  it('exp: within 1.5 ulp of Math.exp on [-86.5, 88.7]; exactly 0 below -86.5 and at -Infinity; NaN stays NaN', () => {
    const rnd = mulberry32(8);
    const n = 1 << 19;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      // the softmax arguments are <= 0: most samples there, dense near 0, some up to 88.7
      x[i] = i % 8 === 0 ? rnd() * 88.7 : i % 2 ? -86.5 * rnd() : -(rnd() ** 4) * 2;
    }
    x[0] = 0; x[1] = -86.5; x[2] = 88.7; x[3] = -1e-30;
    const y = K.map('exp', x);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const r = Math.exp(x[i]);
      worst = Math.max(worst, Math.abs(y[i] - r) / ulp32(r));
    }
    expect(worst).toBeLessThanOrEqual(1.5);
    const s = K.map('exp', Float32Array.from([-86.51, -87.5, -100, -1e30, -Infinity, NaN]));
    expect(Array.from(s.subarray(0, 5))).toEqual([0, 0, 0, 0, 0]);
    expect(s[5]).toBeNaN();
  });
});

describe('Gumbel noise of the wasm kernel', () => {
  it(`is within GUMBEL_ERR = 2^${Math.log2(GUMBEL_ERR)} of the op path's for every one of the 2^23 uniforms`, () => {
    const u = allUniforms();
    const negG = K.map('negGumbel', u); // log(-log u): the noise is its negation
    let worst = 0;
    for (let i = 0; i < u.length; i++) {
      const G = -Math.fround(Math.log(-Math.fround(Math.log(u[i]))));
      worst = Math.max(worst, Math.abs(-negG[i] - G));
    }
    expect(worst).toBeLessThanOrEqual(GUMBEL_ERR);
    expect(worst).toBeGreaterThan(GUMBEL_ERR / 4); // the bound is not loose by orders of magnitude
  });
});

function sampleRun(impl: 'fused' | 'ops', method: string, dtype: DType, shape: number[], logits: Float64Array, up: Float64Array,
  mask: Float64Array | null, tau: number, seed: number, k = 5, check = true) {
  return tidy(() => {
    const x = tensor(logits, shape, { dtype, requiresGrad: true });
    const m = mask ? tensor(mask, shape, { dtype }) : undefined;
    const y = estimators.sample(x, { method, tau, key: random.key(seed), mask: m, k, impl, check });
    y.backward(tensor(up, shape, { dtype }));
    return { y: Float64Array.from(y.dataSync()), g: Float64Array.from(x.grad!.dataSync()) };
  });
}

// the built-in methods that request a fused kernel (from the registry)
const METHODS = estimators.list().filter((m) => m.builtin && m.fused).flatMap((m) => m.examples);


describe('estimators.sample on float32 through the wasm kernels', () => {
  afterEach(() => useWasmEstimators(true));

  it('is available here (WebAssembly SIMD) and used by default', () => {
    expect(estimatorKernels()).not.toBeNull();
  });

  it('samples equal the op path, including rows decided by near-ties (huge logits: the exact noise redoes them)', () => {
    const kern = estimatorKernels()!;
    const before = kern.rowsRedone;
    const rnd = mulberry32(21);
    for (const [shape, scale, offset] of [[[37, 61], 3, 0], [[500, 10], 3, 0], [[3, 7, 13], 0.5, 1e6], [[200, 4], 0, 3e5]] as [number[], number, number][]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const logits = Float64Array.from({ length: n }, () => offset + (2 * rnd() - 1) * scale);
      const up = Float64Array.from({ length: n }, () => 2 * rnd() - 1);
      for (const seed of [1, 2, 3]) {
        const a = sampleRun('fused', 'gumbel', 'float32', shape, logits, up, null, 1, seed);
        const b = sampleRun('ops', 'gumbel', 'float32', shape, logits, up, null, 1, seed);
        expect(Array.from(a.y)).toEqual(Array.from(b.y));
      }
    }
    // logits of 1e6 (float32 spacing 0.0625) tie the perturbed values often: those rows went through the redo
    expect(kern.rowsRedone).toBeGreaterThan(before);
  });

  it('gradients agree with the JS kernel (float64 internals) within float32 rounding, every method, masks, taus', () => {
    const rnd = mulberry32(31);
    let worstRatio = 0;
    for (const method of METHODS) {
      for (const tau of [1, 0.5, 2]) {
        for (const C of [1, 3, 4, 10, 33]) {
          const shape = [17, C];
          const n = 17 * C;
          const logits = Float64Array.from({ length: n }, () => (2 * rnd() - 1) * 3);
          const up = Float64Array.from({ length: n }, () => 2 * rnd() - 1);
          const mask = C > 1 ? Float64Array.from({ length: n }, (_, i) => (i % C === 0 || rnd() > 0.3 ? 1 : 0)) : null;
          for (const m of [null, mask]) {
            useWasmEstimators(true);
            const a = sampleRun('fused', method, 'float32', shape, logits, up, m, tau, 9, 6);
            useWasmEstimators(false);
            const b = sampleRun('fused', method, 'float32', shape, logits, up, m, tau, 9, 6);
            expect(Array.from(a.y), `${method} tau ${tau} C ${C}`).toEqual(Array.from(b.y));
            const tol = wasmGradTol(C, 6, tau);
            let worst = 0;
            for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(a.g[i] - b.g[i]) / tol);
            expect(worst, `${method} tau ${tau} C ${C}`).toBeLessThanOrEqual(1);
            worstRatio = Math.max(worstRatio, worst);
            if (m) for (let i = 0; i < n; i++) if (!m[i]) { expect(a.y[i]).toBe(0); expect(a.g[i]).toBe(0); }
          }
        }
      }
    }
    if (process.env.SHOW_TOL) console.log('worst error / tolerance', worstRatio);
  });

  it('fully masked rows without check: same values (NaN where the JS kernel gives NaN) as the JS kernel', () => {
    const C = 6, rows = 5, n = rows * C;
    const logits = Float64Array.from({ length: n }, (_, i) => Math.sin(i));
    const up = Float64Array.from({ length: n }, (_, i) => Math.cos(i));
    const mask = Float64Array.from({ length: n }, (_, i) => (Math.floor(i / C) === 2 ? 0 : 1));
    for (const method of METHODS) {
      useWasmEstimators(true);
      const a = sampleRun('fused', method, 'float32', [rows, C], logits, up, mask, 0.7, 4, 3, false);
      useWasmEstimators(false);
      const b = sampleRun('fused', method, 'float32', [rows, C], logits, up, mask, 0.7, 4, 3, false);
      expect(Array.from(a.y), method).toEqual(Array.from(b.y));
      for (let i = 0; i < n; i++) {
        if (Number.isNaN(b.g[i])) expect(a.g[i], `${method} ${i}`).toBeNaN();
        else expect(Math.abs(a.g[i] - b.g[i]), `${method} ${i}`).toBeLessThanOrEqual(1e-5);
      }
    }
    useWasmEstimators(true);
    const x = tensor(logits, [rows, C], { dtype: 'float32' });
    expect(() => estimators.sample(x, { method: 'st', seed: 1, mask: tensor(mask, [rows, C]) })).toThrow(/row 2 of 'logits'.*every category masked/);
  });

  it('NaN / +Infinity logits: reported as before with check, and handled as the JS kernel does without', () => {
    const x = tensor([0, 1, NaN, 2, 0, 1], [2, 3], { dtype: 'float32' });
    expect(() => estimators.sample(x, { method: 'gumbel', seed: 1 })).toThrow(/argument 'logits' contains NaN at flat index 2/);
    const masked = tensor([0, 1, Infinity, 2, 0, 1], [2, 3], { dtype: 'float32' });
    expect(() => estimators.sample(masked, { method: 'st', seed: 1, mask: tensor([1, 1, 0, 1, 1, 1], [2, 3]) })).toThrow(/contains Infinity/);
    const logits = Float64Array.from([0, 1, NaN, 2, 0, 1]);
    const up = Float64Array.from([1, 2, 3, 4, 5, 6]);
    const a = sampleRun('fused', 'gst-1.0', 'float32', [2, 3], logits, up, null, 1, 3, 3, false);
    useWasmEstimators(false);
    const b = sampleRun('fused', 'gst-1.0', 'float32', [2, 3], logits, up, null, 1, 3, 3, false);
    expect(Array.from(a.y)).toEqual(Array.from(b.y));
    expect(Array.from(a.g)).toEqual(Array.from(b.g));
  });

  it('is deterministic: same key, same sample and gradient', () => {
    const rnd = mulberry32(41);
    const logits = Float64Array.from({ length: 300 }, () => 2 * rnd() - 1);
    const up = Float64Array.from({ length: 300 }, () => 2 * rnd() - 1);
    for (const method of METHODS) {
      const a = sampleRun('fused', method, 'float32', [30, 10], logits, up, null, 0.5, 77);
      const b = sampleRun('fused', method, 'float32', [30, 10], logits, up, null, 0.5, 77);
      expect(Array.from(a.y)).toEqual(Array.from(b.y));
      expect(Array.from(a.g)).toEqual(Array.from(b.g));
    }
  });
});

describe('estimators.sample without a backward to come', () => {
  it('under noGrad, or on logits that need no gradient, draws the same sample (the surrogate is skipped)', () => {
    const rnd = mulberry32(43);
    const data = Float32Array.from({ length: 30000 }, () => 3 * (2 * rnd() - 1));
    for (const method of METHODS) {
      const key = random.key(9);
      const withGrad = tidy(() => {
        const x = tensor(data, [100, 30, 10], { dtype: 'float32', requiresGrad: true });
        return Array.from(estimators.sample(x, { method, key }).dataSync());
      });
      const plain = tidy(() => Array.from(estimators.sample(tensor(data, [100, 30, 10], { dtype: 'float32' }), { method, key }).dataSync()));
      const inNoGrad = tidy(() => noGrad(() => {
        const x = tensor(data, [100, 30, 10], { dtype: 'float32', requiresGrad: true });
        return Array.from(estimators.sample(x, { method, key }).dataSync());
      }));
      expect(plain, method).toEqual(withGrad);
      expect(inNoGrad, method).toEqual(withGrad);
    }
  });
});

describe('rows split with the matmul worker thread', () => {
  // Large calls give half of their rows to the CPU backend's worker thread (gemm.ts split()), each half in arrays
  // of its own. The results must not depend on it: bit-identical to one thread, near-tie redos included.
  let g2: Gemm | null = null;
  afterAll(async () => { await g2?.close(); });

  it('forward results and gradients are bit-identical to one thread (every kind, masks, odd C, near-tie redos)', async () => {
    g2 = await createGemm({ threads: 2, backoff: false }); // split whatever the machine's load
    expect(g2.workerActive).toBe(true);
    // count the jobs that really went to the worker (a sleeping worker is woken but not given the job)
    let splits = 0;
    const split = g2.split.bind(g2);
    g2.split = (...a: Parameters<Gemm['split']>) => { splits++; return split(...a); };
    const rnd = mulberry32(77);
    const kinds = FWD_KINDS; // every kernel the wasm module registers
    // (rows, C, scale, offset): R C >= 16384 so that the call splits; offset 1e6 forces near-tie redos
    const cases: [number, number, number, number][] = [[2000, 10, 3, 0], [5471, 3, 1, 0], [300, 64, 3, 0], [2343, 7, 0.5, 1e6], [17, 1000, 2, 0]];
    let splitRedos = 0;
    // the worker sleeps after a few ms without work (sooner on a busy machine), and a call then runs on one thread:
    // wake it (reading workerActive does) before each call that should split
    const awake = () => { const t0 = Date.now(); while (!g2!.workerActive && Date.now() - t0 < 5000) { /* wakes it */ } };
    for (const [R, C, scale, offset] of cases) {
      const N = R * C;
      const X = Float32Array.from({ length: N }, () => offset + (2 * rnd() - 1) * scale);
      const G = Float32Array.from({ length: N }, () => 2 * rnd() - 1);
      const mask = C > 3 ? Uint8Array.from({ length: N }, (_, i) => (i % C === 0 || rnd() > 0.2 ? 1 : 0)) : null;
      for (const kind of kinds) {
        for (const m of [null, mask]) {
          const k0 = Math.floor(rnd() * 2 ** 31), k1 = 12345;
          const before = K.rowsRedone;
          const a = K.forward(kind, X, m, R, C, 0.7, 1, k0, k1, null)!;
          const redone1 = K.rowsRedone - before;
          awake();
          const b = K.forward(kind, X, m, R, C, 0.7, 1, k0, k1, g2)!;
          splitRedos += K.rowsRedone - before - redone1;
          const what = `${kind} R=${R} C=${C} mask=${!!m}`;
          expect(a, what).not.toBeNull();
          expect(b, what).not.toBeNull();
          expect(Array.from(b.index), what).toEqual(Array.from(a.index));
          for (const f of ['rowMax', 'e', 'z', 'e2', 'z2'] as const) {
            const u = a[f], v = b[f];
            if (u === null || v === null) { expect(v, `${what} ${f}`).toBe(u); continue; }
            expect(u.length).toBe(v.length);
            let same = true;
            for (let i = 0; i < u.length; i++) if (!Object.is(u[i], v[i])) { same = false; break; }
            expect(same, `${what} ${f}`).toBe(true);
          }
          // no backward to come: the same sample, no surrogate
          awake();
          const c = K.forward(kind, X, m, R, C, 0.7, 1, k0, k1, g2, false)!;
          expect(Array.from(c.index), `${what} no surrogate`).toEqual(Array.from(a.index));
          expect(c.e.length).toBe(0);
          if (kind === 'rao') {
            // rao_gumbel's backward: K = 7 conditional draws per row, each half of the rows on its own thread
            const ra = K.backwardRao(a.e, a.z, a.index, G, R, C, 0.7, 7, 99, 5, undefined, null);
            awake();
            const rb = K.backwardRao(a.e, a.z, a.index, G, R, C, 0.7, 7, 99, 5, undefined, g2);
            let same = true;
            for (let i = 0; i < N; i++) if (!Object.is(ra[i], rb[i])) { same = false; break; }
            expect(same, `${what} rao gradient`).toBe(true);
            continue;
          }
          const ga = K.backwardSoftmax(a, G, R, C, 1 / 0.7, undefined, null);
          awake();
          const gb = K.backwardSoftmax(a, G, R, C, 1 / 0.7, undefined, g2);
          let same = true;
          for (let i = 0; i < N; i++) if (!Object.is(ga[i], gb[i])) { same = false; break; }
          expect(same, `${what} gradient`).toBe(true);
        }
      }
    }
    // the two-thread path ran (normally most calls: forward, backward and rao's backward of 5 shapes x 6 kinds x 2
    // masks; on an overloaded machine the worker can fall asleep between its wake-up and a call, which then runs on
    // one thread with the same bits), and where it did, the 1e6 logits' near ties were redone there too
    expect(splits).toBeGreaterThanOrEqual(1);
    if (splits > 60) expect(splitRedos).toBeGreaterThan(0);
  }, 120000);
});

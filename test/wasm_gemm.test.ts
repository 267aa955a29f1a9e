import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mulberry32 } from './estimators_stats.ts';
import { createGemm, createGemmBackground, createGemmSync, type Gemm } from '../backends/cpu/wasm/gemm.ts';
import { CpuBackend, type FastGemm } from '../backends/cpu/index.ts';
import { matmulJs } from '../backends/cpu/matmul_js.ts';
import { registerBackend, tensor, matmul } from '../index.ts';
import { ModuleBuilder, I32, sleb, uleb } from '../backends/cpu/wasm/emit.ts';

// Float32 error bound (derived, not tuned): each C[i][j] is a length-k dot product accumulated
// sequentially in float32 (one rounding per product unless fused, one per add). The classical
// bound for such a dot product is |fl(s) - s| <= gamma_k * sum_p |a_ip * b_pj|, with
// gamma_k = k*u / (1 - k*u), u = 2^-24. The reference is computed in float64 from the same
// float32 inputs, so its own error (~k * 2^-53 relative) is negligible next to that.
const U = 2 ** -24;
const gamma = (k: number) => (k * U) / (1 - k * U);


/** Values of mixed sign and magnitude (so cancellation happens and the bound is exercised). */
function randArray(len: number, rnd: () => number): Float32Array {
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) out[i] = (rnd() * 2 - 1) * 2 ** Math.floor(rnd() * 8 - 4);
  return out;
}

/** Plain triple loop in float64; returns the product and sum |a||b| per element. */
function reference(a: Float32Array, aOff: number, b: Float32Array, bOff: number,
                   m: number, n: number, k: number, tA: boolean, tB: boolean) {
  const c = new Float64Array(m * n), absc = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0, sa = 0;
      for (let p = 0; p < k; p++) {
        const x = tA ? a[aOff + p * m + i] : a[aOff + i * k + p];
        const y = tB ? b[bOff + j * k + p] : b[bOff + p * n + j];
        s += x * y; sa += Math.abs(x * y);
      }
      c[i * n + j] = s; absc[i * n + j] = sa;
    }
  }
  return { c, absc };
}

interface Case { m: number; n: number; k: number; tA: boolean; tB: boolean; aOff: number; bOff: number; cOff: number; seed: number }

/** Runs one case; returns a description of the first failure, or null. */
function check(g: Gemm, cs: Case): string | null {
  const { m, n, k, tA, tB, aOff, bOff, cOff, seed } = cs;
  const rnd = mulberry32(seed);
  const a = randArray(aOff + m * k + 3, rnd);
  const b = randArray(bOff + k * n + 3, rnd);
  const c = new Float32Array(cOff + m * n + 5).fill(12345);
  g.matmul(a, aOff, b, bOff, c, cOff, m, n, k, tA, tB);
  const { c: want, absc } = reference(a, aOff, b, bOff, m, n, k, tA, tB);
  const gk = gamma(k);
  for (let i = 0; i < m * n; i++) {
    const got = c[cOff + i];
    const tol = gk * absc[i];
    if (!(Math.abs(got - want[i]) <= tol)) return `C[${i}]: got ${got}, want ${want[i]}, tol ${tol}`;
  }
  for (let i = 0; i < cOff; i++) if (c[i] !== 12345) return `wrote before cOff at ${i}`;
  for (let i = cOff + m * n; i < c.length; i++) if (c[i] !== 12345) return `wrote after the result at ${i}`;
  return null;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  m: fc.integer({ min: 1, max: 70 }),
  n: fc.integer({ min: 1, max: 70 }),
  k: fc.integer({ min: 1, max: 70 }),
  tA: fc.boolean(),
  tB: fc.boolean(),
  aOff: fc.integer({ min: 0, max: 7 }),
  bOff: fc.integer({ min: 0, max: 7 }),
  cOff: fc.integer({ min: 0, max: 7 }),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
});

describe('wasm emitter', () => {
  it('encodes LEB128', () => {
    const u: number[] = []; uleb(u, 624485); expect(u).toEqual([0xe5, 0x8e, 0x26]);
    const s: number[] = []; sleb(s, -123456); expect(s).toEqual([0xc0, 0xbb, 0x78]);
    const t: number[] = []; sleb(t, 64); expect(t).toEqual([0xc0, 0x00]);
  });
  it('builds a valid module that runs', () => {
    const mb = new ModuleBuilder({ module: 'env', field: 'mem', initialPages: 1, maxPages: 1, shared: false });
    mb.func('addmul', [I32, I32], [I32], (c) => { c.get(0).get(1).i32Add().i32(3).i32Mul(); });
    const bytes = mb.encode();
    expect(WebAssembly.validate(bytes)).toBe(true);
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem: new WebAssembly.Memory({ initial: 1, maximum: 1 }) } });
    expect((inst.exports.addmul as (a: number, b: number) => number)(2, 5)).toBe(21);
  });
});

describe('wasm gemm', () => {
  let g1: Gemm;
  let g2: Gemm; // two threads, parallel path forced even for tiny products
  let g2d: Gemm; // two threads, default threshold
  let g2h: Gemm; // two threads, every product split in two fixed halves instead of chunks taken in turn
  beforeAll(async () => {
    g1 = createGemmSync();
    g2 = await createGemm({ threads: 2, parallelThreshold: 0 });
    g2d = await createGemm({ threads: 2 });
    g2h = await createGemm({ threads: 2, parallelThreshold: 0, chunked: false });
  });
  afterAll(async () => {
    await g2?.close();
    await g2d?.close();
    await g2h?.close();
  });

  it('reports its configuration', () => {
    expect(g1.threads).toBe(1);
    expect(g2.threads).toBe(2);
    expect(typeof g1.relaxed).toBe('boolean');
  });

  it('single thread matches the float64 reference (property)', () => {
    fc.assert(fc.property(caseArb, (cs) => check(g1, cs) === null), { numRuns: 150 });
  });

  it('two threads match the float64 reference (property)', () => {
    fc.assert(fc.property(caseArb, (cs) => check(g2, cs) === null), { numRuns: 150 });
  });

  it('threaded (panels taken in chunks, or two fixed halves) and single-thread results agree bit-for-bit', () => {
    if (g1.relaxed !== g2.relaxed) return; // fused vs unfused rounding may differ
    fc.assert(fc.property(caseArb, (cs) => {
      const { m, n, k, tA, tB } = cs;
      const rnd = mulberry32(cs.seed);
      const a = randArray(m * k, rnd), b = randArray(k * n, rnd);
      const c1 = new Float32Array(m * n), c2 = new Float32Array(m * n), c3 = new Float32Array(m * n);
      g1.matmul(a, 0, b, 0, c1, 0, m, n, k, tA, tB);
      g2.matmul(a, 0, b, 0, c2, 0, m, n, k, tA, tB);
      g2h.matmul(a, 0, b, 0, c3, 0, m, n, k, tA, tB);
      return c1.every((v, i) => Object.is(v, c2[i]) && Object.is(v, c3[i]));
    }), { numRuns: 80 });
  });

  it('handles degenerate shapes', () => {
    const c = new Float32Array(6).fill(7);
    g1.matmul(new Float32Array(0), 0, new Float32Array(0), 0, c, 0, 2, 3, 0, false, false);
    expect(Array.from(c)).toEqual([0, 0, 0, 0, 0, 0]);
    const d = new Float32Array(2).fill(7);
    g2.matmul(new Float32Array(0), 0, new Float32Array(6), 0, d, 0, 0, 3, 2, false, false);
    expect(Array.from(d)).toEqual([7, 7]);
    expect(() => g1.matmul(new Float32Array(3), 0, new Float32Array(4), 0, c, 0, 2, 2, 2, false, false)).toThrow(RangeError);
  });

  it('large VAE shapes through the threaded path, all transpose combos', () => {
    const shapes: [number, number, number][] = [[100, 512, 784], [784, 512, 100], [100, 784, 512], [37, 300, 256]];
    let seed = 1;
    for (const [m, n, k] of shapes) {
      for (const tA of [false, true]) for (const tB of [false, true]) {
        const err = check(g2d, { m, n, k, tA, tB, aOff: 3, bOff: 5, cOff: 1, seed: seed++ });
        expect(err, `${m}x${n}x${k} tA=${tA} tB=${tB}`).toBeNull();
      }
    }
  });

  it('reuses and grows memory across differently sized calls', () => {
    for (const [m, n, k] of [[300, 300, 300], [2, 2, 2], [64, 1000, 8]]) {
      expect(check(g2d, { m, n, k, tA: false, tB: true, aOff: 0, bOff: 0, cOff: 0, seed: m + n + k })).toBeNull();
    }
  });
});

describe('two-thread start-up', () => {
  // The worker used to read the job counter after announcing it was ready, so a split matmul issued
  // right after createGemm() could be counted as already seen: the caller then waited forever.
  it('a split matmul issued immediately after createGemm completes (20 fresh workers)', async () => {
    for (let r = 0; r < 20; r++) {
      const g = await createGemm({ threads: 2, parallelThreshold: 1 });
      expect(check(g, { m: 5, n: 7, k: 3, tA: false, tB: false, aOff: 0, bOff: 0, cOff: 0, seed: r })).toBeNull();
      expect(check(g, { m: 9, n: 40, k: 5, tA: true, tB: true, aOff: 1, bOff: 2, cOff: 3, seed: r + 100 })).toBeNull();
      await g.close();
    }
  }, 120000);
});

describe('background start (the CPU backend default)', () => {
  // The CPU backend builds its GEMM at the first matmul and must not wait for the worker: a training loop that
  // never yields to the event loop still has to get the second thread, so readiness travels through shared memory.
  it('products before and after the worker is up are bit-identical to one thread, with no event-loop turn', async () => {
    const g1 = createGemmSync();
    const g = createGemmBackground({ threads: 2, parallelThreshold: 1, backoff: false }); // whatever the machine's load
    try {
      expect(g.threads).toBe(2);
      const shapes: [number, number, number, boolean, boolean][] = [[100, 512, 78, false, false], [78, 64, 100, true, false], [33, 90, 47, false, true]];
      const run = (seed: number): boolean => shapes.every(([m, n, k, tA, tB], i) => {
        const rnd = mulberry32(seed + i);
        const a = randArray(m * k, rnd), b = randArray(k * n, rnd);
        const c1 = new Float32Array(m * n), c2 = new Float32Array(m * n);
        g1.matmul(a, 0, b, 0, c1, 0, m, n, k, tA, tB);
        g.matmul(a, 0, b, 0, c2, 0, m, n, k, tA, tB);
        return c1.every((v, j) => Object.is(v, c2[j]));
      });
      let seed = 1;
      expect(run(seed++)).toBe(true);
      // a synchronous loop: the worker's readiness must become visible without awaiting anything
      const deadline = Date.now() + 30000;
      while (!g.workerActive && Date.now() < deadline) expect(run(seed++)).toBe(true);
      expect(g.workerActive).toBe(true);
      for (let r = 0; r < 5; r++) expect(run(seed++)).toBe(true);
    } finally {
      await g.close();
    }
  }, 60000);

  it('a sleeping worker is not given work: the first check wakes it, later ones find it awake', async () => {
    const g = await createGemm({ threads: 2, backoff: false }); // whatever the machine's load
    try {
      // idle for far longer than the worker spins (a few ms) before it sleeps in Atomics.wait
      await new Promise((r) => setTimeout(r, 300));
      expect(g.workerActive).toBe(false);
      const t0 = Date.now();
      while (!g.workerActive && Date.now() - t0 < 10000) { /* woken by the first check */ }
      expect(g.workerActive).toBe(true);
    } finally {
      await g.close();
    }
  });

  it('the CPU backend uses the wasm GEMM by default, on GAPGRAD_THREADS or min(2, cores) threads', () => {
    const be = new CpuBackend();
    const g = be.gemm as Gemm | null;
    expect(g).not.toBeNull();
    const want = process.env.GAPGRAD_THREADS ? Number(process.env.GAPGRAD_THREADS) : Math.min(2, os.availableParallelism());
    expect(g!.threads).toBe(want);
    void g!.close();
    be.gemm = null; // and null selects the JS kernel
    expect(be.gemm).toBeNull();
  });
});

describe('a user kernel (FastGemm)', () => {
  it('replaces the wasm GEMM: float32 products of 4096+ multiply-adds, forward and backward, run on it', () => {
    const be = new CpuBackend();
    void (be.gemm as Gemm).close(); // the default kernel is built at the first read; this backend never uses it
    let calls = 0;
    const mine: FastGemm = {
      matmul(a, aOff, b, bOff, c, cOff, m, n, k, transA, transB) {
        calls++;
        matmulJs(a, aOff, b, bOff, c, cOff, m, n, k, transA, transB);
      },
    };
    be.gemm = mine;
    expect(be.gemm).toBe(mine);
    registerBackend('cpu-user-gemm', be);
    const rng = mulberry32(7);
    const A = new Float32Array(32 * 64).map(() => rng() - 0.5), B = new Float32Array(64 * 48).map(() => rng() - 0.5);
    const run = (device: string) => {
      const a = tensor(A.slice(), [32, 64], { device, requiresGrad: true });
      const b = tensor(B.slice(), [64, 48], { device, requiresGrad: true });
      const y = matmul(a, b);
      y.sum().backward();
      return [y.dataSync(), a.grad!.dataSync(), b.grad!.dataSync()];
    };
    const got = run('cpu-user-gemm');
    expect(calls).toBe(3); // y = a @ b, dA = g @ b^T, dB = a^T @ g
    be.gemm = null; // the plain-JS loops: the same products, the same bits
    const ref = run('cpu-user-gemm');
    expect(calls).toBe(3);
    for (let i = 0; i < 3; i++) expect(Array.from(got[i]!)).toEqual(Array.from(ref[i]!));
  });
});

// Relaxed SIMD needs its V8 flag from process start on Node 20 (cli/node_flags.ts); the
// relaxed kernels are tested in a child process started that way: test/relaxed_gemm.test.ts.

describe('pre-packed B (Gemm.packB / matmulPacked, HostGemm.pack / matmulPacked)', () => {
  let g1: Gemm;
  let g2: Gemm; // two threads, every packed product split (panels from the shared counter), no contention backoff
  let g2h: Gemm; // two threads, every packed product split in two fixed halves
  beforeAll(async () => {
    g1 = createGemmSync();
    g2 = await createGemm({ threads: 2, parallelThreshold: 0, packedParallelThreshold: 0, backoff: false });
    g2h = await createGemm({ threads: 2, parallelThreshold: 0, packedParallelThreshold: 0, chunked: false, backoff: false });
  });
  afterAll(async () => {
    await g2?.close();
    await g2h?.close();
  });

  const packedArb = fc.record({
    m: fc.integer({ min: 1, max: 40 }), n: fc.integer({ min: 1, max: 70 }), k: fc.integer({ min: 1, max: 70 }),
    tA: fc.boolean(), tB: fc.boolean(), aOff: fc.integer({ min: 0, max: 5 }), bOff: fc.integer({ min: 0, max: 5 }),
    cOff: fc.integer({ min: 0, max: 5 }), bHome: fc.boolean(), cHome: fc.boolean(), seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  });

  it('products against a packed B are bit-identical to matmul with B (both transposes, odd shapes, B and C in or out of the GEMM memory, 1 and 2 threads)', () => {
    fc.assert(fc.property(packedArb, ({ m, n, k, tA, tB, aOff, bOff, cOff, bHome, cHome, seed }) => {
      const rnd = mulberry32(seed);
      const a = randArray(aOff + m * k, rnd);
      for (const g of [g1, g2, g2h]) {
        // B as Adam leaves a weight (in the GEMM's memory) or an ordinary array; C likewise
        const b = (bHome ? g.allocArray(1, bOff + k * n + 2) : null) ?? new Float32Array(bOff + k * n + 2);
        b.set(randArray(b.length, mulberry32(seed + 1)));
        const want = new Float32Array(cOff + m * n + 3).fill(9), got = (cHome ? g.allocArray(1, cOff + m * n + 3) : null) ?? new Float32Array(cOff + m * n + 3);
        got.fill(9);
        g1.matmul(a, aOff, b, bOff, want, cOff, m, n, k, tA, tB);
        const p = g.packB(b, bOff, k, n, tB);
        for (let rep = 0; rep < 2; rep++) {
          g.matmulPacked(a, aOff, p, got, cOff, m, tA);
          if (g.relaxed === g1.relaxed && !got.every((v, i) => Object.is(v, want[i]))) return false;
        }
        p.release();
      }
      return true;
    }), { numRuns: 120 });
  });

  it('the ListOps shapes split over two threads give the same bits as one thread', () => {
    if (g1.relaxed !== g2.relaxed) return;
    const rnd = mulberry32(17);
    for (const [m, n, k, tB] of [[32, 1500, 600, true], [16, 600, 1500, false], [16, 1200, 300, true], [13, 300, 1200, false], [1, 300, 1200, false], [1, 1200, 300, true]] as const) {
      const w = g2.allocArray(1, n * k)!;
      w.set(randArray(n * k, rnd));
      const a = randArray(m * k, rnd), c1 = new Float32Array(m * n), c2 = new Float32Array(m * n);
      g1.matmul(a, 0, w, 0, c1, 0, m, n, k, false, tB);
      const p = g2.packB(w, 0, k, n, tB);
      g2.matmulPacked(a, 0, p, c2, 0, m, false);
      expect(c2.every((v, i) => Object.is(v, c1[i])), `${m}x${n}x${k}`).toBe(true);
      p.release();
      g2.freeArray(w);
    }
  });

  it('a packed operand is refused after release, after its source changed, by another GEMM, and bad arguments are named', () => {
    const b = randArray(12 * 9, mulberry32(3)), a = randArray(4 * 12, mulberry32(4)), c = new Float32Array(4 * 9);
    const p = g1.packB(b, 0, 12, 9, false);
    expect(() => g2.matmulPacked(a, 0, p, c, 0, 4, false)).toThrow(/not packed by this GEMM/);
    g1.matmulPacked(a, 0, p, c, 0, 4, false);
    const b0 = b[0];
    b[0] = b0 + 1; // the weight updated while packed
    expect(() => g1.matmulPacked(a, 0, p, c, 0, 4, false)).toThrow(/source B changed/);
    b[0] = b0;
    g1.matmulPacked(a, 0, p, c, 0, 4, false);
    p.release();
    expect(p.released).toBe(true);
    p.release(); // twice: a no-op
    expect(() => g1.matmulPacked(a, 0, p, c, 0, 4, false)).toThrow(/released/);
    expect(() => g1.packB(b, 0, 0, 9, false)).toThrow(/k must be an integer >= 1, got 0/);
    expect(() => g1.packB(b, 5, 12, 9, false)).toThrow(/needs 113 elements, b has 108/);
    const q = g1.packB(b, 0, 12, 9, true);
    expect(() => g1.matmulPacked(a, 0, q, new Float32Array(3), 0, 4, false)).toThrow(/C of 4 x 9/);
    q.release();
  });

  it("the CPU backend's HostGemm: pack / matmulPacked give matmul's bits, on the wasm GEMM (small products in JS) and on the JS kernel", () => {
    const be = new CpuBackend();
    try {
      for (const fast of [true, false]) {
        if (!fast) be.gemm = null;
        const hg = be.hostGemm;
        expect(hg.fast).toBe(fast);
        const rnd = mulberry32(fast ? 5 : 6);
        // 2x3x4 (24 multiply-adds: JS on either kernel), 1-row products, and products for the wasm kernel
        for (const [m, n, k] of [[2, 3, 4], [1, 37, 50], [5, 37, 50], [16, 120, 48]]) {
          for (const tA of [false, true]) for (const tB of [false, true]) {
            const a = randArray(m * k + 1, rnd), b = randArray(k * n + 2, rnd);
            const want = new Float32Array(m * n + 1), got = new Float32Array(m * n + 1);
            hg.matmul(a, 1, b, 2, want, 1, m, n, k, tA, tB);
            const p = hg.pack(b, 2, k, n, tB);
            expect([p.k, p.n, p.transB]).toEqual([k, n, tB]);
            hg.matmulPacked(a, 1, p, got, 1, m, tA);
            expect(got.every((v, i) => Object.is(v, want[i])), `fast=${fast} ${m}x${n}x${k} tA=${tA} tB=${tB}`).toBe(true);
            p.release();
            expect(() => hg.matmulPacked(a, 1, p, got, 1, m, tA)).toThrow(/released/);
          }
        }
      }
    } finally {
      be.gemm = null;
    }
  });
});

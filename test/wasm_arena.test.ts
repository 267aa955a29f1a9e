import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mulberry32 } from './estimators_stats.ts';
import { Arena } from '../backends/cpu/wasm/arena.ts';
import { createGemm, createGemmSync, type Gemm } from '../backends/cpu/wasm/gemm.ts';
import { CpuBackend, CpuBuf } from '../backends/cpu/index.ts';
import { createAdamWasm } from '../backends/cpu/wasm/adam.ts';
import { cpuBackend, linear, mean, mul, nn, optim, random, tensor, tidy } from '../index.ts';

const randArray = (len: number, rnd: () => number) => Float32Array.from({ length: len }, () => rnd() * 2 - 1);

describe('arena allocator', () => {
  it('live blocks never overlap, stay inside the memory, and freeing everything returns it all (property)', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 300000 }), fc.nat()), { minLength: 1, maxLength: 80 }), (ops) => {
      const mem = new WebAssembly.Memory({ initial: 1, maximum: 4096, shared: true });
      const ar = new Arena(mem, 1024, 4096 * 65536);
      const live: [number, number][] = [];
      for (const [isAlloc, bytes, pick] of ops) {
        if (isAlloc || live.length === 0) {
          const at = ar.alloc(bytes);
          expect(at).toBeGreaterThanOrEqual(1024);
          expect(at % 64).toBe(0);
          expect(ar.sizeOf(at)).toBeGreaterThanOrEqual(bytes);
          // the memory reaches past the block by the guard
          expect(mem.buffer.byteLength).toBeGreaterThanOrEqual(at + bytes + 65536);
          for (const [b, n] of live) expect(at + bytes <= b || b + n <= at).toBe(true);
          live.push([at, bytes]);
        } else {
          const [at] = live.splice(pick % live.length, 1)[0];
          ar.release(at);
        }
      }
      expect(ar.liveBlocks).toBe(live.length);
      for (const [at] of live) ar.release(at);
      expect(ar.usedBytes).toBe(0);
      // everything merged back: one allocation of the whole high-water span starts at the base again
      expect(ar.alloc(64)).toBe(1024);
    }), { numRuns: 60, seed: 7 });
  });

  it('reuses freed space first-fit and merges neighbours', () => {
    const mem = new WebAssembly.Memory({ initial: 1, maximum: 100, shared: true });
    const ar = new Arena(mem, 0, 100 * 65536);
    const a = ar.alloc(1000), b = ar.alloc(1000), c = ar.alloc(1000);
    expect([a, b, c]).toEqual([0, 1024, 2048]);
    ar.release(a); ar.release(b);
    expect(ar.alloc(2048)).toBe(0); // a and b merged
    expect(ar.alloc(64)).toBe(3072); // c still live; the top was past it
    expect(() => ar.release(4096 + 64)).toThrow(/no live block/);
  });

  it('returns -1 past its limit or the memory maximum, and recovers after frees', () => {
    const mem = new WebAssembly.Memory({ initial: 1, maximum: 8, shared: true });
    const ar = new Arena(mem, 0, 8 * 65536, 100000);
    const a = ar.alloc(60000);
    expect(ar.alloc(60000)).toBe(-1); // over the limit
    ar.release(a);
    ar.limitBytes = 1 << 30;
    expect(ar.alloc(8 * 65536)).toBe(-1); // past the maximum (with its guard)
    expect(ar.alloc(60000)).toBe(0);
  });

  it('adopted views report their address; drop frees the block and rejects a second drop', () => {
    const mem = new WebAssembly.Memory({ initial: 1, maximum: 100, shared: true });
    const ar = new Arena(mem, 64, 100 * 65536);
    const at = ar.alloc(4 * 300);
    const [x, y] = ar.adopt(at, [[0, 100], [150, 100]]);
    expect(ar.addressOf(x)).toBe(at);
    expect(ar.addressOf(y)).toBe(at + 600);
    expect(ar.addressOf(new Float32Array(10))).toBe(-1);
    ar.alloc(70000); // the memory grows: views made before stay valid and keep their address
    x[5] = 3; expect(new Float32Array(mem.buffer, at, 10)[5]).toBe(3);
    ar.drop(at);
    expect(ar.sizeOf(at)).toBeUndefined();
    expect(() => ar.drop(at)).toThrow(/no adopted block/);
  });

  it('frees an adopted block once all its views are garbage-collected (child process with --expose-gc)', () => {
    const url = new URL('../backends/cpu/wasm/arena.ts', import.meta.url).href;
    const src = `
      const { Arena } = await import(${JSON.stringify(url)});
      const mem = new WebAssembly.Memory({ initial: 1, maximum: 1000, shared: true });
      const ar = new Arena(mem, 0, 1000 * 65536);
      let keep = null;
      (() => {
        for (let i = 0; i < 50; i++) { const v = ar.adopt(ar.alloc(40000), [[0, 5000], [5000, 5000]]); if (i === 7) keep = v[1]; }
      })();
      const before = ar.liveBlocks;
      for (let i = 0; i < 20 && ar.liveBlocks > 1; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
      console.log(JSON.stringify({ before, after: ar.liveBlocks, kept: ar.addressOf(keep) >= 0 && ar.sizeOf(ar.addressOf(keep) - 20000) !== undefined }));
    `;
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', src], { encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    expect(r.before).toBe(50);
    expect(r.after).toBe(1); // the block one of whose views is still held
    expect(r.kept).toBe(true);
  });
});

interface Case { m: number; n: number; k: number; tA: boolean; tB: boolean; inA: boolean; inB: boolean; inC: boolean; off: number; seed: number }

/** C from the copying path and from operands that live in the GEMM's memory (between sentinel blocks): the two
 *  must agree bit for bit, and nothing outside C may change. Returns a failure description or null. */
function inPlaceCheck(g: Gemm, cs: Case): string | null {
  const { m, n, k, tA, tB, off, seed } = cs;
  const rnd = mulberry32(seed);
  const a = randArray(off + m * k, rnd), b = randArray(off + k * n, rnd);
  const ref = new Float32Array(m * n);
  g.matmul(a, off, b, off, ref, 0, m, n, k, tA, tB);
  const SENT = 777.25;
  const sentinel = () => { const s = g.allocArray(1, 64)!; s.fill(SENT); return s; };
  const place = (src: Float32Array, inside: boolean) => {
    if (!inside) return src;
    const r = g.allocArray(1, src.length)!;
    r.set(src);
    return r;
  };
  const s0 = sentinel();
  const A = place(a, cs.inA);
  const s1 = sentinel();
  const B = place(b, cs.inB);
  const s2 = sentinel();
  const C = cs.inC ? g.allocArray(m, n)! : new Float32Array(m * n);
  const s3 = sentinel();
  C.fill(-1);
  g.matmul(A, off, B, off, C, 0, m, n, k, tA, tB);
  let fail: string | null = null;
  for (let i = 0; i < m * n && !fail; i++) if (!Object.is(C[i], ref[i])) fail = `C[${i}] = ${C[i]}, copying path ${ref[i]}`;
  for (const s of [s0, s1, s2, s3]) if (!fail && s.some((v) => v !== SENT)) fail = 'a neighbouring block was written';
  if (!fail && cs.inA && A.some((v, i) => v !== a[i])) fail = 'A changed';
  if (!fail && cs.inB && B.some((v, i) => v !== b[i])) fail = 'B changed';
  for (const x of [s0, s1, s2, s3, A, B, C]) if (g.arena.addressOf(x) >= 0) g.freeArray(x);
  return fail ? `${JSON.stringify(cs)}: ${fail}` : null;
}

const caseArb = fc.record({
  m: fc.integer({ min: 1, max: 70 }), n: fc.integer({ min: 1, max: 70 }), k: fc.integer({ min: 1, max: 90 }),
  tA: fc.boolean(), tB: fc.boolean(), inA: fc.boolean(), inB: fc.boolean(), inC: fc.boolean(),
  off: fc.constantFrom(0, 3, 16), seed: fc.nat(),
});

describe('products over operands in the GEMM memory', () => {
  let g1: Gemm, g2: Gemm;
  beforeAll(async () => { g1 = createGemmSync(); g2 = await createGemm({ threads: 2, parallelThreshold: 1 }); });
  afterAll(async () => { await g2.close(); await g1.close(); });

  it('bit-identical to copying them, and nothing outside C is written: one thread (property)', () => {
    fc.assert(fc.property(caseArb, (cs) => inPlaceCheck(g1, cs) === null), { numRuns: 150, seed: 11 });
    expect(g1.arena.liveBlocks).toBe(1); // the scratch block
  });

  it('the same on two threads, every product split (property)', () => {
    fc.assert(fc.property(caseArb, (cs) => inPlaceCheck(g2, cs) === null), { numRuns: 150, seed: 12 });
  });

  it('a C that overlaps an operand in the same memory still gets the product of the operands as they were', () => {
    for (const g of [g1, g2]) {
      const rnd = mulberry32(17);
      const m = 128, n = 128, k = 128;
      const buf = g.allocArray(1, 2 * m * k)!;
      for (const [tA, tB] of [[false, false], [true, true], [false, true]]) {
        buf.set(randArray(2 * m * k, rnd));
        const a = buf.slice(0, m * k), b = buf.slice(m * k);
        const want = new Float32Array(m * n);
        g.matmul(a, 0, b, 0, want, 0, m, n, k, tA, tB);
        g.matmul(buf, 0, buf, m * k, buf, 0, m, n, k, tA, tB); // C over A
        expect(Array.from(buf.subarray(0, m * n))).toEqual(Array.from(want));
        buf.set(a, 0); buf.set(b, m * k);
        g.matmul(buf, 0, buf, m * k, buf, m * k, m, n, k, tA, tB); // C over B
        expect(Array.from(buf.subarray(m * k, m * k + m * n))).toEqual(Array.from(want));
      }
      g.freeArray(buf);
    }
  });

  it('the VAE shapes (and 300 columns: a clipped edge panel) with every operand in place, both thread counts', () => {
    const shapes = [[100, 512, 784], [100, 256, 512], [784, 512, 100], [100, 784, 512], [100, 300, 256]];
    for (const g of [g1, g2]) for (const [m, n, k] of shapes) for (const [tA, tB] of [[false, false], [true, false], [false, true]]) {
      expect(inPlaceCheck(g, { m, n, k, tA, tB, inA: true, inB: true, inC: true, off: 0, seed: m + n + k })).toBeNull();
    }
  });
});

describe('CPU backend: matmul outputs and Adam parameters in the GEMM memory', () => {
  const mm = (be: CpuBackend, a: CpuBuf, b: CpuBuf, m: number, n: number, k: number) =>
    be.matmul({ a, b, batch: 1, m, n, k, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0 }) as CpuBuf;
  /** a fresh backend and random (m, k) and (k, n) operands */
  const setup = (seed: number, m: number, k: number, n: number) => {
    const be = new CpuBackend();
    const rnd = mulberry32(seed);
    const x = be.fromArray(randArray(m * k, rnd)) as CpuBuf, w = be.fromArray(randArray(k * n, rnd)) as CpuBuf;
    return { be, rnd, x, w };
  };

  it('a large output lives there, is read in place by the next product, and release frees its block', () => {
    const { be, rnd, x, w } = setup(3, 64, 96, 128);
    const h = mm(be, x, w, 64, 128, 96);
    const gm = be.gemm as Gemm;
    const base = gm.arena.usedBytes;
    expect(gm.arena.addressOf(h.data)).toBeGreaterThanOrEqual(0);
    const w2 = be.fromArray(randArray(128 * 40, rnd)) as CpuBuf;
    const y = mm(be, h, w2, 64, 40, 128);
    // 64 x 40: 2560 floats, below the size that goes into the GEMM's memory
    expect(gm.arena.addressOf(y.data)).toBe(-1);
    // the same values as with outputs kept out of it
    const ref = new CpuBackend();
    ref.residentMin = Infinity;
    const h2 = mm(ref, x, w, 64, 128, 96);
    expect((ref.gemm as Gemm).arena.addressOf(h2.data)).toBe(-1);
    expect(Array.from(h2.data)).toEqual(Array.from(h.data));
    be.release(h);
    expect(gm.arena.usedBytes).toBeLessThan(base);
    expect(be.memory().liveBuffers).toBe(4); // x, w, w2, y (h was released)
  });

  it('with the arena full, outputs fall back to ordinary arrays with the same values', () => {
    const { be, x, w } = setup(4, 100, 64, 256);
    const inside = mm(be, x, w, 100, 256, 64);
    const gm = be.gemm as Gemm;
    gm.arena.limitBytes = gm.arena.usedBytes; // nothing more fits
    const outside = mm(be, x, w, 100, 256, 64);
    expect(gm.arena.addressOf(inside.data)).toBeGreaterThanOrEqual(0);
    expect(gm.arena.addressOf(outside.data)).toBe(-1);
    expect(Array.from(outside.data)).toEqual(Array.from(inside.data));
  });

  it('GAPGRAD_WASM_HEAP_MB=0 keeps nothing there (same values); a bad value is refused by name', async () => {
    const old = process.env.GAPGRAD_WASM_HEAP_MB;
    try {
      process.env.GAPGRAD_WASM_HEAP_MB = '0';
      const { be, x, w } = setup(5, 100, 64, 256);
      const out = mm(be, x, w, 100, 256, 64);
      expect((be.gemm as Gemm).arena.addressOf(out.data)).toBe(-1);
      const ref = new CpuBackend();
      process.env.GAPGRAD_WASM_HEAP_MB = '64';
      expect(Array.from(mm(ref, x, w, 100, 256, 64).data)).toEqual(Array.from(out.data));
      await (be.gemm as Gemm).close(); await (ref.gemm as Gemm).close();
      process.env.GAPGRAD_WASM_HEAP_MB = '-1';
      expect(() => new CpuBackend().gemm).toThrow(/GAPGRAD_WASM_HEAP_MB: expected a number of MiB from 0 to 2048, got '-1'/);
    } finally {
      if (old === undefined) delete process.env.GAPGRAD_WASM_HEAP_MB; else process.env.GAPGRAD_WASM_HEAP_MB = old;
    }
  });

  it('Adam keeps a parameter there, reads its gradient in place, and matches the slot in its own memory bit for bit', async () => {
    const hp = (step: number) => ({ lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: step % 2 ? 0 : 1e-2, step });
    const kern = createAdamWasm()!;
    const g2 = await createGemm({ threads: 2 });
    try {
      for (const n of [5, 4099, 200003]) {
        const rnd = mulberry32(n);
        const p0 = randArray(n, rnd);
        const own = kern.slot(n), inside = kern.slot(n, g2.arena);
        expect(g2.arena.addressOf(inside.P)).toBeGreaterThanOrEqual(0);
        expect(inside.arena).toBe(g2.arena);
        own.P.set(p0); inside.P.set(p0);
        for (let s = 1; s <= 4; s++) {
          const G = randArray(n, rnd);
          const Gin = g2.allocArray(1, n)!; // a gradient that is a product's output in that memory
          Gin.set(G);
          kern.updateSlot(own, G, hp(s), null);
          kern.updateSlot(inside, Gin, hp(s), g2); // split across the worker above 131072 floats
          g2.freeArray(Gin);
        }
        for (const key of ['P', 'M', 'V'] as const) expect(Array.from(inside[key])).toEqual(Array.from(own[key]));
      }
    } finally {
      await g2.close();
    }
  });
});

describe('GEMM epilogue (bias, relu as the tiles are stored)', () => {
  let g1: Gemm, g2: Gemm;
  beforeAll(async () => { g1 = createGemmSync(); g2 = await createGemm({ threads: 2, parallelThreshold: 1 }); });
  afterAll(async () => { await g2.close(); await g1.close(); });

  /** the product, then the CPU backend's JS epilogue: the values the fused path must reproduce bit for bit */
  function reference(g: Gemm, a: Float32Array, b: Float32Array, bias: Float32Array | null, relu: boolean,
                     m: number, n: number, k: number, tA: boolean, tB: boolean): Float32Array {
    const C = new Float32Array(m * n);
    g.matmul(a, 0, b, 0, C, 0, m, n, k, tA, tB);
    for (let o = 0; o < m * n; o += n) {
      for (let j = 0; j < n; j++) {
        const x = bias ? C[o + j] + bias[j] : C[o + j];
        C[o + j] = relu ? Math.max(x, 0) : x;
      }
    }
    return C;
  }

  it('bit-identical to the product followed by the add and relu, NaN, infinities and signed zeros included (property)', () => {
    const special = [NaN, Infinity, -Infinity, -0, 0];
    fc.assert(fc.property(fc.record({
      m: fc.integer({ min: 1, max: 40 }), n: fc.integer({ min: 1, max: 40 }), k: fc.integer({ min: 0, max: 40 }),
      tA: fc.boolean(), tB: fc.boolean(), hasBias: fc.boolean(), relu: fc.boolean(), biasIn: fc.boolean(), cIn: fc.boolean(),
      two: fc.boolean(), seed: fc.nat(),
    }), (cs) => {
      const { m, n, k, tA, tB, relu } = cs;
      const g = cs.two ? g2 : g1;
      const rnd = mulberry32(cs.seed);
      const a = randArray(m * k, rnd), b = randArray(k * n, rnd);
      if (k > 0 && rnd() < 0.3) a[Math.floor(rnd() * a.length)] = special[Math.floor(rnd() * 5)];
      let bias: Float32Array | null = null;
      if (cs.hasBias) {
        bias = cs.biasIn ? g.allocArray(1, n)! : new Float32Array(n);
        for (let j = 0; j < n; j++) bias[j] = rnd() < 0.2 ? special[Math.floor(rnd() * 5)] : rnd() * 2 - 1;
      }
      const want = reference(g, a, b, bias, relu, m, n, k, tA, tB);
      const C = cs.cIn ? g.allocArray(m, n)! : new Float32Array(m * n);
      g.matmul(a, 0, b, 0, C, 0, m, n, k, tA, tB, { bias, relu });
      const ok = C.every((v, i) => Object.is(v, want[i]));
      for (const x of [bias, C]) if (x && g.arena.addressOf(x) >= 0) g.freeArray(x);
      return ok;
    }), { numRuns: 300, seed: 21 });
  });

  it('the CPU backend fuses linear + relu through it, with the values of the unfused ops', () => {
    const be = new CpuBackend();
    const rnd = mulberry32(9);
    const x = be.fromArray(randArray(100 * 256, rnd)) as CpuBuf, w = be.fromArray(randArray(300 * 256, rnd)) as CpuBuf;
    const bias = be.fromArray(randArray(300, rnd)) as CpuBuf;
    const args = { a: x, b: w, batch: 1, m: 100, n: 300, k: 256, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0 };
    const fused = be.matmulBiasAct(args, bias, 'relu') as CpuBuf;
    const plain = be.matmul(args) as CpuBuf;
    const want = Float32Array.from(plain.data, (v, i) => Math.max(v + bias.data[i % 300], 0));
    expect(Array.from(fused.data)).toEqual(Array.from(want));
    expect((be.gemm as Gemm).arena.addressOf(fused.data)).toBeGreaterThanOrEqual(0);
  });
});

describe('training with the GEMM memory holding outputs and parameters', () => {
  /** 6 Adam steps of a 2-layer MLP (linear + relu, linear); the final parameters */
  function train(inMemory: boolean): Float32Array[] {
    const be = cpuBackend;
    const saved = { residentMin: be.residentMin, adam: be.adamInGemmMemory };
    be.residentMin = inMemory ? saved.residentMin : Infinity;
    be.adamInGemmMemory = inMemory;
    try {
      const [k1, k2] = random.split(random.key(3), 2);
      const l1 = new nn.Linear(96, 256, { key: k1 }), l2 = new nn.Linear(256, 64, { key: k2 });
      const params = [l1.weight, l1.bias!, l2.weight, l2.bias!];
      const opt = new optim.Adam(params, { lr: 1e-2 });
      const rnd = mulberry32(8);
      for (let s = 0; s < 6; s++) {
        const x = tensor(randArray(128 * 96, rnd), [128, 96]);
        tidy(() => {
          const h = linear(x, l1.weight, l1.bias, 'relu');
          const y = linear(h, l2.weight, l2.bias);
          mean(mul(y, y)).backward();
          opt.step();
          opt.zeroGrad();
        });
        x.dispose();
      }
      const gm = be.gemm as Gemm;
      const where = params.map((p) => gm.arena.addressOf(be.readSync(p.buf) as Float32Array) >= 0);
      expect(where).toEqual(params.map(() => inMemory));
      return params.map((p) => p.dataSync() as Float32Array);
    } finally {
      be.residentMin = saved.residentMin;
      be.adamInGemmMemory = saved.adam;
    }
  }

  it('gives bit-identical parameters to keeping everything in ordinary arrays', () => {
    const a = train(false), b = train(true);
    for (let i = 0; i < a.length; i++) expect(Array.from(b[i])).toEqual(Array.from(a[i]));
  });
});

describe('one-row products (no packing)', () => {
  let g1: Gemm;
  beforeAll(() => { g1 = createGemmSync(); });
  afterAll(async () => { await g1.close(); });

  it('have the bits of the first row of the same product through the GEMM path, epilogue and in-place operands included (property)', () => {
    fc.assert(fc.property(fc.record({
      k: fc.integer({ min: 1, max: 70 }), n: fc.integer({ min: 1, max: 70 }), tA: fc.boolean(), hasBias: fc.boolean(),
      relu: fc.boolean(), inA: fc.boolean(), inB: fc.boolean(), inC: fc.boolean(), seed: fc.nat(),
    }), (cs) => {
      const { k, n, tA, relu } = cs;
      const rnd = mulberry32(cs.seed);
      const a = randArray(k, rnd), b = randArray(k * n, rnd);
      const bias = cs.hasBias ? randArray(n, rnd) : null;
      // two rows: row 0 is a, so the GEMM path (tiles, packing) computes it; tA stores the 2 rows as (k, 2)
      const a2 = new Float32Array(2 * k);
      for (let p = 0; p < k; p++) { if (tA) a2[2 * p] = a[p]; else a2[p] = a[p]; }
      const want = new Float32Array(2 * n);
      g1.matmul(a2, 0, b, 0, want, 0, 2, n, k, tA, false, { bias, relu });
      const put = (x: Float32Array, inside: boolean) => { if (!inside) return x; const r = g1.allocArray(1, x.length)!; r.set(x); return r; };
      const A = put(a, cs.inA), B = put(b, cs.inB);
      // C with 8 sentinel floats after it: a partial last vector must not store past n
      const Cbig = cs.inC ? g1.allocArray(1, n + 8)! : new Float32Array(n + 8);
      Cbig.fill(777.25);
      const C = Cbig.subarray(0, n);
      g1.matmul(A, 0, B, 0, C, 0, 1, n, k, tA, false, { bias, relu });
      const ok = C.every((v, j) => Object.is(v, want[j])) && Cbig.subarray(n).every((v) => v === 777.25);
      for (const x of [A, B, Cbig]) if (g1.arena.addressOf(x) >= 0) g1.freeArray(x);
      return ok;
    }), { numRuns: 300, seed: 31 });
  });
});

describe('tensor() on the CPU backend', () => {
  it('copies its input into a buffer of the backend (a large float32 batch into the GEMM memory), for every dtype', () => {
    for (const [dtype, n] of [['float32', 100], ['float32', 8192], ['float64', 8192], ['int32', 8192]] as const) {
      const src = dtype === 'float64' ? Float64Array.from({ length: n }, (_, i) => i * 0.5)
        : dtype === 'int32' ? Int32Array.from({ length: n }, (_, i) => i - 7) : Float32Array.from({ length: n }, (_, i) => i * 0.25);
      const t = tensor(src, [n], { dtype });
      const stor = cpuBackend.readSync(t.buf);
      expect(stor).not.toBe(src);
      expect(stor.constructor).toBe(src.constructor);
      const before = Array.from(src);
      src[3] = 999; // the tensor does not see later writes to the source
      expect(Array.from(t.dataSync())).toEqual(before);
      const inGemm = (cpuBackend.gemm as Gemm).arena.addressOf(stor as Float32Array) >= 0;
      expect(inGemm).toBe(dtype === 'float32' && n >= cpuBackend.residentMin);
      t.dispose();
    }
    // nested arrays too
    expect(Array.from(tensor([[1, 2], [3, 4]]).dataSync())).toEqual([1, 2, 3, 4]);
  });
});

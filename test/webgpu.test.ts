// The WebGPU backend against the CPU backend: every primitive (through random strided / broadcast
// views), bit-identical random streams, sampling, and memory. The ops, their gradients and the
// estimators run on every device in the engine suites (gradcheck, shapes, estimators: test/devices.ts).
// Without an adapter the suite is skipped with the reason, except in CI (CI=true), where it fails.
import { describe, it, expect, beforeAll } from 'vitest';
import fc from 'fast-check';
import * as gg from '../index.ts';
import { tensor, tidy, random, nn, optim, estimators, type Tensor, type Backend, type Buf, type View } from '../index.ts';
import { webgpuAvailable, type WebGpuBackend } from '../backends/webgpu/index.ts';
import { UNARY, BINARY, type UnaryOp, type BinaryOp } from '../engine/elementwise.ts';
import { philoxFill } from '../engine/philox.ts';

const avail = await webgpuAvailable();
if (!avail.ok) {
  if (process.env.CI === 'true') throw new Error(`webgpu tests: no WebGPU adapter in CI: ${avail.reason}`);
  console.warn(`[webgpu.test] skipped: ${avail.reason}`);
} else {
  console.log(`[webgpu.test] adapter: ${avail.reason}`);
}

type TA = Float32Array | Int32Array;
const cpu = gg.getBackend('cpu');
let gpu: WebGpuBackend;

// ---------------------------------------------------------------- helpers
function rng(seed: number): () => number {
  let s = (seed >>> 0) || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

type Dist = 'any' | 'pos' | 'nonzero' | 'small-int' | 'int';
function values(n: number, seed: number, dist: Dist, int = false): TA {
  const r = rng(seed);
  const a = int ? new Int32Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v: number;
    switch (dist) {
      case 'pos': v = 0.1 + 3 * r(); break;
      case 'nonzero': v = (r() < 0.5 ? -1 : 1) * (0.25 + 3 * r()); break;
      case 'small-int': v = Math.floor(r() * 5) - 2; break;
      case 'int': v = Math.floor(r() * 41) - 20; break;
      default: v = r() < 0.1 ? Math.floor(r() * 5) - 2 : -3 + 6 * r();
    }
    a[i] = v;
  }
  return a;
}

/** max |a-b| / (atol + rtol |b|) over elements; NaN-aware (NaN must match NaN) */
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol = 2e-5, atol = 2e-6, what = ''): void {
  expect(got.length, `${what} length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(w) || Number.isNaN(g)) { expect(Number.isNaN(g), `${what}[${i}] got ${g} want ${w}`).toBe(Number.isNaN(w)); continue; }
    if (!Number.isFinite(w)) { expect(g, `${what}[${i}]`).toBe(w); continue; }
    if (!(Math.abs(g - w) <= atol + rtol * Math.abs(w))) expect(g, `${what}[${i}] (got ${g}, want ${w})`).toBeCloseTo(w, 12);
  }
}

function expectEqual(got: ArrayLike<number>, want: ArrayLike<number>, what = ''): void {
  expect(got.length, `${what} length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i]) && !(got[i] === want[i])) expect(got[i], `${what}[${i}]`).toBe(want[i]);
  }
}

/** A buffer on both backends holding the same values. */
function both(data: TA): { c: Buf; g: Buf } {
  return { c: cpu.fromArray(data.slice()), g: gpu.fromArray(data) };
}
async function readBoth(c: Buf, g: Buf): Promise<[TA, TA]> {
  const want = cpu.readSync!(c) as TA;
  const got = (await gpu.read(g)) as TA;
  return [got, want];
}

// A random view over `shape`: broadcast axes (stride 0), permuted strides, an offset.
interface ViewSpec { bcast: boolean[]; keys: number[]; offset: number; extra: number }
const viewSpec = (rank: number) => fc.record({
  bcast: fc.array(fc.integer({ min: 0, max: 3 }).map((x) => x === 0), { minLength: rank, maxLength: rank }),
  keys: fc.array(fc.nat(100), { minLength: rank, maxLength: rank }),
  offset: fc.integer({ min: 0, max: 3 }),
  extra: fc.integer({ min: 0, max: 2 }),
});
function makeView(shape: number[], s: ViewSpec): { strides: number[]; offset: number; size: number } {
  const dims = shape.map((_, d) => d).filter((d) => !s.bcast[d]);
  const order = dims.slice().sort((a, b) => s.keys[a] - s.keys[b] || a - b);
  const strides = shape.map(() => 0);
  let acc = 1;
  for (let i = order.length - 1; i >= 0; i--) { strides[order[i]] = acc; acc *= shape[order[i]]; }
  return { strides, offset: s.offset, size: s.offset + acc + s.extra };
}
const shapeArb = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 0, maxLength: 4 });
const caseArb = (nViews: number) => shapeArb.chain((shape) =>
  fc.tuple(fc.constant(shape), fc.array(viewSpec(shape.length), { minLength: nViews, maxLength: nViews }), fc.integer({ min: 1, max: 1 << 30 })));

function viewsFor(shape: number[], specs: ViewSpec[], seed: number, dists: Dist[], ints: boolean[]) {
  return specs.map((sp, i) => {
    const v = makeView(shape, sp);
    const data = values(v.size, seed + 7919 * i, dists[i], ints[i]);
    const b = both(data);
    const cv: View = { buf: b.c, strides: v.strides, offset: v.offset };
    const gv: View = { buf: b.g, strides: v.strides, offset: v.offset };
    return { cv, gv, free: () => { cpu.release(b.c); gpu.release(b.g); } };
  });
}

// ---------------------------------------------------------------- tests
describe.skipIf(!avail.ok)('webgpu backend', () => {
  beforeAll(async () => {
    gpu = (gg.getBackend('webgpu') as WebGpuBackend);
  });

  it('round-trips buffers, fills and reports float64 clearly', async () => {
    for (const n of [0, 1, 3, 1000, 70001]) {
      const f = values(n, n + 1, 'any');
      expectEqual(await gpu.read(gpu.fromArray(f)), f);
      const i = values(n, n + 2, 'int', true);
      expectEqual(await gpu.read(gpu.fromArray(i)), i);
      expectEqual(await gpu.read(gpu.fill(n, -2.75, 'float32')), new Float32Array(n).fill(-2.75));
      expectEqual(await gpu.read(gpu.fill(n, 7.9, 'int32')), new Int32Array(n).fill(7));
    }
    expect(() => tensor([1, 2], [2], { device: 'webgpu', dtype: 'float64' })).toThrow(/float64/);
    // a buffer past the device's binding limit is refused before any work, naming its size and the limit
    const limit = gpu.maxBufferBytes;
    const over = limit / 4 + 1;
    expect(() => gpu.alloc(over, 'float32')).toThrow(new RegExp(`${over} elements .*maxStorageBufferBindingSize of ${limit} bytes`));
    expect(() => gg.zeros([over], { device: 'webgpu' })).toThrow(/maxStorageBufferBindingSize/);
    expect(gpu.supportsFloat64).toBe(false);
    expect((gpu as Backend).readSync).toBeUndefined();
  });

  it('unary ops match the CPU through strided and broadcast views', async () => {
    const ops = [...Object.keys(UNARY)] as UnaryOp[];
    const domain: Partial<Record<string, Dist>> = { log: 'pos', log1p: 'pos', sqrt: 'pos', recip: 'nonzero' };
    await fc.assert(fc.asyncProperty(caseArb(1), fc.constantFrom(...ops), fc.boolean(), async ([shape, specs, seed], op, intIn) => {
      const int = intIn && !['log', 'log1p', 'sqrt', 'exp', 'expm1', 'recip', 'sigmoid', 'tanh', 'softplus', 'cos', 'sin', 'floor'].includes(op);
      const [x] = viewsFor(shape, specs, seed, [int ? 'int' : domain[op] ?? 'any'], [int]);
      const outDt = int && ['neg', 'abs', 'sign', 'square', 'relu'].includes(op) ? 'int32' : 'float32';
      const [got, want] = await readBoth(cpu.unary(op, x.cv, shape, outDt), gpu.unary(op, x.gv, shape, outDt));
      expectClose(got, want, 2e-5, 2e-6, `${op} ${int ? 'int' : ''} [${shape}]`);
      x.free();
    }), { numRuns: 60 });
  });

  it('binary ops match the CPU with broadcasting, int32 and mixed dtypes', async () => {
    const ops = Object.keys(BINARY) as BinaryOp[];
    await fc.assert(fc.asyncProperty(caseArb(2), fc.constantFrom(...ops), fc.constantFrom('ff', 'ii', 'if'), async ([shape, specs, seed], op, dts) => {
      const ints = [dts[0] === 'i', dts[1] === 'i'];
      const dists: Dist[] = op === 'pow' ? ['pos', 'any'] : op === 'div' ? ['any', 'nonzero'] : ['small-int', 'any'];
      if (ints[0]) dists[0] = 'int';
      if (ints[1]) dists[1] = op === 'div' || op === 'pow' ? 'small-int' : 'int';
      if (op === 'pow' && ints[0]) dists[0] = 'small-int';
      const [a, b] = viewsFor(shape, specs, seed, dists, ints);
      const cmp = ['lt', 'le', 'gt', 'ge', 'eq', 'ne'].includes(op);
      // ops whose values are not integers (quotients, powers, the logistic loss) are compared in float32
      const outDt = dts === 'ii' && !cmp && !['div', 'pow', 'bceLogits', 'bceLogitsGrad'].includes(op) ? 'int32' : 'float32';
      const [got, want] = await readBoth(cpu.binary(op, a.cv, b.cv, shape, outDt), gpu.binary(op, a.gv, b.gv, shape, outDt));
      expectClose(got, want, op === 'pow' ? 1e-5 : 2e-6, 1e-6, `${op} ${dts} [${shape}]`);
      a.free(); b.free();
    }), { numRuns: 80 });
  });

  it('pow follows Math.pow for negative bases, zero and integer exponents', async () => {
    const a = new Float32Array([-2, -2, -2, -0.5, 0, 0, 0, -0, -0, 3, -3, 2, 1, -1, 5]);
    const b = new Float32Array([2, 3, 0.5, -3, 0, 2, -1, 3, -3, 0, 4, -2, 1e30, 7, 1]);
    const A = both(a), B = both(b);
    const v = (buf: Buf): View => ({ buf, strides: [1], offset: 0 });
    const [got, want] = await readBoth(cpu.binary('pow', v(A.c), v(B.c), [15], 'float32'), gpu.binary('pow', v(A.g), v(B.g), [15], 'float32'));
    expectClose(got, want, 1e-6, 0, 'pow');
    for (let i = 0; i < want.length; i++) expect(Object.is(got[i], want[i]) || got[i] === want[i] || Math.abs(got[i] - want[i]) <= 1e-6 * Math.abs(want[i])).toBe(true);
  });

  it('where, copy (with casts) and copyInto match the CPU', async () => {
    await fc.assert(fc.asyncProperty(caseArb(3), fc.constantFrom('fff', 'iff', 'fii', 'iii', 'fif'), async ([shape, specs, seed], dts) => {
      const ints = [...dts].map((c) => c === 'i');
      const [c, a, b] = viewsFor(shape, specs, seed, ['small-int', 'any', 'any'].map((d, i) => (ints[i] ? 'int' : d)) as Dist[], ints);
      const outDt = ints[1] && ints[2] ? 'int32' : 'float32';
      let [got, want] = await readBoth(cpu.where(c.cv, a.cv, b.cv, shape, outDt), gpu.where(c.gv, a.gv, b.gv, shape, outDt));
      expectEqual(got, want, `where ${dts}`);
      for (const dt of ['float32', 'int32'] as const) {
        [got, want] = await readBoth(cpu.copy(a.cv, shape, dt), gpu.copy(a.gv, shape, dt));
        expectEqual(got, want, `copy ${dts[1]}->${dt}`);
      }
      // copyInto: write the view a into b's buffer through b's view (when b's view is injective)
      if (!b.cv.strides.some((s, d) => s === 0 && shape[d] > 1)) {
        cpu.copyInto(b.cv, a.cv, shape);
        gpu.copyInto(b.gv, a.gv, shape);
        [got, want] = await readBoth(b.cv.buf, b.gv.buf);
        expectEqual(got, want, 'copyInto');
      }
      c.free(); a.free(); b.free();
    }), { numRuns: 50 });
  });

  it('reduceLast (sum, max) and argmaxLast match the CPU, ties included', async () => {
    const cases: [number, number][] = [[1, 1], [3, 7], [64, 10], [5, 300], [2, 2048], [3, 5000], [1, 100000], [0, 4], [4, 0]];
    for (const [rows, cols] of cases) {
      for (const int of [false, true]) {
        const x = both(values(rows * cols, rows * 31 + cols, int ? 'int' : 'any', int));
        let [got, want] = await readBoth(cpu.reduceLast('sum', x.c, rows, cols), gpu.reduceLast('sum', x.g, rows, cols));
        expectClose(got, want, 1e-5, 2e-5 * Math.sqrt(cols), `sum ${rows}x${cols}`);
        [got, want] = await readBoth(cpu.reduceLast('max', x.c, rows, cols), gpu.reduceLast('max', x.g, rows, cols));
        expectEqual(got, want, `max ${rows}x${cols}`);
        const t = both(values(rows * cols, rows + cols, 'small-int', int)); // many ties
        [got, want] = await readBoth(cpu.argmaxLast(t.c, rows, cols), gpu.argmaxLast(t.g, rows, cols));
        expectEqual(got, want, `argmax ${rows}x${cols}`);
      }
    }
  });

  for (const kind of ['tex', 'reg', 'tiled'] as const) {
    it(`matmul (${kind} kernel) matches the CPU: batches, transposes, broadcast batch strides, odd sizes`, async () => {
      const saved = gpu.matmulPlan;
      gpu.matmulPlan = kind === 'reg' ? { kind: 'reg', tm: 8, tn: 16 } : kind === 'tex' ? { kind: 'tex', tm: 16, tn: 8 } : { kind: 'tiled', tm: 4, tn: 4 };
      try {
        const dim = fc.oneof(fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 20 }).map((x) => 4 * x));
        await fc.assert(fc.asyncProperty(
          dim, dim, dim, fc.integer({ min: 1, max: 3 }), fc.boolean(), fc.boolean(), fc.boolean(), fc.boolean(), fc.nat(),
          async (m, n, k, batch, tA, tB, bcA, bcB, seed) => {
            const aBS = bcA ? 0 : m * k, bBS = bcB ? 0 : k * n;
            const A = both(values(Math.max(1, aBS * batch || m * k), seed, 'any'));
            const B = both(values(Math.max(1, bBS * batch || k * n), seed + 1, 'any'));
            const args = { batch, m, n, k, transA: tA, transB: tB, aBatchStride: aBS, bBatchStride: bBS };
            const [got, want] = await readBoth(cpu.matmul({ ...args, a: A.c, b: B.c }), gpu.matmul({ ...args, a: A.g, b: B.g }));
            expectClose(got, want, 1e-4, 1e-5 * k, `matmul ${kind} b${batch} ${m}x${k}x${n} tA${tA} tB${tB}`);
          }), { numRuns: kind === 'tiled' ? 25 : 50 });
        // one bigger product
        const [m, n, k] = [100, 512, 784];
        const A = both(values(m * k, 5, 'any')), B = both(values(k * n, 6, 'any'));
        const args = { batch: 1, m, n, k, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0 };
        const [got, want] = await readBoth(cpu.matmul({ ...args, a: A.c, b: B.c }), gpu.matmul({ ...args, a: A.g, b: B.g }));
        expectClose(got, want, 1e-4, 1e-3, 'matmul 100x784x512');
      } finally {
        gpu.matmulPlan = saved;
      }
    });
  }

  it('gather and scatterAdd match the CPU', async () => {
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 5 }), fc.nat(), fc.boolean(),
      async (outer, n, m, inner, seed, int) => {
        const x = both(values(outer * n * inner, seed, 'any', int));
        const r = rng(seed + 3);
        const idx = both(Int32Array.from({ length: outer * m * inner }, () => Math.floor(r() * n)));
        let [got, want] = await readBoth(cpu.gather(x.c, idx.c, outer, n, m, inner), gpu.gather(x.g, idx.g, outer, n, m, inner));
        expectEqual(got, want, 'gather');
        const gr = both(values(outer * m * inner, seed + 5, 'any', int));
        [got, want] = await readBoth(cpu.scatterAdd(gr.c, idx.c, outer, n, m, inner), gpu.scatterAdd(gr.g, idx.g, outer, n, m, inner));
        expectClose(got, want, 1e-6, 1e-6, 'scatterAdd');
      }), { numRuns: 40 });
  });

  it('randomBits is bit-identical to the CPU Philox stream (sizes not multiples of 4, counters past 2^32)', async () => {
    const keys: [number, number][] = [[0, 0], [1, 2], [0xffffffff, 0x12345678], [0xdeadbeef, 0xcafebabe]];
    const counters = [0, 1, 4294967293, 4294967296 * 3 + 5, 2 ** 52 + 17];
    const sizes = [0, 1, 2, 3, 5, 7, 64, 1001, 4099];
    for (const k of keys) {
      for (const counter of counters) {
        for (const size of sizes) {
          const want = new Int32Array(size);
          philoxFill(k[0], k[1], counter, want);
          expectEqual(await gpu.read(gpu.randomBits(k, counter, size)), want, `philox ${k} ${counter} ${size}`);
          const c = cpu.randomBits(k, counter, size);
          expectEqual(cpu.readSync!(c), want);
        }
      }
    }
  });

  it('bitsToUniform, uniform, normal, gumbel agree; categorical and argmax are identical', async () => {
    const bits = both(Int32Array.from([0, -1, 1, 511, 512, 0x7fffffff, -0x80000000, 12345678, -987654321]));
    const v: [View, View] = [{ buf: bits.c, strides: [1], offset: 0 }, { buf: bits.g, strides: [1], offset: 0 }];
    const [got, want] = await readBoth(cpu.unary('bitsToUniform', v[0], [9], 'float32'), gpu.unary('bitsToUniform', v[1], [9], 'float32'));
    expectEqual(got, want, 'bitsToUniform');
    for (let s = 0; s < 4; s++) {
      const k = random.key(1000 + s);
      expectEqual(await random.uniform(k, [37, 5], { device: 'webgpu' }).data(), await random.uniform(k, [37, 5]).data(), 'uniform');
      expectClose(await random.normal(k, [301], { device: 'webgpu' }).data(), await random.normal(k, [301]).data(), 1e-4, 1e-5, 'normal');
      expectClose(await random.gumbel(k, [301], { device: 'webgpu' }).data(), await random.gumbel(k, [301]).data(), 1e-4, 1e-5, 'gumbel');
      const logits = values(64 * 10, s, 'any');
      const lc = tensor(logits, [64, 10]), lg = tensor(logits, [64, 10], { device: 'webgpu' });
      expectEqual(await random.categorical(k, lg).data(), await random.categorical(k, lc).data(), 'categorical');
      expectEqual(await lg.argmax(-1).data(), await lc.argmax(-1).data(), 'argmax');
      expectEqual(await lg.argmax(0).data(), await lc.argmax(0).data(), 'argmax axis 0');
    }
  });

  it('adamUpdate matches the CPU', async () => {
    const n = 1000;
    const bufs = [values(n, 1, 'any'), values(n, 2, 'any'), values(n, 3, 'any'), values(n, 4, 'pos')].map(both);
    for (const [step, wd] of [[1, 0], [2, 0.01], [10, 0.1]]) {
      const hp = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: wd, step };
      cpu.adamUpdate!(bufs[0].c, bufs[1].c, bufs[2].c, bufs[3].c, hp);
      gpu.adamUpdate(bufs[0].g, bufs[1].g, bufs[2].g, bufs[3].g, hp);
    }
    for (const i of [0, 2, 3]) {
      const [got, want] = await readBoth(bufs[i].c, bufs[i].g);
      expectClose(got, want, 1e-5, 1e-6, `adam ${i}`);
    }
  });




  it('a few hundred training steps inside tidy keep memory flat', async () => {
    nn.manualSeed(3);
    const l1 = new nn.Linear(20, 32, { device: 'webgpu' }), l2 = new nn.Linear(32, 4, { device: 'webgpu' });
    const params = [...l1.parameters(), ...l2.parameters()];
    const opt = new optim.Adam(params, { lr: 1e-2 });
    const X = values(16 * 20, 11, 'any');
    const T = Int32Array.from({ length: 16 }, (_, i) => i % 4);
    const base = gg.memory('webgpu');
    let warm = 0;
    let first = NaN, last = NaN;
    for (let step = 0; step < 300; step++) {
      const loss = tidy(() => {
        const x = tensor(X, [16, 20], { device: 'webgpu' }); // a fresh upload every step
        const logits = l2.forward(l1.forward(x).relu());
        const l = gg.crossEntropy(logits, tensor(T, [16], { device: 'webgpu' }));
        l.backward();
        opt.step();
        opt.zeroGrad();
        return l;
      });
      if (step % 25 === 0 || step === 299) {
        const v = await loss.itemAsync();
        if (step === 0) first = v;
        last = v;
      }
      loss.dispose();
      if (step === 50) warm = gg.memory('webgpu').allocatedBytes;
    }
    const end = gg.memory('webgpu');
    expect(end.allocatedBytes).toBe(warm);
    expect(end.liveBuffers).toBe(base.liveBuffers + 4 * 2); // Adam's m, v for 4 parameters
    expect(last).toBeLessThan(first * 0.5);
  });
});

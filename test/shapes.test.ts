// Shapes and values against explicit loops, on every device: broadcasting, reshape/permute,
// reductions, slicing, argmax, memory scopes (tidy) and detach.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import fc from 'fast-check';
import * as g from '../index.ts';
import type { Tensor } from '../index.ts';
import { Rng, fill, numel, unravel, ravelBroadcast, stridesOf } from './helpers.ts';
import { DEVICES, profile, read, cpuLike } from './devices.ts';

const FC = { seed: 777001, numRuns: 60 };
const dimArb = fc.integer({ min: 1, max: 4 });
const shapeArb = (minRank = 0, maxRank = 4) => fc.array(dimArb, { minLength: minRank, maxLength: maxRank });
const seedArb = fc.integer({ min: 0, max: 0x7fffffff });

function partner(r: Rng, out: number[]): number[] {
  const drop = r.int(0, out.length + 1);
  return out.slice(drop).map((d) => (r.next() < 0.35 ? 1 : d));
}

/** numpy broadcast of two shapes, or null when incompatible */
function npBroadcast(a: number[], b: number[]): number[] | null {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1, y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(x === 1 ? y : x);
  }
  return out;
}

// One suite per device. On the CPU values are float64 and compared exactly (or to 1e-12 where the
// summation order differs); elsewhere float32 values (inputs rounded to float32) within float32 rounding.
describe.each(DEVICES)('on %s', (device) => {
  const P = profile(device);
  /** summation-order tolerance (relative to max(1, |reference|)) */
  const tol = cpuLike(device) ? 1e-12 : 2e-5;
  /** a tensor on this device in its floating dtype */
  const T = (v: ArrayLike<number>, shape: number[], requiresGrad = false) =>
    g.tensor(Float64Array.from(v), shape, { dtype: P.dtype, device, requiresGrad });
  /** random values in [-3, 3), as the device holds them */
  const values = (r: Rng, shape: number[]) => fill(r, numel(shape), (q) => P.round(q.uniform(-3, 3)));
  /** nested arrays of a tensor's values (any device) */
  const nested = async (t: Tensor): Promise<unknown> => {
    const d = await read(t);
    const build = (axis: number, off: number): unknown => axis === t.rank
      ? d[off]
      : Array.from({ length: t.shape[axis] }, (_, i) => build(axis + 1, off + i * numel(t.shape.slice(axis + 1))));
    return build(0, 0);
  };
  /** a single arithmetic result: exact on the CPU, within float32 rounding elsewhere */
  const exact = (got: number, want: number, what: string) => {
    if (cpuLike(device)) expect(got, what).toBe(want);
    else if (Number.isFinite(want)) expect(Math.abs(got - want), what).toBeLessThanOrEqual(P.rtol * Math.max(1, Math.abs(want)));
    else expect(got, what).toBe(want);
  };
  // factories without a device option (g.ones, g.tensor, ...) create on this device
  beforeEach(() => g.setDefaultDevice(device));
  afterEach(() => g.setDefaultDevice('cpu'));

  describe('broadcasting', () => {
    const ops: [string, (a: Tensor, b: Tensor) => Tensor, (x: number, y: number) => number][] = [
      ['add', g.add, (x, y) => x + y],
      ['sub', g.sub, (x, y) => x - y],
      ['mul', g.mul, (x, y) => x * y],
      ['div', g.div, (x, y) => x / y],
      ['maximum', g.maximum, (x, y) => Math.max(x, y)],
      ['minimum', g.minimum, (x, y) => Math.min(x, y)],
      ['lt', g.lt, (x, y) => (x < y ? 1 : 0)],
      ['ge', g.ge, (x, y) => (x >= y ? 1 : 0)],
    ];
    it('result shape and values equal an explicit loop (compatible shapes)', async () => {
      await fc.assert(fc.asyncProperty(shapeArb(), seedArb, async (out, seed) => {
        const r = new Rng(seed);
        const sa = partner(r, out), sb = partner(r, out);
        const expectedShape = npBroadcast(sa, sb)!;
        const va = values(r, sa), vb = values(r, sb);
        const A = T(va, sa), B = T(vb, sb);
        for (const [name, op, ref] of ops) {
          const y = op(A, B);
          expect(y.shape, `${name} [${sa}] [${sb}]`).toEqual(expectedShape);
          const d = (await read(y));
          for (let i = 0; i < d.length; i++) {
            const idx = unravel(i, expectedShape);
            exact(d[i], ref(va[ravelBroadcast(idx, sa)], vb[ravelBroadcast(idx, sb)]), name);
          }
        }
      }), FC);
    });

    it('incompatible shapes raise and name both shapes', async () => {
      await fc.assert(fc.asyncProperty(shapeArb(1), seedArb, async (out, seed) => {
        const r = new Rng(seed);
        const d = r.int(0, out.length);
        const sa = out.slice(), sb = out.slice();
        sa[d] = Math.max(2, out[d]);
        sb[d] = sa[d] + 1; // both != 1 and different
        const a = g.zeros(sa, { device }), b = g.zeros(sb, { device });
        expect(() => g.add(a, b)).toThrow(`add: cannot broadcast shapes [${sa}] (a) and [${sb}] (b)`);
      }), FC);
    });

    it('where broadcasts cond, a and b together', async () => {
      await fc.assert(fc.asyncProperty(shapeArb(), seedArb, async (out, seed) => {
        const r = new Rng(seed);
        const sc = partner(r, out), sa = partner(r, out), sb = partner(r, out);
        const vc = fill(r, numel(sc), (q) => (q.next() < 0.5 ? 1 : 0)), va = values(r, sa), vb = values(r, sb);
        const y = g.where(T(vc, sc), T(va, sa), T(vb, sb));
        const shape = npBroadcast(npBroadcast(sc, sa)!, sb)!;
        expect(y.shape).toEqual(shape);
        (await read(y)).forEach((v, i) => {
          const idx = unravel(i, shape);
          expect(v).toBe(vc[ravelBroadcast(idx, sc)] ? va[ravelBroadcast(idx, sa)] : vb[ravelBroadcast(idx, sb)]);
        });
      }), FC);
    });

    it('expand equals an explicit broadcast loop', async () => {
      await fc.assert(fc.asyncProperty(shapeArb(), seedArb, async (out, seed) => {
        const r = new Rng(seed);
        const src = partner(r, out);
        const v = values(r, src);
        const y = g.expand(T(v, src), out);
        expect(y.shape).toEqual(out);
        (await read(y)).forEach((x, i) => expect(x).toBe(v[ravelBroadcast(unravel(i, out), src)]));
      }), FC);
    });
  });

  describe('expand of a single value (a sum\'s gradient: the CPU backend fills)', () => {
    it('every dtype, from rank 0 and from all-ones shapes', async () => {
      for (const dtype of P.dtype === 'float64' ? ['float32', 'float64', 'int32'] as const : ['float32', 'int32'] as const) {
        for (const [src, out] of [[[], [3, 5]], [[1, 1], [4, 7]], [[1], [2000]]] as [number[], number[]][]) {
          const v = dtype === 'int32' ? -7 : 0.1;
          const y = g.expand(g.full(src, v, { dtype, device }), out);
          expect(y.dtype).toBe(dtype);
          expect(y.shape).toEqual(out);
          const want = dtype === 'float32' ? Math.fround(v) : v;
          expect(Array.from((await read(y))).every((x) => x === want), `${dtype} [${src}] -> [${out}]`).toBe(true);
        }
      }
    });
  });

  describe('reshape and permute', () => {
    it('permute then the inverse permutation is the identity; values follow the explicit index map', async () => {
      await fc.assert(fc.asyncProperty(shapeArb(1), seedArb, async (shape, seed) => {
        const r = new Rng(seed);
        const v = values(r, shape);
        const perm = r.shuffle([...shape.keys()]);
        const x = T(v, shape);
        const y = g.permute(x, perm);
        const pshape = perm.map((d) => shape[d]);
        expect(y.shape).toEqual(pshape);
        const st = stridesOf(shape);
        (await read(y)).forEach((val, i) => {
          const idx = unravel(i, pshape);
          let off = 0;
          perm.forEach((d, k) => { off += idx[k] * st[d]; });
          expect(val).toBe(v[off]);
        });
        const inv = new Array<number>(perm.length);
        perm.forEach((d, i) => { inv[d] = i; });
        const back = g.permute(y, inv);
        expect(back.shape).toEqual(shape);
        expect((await read(back))).toEqual(Array.from(v));
      }), FC);
    });

    it('reshape round trips and keeps row-major order; -1 is inferred', async () => {
      await fc.assert(fc.asyncProperty(shapeArb(), seedArb, async (shape, seed) => {
        const r = new Rng(seed);
        const v = values(r, shape);
        const x = T(v, shape);
        const flat = g.reshape(x, [-1]);
        expect(flat.shape).toEqual([numel(shape)]);
        expect((await read(flat))).toEqual(Array.from(v));
        const back = g.reshape(flat, shape);
        expect(back.shape).toEqual(shape);
        expect((await read(back))).toEqual(Array.from(v));
      }), FC);
    });

    it('transpose swaps two axes; squeeze/unsqueeze round trip', async () => {
      const x = T([1, 2, 3, 4, 5, 6], [2, 3]);
      expect((await nested(g.transpose(x)))).toEqual([[1, 4], [2, 5], [3, 6]]);
      const u = g.unsqueeze(x, -1);
      expect(u.shape).toEqual([2, 3, 1]);
      expect(g.unsqueeze(x, 0).shape).toEqual([1, 2, 3]);
      expect(g.squeeze(u).shape).toEqual([2, 3]);
      expect(g.squeeze(u, -1).shape).toEqual([2, 3]);
      expect(() => g.squeeze(u, 0)).toThrow(/squeeze: axis 0 has size 2/);
    });
  });

  /** explicit-loop reduction over `axes` */
  function refReduce(v: ArrayLike<number>, shape: number[], axes: number[], keepDims: boolean, init: number, f: (a: number, b: number) => number) {
    const outShape = keepDims ? shape.map((n, d) => (axes.includes(d) ? 1 : n)) : shape.filter((_, d) => !axes.includes(d));
    const keptShape = shape.map((n, d) => (axes.includes(d) ? 1 : n));
    const out = new Array<number>(numel(outShape)).fill(init);
    for (let i = 0; i < v.length; i++) {
      const idx = unravel(i, shape);
      const o = ravelBroadcast(idx, keptShape);
      out[o] = f(out[o], v[i]);
    }
    return { outShape, out };
  }

  describe('reductions over random axis sets', () => {
    it('sum, mean, max, min and logsumexp equal explicit loops, with and without keepDims', async () => {
      await fc.assert(fc.asyncProperty(shapeArb(), seedArb, fc.boolean(), async (shape, seed, keepDims) => {
        const r = new Rng(seed);
        const v = values(r, shape);
        const axesList = [...shape.keys()].filter(() => r.next() < 0.5);
        // mix positive and negative spellings, and duplicates
        const spelled = axesList.map((a) => (r.next() < 0.5 ? a - shape.length : a));
        if (spelled.length && r.next() < 0.3) spelled.push(spelled[0]);
        const x = T(v, shape);
        const count = numel(axesList.map((d) => shape[d]));
        const cases: [string, Tensor, number, (a: number, b: number) => number, (s: number) => number][] = [
          ['sum', g.sum(x, spelled, keepDims), 0, (a, b) => a + b, (s) => s],
          ['mean', g.mean(x, spelled, keepDims), 0, (a, b) => a + b, (s) => s / count],
          ['max', g.max(x, spelled, keepDims), -Infinity, Math.max, (s) => s],
          ['min', g.min(x, spelled, keepDims), Infinity, Math.min, (s) => s],
        ];
        for (const [name, y, init, f, fin] of cases) {
          const ref = refReduce(v, shape, axesList, keepDims, init, f);
          expect(y.shape, `${name} [${shape}] axes ${spelled}`).toEqual(ref.outShape);
          const d = (await read(y));
          ref.out.forEach((e, i) => expect(Math.abs(d[i] - fin(e)), name).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(fin(e)))));
        }
        if (axesList.length) {
          const lse = g.logsumexp(x, spelled, keepDims);
          const ref = refReduce(v, shape, axesList, keepDims, 0, (a, b) => a + Math.exp(b));
          expect(lse.shape).toEqual(ref.outShape);
          (await read(lse)).forEach((val, i) => expect(Math.abs(val - Math.log(ref.out[i]))).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(Math.log(ref.out[i])))));
        }
      }), FC);
    });

    it('full reductions give 0-d tensors (null, undefined, all axes)', async () => {
      const x = T([1, 2, 3, 4, 5, 6], [2, 3]);
      expect(g.sum(x).shape).toEqual([]);
      expect((await read(g.sum(x)))[0]).toBe(21);
      expect(g.sum(x, null, true).shape).toEqual([1, 1]);
      expect((await read(g.mean(x, [0, 1])))[0]).toBe(3.5);
      expect((await nested(g.max(x, [1, 0], true)))).toEqual([[6]]);
      expect(g.sum(x, []).shape).toEqual([2, 3]);
      const s = T([5], []);
      expect((await read(g.sum(s)))[0]).toBe(5);
    });

    it('softmax sums to one along its axis and equals exp(logSoftmax)', async () => {
      await fc.assert(fc.asyncProperty(shapeArb(1), seedArb, async (shape, seed) => {
        const r = new Rng(seed);
        const x = T(values(r, shape), shape);
        const a = r.int(-shape.length, shape.length);
        const s = g.softmax(x, a);
        (await read(g.sum(s, a))).forEach((v) => expect(Math.abs(v - 1)).toBeLessThanOrEqual(tol));
        const ls = (await read(g.exp(g.logSoftmax(x, a))));
        (await read(s)).forEach((v, i) => expect(Math.abs(v - ls[i])).toBeLessThanOrEqual(tol));
      }), { ...FC, numRuns: 30 });
    });

    it('cumsum equals a running sum along the axis', async () => {
      await fc.assert(fc.asyncProperty(shapeArb(1), seedArb, async (shape, seed) => {
        const r = new Rng(seed);
        const v = values(r, shape);
        const a = r.int(0, shape.length);
        const y = (await read(g.cumsum(T(v, shape), a)));
        const st = stridesOf(shape);
        y.forEach((val, i) => {
          const idx = unravel(i, shape);
          let s = 0;
          for (let j = 0; j <= idx[a]; j++) s += v[i + (j - idx[a]) * st[a]];
          expect(Math.abs(val - s)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(s)));
        });
      }), { ...FC, numRuns: 30 });
    });
  });

  describe('slice, concat, stack, gather, take', () => {
    it('slicing a tensor into pieces along an axis and concatenating them is the identity', async () => {
      await fc.assert(fc.asyncProperty(shapeArb(1), seedArb, async (shape, seed) => {
        const r = new Rng(seed);
        const v = values(r, shape);
        const x = T(v, shape);
        const a = r.int(0, shape.length);
        const cuts = [0];
        while (cuts[cuts.length - 1] < shape[a]) cuts.push(r.int(cuts[cuts.length - 1] + 1, shape[a] + 1));
        const pieces = cuts.slice(1).map((end, i) => g.narrow(x, a, cuts[i], end - cuts[i]));
        const y = g.concat(pieces, a);
        expect(y.shape).toEqual(shape);
        expect((await read(y))).toEqual(Array.from(v));
      }), FC);
    });

    it('slice values equal an explicit index map; size -1 means to the end', async () => {
      await fc.assert(fc.asyncProperty(shapeArb(1), seedArb, async (shape, seed) => {
        const r = new Rng(seed);
        const v = values(r, shape);
        const begin = shape.map((n) => r.int(0, n));
        const size = shape.map((n, d) => (r.next() < 0.3 ? -1 : r.int(0, n - begin[d] + 1)));
        const real = size.map((s, d) => (s === -1 ? shape[d] - begin[d] : s));
        const y = g.slice(T(v, shape), begin, size);
        expect(y.shape).toEqual(real);
        const st = stridesOf(shape);
        (await read(y)).forEach((val, i) => {
          const idx = unravel(i, real);
          expect(val).toBe(v[idx.reduce((acc, k, d) => acc + (k + begin[d]) * st[d], 0)]);
        });
      }), FC);
    });

    it('stack equals unsqueeze + concat; gather and take follow their index maps', async () => {
      const a = T([1, 2, 3, 4], [2, 2]), b = T([5, 6, 7, 8], [2, 2]);
      expect((await nested(g.stack([a, b], 0)))).toEqual([[[1, 2], [3, 4]], [[5, 6], [7, 8]]]);
      expect((await nested(g.stack([a, b], -1)))).toEqual([[[1, 5], [2, 6]], [[3, 7], [4, 8]]]);
      const idx = g.tensor([[1, 1, 0], [0, 1, 0]], null, { dtype: 'int32' });
      expect((await nested(g.gather(a, idx, 1)))).toEqual([[2, 2, 1], [3, 4, 3]]);
      const x = T([0, 1, 2, 10, 11, 12], [2, 3]);
      expect((await nested(g.take(x, g.tensor([[2, 0]], null, { dtype: 'int32' }), 1)))).toEqual([[[2, 0]], [[12, 10]]]);
      expect((await nested(g.take(x, g.tensor([1, 1, 0], null, { dtype: 'int32' }), 0)))).toEqual([[10, 11, 12], [10, 11, 12], [0, 1, 2]]);
    });
  });

  describe('Tensor methods', () => {
    it('are the free functions with the tensor first (where, gather, take, oneHot, cumsum, squeeze/unsqueeze, flatten, narrow, losses, cat)', async () => {
      const r = new Rng(5);
      const x = T(values(r, [2, 3, 4]), [2, 3, 4]), y = T(values(r, [3, 4]), [3, 4]);
      const c = g.gt(x, 0);
      const idx = g.tensor([[2, 0, 1]], null, { dtype: 'int32' });
      const pairs: [string, Tensor, Tensor][] = [
        ['where', x.where(c, y), g.where(c, x, y)],
        ['where (number)', x.where(c, 0.5), g.where(c, x, 0.5)],
        ['gather', y.gather(g.expand(idx, [3, 3]), 1), g.gather(y, g.expand(idx, [3, 3]), 1)],
        ['take', x.take(idx, 1), g.take(x, idx, 1)],
        ['oneHot', idx.oneHot(4), g.oneHot(idx, 4)],
        ['cumsum', x.cumsum(1), g.cumsum(x, 1)],
        ['unsqueeze', y.unsqueeze(0), g.unsqueeze(y, 0)],
        ['squeeze', y.unsqueeze(1).squeeze(1), y],
        ['narrow', x.narrow(2, 1, 2), g.narrow(x, 2, 1, 2)],
        ['logsumexp (axis list)', x.logsumexp([0, 2]), g.logsumexp(x, [0, 2])],
        ['clamp (tensor bounds)', x.clamp(y.neg().abs().neg(), y.abs()), g.minimum(g.maximum(x, g.neg(g.abs(y))), g.abs(y))],
        ['argmin', x.argmin(1), g.argmin(x, 1)],
        ['clone', x.clone(), x],
        ['cat', g.cat([x, x], 2), g.concat([x, x], 2)],
        ['crossEntropy', y.crossEntropy(g.tensor([0, 3, 1], null, { dtype: 'int32' })), g.crossEntropy(y, g.tensor([0, 3, 1], null, { dtype: 'int32' }))],
        ['binaryCrossEntropyWithLogits', y.binaryCrossEntropyWithLogits(g.sigmoid(y), 'sum'), g.binaryCrossEntropyWithLogits(y, g.sigmoid(y), 'sum')],
        ['binaryCrossEntropy', g.sigmoid(y).binaryCrossEntropy(g.sigmoid(x.sum(0)), 'none'), g.binaryCrossEntropy(g.sigmoid(y), g.sigmoid(x.sum(0)), 'none')],
        ['sin/cos/sign/floor/reciprocal', y.sin().add(y.cos()).add(y.sign()).add(y.floor()).add(y.reciprocal()), g.add(g.add(g.add(g.add(g.sin(y), g.cos(y)), g.sign(y)), g.floor(y)), g.reciprocal(y))],
      ];
      for (const [name, a, b] of pairs) {
        expect(a.shape, name).toEqual(b.shape);
        expect(a.dtype, name).toBe(b.dtype);
        expect(await read(a), name).toEqual(await read(b));
      }
    });

    it('binary ops take at least one tensor: two numbers are a type error and a runtime error', () => {
      // @ts-expect-error both arguments are numbers
      expect(() => g.add(1, 2)).toThrow(/add: at least one argument must be a Tensor/);
      expect(g.sub(1, T([3], [1])).shape).toEqual([1]);
    });

    it('flatten merges an axis range (negative axes, 0-d) and rejects a reversed range', async () => {
      const x = T(values(new Rng(1), [2, 3, 4, 5]), [2, 3, 4, 5]);
      expect(x.flatten().shape).toEqual([120]);
      expect(x.flatten(1).shape).toEqual([2, 60]);
      expect(g.flatten(x, 1, 2).shape).toEqual([2, 12, 5]);
      expect(x.flatten(-2, -1).shape).toEqual([2, 3, 20]);
      expect(await read(x.flatten(1, 2))).toEqual(await read(x));
      expect(T([7], []).flatten().shape).toEqual([1]);
      expect(() => x.flatten(2, 1)).toThrow(/flatten: startAxis 2 comes after endAxis 1/);
      expect(() => x.flatten(0, 4)).toThrow(/flatten: axis 4 is out of range/);
      const c = x.clone();
      expect(c.buf).not.toBe(x.buf); // a new buffer, unlike reshape and detach
    });
  });

  describe('argmax', () => {
    it('returns the first index of the maximum (ties), along any axis, with keepDims', async () => {
      const x = T([1, 3, 3, 2, 7, 7, 7, 0], [2, 4]);
      expect((await read(g.argmax(x)))).toEqual([1, 0]);
      expect(g.argmax(x).dtype).toBe('int32');
      expect(g.argmax(x, -1, true).shape).toEqual([2, 1]);
      const y = T([5, 1, 5, 9, 5, 9], [3, 2]);
      expect((await read(g.argmax(y, 0)))).toEqual([0, 1]);
      expect((await read(g.argmin(T([2, 0, 0, 1], [4]))))).toEqual([1]);
    });

    it('equals an explicit first-max scan on random data with many ties', async () => {
      await fc.assert(fc.asyncProperty(shapeArb(1), seedArb, async (shape, seed) => {
        const r = new Rng(seed);
        const v = fill(r, numel(shape), (q) => q.int(0, 3)); // small alphabet: ties everywhere
        const a = r.int(0, shape.length);
        const y = (await read(g.argmax(T(v, shape), a)));
        const outShape = shape.filter((_, d) => d !== a);
        const st = stridesOf(shape);
        y.forEach((val, i) => {
          const oi = unravel(i, outShape);
          const idx = [...oi.slice(0, a), 0, ...oi.slice(a)];
          const base = idx.reduce((acc, k, d) => acc + k * st[d], 0);
          let best = 0;
          for (let j = 1; j < shape[a]; j++) if (v[base + j * st[a]] > v[base + best * st[a]]) best = j;
          expect(val).toBe(best);
        });
      }), FC);
    });
  });

  describe('memory scopes and detach', () => {
    it('tidy disposes intermediates; live tensor and buffer counts return to baseline', async () => {
      const base = g.memory(device);
      const out = g.tidy(() => {
        const a = g.ones([3, 4]);
        const b = g.exp(g.mul(a, 2));
        const c = g.sum(g.add(b, a), 1);
        return g.mul(c, 0.5);
      });
      const mid = g.memory(device);
      expect(mid.liveTensors).toBe(base.liveTensors + 1);
      expect(mid.liveBuffers).toBe(base.liveBuffers + 1);
      expect((await read(out))[0]).toBeCloseTo(2 * (Math.exp(2) + 1), 4);
      out.dispose();
      const end = g.memory(device);
      expect(end.liveTensors).toBe(base.liveTensors);
      expect(end.liveBuffers).toBe(base.liveBuffers);
      expect(end.liveBytes).toBe(base.liveBytes);
    });

    it('tidy keeps tensors returned in arrays/objects and kept ones; nested scopes hand survivors up', async () => {
      const base = g.memory(device).liveTensors;
      let kept: Tensor | null = null;
      const res = g.tidy(() => {
        const inner = g.tidy(() => {
          const t = g.ones([2]);
          g.add(t, 1); // garbage
          return { a: g.mul(t, 3), list: [g.neg(t)] };
        });
        kept = g.keep(g.zeros([5]));
        g.sub(inner.a, 1); // garbage of the outer scope
        return [inner.a, inner.list[0]];
      });
      expect(g.memory(device).liveTensors).toBe(base + 3);
      expect((await read(res[0]))).toEqual([3, 3]);
      res.forEach((t) => t.dispose());
      kept!.dispose();
      expect(g.memory(device).liveTensors).toBe(base);
    });

    it('tidy disposes even when fn throws; backward inside tidy keeps leaf grads', async () => {
      const base = g.memory(device).liveTensors;
      expect(() => g.tidy(() => { g.ones([3]); throw new Error('boom'); })).toThrow('boom');
      expect(g.memory(device).liveTensors).toBe(base);
      const x = T([1, 2], [2], true);
      g.tidy(() => { g.sum(g.mul(x, x)).backward(); });
      expect((await read(x.grad!))).toEqual([2, 4]);
    });

    it('reshape shares the buffer; disposing one view keeps the other readable', async () => {
      const base = g.memory(device);
      const x = g.tensor([1, 2, 3, 4], [4]);
      const y = g.reshape(x, [2, 2]);
      expect(g.memory(device).liveBuffers).toBe(base.liveBuffers + 1);
      x.dispose();
      expect((await nested(y))).toEqual([[1, 2], [3, 4]]);
      y.dispose();
      expect(g.memory(device).liveBuffers).toBe(base.liveBuffers);
    });

    it('detach shares values but cuts the graph', async () => {
      const x = T([1, 2, 3], [3], true);
      const h = g.mul(x, 2);
      const d = h.detach();
      expect(d.buf).toBe(h.buf);
      expect(d.requiresGrad).toBe(false);
      expect(d.node).toBeNull();
      expect((await read(d))).toEqual([2, 4, 6]);
      g.sum(g.mul(h, d)).backward(); // d/dx sum(2x * const) = 2 * const
      expect((await read(x.grad!))).toEqual([4, 8, 12]);
      expect(() => g.sum(d).backward()).toThrow(/does not require grad/);
    });
  });
});

describe("PyTorch's names for tensor accessors", () => {
  it('numel, dim, view, tolist and requiresGrad_ agree with size, rank, reshape, toArray and requireGrad', () => {
    const x = g.tensor([[1, 2, 3], [4, 5, 6]]);
    expect([x.numel(), x.dim()]).toEqual([6, 2]);
    expect(x.view([3, 2]).tolist()).toEqual([[1, 2], [3, 4], [5, 6]]);
    expect(x.view([-1]).shape).toEqual([6]);
    expect(() => x.view([4, 2])).toThrow(/reshape/);
    const w = g.tensor([1, 2]).requiresGrad_();
    expect(w.requiresGrad).toBe(true);
    w.mul(w).sum().backward();
    expect(Array.from(w.grad!.dataSync())).toEqual([2, 4]);
    expect(w.requiresGrad_(false).requiresGrad).toBe(false);
    expect(() => g.tensor([1], [1], { dtype: 'int32' }).requiresGrad_()).toThrow(/only floating tensors/);
  });
});

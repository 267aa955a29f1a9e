// Shapes and values against explicit loops: broadcasting, reshape/permute, reductions, slicing,
// argmax, memory scopes (tidy) and detach.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import * as g from '../index.ts';
import type { Tensor } from '../index.ts';
import { Rng, fill, numel, unravel, ravelBroadcast, stridesOf, f64, arr } from './helpers.ts';

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

const values = (r: Rng, shape: number[]) => fill(r, numel(shape), (q) => q.uniform(-3, 3));

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
  it('result shape and values equal an explicit loop (compatible shapes)', () => {
    fc.assert(fc.property(shapeArb(), seedArb, (out, seed) => {
      const r = new Rng(seed);
      const sa = partner(r, out), sb = partner(r, out);
      const expectedShape = npBroadcast(sa, sb)!;
      const va = values(r, sa), vb = values(r, sb);
      const A = f64(va, sa), B = f64(vb, sb);
      for (const [name, op, ref] of ops) {
        const y = op(A, B);
        expect(y.shape, `${name} [${sa}] [${sb}]`).toEqual(expectedShape);
        const d = arr(y);
        for (let i = 0; i < d.length; i++) {
          const idx = unravel(i, expectedShape);
          expect(d[i]).toBe(ref(va[ravelBroadcast(idx, sa)], vb[ravelBroadcast(idx, sb)]));
        }
      }
    }), FC);
  });

  it('incompatible shapes raise and name both shapes', () => {
    fc.assert(fc.property(shapeArb(1), seedArb, (out, seed) => {
      const r = new Rng(seed);
      const d = r.int(0, out.length);
      const sa = out.slice(), sb = out.slice();
      sa[d] = Math.max(2, out[d]);
      sb[d] = sa[d] + 1; // both != 1 and different
      const a = g.zeros(sa), b = g.zeros(sb);
      expect(() => g.add(a, b)).toThrow(`add: cannot broadcast shapes [${sa}] (a) and [${sb}] (b)`);
    }), FC);
  });

  it('where broadcasts cond, a and b together', () => {
    fc.assert(fc.property(shapeArb(), seedArb, (out, seed) => {
      const r = new Rng(seed);
      const sc = partner(r, out), sa = partner(r, out), sb = partner(r, out);
      const vc = fill(r, numel(sc), (q) => (q.next() < 0.5 ? 1 : 0)), va = values(r, sa), vb = values(r, sb);
      const y = g.where(f64(vc, sc), f64(va, sa), f64(vb, sb));
      const shape = npBroadcast(npBroadcast(sc, sa)!, sb)!;
      expect(y.shape).toEqual(shape);
      arr(y).forEach((v, i) => {
        const idx = unravel(i, shape);
        expect(v).toBe(vc[ravelBroadcast(idx, sc)] ? va[ravelBroadcast(idx, sa)] : vb[ravelBroadcast(idx, sb)]);
      });
    }), FC);
  });

  it('expand equals an explicit broadcast loop', () => {
    fc.assert(fc.property(shapeArb(), seedArb, (out, seed) => {
      const r = new Rng(seed);
      const src = partner(r, out);
      const v = values(r, src);
      const y = g.expand(f64(v, src), out);
      expect(y.shape).toEqual(out);
      arr(y).forEach((x, i) => expect(x).toBe(v[ravelBroadcast(unravel(i, out), src)]));
    }), FC);
  });
});

describe('expand of a single value (a sum\'s gradient: the CPU backend fills)', () => {
  it('every dtype, from rank 0 and from all-ones shapes', () => {
    for (const dtype of ['float32', 'float64', 'int32'] as const) {
      for (const [src, out] of [[[], [3, 5]], [[1, 1], [4, 7]], [[1], [2000]]] as [number[], number[]][]) {
        const v = dtype === 'int32' ? -7 : 0.1;
        const y = g.expand(g.full(src, v, { dtype }), out);
        expect(y.dtype).toBe(dtype);
        expect(y.shape).toEqual(out);
        const want = dtype === 'float32' ? Math.fround(v) : v;
        expect(Array.from(y.dataSync()).every((x) => x === want), `${dtype} [${src}] -> [${out}]`).toBe(true);
      }
    }
  });
});

describe('reshape and permute', () => {
  it('permute then the inverse permutation is the identity; values follow the explicit index map', () => {
    fc.assert(fc.property(shapeArb(1), seedArb, (shape, seed) => {
      const r = new Rng(seed);
      const v = values(r, shape);
      const perm = r.shuffle([...shape.keys()]);
      const x = f64(v, shape);
      const y = g.permute(x, perm);
      const pshape = perm.map((d) => shape[d]);
      expect(y.shape).toEqual(pshape);
      const st = stridesOf(shape);
      arr(y).forEach((val, i) => {
        const idx = unravel(i, pshape);
        let off = 0;
        perm.forEach((d, k) => { off += idx[k] * st[d]; });
        expect(val).toBe(v[off]);
      });
      const inv = new Array<number>(perm.length);
      perm.forEach((d, i) => { inv[d] = i; });
      const back = g.permute(y, inv);
      expect(back.shape).toEqual(shape);
      expect(arr(back)).toEqual(Array.from(v));
    }), FC);
  });

  it('reshape round trips and keeps row-major order; -1 is inferred', () => {
    fc.assert(fc.property(shapeArb(), seedArb, (shape, seed) => {
      const r = new Rng(seed);
      const v = values(r, shape);
      const x = f64(v, shape);
      const flat = g.reshape(x, [-1]);
      expect(flat.shape).toEqual([numel(shape)]);
      expect(arr(flat)).toEqual(Array.from(v));
      const back = g.reshape(flat, shape);
      expect(back.shape).toEqual(shape);
      expect(arr(back)).toEqual(Array.from(v));
    }), FC);
  });

  it('transpose swaps two axes; squeeze/unsqueeze round trip', () => {
    const x = f64([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(g.transpose(x).toArray()).toEqual([[1, 4], [2, 5], [3, 6]]);
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
  it('sum, mean, max, min and logsumexp equal explicit loops, with and without keepDims', () => {
    fc.assert(fc.property(shapeArb(), seedArb, fc.boolean(), (shape, seed, keepDims) => {
      const r = new Rng(seed);
      const v = values(r, shape);
      const axesList = [...shape.keys()].filter(() => r.next() < 0.5);
      // mix positive and negative spellings, and duplicates
      const spelled = axesList.map((a) => (r.next() < 0.5 ? a - shape.length : a));
      if (spelled.length && r.next() < 0.3) spelled.push(spelled[0]);
      const x = f64(v, shape);
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
        const d = arr(y);
        ref.out.forEach((e, i) => expect(Math.abs(d[i] - fin(e)), name).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(fin(e)))));
      }
      if (axesList.length) {
        const lse = g.logsumexp(x, spelled, keepDims);
        const ref = refReduce(v, shape, axesList, keepDims, 0, (a, b) => a + Math.exp(b));
        expect(lse.shape).toEqual(ref.outShape);
        arr(lse).forEach((val, i) => expect(val).toBeCloseTo(Math.log(ref.out[i]), 12));
      }
    }), FC);
  });

  it('full reductions give 0-d tensors (null, undefined, all axes)', () => {
    const x = f64([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(g.sum(x).shape).toEqual([]);
    expect(g.sum(x).item()).toBe(21);
    expect(g.sum(x, null, true).shape).toEqual([1, 1]);
    expect(g.mean(x, [0, 1]).item()).toBe(3.5);
    expect(g.max(x, [1, 0], true).toArray()).toEqual([[6]]);
    expect(g.sum(x, []).shape).toEqual([2, 3]);
    const s = f64([5], []);
    expect(g.sum(s).item()).toBe(5);
  });

  it('softmax sums to one along its axis and equals exp(logSoftmax)', () => {
    fc.assert(fc.property(shapeArb(1), seedArb, (shape, seed) => {
      const r = new Rng(seed);
      const x = f64(values(r, shape), shape);
      const a = r.int(-shape.length, shape.length);
      const s = g.softmax(x, a);
      arr(g.sum(s, a)).forEach((v) => expect(v).toBeCloseTo(1, 12));
      const ls = arr(g.exp(g.logSoftmax(x, a)));
      arr(s).forEach((v, i) => expect(v).toBeCloseTo(ls[i], 12));
    }), { ...FC, numRuns: 30 });
  });

  it('cumsum equals a running sum along the axis', () => {
    fc.assert(fc.property(shapeArb(1), seedArb, (shape, seed) => {
      const r = new Rng(seed);
      const v = values(r, shape);
      const a = r.int(0, shape.length);
      const y = arr(g.cumsum(f64(v, shape), a));
      const st = stridesOf(shape);
      y.forEach((val, i) => {
        const idx = unravel(i, shape);
        let s = 0;
        for (let j = 0; j <= idx[a]; j++) s += v[i + (j - idx[a]) * st[a]];
        expect(val).toBeCloseTo(s, 12);
      });
    }), { ...FC, numRuns: 30 });
  });
});

describe('slice, concat, stack, gather, take', () => {
  it('slicing a tensor into pieces along an axis and concatenating them is the identity', () => {
    fc.assert(fc.property(shapeArb(1), seedArb, (shape, seed) => {
      const r = new Rng(seed);
      const v = values(r, shape);
      const x = f64(v, shape);
      const a = r.int(0, shape.length);
      const cuts = [0];
      while (cuts[cuts.length - 1] < shape[a]) cuts.push(r.int(cuts[cuts.length - 1] + 1, shape[a] + 1));
      const pieces = cuts.slice(1).map((end, i) => g.narrow(x, a, cuts[i], end - cuts[i]));
      const y = g.concat(pieces, a);
      expect(y.shape).toEqual(shape);
      expect(arr(y)).toEqual(Array.from(v));
    }), FC);
  });

  it('slice values equal an explicit index map; size -1 means to the end', () => {
    fc.assert(fc.property(shapeArb(1), seedArb, (shape, seed) => {
      const r = new Rng(seed);
      const v = values(r, shape);
      const begin = shape.map((n) => r.int(0, n));
      const size = shape.map((n, d) => (r.next() < 0.3 ? -1 : r.int(0, n - begin[d] + 1)));
      const real = size.map((s, d) => (s === -1 ? shape[d] - begin[d] : s));
      const y = g.slice(f64(v, shape), begin, size);
      expect(y.shape).toEqual(real);
      const st = stridesOf(shape);
      arr(y).forEach((val, i) => {
        const idx = unravel(i, real);
        expect(val).toBe(v[idx.reduce((acc, k, d) => acc + (k + begin[d]) * st[d], 0)]);
      });
    }), FC);
  });

  it('stack equals unsqueeze + concat; gather and take follow their index maps', () => {
    const a = f64([1, 2, 3, 4], [2, 2]), b = f64([5, 6, 7, 8], [2, 2]);
    expect(g.stack([a, b], 0).toArray()).toEqual([[[1, 2], [3, 4]], [[5, 6], [7, 8]]]);
    expect(g.stack([a, b], -1).toArray()).toEqual([[[1, 5], [2, 6]], [[3, 7], [4, 8]]]);
    const idx = g.tensor([[1, 1, 0], [0, 1, 0]], null, { dtype: 'int32' });
    expect(g.gather(a, idx, 1).toArray()).toEqual([[2, 2, 1], [3, 4, 3]]);
    const x = f64([0, 1, 2, 10, 11, 12], [2, 3]);
    expect(g.take(x, g.tensor([[2, 0]], null, { dtype: 'int32' }), 1).toArray()).toEqual([[[2, 0]], [[12, 10]]]);
    expect(g.take(x, g.tensor([1, 1, 0], null, { dtype: 'int32' }), 0).toArray()).toEqual([[10, 11, 12], [10, 11, 12], [0, 1, 2]]);
  });
});

describe('argmax', () => {
  it('returns the first index of the maximum (ties), along any axis, with keepDims', () => {
    const x = f64([1, 3, 3, 2, 7, 7, 7, 0], [2, 4]);
    expect(arr(g.argmax(x))).toEqual([1, 0]);
    expect(g.argmax(x).dtype).toBe('int32');
    expect(g.argmax(x, -1, true).shape).toEqual([2, 1]);
    const y = f64([5, 1, 5, 9, 5, 9], [3, 2]);
    expect(arr(g.argmax(y, 0))).toEqual([0, 1]);
    expect(arr(g.argmin(f64([2, 0, 0, 1], [4])))).toEqual([1]);
  });

  it('equals an explicit first-max scan on random data with many ties', () => {
    fc.assert(fc.property(shapeArb(1), seedArb, (shape, seed) => {
      const r = new Rng(seed);
      const v = fill(r, numel(shape), (q) => q.int(0, 3)); // small alphabet: ties everywhere
      const a = r.int(0, shape.length);
      const y = arr(g.argmax(f64(v, shape), a));
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
  it('tidy disposes intermediates; live tensor and buffer counts return to baseline', () => {
    const base = g.memory();
    const out = g.tidy(() => {
      const a = g.ones([3, 4]);
      const b = g.exp(g.mul(a, 2));
      const c = g.sum(g.add(b, a), 1);
      return g.mul(c, 0.5);
    });
    const mid = g.memory();
    expect(mid.liveTensors).toBe(base.liveTensors + 1);
    expect(mid.liveBuffers).toBe(base.liveBuffers + 1);
    expect(arr(out)[0]).toBeCloseTo(2 * (Math.exp(2) + 1), 5);
    out.dispose();
    const end = g.memory();
    expect(end.liveTensors).toBe(base.liveTensors);
    expect(end.liveBuffers).toBe(base.liveBuffers);
    expect(end.liveBytes).toBe(base.liveBytes);
  });

  it('tidy keeps tensors returned in arrays/objects and kept ones; nested scopes hand survivors up', () => {
    const base = g.memory().liveTensors;
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
    expect(g.memory().liveTensors).toBe(base + 3);
    expect(arr(res[0])).toEqual([3, 3]);
    res.forEach((t) => t.dispose());
    kept!.dispose();
    expect(g.memory().liveTensors).toBe(base);
  });

  it('tidy disposes even when fn throws; backward inside tidy keeps leaf grads', () => {
    const base = g.memory().liveTensors;
    expect(() => g.tidy(() => { g.ones([3]); throw new Error('boom'); })).toThrow('boom');
    expect(g.memory().liveTensors).toBe(base);
    const x = f64([1, 2], [2], true);
    g.tidy(() => { g.sum(g.mul(x, x)).backward(); });
    expect(arr(x.grad!)).toEqual([2, 4]);
  });

  it('reshape shares the buffer; disposing one view keeps the other readable', () => {
    const base = g.memory();
    const x = g.tensor([1, 2, 3, 4], [4]);
    const y = g.reshape(x, [2, 2]);
    expect(g.memory().liveBuffers).toBe(base.liveBuffers + 1);
    x.dispose();
    expect(y.toArray()).toEqual([[1, 2], [3, 4]]);
    y.dispose();
    expect(g.memory().liveBuffers).toBe(base.liveBuffers);
  });

  it('detach shares values but cuts the graph', () => {
    const x = f64([1, 2, 3], [3], true);
    const h = g.mul(x, 2);
    const d = h.detach();
    expect(d.buf).toBe(h.buf);
    expect(d.requiresGrad).toBe(false);
    expect(d.node).toBeNull();
    expect(arr(d)).toEqual([2, 4, 6]);
    g.sum(g.mul(h, d)).backward(); // d/dx sum(2x * const) = 2 * const
    expect(arr(x.grad!)).toEqual([4, 8, 12]);
    expect(() => g.sum(d).backward()).toThrow(/does not require grad/);
  });
});

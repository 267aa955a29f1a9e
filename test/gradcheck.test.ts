// Every differentiable op on every device: backward() agrees with float64 central finite differences on
// fast-check-generated shapes (broadcasting, size-1 axes, 0-d) on the CPU, and with the CPU elsewhere;
// plus tape properties.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import * as g from '../index.ts';
import type { Tensor } from '../index.ts';
import { Rng, gradcheck, gradcheckOn, fill, numel, f64, arr, type GradInput, type GradcheckOptions } from './helpers.ts';
import { DEVICES, profile, read, expectNear, cpuLike } from './devices.ts';

const FC = { seed: 20240611, numRuns: 20 };
const dimArb = fc.integer({ min: 1, max: 4 });
const shapeArb = (minRank = 0, maxRank = 3) => fc.array(dimArb, { minLength: minRank, maxLength: maxRank });
const seedArb = fc.integer({ min: 0, max: 0x7fffffff });

type Gen = (r: Rng) => number;
const U = (lo: number, hi: number): Gen => (r) => r.uniform(lo, hi);
const awayFromZero = (lo: number, hi: number): Gen => (r) => r.sign() * r.uniform(lo, hi);
// |a - b| >= 0.4 for any a from gridA and b from gridB (kinks of maximum/minimum/clamp avoided)
const gridA: Gen = (r) => r.int(-3, 4) + 0.25 + r.uniform(-0.05, 0.05);
const gridB: Gen = (r) => r.int(-3, 4) - 0.25 + r.uniform(-0.05, 0.05);

const inp = (r: Rng, shape: number[], gen: Gen, extra: Partial<GradInput> = {}): GradInput => ({ shape, values: fill(r, numel(shape), gen), ...extra });

/** a shape that broadcasts to `out`: some leading axes dropped, some axes set to 1 */
function partner(r: Rng, out: number[]): number[] {
  const drop = r.int(0, out.length + 1);
  return out.slice(drop).map((d) => (r.next() < 0.3 ? 1 : d));
}

/** distinct values with gaps >= 0.08 in random order (no ties for max/min) */
function distinct(r: Rng, n: number): Float64Array {
  const order = r.shuffle([...Array(n).keys()]);
  return Float64Array.from(order, (k) => (k - n / 2) * 0.1 + r.uniform(-0.01, 0.01));
}

function randomAxes(r: Rng, rank: number): number[] | number | null | undefined {
  const c = r.int(0, 4);
  if (c === 0) return null;
  if (c === 1) return undefined;
  if (rank === 0) return [];
  if (c === 2) { const a = r.int(0, rank); return r.next() < 0.5 ? a : a - rank; }
  return [...Array(rank).keys()].filter(() => r.next() < 0.5).map((a) => (r.next() < 0.5 ? a : a - rank));
}

// One suite per device: on the CPU every gradient is checked against float64 finite differences; on
// other devices (float32) values and gradients are checked against the CPU's float64 ones (gradcheckOn).
describe.each(DEVICES)('on %s', (device) => {
  const P = profile(device);
  const G = (f: (...xs: Tensor[]) => Tensor | Tensor[], inputs: GradInput[], opts: GradcheckOptions = {}) => gradcheckOn(device, f, inputs, opts);
  /** a tensor on this device in its floating dtype */
  const T = (v: Parameters<typeof g.tensor>[0], shape: number[] | null, requiresGrad = false) => g.tensor(v, shape, { dtype: P.dtype, device, requiresGrad });
  // fewer runs on devices other than the CPU: their reference is the CPU run, which covers the shapes
  const check = (name: string, prop: fc.IAsyncProperty<never> | fc.IAsyncProperty<unknown>, numRuns = FC.numRuns): void => {
    it(name, () => fc.assert(prop as fc.IAsyncProperty<unknown>, { seed: FC.seed, numRuns: cpuLike(device) ? numRuns : Math.max(2, Math.ceil(numRuns / 8)) }));
  };

  describe('gradcheck: unary', () => {
    const unary: [string, (x: Tensor) => Tensor, Gen][] = [
      ['neg', g.neg, U(-2, 2)],
      ['exp', g.exp, U(-2, 2)],
      ['log', g.log, U(0.2, 3)],
      ['sqrt', g.sqrt, U(0.2, 3)],
      ['abs', g.abs, awayFromZero(0.1, 2)],
      ['relu', g.relu, awayFromZero(0.1, 2)],
      ['sigmoid', g.sigmoid, U(-4, 4)],
      ['tanh', g.tanh, U(-2, 2)],
      ['square', g.square, U(-2, 2)],
      ['reciprocal', g.reciprocal, awayFromZero(0.5, 2)],
      ['cos', g.cos, U(-3, 3)],
      ['sin', g.sin, U(-3, 3)],
    ];
    for (const [name, op, gen] of unary) {
      check(name, fc.asyncProperty(shapeArb(), seedArb, async (shape, seed) => {
        await G(op, [inp(new Rng(seed), shape, gen)], { label: name, seed });
      }));
    }
  });

  describe('gradcheck: binary with broadcasting', () => {
    const binary: [string, (a: Tensor, b: Tensor) => Tensor, Gen, Gen][] = [
      ['add', g.add, U(-2, 2), U(-2, 2)],
      ['sub', g.sub, U(-2, 2), U(-2, 2)],
      ['mul', g.mul, U(-2, 2), U(-2, 2)],
      ['div', g.div, U(-2, 2), awayFromZero(0.5, 2)],
      ['pow', g.pow, U(0.5, 2), U(-2, 2)],
      ['maximum', g.maximum, gridA, gridB],
      ['minimum', g.minimum, gridA, gridB],
    ];
    for (const [name, op, ga, gb] of binary) {
      check(name, fc.asyncProperty(shapeArb(), seedArb, async (out, seed) => {
        const r = new Rng(seed);
        const sa = partner(r, out), sb = partner(r, out);
        await G(op, [inp(r, sa, ga), inp(r, sb, gb)], { label: `${name} [${sa}] [${sb}]`, seed });
      }));
    }

    check('number operands (add/sub/mul/div/pow/maximum/minimum with a scalar)', fc.asyncProperty(shapeArb(), seedArb, async (shape, seed) => {
      const r = new Rng(seed);
      await G((x) => g.add(g.mul(3, g.sub(2, x)), g.div(x, 1.5)), [inp(r, shape, U(-2, 2))], { seed });
      await G((x) => g.pow(x, 2.5), [inp(r, shape, U(0.5, 2))], { seed });
      await G((x) => g.pow(2, x), [inp(r, shape, U(-2, 2))], { seed });
      await G((x) => g.div(1, x), [inp(r, shape, awayFromZero(0.5, 2))], { seed });
      await G((x) => g.maximum(g.minimum(x, 1), -1), [inp(r, shape, gridA)], { seed });
    }));

    check('where (cond, a, b broadcast together)', fc.asyncProperty(shapeArb(), seedArb, async (out, seed) => {
      const r = new Rng(seed);
      const sc = partner(r, out), sa = partner(r, out), sb = partner(r, out);
      const cond = fill(r, numel(sc), (q) => (q.next() < 0.5 ? 1 : 0));
      await G((c, a, b) => g.where(c, a, b), [{ shape: sc, values: cond, constant: true }, inp(r, sa, U(-2, 2)), inp(r, sb, U(-2, 2))], { seed });
      await G((c, a) => g.where(c, a, 0.5), [{ shape: sc, values: cond, constant: true }, inp(r, sa, U(-2, 2))], { seed });
      await G((c, b) => g.where(c, -1, b), [{ shape: sc, values: cond, constant: true }, inp(r, sb, U(-2, 2))], { seed });
    }));

    check('clamp (both bounds, one bound, broadcast tensor bounds)', fc.asyncProperty(shapeArb(), seedArb, async (shape, seed) => {
      const r = new Rng(seed);
      const x = inp(r, shape, gridA);
      await G((t) => g.clamp(t, -1, 1), [x], { seed });
      await G((t) => g.clamp(t, -2), [x], { seed });
      await G((t) => g.clamp(t, null, 0), [x], { seed });
      await G((t) => t.clamp(), [x], { seed });
      // a tensor lower bound (gridB: 0.4 away from x) and a number upper bound away from both grids
      const lo = inp(r, partner(r, shape), gridB);
      await G((t, l) => t.clamp(l, 2.6), [x, lo], { seed, label: `clamp [${shape}] lo [${lo.shape}]` });
      await G((t, h) => g.clamp(t, null, h), [x, lo], { seed });
    }));

    if (cpuLike(device)) {
      check('cast float64 -> float32 -> float64 (float32-exact values, h = 2^-10)', fc.asyncProperty(shapeArb(), seedArb, async (shape, seed) => {
        const r = new Rng(seed);
        const vals = fill(r, numel(shape), (q) => q.int(-4096, 4096) / 1024);
        await G((x) => g.cast(x, 'float32'), [{ shape, values: vals }], { h: 1 / 1024, seed });
        await G((x) => g.mul(g.cast(x, 'float64'), 3), [{ shape, values: vals, dtype: 'float32' }], { h: 1 / 1024, seed });
        await G((x) => g.cast(g.cast(x, 'float32'), 'float64'), [{ shape, values: vals }], { h: 1 / 1024, seed });
      }));
    }
  });

  describe('gradcheck: reductions', () => {
    const reds: [string, (x: Tensor, axes: number | number[] | null | undefined, keep: boolean) => Tensor][] = [
      ['sum', (x, a, k) => g.sum(x, a, k)],
      ['mean', (x, a, k) => g.mean(x, a, k)],
      ['max', (x, a, k) => g.max(x, a, k)],
      ['min', (x, a, k) => g.min(x, a, k)],
    ];
    for (const [name, op] of reds) {
      check(`${name} over random axis sets, keepDims`, fc.asyncProperty(shapeArb(), seedArb, fc.boolean(), async (shape, seed, keep) => {
        const r = new Rng(seed);
        const axes = randomAxes(r, shape.length);
        await G((x) => op(x, axes, keep), [{ shape, values: distinct(r, numel(shape)) }], { label: `${name} [${shape}] axes ${JSON.stringify(axes)}`, seed });
      }));
    }

    it('max/min split the gradient evenly between tied maxima (PyTorch amax semantics)', async () => {
      const x = T([1, 3, 3, 2, 0, -1], [2, 3], true);
      g.sum(g.mul(g.max(x, 1), T([2, 5], [2]))).backward();
      expect(await read(x.grad!)).toEqual([0, 1, 1, 5, 0, 0]);
      const y = T([1, -3, -3, 2], [4], true);
      g.min(y).backward();
      expect(await read(y.grad!)).toEqual([0, 0.5, 0.5, 0]);
    });

    check('logsumexp (single axis, axis list, keepDims)', fc.asyncProperty(shapeArb(1), seedArb, fc.boolean(), async (shape, seed, keep) => {
      const r = new Rng(seed);
      const rank = shape.length;
      const a = r.int(-rank, rank);
      await G((x) => g.logsumexp(x, a, keep), [inp(r, shape, U(-3, 3))], { seed });
      const list = [...Array(rank).keys()].filter(() => r.next() < 0.6);
      if (list.length) await G((x) => g.logsumexp(x, list, keep), [inp(r, shape, U(-3, 3))], { seed });
    }));

    check('softmax and logSoftmax along a random axis', fc.asyncProperty(shapeArb(1), seedArb, async (shape, seed) => {
      const r = new Rng(seed);
      const a = r.int(-shape.length, shape.length);
      await G((x) => g.softmax(x, a), [inp(r, shape, U(-3, 3))], { seed });
      await G((x) => g.logSoftmax(x, a), [inp(r, shape, U(-3, 3))], { seed });
    }));

    check('cumsum along a random axis', fc.asyncProperty(shapeArb(1), seedArb, async (shape, seed) => {
      const r = new Rng(seed);
      const a = r.int(-shape.length, shape.length);
      await G((x) => g.cumsum(x, a), [inp(r, shape, U(-2, 2))], { seed });
    }));
  });

  describe('gradcheck: matmul and linear', () => {
    check('matmul with batched and broadcast batch axes', fc.asyncProperty(shapeArb(0, 2), seedArb, async (batch, seed) => {
      const r = new Rng(seed);
      const m = r.int(1, 5), k = r.int(1, 5), n = r.int(1, 5);
      const ba = partner(r, batch), bb = partner(r, batch);
      await G(g.matmul, [inp(r, [...ba, m, k], U(-1, 1)), inp(r, [...bb, k, n], U(-1, 1))], { label: `matmul [${ba},${m},${k}] [${bb},${k},${n}]`, seed });
    }), 30);

    check('matmul with vectors (vec-vec, vec-mat, mat-vec, batched)', fc.asyncProperty(shapeArb(0, 2), seedArb, async (batch, seed) => {
      const r = new Rng(seed);
      const m = r.int(1, 5), k = r.int(1, 5), n = r.int(1, 5);
      await G(g.matmul, [inp(r, [k], U(-1, 1)), inp(r, [k], U(-1, 1))], { seed });
      await G(g.matmul, [inp(r, [k], U(-1, 1)), inp(r, [...batch, k, n], U(-1, 1))], { seed });
      await G(g.matmul, [inp(r, [...batch, m, k], U(-1, 1)), inp(r, [k], U(-1, 1))], { seed });
    }));

    check('matmul: only one side requires grad', fc.asyncProperty(shapeArb(0, 2), seedArb, async (batch, seed) => {
      const r = new Rng(seed);
      const m = r.int(1, 4), k = r.int(1, 4), n = r.int(1, 4);
      const bb = partner(r, batch);
      await G(g.matmul, [inp(r, [...batch, m, k], U(-1, 1), { constant: true }), inp(r, [...bb, k, n], U(-1, 1))], { seed });
      await G(g.matmul, [inp(r, [...batch, m, k], U(-1, 1)), inp(r, [...bb, k, n], U(-1, 1), { constant: true })], { seed });
    }));

    check('linear (leading axes, with and without bias, vector input)', fc.asyncProperty(shapeArb(0, 2), seedArb, fc.boolean(), async (lead, seed, withBias) => {
      const r = new Rng(seed);
      const inn = r.int(1, 5), out = r.int(1, 5);
      const x = inp(r, [...lead, inn], U(-1, 1)), w = inp(r, [out, inn], U(-1, 1)), b = inp(r, [out], U(-1, 1));
      if (withBias) await G((a, ww, bb) => g.linear(a, ww, bb), [x, w, b], { seed });
      else await G((a, ww) => g.linear(a, ww), [x, w], { seed });
    }));

    check('linearRelu / linear(..., act) (fused relu; pre-activations kept away from the kink)', fc.asyncProperty(shapeArb(0, 2), seedArb, fc.boolean(), async (lead, seed, withBias) => {
      const r = new Rng(seed);
      const inn = r.int(1, 5), out = r.int(1, 5);
      const rows = numel(lead);
      for (let attempt = 0; ; attempt++) {
        const x = inp(r, [...lead, inn], U(-1, 1)), w = inp(r, [out, inn], U(-1, 1)), b = inp(r, [out], U(-1, 1));
        let near = false;
        for (let i = 0; i < rows; i++) for (let o = 0; o < out; o++) {
          let z = withBias ? b.values[o] : 0;
          for (let j = 0; j < inn; j++) z += x.values[i * inn + j] * w.values[o * inn + j];
          if (Math.abs(z) < 0.02) near = true;
        }
        if (near && attempt < 50) continue;
        if (withBias) await G((a, ww, bb) => g.linearRelu(a, ww, bb), [x, w, b], { seed, label: `linearRelu [${lead},${inn}] out ${out}` });
        else await G((a, ww) => g.linear(a, ww, null, 'relu'), [x, w], { seed, label: `linear relu [${lead},${inn}] out ${out}` });
        return;
      }
    }), 30);


  });

  describe('gradcheck: shape ops', () => {
    check('reshape (including -1)', fc.asyncProperty(shapeArb(), seedArb, async (shape, seed) => {
      const r = new Rng(seed);
      const factors: number[] = [];
      for (let d of shape) for (let p = 2; d > 1; p++) while (d % p === 0) { factors.push(p); d /= p; }
      r.shuffle(factors);
      const target: number[] = [];
      for (const f of factors) if (target.length && r.next() < 0.5) target[target.length - 1] *= f; else target.push(f);
      if (r.next() < 0.3) target.splice(r.int(0, target.length + 1), 0, 1);
      const t2 = target.slice();
      if (t2.length && r.next() < 0.5) t2[r.int(0, t2.length)] = -1;
      await G((x) => g.reshape(x, t2), [inp(r, shape, U(-2, 2))], { label: `reshape [${shape}] -> [${t2}]`, seed });
    }));

    check('permute and transpose', fc.asyncProperty(shapeArb(1), seedArb, async (shape, seed) => {
      const r = new Rng(seed);
      const perm = r.shuffle([...shape.keys()]).map((d) => (r.next() < 0.3 ? d - shape.length : d));
      await G((x) => g.permute(x, perm), [inp(r, shape, U(-2, 2))], { seed });
      if (shape.length >= 2) {
        const a = r.int(-shape.length, shape.length), b = r.int(-shape.length, shape.length);
        await G((x) => g.transpose(x, a, b), [inp(r, shape, U(-2, 2))], { seed });
        await G((x) => x.transpose(), [inp(r, shape, U(-2, 2))], { seed });
      }
    }));

    check('expand', fc.asyncProperty(shapeArb(), seedArb, async (out, seed) => {
      const r = new Rng(seed);
      const src = partner(r, out);
      await G((x) => g.expand(x, out), [inp(r, src, U(-2, 2))], { label: `expand [${src}] -> [${out}]`, seed });
      await G((x) => g.mul(g.clone(x), x.clone()), [inp(r, src, U(-2, 2))], { label: `clone [${src}]`, seed });
    }));

    check('unsqueeze and squeeze', fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 4 }), seedArb, async (shape, seed) => {
      const r = new Rng(seed);
      const ax = r.int(-shape.length - 1, shape.length + 1);
      await G((x) => g.unsqueeze(x, ax), [inp(r, shape, U(-2, 2))], { seed });
      await G((x) => g.squeeze(x), [inp(r, shape, U(-2, 2))], { seed });
      const ones = shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
      if (ones.length) {
        const a = ones[r.int(0, ones.length)];
        await G((x) => g.squeeze(x, a), [inp(r, shape, U(-2, 2))], { seed });
      }
    }));

    check('slice and narrow', fc.asyncProperty(shapeArb(1), seedArb, async (shape, seed) => {
      const r = new Rng(seed);
      const begin = shape.map((n) => r.int(0, n));
      const size = shape.map((n, d) => (r.next() < 0.25 ? -1 : r.int(0, n - begin[d] + 1)));
      await G((x) => g.slice(x, begin, size), [inp(r, shape, U(-2, 2))], { label: `slice [${shape}] ${begin} ${size}`, seed });
      const a = r.int(0, shape.length), st = r.int(0, shape[a]), len = r.int(1, shape[a] - st + 1);
      await G((x) => g.narrow(x, a, st, len), [inp(r, shape, U(-2, 2))], { seed });
    }));

    check('concat and stack', fc.asyncProperty(shapeArb(1), seedArb, fc.integer({ min: 1, max: 3 }), async (shape, seed, count) => {
      const r = new Rng(seed);
      const a = r.int(-shape.length, shape.length);
      const an = a < 0 ? a + shape.length : a;
      const parts = Array.from({ length: count }, () => {
        const s = shape.slice();
        s[an] = r.int(1, 4);
        return inp(r, s, U(-2, 2));
      });
      await G((...xs) => g.concat(xs, a), parts, { seed });
      const sa = r.int(-shape.length - 1, shape.length + 1);
      await G((...xs) => g.stack(xs, sa), Array.from({ length: count }, () => inp(r, shape, U(-2, 2))), { seed });
    }));

    check('gather (repeated indices accumulate)', fc.asyncProperty(shapeArb(1), seedArb, async (shape, seed) => {
      const r = new Rng(seed);
      const a = r.int(0, shape.length);
      const is = shape.slice();
      is[a] = r.int(1, 6);
      const idx = fill(r, numel(is), (q) => q.int(0, shape[a]));
      await G((x, i) => g.gather(x, i, a), [inp(r, shape, U(-2, 2)), { shape: is, values: idx, dtype: 'int32', constant: true }], { seed });
    }));

    check('take with an index tensor of any shape', fc.asyncProperty(shapeArb(1), shapeArb(0, 2), seedArb, async (shape, ishape, seed) => {
      const r = new Rng(seed);
      const a = r.int(0, shape.length);
      const idx = fill(r, numel(ishape), (q) => q.int(0, shape[a]));
      await G((x, i) => g.take(x, i, a), [inp(r, shape, U(-2, 2)), { shape: ishape, values: idx, dtype: 'int32', constant: true }], { seed });
    }));
  });

  describe('gradcheck: losses', () => {
    const reductions = ['mean', 'sum', 'none'] as const;
    check('binaryCrossEntropy (p and target)', fc.asyncProperty(shapeArb(), seedArb, fc.constantFrom(...reductions), async (shape, seed, red) => {
      const r = new Rng(seed);
      await G((p, t) => g.binaryCrossEntropy(p, t, red), [inp(r, shape, U(0.05, 0.95)), inp(r, shape, U(0, 1))], { seed });
    }));

    check('binaryCrossEntropyWithLogits (logits and target)', fc.asyncProperty(shapeArb(), seedArb, fc.constantFrom(...reductions), async (shape, seed, red) => {
      const r = new Rng(seed);
      await G((z, t) => g.binaryCrossEntropyWithLogits(z, t, red), [inp(r, shape, U(-4, 4)), inp(r, shape, U(0, 1))], { seed });
    }));

    it('binaryCrossEntropyWithLogits is smooth at z = 0: gradient sigmoid(z) - t', async () => {
      // the loss is analytic everywhere; a composition through relu/abs must not pick subgradients at 0
      await G((z, t) => g.binaryCrossEntropyWithLogits(z, t, 'sum'), [{ shape: [3], values: [0, 0, 0] }, { shape: [3], values: [1, 0, 0.3] }]);
      const z = g.zeros([3], { dtype: P.dtype, device, requiresGrad: true });
      g.binaryCrossEntropyWithLogits(z, T([1, 0, 0.3], [3]), 'sum').backward();
      expectNear(await read(z.grad!), [-0.5, 0.5, 0.5 - P.round(0.3)], P.rtol, 'sigmoid(0) - t');
    });

    check('crossEntropy (logits; int32 targets)', fc.asyncProperty(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 5 }), seedArb, fc.constantFrom(...reductions), async (N, C, seed, red) => {
      const r = new Rng(seed);
      const t = fill(r, N, (q) => q.int(0, C));
      await G((l, tt) => g.crossEntropy(l, tt, red), [inp(r, [N, C], U(-3, 3)), { shape: [N], values: t, dtype: 'int32', constant: true }], { seed });
    }));
  });

  describe('gradcheck: customVjp', () => {
    // f(x, y) = [x * y, sin(x)] with a hand-written backward
    const f = g.customVjp<{ x: Tensor; y: Tensor }>({
      name: 'mulSin',
      forward: ([x, y]) => ({ outputs: [g.mul(x, y), g.sin(x)], residuals: { x, y } }),
      backward: ({ x, y }, [ga, gb]) => {
        let gx: Tensor | null = null, gy: Tensor | null = null;
        if (ga) { gx = g.mul(ga, y); gy = g.mul(ga, x); }
        if (gb) gx = gx ? g.add(gx, g.mul(gb, g.cos(x))) : g.mul(gb, g.cos(x));
        return [gx, gy];
      },
    });

    check('two outputs, both projected', fc.asyncProperty(shapeArb(), seedArb, async (shape, seed) => {
      const r = new Rng(seed);
      await G((x, y) => f(x, y), [inp(r, shape, U(-2, 2)), inp(r, shape, U(-2, 2))], { seed });
    }));

    it('only one output used: the other cotangent is null', async () => {
      const x = T([0.3, -1.2], [2], true), y = T([2, 5], [2], true);
      const [, s] = f(x, y);
      g.sum(s).backward();
      expectNear(await read(x.grad!), [Math.cos(P.round(0.3)), Math.cos(P.round(-1.2))], cpuLike(device) ? 0 : 1e-5, 'cos');
      expect(y.grad).toBeNull();
    });

    it('customVjp composes with other ops on both sides', async () => {
      await G((x, y) => g.tanh(f(g.exp(x), g.square(y))[0]), [{ shape: [2, 3], values: fill(new Rng(5), 6, U(-1, 1)) }, { shape: [2, 3], values: [0.5, -0.7, 1.1, 0.2, 1.3, -0.4] }]);
    });
  });

  describe('linearRelu gradient at special values', () => {
    it('passes the cotangent only where the output is positive: 0 where it is 0 or NaN, even for an infinite cotangent', async () => {
      // w = [[1], [-1], [nan]], x = [[2]]: outputs 2, relu(-2) = 0, NaN
      const x = T([[2]], null, true);
      const w = T([[1], [-1], [NaN]], null, true);
      const y = g.linearRelu(x, w);
      y.backward(T([[3, Infinity, 5]], null));
      // PyTorch's threshold_backward gives the same: where(y > 0, g, 0)
      expect(await read(w.grad!)).toEqual([6, 0, 0]);
      expect(Number.isNaN((await read(x.grad!))[0])).toBe(true); // 3*1 + 0*(-1) + 0*NaN: the NaN weight propagates
    });
  });
});

describe('CPU: fused linear', () => {
  it('linearRelu equals relu(linear) in value and gradient (float64 CPU)', () => {
    const r = new Rng(7);
    const x = g.tensor(Float64Array.from({ length: 12 }, () => r.uniform(-1, 1)), [4, 3], { dtype: 'float64', requiresGrad: true });
    const w = g.tensor(Float64Array.from({ length: 15 }, () => r.uniform(-1, 1)), [5, 3], { dtype: 'float64', requiresGrad: true });
    const b = g.tensor(Float64Array.from({ length: 5 }, () => r.uniform(-1, 1)), [5], { dtype: 'float64', requiresGrad: true });
    const up = g.tensor(Float64Array.from({ length: 20 }, () => r.uniform(-1, 1)), [4, 5], { dtype: 'float64' });
    const run = (f: () => Tensor) => {
      const y = f();
      g.sum(g.mul(y, up)).backward();
      const res = [y, x.grad!, w.grad!, b.grad!].map((t) => Array.from(t.dataSync()));
      x.grad = null; w.grad = null; b.grad = null;
      return res;
    };
    const fused = run(() => g.linearRelu(x, w, b));
    const composed = run(() => g.relu(g.linear(x, w, b)));
    for (let i = 0; i < fused.length; i++) expect(fused[i]).toEqual(composed[i]);
  });
  it("the CPU's matmulBiasAct equals matmul, add and relu bit for bit (float32, odd sizes)", () => {
    const be = g.getBackend('cpu');
    const r = new Rng(11);
    for (const [m, n, k] of [[1, 1, 1], [3, 5, 7], [17, 33, 9], [100, 30, 64]]) {
      const a = g.tensor(Float32Array.from({ length: m * k }, () => r.uniform(-2, 2)), [m, k]);
      const w = g.tensor(Float32Array.from({ length: n * k }, () => r.uniform(-2, 2)), [n, k]);
      const b = g.tensor(Float32Array.from({ length: n }, () => r.uniform(-2, 2)), [n]);
      const args = { a: a.buf, b: w.buf, batch: 1, m, n, k, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0 };
      for (const act of ['relu', 'none'] as const) {
        for (const bias of [b, null]) {
          const got = be.readSync!(be.matmulBiasAct!(args, bias ? bias.buf : null, act));
          let want = be.matmul(args);
          const view = (buf: typeof want, strides: number[]) => ({ buf, strides, offset: 0 });
          if (bias) want = be.binary('add', view(want, [n, 1]), view(bias.buf, [0, 1]), [m, n], 'float32');
          if (act === 'relu') want = be.unary('relu', view(want, [n, 1]), [m, n], 'float32');
          expect(Array.from(got), `${m}x${n}x${k} ${act} bias=${!!bias}`).toEqual(Array.from(be.readSync!(want)));
        }
      }
    }
  });
});

describe('tape properties', () => {
  it('fan-out accumulates (x used several times, an intermediate used twice)', () => {
    const vals = [0.3, -1.1, 2.0];
    const x = f64(vals, [3], true);
    const a = g.exp(x);
    const loss = g.sum(g.add(g.add(g.mul(x, x), g.sin(x)), g.add(g.mul(a, a), a)));
    loss.backward();
    const got = arr(x.grad!);
    vals.forEach((v, i) => expect(got[i]).toBeCloseTo(2 * v + Math.cos(v) + 2 * Math.exp(2 * v) + Math.exp(v), 12));
    gradcheck((t) => { const e = g.exp(t); return g.add(g.mul(t, t), g.mul(e, g.add(e, t))); }, [{ shape: [3], values: vals }]);
  });

  it('a deep chain of 20k ops does not overflow the stack on backward', () => {
    const x = f64([1, -2], [2], true);
    let y = x;
    for (let i = 0; i < 20000; i++) y = g.mul(y, 1.0001);
    g.sum(y).backward();
    const expected = Math.pow(1.0001, 20000);
    for (const v of arr(x.grad!)) expect(Math.abs(v - expected) / expected).toBeLessThan(1e-10);
  });

  it('gradients accumulate on leaves across two backward() calls', () => {
    const x = f64([1, 2, 3], [3], true);
    g.sum(g.mul(x, x)).backward();
    expect(arr(x.grad!)).toEqual([2, 4, 6]);
    g.sum(g.mul(x, 3)).backward();
    expect(arr(x.grad!)).toEqual([5, 7, 9]);
  });

  it('a second backward through a freed graph raises', () => {
    const x = f64([1, 2], [2], true);
    const loss = g.sum(g.exp(x));
    loss.backward();
    const before = arr(x.grad!);
    expect(() => loss.backward()).toThrow(/freed|already/);
    expect(arr(x.grad!)).toEqual(before);
  });

  it('backward through an intermediate whose graph was freed raises instead of silently treating it as a leaf', () => {
    const x = f64([1, 2], [2], true);
    const h = g.exp(x);
    g.sum(h).backward();
    expect(() => g.sum(g.mul(h, 2)).backward()).toThrow(/freed|already/);
  });

  it('noGrad records nothing; detach cuts the graph', () => {
    const x = f64([1, 2], [2], true);
    const y = g.noGrad(() => g.mul(x, x));
    expect(y.requiresGrad).toBe(false);
    const z = g.sum(g.mul(x, x.detach()));
    z.backward();
    expect(arr(x.grad!)).toEqual([1, 2]);
  });
});


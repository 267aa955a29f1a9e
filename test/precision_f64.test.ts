// float64 elementwise ops on the CPU against an independent arbitrary-precision reference (decimal.js, 60
// significant digits, inputs converted exactly from their binary value): every op of the shared elementwise
// language within a few ulp over |x| from 1e-12 to 20. Also PyTorch's gradient conventions for BCE at p = 0 / 1
// and for maximum / minimum at ties, and expm1 / log1p / tanh in float32 on the CPU against the same reference.
import { describe, it, expect } from 'vitest';
import { Decimal } from 'decimal.js';
import * as g from '../index.ts';
import { UNARY, BINARY } from '../engine/elementwise.ts';

const D = Decimal.clone({ precision: 60 });
const Exact = Decimal.clone({ precision: 200 }); // for the exact binary -> decimal conversion

/** the exact value of a double as a decimal */
function exact(x: number): Decimal {
  if (x === 0) return new D(0);
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, x);
  const bits = dv.getBigUint64(0);
  const e = Number((bits >> 52n) & 0x7ffn), frac = bits & ((1n << 52n) - 1n);
  const mant = e === 0 ? frac : frac | (1n << 52n);
  const v = new Exact(mant.toString()).times(new Exact(2).pow((e === 0 ? 1 : e) - 1075));
  return new D(x < 0 ? v.neg() : v);
}

/** distance of `got` from the reference in units of the last place of the reference's float64 (or float32) */
function ulps(got: number, ref: Decimal, bits: 53 | 24 = 53): number {
  const r = ref.toNumber();
  if (ref.isZero() || r === 0) return got === 0 ? 0 : Infinity;
  if (!Number.isFinite(got)) return Infinity;
  const exp2 = Math.floor(Math.log2(Math.abs(r)));
  // log2 may be off by one at powers of two: take the exponent whose binade contains |r|
  const e = 2 ** exp2 > Math.abs(r) ? exp2 - 1 : 2 ** (exp2 + 1) <= Math.abs(r) ? exp2 + 1 : exp2;
  const ulp = new D(2).pow(e - (bits - 1));
  return exact(got).minus(ref).abs().div(ulp).toNumber();
}

// the grid: +-10^t for t from -12 to log10(20), 120 points a side, with a few mantissa bits scrambled
const mags = Array.from({ length: 120 }, (_, i) => 10 ** (-12 + (i / 119) * (12 + Math.log10(20))) * (1 + ((i * 0.6180339887) % 1) * 1e-3));
const grid = [...mags, ...mags.map((x) => -x)];

const sig = (x: Decimal) => new D(1).div(new D(1).plus(x.neg().exp()));
const logSafe = (x: Decimal) => (x.lte(0) ? null : x.ln());
// reference of every unary op of the language (null: outside the domain, skipped); a new op without one fails
const REF: Record<string, (x: Decimal) => Decimal | null> = {
  neg: (x) => x.neg(),
  exp: (x) => x.exp(),
  expm1: (x) => x.exp().minus(1),
  log: logSafe,
  log1p: (x) => (x.lte(-1) ? null : x.plus(1).ln()),
  sqrt: (x) => (x.lt(0) ? null : x.sqrt()),
  abs: (x) => x.abs(),
  relu: (x) => (x.gt(0) ? x : new D(0)),
  sigmoid: sig,
  tanh: (x) => x.tanh(),
  softplus: (x) => x.exp().plus(1).ln(),
  sign: (x) => new D(x.isZero() ? 0 : x.isNeg() ? -1 : 1),
  recip: (x) => new D(1).div(x),
  floor: (x) => x.floor(),
  cos: (x) => x.cos(),
  sin: (x) => x.sin(),
  square: (x) => x.times(x),
  step: (x) => new D(x.gt(0) ? 1 : 0),
  isfinite: () => new D(1),
};

/** the op applied through the engine's public path (the backend's compiled expression) */
function run(op: string, xs: number[], dtype: 'float64' | 'float32' = 'float64'): Float64Array {
  const x = g.tensor(dtype === 'float64' ? Float64Array.from(xs) : Float32Array.from(xs), [xs.length], { dtype });
  const be = x.backend;
  const buf = be.unary(op as never, x.viewFor(x.shape), x.shape, dtype);
  const out = Float64Array.from(be.readSync!(buf));
  be.release(buf);
  x.dispose();
  return out;
}

describe('float64 elementwise precision against decimal.js', () => {
  it('has a reference for every unary op of the language', () => {
    expect(Object.keys(UNARY).filter((k) => !(k in REF))).toEqual([]);
  });

  it('every unary op within 2 ulp over |x| in [1e-12, 20]', () => {
    const worst: Record<string, number> = {};
    for (const op of Object.keys(UNARY)) {
      const got = run(op, grid);
      let w = 0;
      grid.forEach((x, i) => {
        const ref = REF[op](exact(x));
        if (ref === null) return;
        const e = ulps(got[i], ref);
        if (e > w) w = e;
      });
      worst[op] = Number(w.toFixed(3));
    }
    const bad = Object.entries(worst).filter(([, w]) => !(w <= 2));
    expect(bad, JSON.stringify(worst)).toEqual([]);
  });

  // every binary op against the reference, a over the grid, b from a few values; bceLogitsGrad is sigmoid(a) - b
  // (PyTorch's formula too): measured with b = 0, since for b near sigmoid(a) any formula on rounded inputs cancels
  const bs = [0, 0.3, 1, -2.5, 3];
  const cmp = (f: (a: Decimal, b: Decimal) => boolean) => (a: Decimal, b: Decimal) => new D(f(a, b) ? 1 : 0);
  const REF2: Record<string, [(a: Decimal, b: Decimal) => Decimal | null, number[]]> = {
    add: [(a, b) => a.plus(b), bs], sub: [(a, b) => a.minus(b), bs], mul: [(a, b) => a.times(b), bs], div: [(a, b) => (b.isZero() ? null : a.div(b)), bs],
    pow: [(a, b) => (a.lte(0) ? null : a.pow(b)), [0.5, 3, -2.5]],
    maximum: [(a, b) => Decimal.max(a, b), bs], minimum: [(a, b) => Decimal.min(a, b), bs],
    lt: [cmp((a, b) => a.lt(b)), bs], le: [cmp((a, b) => a.lte(b)), bs], gt: [cmp((a, b) => a.gt(b)), bs],
    ge: [cmp((a, b) => a.gte(b)), bs], eq: [cmp((a, b) => a.eq(b)), bs], ne: [cmp((a, b) => !a.eq(b)), bs],
    bceLogits: [(a, b) => a.exp().plus(1).ln().minus(a.times(b)), [0, 0.3, 1]],
    bceLogitsGrad: [(a, b) => sig(a).minus(b), [0]],
    reluGrad: [(a, b) => (b.gt(0) ? a : new D(0)), bs],
  };

  it('has a reference for every binary op of the language', () => {
    expect(Object.keys(BINARY).filter((k) => !(k in REF2))).toEqual([]);
  });

  it('every binary op within 2 ulp (a over the grid, b from a few values)', () => {
    const worst: Record<string, number> = {};
    for (const [op, [ref, bvals]] of Object.entries(REF2)) {
      for (const b of bvals) {
        const a = g.tensor(Float64Array.from(grid), [grid.length], { dtype: 'float64' });
        const bt = g.full([grid.length], b, { dtype: 'float64' });
        const be = a.backend;
        const buf = be.binary(op as keyof typeof BINARY, a.viewFor(a.shape), bt.viewFor(a.shape), a.shape, 'float64');
        const got = be.readSync!(buf);
        grid.forEach((x, i) => {
          const r = ref(exact(x), exact(b));
          if (r !== null) worst[op] = Math.max(worst[op] ?? 0, ulps(got[i], r));
        });
        be.release(buf); a.dispose(); bt.dispose();
      }
    }
    const bad = Object.entries(worst).filter(([, w]) => !(w <= 2));
    expect(bad, JSON.stringify(worst)).toEqual([]);
  });

  it('tanh is exact near 0 (was 2.2e-5 relative at 1e-12) and the language has expm1 / log1p', () => {
    const t = g.tanh(g.tensor([1e-12, 1e-8, -1e-12], [3], { dtype: 'float64' })).dataSync();
    expect(t[0]).toBe(1e-12); // tanh x = x - x^3/3: x itself to the last bit
    expect(t[1]).toBe(Math.tanh(1e-8));
    expect(t[2]).toBe(-1e-12);
    const sp = g.softplus(g.tensor([-16.65], [1], { dtype: 'float64' })).dataSync()[0];
    expect(ulps(sp, exact(-16.65).exp().plus(1).ln())).toBeLessThanOrEqual(1);
  });

  it('float32 expm1 / log1p / tanh / softplus within 1 ulp of float32 on the CPU', () => {
    const xs = grid.map(Math.fround);
    const refs: Record<string, (x: Decimal) => Decimal | null> = { expm1: REF.expm1, log1p: REF.log1p, tanh: REF.tanh, softplus: REF.softplus };
    for (const [op, ref] of Object.entries(refs)) {
      const got = run(op, xs, 'float32');
      let w = 0;
      xs.forEach((x, i) => { const r = ref(exact(x)); if (r) w = Math.max(w, ulps(got[i], r, 24)); });
      expect({ op, worst: w <= 1 ? 'ok' : w }).toEqual({ op, worst: 'ok' });
    }
  });
});

describe('PyTorch gradient conventions', () => {
  it('binaryCrossEntropy: finite gradients at p = 0 and 1 (0 where the target equals p, +-1e12 where not)', () => {
    const p = g.tensor([0, 1, 0, 1, 0.25], [5], { dtype: 'float64', requiresGrad: true });
    const t = g.tensor([0, 1, 1, 0, 1], [5], { dtype: 'float64' });
    const l = g.binaryCrossEntropy(p, t, 'sum');
    expect(l.item()).toBeCloseTo(200 - Math.log(0.25), 10); // each wrong end costs the clamp, 100
    l.backward();
    const gr = Array.from(p.grad!.dataSync());
    expect(gr.slice(0, 4)).toEqual([0, 0, -1e12, 1e12]);
    expect(gr[4]).toBeCloseTo((0.25 - 1) / (0.25 * 0.75), 12);
  });

  it('maximum / minimum split the gradient equally at ties; clamp passes it at its bounds', () => {
    for (const f of [g.maximum, g.minimum]) {
      const a = g.tensor([1, 2, 3], [3], { dtype: 'float64', requiresGrad: true });
      const b = g.tensor([2, 2, 2], [3], { dtype: 'float64', requiresGrad: true });
      g.sum(f(a, b)).backward();
      const ga = Array.from(a.grad!.dataSync()), gb = Array.from(b.grad!.dataSync());
      expect(ga[1]).toBe(0.5);
      expect(gb[1]).toBe(0.5);
      expect(ga[0] + gb[0]).toBe(1);
      expect(ga[2] + gb[2]).toBe(1);
    }
    const x = g.tensor([-1, 0, 0.5, 1, 2], [5], { dtype: 'float64', requiresGrad: true });
    g.sum(g.clamp(x, 0, 1)).backward();
    expect(Array.from(x.grad!.dataSync())).toEqual([0, 1, 1, 1, 0]);
  });
});

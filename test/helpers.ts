// Shared helpers for the engine tests: a seeded float64 PRNG, finite-difference gradient checks,
// explicit-loop references and a few statistics (normal quantile, chi-square critical values).
import { expect } from 'vitest';
import { Tensor, tensor, noGrad, tidy, mul, sum, type DType, type Device } from '../index.ts';

// ---------------------------------------------------------------- seeded PRNG (plain JS)
/** splitmix32-style generator: deterministic, independent of the engine's Philox. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = (seed >>> 0) ^ 0x9e3779b9;
  }
  u32(): number {
    this.s = (this.s + 0x9e3779b9) >>> 0;
    let z = this.s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  }
  /** uniform in [0, 1) with 53 bits */
  next(): number {
    return (this.u32() * 2097152 + (this.u32() >>> 11)) / 9007199254740992;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  int(lo: number, hiExclusive: number): number {
    return lo + Math.floor(this.next() * (hiExclusive - lo));
  }
  sign(): number {
    return this.next() < 0.5 ? -1 : 1;
  }
  normal(): number {
    const u = 1 - this.next(), v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/** multi-index of flat position i in a row-major array of `shape` */
export function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

/** flat position of a multi-index in `shape`; axes of size 1 broadcast (index taken as 0); leading axes aligned right */
export function ravelBroadcast(idx: readonly number[], shape: readonly number[]): number {
  const off = idx.length - shape.length;
  let p = 0;
  for (let d = 0; d < shape.length; d++) p = p * shape[d] + (shape[d] === 1 ? 0 : idx[off + d]);
  return p;
}

export function fill(rng: Rng, n: number, f: (r: Rng) => number): Float64Array {
  return Float64Array.from({ length: n }, () => f(rng));
}

export const f64 = (values: ArrayLike<number>, shape: number[], requiresGrad = false): Tensor =>
  tensor(Float64Array.from(values), shape, { dtype: 'float64', requiresGrad });

// ---------------------------------------------------------------- gradient check
export interface GradInput {
  shape: number[];
  values: ArrayLike<number>;
  dtype?: DType; // default float64
  /** not differentiated (e.g. int32 indices, or a constant operand) */
  constant?: boolean;
}

export interface GradcheckOptions {
  h?: number; // central-difference step (default 1e-6)
  tol?: number; // |a - b| <= tol * max(1, |a|, |b|) (default 1e-6)
  seed?: number; // for the projection R
  label?: string;
}

/**
 * Compare backward() with central finite differences of L(x) = sum_k sum(op(x)_k * R_k) for fixed random R_k
 * (one projection per output), so every output entry is exercised. The finite differences are computed in
 * float64 JS on the read-back outputs.
 */
export function gradcheck(f: (...xs: Tensor[]) => Tensor | Tensor[], inputs: GradInput[], opts: GradcheckOptions = {}): void {
  const h = opts.h ?? 1e-6, tol = opts.tol ?? 1e-6;
  const label = opts.label ?? 'gradcheck';
  const rng = new Rng(opts.seed ?? 12345);
  const make = (vals: ArrayLike<number>[], grad: boolean) =>
    inputs.map((inp, i) => tensor(Float64Array.from(vals[i]), inp.shape, {
      dtype: inp.dtype ?? 'float64',
      requiresGrad: grad && !inp.constant,
    }));
  const outs = (r: Tensor | Tensor[]) => (Array.isArray(r) ? r : [r]);

  // analytic
  const xs = make(inputs.map((i) => i.values), true);
  const ys = outs(f(...xs));
  // float32-exact projections, so float32 outputs (cast) are projected without rounding
  const Rs = ys.map((y) => fill(rng, y.size, (r) => Math.fround(r.uniform(-1, 1))));
  let loss: Tensor | null = null;
  ys.forEach((y, k) => {
    const R = tensor(Rs[k], y.shape.slice(), { dtype: y.dtype });
    const term = sum(mul(y, R));
    loss = loss ? loss.add(term.dtype === loss.dtype ? term : term.cast(loss.dtype)) : term;
  });
  loss!.backward();

  // numeric
  const lossAt = (vals: ArrayLike<number>[]): number => noGrad(() => {
    const ts = make(vals, false);
    const o = outs(f(...ts));
    let L = 0;
    o.forEach((y, k) => {
      const d = y.dataSync();
      for (let i = 0; i < d.length; i++) L += d[i] * Rs[k][i];
    });
    return L;
  });
  const base = inputs.map((i) => Float64Array.from(i.values));
  inputs.forEach((inp, a) => {
    if (inp.constant) return;
    const x = xs[a];
    const analytic = x.grad ? Array.from(x.grad.dataSync()) : new Array<number>(x.size).fill(0);
    expect(analytic.length, `${label}: grad size of input ${a}`).toBe(x.size);
    for (let i = 0; i < x.size; i++) {
      const v = base[a][i];
      base[a][i] = v + h;
      const lp = lossAt(base);
      base[a][i] = v - h;
      const lm = lossAt(base);
      base[a][i] = v;
      const numeric = (lp - lm) / (2 * h);
      const an = analytic[i];
      const ok = Math.abs(an - numeric) <= tol * Math.max(1, Math.abs(an), Math.abs(numeric));
      if (!ok) {
        throw new Error(`${label}: input ${a} (shape [${inp.shape}]) entry ${i}: analytic ${an} vs numeric ${numeric}`);
      }
    }
  });
}

/**
 * gradcheck on a device. On the CPU: float64 central finite differences ({@link gradcheck}). Elsewhere
 * (float32, asynchronous reads): the op's values and backward() on the device against the CPU's float64
 * values and backward() on the same float32-exact inputs and projections, within `rtol` (default 1e-4)
 * relative to max(1, |reference|). The CPU reference is itself checked against finite differences by the
 * CPU run of the same suite.
 */
export async function gradcheckOn(
  device: Device, f: (...xs: Tensor[]) => Tensor | Tensor[], inputs: GradInput[], opts: GradcheckOptions & { rtol?: number } = {},
): Promise<void> {
  if (device === 'cpu') return gradcheck(f, inputs, opts);
  const label = opts.label ?? 'gradcheck';
  const rtol = opts.rtol ?? 1e-4;
  const rng = new Rng(opts.seed ?? 12345);
  const vals = inputs.map((inp) => Float64Array.from(inp.values, (v) => (inp.dtype === 'int32' ? v : Math.fround(v))));
  let Rs: Float64Array[] | null = null;
  const run = (dev: Device, dt: DType) => tidy(() => {
    const xs = inputs.map((inp, i) => tensor(vals[i], inp.shape, { dtype: inp.dtype === 'int32' ? 'int32' : dt, device: dev, requiresGrad: !inp.constant }));
    const r = f(...xs);
    const ys = Array.isArray(r) ? r : [r];
    Rs ??= ys.map((y) => fill(rng, y.size, (q) => Math.fround(q.uniform(-1, 1))));
    let loss: Tensor | null = null;
    ys.forEach((y, k) => {
      const term = sum(mul(y, tensor(Rs![k], y.shape.slice(), { dtype: y.dtype, device: dev })));
      loss = loss ? loss.add(term) : term;
    });
    if (loss!.requiresGrad) loss!.backward();
    return { xs, ys };
  });
  const ref = run('cpu', 'float64');
  const got = run(device, 'float32');
  try {
    for (let k = 0; k < ref.ys.length; k++) {
      expect(got.ys[k].shape, `${label}: shape of output ${k}`).toEqual(ref.ys[k].shape);
      expectClose(Array.from(await got.ys[k].data()), Array.from(ref.ys[k].dataSync()), rtol, `${label}: output ${k} on ${device}`);
    }
    for (let a = 0; a < inputs.length; a++) {
      if (inputs[a].constant) continue;
      const want = ref.xs[a].grad ? Array.from(ref.xs[a].grad!.dataSync()) : new Array<number>(ref.xs[a].size).fill(0);
      const have = got.xs[a].grad ? Array.from(await got.xs[a].grad!.data()) : new Array<number>(got.xs[a].size).fill(0);
      expectClose(have, want, rtol, `${label}: gradient of input ${a} (shape [${inputs[a].shape}]) on ${device}`);
    }
  } finally {
    for (const t of [...got.xs, ...got.ys, ...ref.xs, ...ref.ys]) { t.grad?.dispose(); t.dispose(); }
  }
}

function expectClose(got: number[], want: number[], rtol: number, what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    const ok = Number.isFinite(w) ? Math.abs(g - w) <= rtol * Math.max(1, Math.abs(w)) : Object.is(g, w);
    if (!ok) throw new Error(`${what}: entry ${i}: got ${g}, CPU float64 reference ${w}`);
  }
}

// ---------------------------------------------------------------- statistics
// (the normal quantile and the chi-square critical value are the law kit's: testing/stats.ts)
export { normalQuantile, chiSquareCritical } from '../testing/stats.ts';
import { normalQuantile, chiSquareCritical } from '../testing/stats.ts';
/** Pearson statistic of observed counts against expected probabilities (every expected count should be >= 5). */
export function chiSquareStat(counts: ArrayLike<number>, probs: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += counts[i];
  let s = 0;
  for (let i = 0; i < counts.length; i++) {
    const e = n * probs[i];
    s += (counts[i] - e) ** 2 / e;
  }
  return s;
}

export function meanVar(x: ArrayLike<number>): { mean: number; variance: number } {
  let m = 0;
  for (let i = 0; i < x.length; i++) m += x[i];
  m /= x.length;
  let v = 0;
  for (let i = 0; i < x.length; i++) v += (x[i] - m) ** 2;
  return { mean: m, variance: v / (x.length - 1) };
}

export function correlation(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const a = meanVar(x), b = meanVar(y);
  let c = 0;
  for (let i = 0; i < x.length; i++) c += (x[i] - a.mean) * (y[i] - b.mean);
  return c / (x.length - 1) / Math.sqrt(a.variance * b.variance);
}

/** Read a tensor into a plain number array. */
export const arr = (t: Tensor): number[] => Array.from(t.dataSync());

// The property laws of discrete gradient estimators, for any registered method (gapgrad's or a user's).
// Each law draws its inputs with fast-check from a fixed seed, derives its thresholds from the sampling
// error at a stated false-alarm rate `alpha` (Bonferroni over every test it makes), and returns a
// LawResult; unless `throws: false`, a failed law throws a LawViolation (name 'AssertionError') whose
// message says what failed, by how much, and how to reproduce it.
import fc from 'fast-check';
// through the platform-neutral root, so that the CPU backend is registered
import { tensor, tidy, noGrad, random, sum, mul, type Tensor, type Device, type DType } from '../index.ts';
import { sample, sampleDetailed, resolve, reinforce, exactExpectationGrad, type SampleOptions } from '../estimators/index.ts';
import { logitsCase, makeLogitsCase, type LogitsCase, type LogitsOptions } from './arbitraries.ts';
import { chiSquareTest, normalQuantile, softmax64 } from './stats.ts';

/** Options every law takes. */
export interface LawOptions {
  /** Device of the draws (default 'cpu'). */
  device?: Device;
  /** Floating dtype (default float64 on 'cpu', float32 elsewhere). */
  dtype?: DType;
  /** fast-check seed of the inputs (default 1). */
  seed?: number;
  /** Number of generated inputs (default depends on the law, 3 to 6). */
  runs?: number;
  /** False-alarm rate of the whole law: the probability that a correct estimator fails it (default 1e-6). */
  alpha?: number;
  /** Options of the logits arbitrary. */
  logits?: LogitsOptions;
  /** Extra options for estimators.sample (k, hard, tau, ...). */
  sampleOptions?: Partial<SampleOptions>;
  /** Throw a LawViolation on failure (default true); false only returns the result. */
  throws?: boolean;
}

/** What a law returns. */
export interface LawResult {
  /** The law's name. */
  law: string;
  /** The method checked. */
  method: string;
  /** Whether it held. */
  pass: boolean;
  /** One line: what was checked, or what failed and by how much. */
  message: string;
  /** Number of statistical or exact checks made. */
  checks: number;
  /** The false-alarm rate of the law. */
  alpha: number;
  /** The worst margin seen: statistic / threshold (below 1 passes). */
  worst: number;
}

/** A failed law (name 'AssertionError', as test frameworks expect); `result` holds the structured result. */
export class LawViolation extends Error {
  /** The law's result. */
  readonly result: LawResult;
  /** @param result - the failed result */
  constructor(result: LawResult) {
    super(`${result.law} (${result.method}): ${result.message}`);
    this.name = 'AssertionError';
    this.result = result;
  }
}

interface Ctx { method: string; device: Device; dtype: DType; seed: number; alpha: number; throws: boolean; so: Partial<SampleOptions> }

function ctxOf(method: string, o: LawOptions): Ctx {
  resolve(method); // an unknown method fails here, naming the valid ones
  const device = o.device ?? 'cpu';
  const alpha = o.alpha ?? 1e-6;
  if (!(alpha > 0 && alpha < 1)) throw new Error(`gapgrad/testing: alpha must be in (0, 1), got ${alpha}`);
  return { method, device, dtype: o.dtype ?? (device === 'cpu' ? 'float64' : 'float32'), seed: o.seed ?? 1, alpha, throws: o.throws ?? true, so: o.sampleOptions ?? {} };
}

function finish(c: Ctx, law: string, checks: number, worst: number, failure: string | null, ok: string): LawResult {
  const r: LawResult = { law, method: c.method, pass: failure === null, message: failure ?? ok, checks, alpha: c.alpha, worst };
  if (failure !== null && c.throws) throw new LawViolation(r);
  return r;
}

function cases(o: LawOptions, dflt: LogitsOptions, runs: number, seed: number): LogitsCase[] {
  return fc.sample(logitsCase({ ...dflt, ...o.logits }), { seed, numRuns: o.runs ?? runs });
}

function fmtCase(cs: LogitsCase): string {
  return `C=${cs.C} batch=[${cs.batch}] spread=${cs.spread} mask=${cs.maskMode}${cs.nearTies ? ' near-ties' : ''}`;
}

interface Draw { index: Int32Array; sample: Float64Array; perturbed: Float64Array | null; grad: Float64Array | null; surrogate: Float64Array | null; tau: number | null }

/**
 * N copies of the case's rows as logits [N, ...batch, C]; one call of the method (sampleDetailed where `detailed`,
 * else sample); with `upstream`, the gradient of sum(upstream(D) · sample) per copy.
 */
async function draw(c: Ctx, cs: LogitsCase, N: number, key: random.Key, o: { detailed?: boolean; impl?: 'ops' | 'fused'; upstream?: (index: Int32Array) => Float64Array; opts?: Partial<SampleOptions>; device?: Device; dtype?: DType }): Promise<Draw> {
  const device = o.device ?? c.device, dtype = o.dtype ?? c.dtype;
  const per = cs.rows * cs.C;
  const d = new Float64Array(N * per);
  for (let n = 0; n < N; n++) d.set(cs.raw, n * per);
  const x = tensor(d, [N, ...cs.batch, cs.C], { dtype, device, requiresGrad: Boolean(o.upstream) });
  const mask = cs.maskData ? tensor(cs.maskData, cs.maskShape, { dtype, device }) : undefined;
  const opts: SampleOptions = { ...c.so, ...o.opts, method: c.method, key, mask, ...(o.impl ? { impl: o.impl } : {}) };
  try {
    // not in a tidy: a method differentiating through its own graph (nd_gst) needs its intermediates until the backward
    const t = (() => {
      if (o.detailed) {
        const det = sampleDetailed(x, opts);
        return { s: det.sample, idx: det.index as Tensor | null, p: det.perturbed, sur: det.surrogate, tau: det.tau as number | null };
      }
      return { s: sample(x, opts), idx: null as Tensor | null, p: null as Tensor | null, sur: null as Tensor | null, tau: null as number | null };
    })();
    const s = Float64Array.from(await t.s.data());
    const C = cs.C, R = s.length / C;
    let index: Int32Array;
    if (t.idx) index = Int32Array.from(await t.idx.data());
    else {
      index = new Int32Array(R);
      for (let r = 0; r < R; r++) { let b = 0; for (let j = 1; j < C; j++) if (s[r * C + j] > s[r * C + b]) b = j; index[r] = b; }
    }
    let grad: Float64Array | null = null;
    if (o.upstream) {
      const up = o.upstream(index);
      tidy(() => t.s.backward(tensor(up, t.s.shape, { dtype, device })));
      grad = Float64Array.from(await x.grad!.data());
      x.grad!.dispose();
      x.grad = null;
    }
    const perturbed = t.p ? Float64Array.from(await t.p.data()) : null;
    const surrogate = t.sur ? Float64Array.from(await t.sur.data()) : null;
    for (const v of [t.s, t.idx, t.p, t.sur]) v?.dispose();
    return { index, sample: s, perturbed, grad, surrogate, tau: t.tau };
  } finally {
    x.dispose();
    mask?.dispose();
  }
}

const rowOf = (a: ArrayLike<number>, r: number, C: number) => Array.from({ length: C }, (_, j) => a[r * C + j]);
const keyOf = (c: Ctx, i: number) => random.key((c.seed * 7919 + i * 104729) >>> 0);

/**
 * Exact categorical forward: every sample is exactly one-hot, never on a masked category, and its frequencies
 * pass a chi-square goodness-of-fit test against softmax(θ) in every row (Bonferroni over rows and runs).
 * @param method - a registered method name
 * @param o - options (`samples`: draws per row, default 2000)
 */
export async function exactForward(method: string, o: LawOptions & { samples?: number } = {}): Promise<LawResult> {
  const c = ctxOf(method, o);
  const N = o.samples ?? 2000;
  const list = cases(o, { maxC: 40 }, 4, c.seed);
  const tests = list.reduce((a, cs) => a + cs.rows, 0);
  const a = c.alpha / Math.max(1, tests);
  let worst = 0, checks = 0;
  for (let i = 0; i < list.length; i++) {
    const cs = list[i];
    const r = await draw(c, cs, N, keyOf(c, i), {});
    for (let n = 0; n < N * cs.rows; n++) {
      const D = r.index[n];
      for (let j = 0; j < cs.C; j++) {
        const v = r.sample[n * cs.C + j];
        if (v !== (j === D ? 1 : 0)) return finish(c, 'exactForward', checks, Infinity, `sample ${n} is not one-hot (entry ${j} = ${v}) for ${fmtCase(cs)}`, '');
      }
      if (!cs.allowed[(n % cs.rows) * cs.C + D]) return finish(c, 'exactForward', checks, Infinity, `sample ${n} drew masked category ${D} for ${fmtCase(cs)}`, '');
    }
    for (let b = 0; b < cs.rows; b++) {
      const counts = new Float64Array(cs.C);
      for (let n = 0; n < N; n++) counts[r.index[n * cs.rows + b]]++;
      const t = chiSquareTest(counts, softmax64(rowOf(cs.theta, b, cs.C)), a);
      checks++;
      if (Number.isFinite(t.critical)) worst = Math.max(worst, t.stat / t.critical);
      if (!t.pass) return finish(c, 'exactForward', checks, worst, `chi-square ${t.stat.toFixed(2)} > ${t.critical.toFixed(2)} (df ${t.df}, alpha ${a.toExponential(1)}) in row ${b} of ${fmtCase(cs)}, seed ${c.seed}`, '');
    }
  }
  return finish(c, 'exactForward', checks, worst, null, `${checks} rows x ${N} samples one-hot, unmasked, chi-square at alpha ${c.alpha} (worst stat/critical ${worst.toFixed(3)})`);
}

/**
 * The same key gives the same sample, D = argmax(θ + G) with G = random.gumbel(split(key)[0]), on every
 * implementation (the fused kernel and the op path) and on every device in `devices`.
 * @param method - a registered method name
 * @param o - options (`devices`: other devices to compare, default none)
 */
export async function sameSample(method: string, o: LawOptions & { devices?: Device[] } = {}): Promise<LawResult> {
  const c = ctxOf(method, o);
  const list = cases(o, { maxC: 64, extremes: true }, 6, c.seed);
  let checks = 0;
  for (let i = 0; i < list.length; i++) {
    const cs = list[i];
    const key = keyOf(c, i);
    const N = 5;
    const G = random.gumbel(random.split(key, 2)[0], [N, ...cs.batch, cs.C], { dtype: 'float32' });
    const g = G.dataSync();
    G.dispose();
    const ref = new Int32Array(N * cs.rows);
    for (let n = 0; n < N * cs.rows; n++) {
      let best = 0, m = -Infinity;
      for (let j = 0; j < cs.C; j++) {
        const v = Math.fround(Math.fround(cs.theta[(n % cs.rows) * cs.C + j]) + g[n * cs.C + j]);
        if (v > m) { m = v; best = j; }
      }
      ref[n] = best;
    }
    const runs: [string, Promise<Draw>][] = [
      ['fused (cpu)', draw(c, cs, N, key, { impl: undefined, device: 'cpu', dtype: 'float32' })],
      ['ops (cpu)', draw(c, cs, N, key, { impl: 'ops', device: 'cpu', dtype: 'float32' })],
      ...(o.devices ?? []).filter((d) => d !== 'cpu').map((d) => [`ops (${d})`, draw(c, cs, N, key, { device: d, dtype: 'float32' })] as [string, Promise<Draw>]),
    ];
    for (const [name, p] of runs) {
      const r = await p;
      checks++;
      for (let n = 0; n < ref.length; n++) {
        if (r.index[n] !== ref[n]) return finish(c, 'sameSample', checks, Infinity, `${name} drew ${r.index[n]} where argmax(θ + G) is ${ref[n]} (sample ${n}) for ${fmtCase(cs)}`, '');
      }
    }
  }
  return finish(c, 'sameSample', checks, 0, null, `${checks} draws equal argmax(θ + G) of the key, float32, ${(o.devices ?? []).length + 1} device(s), fused and op paths`);
}

/**
 * Straight-through: the gradient is exactly the VJP `(1/τ) s ⊙ (g − <s, g>)` of the surrogate s the method
 * returns (sampleDetailed), for random upstream gradients g, temperatures and masks, on the op path and on the
 * default (fused, where the method has a kernel) path. Exact up to rounding.
 * @param method - a registered method claiming 'straight-through'
 * @param o - options
 */
export async function straightThrough(method: string, o: LawOptions = {}): Promise<LawResult> {
  const c = ctxOf(method, o);
  const list = cases(o, { maxC: 64 }, 5, c.seed);
  const taus = fc.sample(fc.constantFrom(0.3, 1, 2.5), { seed: c.seed, numRuns: list.length });
  const tol = c.dtype === 'float64' ? 1e-10 : 2e-5;
  let checks = 0, worst = 0;
  for (let i = 0; i < list.length; i++) {
    const cs = list[i];
    const N = 4;
    let u = (c.seed * 97 + i) >>> 0;
    const up = () => { u = (u * 1664525 + 1013904223) >>> 0; return 4 * (u / 2 ** 32) - 2; };
    const upstream = (idx: Int32Array) => Float64Array.from({ length: idx.length * cs.C }, () => up());
    const opts = { tau: taus[i] };
    const g0 = upstream(new Int32Array(N * cs.rows));
    const ref = await draw(c, cs, N, keyOf(c, i), { detailed: true, impl: 'ops', upstream: () => g0, opts });
    if (!ref.surrogate || ref.tau === null) return finish(c, 'straightThrough', checks, Infinity, 'the method returns no surrogate', '');
    const fused = await draw(c, cs, N, keyOf(c, i), { upstream: () => g0, opts });
    for (const [name, r] of [['op path', ref], ['default path', fused]] as const) {
      checks++;
      for (let n = 0; n < N * cs.rows; n++) {
        const o0 = n * cs.C;
        let dot = 0;
        for (let j = 0; j < cs.C; j++) dot += ref.surrogate[o0 + j] * g0[o0 + j];
        for (let j = 0; j < cs.C; j++) {
          const want = (ref.surrogate[o0 + j] * (g0[o0 + j] - dot)) / ref.tau;
          const err = Math.abs(r.grad![o0 + j] - want) / (tol * (1 + Math.abs(want) + Math.abs(dot)));
          worst = Math.max(worst, err);
          if (!(err <= 1)) return finish(c, 'straightThrough', checks, worst, `${name}: gradient ${r.grad![o0 + j]} at sample ${n}, category ${j}, but the surrogate's VJP is ${want} (tau ${ref.tau}) for ${fmtCase(cs)}`, '');
        }
      }
    }
  }
  return finish(c, 'straightThrough', checks, worst, null, `${checks} draws: the gradient is the surrogate's VJP (op and default paths)`);
}

/** The method's gap for a row: its definition's `gap` (a number or a function of π_D). */
function gapOf(method: string): ((piD: number) => number) | null {
  const rm = resolve(method);
  const g = rm.def.gap ? rm.def.gap(rm.params) : typeof (rm.params as { gap?: unknown })?.gap === 'number' ? (rm.params as { gap: number }).gap : null;
  if (g === null) return null;
  return typeof g === 'number' ? () => g : g;
}

/**
 * The gap property of GST-style methods: in the perturbed logits θ̃ the sample D is the argmax with
 * θ̃_D = max θ, θ̃_D − θ̃_j ≥ gap for j ≠ D, entries with θ_j ≤ max θ − gap untouched and the others capped at
 * max θ − gap. The gap comes from the definition (`gap`, a number or a function of π_D). Exact up to rounding.
 * @param method - a registered method claiming 'gap'
 * @param o - options
 */
export async function gapProperty(method: string, o: LawOptions = {}): Promise<LawResult> {
  const c = ctxOf(method, o);
  const gapFn = gapOf(method);
  if (!gapFn) return finish(c, 'gapProperty', 0, Infinity, `the definition gives no gap (define 'gap' or a numeric params.gap)`, '');
  const list = cases(o, { maxC: 64 }, 5, c.seed);
  let checks = 0;
  for (let i = 0; i < list.length; i++) {
    const cs = list[i];
    const N = 20;
    const r = await draw(c, cs, N, keyOf(c, i), { detailed: true, impl: 'ops' });
    if (!r.perturbed) return finish(c, 'gapProperty', checks, Infinity, 'sampleDetailed returned no perturbed logits', '');
    for (let n = 0; n < N * cs.rows; n++) {
      const th = rowOf(cs.theta, n % cs.rows, cs.C);
      const tt = rowOf(r.perturbed, n, cs.C);
      const D = r.index[n];
      const M = Math.max(...th);
      const g = gapFn(softmax64(th)[D]);
      const tol = (c.dtype === 'float64' ? 4e-15 : 4e-7) * Math.max(1, Math.abs(M), g);
      checks++;
      const where = `sample ${n} (D = ${D}, gap ${g}) of ${fmtCase(cs)}`;
      if (Math.abs(tt[D] - M) > tol) return finish(c, 'gapProperty', checks, Infinity, `θ̃_D = ${tt[D]} but max θ = ${M} in ${where}`, '');
      for (let j = 0; j < cs.C; j++) {
        if (j === D) continue;
        if (th[j] === -Infinity) { if (tt[j] !== -Infinity) return finish(c, 'gapProperty', checks, Infinity, `masked entry ${j} became ${tt[j]} in ${where}`, ''); continue; }
        if (tt[D] - tt[j] < g - tol) return finish(c, 'gapProperty', checks, Infinity, `θ̃_D − θ̃_${j} = ${tt[D] - tt[j]} < gap ${g} in ${where}`, '');
        const want = th[j] <= M - g ? th[j] : M - g;
        if (Math.abs(tt[j] - want) > tol) return finish(c, 'gapProperty', checks, Infinity, `θ̃_${j} = ${tt[j]}, expected ${want} (${th[j] <= M - g ? 'far entry untouched' : 'capped at max − gap'}) in ${where}`, '');
      }
    }
  }
  return finish(c, 'gapProperty', checks, 0, null, `${checks} samples: D the argmax by >= gap, far entries untouched, near ones capped`);
}

/**
 * The mean-gap identity (gst-p): E[(θ_D + G_D) − max_{j≠D}(θ_j + G_j) | D] equals the method's gap at π_D, for
 * every D drawn at least 50 times (a z-test on the conditional mean, Bonferroni over categories and runs).
 * @param method - a registered method claiming 'mean-gap'
 * @param o - options (`samples`: draws per case, default 20000)
 */
export async function meanGap(method: string, o: LawOptions & { samples?: number } = {}): Promise<LawResult> {
  const c = ctxOf(method, o);
  const gapFn = gapOf(method);
  if (!gapFn) return finish(c, 'meanGap', 0, Infinity, `the definition gives no gap`, '');
  const N = o.samples ?? 20000;
  const list = cases(o, { maxC: 8, batches: [[]], masks: ['none', 'neginf'], spreads: [0.5, 1, 2] }, 3, c.seed);
  const z = normalQuantile(1 - c.alpha / (2 * list.reduce((a, cs) => a + cs.C, 0)));
  let checks = 0, worst = 0;
  for (let i = 0; i < list.length; i++) {
    const cs = list[i];
    const key = keyOf(c, i);
    const r = await draw(c, cs, N, key, { impl: 'ops' });
    const Gt = random.gumbel(random.split(key, 2)[0], [N, cs.C], { dtype: 'float64' });
    const G = Gt.dataSync();
    Gt.dispose();
    const th = rowOf(cs.theta, 0, cs.C);
    const pi = softmax64(th);
    const sum = new Float64Array(cs.C), sq = new Float64Array(cs.C), cnt = new Float64Array(cs.C);
    for (let n = 0; n < N; n++) {
      const D = r.index[n];
      let other = -Infinity;
      for (let j = 0; j < cs.C; j++) if (j !== D) other = Math.max(other, th[j] + G[n * cs.C + j]);
      const gapv = th[D] + G[n * cs.C + D] - other;
      if (!Number.isFinite(gapv)) continue; // a single allowed category: no gap
      sum[D] += gapv; sq[D] += gapv * gapv; cnt[D]++;
    }
    for (let D = 0; D < cs.C; D++) {
      if (cnt[D] < 50) continue;
      const m = sum[D] / cnt[D], v = (sq[D] - cnt[D] * m * m) / (cnt[D] - 1);
      const want = gapFn(pi[D]);
      const thr = z * Math.sqrt(v / cnt[D]) + 1e-9;
      checks++;
      worst = Math.max(worst, Math.abs(m - want) / thr);
      if (Math.abs(m - want) > thr) return finish(c, 'meanGap', checks, worst, `E[gap | D = ${D}] = ${m.toFixed(5)} (n ${cnt[D]}), the method's gap at π_D = ${pi[D].toFixed(4)} is ${want.toFixed(5)}: off by ${Math.abs(m - want).toExponential(2)} > ${thr.toExponential(2)}`, '');
    }
  }
  return finish(c, 'meanGap', checks, worst, null, `${checks} conditional means within z = ${z.toFixed(2)} standard errors (worst ${worst.toFixed(3)} of the threshold)`);
}

/** A test function f of the one-hot sample: its values f(e_j) (exact enumeration) and its cotangent at D. */
export interface TestFunction {
  /** f(e_j) for each category j. */
  values(C: number): Float64Array;
  /** ∂f/∂z at z = e_D. */
  cotangent(D: number, C: number): Float64Array;
}

/** f(z) = <z, w>: linear. */
export function linearF(w: ArrayLike<number>): TestFunction {
  return { values: () => Float64Array.from(w), cotangent: () => Float64Array.from(w) };
}

/** f(z) = Σ (z − t)²: the quadratic toy of the zoo report. */
export function quadraticF(t: ArrayLike<number>): TestFunction {
  return {
    values: (C) => Float64Array.from({ length: C }, (_, j) => { let s = 0; for (let i = 0; i < C; i++) s += ((i === j ? 1 : 0) - t[i]) ** 2; return s; }),
    cotangent: (D, C) => Float64Array.from({ length: C }, (_, i) => 2 * ((i === D ? 1 : 0) - t[i])),
  };
}

/** The numbers {@link measureBiasVariance} returns. */
export interface BiasVariance {
  /** The exact gradient of E[f(D)] by enumeration. */
  exact: Float64Array;
  /** The estimator's mean gradient. */
  mean: Float64Array;
  /** |mean − exact| / |exact|. */
  relativeError: number;
  /** cos(mean, exact). */
  cosine: number;
  /** Mean squared distance of a single estimate from the mean (the total variance). */
  variance: number;
  /** Its standard error, for comparing variances. */
  varianceSE: number;
  /** Per-coordinate variance. */
  coordVariance: Float64Array;
  /** Number of estimates. */
  samples: number;
}

/**
 * Bias and variance of a method's gradient of E[f(D)] at one row of logits against the exact gradient by
 * enumeration (small C): numbers, no verdict.
 * @param method - a registered method
 * @param theta - C logits
 * @param f - the test function
 * @param o - samples (default 4000), device, dtype, key seed, sample options (tau, k, ...)
 */
export async function measureBiasVariance(method: string, theta: ArrayLike<number>, f: TestFunction, o: { samples?: number; device?: Device; dtype?: DType; seed?: number; sampleOptions?: Partial<SampleOptions> } = {}): Promise<BiasVariance> {
  const c = ctxOf(method, { device: o.device, dtype: o.dtype, seed: o.seed, sampleOptions: o.sampleOptions });
  const C = theta.length;
  const N = o.samples ?? 4000;
  const cs = makeLogitsCase(C, [], 0, 'none', 0, 0);
  cs.raw.set(theta); cs.theta.set(theta);
  const r = await draw(c, cs, N, keyOf(c, 0), {
    upstream: (idx) => { const u = new Float64Array(idx.length * C); for (let n = 0; n < idx.length; n++) u.set(f.cotangent(idx[n], C), n * C); return u; },
  });
  return summarise(r.grad!, N, C, exactExpectationGrad(theta, f.values(C)));
}

function summarise(g: Float64Array, N: number, C: number, exact: Float64Array): BiasVariance {
  const mean = new Float64Array(C), cv = new Float64Array(C);
  for (let n = 0; n < N; n++) for (let j = 0; j < C; j++) mean[j] += g[n * C + j] / N;
  const d2 = new Float64Array(N);
  for (let n = 0; n < N; n++) for (let j = 0; j < C; j++) { const d = g[n * C + j] - mean[j]; cv[j] += (d * d) / (N - 1); d2[n] += d * d; }
  let variance = 0;
  for (let n = 0; n < N; n++) variance += d2[n] / (N - 1);
  let sv = 0;
  const md = variance * (N - 1) / N;
  for (let n = 0; n < N; n++) sv += (d2[n] - md) ** 2 / (N - 1);
  let diff = 0, ne = 0, dot = 0, nm = 0;
  for (let j = 0; j < C; j++) { diff += (mean[j] - exact[j]) ** 2; ne += exact[j] ** 2; dot += mean[j] * exact[j]; nm += mean[j] ** 2; }
  return {
    exact, mean, relativeError: Math.sqrt(diff) / Math.max(Math.sqrt(ne), 1e-300), cosine: dot / Math.max(Math.sqrt(ne * nm), 1e-300),
    variance, varianceSE: Math.sqrt(sv / N), coordVariance: cv, samples: N,
  };
}

/** |mean − exact| within z standard errors (plus rounding) on every coordinate; returns the worst ratio or a failure. */
function meanTest(b: BiasVariance, z: number, slack: number): { worst: number; bad: string | null } {
  let worst = 0;
  for (let j = 0; j < b.exact.length; j++) {
    const thr = z * Math.sqrt(b.coordVariance[j] / b.samples) + slack * Math.max(1, Math.abs(b.exact[j]));
    const dev = Math.abs(b.mean[j] - b.exact[j]);
    worst = Math.max(worst, dev / thr);
    if (dev > thr) return { worst, bad: `coordinate ${j}: mean ${b.mean[j].toExponential(4)} vs exact ${b.exact[j].toExponential(4)}, off by ${dev.toExponential(2)} > ${thr.toExponential(2)} (${z.toFixed(2)} standard errors)` };
  }
  return { worst, bad: null };
}

async function unbiasedWith(law: string, method: string, o: LawOptions & { samples?: number }, fOf: (C: number, rnd: () => number) => TestFunction, tau1: boolean): Promise<LawResult> {
  const c = ctxOf(method, { ...o, sampleOptions: { ...o.sampleOptions, ...(tau1 ? { tau: 1 } : {}) } });
  const N = o.samples ?? 3000;
  const list = cases(o, { maxC: 8, batches: [[]], masks: ['none', 'neginf'], spreads: [0.5, 2, 4] }, 4, c.seed);
  const z = normalQuantile(1 - c.alpha / (2 * list.reduce((a, cs) => a + cs.C, 0)));
  const slack = c.dtype === 'float64' ? 1e-9 : 1e-5;
  let checks = 0, worst = 0;
  for (let i = 0; i < list.length; i++) {
    const cs = list[i];
    let s = (c.seed + i * 31) >>> 0;
    const rnd = () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
    const f = fOf(cs.C, rnd);
    const b = await measureBiasVariance(method, cs.raw, f, { samples: N, device: c.device, dtype: c.dtype, seed: c.seed + i, sampleOptions: c.so });
    // masked categories: the exact gradient there is 0 (π = 0)
    checks++;
    const t = meanTest(b, z, slack);
    worst = Math.max(worst, t.worst);
    if (t.bad) return finish(c, law, checks, worst, `${t.bad} for ${fmtCase(cs)}`, '');
  }
  return finish(c, law, checks, worst, null, `${checks} inputs x ${N} estimates: mean within ${z.toFixed(2)} standard errors of the exact gradient (worst ${worst.toFixed(3)} of the threshold)`);
}

/**
 * Unbiasedness for linear f at τ = 1 (straight-through with s = π): the mean gradient of E[<z, w>] equals the
 * exact gradient on every coordinate (z-test, Bonferroni; exact where the estimate has no variance).
 * @param method - a registered method claiming 'unbiased-linear'
 * @param o - options (`samples` per input, default 3000)
 */
export function unbiasedLinear(method: string, o: LawOptions & { samples?: number } = {}): Promise<LawResult> {
  return unbiasedWith('unbiasedLinear', method, o, (C, rnd) => linearF(Float64Array.from({ length: C }, () => 2 * rnd() - 1)), true);
}

/**
 * Unbiasedness for every f: the mean gradient of E[f(D)] for a quadratic f equals the exact gradient by enumeration.
 * @param method - a registered method claiming 'unbiased'
 * @param o - options (`samples` per input, default 3000)
 */
export function unbiased(method: string, o: LawOptions & { samples?: number } = {}): Promise<LawResult> {
  return unbiasedWith('unbiased', method, o, (C, rnd) => quadraticF(Float64Array.from({ length: C }, () => rnd())), false);
}

/**
 * REINFORCE (estimators.reinforce with the samples of `method`) is unbiased against exact enumeration, for a
 * quadratic f: the score-function estimator's own law (it is a surrogate loss, not a sampling method).
 * @param o - options (`method` whose samples are used, default 'st'; `samples` per input, default 4000)
 */
export async function reinforceUnbiased(o: LawOptions & { samples?: number; method?: string } = {}): Promise<LawResult> {
  const c = ctxOf(o.method ?? 'st', o);
  const N = o.samples ?? 4000;
  const list = cases(o, { maxC: 8, batches: [[]], masks: ['none', 'neginf'], spreads: [0.5, 2] }, 4, c.seed);
  const z = normalQuantile(1 - c.alpha / (2 * list.reduce((a, cs) => a + cs.C, 0)));
  let checks = 0, worst = 0;
  for (let i = 0; i < list.length; i++) {
    const cs = list[i];
    const C = cs.C;
    const t = Float64Array.from({ length: C }, (_, j) => ((j * 7 + i) % 5) / 4);
    const f = quadraticF(t);
    const fv = f.values(C);
    const d = new Float64Array(N * C);
    for (let n = 0; n < N; n++) d.set(cs.raw, n * C);
    const x = tensor(d, [N, C], { dtype: c.dtype, device: c.device, requiresGrad: true });
    tidy(() => {
      // the sample is a constant here: only the score function carries the gradient
      const z1 = noGrad(() => sample(x, { method: c.method, key: keyOf(c, i), check: false }));
      const fD = sum(mul(z1, tensor(fv, [C], { dtype: c.dtype, device: c.device })), -1);
      reinforce(x, z1, fD).sum().backward();
    });
    const g = Float64Array.from(await x.grad!.data());
    x.dispose();
    const b = summarise(g, N, C, exactExpectationGrad(cs.raw, fv));
    checks++;
    const r = meanTest(b, z, c.dtype === 'float64' ? 1e-9 : 1e-5);
    worst = Math.max(worst, r.worst);
    if (r.bad) return finish({ ...c, method: 'reinforce' }, 'reinforceUnbiased', checks, worst, `${r.bad} for ${fmtCase(cs)}`, '');
  }
  return finish({ ...c, method: 'reinforce' }, 'reinforceUnbiased', checks, worst, null, `${checks} inputs x ${N} estimates within ${z.toFixed(2)} standard errors of the exact gradient`);
}

/**
 * Rao-Blackwell: a conditional-expectation method has the same mean gradient as the method it conditions
 * (two-sample z-test per coordinate) and no larger total variance (one-sided z-test on the difference of the
 * total variances, standard errors from the samples), for a quadratic f.
 * @param method - a registered method claiming 'rao-blackwell'
 * @param o - options (`of`: the conditioned method, default the definition's raoBlackwellOf; `samples`, default 3000)
 */
export async function raoBlackwell(method: string, o: LawOptions & { of?: string; samples?: number } = {}): Promise<LawResult> {
  const c = ctxOf(method, o);
  const of = o.of ?? resolve(method).def.raoBlackwellOf;
  if (!of) return finish(c, 'raoBlackwell', 0, Infinity, `no method to compare with: give 'of' or define raoBlackwellOf`, '');
  const N = o.samples ?? 3000;
  const list = cases(o, { maxC: 8, batches: [[]], masks: ['none', 'neginf'], spreads: [0.5, 2] }, 3, c.seed);
  const m = list.reduce((a, cs) => a + cs.C + 1, 0);
  const z = normalQuantile(1 - c.alpha / (2 * m));
  let checks = 0, worst = 0;
  for (let i = 0; i < list.length; i++) {
    const cs = list[i];
    const f = quadraticF(Float64Array.from({ length: cs.C }, (_, j) => ((j * 3 + i) % 4) / 3));
    const so = { samples: N, device: c.device, dtype: c.dtype, seed: c.seed + i, sampleOptions: c.so };
    const a = await measureBiasVariance(method, cs.raw, f, so);
    const b = await measureBiasVariance(of, cs.raw, f, { ...so, sampleOptions: { ...c.so, k: undefined } });
    checks++;
    for (let j = 0; j < cs.C; j++) {
      const thr = z * Math.sqrt((a.coordVariance[j] + b.coordVariance[j]) / N) + 1e-9;
      const dev = Math.abs(a.mean[j] - b.mean[j]);
      worst = Math.max(worst, dev / thr);
      if (dev > thr) return finish(c, 'raoBlackwell', checks, worst, `mean gradients differ on coordinate ${j}: ${a.mean[j].toExponential(4)} (${method}) vs ${b.mean[j].toExponential(4)} (${of}), by ${dev.toExponential(2)} > ${thr.toExponential(2)} for ${fmtCase(cs)}`, '');
    }
    const thr = z * Math.hypot(a.varianceSE, b.varianceSE) + 1e-12;
    worst = Math.max(worst, (a.variance - b.variance) / thr);
    if (a.variance - b.variance > thr) return finish(c, 'raoBlackwell', checks, worst, `variance ${a.variance.toExponential(3)} (${method}) exceeds ${b.variance.toExponential(3)} (${of}) by more than ${thr.toExponential(2)} for ${fmtCase(cs)}`, '');
  }
  return finish(c, 'raoBlackwell', checks, worst, null, `${checks} inputs: same mean as ${of} and no larger variance (z = ${z.toFixed(2)})`);
}

/**
 * Finite gradients under extreme logits (spreads from 1e-30 to 1e4, near-ties, masks, -Infinity, up to 1000
 * categories) at temperatures from 0.05 to 5: every gradient entry is finite and masked entries get exactly 0.
 * @param method - a registered method name
 * @param o - options
 */
export async function finiteGradients(method: string, o: LawOptions = {}): Promise<LawResult> {
  const c = ctxOf(method, o);
  const list = cases(o, { maxC: 1000, extremes: true, spreads: [0, 3, 30] }, 6, c.seed);
  const taus = fc.sample(fc.constantFrom(0.05, 0.3, 1, 5), { seed: c.seed, numRuns: list.length });
  let checks = 0;
  for (let i = 0; i < list.length; i++) {
    const cs = list[i];
    const N = 3;
    const r = await draw(c, cs, N, keyOf(c, i), {
      opts: { tau: taus[i], k: Math.min(c.so.k ?? 10, 10) },
      upstream: (idx) => Float64Array.from({ length: idx.length * cs.C }, (_, e) => Math.sin(e * 1.7) + (e % cs.C === idx[Math.floor(e / cs.C)] ? 1 : 0)),
    });
    checks++;
    for (let e = 0; e < r.grad!.length; e++) {
      const v = r.grad![e];
      const allowed = cs.allowed[e % (cs.rows * cs.C)];
      if (!Number.isFinite(v)) return finish(c, 'finiteGradients', checks, Infinity, `gradient entry ${e} is ${v} at tau ${taus[i]} for ${fmtCase(cs)}`, '');
      if (!allowed && v !== 0) return finish(c, 'finiteGradients', checks, Infinity, `masked entry ${e} has gradient ${v} (expected 0) at tau ${taus[i]} for ${fmtCase(cs)}`, '');
    }
  }
  return finish(c, 'finiteGradients', checks, 0, null, `${checks} extreme inputs: finite gradients, exactly 0 where masked`);
}

/** Every law a method must satisfy plus those it claims, in order. */
export function lawsOf(method: string): string[] {
  const claims = resolve(method).def.laws ?? [];
  const out = ['exactForward', 'sameSample', 'finiteGradients'];
  if (claims.includes('straight-through')) out.push('straightThrough');
  if (claims.includes('gap')) out.push('gapProperty');
  if (claims.includes('mean-gap')) out.push('meanGap');
  if (claims.includes('unbiased-linear')) out.push('unbiasedLinear');
  if (claims.includes('unbiased')) out.push('unbiased');
  if (claims.includes('rao-blackwell')) out.push('raoBlackwell');
  return out;
}

const LAWS: Record<string, (m: string, o: LawOptions) => Promise<LawResult>> = {
  exactForward, sameSample, finiteGradients, straightThrough, gapProperty, meanGap, unbiasedLinear, unbiased, raoBlackwell,
};

/**
 * Check a method against every universal law (exact forward, same sample per key, finite gradients) and each
 * law its definition claims; throws on the first failure unless `throws: false`.
 * @param method - a registered method name
 * @param o - options passed to every law
 */
export async function checkEstimator(method: string, o: LawOptions = {}): Promise<LawResult[]> {
  const out: LawResult[] = [];
  for (const law of lawsOf(method)) out.push(await LAWS[law](method, o));
  return out;
}

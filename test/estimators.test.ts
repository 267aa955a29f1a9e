// Closed forms and edge cases of the discrete gradient estimators (estimators/index.ts). The laws (exact forward,
// same sample per key, gap, mean gap, unbiasedness, Rao-Blackwell, finite gradients) run on the law kit
// (gapgrad/testing) over the whole registry in test/estimators_laws.test.ts.
// Statistical checks use fixed fast-check seeds and tolerances derived from sampling error
// (chi-square at alpha = 1e-6, Bernstein / empirical-Bernstein bounds at delta = 1e-6, 5-sigma z).
import { makeLogitsCase, type LogitsCase } from '../testing/arbitraries.ts';
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { tensor, tidy, random, estimators, oneHot, sum, type Tensor, type DType } from '../index.ts';
import { DEVICES, profile, cpuLike } from './devices.ts';
import {
  chiSquareTest, softmax64, softmaxVjp64, columnStats, bernsteinBound, normalQuantile, mulberry32,
} from './estimators_stats.ts';

const ALPHA = 1e-6;
// every built-in method from the registry (the laws every method claims are checked on the kit: estimators_laws.test.ts)
const ALL_METHODS = estimators.list().filter((m) => m.builtin).flatMap((m) => m.examples);

// logits cases (rows in [-spread, spread], optional masks, at least one allowed category per row): the law kit's
type MaskMode = import('../testing/arbitraries.ts').MaskMode;
type Case = LogitsCase;
const makeCase = (C: number, batch: number[], spread: number, maskMode: MaskMode, maskDensity: number, seed: number): Case =>
  makeLogitsCase(C, batch, spread, maskMode, maskDensity, seed);

const caseArb = (opts: { maxC?: number; maxSpread?: number; batches?: number[][]; masks?: MaskMode[] } = {}) =>
  fc.noBias(fc.record({
    C: fc.integer({ min: 2, max: opts.maxC ?? 64 }),
    batch: fc.constantFrom(...(opts.batches ?? [[], [2], [2, 2]])),
    spread: fc.integer({ min: 0, max: 100 * (opts.maxSpread ?? 30) }).map((v) => v / 100),
    maskMode: fc.constantFrom<MaskMode>(...(opts.masks ?? ['none', 'mask-full', 'mask-row', 'neginf'])),
    maskDensity: fc.integer({ min: 0, max: 70 }).map((v) => v / 100),
    dataSeed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  })).map((r) => makeCase(r.C, r.batch, r.spread, r.maskMode, r.maskDensity, r.dataSeed));

/** Logits of shape [N, ...batch, C]: N identical copies of the case's rows. */
function replicated(cs: Case, N: number, dtype: DType = 'float64', requiresGrad = false): { x: Tensor; mask?: Tensor } {
  const per = cs.rows * cs.C;
  const d = new Float64Array(N * per);
  for (let n = 0; n < N; n++) d.set(cs.raw, n * per);
  const x = tensor(d, [N, ...cs.batch, cs.C], { dtype, requiresGrad });
  const mask = cs.maskData ? tensor(cs.maskData, cs.maskShape, { dtype }) : undefined;
  return { x, mask };
}

function rowOf(a: ArrayLike<number>, r: number, C: number): number[] {
  return Array.from({ length: C }, (_, j) => a[r * C + j]);
}

interface Run {
  index: Int32Array;
  sample: Float64Array;
  perturbed: Float64Array | null;
  grad: Float64Array | null;
}

/** One call of sampleDetailed (+ backward with upstream `seedGrad(index)` when given); JS arrays out. */
function runMethod(
  x: Tensor, opts: estimators.SampleOptions, seedGrad?: (index: Int32Array) => Float64Array,
): Run {
  return tidy(() => {
    const det = estimators.sampleDetailed(x, opts);
    const index = det.index.dataSync() as Int32Array;
    const sample = Float64Array.from(det.sample.dataSync());
    const perturbed = det.perturbed ? Float64Array.from(det.perturbed.dataSync()) : null;
    let grad: Float64Array | null = null;
    if (seedGrad) {
      const g = tensor(seedGrad(index), det.sample.shape, { dtype: x.dtype });
      det.sample.backward(g);
      grad = Float64Array.from(x.grad!.dataSync());
      x.grad!.dispose();
      x.grad = null;
    }
    return { index: Int32Array.from(index), sample, perturbed, grad };
  });
}

/** sampleDetailed + backward with upstream gUp on any device (asynchronous reads); JS arrays out. */
async function runMethodOn(x: Tensor, opts: estimators.SampleOptions, gUp: Float64Array): Promise<Run> {
  const t = tidy(() => {
    const det = estimators.sampleDetailed(x, opts);
    det.sample.backward(tensor(gUp, det.sample.shape, { dtype: x.dtype, device: x.device }));
    return { index: det.index, sample: det.sample, perturbed: det.perturbed };
  });
  const grad = x.grad!;
  x.grad = null;
  try {
    return {
      index: Int32Array.from(await t.index.data()),
      sample: Float64Array.from(await t.sample.data()),
      perturbed: t.perturbed ? Float64Array.from(await t.perturbed.data()) : null,
      grad: Float64Array.from(await grad.data()),
    };
  } finally {
    for (const v of [t.index, t.sample, t.perturbed, grad]) v?.dispose();
  }
}

// ------------------------------------------------------------------------------------------------
function gstRef(theta: ArrayLike<number>, D: number, gap: number): Float64Array {
  let M = -Infinity;
  for (let j = 0; j < theta.length; j++) M = Math.max(M, theta[j]);
  return Float64Array.from(theta, (t, j) => (j === D ? M : Math.min(t, M - gap)));
}
function gstPRef(theta: ArrayLike<number>, D: number): number {
  const piD = softmax64(theta)[D] * (1 - 1e-5);
  return -Math.log1p(-piD) / piD;
}

describe('GST: gapped perturbed logits', () => {
  for (const dtype of ['float64', 'float32'] as DType[]) {
    it(`gstPGap (${dtype}) equals -log(1 - pi_D)/pi_D (pi_D scaled by 1 - 1e-5) and is >= 1 for every D`, () => {
      fc.assert(
        fc.property(caseArb({ batches: [[16]], masks: ['none', 'neginf'] }), fc.integer({ min: 0, max: 1e9 }), (cs, dSeed) => {
          const rnd = mulberry32(dSeed);
          const D = new Int32Array(cs.rows);
          for (let b = 0; b < cs.rows; b++) {
            do D[b] = Math.floor(rnd() * cs.C); while (!cs.allowed[b * cs.C + D[b]]);
          }
          const x = tensor(cs.raw, [cs.rows, cs.C], { dtype });
          const gap = estimators.gstPGap(x, oneHot(tensor(D, [cs.rows], { dtype: 'int32' }), cs.C, dtype)).dataSync();
          const eps = dtype === 'float64' ? 2 ** -52 : 2 ** -23;
          for (let b = 0; b < cs.rows; b++) {
            const th = rowOf(dtype === 'float64' ? cs.theta : Float32Array.from(cs.theta), b, cs.C);
            const ref = gstPRef(th, D[b]);
            expect(gap[b]).toBeGreaterThanOrEqual(1);
            // rounding: pi_D carries ~(C + 8) eps relative error (softmax, scaling), amplified by the condition
            // number of x -> -log(1-x)/x, i.e. x/((1-x)(-log(1-x))) - 1; plus a few eps for log and division
            const x = softmax64(th)[D[b]] * (1 - 1e-5);
            const cond = x > 0 ? Math.abs(x / ((1 - x) * -Math.log1p(-x)) - 1) : 0;
            const tol = eps * ((cs.C + 8) * cond + 8) * ref;
            if (!(Math.abs(gap[b] - ref) <= tol)) throw new Error(`row ${b}: gap ${gap[b]} vs ${ref} (pi_D ${x}, tol ${tol})`);
          }
        }),
        { seed: dtype === 'float64' ? 31 : 32, numRuns: 40 },
      );
    });
  }

});

// ------------------------------------------------------------------------------------------------
/** Upstream gradient of the quadratic f(x) = w.x + x^T A x (A symmetric) at x = onehot(D): w + 2 A e_D. */
function quadratic(C: number, seed: number, quad = true) {
  const rnd = mulberry32(seed);
  const w = Float64Array.from({ length: C }, () => 2 * rnd() - 1);
  const A = new Float64Array(C * C);
  if (quad) for (let i = 0; i < C; i++) for (let j = 0; j <= i; j++) A[i * C + j] = A[j * C + i] = 2 * rnd() - 1;
  const upstream = (D: number) => Float64Array.from(w, (wi, i) => wi + 2 * A[i * C + D]);
  const values = Float64Array.from(w, (wi, i) => wi + A[i * C + i]); // f(e_i)
  let range = 0; // max over D of range(g(D)): bounds every surrogate VJP entry by range / (4 tau)
  for (let D = 0; D < C; D++) { const g = upstream(D); range = Math.max(range, Math.max(...g) - Math.min(...g)); }
  const seedGrad = (rowsPerDraw: number) => (index: Int32Array) => {
    const out = new Float64Array(index.length * C);
    for (let i = 0; i < index.length; i++) out.set(upstream(index[i]), i * C);
    void rowsPerDraw;
    return out;
  };
  return { w, A, upstream, values, range, seedGrad: seedGrad(1) };
}

describe('Gumbel-Rao', () => {
  it('conditional perturbed logits have argmax D in every draw (float64 strict; float32 up to ties)', () => {
    for (const dtype of ['float64', 'float32'] as DType[]) {
      fc.assert(
        fc.property(caseArb({ batches: [[12]] }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (cs, seed) => {
          const x = tensor(cs.raw, [cs.rows, cs.C], { dtype });
          const mask = cs.maskData ? tensor(cs.maskData, cs.maskShape, { dtype }) : undefined;
          const K = 16;
          const r = runMethod(x, { method: 'rao_gumbel', seed, mask, k: K });
          const { C, rows } = cs;
          expect(r.perturbed!.length).toBe(K * rows * C);
          for (let k = 0; k < K; k++) for (let b = 0; b < rows; b++) {
            const p = r.perturbed!.subarray((k * rows + b) * C, (k * rows + b + 1) * C);
            const D = r.index[b];
            expect(Number.isFinite(p[D])).toBe(true);
            for (let j = 0; j < C; j++) {
              if (j === D) continue;
              if (!cs.allowed[b * C + j]) { expect(p[j]).toBe(-Infinity); continue; }
              if (dtype === 'float64') expect(p[j]).toBeLessThan(p[D]);
              else expect(p[j]).toBeLessThanOrEqual(p[D]);
            }
          }
        }),
        { seed: dtype === 'float64' ? 51 : 52, numRuns: 25 },
      );
    }
  });

});

// ------------------------------------------------------------------------------------------------
describe('unbiasedness', () => {
  it('records the bias on a quadratic f (gumbel and GST are biased beyond sampling error somewhere)', () => {
    const N = 6000, K = 20;
    const configs = [
      { C: 4, spread: 2, tau: 1, seed: 11 },
      { C: 10, spread: 4, tau: 0.5, seed: 12 },
      { C: 32, spread: 8, tau: 1, seed: 13 },
    ];
    const methods = [...ALL_METHODS, 'reinforce'];
    // significance: |bias_j| above the empirical-Bernstein bound (delta = 1e-6 / C), which stays valid for rare
    // categories where the naive z = |bias_j| / se_j (also shown) is not (se_j is underestimated when j is rarely drawn)
    const rows: string[] = ['| config | method | ‖bias‖₂ | ‖bias‖/‖grad‖ | max_j z_j | max_j |bias_j|/EB bound_j | significant |', '|---|---|---|---|---|---|---|'];
    const significant = new Map<string, number>();
    for (const cfg of configs) {
      const cs = makeCase(cfg.C, [], cfg.spread, 'none', 0, cfg.seed);
      const f = quadratic(cfg.C, cfg.seed * 31);
      const exact = estimators.exactExpectationGrad(cs.theta, f.values);
      const exactNorm = Math.hypot(...exact);
      for (const method of methods) {
        const { x } = replicated(cs, N, 'float64', true);
        let grad: Float64Array;
        if (method === 'reinforce') {
          grad = tidy(() => {
            const D = estimators.sampleDetailed(x, { method: 'st', seed: cfg.seed }).index;
            const fD = tensor(Float64Array.from(D.dataSync(), (d) => f.values[d]), [N], { dtype: 'float64' });
            sum(estimators.reinforce(x, oneHot(D, cfg.C, 'float64'), fD)).backward();
            const g = Float64Array.from(x.grad!.dataSync());
            x.grad = null;
            return g;
          });
        } else {
          grad = runMethod(x, { method, seed: cfg.seed, tau: cfg.tau, k: K }, f.seedGrad).grad!;
        }
        const { mean, variance } = columnStats(grad, N, cfg.C);
        // a-priori width of one draw's gradient entries (R = max_D range of the upstream gradient):
        // a surrogate VJP entry s_i (g_i - <s,g>) / tau lies in [-R/(4 tau), R/(4 tau)]
        const R = f.range, tau = cfg.tau;
        const width = method === 'reinforce' ? 2 * Math.max(...f.values.map(Math.abs))
          : method === 'reinmax' ? 1.25 * R
          : method.startsWith('nd_gst') ? (2 * R) / tau
          : R / (2 * tau);
        let b2 = 0, zmax = 0, ebMax = 0;
        for (let j = 0; j < cfg.C; j++) {
          const bj = mean[j] - exact[j];
          expect(Number.isFinite(bj)).toBe(true);
          b2 += bj * bj;
          const se = Math.sqrt(variance[j] / N);
          zmax = Math.max(zmax, se > 0 ? Math.abs(bj) / se : Math.abs(bj) > 1e-12 ? Infinity : 0);
          ebMax = Math.max(ebMax, Math.abs(bj) / bernsteinBound(variance[j], width, N, ALPHA / cfg.C, true));
        }
        const bias = Math.sqrt(b2);
        if (ebMax > 1) significant.set(method, (significant.get(method) ?? 0) + 1);
        rows.push(`| C=${cfg.C} spread=${cfg.spread} tau=${cfg.tau} | ${method} | ${bias.toExponential(3)} | ${(bias / exactNorm).toFixed(3)} | ${zmax.toFixed(1)} | ${ebMax.toFixed(2)} | ${ebMax > 1 ? 'yes' : 'no'} |`);
      }
    }
    console.log(`Bias of E[grad] vs the exact gradient of E[f(D)], f(x) = w.x + x^T A x, ${N} draws (rao_gumbel K = ${K}):\n${rows.join('\n')}`);
    expect(significant.get('gumbel') ?? 0).toBeGreaterThan(0);
    expect((significant.get('gst-1.0') ?? 0) + (significant.get('gst-p') ?? 0)).toBeGreaterThan(0);
    expect(significant.get('reinforce') ?? 0).toBe(0);
  });
});

// ------------------------------------------------------------------------------------------------
// One suite per device: the same closed forms, computed in float64 on the host. The CPU computes in float64
// (gradients to 1e-10); other devices in float32 on float32-rounded inputs (to 2e-4, and D may differ from
// the float64 argmax only in a float32 near-tie).
describe.each(DEVICES)('gradients equal the closed forms on %s', (device) => {
  const P = profile(device);
  const cpu = cpuLike(device);
  // float32 elsewhere: perturbed logits lose ~1e-5 relative through the log-sum-exp of Gumbel-Rao's draws
  const gradTol = cpu ? 1e-10 : 2e-4, valueTol = cpu ? 1e-12 : 1e-5, perturbedTol = cpu ? 1e-12 : 1e-4;
  const methods = [...ALL_METHODS, 'gumbel-soft', 'nd_gst-0.5', 'gst-0.7'];
  for (const name of methods) {
    it(name, async () => {
      const method = name === 'gumbel-soft' ? 'gumbel' : name;
      await fc.assert(
        fc.asyncProperty(
          caseArb({ batches: [[3], [2, 3]] }),
          fc.constantFrom(0.3, 1, 2.5),
          fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          async (cs, tau, seed) => {
            const { C, rows } = cs;
            const theta = cs.theta.map(P.round);
            const x = tensor(cs.raw.map(P.round), [...cs.batch, C], { dtype: P.dtype, device, requiresGrad: true });
            const mask = cs.maskData ? tensor(cs.maskData, cs.maskShape, { dtype: P.dtype, device }) : undefined;
            const rnd = mulberry32(seed ^ 0xbeef);
            const gUp = Float64Array.from({ length: rows * C }, () => P.round(4 * rnd() - 2));
            const key = random.key(seed);
            const K = 4;
            const r = await runMethodOn(x, { method, key, tau, mask, k: K, hard: name === 'gumbel-soft' ? false : undefined }, gUp);
            mask?.dispose();
            const [kSample, kRao] = random.split(key, 2);
            const G = random.gumbel(kSample, [...cs.batch, C], { dtype: 'float64' }).dataSync();
            const E = method === 'rao_gumbel' ? random.exponential(kRao, [K, ...cs.batch, C], { dtype: 'float64' }).dataSync() : null;
            for (let b = 0; b < rows; b++) {
              const th = rowOf(theta, b, C), g = rowOf(gUp, b, C);
              const D = r.index[b];
              const got = rowOf(r.grad!, b, C);
              let want: Float64Array;
              // the index is argmax(theta + G)
              const pg = th.map((t, j) => t + G[b * C + j]);
              if (cpu) expect(D).toBe(pg.indexOf(Math.max(...pg)));
              else expect(pg[D]).toBeGreaterThanOrEqual(Math.max(...pg) - 1e-5 * (1 + Math.abs(Math.max(...pg))));
              if (name === 'gumbel-soft') {
                const s = softmax64(pg, tau);
                for (let j = 0; j < C; j++) expect(Math.abs(r.sample[b * C + j] - s[j])).toBeLessThanOrEqual(valueTol);
              } else {
                for (let j = 0; j < C; j++) expect(r.sample[b * C + j]).toBe(j === D ? 1 : 0);
              }
              if (method === 'st') want = softmaxVjp64(softmax64(th, tau), g, tau);
              else if (method === 'gumbel') want = softmaxVjp64(softmax64(pg, tau), g, tau);
              else if (method === 'reinmax') {
                const s = softmax64(th, tau), pi = softmax64(th);
                const half = s.map((v, j) => (v + (j === D ? 1 : 0)) / 2);
                const a = softmaxVjp64(half, g), c = softmaxVjp64(pi, g);
                want = a.map((v, j) => 2 * v - 0.5 * c[j]);
              } else if (method === 'rao_gumbel') {
                let lz = -Infinity;
                for (const t of th) lz = Math.max(lz, t);
                lz = lz + Math.log(th.reduce((acc, t) => acc + Math.exp(t - Math.max(...th)), 0));
                want = new Float64Array(C);
                for (let k = 0; k < K; k++) {
                  const e = Array.from({ length: C }, (_, j) => E![(k * rows + b) * C + j]);
                  const bD = Math.log(e[D]) - lz; // log(E_D / Z)
                  const pert = th.map((t, j) => (j === D ? -bD : t === -Infinity ? -Infinity : -(Math.max(Math.log(e[j]) - t, bD) + Math.log1p(Math.exp(-Math.abs(Math.log(e[j]) - t - bD))))));
                  const got = r.perturbed!.subarray((k * rows + b) * C, (k * rows + b + 1) * C);
                  for (let j = 0; j < C; j++) {
                    if (pert[j] === -Infinity) expect(got[j]).toBe(-Infinity);
                    else expect(Math.abs(got[j] - pert[j])).toBeLessThanOrEqual(perturbedTol * Math.max(1, Math.abs(pert[j])));
                  }
                  const v = softmaxVjp64(softmax64(pert, tau), g, tau);
                  for (let j = 0; j < C; j++) want[j] += v[j] / K;
                }
              } else {
                const gap = name.endsWith('-p') ? gstPRef(th, D) : Number(name.split('-')[1]);
                const tt = gstRef(th, D, gap);
                const v = softmaxVjp64(softmax64(tt, tau), g, tau);
                if (method.startsWith('gst')) want = v;
                else {
                  // nd_gst: chain rule through theta~_D = max theta and theta~_j = min(theta_j, M - gap)
                  const M = Math.max(...th), am = th.indexOf(M);
                  want = new Float64Array(C);
                  for (let j = 0; j < C; j++) {
                    if (j === D || !(th[j] <= M - gap)) want[am] += v[j];
                    else want[j] += v[j];
                  }
                }
              }
              for (let j = 0; j < C; j++) {
                if (!cs.allowed[b * C + j] && got[j] !== 0) throw new Error(`masked coordinate ${j} got gradient ${got[j]}`);
                if (!(Math.abs(got[j] - want[j]) <= gradTol)) throw new Error(`row ${b} coordinate ${j}: got ${got[j]}, closed form ${want[j]} (D ${D})`);
              }
            }
          },
        ),
        { seed: 3000 + methods.indexOf(name), numRuns: cpu ? 15 : 4 },
      );
    });
  }

  // on devices other than the CPU: the same key gives the CPU's sample bit for bit
  if (!cpu) it('samples are bit-identical to the CPU float32 ones (every method, masked)', async () => {
    const cs = makeCase(6, [16], 4, 'mask-full', 0.3, 9);
    for (const method of [...ALL_METHODS, 'nd_gst-0.5']) {
      const draw = async (d: typeof device) => {
        const x = tensor(cs.raw, [16, 6], { dtype: 'float32', device: d });
        const mask = tensor(cs.maskData!, cs.maskShape, { dtype: 'float32', device: d });
        const z = estimators.sample(x, { method, key: random.key(42), tau: 0.7, k: 10, mask });
        return Array.from(await z.data());
      };
      expect(await draw(device), method).toEqual(await draw('cpu'));
    }
  });

  it('rao_gumbel: returned perturbed equals raoGumbelPerturbed(theta, onehot, split(key)[1], K)', async () => {
    const cs = makeCase(9, [4], 5, 'none', 0, 5);
    const x = tensor(cs.raw, [4, 9], { dtype: P.dtype, device, requiresGrad: true });
    const key = random.key(99);
    const r = await runMethodOn(x, { method: 'rao_gumbel', key, k: 7 }, new Float64Array(36).fill(1));
    const again = estimators.raoGumbelPerturbed(x, oneHot(tensor(r.index, [4], { dtype: 'int32', device }), 9, P.dtype), random.split(key, 2)[1], 7);
    expect(Array.from(await again.data())).toEqual(Array.from(r.perturbed!));
  });
});

// ------------------------------------------------------------------------------------------------
describe('bad input', () => {
  const x = () => tensor([[0.5, 1, -2], [0, 0, 0]], null, { dtype: 'float64' });
  it('NaN or +Infinity logits raise an error naming the argument', () => {
    for (const bad of [NaN, Infinity]) {
      for (const method of ALL_METHODS) {
        const t = tensor([[0.5, bad, -2], [0, 0, 0]], null, { dtype: 'float64' });
        expect(() => estimators.sample(t, { method, seed: 1 })).toThrow(/'logits'/);
      }
    }
  });
  it('a row with every category masked raises (mask tensor or all -Infinity)', () => {
    const m = tensor([[1, 0, 1], [0, 0, 0]], null, { dtype: 'float64' });
    expect(() => estimators.sample(x(), { method: 'gst-1.0', seed: 1, mask: m })).toThrow(/row 1.*masked/);
    const t = tensor([[0.5, 1, -2], [-Infinity, -Infinity, -Infinity]], null, { dtype: 'float64' });
    for (const method of ALL_METHODS) expect(() => estimators.sample(t, { method, seed: 1 })).toThrow(/every category masked/);
  });
  it('-Infinity logits count as masked: never drawn', () => {
    const N = 3000;
    const d = new Float64Array(N * 4);
    for (let n = 0; n < N; n++) d.set([-Infinity, 0, -Infinity, 0.1], n * 4);
    const idx = estimators.sampleDetailed(tensor(d, [N, 4], { dtype: 'float64' }), { method: 'st', seed: 3 }).index.dataSync();
    const counts = [0, 0, 0, 0];
    for (const i of idx) counts[i]++;
    expect(counts[0]).toBe(0);
    expect(counts[2]).toBe(0);
    expect(counts[1]).toBeGreaterThan(0);
    expect(counts[3]).toBeGreaterThan(0);
  });
  it('unknown method names list the valid ones', () => {
    for (const bad of ['gst', 'gst-', 'gst-abc', 'nd_gst-p', 'Gumbel', 'gst-1.0x', 'rao', '']) {
      expect(() => estimators.sample(x(), { method: bad, seed: 1 })).toThrow(/st, gumbel, rao_gumbel, reinmax, gst-<gap>/);
    }
    expect(() => estimators.parseMethod('nope')).toThrow(/valid methods/);
    expect(estimators.parseMethod('gst-p').def.name).toBe('gst-p');
    expect(estimators.parseMethod('gst-2.5')).toMatchObject({ method: 'gst-2.5', params: { gap: 2.5 } });
    expect(estimators.parseMethod('nd_gst-0.5')).toMatchObject({ params: { gap: 0.5 } });
  });
  it('bad tau and k raise', () => {
    for (const tau of [0, -1, NaN, Infinity]) expect(() => estimators.sample(x(), { method: 'st', seed: 1, tau })).toThrow(/tau/);
    for (const k of [0, -3, 1.5, NaN]) expect(() => estimators.sample(x(), { method: 'rao_gumbel', seed: 1, k })).toThrow(/\bk\b/);
  });
  it('missing key and seed, and non-tensor logits, raise', () => {
    expect(() => estimators.sample(x(), { method: 'st' })).toThrow(/key/);
    expect(() => estimators.sample([1, 2] as unknown as Tensor, { method: 'st', seed: 1 })).toThrow(/'logits'/);
  });
});

// Statistics helpers for the estimator property tests (plain JS, float64).

// The normal quantile and the chi-square critical value are shared with the engine tests.
import { normalQuantile, chiSquareCritical } from './helpers.ts';
export { normalQuantile, chiSquareCritical };

export interface ChiSquareResult { stat: number; df: number; critical: number; pass: boolean; pooled: number }

/**
 * Pearson chi-square goodness of fit of counts against probabilities (summing to 1 over the listed
 * categories). Categories with expected count < 5 are pooled into one cell (kept if its expected
 * count reaches 5, else merged into the smallest remaining cell).
 */
export function chiSquareTest(counts: ArrayLike<number>, probs: ArrayLike<number>, alpha: number): ChiSquareResult {
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += counts[i];
  const cells: { o: number; e: number }[] = [];
  let po = 0, pe = 0, pooled = 0;
  for (let i = 0; i < counts.length; i++) {
    const e = n * probs[i];
    if (e >= 5) cells.push({ o: counts[i], e });
    else { po += counts[i]; pe += e; pooled++; }
  }
  if (pooled > 0) {
    if (pe >= 5 || cells.length === 0) cells.push({ o: po, e: pe });
    else {
      let s = 0;
      for (let i = 1; i < cells.length; i++) if (cells[i].e < cells[s].e) s = i;
      cells[s].o += po; cells[s].e += pe;
    }
  }
  const df = cells.length - 1;
  let stat = 0;
  for (const { o, e } of cells) stat += e > 0 ? ((o - e) * (o - e)) / e : o > 0 ? Infinity : 0;
  if (df < 1) return { stat, df, critical: Infinity, pass: true, pooled };
  const critical = chiSquareCritical(df, alpha);
  return { stat, df, critical, pass: stat <= critical, pooled };
}

/** Softmax of one row in float64; -Infinity entries get probability 0. */
export function softmax64(theta: ArrayLike<number>, tau = 1): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < theta.length; i++) m = Math.max(m, theta[i] / tau);
  const p = new Float64Array(theta.length);
  let z = 0;
  for (let i = 0; i < theta.length; i++) { p[i] = Math.exp(theta[i] / tau - m); z += p[i]; }
  for (let i = 0; i < theta.length; i++) p[i] /= z;
  return p;
}

/** (1/tau) s (g - <s, g>): the shared surrogate VJP, plain JS. */
export function softmaxVjp64(s: ArrayLike<number>, g: ArrayLike<number>, tau = 1): Float64Array {
  let sg = 0;
  for (let i = 0; i < s.length; i++) sg += s[i] * g[i];
  const out = new Float64Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = (s[i] * (g[i] - sg)) / tau;
  return out;
}

/** Column means and (unbiased) variances of an n x c row-major sample. */
export function columnStats(x: ArrayLike<number>, n: number, c: number): { mean: Float64Array; variance: Float64Array } {
  const mean = new Float64Array(c), variance = new Float64Array(c);
  for (let r = 0; r < n; r++) for (let j = 0; j < c; j++) mean[j] += x[r * c + j];
  for (let j = 0; j < c; j++) mean[j] /= n;
  for (let r = 0; r < n; r++) for (let j = 0; j < c; j++) { const d = x[r * c + j] - mean[j]; variance[j] += d * d; }
  for (let j = 0; j < c; j++) variance[j] /= n - 1;
  return { mean, variance };
}

/**
 * Two-sided deviation bound for the mean of n i.i.d. draws with values in a range of width B,
 * holding with probability >= 1 - delta.
 * known variance (Bernstein): sqrt(2 V ln(2/delta) / n) + 2 B ln(2/delta) / (3 n)
 * empirical variance (Maurer-Pontil empirical Bernstein): sqrt(2 V ln(4/delta) / n) + 7 B ln(4/delta) / (3 (n - 1))
 */
export function bernsteinBound(variance: number, range: number, n: number, delta: number, empirical: boolean): number {
  if (empirical) {
    const l = Math.log(4 / delta);
    return Math.sqrt((2 * variance * l) / n) + (7 * range * l) / (3 * (n - 1));
  }
  const l = Math.log(2 / delta);
  return Math.sqrt((2 * variance * l) / n) + (2 * range * l) / (3 * n);
}

/** Deterministic float64 rows from a seed (xorshift-based), for building test inputs without fast-check. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

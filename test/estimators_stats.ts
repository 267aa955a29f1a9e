// Statistics helpers for the estimator property tests (plain JS, float64).

// The chi-square test, quantiles, the row softmax and the seeded generator are the law kit's (testing/stats.ts).
import { normalQuantile, chiSquareCritical, chiSquareTest, softmax64, mulberry32, type ChiSquareResult } from '../testing/stats.ts';
export { normalQuantile, chiSquareCritical, chiSquareTest, softmax64, mulberry32, type ChiSquareResult };

/** Row VJP of softmax(theta / tau) in float64. */
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


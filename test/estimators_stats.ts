// Statistics helpers for the estimator property tests (plain JS, float64).

/** Inverse of the standard normal CDF (Acklam's rational approximation, |rel err| < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`normalQuantile: p must be in (0, 1), got ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5, r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/** Upper-alpha critical value of chi-square(df) by Wilson-Hilferty (slightly conservative for small df is not guaranteed; df >= 1). */
export function chiSquareCritical(df: number, alpha: number): number {
  const z = normalQuantile(1 - alpha);
  const h = 2 / (9 * df);
  return df * Math.pow(1 - h + z * Math.sqrt(h), 3);
}

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

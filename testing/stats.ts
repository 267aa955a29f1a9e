// Statistics of the law kit (plain JS, float64): quantiles, chi-square goodness of fit, row softmax, a seeded generator.

// ---------------------------------------------------------------- statistics
/** Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`normalQuantile: p must be in (0, 1), got ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  if (p < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - 0.02425) return -normalQuantile(1 - p);
  const q = p - 0.5, r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/** Upper-alpha critical value of chi-square(df), Wilson-Hilferty approximation. */
export function chiSquareCritical(df: number, alpha: number): number {
  const z = normalQuantile(1 - alpha);
  const h = 2 / (9 * df);
  return df * Math.pow(1 - h + z * Math.sqrt(h), 3);
}

/** A chi-square test's statistic, degrees of freedom, critical value at alpha, verdict, and the number of pooled categories. */
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

/** A seeded uniform generator on [0, 1) (mulberry32), for building inputs from a seed. */
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

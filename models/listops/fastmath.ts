// Scalar exp / sigmoid / tanh shared by the fused ListOps kernels (model.ts, tree.ts, leaf.ts).

// exp by range reduction (x = k ln2 + r, |r| <= ln2/2) and a degree-7 Taylor polynomial (relative error
// below 1e-8, far under float32's rounding): several times faster than Math.exp in these loops.
// k = round(x / ln2) by the 1.5 * 2^52 trick (round-half-even in double arithmetic, no call).
const POW2 = Float64Array.from({ length: 301 }, (_, i) => Math.pow(2, i - 150));
const ROUND = 6755399441055744.0;
export function fexp(x: number): number {
  if (!(x > -100)) return x !== x ? x : 0; // NaN stays NaN
  if (x > 88) return Math.exp(x);
  const k = x * 1.4426950408889634 + ROUND - ROUND;
  const r = x - k * 0.6931471803691238 - k * 1.9082149292705877e-10;
  const p = 1 + r * (1 + r * (0.5 + r * (0.16666666666666666 + r * (0.041666666666666664 + r * (0.008333333333333333 + r * (0.001388888888888889 + r * 0.0001984126984126984))))));
  return p * POW2[k + 150];
}
/** 1 / (1 + exp(-x)), through exp(-|x|) (never overflows). */
export function sig(x: number): number {
  const e = fexp(-Math.abs(x));
  const s = 1 / (1 + e);
  return x >= 0 ? s : e * s;
}
export function ftanh(x: number): number {
  const e = fexp(-2 * Math.abs(x));
  const t = (1 - e) / (1 + e);
  return x < 0 ? -t : t;
}

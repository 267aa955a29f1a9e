// Shared by test/cpu_estimators_wasm.test.ts and test/estimators_fused.test.ts.

/**
 * How far the wasm kernels' float32 gradient may be from the exact (float64) one, for logits in [-3, 3].
 * The softmax arguments (x - max) / tau have |x - max| <= 25 (logits, gap 2.5, Gumbel noise < 17): the
 * float32 subtraction errs by <= 12.5 eps, the product with 1/tau (itself rounded) by 1.5 * 25 eps / tau, and
 * gumbel's noise by 2^-20 = 8 eps on each of x and max: <= 66 eps / tau in all (eps = 2^-23). A softmax entry
 * s_j = e_j / sum e takes that twice (numerator and sum), the vector exp's 1.5 ulp, C / 2 eps for the float32 row
 * sum and a few eps for the division: d <= (C / 2 + 4 + 132 / tau) eps relative. rao_gumbel's conditional
 * softmax (float32 log <= 1 ulp, the ratio x_D w / (E + x_D w) a few roundings, v^(1/tau) = exp(log v / tau)
 * multiplying those by 1/tau) stays inside the same bound, and its k draws are summed in float32 (k eps / 2).
 * The VJP (1/tau) s (g - <s, g>) (reinmax: coefficients 2 and 1/2) with |g| <= 1 moves by <= 2.5 d / tau, plus
 * (C / 2 + 4) eps / tau for its own dot product and products.
 */
export function wasmGradTol(C: number, k: number, tau: number): number {
  return (2.5 / tau) * (C + 8 + k / 2 + 132 / tau) * 2 ** -23;
}

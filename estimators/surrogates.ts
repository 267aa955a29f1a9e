// The ops the built-in estimators are made of, exported for users defining their own (estimators.define).
import { Tensor, noGrad } from '../engine/tensor.ts';
import * as ops from '../engine/ops.ts';
import * as random from '../engine/random.ts';

/**
 * The surrogate's VJP shared by every straight-through method: `(1/tau) s (g - <s, g>)`.
 * @param s - the soft surrogate softmax(perturbed / tau)
 * @param g - the cotangent of the one-hot sample
 * @param tau - temperature
 */
export function surrogateVjp(s: Tensor, g: Tensor, tau: number): Tensor {
  const v = ops.softmaxVjp(s, g, -1);
  return tau === 1 ? v : ops.div(v, tau);
}

/**
 * GST's perturbed logits for a given one-hot sample: theta~_D = max theta, theta~_j = min(theta_j, max - gap).
 * @param logits - (..., C)
 * @param onehot - the sample, same shape
 * @param gap - a number, 'p' (per-row gap of gst-p) or a tensor broadcastable to [..., 1]
 */
export function gstPerturbedLogits(logits: Tensor, onehot: Tensor, gap: number | 'p' | Tensor): Tensor {
  return noGrad(() => {
    const M = ops.max(logits, -1, true);
    const g = gap === 'p' ? gstPGap(logits, onehot) : gap;
    const capped = ops.minimum(logits, ops.sub(M, g));
    return ops.where(onehot, M, capped);
  });
}

/**
 * gst-p's gap per row: -log(1 - pi_D) / pi_D with pi_D scaled by (1 - 1e-5); shape [..., 1].
 * @param logits - (..., C)
 * @param onehot - the sample, same shape
 */
export function gstPGap(logits: Tensor, onehot: Tensor): Tensor {
  return noGrad(() => {
    const piD = ops.mul(ops.sum(ops.mul(ops.softmax(logits, -1), onehot), -1, true), 1 - 1e-5);
    // -log1p(-x)/x without cancellation: with u = fl(1 - x), -log(u)/(1 - u) (1 - u exact), and 1 where u rounds to 1
    // (the naive -log(1 - x)/x returns 0 < 1 for x below the unit roundoff and loses digits for small x)
    const u = ops.rsub(1, piD);
    return ops.where(ops.eq(u, 1), 1, ops.div(ops.neg(ops.log(u)), ops.rsub(1, u)));
  });
}

/**
 * Gumbel-Rao's K conditional perturbed logits given the sample (shape [K, ...logits.shape]).
 * With E ~ Exp(1) and Z = sum_j exp(theta_j): -log(E_D / Z) at D and -log(E_j exp(-theta_j) + E_D / Z) elsewhere.
 * @param logits - (..., C)
 * @param onehot - the sample, same shape
 * @param key - key of the exponential draws
 * @param k - number of conditional draws K
 */
export function raoGumbelPerturbed(logits: Tensor, onehot: Tensor, key: random.Key, k: number): Tensor {
  return noGrad(() => {
    const E = random.exponential(key, [k, ...logits.shape], { dtype: logits.dtype, device: logits.device });
    const logE = ops.log(E);
    const logZ = ops.logsumexp(logits, -1, true);
    const b = ops.sub(ops.sum(ops.mul(logE, onehot), -1, true), logZ); // log(E_D / Z), [K, ..., 1]
    const a = ops.sub(logE, logits); // log(E_j exp(-theta_j))
    const hi = ops.maximum(a, b);
    const lae = ops.add(hi, ops.log(ops.add(ops.exp(ops.neg(ops.abs(ops.sub(a, b)))), 1)));
    // where a = -inf (impossible: E > 0) or theta_j = -inf (masked): a = +inf, lae = +inf, result -inf
    return ops.where(onehot, ops.neg(b), ops.neg(lae));
  });
}

/**
 * log p(D) = <onehot, log softmax(logits)>, differentiable: REINFORCE's score.
 * @param logits - (..., C)
 * @param onehot - the sample, same shape
 */
export function logProb(logits: Tensor, onehot: Tensor): Tensor {
  return ops.sum(ops.mul(ops.logSoftmax(logits, -1), onehot), -1);
}

/**
 * REINFORCE surrogate: its gradient is (f(D) - baseline) * grad log p(D); f and baseline are constants. Sum or mean it into your loss.
 * @param logits - (..., C)
 * @param onehot - the sample, same shape
 * @param f - the objective's value per sample (...)
 * @param baseline - subtracted from f (number or tensor, default 0)
 */
export function reinforce(logits: Tensor, onehot: Tensor, f: Tensor, baseline: Tensor | number = 0): Tensor {
  const adv = noGrad(() => ops.sub(f, baseline));
  return ops.mul(adv, logProb(logits, onehot));
}

/**
 * The exact gradient of E_{D ~ softmax(logits)}[f(D)] with respect to the logits, in float64 (for testing estimators).
 * @param logits - C logits
 * @param f - f(j) for each category j
 */
export function exactExpectationGrad(logits: ArrayLike<number>, f: ArrayLike<number>): Float64Array {
  const C = logits.length;
  let m = -Infinity;
  for (let i = 0; i < C; i++) m = Math.max(m, logits[i]);
  const p = new Float64Array(C);
  let z = 0;
  for (let i = 0; i < C; i++) { p[i] = Math.exp(logits[i] - m); z += p[i]; }
  let ef = 0;
  for (let i = 0; i < C; i++) { p[i] /= z; ef += p[i] * f[i]; }
  return p.map((pi, i) => pi * (f[i] - ef));
}


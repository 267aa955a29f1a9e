// Discrete gradient estimators as first-class ops (Fan et al., ICML 2022, and baselines).
//
// Every straight-through method emits the exact one-hot sample onehot(D) forward and, backward, the
// VJP of a soft surrogate s: (1/tau) * s * (g - <s, g>) for s = softmax(perturbed / tau). They differ
// only in the perturbed logits. Each is a customVjp over the shared softmax VJP, built from engine
// ops, so every backend runs it.
import { Tensor, noGrad, valueSummary } from '../engine/tensor.ts';
import * as ops from '../engine/ops.ts';
import * as random from '../engine/random.ts';
import { fusedEligible, sampleFused } from './fused.ts';

/** An estimator name: `st`, `gumbel`, `rao_gumbel`, `reinmax`, `gst-<gap>` (e.g. `gst-1.0`), `gst-p`, `nd_gst-<gap>`. */
export type Method = 'st' | 'gumbel' | 'rao_gumbel' | 'reinmax' | `gst-${string}` | `nd_gst-${string}`;

/** The valid method names, for help texts and errors. */
export const METHODS_HELP = "st, gumbel, rao_gumbel, reinmax, gst-<gap> (e.g. gst-1.0), gst-p, nd_gst-<gap>";

/** Options of {@link sample} and {@link sampleDetailed}. */
export interface SampleOptions {
  /** The estimator (see {@link Method}). */
  method: Method | string;
  /** Temperature of the soft surrogate (default 1). */
  tau?: number;
  /** The draw's key; or give `seed`. */
  key?: random.Key;
  /** Shorthand for `key: random.key(seed)`. */
  seed?: number;
  /** 1 = allowed, 0 = masked; broadcast against logits. -Infinity logits also count as masked. */
  mask?: Tensor;
  /** number of conditional draws for rao_gumbel (default 100) */
  k?: number;
  /** gumbel only: false returns the relaxed sample softmax((theta + G) / tau) itself */
  hard?: boolean;
  /** check logits for NaN / +Infinity and rows with no allowed category (reads values; default true where the device reads synchronously) */
  check?: boolean;
  /**
   * 'fused' (default where the device reads synchronously, i.e. the CPU): one-pass kernels in
   * estimators/fused.ts; 'ops': composed from engine ops (every device; what sampleDetailed uses).
   * Both give the identical sample and the same gradient up to float rounding.
   */
  impl?: 'fused' | 'ops';
}

/** A method name split into its kind and gap. */
export interface ParsedMethod {
  /** The estimator family. */
  kind: 'st' | 'gumbel' | 'rao_gumbel' | 'reinmax' | 'gst' | 'nd_gst';
  /** GST's gap: a number, 'p' for gst-p, null for the other methods. */
  gap: number | 'p' | null;
}

/**
 * Validate and split a method name; throws listing the valid names.
 * @param method - e.g. 'gst-1.0'
 */
export function parseMethod(method: string): ParsedMethod {
  if (method === 'st' || method === 'gumbel' || method === 'rao_gumbel' || method === 'reinmax') return { kind: method, gap: null };
  const m = /^(nd_gst|gst)-(p|\d+(?:\.\d+)?)$/.exec(method);
  if (m) {
    if (m[2] === 'p' && m[1] === 'nd_gst') throw new Error(`estimators: method 'nd_gst-p' is not defined; valid methods: ${METHODS_HELP}`);
    return { kind: m[1] as 'gst' | 'nd_gst', gap: m[2] === 'p' ? 'p' : Number(m[2]) };
  }
  throw new Error(`estimators: unknown method '${method}'; valid methods: ${METHODS_HELP}`);
}

/**
 * A mask holds 0 (masked) and 1 (allowed) only: checked where its values are known on the host (every CPU mask;
 * on WebGPU, masks created from host values). A WebGPU mask computed on the device is not checked: there every
 * non-zero value counts as allowed.
 */
function checkMaskValues(mask: Tensor): void {
  const s = valueSummary(mask);
  if (!s || s.binary || mask.size === 0) return;
  const v = mask.backend.readSync ? mask.backend.readSync(mask.buf) : null;
  let bad: number = s.nan ? NaN : s.min !== 0 && s.min !== 1 ? s.min : s.max;
  let at = -1;
  if (v) for (let i = 0; i < mask.size; i++) if (v[i] !== 0 && v[i] !== 1) { bad = v[i]; at = i; break; }
  throw new Error(`estimators.sample: argument 'mask' contains ${bad}${at >= 0 ? ` at flat index ${at}` : ''}; a mask holds 0 (masked) or 1 (allowed) only`);
}

function checkLogits(logits: Tensor, mask: Tensor | undefined, check: boolean): Tensor {
  if (!(logits instanceof Tensor)) throw new Error(`estimators.sample: argument 'logits' must be a Tensor`);
  if (logits.dtype === 'int32') throw new Error(`estimators.sample: argument 'logits' must be floating, got int32`);
  if (logits.rank < 1 || logits.shape[logits.rank - 1] < 1) throw new Error(`estimators.sample: argument 'logits' needs a last (category) axis, got shape [${logits.shape}]`);
  let masked = logits;
  if (mask) {
    if (!(mask instanceof Tensor)) throw new Error(`estimators.sample: argument 'mask' must be a Tensor`);
    ops.broadcastShapes(mask.shape, logits.shape, 'estimators.sample', ['mask', 'logits']);
    if (ops.broadcastShapes(mask.shape, logits.shape).join() !== logits.shape.join()) {
      throw new Error(`estimators.sample: mask of shape [${mask.shape}] must broadcast to the logits' shape [${logits.shape}]`);
    }
    checkMaskValues(mask);
    masked = ops.where(mask, logits, -Infinity);
  }
  if (check && logits.backend.readSync) {
    noGrad(() => {
      const v = logits.dataSync();
      for (let i = 0; i < v.length; i++) {
        if (Number.isNaN(v[i]) || v[i] === Infinity) {
          throw new Error(`estimators.sample: argument 'logits' contains ${v[i]} at flat index ${i} (shape [${logits.shape}]); logits must be finite or -Infinity (masked)`);
        }
      }
      const rowMax = ops.max(masked, -1).dataSync();
      for (let r = 0; r < rowMax.length; r++) {
        if (rowMax[r] === -Infinity) throw new Error(`estimators.sample: row ${r} of 'logits' (shape [${logits.shape}]) has every category masked`);
      }
    });
  }
  return masked;
}

function resolveKey(o: SampleOptions): random.Key {
  if (o.key) return o.key;
  if (o.seed !== undefined) return random.key(o.seed);
  throw new Error("estimators.sample: pass a 'key' (random.key(seed), random.split) or a 'seed'");
}

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

/** What {@link sampleDetailed} returns besides the sample. */
export interface SampleDetail {
  /** The one-hot sample (relaxed for gumbel with `hard: false`). */
  sample: Tensor;
  /** int32 D, shape logits.shape[:-1]. */
  index: Tensor;
  /** The soft surrogate s whose VJP is the backward (null for nd_gst, which differentiates through theta~). */
  surrogate: Tensor | null;
  /** gumbel: theta + G; gst: theta~; rao_gumbel: [K, ...] conditional logits; else null. */
  perturbed: Tensor | null;
}

/**
 * Draw onehot(D), D ~ Cat(softmax(logits)) along the last axis, whose backward is the chosen estimator's gradient.
 * The forward is exact on every method; methods differ in the backward only.
 * @param logits - (..., C) floating tensor; -Infinity entries are masked
 * @param opts - method, key or seed, tau, mask, k, hard, check, impl
 * @example
 * ```ts
 * const z = estimators.sample(logits, { method: 'gst-1.0', key: random.key(0), tau: 0.5 });
 * z.mul(values).sum().backward(); // logits.grad holds GST's estimate
 * ```
 */
export function sample(logits: Tensor, opts: SampleOptions): Tensor {
  if (opts && typeof opts.method === 'string' && opts.impl !== 'ops' && logits instanceof Tensor) {
    const pm = parseMethod(opts.method);
    if (fusedEligible(logits, pm, opts.hard)) {
      if (opts.impl !== undefined && opts.impl !== 'fused') throw new Error(`estimators.sample: impl must be 'fused' or 'ops', got '${opts.impl}'`);
      const { tau, k } = checkOptions(opts);
      // shape/type checks; values are checked inside the kernel's own pass
      let mask = opts.mask ?? null;
      checkLogits(logits, mask ?? undefined, false);
      if (mask && mask.shape.join() !== logits.shape.join()) mask = noGrad(() => ops.expand(mask!, logits.shape));
      const [kSample, kRao] = random.split(resolveKey(opts), 2);
      return sampleFused({ logits, mask, pm, method: opts.method, tau, k, kSample, kRao, check: opts.check ?? true });
    }
    if (opts.impl === 'fused') throw new Error(`estimators.sample: impl 'fused' needs a float32/float64 tensor on a device that reads synchronously (cpu) and a method other than nd_gst-* or relaxed gumbel; got ${logits.dtype} on '${logits.device}' with '${opts.method}'`);
  }
  return sampleDetailed(logits, opts).sample;
}

function checkOptions(opts: SampleOptions): { tau: number; k: number } {
  const tau = opts.tau ?? 1;
  if (!(tau > 0) || !Number.isFinite(tau)) throw new Error(`estimators.sample: tau must be a positive finite number, got ${tau}`);
  const k = opts.k ?? 100;
  if (!Number.isInteger(k) || k < 1) throw new Error(`estimators.sample: k must be a positive integer, got ${k}`);
  return { tau, k };
}

/**
 * {@link sample} composed from engine ops, also returning the index, the surrogate and the perturbed logits (every device).
 * @param logits - (..., C) floating tensor
 * @param opts - as for {@link sample}
 */
export function sampleDetailed(logits: Tensor, opts: SampleOptions): SampleDetail {
  if (!opts || typeof opts.method !== 'string') throw new Error(`estimators.sample: options.method is required; valid methods: ${METHODS_HELP}`);
  const pm = parseMethod(opts.method);
  const { tau, k } = checkOptions(opts);
  const theta = checkLogits(logits, opts.mask, opts.check ?? true);
  const [kSample, kRao] = random.split(resolveKey(opts), 2);
  const C = logits.shape[logits.rank - 1];

  // D by Gumbel-max: exact Cat(softmax(theta)); gumbel reuses G in its surrogate
  const { G, perturbedG, index, onehot } = noGrad(() => {
    const G = random.gumbel(kSample, logits.shape, { dtype: logits.dtype, device: logits.device });
    const perturbedG = ops.add(theta, G);
    const index = ops.argmax(perturbedG, -1);
    return { G, perturbedG, index, onehot: ops.oneHot(index, C, logits.dtype) };
  });

  if (pm.kind === 'gumbel' && opts.hard === false) {
    const soft = ops.softmax(ops.div(ops.add(theta, G), tau), -1); // G is a constant; (theta+G)-theta was NaN where masked
    return { sample: soft, index, surrogate: soft, perturbed: perturbedG };
  }

  if (pm.kind === 'nd_gst') {
    // perturbation not detached: differentiate through theta~ = theta + (theta~(theta) - theta)
    const gap = pm.gap as number;
    const M = ops.max(theta, -1, true);
    const tt = ops.where(onehot, M, ops.minimum(theta, ops.sub(M, gap)));
    const s = ops.softmax(ops.div(tt, tau), -1);
    const out = ops.add(ops.sub(s, noGrad(() => ops.copyOf(s))), onehot); // value onehot, gradient of s
    return { sample: out, index, surrogate: null, perturbed: noGrad(() => ops.copyOf(tt)) };
  }

  let perturbed: Tensor | null = null;
  let surrogate: Tensor;
  let backward: (g: Tensor) => Tensor;
  noGrad(() => {
    switch (pm.kind) {
      case 'st':
        surrogate = ops.softmax(ops.div(theta, tau), -1);
        break;
      case 'gumbel':
        perturbed = perturbedG;
        surrogate = ops.softmax(ops.div(perturbedG, tau), -1);
        break;
      case 'gst':
        perturbed = gstPerturbedLogits(theta, onehot, pm.gap!);
        surrogate = ops.softmax(ops.div(perturbed, tau), -1);
        break;
      case 'rao_gumbel': {
        perturbed = raoGumbelPerturbed(theta, onehot, kRao, k);
        // the mean of K surrogate VJPs (each draw has its own softmax Jacobian); g broadcasts over K
        const sK = ops.softmax(ops.div(perturbed, tau), -1);
        surrogate = ops.mean(sK, 0);
        backward = (g) => ops.mean(surrogateVjp(sK, g, tau), 0);
        break;
      }
      case 'reinmax': {
        const pi = ops.softmax(theta, -1);
        const piHalf = ops.div(ops.add(ops.softmax(ops.div(theta, tau), -1), onehot), 2);
        surrogate = piHalf;
        backward = (g) => ops.sub(ops.mul(ops.softmaxVjp(piHalf, g, -1), 2), ops.mul(ops.softmaxVjp(pi, g, -1), 0.5));
        break;
      }
    }
  });
  backward ??= (g: Tensor) => surrogateVjp(surrogate, g, tau);
  const op = ops.customVjp<null>({
    name: `estimator:${opts.method}`,
    forward: () => ({ outputs: [ops.copyOf(onehot)], residuals: null }),
    backward: (_r, [g]) => [g ? backward(g) : null],
  });
  const [out] = op(logits);
  return { sample: out, index, surrogate: surrogate!, perturbed };
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


// Discrete gradient estimators as first-class ops (Fan et al., ICML 2022, and baselines), from a registry.
//
// Every method is one EstimatorDefinition (estimators/builtin.ts for gapgrad's own, estimators.define for
// users'): sample() draws the exact forward onehot(D), D ~ Cat(softmax(θ)), from the key, then the
// definition builds the backward on engine ops (every backend), or a backend's fused kernel named by the
// definition computes both in one pass (the CPU).
import { Tensor, noGrad, valueSummary } from '../engine/tensor.ts';
import * as ops from '../engine/ops.ts';
import * as random from '../engine/random.ts';
import { fusedDeviceEligible, sampleFused } from './fused.ts';
import { resolve, methodsHelp, type ResolvedMethod } from './registry.ts';
import { tauAt, type TauSchedule } from './schedule.ts';
import { surrogateVjp } from './surrogates.ts';

export {
  define, undefine, list, exampleMethods, methodsHelp, resolve,
  type EstimatorDefinition, type EstimatorContext, type EstimatorParts, type EstimatorInfo, type EstimatorLaw,
  type FusedKernelRequest, type ResolvedMethod,
} from './registry.ts';
export { tauSchedule, tauAt, type TauSchedule } from './schedule.ts';
export { surrogateVjp, gstPerturbedLogits, gstPGap, raoGumbelPerturbed, logProb, reinforce, exactExpectationGrad } from './surrogates.ts';

/** A method name: a registered method (see {@link list}), e.g. `st`, `gumbel`, `rao_gumbel`, `reinmax`, `gst-1.0`, `gst-p`, `nd_gst-1.0`. */
export type Method = string;

/** Options of {@link sample} and {@link sampleDetailed}. */
export interface SampleOptions {
  /** The estimator: a registered method name (see {@link list}). */
  method: Method;
  /** Temperature of the soft surrogate (default 1): a number, a {@link TauSchedule} or a function of `step`. */
  tau?: number | TauSchedule | ((step: number) => number);
  /** The training step, for a τ schedule and for methods that anneal (default 0). */
  step?: number;
  /** The draw's key; or give `seed`. */
  key?: random.Key;
  /** Shorthand for `key: random.key(seed)`. */
  seed?: number;
  /** 1 = allowed, 0 = masked; broadcast against logits. -Infinity logits also count as masked. */
  mask?: Tensor;
  /** number of draws of methods that average several, e.g. rao_gumbel's conditional draws (default 100) */
  k?: number;
  /** gumbel only: false returns the relaxed sample softmax((theta + G) / tau) itself */
  hard?: boolean;
  /** check logits for NaN / +Infinity and rows with no allowed category (reads values; default true where the device reads synchronously) */
  check?: boolean;
  /**
   * 'fused' (default where the device reads synchronously, i.e. the CPU, and the method names a fused kernel):
   * one-pass kernels (the backend's, else estimators/fused.ts); 'ops': the definition's build on engine ops
   * (every device; what sampleDetailed uses). Both give the identical sample and the same gradient up to float rounding.
   */
  impl?: 'fused' | 'ops';
}

/**
 * Validate a method name against the registry: its definition and parameters; throws listing the valid names.
 * @param method - e.g. 'gst-1.0'
 */
export function parseMethod(method: string): ResolvedMethod {
  return resolve(method);
}

/** The valid method names, for help texts and errors: computed from the registry (user-defined methods included). */
export const METHODS_HELP: {
  /** The comma-separated method syntaxes of the registry now. */
  toString(): string;
} = { toString: () => methodsHelp() };

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

/** What {@link sampleDetailed} returns besides the sample. */
export interface SampleDetail {
  /** The one-hot sample (relaxed for gumbel with `hard: false`). */
  sample: Tensor;
  /** int32 D, shape logits.shape[:-1]. */
  index: Tensor;
  /** The soft surrogate s whose VJP is the backward (null where the method differentiates through its own graph, e.g. nd_gst). */
  surrogate: Tensor | null;
  /** The perturbed logits the surrogate is a softmax of: gumbel theta + G; gst theta~; rao_gumbel [K, ...] conditional logits; else null. */
  perturbed: Tensor | null;
  /** The method resolved against the registry. */
  resolved: ResolvedMethod;
  /** The surrogate's temperature: τ at this step, or the method's own (EstimatorParts.tau). */
  tau: number;
}



function checkOptions(opts: SampleOptions): { tau: number; k: number; step: number } {
  const step = opts.step ?? 0;
  if (!Number.isInteger(step) || step < 0) throw new Error(`estimators.sample: step must be a non-negative integer, got ${step}`);
  const tau = tauAt(opts.tau, step);
  const k = opts.k ?? 100;
  if (!Number.isInteger(k) || k < 1) throw new Error(`estimators.sample: k must be a positive integer, got ${k}`);
  return { tau, k, step };
}

function resolveOpts(opts: SampleOptions): ResolvedMethod {
  if (!opts || typeof opts.method !== 'string') throw new Error(`estimators.sample: options.method is required; valid methods: ${methodsHelp()}`);
  return resolve(opts.method);
}

/**
 * Draw onehot(D), D ~ Cat(softmax(logits)) along the last axis, whose backward is the chosen estimator's gradient.
 * The forward is exact on every method; methods differ in the backward only.
 * @param logits - (..., C) floating tensor; -Infinity entries are masked
 * @param opts - method, key or seed, tau (or a schedule and step), mask, k, hard, check, impl
 * @example
 * ```ts
 * const z = estimators.sample(logits, { method: 'gst-1.0', key: random.key(0), tau: 0.5 });
 * z.mul(values).sum().backward(); // logits.grad holds GST's estimate
 * ```
 */
export function sample(logits: Tensor, opts: SampleOptions): Tensor {
  const rm = resolveOpts(opts);
  if (opts.impl !== undefined && opts.impl !== 'fused' && opts.impl !== 'ops') throw new Error(`estimators.sample: impl must be 'fused' or 'ops', got '${opts.impl}'`);
  if (opts.impl !== 'ops' && logits instanceof Tensor) {
    const { tau, k, step } = checkOptions(opts);
    const req = rm.def.fused ? rm.def.fused(rm.params, { tau, hard: opts.hard, step }) : null;
    if (req && fusedDeviceEligible(logits)) {
      // shape/type checks; values are checked inside the kernel's own pass
      let mask = opts.mask ?? null;
      checkLogits(logits, mask ?? undefined, false);
      if (mask && mask.shape.join() !== logits.shape.join()) mask = noGrad(() => ops.expand(mask!, logits.shape));
      const [kSample, kRao] = random.split(resolveKey(opts), 2);
      const out = sampleFused({ logits, mask, kind: req.kind, gap: req.gap ?? 0, method: opts.method, tau, k, kSample, kRao, check: opts.check ?? true });
      if (out) return out;
      if (opts.impl === 'fused') throw new Error(`estimators.sample: impl 'fused': no kernel named '${req.kind}' (method '${opts.method}') on device '${logits.device}'`);
    } else if (opts.impl === 'fused') {
      throw new Error(`estimators.sample: impl 'fused' needs a float32/float64 tensor on a device that reads synchronously (cpu) and a method with a fused kernel for these options; got ${logits.dtype} on '${logits.device}' with '${opts.method}'`);
    }
  }
  return sampleDetailed(logits, opts).sample;
}

/**
 * {@link sample} built from the method's definition on engine ops, also returning the index, the surrogate and the
 * perturbed logits (every device).
 * @param logits - (..., C) floating tensor
 * @param opts - as for {@link sample}
 */
export function sampleDetailed(logits: Tensor, opts: SampleOptions): SampleDetail {
  const rm = resolveOpts(opts);
  const { tau, k, step } = checkOptions(opts);
  const theta = checkLogits(logits, opts.mask, opts.check ?? true);
  const [kSample, kRao] = random.split(resolveKey(opts), 2);
  const C = logits.shape[logits.rank - 1];

  // D by Gumbel-max: exact Cat(softmax(theta)); the definition may reuse G (gumbel)
  const { G, index, onehot } = noGrad(() => {
    const G = random.gumbel(kSample, logits.shape, { dtype: logits.dtype, device: logits.device });
    const index = ops.argmax(ops.add(theta, G), -1);
    return { G, index, onehot: ops.oneHot(index, C, logits.dtype) };
  });
  const def = rm.def;
  const ctx = { method: opts.method, params: rm.params, logits, theta, onehot, index, gumbel: G, tau, step, k, hard: opts.hard, key: kRao };
  const diff = typeof def.differentiable === 'function' ? def.differentiable(rm.params, { hard: opts.hard }) : Boolean(def.differentiable);
  const parts = diff ? def.build(ctx) : noGrad(() => def.build(ctx));
  if (!parts || typeof parts !== 'object') throw new Error(`estimators: method '${opts.method}': build returned ${parts}; expected { surrogate, backward?, sample? }`);
  const perturbed = parts.perturbed ?? null;
  if (parts.sample) {
    if (!(parts.sample instanceof Tensor) || parts.sample.shape.join() !== logits.shape.join()) {
      throw new Error(`estimators: method '${opts.method}': build's sample must be a Tensor of the logits' shape [${logits.shape}]`);
    }
    return { sample: parts.sample, index, surrogate: parts.surrogate ?? null, perturbed, resolved: rm, tau };
  }
  const surrogate = parts.surrogate ?? null;
  if (!parts.backward && !(surrogate instanceof Tensor)) {
    throw new Error(`estimators: method '${opts.method}': build must return a surrogate tensor, a backward function or a sample`);
  }
  const sTau = parts.tau ?? tau;
  const backward = parts.backward ?? ((g: Tensor) => surrogateVjp(surrogate!, g, sTau));
  const op = ops.customVjp<null>({
    name: `estimator:${opts.method}`,
    forward: () => ({ outputs: [ops.copyOf(onehot)], residuals: null }),
    backward: (_r, [g]) => [g ? backward(g) : null],
  });
  const [out] = op(logits);
  return { sample: out, index, surrogate, perturbed, resolved: rm, tau: sTau };
}

// The estimator registry: every method (built-in or user-defined) is one EstimatorDefinition, registered by
// name or name pattern. estimators.sample, the CLIs, sweeps, benchmarks, the zoo report and the law kit
// (gapgrad/testing) all read it; nothing else lists methods.
import type { Tensor } from '../engine/tensor.ts';
import type { Key } from '../engine/random.ts';
import { BUILTIN_ESTIMATORS } from './builtin.ts';

/**
 * A property an estimator claims; the law kit (`gapgrad/testing`) checks each claim.
 * - `straight-through`: forward onehot(D), backward exactly the VJP `(1/τ) s (g − <s, g>)` of the returned `surrogate` s
 * - `gap`: the perturbed logits keep D the argmax by at least the method's gap and leave far entries untouched (GST)
 * - `mean-gap`: E[(θ_D + G_D) − max_{j≠D}(θ_j + G_j) | D] equals the gap (gst-p)
 * - `unbiased-linear`: at τ = 1, unbiased for linear f (straight-through with s = π)
 * - `unbiased`: unbiased for every f (checked against exact enumeration)
 * - `rao-blackwell`: the conditional expectation of another method's gradient given D (`raoBlackwellOf`): same mean, no larger variance
 */
export type EstimatorLaw = 'straight-through' | 'gap' | 'mean-gap' | 'unbiased-linear' | 'unbiased' | 'rao-blackwell';

/** What an estimator's `build` receives: the sample already drawn (exact Cat(softmax(θ)) by Gumbel-max) and the options. */
export interface EstimatorContext<P = unknown> {
  /** The method name as given, e.g. `gst-1.0`. */
  method: string;
  /** What the definition's `parse` returned for this name. */
  params: P;
  /** The logits as passed. */
  logits: Tensor;
  /** The masked logits θ (masked entries −Infinity); their graph is recorded only in a `differentiable` build. */
  theta: Tensor;
  /** onehot(D), the sample (logits' dtype). */
  onehot: Tensor;
  /** D as int32, shape logits.shape[:-1]. */
  index: Tensor;
  /** The Gumbel noise G of the sample: D = argmax(θ + G). */
  gumbel: Tensor;
  /** The temperature at this step (a schedule already evaluated). */
  tau: number;
  /** The training step passed to sample (0 by default): for methods that anneal. */
  step: number;
  /** `k` of the options (default 100): the number of draws for methods that average several. */
  k: number;
  /** `hard` of the options. */
  hard: boolean | undefined;
  /** A key of the method's own random draws, independent of the sample's. */
  key: Key;
}

/** What an estimator's `build` returns: the backward, as a surrogate or a VJP, or a whole sample. */
export interface EstimatorParts {
  /** The soft surrogate s whose VJP `(1/τ) s (g − <s, g>)` is the backward (null where `sample` or `backward` says all). */
  surrogate: Tensor | null;
  /** The perturbed logits the surrogate is a softmax of (for the law kit and sampleDetailed), if any. */
  perturbed?: Tensor | null;
  /** The temperature inside the surrogate's softmax where it is not the call's τ (a method that anneals). */
  tau?: number;
  /** The logits' cotangent from the sample's cotangent g; default: the surrogate's VJP at τ. */
  backward?: (g: Tensor) => Tensor;
  /** A replacement for the whole output, with its own graph (e.g. value onehot, gradient through non-detached logits). */
  sample?: Tensor;
}

/** A request for a backend's fused kernel (see Backend.fusedEstimator): the kernel's name and its gap. */
export interface FusedKernelRequest {
  /** The kernel name a backend registers, e.g. `gst`. */
  kind: string;
  /** The gap of GST-style kernels. */
  gap?: number;
}

/**
 * One estimator: its name or name pattern, how its backward is built from the drawn sample, and the laws it
 * claims. The forward sample is always drawn by gapgrad: exactly onehot(D), D ~ Cat(softmax(θ)) from the key.
 * @example
 * ```ts
 * estimators.define({
 *   name: 'half_st', description: 'straight-through through softmax(θ / 2τ)', laws: ['straight-through'],
 *   build: ({ theta, tau }) => ({ surrogate: ops.softmax(ops.div(theta, 2 * tau), -1) }),
 * });
 * ```
 */
export interface EstimatorDefinition<P = unknown> {
  /** The method's name, or its family's name where `parse` accepts a pattern (e.g. `gst`). */
  name: string;
  /** How a name with parameters is written in help texts (e.g. `gst-<gap>`); default `name`. */
  syntax?: string;
  /** One line for help texts and the zoo report. */
  description: string;
  /**
   * Parameters of a method name, for a pattern (e.g. `gst-1.0` -> `{ gap: 1 }`): undefined where the name is not
   * this method's; throw (naming what is allowed) where it is but malformed. Default: the exact name, params `{}`.
   */
  parse?(method: string): P | undefined;
  /** Concrete names the tests, benchmarks, sweeps and the report use (default `[name]`). */
  examples?: string[];
  /** The laws this method claims (checked by gapgrad/testing). */
  laws?: EstimatorLaw[];
  /** For `rao-blackwell`: the method whose gradient this one is the conditional expectation of (given D). */
  raoBlackwellOf?: string;
  /** For `gap`: the gap, a number or a function of π_D (default: `params.gap` where a number). */
  gap?(params: P): number | ((piD: number) => number);
  /**
   * The backward from the drawn sample. Runs without gradient recording unless the result is a `sample`
   * override: build it from `logits` then (see nd_gst).
   */
  build(ctx: EstimatorContext<P>): EstimatorParts;
  /** Whether `build` differentiates through θ itself (returns `sample`); it then runs with recording on. */
  differentiable?: boolean | ((params: P, opts: { hard: boolean | undefined }) => boolean);
  /**
   * A backend's fused kernel that computes this method in one pass (Backend.fusedEstimator, by kernel name);
   * null where none applies to these options. Without one (or where the device has no such kernel) `sample`
   * runs `build` on engine ops: every method runs on every device.
   */
  fused?(params: P, opts: { tau: number; hard: boolean | undefined; step: number }): FusedKernelRequest | null;
}

/** A registered method as {@link list} describes it. */
export interface EstimatorInfo {
  /** The method or family name. */
  name: string;
  /** How its names are written, e.g. `gst-<gap>`. */
  syntax: string;
  /** One line. */
  description: string;
  /** Concrete method names. */
  examples: string[];
  /** Claimed laws. */
  laws: EstimatorLaw[];
  /** For rao-blackwell: the method it conditions. */
  raoBlackwellOf?: string;
  /** Whether gapgrad ships it (false: defined by the user). */
  builtin: boolean;
  /** Whether a fused kernel is requested for some options. */
  fused: boolean;
}

/** A method name resolved against the registry. */
export interface ResolvedMethod<P = unknown> {
  /** The name as given. */
  method: string;
  /** Its definition. */
  def: EstimatorDefinition<P>;
  /** Its parameters. */
  params: P;
}

interface Registry { defs: Map<string, { def: EstimatorDefinition<any>; builtin: boolean }> }

// One registry per program even where two copies of gapgrad are loaded (a user's module importing the
// built package while the CLI runs the sources): it lives on globalThis under a registered symbol.
const KEY = Symbol.for('gapgrad.estimators.registry.v1');
function registry(): Registry {
  const g = globalThis as unknown as Record<symbol, Registry | undefined>;
  let r = g[KEY];
  if (!r) {
    r = { defs: new Map() };
    g[KEY] = r;
  }
  if (r.defs.size === 0 || !r.defs.has(BUILTIN_ESTIMATORS[0].name)) {
    for (const d of BUILTIN_ESTIMATORS) if (!r.defs.has(d.name)) r.defs.set(d.name, { def: d, builtin: true });
  }
  return r;
}

const NAME_RE = /^[A-Za-z][A-Za-z0-9_.:+-]*$/;

/**
 * Register an estimator; it is then a method like the built-in ones (sample, the CLI's `--method`, sweeps,
 * benchmarks, the zoo report, the law kit). Throws on a name already registered unless `replace` is set.
 * @param def - the definition
 * @param opts - `replace: true` to redefine a user-defined method (built-in methods cannot be replaced)
 * @returns the definition
 */
export function define<P = Record<string, never>>(def: EstimatorDefinition<P>, opts: { replace?: boolean } = {}): EstimatorDefinition<P> {
  if (!def || typeof def !== 'object') throw new Error(`estimators.define: expected a definition object, got ${def === null ? 'null' : typeof def}`);
  if (typeof def.name !== 'string' || !NAME_RE.test(def.name)) throw new Error(`estimators.define: 'name' must match ${NAME_RE}, got ${JSON.stringify(def.name)}`);
  if (typeof def.description !== 'string' || !def.description) throw new Error(`estimators.define('${def.name}'): 'description' must be a non-empty string`);
  if (typeof def.build !== 'function') throw new Error(`estimators.define('${def.name}'): 'build' must be a function (ctx) => { surrogate, backward?, sample? }`);
  if (def.parse !== undefined && typeof def.parse !== 'function') throw new Error(`estimators.define('${def.name}'): 'parse' must be a function`);
  const allowed: EstimatorLaw[] = ['straight-through', 'gap', 'mean-gap', 'unbiased-linear', 'unbiased', 'rao-blackwell'];
  for (const l of def.laws ?? []) if (!allowed.includes(l)) throw new Error(`estimators.define('${def.name}'): unknown law '${l}'; allowed: ${allowed.join(', ')}`);
  if ((def.laws ?? []).includes('rao-blackwell') && !def.raoBlackwellOf) throw new Error(`estimators.define('${def.name}'): law 'rao-blackwell' needs 'raoBlackwellOf' (the method it conditions)`);
  const r = registry();
  const had = r.defs.get(def.name);
  if (had && (had.builtin || !opts.replace)) {
    throw new Error(`estimators.define: method '${def.name}' is already defined${had.builtin ? ' (built in)' : '; pass { replace: true } to redefine it'}`);
  }
  for (const ex of def.examples ?? [def.name]) {
    const p = def.parse ? def.parse(ex) : ex === def.name ? {} : undefined;
    if (p === undefined) throw new Error(`estimators.define('${def.name}'): example '${ex}' is not accepted by its own parse`);
    const other = findDef(ex, r, def.name);
    if (other) throw new Error(`estimators.define('${def.name}'): example '${ex}' is already a name of method '${other.name}'`);
  }
  r.defs.set(def.name, { def, builtin: false });
  return def;
}

/**
 * Remove a user-defined method (tests; a module that redefines). Built-in methods cannot be removed.
 * @param name - the definition's name
 * @returns whether it was registered
 */
export function undefine(name: string): boolean {
  const r = registry();
  const had = r.defs.get(name);
  if (had?.builtin) throw new Error(`estimators.undefine: '${name}' is built in`);
  return r.defs.delete(name);
}

function findDef(method: string, r: Registry, skip?: string): EstimatorDefinition<any> | null {
  const exact = r.defs.get(method);
  if (exact && exact.def.name !== skip && (!exact.def.parse || exact.def.parse(method) !== undefined)) return exact.def;
  for (const { def } of r.defs.values()) {
    if (def.name === skip || !def.parse) continue;
    if (def.parse(method) !== undefined) return def;
  }
  return null;
}

/** Every registered method (built-in first, then user-defined in the order defined). */
export function list(): EstimatorInfo[] {
  return [...registry().defs.values()].map(({ def, builtin }) => ({
    name: def.name, syntax: def.syntax ?? def.name, description: def.description,
    examples: (def.examples ?? [def.name]).slice(), laws: (def.laws ?? []).slice(),
    ...(def.raoBlackwellOf ? { raoBlackwellOf: def.raoBlackwellOf } : {}), builtin, fused: Boolean(def.fused),
  }));
}

/** The concrete example names of every registered method, in registry order: what tests, sweeps and benchmarks iterate. */
export function exampleMethods(): string[] {
  return list().flatMap((m) => m.examples);
}

/** The valid method names, for help texts and errors (from the registry). */
export function methodsHelp(): string {
  return list().map((m) => m.syntax).join(', ');
}

/**
 * Look a method name up: its definition and parameters. Throws naming the valid methods.
 * @param method - e.g. `gst-1.0`
 */
export function resolve(method: string): ResolvedMethod {
  if (typeof method !== 'string') throw new Error(`estimators: method must be a string, got ${typeof method}; valid methods: ${methodsHelp()}`);
  let def: EstimatorDefinition<any> | null;
  try {
    def = findDef(method, registry());
  } catch (e) {
    throw new Error(`${(e as Error).message}; valid methods: ${methodsHelp()}`);
  }
  if (!def) throw new Error(`estimators: unknown method '${method}'; valid methods: ${methodsHelp()}`);
  const params = def.parse ? def.parse(method) : {};
  return { method, def, params };
}

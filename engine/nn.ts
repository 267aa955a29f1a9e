// Modules with named parameter trees and PyTorch's default initialisation.
// A Module's parameters are its Tensor fields that require grad; its children are its Module fields
// (and arrays of Modules). Names follow PyTorch's state_dict convention: "encoder.0.weight".
import { Tensor, noGrad, type Device } from './tensor.ts';
import * as ops from './ops.ts';
import * as random from './random.ts';
import type { DType } from './dtype.ts';

/** Options of the module constructors. */
export interface InitOptions {
  /** Key for the initial values; otherwise the next key of the global init generator ({@link manualSeed}). */
  key?: random.Key; // explicit key for the initial values; otherwise the global init generator
  /** Parameter dtype (default float32). */
  dtype?: DType;
  /** Parameter device (default: the default device). */
  device?: Device;
}

let initGen = new random.Generator(0);
/**
 * Seed the generator used by module initialisers that are given no key (like `torch.manual_seed`).
 * @param seed - a non-negative integer
 */
export function manualSeed(seed: number): void {
  initGen = new random.Generator(seed);
}
function initKey(opts: InitOptions): random.Key {
  return opts.key ?? initGen.next();
}

function uniformParam(k: random.Key, shape: number[], bound: number, opts: InitOptions): Tensor {
  return random.uniform(k, shape, { dtype: opts.dtype, device: opts.device, low: -bound, high: bound }).requireGrad();
}

/**
 * Base class of layers (like `torch.nn.Module`). A module's parameters are its Tensor fields that require grad;
 * its children are its Module fields and arrays of Modules. Names follow PyTorch's state_dict convention (`encoder.0.weight`).
 * @example
 * ```ts
 * class Mlp extends nn.Module {
 *   l1 = new nn.Linear(4, 8);
 *   l2 = new nn.Linear(8, 1);
 *   forward(x: Tensor) { return this.l2.forward(this.l1.forward(x).relu()); }
 * }
 * new Mlp().namedParameters().map(([n]) => n); // ['l1.weight', 'l1.bias', 'l2.weight', 'l2.bias']
 * ```
 */
export abstract class Module {
  /** Training mode (dropout active); set with {@link Module.train} / {@link Module.eval}. */
  training = true;

  /** The computation; subclasses choose its arguments. */
  abstract forward(...args: never[]): unknown;

  /**
   * [name, parameter] pairs in field order, recursively.
   * @param prefix - prepended to every name
   */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [k, v] of Object.entries(this)) {
      const name = prefix + k;
      if (v instanceof Tensor && v.requiresGrad) out.push([name, v]);
      else if (v instanceof Module) out.push(...v.namedParameters(name + '.'));
      else if (Array.isArray(v)) {
        v.forEach((c, i) => {
          if (c instanceof Module) out.push(...c.namedParameters(`${name}.${i}.`));
          else if (c instanceof Tensor && c.requiresGrad) out.push([`${name}.${i}`, c]);
        });
      }
    }
    return out;
  }

  /** The parameters, in {@link Module.namedParameters} order (pass to an optimizer). */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** This module and every descendant. */
  modules(): Module[] {
    const out: Module[] = [this];
    for (const v of Object.values(this)) {
      if (v instanceof Module) out.push(...v.modules());
      else if (Array.isArray(v)) v.forEach((c) => { if (c instanceof Module) out.push(...c.modules()); });
    }
    return out;
  }

  /**
   * Set training mode on this module and its descendants.
   * @param flag - true for training, false for evaluation
   */
  train(flag = true): this {
    for (const m of this.modules()) m.training = flag;
    return this;
  }
  /** Evaluation mode (`train(false)`). */
  eval(): this {
    return this.train(false);
  }

  /** name -> parameter (the tensors themselves, not copies), as PyTorch's `state_dict()`. */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries(this.namedParameters());
  }

  /**
   * Copy values in from a name -> tensor record; names and shapes must match exactly (values are cast to each parameter's dtype).
   * @param state - e.g. from `load` or another module's {@link Module.stateDict}
   */
  loadStateDict(state: Record<string, Tensor>): void {
    const own = this.namedParameters();
    const missing = own.filter(([n]) => !(n in state)).map(([n]) => n);
    const unexpected = Object.keys(state).filter((n) => !own.some(([m]) => m === n));
    if (missing.length || unexpected.length) {
      throw new Error(`loadStateDict: missing [${missing.join(', ')}], unexpected [${unexpected.join(', ')}]${renameHint(missing, unexpected)}`);
    }
    noGrad(() => {
      for (const [n, p] of own) {
        const src = state[n];
        if (src.shape.join() !== p.shape.join()) throw new Error(`loadStateDict: '${n}' has shape [${src.shape}], expected [${p.shape}]`);
        p.assign(ops.copyOf(src.device === p.device && src.dtype === p.dtype ? src : ops.cast(src, p.dtype)));
      }
    });
  }

  /** Total number of parameter elements. */
  numParameters(): number {
    return this.parameters().reduce((a, p) => a + p.size, 0);
  }
}

// Checkpoints written before parameters took PyTorch's snake_case names (nn.LSTMCell's weightIh ->
// weight_ih, ...) fail to load; name the renamed keys so the error says what happened.
function renameHint(missing: string[], unexpected: string[]): string {
  const snake = (n: string) => n.replace(/[^.]+$/, (last) => last.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
  const pairs = unexpected.filter((u) => snake(u) !== u && missing.includes(snake(u)));
  if (!pairs.length) return '';
  return `; ${pairs.map((u) => `'${u}' is now named '${snake(u)}'`).join(', ')}: parameters follow PyTorch's state_dict names ` +
    `(nn.LSTMCell's weightIh, weightHh, biasIh, biasHh became weight_ih, weight_hh, bias_ih, bias_hh); rename those keys in the checkpoint or retrain`;
}

/** A layer's sizes must be positive integers: an error naming the layer, each size and its value. */
function checkSizes(layer: string, sizes: Record<string, number>): void {
  const bad = Object.entries(sizes).filter(([, v]) => !Number.isInteger(v) || v <= 0);
  if (bad.length) throw new Error(`${layer}: ${Object.keys(sizes).join(' and ')} must be positive integers, got ${Object.entries(sizes).map(([k, v]) => `${k} ${v}`).join(', ')}`);
}

/**
 * `y = x W^T + b` (`torch.nn.Linear`); W (out, in) and b ~ U(-1/sqrt(in), 1/sqrt(in)) as PyTorch's default init.
 * @example
 * ```ts
 * const fc = new nn.Linear(784, 10);
 * const logits = fc.forward(x); // x: (N, 784) -> (N, 10)
 * ```
 */
export class Linear extends Module {
  /** Weight (out, in). */
  weight: Tensor;
  /** Bias (out), or null when built with `bias: false`. */
  bias: Tensor | null;
  /**
   * @param inFeatures - input features
   * @param outFeatures - output features
   * @param opts - initialisation key, dtype, device; `bias: false` for none
   */
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: InitOptions & { bias?: boolean } = {}) {
    super();
    checkSizes('Linear', { inFeatures, outFeatures });
    const [kw, kb] = random.split(initKey(opts), 2);
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = uniformParam(kw, [outFeatures, inFeatures], bound, opts);
    this.bias = opts.bias === false ? null : uniformParam(kb, [outFeatures], bound, opts);
  }
  /**
   * Apply the layer.
   * @param x - input (..., inFeatures)
   */
  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias);
  }
}

/** Lookup table (`torch.nn.Embedding`); weights ~ N(0, 1). `forward(indices)` takes int32 indices of any shape. */
export class Embedding extends Module {
  /** The table (numEmbeddings, dim). */
  weight: Tensor;
  /**
   * @param numEmbeddings - table rows
   * @param dim - embedding size
   * @param opts - initialisation key, dtype, device
   */
  constructor(readonly numEmbeddings: number, readonly dim: number, opts: InitOptions = {}) {
    super();
    checkSizes('Embedding', { numEmbeddings, dim });
    this.weight = random.normal(initKey(opts), [numEmbeddings, dim], { dtype: opts.dtype, device: opts.device }).requireGrad();
  }
  /**
   * Look up rows.
   * @param indices - int32 indices of any shape; the result has shape [...indices.shape, dim]
   */
  forward(indices: Tensor): Tensor {
    return ops.take(this.weight, indices, 0);
  }
}

/**
 * PyTorch's `nn.LSTMCell`: gates (i, f, g, o); all weights and biases ~ U(-1/sqrt(H), 1/sqrt(H)).
 * The parameters carry PyTorch's names (`weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`), so a PyTorch
 * state_dict maps by name.
 * @example
 * ```ts
 * const cell = new nn.LSTMCell(8, 16);
 * const [h, c] = cell.forward(x, [zeros([4, 16]), zeros([4, 16])]); // x: (4, 8)
 * ```
 */
export class LSTMCell extends Module {
  /** Input-to-hidden weights (4H, inputSize), gates stacked i, f, g, o. */
  weight_ih: Tensor;
  /** Hidden-to-hidden weights (4H, H). */
  weight_hh: Tensor;
  /** Input-to-hidden bias (4H). */
  bias_ih: Tensor;
  /** Hidden-to-hidden bias (4H). */
  bias_hh: Tensor;
  /**
   * @param inputSize - features of the input x
   * @param hiddenSize - features of the state h and c (H)
   * @param opts - initialisation key, dtype, device
   */
  constructor(readonly inputSize: number, readonly hiddenSize: number, opts: InitOptions = {}) {
    super();
    checkSizes('LSTMCell', { inputSize, hiddenSize });
    const ks = random.split(initKey(opts), 4);
    const b = 1 / Math.sqrt(hiddenSize);
    this.weight_ih = uniformParam(ks[0], [4 * hiddenSize, inputSize], b, opts);
    this.weight_hh = uniformParam(ks[1], [4 * hiddenSize, hiddenSize], b, opts);
    this.bias_ih = uniformParam(ks[2], [4 * hiddenSize], b, opts);
    this.bias_hh = uniformParam(ks[3], [4 * hiddenSize], b, opts);
  }
  /**
   * One step.
   * @param x - input (..., inputSize)
   * @param state - [h, c], each (..., H)
   * @returns the next [h, c]
   */
  forward(x: Tensor, state: [Tensor, Tensor]): [Tensor, Tensor] {
    const [h, c] = state;
    const H = this.hiddenSize;
    const z = ops.add(ops.linear(x, this.weight_ih, this.bias_ih), ops.linear(h, this.weight_hh, this.bias_hh));
    const gate = (i: number) => ops.narrow(z, -1, i * H, H);
    const i = ops.sigmoid(gate(0)), f = ops.sigmoid(gate(1)), g = ops.tanh(gate(2)), o = ops.sigmoid(gate(3));
    const c2 = ops.add(ops.mul(f, c), ops.mul(i, g));
    return [ops.mul(o, ops.tanh(c2)), c2];
  }
}

/** Inverted dropout (`torch.nn.Dropout`) driven by its own seeded generator; identity in eval mode. */
export class Dropout extends Module {
  /** The mask stream (checkpoint it with `generator.state()`). */
  generator: random.Generator;
  /**
   * @param p - drop probability in [0, 1)
   * @param opts - seed of the mask generator (default 0)
   */
  constructor(readonly p: number, opts: { seed?: number } = {}) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout: p must be in [0, 1), got ${p}`);
    this.generator = new random.Generator(opts.seed ?? 0);
  }
  /**
   * Zero entries with probability p and scale the rest by 1 / (1 - p) in training mode; identity in eval mode.
   * @param x - input
   * @param key - mask key; default: the module's generator's next key
   */
  forward(x: Tensor, key?: random.Key): Tensor {
    if (!this.training || this.p === 0) return x;
    const mask = random.bernoulli(key ?? this.generator.next(), 1 - this.p, x.shape, { dtype: x.dtype, device: x.device });
    return ops.mul(x, ops.div(mask, 1 - this.p));
  }
}

/** `relu` as a module (for {@link Sequential}). */
export class ReLU extends Module {
  forward(x: Tensor): Tensor { return ops.relu(x); }
}
/** `sigmoid` as a module (for {@link Sequential}). */
export class Sigmoid extends Module {
  forward(x: Tensor): Tensor { return ops.sigmoid(x); }
}
/** `tanh` as a module (for {@link Sequential}). */
export class Tanh extends Module {
  forward(x: Tensor): Tensor { return ops.tanh(x); }
}

/**
 * Modules applied in order (`torch.nn.Sequential`); parameters named by position (`0.weight`).
 * @example
 * ```ts
 * const mlp = new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU(), new nn.Linear(8, 1));
 * ```
 */
export class Sequential extends Module {
  /** The modules, in order. */
  layers: Module[];
  /** @param layers - modules whose forward takes and returns one tensor */
  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
  }
  override namedParameters(prefix = ''): [string, Tensor][] {
    return this.layers.flatMap((l, i) => l.namedParameters(`${prefix}${i}.`));
  }
  forward(x: Tensor): Tensor {
    let y = x;
    for (const l of this.layers) y = (l.forward as (t: Tensor) => Tensor)(y);
    return y;
  }
}

// Modules with named parameter trees and PyTorch's default initialisation.
// A Module's parameters are its Tensor fields that require grad; its children are its Module fields
// (and arrays of Modules). Names follow PyTorch's state_dict convention: "encoder.0.weight".
import { Tensor, noGrad, type Device } from './tensor.ts';
import * as ops from './ops.ts';
import * as random from './random.ts';
import type { DType } from './dtype.ts';

export interface InitOptions {
  key?: random.Key; // explicit key for the initial values; otherwise the global init generator
  dtype?: DType;
  device?: Device;
}

let initGen = new random.Generator(0);
/** Seed the generator used by module initialisers that are given no key (like torch.manual_seed). */
export function manualSeed(seed: number): void {
  initGen = new random.Generator(seed);
}
function initKey(opts: InitOptions): random.Key {
  return opts.key ?? initGen.next();
}

function uniformParam(k: random.Key, shape: number[], bound: number, opts: InitOptions): Tensor {
  return random.uniform(k, shape, { dtype: opts.dtype, device: opts.device, low: -bound, high: bound }).requireGrad();
}

export abstract class Module {
  training = true;

  abstract forward(...args: never[]): unknown;

  /** [name, parameter] pairs in field order, recursively. */
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

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  modules(): Module[] {
    const out: Module[] = [this];
    for (const v of Object.values(this)) {
      if (v instanceof Module) out.push(...v.modules());
      else if (Array.isArray(v)) v.forEach((c) => { if (c instanceof Module) out.push(...c.modules()); });
    }
    return out;
  }

  train(flag = true): this {
    for (const m of this.modules()) m.training = flag;
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  stateDict(): Record<string, Tensor> {
    return Object.fromEntries(this.namedParameters());
  }

  /** Copy values in from a name -> tensor record; names and shapes must match exactly. */
  loadStateDict(state: Record<string, Tensor>): void {
    const own = this.namedParameters();
    const missing = own.filter(([n]) => !(n in state)).map(([n]) => n);
    const unexpected = Object.keys(state).filter((n) => !own.some(([m]) => m === n));
    if (missing.length || unexpected.length) {
      throw new Error(`loadStateDict: missing [${missing.join(', ')}], unexpected [${unexpected.join(', ')}]`);
    }
    noGrad(() => {
      for (const [n, p] of own) {
        const src = state[n];
        if (src.shape.join() !== p.shape.join()) throw new Error(`loadStateDict: '${n}' has shape [${src.shape}], expected [${p.shape}]`);
        p.assign(ops.copyOf(src.device === p.device && src.dtype === p.dtype ? src : ops.cast(src, p.dtype)));
      }
    });
  }

  numParameters(): number {
    return this.parameters().reduce((a, p) => a + p.size, 0);
  }
}

/** y = x W^T + b; W (out, in) ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming-uniform, a = sqrt(5)), b likewise. */
export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: InitOptions & { bias?: boolean } = {}) {
    super();
    if (!Number.isInteger(inFeatures) || inFeatures <= 0 || !Number.isInteger(outFeatures) || outFeatures <= 0) {
      throw new Error(`Linear: inFeatures and outFeatures must be positive integers, got ${inFeatures}, ${outFeatures}`);
    }
    const [kw, kb] = random.split(initKey(opts), 2);
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = uniformParam(kw, [outFeatures, inFeatures], bound, opts);
    this.bias = opts.bias === false ? null : uniformParam(kb, [outFeatures], bound, opts);
  }
  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias);
  }
}

/** Lookup table; weights ~ N(0, 1) as in PyTorch. */
export class Embedding extends Module {
  weight: Tensor;
  constructor(readonly numEmbeddings: number, readonly dim: number, opts: InitOptions = {}) {
    super();
    this.weight = random.normal(initKey(opts), [numEmbeddings, dim], { dtype: opts.dtype, device: opts.device }).requireGrad();
  }
  forward(indices: Tensor): Tensor {
    return ops.take(this.weight, indices, 0);
  }
}

/** PyTorch's LSTMCell: gates (i, f, g, o); all weights and biases ~ U(-1/sqrt(H), 1/sqrt(H)). */
export class LSTMCell extends Module {
  weightIh: Tensor;
  weightHh: Tensor;
  biasIh: Tensor;
  biasHh: Tensor;
  constructor(readonly inputSize: number, readonly hiddenSize: number, opts: InitOptions = {}) {
    super();
    const ks = random.split(initKey(opts), 4);
    const b = 1 / Math.sqrt(hiddenSize);
    this.weightIh = uniformParam(ks[0], [4 * hiddenSize, inputSize], b, opts);
    this.weightHh = uniformParam(ks[1], [4 * hiddenSize, hiddenSize], b, opts);
    this.biasIh = uniformParam(ks[2], [4 * hiddenSize], b, opts);
    this.biasHh = uniformParam(ks[3], [4 * hiddenSize], b, opts);
  }
  forward(x: Tensor, state: [Tensor, Tensor]): [Tensor, Tensor] {
    const [h, c] = state;
    const H = this.hiddenSize;
    const z = ops.add(ops.linear(x, this.weightIh, this.biasIh), ops.linear(h, this.weightHh, this.biasHh));
    const gate = (i: number) => ops.narrow(z, -1, i * H, H);
    const i = ops.sigmoid(gate(0)), f = ops.sigmoid(gate(1)), g = ops.tanh(gate(2)), o = ops.sigmoid(gate(3));
    const c2 = ops.add(ops.mul(f, c), ops.mul(i, g));
    return [ops.mul(o, ops.tanh(c2)), c2];
  }
}

/** Inverted dropout driven by its own seeded generator (state() for checkpoints). */
export class Dropout extends Module {
  generator: random.Generator;
  constructor(readonly p: number, opts: { seed?: number } = {}) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout: p must be in [0, 1), got ${p}`);
    this.generator = new random.Generator(opts.seed ?? 0);
  }
  forward(x: Tensor, key?: random.Key): Tensor {
    if (!this.training || this.p === 0) return x;
    const mask = random.bernoulli(key ?? this.generator.next(), 1 - this.p, x.shape, { dtype: x.dtype, device: x.device });
    return ops.mul(x, ops.div(mask, 1 - this.p));
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor { return ops.relu(x); }
}
export class Sigmoid extends Module {
  forward(x: Tensor): Tensor { return ops.sigmoid(x); }
}
export class Tanh extends Module {
  forward(x: Tensor): Tensor { return ops.tanh(x); }
}

/** Modules applied in order; parameters named by position ("0.weight"). */
export class Sequential extends Module {
  layers: Module[];
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

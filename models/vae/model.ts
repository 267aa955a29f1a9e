// The authors' categorical MNIST VAE: encoder 784-512-256-(L*C) with ReLU after every layer
// (the logits too, unless logitRelu is false), L categorical latents of C classes sampled with a
// discrete estimator, decoder (L*C)-256-512-784 with a sigmoid output.
import { Tensor, noGrad } from '../../engine/tensor.ts';
import * as ops from '../../engine/ops.ts';
import * as nn from '../../engine/nn.ts';
import * as random from '../../engine/random.ts';
import { sample } from '../../estimators/index.ts';
import type { Device } from '../../engine/tensor.ts';

export interface VaeConfig {
  latent: number; // L
  categories: number; // C
  logitRelu: boolean;
  hidden: [number, number]; // 512, 256
  inputDim: number; // 784
}

export const DEFAULT_VAE: VaeConfig = { latent: 30, categories: 10, logitRelu: true, hidden: [512, 256], inputDim: 784 };

/**
 * The parameters' names and shapes for a configuration, in the model's parameter order, without building it:
 * checkpoints are compared with these before anything is allocated (test/checkpoint_untrusted.test.ts keeps
 * them equal to a built model's).
 */
export function vaeParameterShapes(cfg: VaeConfig): [string, number[]][] {
  const [h1, h2] = cfg.hidden;
  const z = cfg.latent * cfg.categories;
  const lin = (n: string, i: number, o: number): [string, number[]][] => [[`${n}.weight`, [o, i]], [`${n}.bias`, [o]]];
  return [...lin('enc1', cfg.inputDim, h1), ...lin('enc2', h1, h2), ...lin('enc3', h2, z), ...lin('dec1', z, h2), ...lin('dec2', h2, h1), ...lin('dec3', h1, cfg.inputDim)];
}

export interface VaeLoss {
  loss: Tensor; // mean over the batch of (BCE summed over pixels + KL summed over latents)
  bce: Tensor;
  kl: Tensor;
  reconLogits: Tensor; // (B, 784)
  sample: Tensor; // (B, L, C) one-hot
}

export class CategoricalVae extends nn.Module {
  enc1: nn.Linear; enc2: nn.Linear; enc3: nn.Linear;
  dec1: nn.Linear; dec2: nn.Linear; dec3: nn.Linear;
  constructor(readonly cfg: VaeConfig, opts: { key: random.Key; device?: Device }) {
    super();
    const ks = random.split(opts.key, 6);
    const [h1, h2] = cfg.hidden;
    const z = cfg.latent * cfg.categories;
    const o = (i: number) => ({ key: ks[i], device: opts.device });
    this.enc1 = new nn.Linear(cfg.inputDim, h1, o(0));
    this.enc2 = new nn.Linear(h1, h2, o(1));
    this.enc3 = new nn.Linear(h2, z, o(2));
    this.dec1 = new nn.Linear(z, h2, o(3));
    this.dec2 = new nn.Linear(h2, h1, o(4));
    this.dec3 = new nn.Linear(h1, cfg.inputDim, o(5));
  }

  encoderParameters(): Tensor[] {
    return [this.enc1, this.enc2, this.enc3].flatMap((l) => l.parameters());
  }

  /** (B, 784) -> logits (B, L, C) */
  encode(x: Tensor): Tensor {
    // linear + relu as one op (one fused kernel where the backend has one)
    const lr = (l: nn.Linear, v: Tensor) => ops.linearRelu(v, l.weight, l.bias);
    let h = lr(this.enc1, x);
    h = lr(this.enc2, h);
    const logits = this.cfg.logitRelu ? lr(this.enc3, h) : this.enc3.forward(h);
    return ops.reshape(logits, [x.shape[0], this.cfg.latent, this.cfg.categories]);
  }

  /** (B, L, C) codes -> pixel logits (B, 784) */
  decodeLogits(z: Tensor): Tensor {
    const b = z.shape[0];
    let h = ops.linearRelu(ops.reshape(z, [b, this.cfg.latent * this.cfg.categories]), this.dec1.weight, this.dec1.bias);
    h = ops.linearRelu(h, this.dec2.weight, this.dec2.bias);
    return this.dec3.forward(h);
  }

  forward(x: Tensor, opts: { method: string; tau: number; key: random.Key; k?: number; step?: number }): VaeLoss {
    const logits = this.encode(x);
    const z = sample(logits, { method: opts.method, tau: opts.tau, step: opts.step, key: opts.key, k: opts.k, check: false });
    const reconLogits = this.decodeLogits(z);
    const B = x.shape[0];
    // BCE(sigmoid(r), x) summed over pixels, in its stable logit form
    const bce = ops.div(ops.binaryCrossEntropyWithLogits(reconLogits, x, 'sum'), B);
    // KL(q || Uniform(C)) = sum_c q_c (log q_c + log C), summed over latents
    const logq = ops.logSoftmax(logits, -1);
    const q = ops.exp(logq);
    const kl = ops.div(ops.sum(ops.mul(q, ops.add(logq, Math.log(this.cfg.categories)))), B);
    return { loss: ops.add(bce, kl), bce, kl, reconLogits, sample: z };
  }

  /** Decode images (probabilities) from codes without recording a graph. */
  decode(z: Tensor): Tensor {
    return noGrad(() => ops.sigmoid(this.decodeLogits(z)));
  }
}

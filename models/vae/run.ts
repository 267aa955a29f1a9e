// The categorical MNIST VAE's training run, platform-neutral (Node and browsers): the model, Adam, keyed draws,
// epochs, the test loss, the gradient-variance measurement, pictures, and checkpoints as safetensors bytes.
// Every random draw is keyed by (seed, purpose, counter), so a resumed run replays exactly the draws of an
// uninterrupted one: the checkpoint stores parameters, Adam's moments and the step. Files: ./train.ts.
import { Tensor, tensor, tidy, noGrad, keep } from '../../engine/tensor.ts';
import * as random from '../../engine/random.ts';
import * as optim from '../../engine/optim.ts';
import { saveBytes } from '../../engine/serialize.ts';
import { stack } from '../../engine/ops.ts';
import { trainingState, restoreTrainingState, checkpointFromBytes, checkCheckpointShapes, checkpointTensors, type CheckpointBytes } from '../checkpoint.ts';
import { parseMethod, tauSchedule } from '../../estimators/index.ts';
import { CategoricalVae, DEFAULT_VAE, vaeParameterShapes, type VaeConfig } from './model.ts';
import type { Mnist, MnistSplit } from './idx.ts';

export interface VaeTrainConfig {
  method: string;
  tau: number;
  /** a temperature schedule (estimators.tauSchedule) replacing tau during training; null: tau throughout */
  tauSchedule?: string | null;
  epochs: number;
  seed: number;
  device: string;
  latent: number;
  categories: number;
  batchSize: number;
  lr: number;
  logitRelu: boolean;
  binarize: 'none' | 'dynamic';
  k: number; // rao_gumbel draws
  trainLimit: number | null; // use only the first N training images (quick runs, tests)
  testLimit: number | null;
  mnistDir: string | null;
}

export const DEFAULT_TRAIN: VaeTrainConfig = {
  method: 'gst-1.0', tau: 1, epochs: 40, seed: 1, device: 'cpu', latent: 30, categories: 10, batchSize: 100, lr: 1e-3,
  logitRelu: true, binarize: 'none', k: 100, trainLimit: null, testLimit: null, mnistDir: null,
};

export interface EpochMetrics {
  epoch: number;
  train_loss: number;
  test_loss: number;
  seconds: number;
  steps: number;
}

// purposes of the key tree under key(seed)
const PURPOSE = { init: 0, shuffle: 1, sample: 2, binarize: 3, testSample: 4, testBinarize: 5, variance: 6, pictures: 7 } as const;

export function vaeConfigOf(c: VaeTrainConfig): VaeConfig {
  return { ...DEFAULT_VAE, latent: c.latent, categories: c.categories, logitRelu: c.logitRelu };
}

export function validateTrainConfig(c: VaeTrainConfig): void {
  try { parseMethod(c.method); } catch (e) { throw new Error(`--method: ${(e as Error).message}`); }
  if (c.tauSchedule) tauSchedule(c.tauSchedule, '--tau-schedule');
  const posInt = (v: number, n: string) => { if (!Number.isInteger(v) || v <= 0) throw new Error(`--${n}: expected a positive integer, got ${v}`); };
  posInt(c.epochs, 'epochs'); posInt(c.latent, 'latent'); posInt(c.categories, 'categories'); posInt(c.batchSize, 'batch-size'); posInt(c.k, 'k');
  if (!Number.isSafeInteger(c.seed) || c.seed < 0) throw new Error(`--seed: expected a non-negative integer, got ${c.seed}`);
  if (!(c.tau > 0)) throw new Error(`--tau: expected a positive number, got ${c.tau}`);
  if (!(c.lr > 0)) throw new Error(`--lr: expected a positive number, got ${c.lr}`);
  if (c.binarize !== 'none' && c.binarize !== 'dynamic') throw new Error(`--binarize: expected 'none' or 'dynamic', got '${c.binarize}'`);
  if (c.trainLimit !== null) posInt(c.trainLimit, 'train-limit');
  if (c.testLimit !== null) posInt(c.testLimit, 'test-limit');
  if (c.trainLimit !== null && c.trainLimit < c.batchSize) {
    throw new Error(`--train-limit ${c.trainLimit} is smaller than --batch-size ${c.batchSize}: an epoch would have no step`);
  }
}

export function limitSplit(s: MnistSplit, n: number | null): MnistSplit {
  if (n === null || n >= s.count) return s;
  return { ...s, count: n, images: s.images.subarray(0, n * s.rows * s.cols), labels: s.labels.subarray(0, n) };
}

export function batchOf(split: MnistSplit, idx: ArrayLike<number>, from: number, to: number): Float32Array {
  const d = split.rows * split.cols;
  const out = new Float32Array((to - from) * d);
  for (let i = from; i < to; i++) out.set(split.images.subarray(idx[i] * d, (idx[i] + 1) * d), (i - from) * d);
  return out;
}

function inputTensor(pixels: Float32Array, rows: number, c: VaeTrainConfig, binKey: random.Key | null): Tensor {
  const x = tensor(pixels, [rows, 784], { device: c.device });
  if (c.binarize === 'dynamic' && binKey) return random.bernoulli(binKey, x);
  return x;
}

export class VaeRun {
  readonly model: CategoricalVae;
  readonly opt: optim.Adam;
  readonly root: random.Key;
  epoch = 0; // completed epochs
  step = 0; // completed optimisation steps
  metrics: EpochMetrics[] = [];

  constructor(readonly cfg: VaeTrainConfig, readonly data: Mnist) {
    validateTrainConfig(cfg);
    for (const [name, s] of [['training', data.train], ['test', data.test]] as const) {
      if (s.rows !== 28 || s.cols !== 28) {
        throw new Error(`MNIST ${name} images${cfg.mnistDir ? ` in ${cfg.mnistDir}` : ''} are ${s.rows}x${s.cols} pixels; the VAE takes 28x28 images`);
      }
    }
    this.root = random.key(cfg.seed);
    this.model = new CategoricalVae(vaeConfigOf(cfg), { key: random.foldIn(this.root, PURPOSE.init), device: cfg.device });
    this.opt = new optim.Adam(this.model.parameters(), { lr: cfg.lr });
  }

  private k(purpose: number, counter: number): random.Key {
    return random.foldIn(random.foldIn(this.root, purpose), counter);
  }

  stepsPerEpoch(): number {
    return Math.floor(this.data.train.count / this.cfg.batchSize);
  }

  /**
   * One epoch of training; onStep gets the running mean loss. Returns the mean training loss.
   * Losses stay on the device and are read back every `readEvery` steps (1 on CPU, where reads are free).
   */
  async trainEpoch(onStep?: (i: number, total: number, running: number) => void): Promise<number> {
    const c = this.cfg;
    const train = this.data.train;
    const perm = random.permutation(this.k(PURPOSE.shuffle, this.epoch), train.count);
    const steps = this.stepsPerEpoch();
    const readEvery = c.device === 'cpu' ? 1 : 50;
    let total = 0;
    let pending: Tensor[] = [];
    this.model.train();
    const drain = async (s: number) => {
      if (!pending.length) return;
      const sum = tidy(() => pending.reduce((a, b) => a.add(b)));
      const v = (await sum.data())[0];
      sum.dispose();
      pending.forEach((t) => t.dispose());
      pending = [];
      if (!Number.isFinite(v)) throw new Error(`training diverged: loss ${v} at epoch ${this.epoch + 1}, near step ${s}`);
      total += v;
      onStep?.(s, steps, total / s);
    };
    for (let s = 0; s < steps; s++) {
      const pixels = batchOf(train, perm, s * c.batchSize, (s + 1) * c.batchSize);
      const loss = this.optimStep(pixels);
      keep(loss);
      pending.push(loss);
      this.step++;
      if ((s + 1) % readEvery === 0 || s + 1 === steps) await drain(s + 1);
    }
    return total / steps;
  }

  /**
   * `count` training steps from where the run stands, in the order trainEpoch takes them (the same keys, so the
   * same losses as an epoch's first steps); crossing an epoch's end starts the next epoch. Returns each step's
   * loss. For step-wise loops (a page that updates between steps); epochs count only whole ones.
   */
  async trainSteps(count: number): Promise<number[]> {
    if (!Number.isInteger(count) || count < 1) throw new Error(`trainSteps: count must be a positive integer, got ${count}`);
    const c = this.cfg;
    const train = this.data.train;
    const per = this.stepsPerEpoch();
    const pending: Tensor[] = [];
    this.model.train();
    let epoch = Math.floor(this.step / per);
    let perm = random.permutation(this.k(PURPOSE.shuffle, epoch), train.count);
    for (let n = 0; n < count; n++) {
      const e = Math.floor(this.step / per);
      if (e !== epoch) { epoch = e; perm = random.permutation(this.k(PURPOSE.shuffle, epoch), train.count); }
      const s = this.step - e * per;
      const pixels = batchOf(train, perm, s * c.batchSize, (s + 1) * c.batchSize);
      pending.push(keep(this.optimStep(pixels)));
      this.step++;
      if (this.step % per === 0) this.epoch = this.step / per;
    }
    // the losses stay on the device until the end: one read for the whole call (a sync on WebGPU)
    const all = tidy(() => stack(pending));
    const losses = Array.from(await all.data());
    all.dispose();
    pending.forEach((t) => t.dispose());
    const bad = losses.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new Error(`training diverged: loss ${losses[bad]} at step ${this.step - count + bad + 1}`);
    return losses;
  }

  /** One optimisation step on a batch of pixels (the keys of step `this.step`); the loss, detached, on the device. */
  private optimStep(pixels: Float32Array): Tensor {
    const c = this.cfg;
    return tidy(() => {
      const x = inputTensor(pixels, c.batchSize, c, this.k(PURPOSE.binarize, this.step));
      const { loss } = this.model.forward(x, { method: c.method, tau: this.tauNow(), step: this.step, key: this.k(PURPOSE.sample, this.step), k: c.k });
      loss.backward();
      this.opt.step();
      this.opt.zeroGrad();
      return loss.detach();
    });
  }

  /** τ at the current step: the schedule's value where there is one, else cfg.tau. */
  tauNow(): number {
    const c = this.cfg;
    return c.tauSchedule ? tauSchedule(c.tauSchedule).at(this.step) : c.tau;
  }

  /** Mean single-sample loss over the test set, drawing codes with the estimator's forward sample. */
  async testLoss(evalBatch = 500): Promise<number> {
    const c = this.cfg;
    const test = this.data.test;
    const idx = Int32Array.from({ length: test.count }, (_, i) => i);
    const parts: Tensor[] = [];
    noGrad(() => {
      for (let from = 0, b = 0; from < test.count; from += evalBatch, b++) {
        const to = Math.min(test.count, from + evalBatch);
        parts.push(keep(tidy(() => {
          const x = inputTensor(batchOf(test, idx, from, to), to - from, c, this.k(PURPOSE.testBinarize, b));
          const { loss } = this.model.forward(x, { method: c.method, tau: this.tauNow(), step: this.step, key: this.k(PURPOSE.testSample, b), k: Math.min(c.k, 1) });
          return loss.mul(to - from);
        })));
      }
    });
    const sum = tidy(() => parts.reduce((a, b) => a.add(b)));
    const total = (await sum.data())[0];
    sum.dispose();
    parts.forEach((t) => t.dispose());
    return total / test.count;
  }

  /** Mean over encoder parameters of the per-element gradient variance over `passes` draws on fixed images. */
  async gradientVariance(images = 1000, passes = 100): Promise<number> {
    if (!Number.isInteger(images) || images < 1) throw new Error(`gradientVariance: images must be a positive integer, got ${images}`);
    if (!Number.isInteger(passes) || passes < 2) throw new Error(`gradientVariance: passes must be an integer >= 2 (a variance needs two draws), got ${passes}`);
    const c = this.cfg;
    const test = this.data.test;
    const n = Math.min(images, test.count);
    const x = tensor(batchOf(test, Int32Array.from({ length: n }, (_, i) => i), 0, n), [n, 784], { device: c.device });
    const params = this.model.encoderParameters();
    const size = params.reduce((a, p) => a + p.size, 0);
    const mean = new Float64Array(size), m2 = new Float64Array(size);
    for (let t = 0; t < passes; t++) {
      tidy(() => {
        const { loss } = this.model.forward(x, { method: c.method, tau: this.tauNow(), step: this.step, key: this.k(PURPOSE.variance, this.epoch * 100000 + t), k: c.k });
        loss.backward();
      });
      let o = 0;
      for (const p of params) {
        const g = await p.grad!.data();
        for (let i = 0; i < g.length; i++, o++) {
          const d = g[i] - mean[o];
          mean[o] += d / (t + 1);
          m2[o] += d * (g[i] - mean[o]);
        }
      }
      this.opt.zeroGrad();
    }
    let v = 0;
    for (let i = 0; i < size; i++) v += m2[i] / (passes - 1);
    return v / size;
  }

  // ---- checkpoints (safetensors bytes; files: ./train.ts)
  /** The run as a checkpoint: parameters, Adam's state, config, epoch, step and metrics. */
  async checkpointBytes(): Promise<Uint8Array> {
    const { tensors, meta } = trainingState(this.model, this.opt);
    return saveBytes(tensors, {
      ...meta,
      format: 'gapgrad-vae-1',
      config: JSON.stringify(this.cfg),
      epoch: String(this.epoch),
      step: String(this.step),
      metrics: JSON.stringify(this.metrics),
    });
  }

  /** A checkpoint's config and tensors, checked as untrusted input (shapes against the config before decoding). */
  static parseCheckpoint(file: CheckpointBytes): { cfg: VaeTrainConfig; tensors: Record<string, Tensor>; meta: Record<string, string> } {
    const path = file.path;
    const metadata = file.header.metadata;
    if (metadata.format !== 'gapgrad-vae-1') throw new Error(`checkpoint ${path}: not a gapgrad VAE checkpoint (format '${metadata.format ?? 'missing'}')`);
    let cfg: VaeTrainConfig;
    try { cfg = { ...DEFAULT_TRAIN, ...JSON.parse(metadata.config) }; } catch { throw new Error(`checkpoint ${path}: corrupt config metadata`); }
    try { validateTrainConfig(cfg); } catch (e) { throw new Error(`checkpoint ${path}: invalid config (${(e as Error).message})`); }
    // the shapes the config implies against the header's, before a model is built or a tensor decoded
    checkCheckpointShapes(file, vaeParameterShapes(vaeConfigOf(cfg)), `latent=${cfg.latent}, categories=${cfg.categories}`, { prefix: 'model.', optimizer: true });
    return { cfg, tensors: checkpointTensors(file), meta: metadata };
  }

  /** Load parameters, Adam's state, epoch, step and metrics from a checkpoint's bytes (`source` names it in errors). */
  loadCheckpointBytes(bytes: Uint8Array, source = 'checkpoint'): void {
    this.restore(VaeRun.parseCheckpoint(checkpointFromBytes(bytes, source)));
  }

  protected restore({ tensors, meta }: { tensors: Record<string, Tensor>; meta: Record<string, string> }): void {
    restoreTrainingState(tensors, meta, this.model, this.opt);
    this.epoch = Number(meta.epoch);
    this.step = Number(meta.step);
    this.metrics = JSON.parse(meta.metrics ?? '[]');
  }

  // ---- pictures
  /** Test images with their reconstructions, decodes of random codes, and the metrics so far (for a PictureWriter). */
  async pictures(): Promise<VaePictures> {
    const c = this.cfg;
    const test = this.data.test;
    const n = Math.min(16, test.count);
    const xs = batchOf(test, Int32Array.from({ length: n }, (_, i) => i), 0, n);
    const [reconT, imgsT] = noGrad(() => tidy(() => {
      const x = tensor(xs, [n, 784], { device: c.device });
      const { reconLogits } = this.model.forward(x, { method: c.method, tau: c.tau, key: this.k(PURPOSE.pictures, 0), k: 1 });
      const codes = random.categorical(this.k(PURPOSE.pictures, 1), tensor(new Float32Array(64 * c.latent * c.categories), [64, c.latent, c.categories], { device: c.device }));
      return [reconLogits.sigmoid(), this.model.decode(oneHotCodes(codes, c.categories))];
    }));
    const recon = (await reconT.data()) as Float32Array;
    const samples = (await imgsT.data()) as Float32Array;
    reconT.dispose();
    imgsT.dispose();
    return { cfg: c, images: xs.slice(), recon, n, samples, metrics: this.metrics.slice() };
  }
}

/** What VaeRun.pictures() returns: n test images (n x 784 in [0, 1]) and their reconstructions, 64 decodes of
 *  random codes, and the metrics per epoch. */
export interface VaePictures {
  cfg: VaeTrainConfig;
  images: Float32Array;
  recon: Float32Array;
  n: number;
  samples: Float32Array;
  metrics: EpochMetrics[];
}

function oneHotCodes(idx: Tensor, C: number): Tensor {
  return noGrad(() => {
    const eye = tensor(Int32Array.from({ length: C }, (_, i) => i), [C], { device: idx.device });
    return idx.reshape([...idx.shape, 1]).eq(eye.reshape([1, 1, C])).cast('float32');
  });
}


// Optimizers with PyTorch's exact update rules, gradient-norm clipping and ReduceLROnPlateau.
import { Tensor, noGrad, full, keep } from './tensor.ts';
import * as ops from './ops.ts';

/** An optimizer's per-parameter moments. */
export interface ParamState {
  /** First moment. */
  m: Tensor;
  /** Second moment. */
  v: Tensor;
}

/** Base class of the optimizers: a parameter list, a learning rate and per-parameter state. */
export abstract class Optimizer {
  /** The parameters it updates. */
  readonly params: Tensor[];
  /** Number of `step()` calls so far. */
  stepCount = 0;
  /** Learning rate (schedulers change it). */
  lr: number;
  protected state = new Map<Tensor, ParamState>();

  /**
   * @param params - non-empty list of tensors that require grad
   * @param lr - learning rate, > 0
   */
  constructor(params: Tensor[], lr: number) {
    if (!Array.isArray(params) || params.length === 0) throw new Error('Optimizer: params must be a non-empty array of tensors');
    params.forEach((p, i) => {
      if (!(p instanceof Tensor) || !p.requiresGrad) throw new Error(`Optimizer: params[${i}] must be a tensor with requiresGrad`);
    });
    if (!(lr > 0) || lr === Infinity) throw new Error(`Optimizer: lr must be a positive finite number, got ${lr}`);
    this.params = params;
    this.lr = lr;
  }

  /** Clear every parameter's gradient (`optimizer.zero_grad()`). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  protected slots(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (!s) {
      s = { m: keep(full(p.shape, 0, { dtype: p.dtype, device: p.device })), v: keep(full(p.shape, 0, { dtype: p.dtype, device: p.device })) };
      this.state.set(p, s);
    }
    return s;
  }

  /** Update the parameters from their gradients (parameters without a gradient are skipped). */
  abstract step(): void;

  /** Moments (`m.i`, `v.i` for parameter i) and scalars, for checkpoints. */
  stateDict(): { tensors: Record<string, Tensor>; step: number; lr: number } {
    const tensors: Record<string, Tensor> = {};
    this.params.forEach((p, i) => {
      const s = this.slots(p);
      tensors[`m.${i}`] = s.m;
      tensors[`v.${i}`] = s.v;
    });
    return { tensors, step: this.stepCount, lr: this.lr };
  }

  /**
   * Restore from {@link Optimizer.stateDict}; parameter shapes must match.
   * @param sd - a saved state
   */
  loadStateDict(sd: { tensors: Record<string, Tensor>; step: number; lr: number }): void {
    this.params.forEach((p, i) => {
      const s = this.slots(p);
      for (const [slot, t] of [['m', s.m], ['v', s.v]] as const) {
        const src = sd.tensors[`${slot}.${i}`];
        if (!src || src.shape.join() !== p.shape.join()) throw new Error(`Optimizer.loadStateDict: '${slot}.${i}' missing or of the wrong shape (expected [${p.shape}])`);
        t.assign(noGrad(() => ops.copyOf(ops.cast(src, p.dtype))));
      }
    });
    this.stepCount = sd.step;
    this.lr = sd.lr;
  }
}

/** Hyperparameters of {@link Adam} and {@link RAdam} (PyTorch's defaults: lr 1e-3, betas [0.9, 0.999], eps 1e-8, weightDecay 0). */
export interface AdamOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  /** Decay rates of the first and second moments (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Added to the denominator (default 1e-8). */
  eps?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
}

/** The hyperparameters Adam and RAdam share (PyTorch's defaults). */
abstract class AdamFamily extends Optimizer {
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  /**
   * @param params - the parameters (e.g. `model.parameters()`)
   * @param opts - lr, betas, eps, weightDecay
   */
  constructor(params: Tensor[], opts: AdamOptions = {}) {
    super(params, opts.lr ?? 1e-3);
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    const name = 'Adam/RAdam options';
    if (!Array.isArray(this.betas) || this.betas.length !== 2 || !this.betas.every((b) => b >= 0 && b < 1)) {
      throw new Error(`${name}: betas must be two numbers in [0, 1), got ${JSON.stringify(opts.betas)}`);
    }
    if (!(this.eps >= 0) || this.eps === Infinity) throw new Error(`${name}: eps must be a finite number >= 0, got ${this.eps}`);
    if (!(this.weightDecay >= 0) || this.weightDecay === Infinity) throw new Error(`${name}: weightDecay must be a finite number >= 0, got ${this.weightDecay}`);
  }
}

/**
 * `torch.optim.Adam`: L2 weight decay added to the gradient, bias-corrected moments. Fused into one kernel where the backend has `adamUpdate`.
 * @example
 * ```ts
 * const opt = new optim.Adam(model.parameters(), { lr: 1e-3 });
 * loss.backward(); opt.step(); opt.zeroGrad();
 * ```
 */
export class Adam extends AdamFamily {
  step(): void {
    this.stepCount++;
    const [b1, b2] = this.betas;
    const t = this.stepCount;
    noGrad(() => {
      for (const p of this.params) {
        if (!p.grad) continue;
        const s = this.slots(p);
        const be = p.backend;
        if (be.adamUpdate) {
          be.adamUpdate(p.buf, p.grad.buf, s.m.buf, s.v.buf, { lr: this.lr, beta1: b1, beta2: b2, eps: this.eps, weightDecay: this.weightDecay, step: t });
          continue;
        }
        let g = p.grad;
        if (this.weightDecay) g = ops.add(g, ops.mul(p, this.weightDecay));
        const m = ops.add(ops.mul(s.m, b1), ops.mul(g, 1 - b1));
        const v = ops.add(ops.mul(s.v, b2), ops.mul(ops.mul(g, g), 1 - b2));
        const bc1 = 1 - Math.pow(b1, t), bc2 = 1 - Math.pow(b2, t);
        const denom = ops.add(ops.div(ops.sqrt(v), Math.sqrt(bc2)), this.eps);
        const np = ops.sub(p, ops.mul(ops.div(m, denom), this.lr / bc1));
        s.m.assign(m);
        s.v.assign(v);
        p.assign(np);
        m.dispose(); v.dispose(); np.dispose();
      }
    });
  }
}

/** `torch.optim.RAdam` (Liu et al. 2020), without decoupled weight decay. */
export class RAdam extends AdamFamily {
  step(): void {
    this.stepCount++;
    const [b1, b2] = this.betas;
    const t = this.stepCount;
    const bc1 = 1 - Math.pow(b1, t), bc2 = 1 - Math.pow(b2, t);
    const rhoInf = 2 / (1 - b2) - 1;
    const rhoT = rhoInf - (2 * t * Math.pow(b2, t)) / bc2;
    noGrad(() => {
      for (const p of this.params) {
        if (!p.grad) continue;
        const s = this.slots(p);
        let g = p.grad;
        if (this.weightDecay) g = ops.add(g, ops.mul(p, this.weightDecay));
        const m = ops.add(ops.mul(s.m, b1), ops.mul(g, 1 - b1));
        const v = ops.add(ops.mul(s.v, b2), ops.mul(ops.mul(g, g), 1 - b2));
        const mHat = ops.div(m, bc1);
        let upd: Tensor;
        if (rhoT > 5) {
          const rect = Math.sqrt(((rhoT - 4) * (rhoT - 2) * rhoInf) / ((rhoInf - 4) * (rhoInf - 2) * rhoT));
          const adaptive = ops.div(Math.sqrt(bc2), ops.add(ops.sqrt(v), this.eps));
          upd = ops.mul(ops.mul(mHat, adaptive), this.lr * rect);
        } else {
          upd = ops.mul(mHat, this.lr);
        }
        s.m.assign(m);
        s.v.assign(v);
        p.assign(ops.sub(p, upd));
      }
    });
  }
}

/**
 * Scale gradients in place so their global L2 norm is at most `maxNorm` (`clip_grad_norm_`).
 * @param params - parameters whose gradients to clip
 * @param maxNorm - the largest allowed norm
 * @returns the norm before clipping
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm must be a positive number (Infinity: no clipping), got ${maxNorm}`);
  return noGrad(() => {
    const gs = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
    if (gs.length === 0) return 0;
    let total = 0;
    for (const g of gs) total += ops.sum(ops.mul(g, g)).item();
    const norm = Math.sqrt(total);
    const coef = maxNorm / (norm + 1e-6);
    if (coef < 1) for (const g of gs) g.assign(ops.mul(g, coef));
    return norm;
  });
}

/** Options of {@link ReduceLROnPlateau} (PyTorch's names and defaults). */
export interface PlateauOptions {
  mode?: 'min' | 'max';
  factor?: number;
  patience?: number;
  threshold?: number;
  thresholdMode?: 'rel' | 'abs';
  cooldown?: number;
  minLr?: number;
  eps?: number;
}

/**
 * `torch.optim.lr_scheduler.ReduceLROnPlateau`: multiply the learning rate by `factor` after `patience` steps without improvement.
 * @example
 * ```ts
 * const sched = new optim.ReduceLROnPlateau(opt, { factor: 0.5, patience: 3 });
 * sched.step(validationLoss);
 * ```
 */
export class ReduceLROnPlateau {
  best: number;
  numBad = 0;
  cooldownLeft = 0;
  readonly o: Required<PlateauOptions>;
  constructor(readonly optimizer: Optimizer, opts: PlateauOptions = {}) {
    this.o = { mode: 'min', factor: 0.1, patience: 10, threshold: 1e-4, thresholdMode: 'rel', cooldown: 0, minLr: 0, eps: 1e-8, ...opts };
    const { mode, factor, patience, threshold, thresholdMode, cooldown, minLr, eps } = this.o;
    const bad = (what: string, v: unknown) => new Error(`ReduceLROnPlateau: ${what}, got ${typeof v === 'string' ? `'${v}'` : v}`);
    if (mode !== 'min' && mode !== 'max') throw bad("mode must be 'min' or 'max'", mode);
    if (!(factor > 0 && factor < 1)) throw bad('factor must be in (0, 1)', factor);
    if (!Number.isInteger(patience) || patience < 0) throw bad('patience must be an integer >= 0', patience);
    if (!(threshold >= 0) || threshold === Infinity) throw bad('threshold must be a finite number >= 0', threshold);
    if (thresholdMode !== 'rel' && thresholdMode !== 'abs') throw bad("thresholdMode must be 'rel' or 'abs'", thresholdMode);
    if (!Number.isInteger(cooldown) || cooldown < 0) throw bad('cooldown must be an integer >= 0', cooldown);
    if (!(minLr >= 0) || minLr === Infinity) throw bad('minLr must be a finite number >= 0', minLr);
    if (!(eps >= 0) || eps === Infinity) throw bad('eps must be a finite number >= 0', eps);
    this.best = this.o.mode === 'min' ? Infinity : -Infinity;
  }
  private better(a: number): boolean {
    const { mode, threshold, thresholdMode } = this.o;
    if (mode === 'min') return thresholdMode === 'rel' ? a < this.best * (1 - threshold) : a < this.best - threshold;
    return thresholdMode === 'rel' ? a > this.best * (1 + threshold) : a > this.best + threshold;
  }
  /**
   * Record one evaluation of the monitored metric.
   * @param metric - e.g. the validation loss
   */
  step(metric: number): void {
    if (this.better(metric)) {
      this.best = metric;
      this.numBad = 0;
    } else this.numBad++;
    if (this.cooldownLeft > 0) {
      this.cooldownLeft--;
      this.numBad = 0;
    }
    if (this.numBad > this.o.patience) {
      const old = this.optimizer.lr;
      const next = Math.max(old * this.o.factor, this.o.minLr);
      if (old - next > this.o.eps) this.optimizer.lr = next;
      this.cooldownLeft = this.o.cooldown;
      this.numBad = 0;
    }
  }
  /** Scheduler state, for checkpoints. */
  state(): { best: number; numBad: number; cooldownLeft: number } {
    return { best: this.best, numBad: this.numBad, cooldownLeft: this.cooldownLeft };
  }
  /** Restore from {@link ReduceLROnPlateau.state}. */
  loadState(s: { best: number; numBad: number; cooldownLeft: number }): void {
    Object.assign(this, s);
  }
}

// Counter-based random numbers (Philox4x32-10). A key is two uint32 words; every draw is a pure
// function of (key, shape), so the same key gives bit-identical bits on every backend.
// Use split/foldIn to derive independent keys, or a Generator for a stateful, checkpointable stream.
import { Tensor, noGrad, getDefaultDevice, getBackend, checkShape, type Device } from './tensor.ts';
import { philoxBlock } from './philox.ts';
import * as ops from './ops.ts';
import type { DType } from './dtype.ts';

/** A PRNG key: two uint32 words. Make one with {@link key}; derive more with {@link split} / {@link foldIn}. */
export type Key = readonly [number, number];

function checkKey(k: Key, where: string): void {
  if (!Array.isArray(k) || k.length !== 2 || !k.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff)) {
    throw new Error(`${where}: key must be a pair of uint32 words (from random.key(seed)), got ${JSON.stringify(k)}`);
  }
}

/**
 * A key from an integer seed (like `jax.random.key`).
 * @param seed - integer, 0 <= seed < 2^53
 */
export function key(seed: number): Key {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`random.key: seed must be a non-negative safe integer, got ${seed}`);
  return [seed >>> 0, Math.floor(seed / 4294967296) >>> 0];
}

// keys are derived with the block function itself, on a counter range that draws never reach
function derive(k: Key, a: number, b: number): Key {
  const out = new Uint32Array(4);
  philoxBlock(a >>> 0, b >>> 0, 0xffffffff, 0x5eed5eed, k[0], k[1], out, 0);
  return [out[0], out[1]];
}

/**
 * n independent keys derived from k.
 * @param k - parent key
 * @param n - how many (default 2)
 * @example
 * ```ts
 * const [kInit, kData] = random.split(random.key(0));
 * ```
 */
export function split(k: Key, n = 2): Key[] {
  checkKey(k, 'random.split');
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`random.split: n must be a non-negative integer, got ${n}`);
  return Array.from({ length: n }, (_, i) => derive(k, i, 0x51151));
}

/**
 * A key derived from k and an integer (e.g. a step number or a layer index).
 * @param k - parent key
 * @param data - a non-negative integer
 */
export function foldIn(k: Key, data: number): Key {
  checkKey(k, 'random.foldIn');
  return derive(k, data >>> 0, (Math.floor(data / 4294967296) >>> 0) ^ 0xf01d);
}

/** dtype and device of a draw. */
export interface DrawOptions {
  dtype?: DType;
  device?: Device;
}

/** A numeric option that must be finite and pass `ok` (described by `allowed`): an error naming it and its value. */
function checkNumber(where: string, name: string, v: number, ok: (v: number) => boolean, allowed: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new Error(`${where}: ${name} must be ${allowed}, got ${v}`);
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Raw uint32 words (stored as int32): word i is word i%4 of Philox block i/4 under k. Identical on every backend.
 * @param k - key
 * @param shape - result shape
 * @param opts - device
 */
export function bits(k: Key, shape: number[], opts: { device?: Device } = {}): Tensor {
  return drawBits(k, shape, opts.device, 'random.bits');
}

/** bits() for the draw `where`: its key and shape checked once, errors named after it. */
function drawBits(k: Key, shape: number[], device: Device | undefined, where: string): Tensor {
  checkKey(k, where);
  checkShape(shape, where);
  const d = device ?? getDefaultDevice();
  return Tensor.fromBuf(getBackend(d).randomBits([k[0], k[1]], 0, size(shape)), shape.slice(), d);
}

function unit(k: Key, shape: number[], opts: DrawOptions, where: string): Tensor {
  const b = drawBits(k, shape, opts.device, where);
  const u = Tensor.fromBuf(b.backend.unary('bitsToUniform', b.viewFor(shape), shape, opts.dtype ?? 'float32'), shape.slice(), b.device);
  b.dispose();
  return u;
}

/**
 * Uniform on the open interval (low, high); 23 bits of resolution, bit-identical on every backend.
 * @param k - key
 * @param shape - result shape
 * @param opts - dtype, device, low (default 0), high (default 1)
 */
export function uniform(k: Key, shape: number[], opts: DrawOptions & { low?: number; high?: number } = {}): Tensor {
  return noGrad(() => {
    const { low = 0, high = 1 } = opts;
    checkNumber('random.uniform', 'low', low, () => true, 'a finite number');
    checkNumber('random.uniform', 'high', high, (h) => h > low, `a finite number above low (${low})`);
    const u = unit(k, shape, opts, 'random.uniform');
    return low === 0 && high === 1 ? u : ops.add(ops.mul(u, high - low), low);
  });
}

/**
 * Standard Gumbel(0, 1) draws: -log(-log(U)).
 * @param k - key
 * @param shape - result shape
 * @param opts - dtype, device
 */
export function gumbel(k: Key, shape: number[], opts: DrawOptions = {}): Tensor {
  return noGrad(() => ops.neg(ops.log(ops.neg(ops.log(unit(k, shape, opts, 'random.gumbel'))))));
}

/**
 * Exponential(1) draws: -log(U).
 * @param k - key
 * @param shape - result shape
 * @param opts - dtype, device
 */
export function exponential(k: Key, shape: number[], opts: DrawOptions = {}): Tensor {
  return noGrad(() => ops.neg(ops.log(unit(k, shape, opts, 'random.exponential'))));
}

/**
 * Normal draws (Box-Muller on two independent uniform streams).
 * @param k - key
 * @param shape - result shape
 * @param opts - dtype, device, mean (default 0), std (default 1)
 */
export function normal(k: Key, shape: number[], opts: DrawOptions & { mean?: number; std?: number } = {}): Tensor {
  const { mean = 0, std = 1 } = opts;
  checkNumber('random.normal', 'mean', mean, () => true, 'a finite number');
  checkNumber('random.normal', 'std', std, (s) => s >= 0, 'a finite number >= 0');
  checkKey(k, 'random.normal');
  return noGrad(() => {
    const [k1, k2] = split(k, 2);
    const r = ops.sqrt(ops.mul(ops.log(unit(k1, shape, opts, 'random.normal')), -2));
    const z = ops.mul(r, ops.cos(ops.mul(unit(k2, shape, opts, 'random.normal'), 2 * Math.PI)));
    return mean === 0 && std === 1 ? z : ops.add(ops.mul(z, std), mean);
  });
}

/**
 * Bernoulli(p) draws as 0/1 floats.
 * @param k - key
 * @param p - a probability, or a tensor of probabilities (its shape and device are the default)
 * @param shape - result shape
 * @param opts - dtype, device
 */
export function bernoulli(k: Key, p: number | Tensor, shape?: number[], opts: DrawOptions = {}): Tensor {
  if (!(p instanceof Tensor)) checkNumber('random.bernoulli', 'p', p, (q) => q >= 0 && q <= 1, 'a probability in [0, 1] (or a tensor of them)');
  return noGrad(() => {
    const s = shape ?? (p instanceof Tensor ? p.shape : []);
    const u = unit(k, s, { ...opts, device: p instanceof Tensor ? p.device : opts.device }, 'random.bernoulli');
    return ops.cast(ops.lt(u, p), opts.dtype ?? 'float32');
  });
}

/**
 * Categorical draws from unnormalised logits along the last axis (Gumbel-max), as int32 indices; -Infinity logits
 * are never drawn. A row with a NaN or +Infinity logit, or with every logit -Infinity, is an error where the device
 * reads synchronously (CPU); on WebGPU such rows are not checked (it would stall the queue) and draw index 0 (NaN,
 * all -Infinity) or the +Infinity entry.
 * @param k - key
 * @param logits - (..., C) floating tensor
 */
export function categorical(k: Key, logits: Tensor): Tensor {
  if (!(logits instanceof Tensor)) throw new Error(`random.categorical: argument 'logits' must be a Tensor`);
  if (logits.rank < 1 || logits.shape[logits.rank - 1] < 1) throw new Error(`random.categorical: argument 'logits' needs a last (category) axis of size >= 1, got shape [${logits.shape}]`);
  if (logits.backend.readSync) checkCategoricalRows(logits);
  return noGrad(() => ops.argmax(ops.add(logits, gumbel(k, logits.shape, { dtype: logits.dtype, device: logits.device })), -1));
}

function checkCategoricalRows(logits: Tensor): void {
  const v = logits.backend.readSync!(logits.buf);
  const C = logits.shape[logits.rank - 1], n = logits.size;
  for (let o = 0; o < n; o += C) {
    let allNegInf = true;
    for (let j = o; j < o + C; j++) {
      const x = v[j];
      if (x !== x || x === Infinity) throw new Error(`random.categorical: row ${o / C} of 'logits' (shape [${logits.shape}]) contains ${x}; logits must be finite or -Infinity`);
      if (x !== -Infinity) allNegInf = false;
    }
    if (allNegInf) throw new Error(`random.categorical: row ${o / C} of 'logits' (shape [${logits.shape}]) is -Infinity everywhere: no category can be drawn`);
  }
}

/**
 * A uniformly random permutation of 0..n-1 (Fisher-Yates on Philox words), on the host.
 * @param k - key
 * @param n - length
 */
export function permutation(k: Key, n: number): Int32Array {
  checkKey(k, 'random.permutation');
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`random.permutation: n must be a non-negative integer, got ${n}`);
  const p = Int32Array.from({ length: n }, (_, i) => i);
  const w = new Uint32Array(4);
  for (let i = n - 1, blk = 0; i > 0; i--, blk++) {
    philoxBlock(blk >>> 0, 0x9e37, 0, 0, k[0], k[1], w, 0);
    // 53 random bits, scaled: bias below 2^-20 for any n < 2^32
    const r = (w[0] * 2097152 + (w[1] >>> 11)) / 9007199254740992;
    const j = Math.floor(r * (i + 1));
    const t = p[i]; p[i] = p[j]; p[j] = t;
  }
  return p;
}

/**
 * A stateful stream of keys: each `next()` is `foldIn(key(seed), counter++)`. Checkpoint with `state()`, restore with `Generator.fromState`.
 * @example
 * ```ts
 * const gen = new random.Generator(42);
 * const x = random.normal(gen.next(), [3]);
 * ```
 */
export class Generator {
  private base: Key;
  constructor(readonly seed: number, private counter = 0) {
    this.base = key(seed);
  }
  /** The next key of the stream. */
  next(): Key {
    return foldIn(this.base, this.counter++);
  }
  /** Seed and counter, for checkpoints. */
  state(): { seed: number; counter: number } {
    return { seed: this.seed, counter: this.counter };
  }
  /** A generator that continues from a saved {@link Generator.state}. */
  static fromState(s: { seed: number; counter: number }): Generator {
    if (!s || !Number.isSafeInteger(s.seed) || !Number.isSafeInteger(s.counter)) throw new Error(`Generator.fromState: expected {seed, counter} integers, got ${JSON.stringify(s)}`);
    return new Generator(s.seed, s.counter);
  }
}

// Tensor, device registry, the tape (reverse mode) and memory scopes.
// Tensors are always contiguous in their buffer; reshape shares the buffer, every other view op
// materialises through the backend's `copy` primitive. Ops live in engine/ops.ts.
import type { Backend, Buf, View } from './backend.ts';
import { arrayFor, dtypeOf, isFloat, DTYPES, type DType, type TypedArray } from './dtype.ts';
import * as ops from './ops.ts';

// ---------------------------------------------------------------- devices
/** A device name: 'cpu', 'webgpu' (after `initWebGPU()`), or any name given to {@link registerBackend}. */
export type Device = 'cpu' | 'webgpu' | (string & {});
const backends = new Map<string, Backend>();
const lazyHints = new Map<string, string>();

/**
 * Make a backend available as a device.
 * @param name - the device name tensors will carry
 * @param backend - an implementation of the {@link Backend} contract
 */
export function registerBackend(name: string, backend: Backend): void {
  backends.set(name, backend);
}
/**
 * Tell users how to enable a device that is not registered yet (used in the error). Internal.
 * @internal
 */
export function hintBackend(name: string, howToEnable: string): void {
  lazyHints.set(name, howToEnable);
}
/**
 * The backend registered for a device; throws naming the known devices when there is none.
 * @param name - device name
 */
export function getBackend(name: string): Backend {
  const b = backends.get(name);
  if (b) return b;
  const hint = lazyHints.get(name);
  if (hint) throw new Error(`device '${name}' is not initialised: ${hint}`);
  throw new Error(`device: unknown device '${name}'; expected one of ${[...backends.keys(), ...lazyHints.keys()].join(', ')}`);
}
/**
 * Whether a device is registered. Internal.
 * @internal
 */
export function hasBackend(name: string): boolean {
  return backends.has(name);
}
let defaultDevice: Device = 'cpu';
/**
 * Set the device that factories use when no `device` option is given (like `torch.set_default_device`).
 * @param d - a registered device
 */
export function setDefaultDevice(d: Device): void {
  getBackend(d);
  defaultDevice = d;
}
/** The device factories use when no `device` option is given ('cpu' unless changed). */
export function getDefaultDevice(): Device {
  return defaultDevice;
}

// ---------------------------------------------------------------- storage & scopes
class Storage {
  refs = 1;
  constructor(readonly backend: Backend, readonly buf: Buf) {}
  retain(): this { this.refs++; return this; }
  release(): void {
    if (--this.refs === 0) this.backend.release(this.buf);
  }
}

let liveTensors = 0;
const scopes: Set<Tensor>[] = [];

/**
 * Run `fn`; every tensor created inside and not returned (or kept with {@link keep}) is disposed at the end.
 * Returned tensors (also inside arrays/objects one level deep) survive into the enclosing scope.
 * @param fn - the work to scope
 * @example
 * ```ts
 * const loss = tidy(() => crossEntropy(model.forward(x), y)); // intermediates freed
 * ```
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    for (const t of scope) if (!t.kept) t.dispose(); // a failed scope must not leak its tensors
    throw e;
  } finally {
    scopes.pop();
  }
  const survivors = new Set<Tensor>();
  const collect = (v: unknown, depth: number): void => {
    if (v instanceof Tensor) survivors.add(v);
    else if (depth < 2 && Array.isArray(v)) v.forEach((x) => collect(x, depth + 1));
    else if (depth < 2 && v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) Object.values(v).forEach((x) => collect(x, depth + 1));
  };
  collect(result!, 0);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (survivors.has(t)) parent?.add(t);
    else if (!t.kept) t.dispose();
  }
  return result!;
}

/**
 * Exclude a tensor from the enclosing {@link tidy} scopes (it must then be disposed by hand).
 * @param t - the tensor to keep
 * @returns t
 */
export function keep<T extends Tensor>(t: T): T {
  t.kept = true;
  return t;
}

/**
 * Live tensor count and the device's buffer statistics (leak checks).
 * @param device - the device (default: the default device)
 */
export function memory(device: Device = defaultDevice): { liveTensors: number; liveBuffers: number; liveBytes: number; allocatedBytes: number } {
  return { liveTensors, ...getBackend(device).memory() };
}

// ---------------------------------------------------------------- autograd state
let gradEnabled = true;
/** Whether operations are being recorded for differentiation (false inside {@link noGrad}). */
export function isGradEnabled(): boolean {
  return gradEnabled;
}
/**
 * Run `fn` without recording operations for differentiation (`torch.no_grad`).
 * @param fn - the work to run
 */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/**
 * A cotangent returned by a VJP: null/undefined for none. Internal.
 * @internal
 */
export type Cotangent = Tensor | null | undefined;
/**
 * A recorded operation on the tape. Internal.
 * @internal
 */
export interface Node {
  name: string;
  inputs: Tensor[];
  outputs: Tensor[];
  vjp: ((cts: (Tensor | null)[]) => Cotangent[]) | null;
}

/**
 * Attach a backward rule to freshly computed outputs (no-op when nothing requires grad). Internal: ops call it.
 * @internal
 */
export function record(name: string, inputs: Tensor[], outputs: Tensor[], vjp: (cts: (Tensor | null)[]) => Cotangent[]): void {
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad)) return;
  const node: Node = { name, inputs, outputs, vjp };
  outputs.forEach((o, i) => {
    if (!isFloat(o.dtype)) return;
    o.node = node;
    o.outputIndex = i;
    o.requiresGrad = true;
  });
}

// ---------------------------------------------------------------- Tensor
/**
 * Row-major strides of a shape. Internal.
 * @internal
 */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/**
 * Number of elements of a shape. Internal.
 * @internal
 */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

let nextId = 0;

/**
 * An n-dimensional array on a device, with reverse-mode gradients.
 * Create tensors with {@link tensor}, {@link zeros}, {@link ones}, {@link full}, {@link arange} or the `random` functions;
 * every op is also a method (`x.add(y)` is `add(x, y)`).
 * @example
 * ```ts
 * const x = tensor([[1, 2], [3, 4]], null, { requiresGrad: true });
 * x.mul(x).sum().backward();
 * x.grad!.toArray(); // [[2, 4], [6, 8]]
 * ```
 */
export class Tensor {
  /** Unique id (for debugging). */
  readonly id = nextId++;
  /** The axes' sizes; [] for a 0-d tensor. */
  readonly shape: number[];
  /** Element type. */
  readonly dtype: DType;
  /** Device holding the values. */
  readonly device: Device;
  /** Whether gradients flow to (and, for a leaf, accumulate on) this tensor. */
  requiresGrad = false;
  /** The accumulated gradient of a leaf after `backward()`; null before. */
  grad: Tensor | null = null;
  /**
   * The op that produced this tensor (null for leaves). Internal.
   * @internal
   */
  node: Node | null = null;
  /**
   * Which output of `node` this is. Internal.
   * @internal
   */
  outputIndex = 0;
  /**
   * Set by {@link keep}: not disposed by tidy. Internal.
   * @internal
   */
  kept = false;
  private storage: Storage | null;

  /** @internal use the factory functions (tensor, zeros, ...) */
  constructor(storage: Storage, shape: number[], dtype: DType, device: Device) {
    this.storage = storage;
    this.shape = shape;
    this.dtype = dtype;
    this.device = device;
    liveTensors++;
    scopes[scopes.length - 1]?.add(this);
  }

  /**
   * Wrap a backend buffer (backend implementers and ops). Internal.
   * @internal
   */
  static fromBuf(buf: Buf, shape: number[], device: Device): Tensor {
    return new Tensor(new Storage(getBackend(device), buf), shape, buf.dtype, device);
  }

  /**
   * A tensor that shares this one's buffer with another shape (same element count), outside the graph. Internal.
   * @internal
   */
  withShape(shape: number[]): Tensor {
    return new Tensor(this.store().retain(), shape, this.dtype, this.device);
  }

  /** Number of elements (PyTorch's `numel()`). */
  get size(): number { return numel(this.shape); }
  /** Number of axes (PyTorch's `dim()`). */
  get rank(): number { return this.shape.length; }
  /** Number of elements, as PyTorch's `numel()` (the same as {@link Tensor.size}). */
  numel(): number { return numel(this.shape); }
  /** Number of axes, as PyTorch's `dim()` (the same as {@link Tensor.rank}). */
  dim(): number { return this.shape.length; }
  /** Whether {@link Tensor.dispose} was called. */
  get isDisposed(): boolean { return this.storage === null; }
  /** The backend holding the values. */
  get backend(): Backend { return this.store().backend; }

  private store(): Storage {
    if (!this.storage) throw new Error(`tensor #${this.id} (shape [${this.shape}]) was disposed and cannot be used`);
    return this.storage;
  }
  /**
   * The backend buffer (backend implementers and ops). Internal.
   * @internal
   */
  get buf(): Buf { return this.store().buf; }

  /**
   * How an op with output `shape` reads this tensor (broadcast axes get stride 0). Internal.
   * @internal
   */
  viewFor(shape: readonly number[]): View {
    const strides = new Array<number>(shape.length).fill(0);
    const own = contiguousStrides(this.shape);
    const off = shape.length - this.shape.length;
    for (let d = 0; d < this.shape.length; d++) strides[off + d] = this.shape[d] === 1 ? 0 : own[d];
    return { buf: this.buf, strides, offset: 0 };
  }

  /** Free the values now (idempotent); using the tensor afterwards throws. */
  dispose(): void {
    if (!this.storage) return;
    this.storage.release();
    this.storage = null;
    this.node = null;
    liveTensors--;
  }

  /** Read the values into a fresh typed array (every device). */
  async data(): Promise<TypedArray> {
    const a = await this.backend.read(this.buf);
    return a.slice(0, this.size);
  }
  /** Read the values synchronously into a fresh typed array; only on devices that can (CPU), else use {@link Tensor.data}. */
  dataSync(): TypedArray {
    const b = this.backend;
    if (!b.readSync) throw new Error(`dataSync: device '${this.device}' reads asynchronously; use await t.data()`);
    return b.readSync(this.buf).slice(0, this.size);
  }
  /** The value of a one-element tensor, synchronously (CPU). */
  item(): number {
    if (this.size !== 1) throw new Error(`item: expected a tensor with one element, got shape [${this.shape}]`);
    return this.dataSync()[0];
  }
  /** The value of a one-element tensor (every device). */
  async itemAsync(): Promise<number> {
    if (this.size !== 1) throw new Error(`itemAsync: expected a tensor with one element, got shape [${this.shape}]`);
    return (await this.data())[0];
  }
  /** The values as nested arrays, synchronously (CPU). */
  toArray(): unknown {
    const d = Array.from(this.dataSync());
    const build = (axis: number, off: number): unknown => {
      if (axis === this.shape.length) return d[off];
      const stride = numel(this.shape.slice(axis + 1));
      return Array.from({ length: this.shape[axis] }, (_, i) => build(axis + 1, off + i * stride));
    };
    return build(0, 0);
  }

  /** The values as nested arrays, as PyTorch's `tolist()` (the same as {@link Tensor.toArray}; CPU). */
  tolist(): unknown { return this.toArray(); }

  /** A tensor with the same values, cut from the graph. Shares the buffer. */
  detach(): Tensor {
    return this.withShape(this.shape.slice());
  }

  /**
   * Replace this tensor's values by src's (same shape, dtype, device) in place: optimizers use it on leaves.
   * @param src - the new values
   */
  assign(src: Tensor): this {
    if (src.shape.join() !== this.shape.join() || src.dtype !== this.dtype || src.device !== this.device) {
      throw new Error(`assign: source [${src.shape}] ${src.dtype} on ${src.device} does not match target [${this.shape}] ${this.dtype} on ${this.device}`);
    }
    const s = src.store().retain();
    this.store().release();
    this.storage = s;
    return this;
  }

  /**
   * Mark as a leaf that accumulates gradients (like `requires_grad_()`); floating dtypes only.
   * @param flag - true to require gradients (default), false to stop
   */
  requireGrad(flag = true): this {
    if (flag && !isFloat(this.dtype)) throw new Error(`requiresGrad: only floating tensors can require gradients, got ${this.dtype}`);
    this.requiresGrad = flag;
    if (flag) hostSummaries.delete(this.buf); // a parameter's buffer is updated in place: what the host saw goes stale
    return this;
  }

  /**
   * PyTorch's `requires_grad_()`: the same as {@link Tensor.requireGrad}.
   * @param flag - true to require gradients (default), false to stop
   */
  requiresGrad_(flag = true): this { return this.requireGrad(flag); }

  /**
   * Backpropagate from this tensor, accumulating into the `grad` of every leaf that requires grad.
   * @param grad - the output cotangent; required unless this tensor has one element
   */
  backward(grad?: Tensor): void {
    backward(this, grad);
  }

  /** A one-line description: shape, dtype, device. */
  toString(): string {
    return `Tensor(shape=[${this.shape}], dtype=${this.dtype}, device=${this.device}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }

  // ---- method forms of the ops (engine/ops.ts): each is the free function with this tensor first
  /** Elementwise `this + o` with broadcasting (see {@link add}). */
  add(o: Tensor | number): Tensor { return ops.add(this, o); }
  /** Elementwise `this - o` with broadcasting (see {@link sub}). */
  sub(o: Tensor | number): Tensor { return ops.sub(this, o); }
  /** Elementwise `this * o` with broadcasting (see {@link mul}). */
  mul(o: Tensor | number): Tensor { return ops.mul(this, o); }
  /** Elementwise `this / o` with broadcasting (see {@link div}). */
  div(o: Tensor | number): Tensor { return ops.div(this, o); }
  /** Elementwise `this ** o` with broadcasting (see {@link pow}). */
  pow(o: Tensor | number): Tensor { return ops.pow(this, o); }
  /** Elementwise maximum with broadcasting (see {@link maximum}). */
  maximum(o: Tensor | number): Tensor { return ops.maximum(this, o); }
  /** Elementwise minimum with broadcasting (see {@link minimum}). */
  minimum(o: Tensor | number): Tensor { return ops.minimum(this, o); }
  /** Elementwise negation. */
  neg(): Tensor { return ops.neg(this); }
  /** Elementwise `e^x`. */
  exp(): Tensor { return ops.exp(this); }
  /** Elementwise natural logarithm. */
  log(): Tensor { return ops.log(this); }
  /** Elementwise `e^x - 1`, accurate near 0. */
  expm1(): Tensor { return ops.expm1(this); }
  /** Elementwise `log(1 + x)`, accurate near 0. */
  log1p(): Tensor { return ops.log1p(this); }
  /** Elementwise `log(1 + e^x)`, accurate for large and small x. */
  softplus(): Tensor { return ops.softplus(this); }
  /** Elementwise square root. */
  sqrt(): Tensor { return ops.sqrt(this); }
  /** Elementwise absolute value. */
  abs(): Tensor { return ops.abs(this); }
  /** Elementwise `max(x, 0)`. */
  relu(): Tensor { return ops.relu(this); }
  /** Elementwise logistic function. */
  sigmoid(): Tensor { return ops.sigmoid(this); }
  /** Elementwise hyperbolic tangent. */
  tanh(): Tensor { return ops.tanh(this); }
  /** Elementwise `x * x`. */
  square(): Tensor { return ops.square(this); }
  /** Elementwise `1 / x`. */
  reciprocal(): Tensor { return ops.reciprocal(this); }
  /** Elementwise sign (-1, 0, 1). */
  sign(): Tensor { return ops.sign(this); }
  /** Elementwise floor. */
  floor(): Tensor { return ops.floor(this); }
  /** Elementwise cosine. */
  cos(): Tensor { return ops.cos(this); }
  /** Elementwise sine. */
  sin(): Tensor { return ops.sin(this); }
  /** 1 where finite, 0 where NaN or infinite (see {@link isFinite}). */
  isFinite(): Tensor { return ops.isFinite(this); }
  /** Clamp into `[lo, hi]`; bounds are numbers, broadcastable tensors, or null for none (see {@link clamp}). */
  clamp(lo?: Tensor | number | null, hi?: Tensor | number | null): Tensor { return ops.clamp(this, lo, hi); }
  /** This tensor where `cond` is non-zero, else `other` (PyTorch's `x.where(cond, y)`; see {@link where}). */
  where(cond: Tensor, other: Tensor | number): Tensor { return ops.where(cond, this, other); }
  /** Sum over `axis` (number, list, or all when omitted) (see {@link sum}). */
  sum(axis?: number | number[] | null, keepDims = false): Tensor { return ops.sum(this, axis, keepDims); }
  /** Mean over `axis` (number, list, or all when omitted) (see {@link mean}). */
  mean(axis?: number | number[] | null, keepDims = false): Tensor { return ops.mean(this, axis, keepDims); }
  /** Maximum over `axis` (number, list, or all when omitted) (see {@link max}). */
  max(axis?: number | number[] | null, keepDims = false): Tensor { return ops.max(this, axis, keepDims); }
  /** Minimum over `axis` (number, list, or all when omitted) (see {@link min}). */
  min(axis?: number | number[] | null, keepDims = false): Tensor { return ops.min(this, axis, keepDims); }
  /** Index of the first maximum along `axis`, int32 (see {@link argmax}). */
  argmax(axis = -1, keepDims = false): Tensor { return ops.argmax(this, axis, keepDims); }
  /** Index of the first minimum along `axis`, int32 (see {@link argmin}). */
  argmin(axis = -1, keepDims = false): Tensor { return ops.argmin(this, axis, keepDims); }
  /** Stable `log(sum(exp(x)))` over an axis or a list of axes (see {@link logsumexp}). */
  logsumexp(axis: number | number[] = -1, keepDims = false): Tensor { return ops.logsumexp(this, axis, keepDims); }
  /** Softmax along `axis` (see {@link softmax}). */
  softmax(axis = -1): Tensor { return ops.softmax(this, axis); }
  /** Log-softmax along `axis` (see {@link logSoftmax}). */
  logSoftmax(axis = -1): Tensor { return ops.logSoftmax(this, axis); }
  /** Cumulative sum along `axis` (see {@link cumsum}). */
  cumsum(axis = -1): Tensor { return ops.cumsum(this, axis); }
  /** Matrix product (see {@link matmul}). */
  matmul(o: Tensor): Tensor { return ops.matmul(this, o); }
  /** Same values, another shape; -1 infers one axis (see {@link reshape}). */
  reshape(shape: number[]): Tensor { return ops.reshape(this, shape); }
  /** PyTorch's `view(shape)`: the same as {@link Tensor.reshape} (tensors are always contiguous here, so it never copies). */
  view(shape: number[]): Tensor { return ops.reshape(this, shape); }
  /** Merge axes `startAxis..endAxis` into one (see {@link flatten}). */
  flatten(startAxis = 0, endAxis = -1): Tensor { return ops.flatten(this, startAxis, endAxis); }
  /** Reorder the axes (see {@link permute}). */
  permute(dims: number[]): Tensor { return ops.permute(this, dims); }
  /** Swap two axes, by default the last two (see {@link transpose}). */
  transpose(a = -2, b = -1): Tensor { return ops.transpose(this, a, b); }
  /** Broadcast to `shape` (see {@link expand}). */
  expand(shape: number[]): Tensor { return ops.expand(this, shape); }
  /** Insert a size-1 axis at `axis` (see {@link unsqueeze}). */
  unsqueeze(axis: number): Tensor { return ops.unsqueeze(this, axis); }
  /** Remove size-1 axes, or only `axis` (see {@link squeeze}). */
  squeeze(axis?: number): Tensor { return ops.squeeze(this, axis); }
  /** A block from `begin` with extent `size` (-1: to the end) (see {@link slice}). */
  slice(begin: number[], size?: number[]): Tensor { return ops.slice(this, begin, size); }
  /** `length` entries of `axis` from `start` (see {@link narrow}). */
  narrow(axis: number, start: number, length: number): Tensor { return ops.narrow(this, axis, start, length); }
  /** `torch.gather` along `axis` with int32 indices of this tensor's rank (see {@link gather}). */
  gather(indices: Tensor, axis = -1): Tensor { return ops.gather(this, indices, axis); }
  /** Entries along `axis` at int32 indices of any shape (see {@link take}). */
  take(indices: Tensor, axis = 0): Tensor { return ops.take(this, indices, axis); }
  /** One-hot encoding of this int32 tensor: shape `[...shape, depth]` (see {@link oneHot}). */
  oneHot(depth: number, dtype: DType = 'float32'): Tensor { return ops.oneHot(this, depth, dtype); }
  /** A differentiable copy in a new buffer (see {@link clone}). */
  clone(): Tensor { return ops.clone(this); }
  /** Convert to another dtype (see {@link cast}). */
  cast(dtype: DType): Tensor { return ops.cast(this, dtype); }
  /** Elementwise `this < o` as 0/1. */
  lt(o: Tensor | number): Tensor { return ops.lt(this, o); }
  /** Elementwise `this <= o` as 0/1. */
  le(o: Tensor | number): Tensor { return ops.le(this, o); }
  /** Elementwise `this > o` as 0/1. */
  gt(o: Tensor | number): Tensor { return ops.gt(this, o); }
  /** Elementwise `this >= o` as 0/1. */
  ge(o: Tensor | number): Tensor { return ops.ge(this, o); }
  /** Elementwise `this == o` as 0/1. */
  eq(o: Tensor | number): Tensor { return ops.eq(this, o); }
  /** Elementwise `this != o` as 0/1. */
  ne(o: Tensor | number): Tensor { return ops.ne(this, o); }
  /** Binary cross-entropy of these probabilities against `target` (see {@link binaryCrossEntropy}). */
  binaryCrossEntropy(target: Tensor, reduction: ops.Reduction = 'mean'): Tensor { return ops.binaryCrossEntropy(this, target, reduction); }
  /** Binary cross-entropy of these logits against `target` (see {@link binaryCrossEntropyWithLogits}). */
  binaryCrossEntropyWithLogits(target: Tensor, reduction: ops.Reduction = 'mean'): Tensor { return ops.binaryCrossEntropyWithLogits(this, target, reduction); }
  /** Cross-entropy of these (N, C) logits against int32 class targets (N) (see {@link crossEntropy}). */
  crossEntropy(targets: Tensor, reduction: ops.Reduction = 'mean'): Tensor { return ops.crossEntropy(this, targets, reduction); }
}

// ---------------------------------------------------------------- backward
function backward(root: Tensor, seed?: Tensor): void {
  if (!root.requiresGrad) throw new Error(`backward: the tensor does not require grad (no input of its graph has requiresGrad)`);
  if (!seed) {
    if (root.size !== 1) throw new Error(`backward: a gradient argument is required for a non-scalar output of shape [${root.shape}]`);
    seed = ops.onesLike(root);
  } else if (seed.shape.join() !== root.shape.join()) {
    throw new Error(`backward: grad has shape [${seed.shape}] but the output has shape [${root.shape}]`);
  }
  noGrad(() => {
    if (!root.node) {
      accumulateLeaf(root, seed!);
      return;
    }
    if (!root.node.vjp) throw new Error(`backward: the graph through '${root.node.name}' was already freed by an earlier backward()`);
    // iterative post-order DFS over nodes: deep graphs must not overflow the stack
    const order: Node[] = [];
    const seen = new Set<Node>([root.node]);
    const stack: [Node, number][] = [[root.node, 0]];
    while (stack.length) {
      const top = stack[stack.length - 1];
      const node = top[0];
      if (top[1] < node.inputs.length) {
        const inp = node.inputs[top[1]++].node;
        if (inp && !seen.has(inp)) {
          if (!inp.vjp) throw new Error(`backward: the graph through '${inp.name}' was already freed by an earlier backward()`);
          seen.add(inp);
          stack.push([inp, 0]);
        }
      } else {
        stack.pop();
        order.push(node);
      }
    }
    const grads = new Map<Tensor, Tensor>([[root, seed!]]);
    for (let i = order.length - 1; i >= 0; i--) {
      const node = order[i];
      const cts = node.outputs.map((o) => grads.get(o) ?? null);
      node.outputs.forEach((o) => grads.delete(o));
      if (cts.every((c) => c === null)) continue;
      if (!node.vjp) throw new Error(`backward: the graph through '${node.name}' was already freed by an earlier backward()`);
      const ins = node.vjp(cts);
      node.vjp = null; // release residuals
      node.inputs.forEach((inp, j) => {
        const g0 = ins[j];
        if (!g0 || !inp.requiresGrad) return;
        const g = ops.sumTo(g0, inp.shape);
        if (inp.node) {
          const prev = grads.get(inp);
          grads.set(inp, prev ? ops.add(prev, g) : g);
        } else {
          accumulateLeaf(inp, g);
        }
      });
      // outputs keep pointing at the freed node (vjp null), so a later backward through them raises
      node.inputs = [];
      node.outputs = [];
    }
  });
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  if (g.dtype !== leaf.dtype) g = ops.cast(g, leaf.dtype);
  if (leaf.grad) {
    const old = leaf.grad;
    leaf.grad = keep(ops.add(old, g));
    old.dispose();
  } else {
    // share the cotangent's storage (reference counted, and no op writes into an existing buffer):
    // disposing the cotangent elsewhere leaves the gradient intact, and no copy is made
    leaf.grad = keep(g.withShape(leaf.shape.slice()));
  }
}

// ---------------------------------------------------------------- creation
/** Options of the tensor factories. */
export interface TensorOptions {
  /** Element type (default float32; typed arrays keep their own). */
  dtype?: DType;
  /** Device (default: {@link getDefaultDevice}). */
  device?: Device;
  /** Make the result a leaf that accumulates gradients. */
  requiresGrad?: boolean;
}

/** Nested arrays of numbers or booleans, as {@link tensor} accepts them. */
export type Nested = number | boolean | Nested[];

function inferShape(v: Nested): number[] {
  const shape: number[] = [];
  let cur: Nested = v;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0] as Nested;
  }
  return shape;
}

function flatten(v: Nested, shape: number[], out: number[], axis = 0): void {
  if (axis === shape.length) {
    if (Array.isArray(v)) throw new Error(`tensor: ragged nested array (too deep at axis ${axis})`);
    out.push(typeof v === 'boolean' ? (v ? 1 : 0) : v);
    return;
  }
  if (!Array.isArray(v) || v.length !== shape[axis]) {
    throw new Error(`tensor: ragged nested array: expected length ${shape[axis]} at axis ${axis}, got ${Array.isArray(v) ? v.length : 'a scalar'}`);
  }
  for (const x of v) flatten(x, shape, out, axis + 1);
}

/**
 * Validate a dtype argument. Internal.
 * @internal
 */
// ---------------------------------------------------------------- values known on the host
/** min, max, whether any value is NaN, and whether every value is 0 or 1 */
export interface ValueSummary { min: number; max: number; nan: boolean; binary: boolean }
// tensors created from host values on a device that cannot read synchronously (WebGPU): what the host saw
const hostSummaries = new WeakMap<Buf, ValueSummary>();

function summarize(a: ArrayLike<number>, n = a.length): ValueSummary {
  let min = Infinity, max = -Infinity, nan = false, binary = true;
  for (let i = 0; i < n; i++) {
    const v = a[i];
    if (v !== v) { nan = true; binary = false; continue; }
    if (v < min) min = v;
    if (v > max) max = v;
    if (v !== 0 && v !== 1) binary = false;
  }
  return { min, max, nan, binary };
}

/**
 * @internal What is known of t's values without waiting for a device: read directly where the backend reads
 * synchronously (CPU); on other devices the values t was created with from the host (tensor(), full()), or null
 * for values computed on the device (checking those would stall the device's queue).
 */
export function valueSummary(t: Tensor): ValueSummary | null {
  const b = t.backend;
  if (b.readSync) return summarize(b.readSync(t.buf), t.size);
  return hostSummaries.get(t.buf) ?? null;
}

export function checkDtype(dtype: unknown, where: string): DType {
  if (!DTYPES.includes(dtype as DType)) throw new Error(`${where}: dtype must be one of ${DTYPES.join(', ')}, got '${String(dtype)}'`);
  return dtype as DType;
}

/**
 * Validate a shape argument. Internal.
 * @internal
 */
export function checkShape(shape: unknown, where: string): number[] {
  if (!Array.isArray(shape) || !shape.every((s) => Number.isInteger(s) && s >= 0)) {
    throw new Error(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  return shape.slice();
}

/**
 * Create a tensor from nested arrays, a flat array or typed array with a shape, or a number.
 * @param values - nested arrays (shape inferred), a flat array or typed array (shape given or 1-d), or a number (0-d)
 * @param shape - the shape for flat values (null/undefined: inferred)
 * @param opts - dtype, device, requiresGrad
 * @example
 * ```ts
 * tensor([[1, 2], [3, 4]]);                     // float32 [2, 2]
 * tensor(new Int32Array([0, 2]), [2]);          // int32
 * tensor([1, 2, 3, 4], [2, 2], { dtype: 'float64', requiresGrad: true });
 * ```
 */
export function tensor(values: Nested | TypedArray | number[], shape?: number[] | null, opts: TensorOptions = {}): Tensor {
  const device = opts.device ?? defaultDevice;
  const backend = getBackend(device);
  let src: TypedArray | number[];
  let dtype: DType;
  if (ArrayBuffer.isView(values)) {
    dtype = checkDtype(opts.dtype ?? dtypeOf(values as TypedArray), 'tensor');
    src = values as TypedArray;
    shape = shape ?? [src.length];
  } else {
    dtype = checkDtype(opts.dtype ?? 'float32', 'tensor');
    const inferred = inferShape(values as Nested);
    const flat: number[] = [];
    flatten(values as Nested, inferred, flat);
    src = flat;
    shape = shape ?? inferred;
  }
  shape = checkShape(shape, 'tensor');
  if (numel(shape) !== src.length) {
    throw new Error(`tensor: shape [${shape}] needs ${numel(shape)} values, got ${src.length}`);
  }
  if (dtype === 'float64' && !backend.supportsFloat64) {
    throw new Error(`tensor: device '${device}' does not support float64; use float32 or device 'cpu'`);
  }
  let buf: Buf;
  if (backend.writeSync) {
    // a backend that writes host values in: fill a buffer of its own (pooled, or where its kernels read in place)
    buf = backend.alloc(src.length, dtype);
    backend.writeSync(buf, src);
  } else {
    const data = arrayFor(dtype, src.length);
    data.set(src as never);
    buf = backend.fromArray(data);
    hostSummaries.set(buf, summarize(data)); // dropped if it becomes a parameter (requireGrad)
  }
  const t = Tensor.fromBuf(buf, shape, device);
  if (opts.requiresGrad) t.requireGrad();
  return t;
}

/**
 * A tensor of one value.
 * @param shape - the shape
 * @param value - the fill value
 * @param opts - dtype, device, requiresGrad
 */
export function full(shape: number[], value: number, opts: TensorOptions = {}): Tensor {
  shape = checkShape(shape, 'full');
  const device = opts.device ?? defaultDevice;
  const dtype = checkDtype(opts.dtype ?? 'float32', 'full');
  const backend = getBackend(device);
  if (dtype === 'float64' && !backend.supportsFloat64) throw new Error(`full: device '${device}' does not support float64`);
  const buf = backend.fill(numel(shape), value, dtype);
  if (!backend.readSync) hostSummaries.set(buf, summarize(arrayFor(dtype, 1).fill(value)));
  const t = Tensor.fromBuf(buf, shape, device);
  if (opts.requiresGrad) t.requireGrad();
  return t;
}
/**
 * A tensor of zeros.
 * @param shape - the shape
 * @param opts - dtype, device, requiresGrad
 * @function
 */
export const zeros = (shape: number[], opts: TensorOptions = {}) => full(shape, 0, opts);
/**
 * A tensor of ones.
 * @param shape - the shape
 * @param opts - dtype, device, requiresGrad
 */
export const ones = (shape: number[], opts: TensorOptions = {}) => full(shape, 1, opts);

/**
 * Evenly spaced values in `[start, stop)` (`torch.arange`); int32 when start and step are integers.
 * @param start - first value (or the stop, from 0, when stop is omitted)
 * @param stop - end (exclusive)
 * @param step - spacing (non-zero, default 1)
 * @param opts - dtype, device, requiresGrad
 */
export function arange(start: number, stop?: number, step = 1, opts: TensorOptions = {}): Tensor {
  if (stop === undefined) { stop = start; start = 0; }
  if (step === 0) throw new Error('arange: step must be non-zero');
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const dtype = opts.dtype ?? (Number.isInteger(start) && Number.isInteger(step) ? 'int32' : 'float32');
  const a = arrayFor(dtype, n);
  for (let i = 0; i < n; i++) a[i] = start + i * step;
  return tensor(a, [n], { ...opts, dtype });
}

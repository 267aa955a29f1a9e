// Tensor, device registry, the tape (reverse mode) and memory scopes.
// Tensors are always contiguous in their buffer; reshape shares the buffer, every other view op
// materialises through the backend's `copy` primitive. Ops live in engine/ops.ts.
import type { Backend, Buf, View } from './backend.ts';
import { arrayFor, dtypeOf, isFloat, DTYPES, type DType, type TypedArray } from './dtype.ts';
import * as ops from './ops.ts';

// ---------------------------------------------------------------- devices
export type Device = 'cpu' | 'webgpu' | (string & {});
const backends = new Map<string, Backend>();
const lazyHints = new Map<string, string>();

export function registerBackend(name: string, backend: Backend): void {
  backends.set(name, backend);
}
export function hintBackend(name: string, howToEnable: string): void {
  lazyHints.set(name, howToEnable);
}
export function getBackend(name: string): Backend {
  const b = backends.get(name);
  if (b) return b;
  const hint = lazyHints.get(name);
  if (hint) throw new Error(`device '${name}' is not initialised: ${hint}`);
  throw new Error(`device: unknown device '${name}'; expected one of ${[...backends.keys(), ...lazyHints.keys()].join(', ')}`);
}
export function hasBackend(name: string): boolean {
  return backends.has(name);
}
let defaultDevice: Device = 'cpu';
export function setDefaultDevice(d: Device): void {
  getBackend(d);
  defaultDevice = d;
}
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
 * Run fn; every tensor created inside and not returned (or kept with `keep`) is disposed at the end.
 * Returned tensors (also inside arrays/objects one level deep) survive into the enclosing scope.
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

/** Exclude a tensor from the enclosing tidy scopes (it must then be disposed by hand, or lives with the GC on CPU). */
export function keep<T extends Tensor>(t: T): T {
  t.kept = true;
  return t;
}

export function memory(device: Device = defaultDevice): { liveTensors: number; liveBuffers: number; liveBytes: number; allocatedBytes: number } {
  return { liveTensors, ...getBackend(device).memory() };
}

// ---------------------------------------------------------------- autograd state
let gradEnabled = true;
export function isGradEnabled(): boolean {
  return gradEnabled;
}
/** Run fn without recording operations for differentiation. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export type Cotangent = Tensor | null | undefined;
export interface Node {
  name: string;
  inputs: Tensor[];
  outputs: Tensor[];
  vjp: ((cts: (Tensor | null)[]) => Cotangent[]) | null;
}

/** Attach a backward rule to freshly computed outputs (no-op when nothing requires grad). */
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
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

let nextId = 0;

export class Tensor {
  readonly id = nextId++;
  readonly shape: number[];
  readonly dtype: DType;
  readonly device: Device;
  requiresGrad = false;
  grad: Tensor | null = null;
  node: Node | null = null;
  outputIndex = 0;
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

  static fromBuf(buf: Buf, shape: number[], device: Device): Tensor {
    return new Tensor(new Storage(getBackend(device), buf), shape, buf.dtype, device);
  }

  /** A tensor that shares this one's buffer with another shape (same element count). */
  withShape(shape: number[]): Tensor {
    return new Tensor(this.store().retain(), shape, this.dtype, this.device);
  }

  get size(): number { return numel(this.shape); }
  get rank(): number { return this.shape.length; }
  get isDisposed(): boolean { return this.storage === null; }
  get backend(): Backend { return this.store().backend; }

  private store(): Storage {
    if (!this.storage) throw new Error(`tensor #${this.id} (shape [${this.shape}]) was disposed and cannot be used`);
    return this.storage;
  }
  get buf(): Buf { return this.store().buf; }

  /** How an op with output `shape` reads this tensor (broadcast axes get stride 0). */
  viewFor(shape: readonly number[]): View {
    const strides = new Array<number>(shape.length).fill(0);
    const own = contiguousStrides(this.shape);
    const off = shape.length - this.shape.length;
    for (let d = 0; d < this.shape.length; d++) strides[off + d] = this.shape[d] === 1 ? 0 : own[d];
    return { buf: this.buf, strides, offset: 0 };
  }

  dispose(): void {
    if (!this.storage) return;
    this.storage.release();
    this.storage = null;
    this.node = null;
    liveTensors--;
  }

  /** Read the values (a fresh typed array). */
  async data(): Promise<TypedArray> {
    const a = await this.backend.read(this.buf);
    return a.slice(0, this.size);
  }
  /** Read synchronously; only where the backend can (CPU). */
  dataSync(): TypedArray {
    const b = this.backend;
    if (!b.readSync) throw new Error(`dataSync: device '${this.device}' reads asynchronously; use await t.data()`);
    return b.readSync(this.buf).slice(0, this.size);
  }
  item(): number {
    if (this.size !== 1) throw new Error(`item: expected a tensor with one element, got shape [${this.shape}]`);
    return this.dataSync()[0];
  }
  async itemAsync(): Promise<number> {
    if (this.size !== 1) throw new Error(`itemAsync: expected a tensor with one element, got shape [${this.shape}]`);
    return (await this.data())[0];
  }
  /** Nested arrays (CPU). */
  toArray(): unknown {
    const d = Array.from(this.dataSync());
    const build = (axis: number, off: number): unknown => {
      if (axis === this.shape.length) return d[off];
      const stride = numel(this.shape.slice(axis + 1));
      return Array.from({ length: this.shape[axis] }, (_, i) => build(axis + 1, off + i * stride));
    };
    return build(0, 0);
  }

  /** A tensor with the same values, cut from the graph. Shares the buffer. */
  detach(): Tensor {
    return this.withShape(this.shape.slice());
  }

  /** Replace this tensor's values by src's (same shape and dtype), in place: optimizers use it on leaves. */
  assign(src: Tensor): this {
    if (src.shape.join() !== this.shape.join() || src.dtype !== this.dtype || src.device !== this.device) {
      throw new Error(`assign: source [${src.shape}] ${src.dtype} on ${src.device} does not match target [${this.shape}] ${this.dtype} on ${this.device}`);
    }
    const s = src.store().retain();
    this.store().release();
    this.storage = s;
    return this;
  }

  /** Mark as a leaf that accumulates gradients. */
  requireGrad(flag = true): this {
    if (flag && !isFloat(this.dtype)) throw new Error(`requiresGrad: only floating tensors can require gradients, got ${this.dtype}`);
    this.requiresGrad = flag;
    if (flag) hostSummaries.delete(this.buf); // a parameter's buffer is updated in place: what the host saw goes stale
    return this;
  }

  backward(grad?: Tensor): void {
    backward(this, grad);
  }

  toString(): string {
    return `Tensor(shape=[${this.shape}], dtype=${this.dtype}, device=${this.device}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }

  // ---- method forms of the ops (see engine/ops.ts)
  add(o: Tensor | number) { return ops.add(this, o); }
  sub(o: Tensor | number) { return ops.sub(this, o); }
  mul(o: Tensor | number) { return ops.mul(this, o); }
  div(o: Tensor | number) { return ops.div(this, o); }
  pow(o: Tensor | number) { return ops.pow(this, o); }
  maximum(o: Tensor | number) { return ops.maximum(this, o); }
  minimum(o: Tensor | number) { return ops.minimum(this, o); }
  neg() { return ops.neg(this); }
  exp() { return ops.exp(this); }
  log() { return ops.log(this); }
  expm1() { return ops.expm1(this); }
  log1p() { return ops.log1p(this); }
  softplus() { return ops.softplus(this); }
  sqrt() { return ops.sqrt(this); }
  abs() { return ops.abs(this); }
  relu() { return ops.relu(this); }
  sigmoid() { return ops.sigmoid(this); }
  tanh() { return ops.tanh(this); }
  square() { return ops.square(this); }
  clamp(lo?: number | null, hi?: number | null) { return ops.clamp(this, lo, hi); }
  sum(axis?: number | number[] | null, keepDims = false) { return ops.sum(this, axis, keepDims); }
  mean(axis?: number | number[] | null, keepDims = false) { return ops.mean(this, axis, keepDims); }
  max(axis?: number | number[] | null, keepDims = false) { return ops.max(this, axis, keepDims); }
  min(axis?: number | number[] | null, keepDims = false) { return ops.min(this, axis, keepDims); }
  argmax(axis = -1, keepDims = false) { return ops.argmax(this, axis, keepDims); }
  logsumexp(axis: number = -1, keepDims = false) { return ops.logsumexp(this, axis, keepDims); }
  softmax(axis = -1) { return ops.softmax(this, axis); }
  logSoftmax(axis = -1) { return ops.logSoftmax(this, axis); }
  matmul(o: Tensor) { return ops.matmul(this, o); }
  reshape(shape: number[]) { return ops.reshape(this, shape); }
  permute(dims: number[]) { return ops.permute(this, dims); }
  transpose(a = -2, b = -1) { return ops.transpose(this, a, b); }
  expand(shape: number[]) { return ops.expand(this, shape); }
  slice(begin: number[], size?: number[]) { return ops.slice(this, begin, size); }
  cast(dtype: DType) { return ops.cast(this, dtype); }
  lt(o: Tensor | number) { return ops.lt(this, o); }
  le(o: Tensor | number) { return ops.le(this, o); }
  gt(o: Tensor | number) { return ops.gt(this, o); }
  ge(o: Tensor | number) { return ops.ge(this, o); }
  eq(o: Tensor | number) { return ops.eq(this, o); }
  ne(o: Tensor | number) { return ops.ne(this, o); }
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
export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

type Nested = number | boolean | Nested[];

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

export function checkShape(shape: unknown, where: string): number[] {
  if (!Array.isArray(shape) || !shape.every((s) => Number.isInteger(s) && s >= 0)) {
    throw new Error(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  return shape.slice();
}

/** Create a tensor from nested arrays, a flat array or typed array with a shape, or a number. */
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
  if (backend.readSync) {
    // a backend whose buffers are host arrays: fill one of its own (pooled, or where its kernels read in place)
    buf = backend.alloc(src.length, dtype);
    (backend.readSync(buf) as TypedArray).set(src as never);
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
export const zeros = (shape: number[], opts: TensorOptions = {}) => full(shape, 0, opts);
export const ones = (shape: number[], opts: TensorOptions = {}) => full(shape, 1, opts);

export function arange(start: number, stop?: number, step = 1, opts: TensorOptions = {}): Tensor {
  if (stop === undefined) { stop = start; start = 0; }
  if (step === 0) throw new Error('arange: step must be non-zero');
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const dtype = opts.dtype ?? (Number.isInteger(start) && Number.isInteger(step) ? 'int32' : 'float32');
  const a = arrayFor(dtype, n);
  for (let i = 0; i < n; i++) a[i] = start + i * step;
  return tensor(a, [n], { ...opts, dtype });
}

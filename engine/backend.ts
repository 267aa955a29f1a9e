// The backend contract: the few primitives every device implements.
// Everything else (views, broadcasting rules, composite ops, gradients) lives in the engine.
//
// Buffers are flat and contiguous. A "View" describes how an op reads a buffer:
// a shape (already aligned to the op's output rank) and element strides; broadcasting is stride 0.
import type { DType } from './dtype.ts';
import type { UnaryOp, BinaryOp } from './elementwise.ts';

/** The activation fused into a matmul's epilogue ({@link Backend.matmulBiasAct}, and ops.linear). */
export type LinearAct = 'none' | 'relu';

/** A flat, contiguous device buffer of `size` elements of one dtype. */
export interface Buf {
  /** number of elements */
  readonly size: number;
  readonly dtype: DType;
}

/** How an op reads a buffer: element strides per output axis (0 where broadcast) from an offset. */
export interface View {
  buf: Buf;
  /** one per output axis; 0 where broadcast */
  strides: number[];
  offset: number;
}

/** A batched product C = op(A) @ op(B): `batch` matrices of (m, n), inner size k. */
export interface MatmulArgs {
  a: Buf;
  b: Buf;
  /** number of matrices in the output */
  batch: number;
  m: number;
  n: number;
  k: number;
  /** a is stored (k, m) per batch instead of (m, k) */
  transA: boolean;
  /** b is stored (n, k) per batch instead of (k, n) */
  transB: boolean;
  /** elements between consecutive a matrices (0 = broadcast) */
  aBatchStride: number;
  bBatchStride: number;
}

/** A backend's memory: live buffers and bytes, and the bytes it holds from the system (pooled ones included). */
export interface MemoryStats {
  /** buffers handed out and not yet released */
  liveBuffers: number;
  /** bytes of those buffers */
  liveBytes: number;
  /** bytes the backend holds from the system, pooled ones included */
  allocatedBytes: number;
}

/** The backend contract: the primitives every device implements (see the README's "How to add a backend"). Views, broadcasting, composite ops and gradients live in the engine. */
export interface Backend {
  /** the device name it is registered under ('cpu', 'webgpu', ...) */
  readonly name: 'cpu' | 'webgpu' | string;
  /** whether float64 buffers exist on this device */
  readonly supportsFloat64: boolean;

  // --- memory ---
  /** A new buffer; its contents are unspecified. */
  alloc(size: number, dtype: DType): Buf;
  /** A buffer holding `data` (the backend may keep the array itself: the caller must not use it afterwards). */
  fromArray(data: Float32Array | Float64Array | Int32Array): Buf;
  /** read/readSync may return a copy or the buffer's own storage (the CPU backend does): valid until the buffer is released, after which the backend may reuse it. Callers must never write into the result (it may be a copy, or storage another tensor shares); Tensor.data()/dataSync() hand users a copy. */
  read(buf: Buf): Promise<Float32Array | Float64Array | Int32Array>;
  /** A synchronous read (same rules as read); absent where the device cannot read synchronously. */
  readSync?(buf: Buf): Float32Array | Float64Array | Int32Array;
  /** Copy `src` into elements [offset, offset + src.length) of a buffer (present where readSync is). */
  writeSync?(buf: Buf, src: ArrayLike<number>, offset?: number): void;
  /** Give a buffer back; the backend may reuse its storage. */
  release(buf: Buf): void;
  /** Live and allocated memory. */
  memory(): MemoryStats;

  // --- primitives ---
  /** A new buffer with every element `value`. */
  fill(size: number, value: number, dtype: DType): Buf;
  /** elementwise over `shape`; every input is read through its view; output dtype given by caller */
  unary(op: UnaryOp, x: View, shape: number[], outDtype: DType): Buf;
  /** Elementwise binary op over `shape`, both inputs read through their views. */
  binary(op: BinaryOp, a: View, b: View, shape: number[], outDtype: DType): Buf;
  /** cond ? a : b elementwise over `shape`. */
  where(cond: View, a: View, b: View, shape: number[], outDtype: DType): Buf;
  /** materialise a strided view into a new contiguous buffer (permute, slice, expand, cast) */
  copy(x: View, shape: number[], outDtype: DType): Buf;
  /** write a view into part of an existing buffer (concat, the adjoint of slice); dst is addressed by its own view */
  copyInto(dst: View, src: View, shape: number[]): void;
  /** x viewed as (rows, cols): reduce the last axis -> (rows) */
  reduceLast(op: 'sum' | 'max', x: Buf, rows: number, cols: number): Buf;
  /** int32, first index of the maximum */
  argmaxLast(x: Buf, rows: number, cols: number): Buf;
  /** A batched product (see MatmulArgs). */
  matmul(args: MatmulArgs): Buf;
  /** x viewed as (outer, n, inner), idx int32 (outer, m, inner) with values in [0, n) -> (outer, m, inner) */
  gather(x: Buf, idx: Buf, outer: number, n: number, m: number, inner: number): Buf;
  /** adjoint of gather: g (outer, m, inner) summed into zeros (outer, n, inner) */
  scatterAdd(g: Buf, idx: Buf, outer: number, n: number, m: number, inner: number): Buf;
  /** Philox4x32-10 bits: element i is word (i % 4) of block (counter + floor(i / 4)) under key; int32 dtype */
  randomBits(key: [number, number], counter: number, size: number): Buf;

  /** Optional fused kernels; the engine uses them when present and falls back to composed primitives. */
  /** Optional: one Adam step on p in place (moments m and v updated), from the gradient g. */
  adamUpdate?(p: Buf, g: Buf, m: Buf, v: Buf, hp: AdamHyper): void;
  /** act(A @ B + bias) in one call (bias: length n, added to every row; null for none); ops.linear uses it */
  matmulBiasAct?(args: MatmulArgs, bias: Buf | null, act: LinearAct): Buf;
  /** softmax (log: log-softmax) over the last axis of a contiguous (rows, cols) buffer, rounded once per output; the same values as the composition in ops.softmax/logSoftmax up to that rounding */
  softmaxLast?(x: Buf, rows: number, cols: number, log: boolean): Buf;
  /** their VJPs from the output y and cotangent g: y (g - <y, g>), or (log) g - exp(y) sum(g) */
  softmaxLastVjp?(y: Buf, g: Buf, rows: number, cols: number, log: boolean): Buf;
  /** submit recorded work (devices that batch dispatches) */
  flush?(): void;
  /** Resolves once the device's helpers (the CPU backend's worker thread) are up; absent where there are none. */
  ready?(): Promise<void>;

  /**
   * A float32 GEMM over host arrays, for models that keep their state in typed arrays (the ListOps
   * Tree-LSTM). Present on devices whose buffers are host arrays (readSync); `fast` says whether it is a
   * tuned kernel (the CPU backend's WebAssembly SIMD GEMM) or a plain loop.
   */
  readonly hostGemm?: HostGemm;
  /**
   * One-pass estimator kernels (forward sample and surrogate, and its backward) by kernel name (args.kind);
   * returns null where this call is not covered, e.g. a kind this backend has no kernel for (the caller then
   * runs its own path). See estimators/fused.ts.
   */
  fusedEstimator?(args: FusedEstimatorArgs): FusedEstimatorSample | null;
}

/** See Backend.hostGemm. */
export interface HostGemm {
  /**
   * C (m x n, row-major, contiguous at cOff) = op(A) @ op(B), overwritten. A is stored (m, k) row-major at aOff,
   * or (k, m) if transA; B is stored (k, n) at bOff, or (n, k) if transB.
   */
  matmul(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number,
    m: number, n: number, k: number, transA: boolean, transB: boolean): void;
  /** whether this is a tuned kernel rather than a plain loop */
  readonly fast: boolean;
  /**
   * Pack a B operand once for many products against it (a weight read by every step of a recurrence): B is
   * stored (k, n) at bOff, or (n, k) if transB. The packed form is a copy in the layout the kernel reads (the
   * tuned GEMM's column panels, in its own memory, read by both of its threads), so a product against it skips
   * the copy and packing of B that matmul does on every call. Products against it (matmulPacked) give the same
   * bits as matmul with the same B. The caller owns it: release() it when done (its memory is also reclaimed
   * once it is garbage-collected). B must not change while it is packed (a parameter update means a new pack):
   * small products may still read B itself, and a product after a detected change throws (see PackedOperand).
   */
  pack(b: Float32Array, bOff: number, k: number, n: number, transB: boolean): PackedOperand;
  /**
   * C (m x n, row-major at cOff) = op(A) @ B for a packed B (k, n), overwritten: A is stored (m, k) at aOff, or
   * (k, m) if transA. The same bits as matmul(a, aOff, b, bOff, c, cOff, m, n, k, transA, transB) with the B that
   * was packed. Throws if `packed` was released, comes from another HostGemm, or its source B was seen to change.
   */
  matmulPacked(a: Float32Array, aOff: number, packed: PackedOperand, c: Float32Array, cOff: number, m: number, transA: boolean): void;
}

/** A B operand packed by HostGemm.pack: op(B) is (k, n). */
export interface PackedOperand {
  readonly k: number;
  readonly n: number;
  /** whether the source was stored (n, k) */
  readonly transB: boolean;
  /** whether release() was called (products against it then throw) */
  readonly released: boolean;
  /** Give its memory back now; later products against it throw. Releasing twice is a no-op. */
  release(): void;
}

/**
 * The name of a fused estimator kernel: what an estimator definition's `fused` request names
 * (estimators.define). gapgrad's own: `st`, `gumbel`, `gst`, `gstp`, `reinmax`, `rao`. A backend registers a
 * kernel under a name by handling it in Backend.fusedEstimator, and returns null for every other name: the
 * method then runs on engine ops.
 */
export type FusedEstimatorKind = string;

/** Arguments of Backend.fusedEstimator: logits viewed as (rows, cols), contiguous. */
export interface FusedEstimatorArgs {
  kind: FusedEstimatorKind;
  logits: Buf;
  /** 0 = masked, same size as logits; null for none */
  mask: Buf | null;
  rows: number;
  cols: number;
  tau: number;
  /** gst: the gap g */
  gap: number;
  /** Philox key of the Gumbel-max sample (the same stream as random.gumbel) */
  key: readonly [number, number];
  /** rao: key of the K conditional draws, and K */
  raoKey: readonly [number, number];
  k: number;
  /** whether a backward will follow (else the surrogate need not be computed) */
  surrogate: boolean;
}

/** What Backend.fusedEstimator returns. */
export interface FusedEstimatorSample {
  /** the one-hot sample (a new buffer, logits' dtype) */
  onehot: Buf;
  /** the maximum of the masked logits per row (-Infinity: every category masked) */
  rowMax: ArrayLike<number>;
  /** the logits' cotangent from the sample's cotangent g (a new buffer); called at most once */
  backward(g: Buf): Buf;
}

/** Adam's hyperparameters for Backend.adamUpdate. */
export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count after increment */
  step: number;
}

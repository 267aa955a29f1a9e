// The backend contract: the few primitives every device implements.
// Everything else (views, broadcasting rules, composite ops, gradients) lives in the engine.
//
// Buffers are flat and contiguous. A "View" describes how an op reads a buffer:
// a shape (already aligned to the op's output rank) and element strides; broadcasting is stride 0.
import type { DType } from './dtype.ts';
import type { UnaryOp, BinaryOp } from './elementwise.ts';

export interface Buf {
  readonly size: number; // number of elements
  readonly dtype: DType;
}

export interface View {
  buf: Buf;
  strides: number[]; // one per output axis; 0 where broadcast
  offset: number;
}

export interface MatmulArgs {
  a: Buf;
  b: Buf;
  batch: number; // number of matrices in the output
  m: number;
  n: number;
  k: number;
  transA: boolean; // a is stored (k, m) per batch instead of (m, k)
  transB: boolean; // b is stored (n, k) per batch instead of (k, n)
  aBatchStride: number; // elements between consecutive a matrices (0 = broadcast)
  bBatchStride: number;
}

export interface MemoryStats {
  liveBuffers: number; // buffers handed out and not yet released
  liveBytes: number; // bytes of those buffers
  allocatedBytes: number; // bytes the backend holds from the system, pooled ones included
}

export interface Backend {
  readonly name: 'cpu' | 'webgpu' | string;
  readonly supportsFloat64: boolean;

  // --- memory ---
  alloc(size: number, dtype: DType): Buf; // contents unspecified
  fromArray(data: Float32Array | Float64Array | Int32Array): Buf;
  // read/readSync may return the buffer's own storage (the CPU backend does): valid until the buffer
  // is released, after which the backend may reuse it; Tensor.data()/dataSync() hand users a copy
  read(buf: Buf): Promise<Float32Array | Float64Array | Int32Array>;
  readSync?(buf: Buf): Float32Array | Float64Array | Int32Array; // absent where the device cannot
  release(buf: Buf): void;
  memory(): MemoryStats;

  // --- primitives ---
  fill(size: number, value: number, dtype: DType): Buf;
  // elementwise over `shape`; every input is read through its view; output dtype given by caller
  unary(op: UnaryOp, x: View, shape: number[], outDtype: DType): Buf;
  binary(op: BinaryOp, a: View, b: View, shape: number[], outDtype: DType): Buf;
  where(cond: View, a: View, b: View, shape: number[], outDtype: DType): Buf;
  // materialise a strided view into a new contiguous buffer (permute, slice, expand, cast)
  copy(x: View, shape: number[], outDtype: DType): Buf;
  // write a view into part of an existing buffer (concat, the adjoint of slice); dst is addressed by its own view
  copyInto(dst: View, src: View, shape: number[]): void;
  // x viewed as (rows, cols): reduce the last axis -> (rows)
  reduceLast(op: 'sum' | 'max', x: Buf, rows: number, cols: number): Buf;
  argmaxLast(x: Buf, rows: number, cols: number): Buf; // int32, first index of the maximum
  matmul(args: MatmulArgs): Buf;
  // x viewed as (outer, n, inner), idx int32 (outer, m, inner) with values in [0, n) -> (outer, m, inner)
  gather(x: Buf, idx: Buf, outer: number, n: number, m: number, inner: number): Buf;
  // adjoint of gather: g (outer, m, inner) summed into zeros (outer, n, inner)
  scatterAdd(g: Buf, idx: Buf, outer: number, n: number, m: number, inner: number): Buf;
  // Philox4x32-10 bits: element i is word (i % 4) of block (counter + floor(i / 4)) under key; int32 dtype
  randomBits(key: [number, number], counter: number, size: number): Buf;

  // Optional fused kernels; the engine uses them when present and falls back to composed primitives.
  adamUpdate?(p: Buf, g: Buf, m: Buf, v: Buf, hp: AdamHyper): void;
  // act(A @ B + bias) in one call (bias: length n, added to every row; null for none); ops.linear uses it
  matmulBiasAct?(args: MatmulArgs, bias: Buf | null, act: 'relu' | 'none'): Buf;
  // softmax (log: log-softmax) over the last axis of a contiguous (rows, cols) buffer, rounded once per
  // output; the same values as the composition in ops.softmax/logSoftmax up to that rounding
  softmaxLast?(x: Buf, rows: number, cols: number, log: boolean): Buf;
  // their VJPs from the output y and cotangent g: y (g - <y, g>), or (log) g - exp(y) sum(g)
  softmaxLastVjp?(y: Buf, g: Buf, rows: number, cols: number, log: boolean): Buf;
  flush?(): void; // submit recorded work (devices that batch dispatches)
}

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number; // 1-based step count after increment
}

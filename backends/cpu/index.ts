// The CPU backend: typed arrays, float32/float64/int32. Elementwise kernels are compiled from the
// shared definitions in engine/elementwise.ts; float32 matmul runs the WebAssembly SIMD GEMM by default
// (pluggable; a register-blocked JS kernel otherwise and for other dtypes).
import type { Backend, Buf, View, MatmulArgs, MemoryStats, AdamHyper, HostGemm, FusedEstimatorArgs, FusedEstimatorSample } from '../../engine/backend.ts';
import { fusedEstimatorCpu, type EstimatorHost } from './estimators.ts';
import { arrayFor, bytesPerElement, dtypeOf, type DType, type TypedArray } from '../../engine/dtype.ts';
import { UNARY, BINARY, toJs, select, bitsToUniform, type UnaryOp, type BinaryOp } from '../../engine/elementwise.ts';
import { philoxFill } from '../../engine/philox.ts';
import { collapse } from '../../engine/views.ts';
import { setting } from '../../engine/config.ts';
import { matmulJs } from './matmul_js.ts';
import { createAdamWasm, type AdamKernel, type AdamSlot } from './wasm/adam.ts';
import { bceLogitsF32, bceLogitsGradF32, bceWasmAvailable } from './wasm/bce.ts';
import { createGemm, createGemmBackground, isWasmGemm, type Epilogue, type Gemm, type Splitter } from './wasm/gemm.ts';
import { expF32, logSoftmaxVjpRowsF32, softmaxRowsF32 } from './wasm/softmax_rows.ts';
import { ewF32, ewInMemory, ewWasmOp } from './wasm/elementwise.ts';
import { hostGemmOver } from './wasm/packed.ts';

export class CpuBuf implements Buf {
  /** pooled: the backend allocated this array for an op's output and may reuse it after release */
  // data is replaced only by adamUpdate (a parameter and its moments moved into wasm memory)
  constructor(public data: TypedArray, public pooled = false) {}
  /** set while data is an array of the GEMM's own memory that release() hands back to it */
  home: Gemm | null = null;
  get size(): number { return this.data.length; }
  get dtype(): DType { return dtypeOf(this.data); }
}

/** A fast float32 matmul (the WASM SIMD kernels implement this). */
export interface FastGemm {
  /**
   * c[cOff..] = op(A) @ op(B) for row-major float32 arrays: op(A) is (m, k), op(B) is (k, n), each read
   * transposed when its flag is set; c (m, n) is overwritten.
   */
  matmul(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number,
    m: number, n: number, k: number, transA: boolean, transB: boolean): void;
}

// matmul outputs of at least this many floats go into the GEMM's memory (smaller ones: copying is cheap)
const RESIDENT_MIN = 4096;

type Kernel1 = (out: TypedArray, x: TypedArray, xo: number, xs: number[], shape: number[]) => void;
type Kernel2 = (out: TypedArray, a: TypedArray, ao: number, as: number[], b: TypedArray, bo: number, bs: number[], shape: number[]) => void;
type Kernel3 = (out: TypedArray, c: TypedArray, co: number, cs: number[], a: TypedArray, ao: number, as: number[],
  b: TypedArray, bo: number, bs: number[], shape: number[]) => void;

// Generates a strided N-d loop: the innermost axis is a tight loop, outer axes advance by counters.
function stridedLoop(names: string[], body: string): string {
  const decl = names.map((v) => `let ${v}p = ${v}o;`).join(' ');
  const inner = names.map((v) => `const ${v}i = ${v}s[r - 1];`).join(' ');
  const load = names.map((v) => `const ${v} = ${v.toUpperCase()}[${v}q];`).join(' ');
  const step = names.map((v) => `${v}q += ${v}i;`).join(' ');
  const start = names.map((v) => `let ${v}q = ${v}p;`).join(' ');
  const adv = names.map((v) => `${v}p += ${v}s[d];`).join(' ');
  const back = names.map((v) => `${v}p -= ${v}s[d] * shape[d];`).join(' ');
  return `
    const r = shape.length;
    if (r === 0) { const ${names.map((v) => `${v} = ${v.toUpperCase()}[${v}o]`).join(', ')}; out[0] = ${body}; return; }
    const inner = shape[r - 1]; let total = 1; for (let d = 0; d < r; d++) total *= shape[d];
    if (total === 0) return;
    const outer = total / inner; const idx = new Int32Array(r);
    ${decl} ${inner} let o = 0;
    for (let t = 0; t < outer; t++) {
      ${start}
      for (let j = 0; j < inner; j++) { ${load} out[o++] = ${body}; ${step} }
      for (let d = r - 2; d >= 0; d--) { idx[d]++; ${adv} if (idx[d] < shape[d]) break; idx[d] = 0; ${back} }
    }`;
}

function compile<T>(params: string, src: string): T {
  return new Function('select', 'bitsToUniform', `return function(${params}) { ${src} };`)(select, bitsToUniform) as T;
}

const unaryKernels = new Map<string, Kernel1>();
const binaryKernels = new Map<string, Kernel2>();
let whereKernel: Kernel3 | null = null;
const contigUnary = new Map<string, (out: TypedArray, X: TypedArray, n: number) => void>();
const contigBinary = new Map<string, (out: TypedArray, A: TypedArray, B: TypedArray, n: number) => void>();

function unaryExpr(op: UnaryOp): string {
  if (op === 'bitsToUniform') return 'bitsToUniform(x)';
  const e = UNARY[op];
  if (e === undefined) throw new Error(`cpu.unary: unknown op '${op}'`);
  return toJs(e);
}

function getUnary(op: UnaryOp): Kernel1 {
  let k = unaryKernels.get(op);
  if (!k) {
    k = compile<Kernel1>('out, X, xo, xs, shape', stridedLoop(['x'], unaryExpr(op)));
    unaryKernels.set(op, k);
  }
  return k;
}

function getBinary(op: BinaryOp): Kernel2 {
  let k = binaryKernels.get(op);
  if (!k) {
    const e = BINARY[op];
    if (e === undefined) throw new Error(`cpu.binary: unknown op '${op}'`);
    k = compile<Kernel2>('out, A, ao, as, B, bo, bs, shape', stridedLoop(['a', 'b'], toJs(e)));
    binaryKernels.set(op, k);
  }
  return k;
}

function isContiguous(v: View, shape: number[]): boolean {
  if (v.offset !== 0) return false;
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && v.strides[d] !== s) return false;
    s *= shape[d];
  }
  return true;
}

function isScalarView(v: View): boolean {
  return v.strides.every((s) => s === 0);
}

const POOL_MIN = 1024; // elements

/** One row of softmaxLast in JS, as ops.softmax / logSoftmax compose it: m = max (NaN propagates), shift by m where
 *  m is finite (else 0), then e / sum(e) or x - (log(sum(e)) + shift); float64 inside, one rounding on store. */
function softmaxRowJs(X: TypedArray, out: TypedArray, o: number, cols: number, log: boolean): void {
  let m = -Infinity;
  for (let j = 0; j < cols; j++) { const v = X[o + j]; if (v > m || v !== v) m = v; if (m !== m) break; }
  const sh = m - m === 0 ? m : 0;
  let z = 0;
  if (log) {
    for (let j = 0; j < cols; j++) z += Math.exp(X[o + j] - sh);
    const lz = Math.log(z) + sh;
    for (let j = 0; j < cols; j++) out[o + j] = X[o + j] - lz;
  } else {
    for (let j = 0; j < cols; j++) { const e = Math.exp(X[o + j] - sh); out[o + j] = e; z += e; }
    const iz = 1 / z; // e is rounded to the dtype once before the scaling, as the composition's exp output is
    for (let j = 0; j < cols; j++) out[o + j] *= iz;
  }
}

/** The default fast matmul: the wasm GEMM on GAPGRAD_THREADS (1 or 2) or min(2, cores) threads; null where
 *  WebAssembly SIMD is unavailable (the JS kernel then runs). */
function defaultGemm(): FastGemm | null {
  const threads = setting('threads');
  // 256 MiB: the MNIST-VAE keeps ~24 MB there. Arrays nobody disposes return only when garbage-collected, which a
  // loop that never yields to the event loop does not allow; the cap bounds what such a loop holds there.
  const heapMb = setting('wasmHeapMB') ?? 256;
  let g: Gemm;
  try {
    g = createGemmBackground(threads ? { threads } : {});
  } catch {
    return null;
  }
  // the bytes of arrays the backend may keep in the GEMM's memory (matmul outputs, Adam's parameters)
  g.arena.limitBytes = heapMb * 2 ** 20;
  return g;
}

function numel(shape: number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/**
 * The CPU backend (device 'cpu'): typed arrays, WebAssembly SIMD kernels for float32 products, Adam and the fused
 * estimators, and a second thread where the platform provides one. The instance is exported as `cpuBackend`.
 */
export class CpuBackend implements Backend {
  readonly name = 'cpu';
  readonly supportsFloat64 = true;
  private live = 0;
  private liveBytes = 0;
  private gemmChosen = false;
  private gemmImpl: FastGemm | null = null;
  private gemmIsDefault = false;
  /**
   * The float32 matmul kernel. By default the WebAssembly SIMD GEMM (backends/cpu/wasm/gemm.ts), built at the
   * first matmul, on min(2, cores) threads or GAPGRAD_THREADS; its worker thread joins in once it has started.
   * Assign a kernel to replace it, or null for the plain-JS loops.
   */
  get gemm(): FastGemm | null {
    if (!this.gemmChosen) {
      this.gemmChosen = true;
      this.gemmImpl = defaultGemm();
      this.gemmIsDefault = true;
    }
    return this.gemmImpl;
  }
  /** Replace the float32 matmul kernel (null: the plain-JS loops); the default kernel's thread is closed. */
  set gemm(g: FastGemm | null) {
    // the default kernel's worker thread goes when the kernel is replaced
    if (this.gemmChosen && this.gemmImpl !== g && this.gemmIsDefault && isWasmGemm(this.gemmImpl)) void this.gemmImpl.close();
    this.gemmChosen = true;
    this.gemmIsDefault = false;
    this.gemmImpl = g;
  }
  /**
   * Build the float32 GEMM now and resolve once its worker thread (if any) is up. With `threads` (1 or 2),
   * replace the current kernel by one on that many threads.
   */
  async ready(threads?: 1 | 2): Promise<void> {
    if (threads !== undefined) {
      if (threads !== 1 && threads !== 2) throw new Error(`CpuBackend.ready: threads must be 1 or 2, got ${threads}`);
      const current = this.gemm;
      if (isWasmGemm(current) && current.threads === threads) { await current.ready(); return; }
      this.gemm = await createGemm({ threads });
      return;
    }
    const g = this.gemm;
    if (isWasmGemm(g)) await g.ready();
  }
  /** WebAssembly SIMD Adam for float32 parameters: built on first use (undefined); null = use the
   *  JS loop (set it to null to force the fallback, e.g. in tests).
   *  @internal */
  adamKernel: AdamKernel | null | undefined = undefined;
  /** float32 results of at least this many elements (matmul, and add / sub / mul / div / relu's backward on
   *  contiguous arrays) are kept in the wasm GEMM's memory (Infinity: none) */
  residentMin = RESIDENT_MIN;
  /** whether Adam keeps parameters (and their moments) in the wasm GEMM's memory at their first step */
  adamInGemmMemory = true;
  private adamResident = new WeakMap<CpuBuf, { slot: AdamSlot; m: CpuBuf; v: CpuBuf }>();

  // Output arrays of POOL_MIN elements or more are recycled: a fresh large typed array costs a
  // calloc and a page fault per 4 KiB on first touch (30-350 us for the VAE's activations), which
  // added up to several milliseconds per training step. Released arrays wait in per-(dtype, length)
  // free lists, at most poolLimitBytes in all; an array is only reused once its last tensor is
  // disposed (storage is reference counted), and never for arrays the caller handed in (fromArray).
  private pool = new Map<string, TypedArray[]>();
  private pooledBytes = 0;
  /** Cap on the bytes kept for reuse (GAPGRAD_CPU_POOL_MB, default 256; 0 turns pooling off). */
  poolLimitBytes = (setting('cpuPoolMB') ?? 256) * 2 ** 20;

  private take(dtype: DType, n: number): TypedArray {
    if (n >= POOL_MIN) {
      const list = this.pool.get(`${dtype}:${n}`);
      const a = list?.pop();
      if (a) { this.pooledBytes -= n * bytesPerElement(dtype); return a; }
    }
    return arrayFor(dtype, n);
  }

  private track(data: TypedArray, pooled = data.length >= POOL_MIN): CpuBuf {
    this.live++;
    this.liveBytes += data.length * bytesPerElement(dtypeOf(data));
    return new CpuBuf(data, pooled);
  }

  /** a buffer over an array of the GEMM's memory: never pooled, its block handed back at release */
  private trackHome(data: Float32Array, home: Gemm): CpuBuf {
    const buf = this.track(data, false);
    buf.home = home;
    return buf;
  }

  alloc(size: number, dtype: DType): Buf {
    // large float32 arrays (a batch of inputs from tensor(), a concatenation) where products read them in place
    if (dtype === 'float32' && size >= this.residentMin) {
      const g = this.gemm;
      if (isWasmGemm(g)) {
        const R = g.allocArray(1, size);
        if (R) return this.trackHome(R, g);
      }
    }
    return this.track(this.take(dtype, size));
  }
  fromArray(data: TypedArray): Buf { return this.track(data, false); }
  async read(buf: Buf): Promise<TypedArray> { return (buf as CpuBuf).data; }
  readSync(buf: Buf): TypedArray { return (buf as CpuBuf).data; }
  writeSync(buf: Buf, src: ArrayLike<number>, offset = 0): void {
    const d = (buf as CpuBuf).data;
    if (offset < 0 || offset + src.length > d.length) throw new Error(`writeSync: ${src.length} values at offset ${offset} do not fit a buffer of ${d.length}`);
    d.set(src as never, offset);
  }

  /** The float32 GEMM over host arrays (Backend.hostGemm): the wasm GEMM where there is one (products of at least
   *  4096 multiply-adds), else the JS kernel; B packed once into the wasm GEMM's panels (pack / matmulPacked). */
  get hostGemm(): HostGemm {
    const g = this.gemm;
    // one object per kernel (the ListOps kernels ask for it on every product)
    if (!this.hostGemmCache || this.hostGemmCache.of !== g) this.hostGemmCache = { of: g, api: hostGemmOver(g, isWasmGemm(g) ? g : null) };
    return this.hostGemmCache.api;
  }
  private hostGemmCache: { of: FastGemm | null; api: HostGemm } | null = null;

  /** The GEMM's worker thread as the other kernels use it (estimators, Adam, elementwise), or null (one thread, or
   *  a replacement kernel without one). */
  private splitter(g: FastGemm | null = this.gemm): Splitter | null {
    return isWasmGemm(g) ? g : null;
  }

  /** Whether fusedEstimator runs the WebAssembly kernels (tests and benchmarks turn them off to compare paths). */
  wasmEstimators = true;
  private estimatorHost: EstimatorHost = {
    data: (b) => (b as CpuBuf).data,
    zeros: (n) => { const buf = this.fill(n, 0, 'float32') as CpuBuf; return { buf, data: buf.data as Float32Array }; },
    empty: (n) => { const buf = this.alloc(n, 'float32') as CpuBuf; return { buf, data: buf.data as Float32Array }; },
    splitter: () => this.splitter(),
  };
  fusedEstimator(args: FusedEstimatorArgs): FusedEstimatorSample | null {
    return this.wasmEstimators ? fusedEstimatorCpu(this.estimatorHost, args) : null;
  }
  release(buf: Buf): void {
    const b = buf as CpuBuf;
    const bytes = b.data.length * bytesPerElement(b.dtype);
    this.live--;
    this.liveBytes -= bytes;
    if (b.home) {
      b.home.freeArray(b.data as Float32Array);
      b.home = null;
      return;
    }
    if (b.pooled && this.pooledBytes + bytes <= this.poolLimitBytes) {
      const key = `${b.dtype}:${b.data.length}`;
      let list = this.pool.get(key);
      if (!list) this.pool.set(key, (list = []));
      list.push(b.data);
      this.pooledBytes += bytes;
    }
  }
  memory(): MemoryStats {
    // allocated = live + arrays kept for reuse
    return { liveBuffers: this.live, liveBytes: this.liveBytes, allocatedBytes: this.liveBytes + this.pooledBytes };
  }
  /** Drop the arrays kept for reuse (they return to the JS heap). */
  emptyPool(): void { this.pool.clear(); this.pooledBytes = 0; }

  fill(size: number, value: number, dtype: DType): Buf {
    const a = this.take(dtype, size);
    a.fill(value);
    return this.track(a);
  }

  unary(op: UnaryOp, x: View, shape: number[], outDtype: DType): Buf {
    const n = numel(shape);
    const out = this.take(outDtype, n);
    const X = (x.buf as CpuBuf).data;
    if (op === 'exp' && n >= 256 && out instanceof Float32Array && X instanceof Float32Array && isContiguous(x, shape)) {
      // float32 exp in wasm (<= 1.5 ulp); chunks with inputs above 88.7 or NaN are redone with Math.exp
      const redo = expF32(n === X.length ? X : X.subarray(0, n), out);
      if (redo) {
        for (const [a, b] of redo) for (let i = a; i < b; i++) out[i] = Math.exp(X[i]);
        return this.track(out);
      }
    }
    if (isContiguous(x, shape)) {
      let k = contigUnary.get(op);
      if (!k) {
        k = compile('out, X, n', `for (let i = 0; i < n; i++) { const x = X[i]; out[i] = ${unaryExpr(op)}; }`);
        contigUnary.set(op, k!);
      }
      k!(out, X, n);
    } else {
      const c = collapse(shape, [x.strides]);
      getUnary(op)(out, X, x.offset, c.strides[0], c.shape);
    }
    return this.track(out);
  }

  /**
   * float32 add / sub / mul / div / reluGrad of a contiguous array and a same-length array or a scalar, into a
   * new array in the GEMM's memory (null where that does not apply): read in place where the operands live there
   * too, and split across the worker for large ones. Same bits as the other paths.
   */
  private binaryInMemory(op: BinaryOp, A: TypedArray, B: TypedArray | number, n: number): CpuBuf | null {
    if (n < this.residentMin || !(A instanceof Float32Array) || !(typeof B === 'number' || B instanceof Float32Array) || !ewWasmOp(op)) return null;
    const g = this.gemm;
    if (!isWasmGemm(g)) return null;
    const ew = ewInMemory(g.arena.memory);
    const R = ew ? g.allocArray(1, n) : null;
    if (!R) return null;
    const aAt = g.arena.addressOf(A), bAt = typeof B === 'number' ? 0 : g.arena.addressOf(B);
    if (aAt >= 0 && bAt >= 0) {
      ew!.run(op, aAt, typeof B === 'number' ? { scalar: B } : bAt, g.arena.addressOf(R), n, this.splitter(g));
    } else {
      ewF32(op, A, B, R, n);
    }
    return this.trackHome(R, g);
  }

  binary(op: BinaryOp, a: View, b: View, shape: number[], outDtype: DType): Buf {
    const n = numel(shape);
    const A = (a.buf as CpuBuf).data, B = (b.buf as CpuBuf).data;
    if (outDtype === 'float32' && isContiguous(a, shape) && (isContiguous(b, shape) || isScalarView(b))) {
      const r = this.binaryInMemory(op, A, isScalarView(b) && !isContiguous(b, shape) ? B[b.offset] : B, n);
      if (r) return r;
    }
    const out = this.take(outDtype, n);
    if (isContiguous(a, shape) && isContiguous(b, shape)) {
      if ((op === 'bceLogits' || op === 'bceLogitsGrad') && n >= 256 && out instanceof Float32Array &&
          A instanceof Float32Array && B instanceof Float32Array && bceWasmAvailable()) {
        // the MNIST-VAE's loss: float32 vector exp/log (within 1.5 ulp; backends/cpu/wasm/bce.ts)
        const x = A.subarray(0, n), y = B.subarray(0, n);
        if (op === 'bceLogits') bceLogitsF32(x, y, out);
        else bceLogitsGradF32(x, y, null, out);
        return this.track(out);
      }
      // float32 add / sub / mul / div / reluGrad: the wasm SIMD kernel (bit-identical results)
      if (n >= 1024 && out instanceof Float32Array && A instanceof Float32Array && B instanceof Float32Array &&
          ewWasmOp(op) && ewF32(op, A, B, out, n)) return this.track(out);
      let k = contigBinary.get(op);
      if (!k) {
        k = compile('out, A, B, n', `for (let i = 0; i < n; i++) { const a = A[i], b = B[i]; out[i] = ${toJs(BINARY[op])}; }`);
        contigBinary.set(op, k!);
      }
      k!(out, A, B, n);
    } else if (isContiguous(a, shape) && isScalarView(b)) {
      if (n >= 1024 && out instanceof Float32Array && A instanceof Float32Array && B instanceof Float32Array &&
          ewWasmOp(op) && ewF32(op, A, B[b.offset], out, n)) return this.track(out);
      const kk = contigBinary.get(op + ':s') ?? compile<(out: TypedArray, A: TypedArray, b: number, n: number) => void>(
        'out, A, b, n', `for (let i = 0; i < n; i++) { const a = A[i]; out[i] = ${toJs(BINARY[op])}; }`);
      contigBinary.set(op + ':s', kk as never);
      (kk as unknown as (out: TypedArray, A: TypedArray, b: number, n: number) => void)(out, A, B[b.offset], n);
    } else {
      const c = collapse(shape, [a.strides, b.strides]);
      getBinary(op)(out, A, a.offset, c.strides[0], B, b.offset, c.strides[1], c.shape);
    }
    return this.track(out);
  }

  where(cond: View, a: View, b: View, shape: number[], outDtype: DType): Buf {
    const out = this.take(outDtype, numel(shape));
    if (!whereKernel) whereKernel = compile<Kernel3>('out, C, co, cs, A, ao, as, B, bo, bs, shape', stridedLoop(['c', 'a', 'b'], 'c !== 0 ? a : b'));
    const c = collapse(shape, [cond.strides, a.strides, b.strides]);
    whereKernel(out, (cond.buf as CpuBuf).data, cond.offset, c.strides[0], (a.buf as CpuBuf).data, a.offset, c.strides[1],
      (b.buf as CpuBuf).data, b.offset, c.strides[2], c.shape);
    return this.track(out);
  }

  copy(x: View, shape: number[], outDtype: DType): Buf {
    const n = numel(shape);
    const X = (x.buf as CpuBuf).data;
    const out = this.take(outDtype, n);
    if (isContiguous(x, shape) && outDtype === x.buf.dtype) {
      out.set(X.length === n ? X : X.subarray(0, n) as never);
      return this.track(out);
    }
    if (isScalarView(x)) {
      // a broadcast scalar (a sum's gradient expanded): one native fill (stores convert as element stores do)
      out.fill(X[x.offset]);
      return this.track(out);
    }
    if (isContiguous(x, shape)) {
      for (let i = 0; i < n; i++) out[i] = X[i]; // typed-array stores convert (int32 truncates)
    } else {
      const c = collapse(shape, [x.strides]);
      copyKernel(out, X, x.offset, c.strides[0], c.shape);
    }
    return this.track(out);
  }

  copyInto(dst: View, src: View, shape: number[]): void {
    const D = (dst.buf as CpuBuf).data, S = (src.buf as CpuBuf).data;
    const c = collapse(shape, [dst.strides, src.strides]);
    scatterCopy(D, dst.offset, c.strides[0], S, src.offset, c.strides[1], c.shape);
  }

  reduceLast(op: 'sum' | 'max', x: Buf, rows: number, cols: number): Buf {
    const X = (x as CpuBuf).data;
    const out = this.take(x.dtype, rows);
    if (op === 'sum') {
      for (let r = 0, o = 0; r < rows; r++, o += cols) {
        let s = 0;
        for (let j = 0; j < cols; j++) s += X[o + j];
        out[r] = s;
      }
    } else {
      for (let r = 0, o = 0; r < rows; r++, o += cols) {
        let m = -Infinity;
        for (let j = 0; j < cols; j++) { const v = X[o + j]; if (v > m || v !== v) m = v; if (m !== m) break; }
        out[r] = m;
      }
    }
    return this.track(out);
  }

  softmaxLast(x: Buf, rows: number, cols: number, log: boolean): Buf {
    const X = (x as CpuBuf).data;
    const out = this.take(x.dtype, rows * cols);
    // float32: the wasm kernel (float32 exp and log), except rows whose maximum is not finite
    const special = X instanceof Float32Array && rows * cols >= 256 ? softmaxRowsF32(X, out as Float32Array, rows, cols, log) : null;
    if (special) for (const r of special) softmaxRowJs(X, out, r * cols, cols, log);
    else for (let r = 0, o = 0; r < rows; r++, o += cols) softmaxRowJs(X, out, o, cols, log);
    return this.track(out);
  }

  softmaxLastVjp(y: Buf, g: Buf, rows: number, cols: number, log: boolean): Buf {
    const Y = (y as CpuBuf).data, G = (g as CpuBuf).data;
    const out = this.take(y.dtype, rows * cols);
    if (log && Y instanceof Float32Array && G instanceof Float32Array && rows * cols >= 256 &&
        logSoftmaxVjpRowsF32(Y, G, out as Float32Array, rows, cols)) return this.track(out);
    for (let r = 0, o = 0; r < rows; r++, o += cols) {
      let t = 0;
      if (log) {
        for (let j = 0; j < cols; j++) t += G[o + j];
        for (let j = 0; j < cols; j++) out[o + j] = G[o + j] - Math.exp(Y[o + j]) * t;
      } else {
        for (let j = 0; j < cols; j++) t += Y[o + j] * G[o + j];
        for (let j = 0; j < cols; j++) out[o + j] = Y[o + j] * (G[o + j] - t);
      }
    }
    return this.track(out);
  }

  argmaxLast(x: Buf, rows: number, cols: number): Buf {
    const X = (x as CpuBuf).data;
    const out = this.take('int32', rows); // every row written below
    for (let r = 0, o = 0; r < rows; r++, o += cols) {
      let best = 0, m = X[o];
      for (let j = 1; j < cols; j++) if (X[o + j] > m) { m = X[o + j]; best = j; }
      out[r] = best;
    }
    return this.track(out);
  }

  matmul(p: MatmulArgs): Buf {
    return this.product(p, null);
  }

  /** matmul, with the wasm GEMM's epilogue (bias, relu) where it runs the product; whether it did is in `fused` */
  private product(p: MatmulArgs, epi: (Epilogue & { fused?: boolean }) | null): CpuBuf {
    const { batch, m, n, k } = p;
    const A = (p.a as CpuBuf).data, B = (p.b as CpuBuf).data;
    const dtype = p.a.dtype;
    const g = dtype === 'float32' && m * n * k >= 4096 ? this.gemm : null;
    // a large output goes into the GEMM's memory: written there in place, and read in place by the products
    // that take it as an operand (the next layer forward, the weight gradient backward)
    const home = isWasmGemm(g) && batch * m * n >= this.residentMin ? g : null;
    const R = home ? home.allocArray(batch * m, n) : null;
    const C = R ?? this.take(dtype, batch * m * n);
    // only the wasm GEMM (which has an arena) takes an epilogue; another FastGemm would ignore it
    const fuse = epi !== null && isWasmGemm(g);
    for (let bt = 0; bt < batch; bt++) {
      const ao = bt * p.aBatchStride, bo = bt * p.bBatchStride, co = bt * m * n;
      if (fuse) g.matmul(A as Float32Array, ao, B as Float32Array, bo, C as Float32Array, co, m, n, k, p.transA, p.transB, epi);
      else if (g) g.matmul(A as Float32Array, ao, B as Float32Array, bo, C as Float32Array, co, m, n, k, p.transA, p.transB);
      else matmulJs(A, ao, B, bo, C, co, m, n, k, p.transA, p.transB);
    }
    if (epi) epi.fused = fuse;
    if (!R) return this.track(C);
    return this.trackHome(R, home!);
  }

  /** act(A @ B + bias) in one pass over the product: the same float values as matmul, add and relu. */
  matmulBiasAct(p: MatmulArgs, bias: Buf | null, act: 'relu' | 'none'): Buf {
    const Bv = bias ? (bias as CpuBuf).data : null;
    const relu = act === 'relu';
    // the wasm GEMM adds the bias and applies relu as it stores each tile
    const epi = { bias: Bv instanceof Float32Array ? Bv : null, relu, fused: false };
    const out = this.product(p, Bv === null || Bv instanceof Float32Array ? epi : null);
    if (epi.fused) return out;
    const C = out.data, n = p.n, len = C.length;
    if (Bv) {
      for (let o = 0; o < len; o += n) {
        if (relu) for (let j = 0; j < n; j++) C[o + j] = Math.max(C[o + j] + Bv[j], 0);
        else for (let j = 0; j < n; j++) C[o + j] += Bv[j];
      }
    } else if (relu) {
      for (let i = 0; i < len; i++) C[i] = Math.max(C[i], 0);
    }
    return out;
  }

  gather(x: Buf, idx: Buf, outer: number, n: number, m: number, inner: number): Buf {
    const X = (x as CpuBuf).data, I = (idx as CpuBuf).data;
    const out = this.take(x.dtype, outer * m * inner);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < m; j++) {
        const base = (o * m + j) * inner;
        for (let i = 0; i < inner; i++) {
          const t = I[base + i];
          out[base + i] = X[(o * n + t) * inner + i];
        }
      }
    }
    return this.track(out);
  }

  scatterAdd(g: Buf, idx: Buf, outer: number, n: number, m: number, inner: number): Buf {
    const G = (g as CpuBuf).data, I = (idx as CpuBuf).data;
    const out = this.take(g.dtype, outer * n * inner);
    out.fill(0);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < m; j++) {
        const base = (o * m + j) * inner;
        for (let i = 0; i < inner; i++) out[(o * n + I[base + i]) * inner + i] += G[base + i];
      }
    }
    return this.track(out);
  }

  randomBits(key: [number, number], counter: number, size: number): Buf {
    const out = this.take('int32', size) as Int32Array; // every word written below
    philoxFill(key[0] >>> 0, key[1] >>> 0, counter, out);
    return this.track(out);
  }

  adamUpdate(p: Buf, g: Buf, m: Buf, v: Buf, hp: AdamHyper): void {
    const P = (p as CpuBuf).data, G = (g as CpuBuf).data, M = (m as CpuBuf).data, V = (v as CpuBuf).data;
    if (this.adamKernel !== null && P instanceof Float32Array && G instanceof Float32Array &&
        M instanceof Float32Array && V instanceof Float32Array) {
      if (this.adamKernel === undefined) this.adamKernel = createAdamWasm();
      const kern = this.adamKernel;
      if (kern) {
        // first step of a parameter (or new moment buffers): move P, M, V into a wasm memory of their
        // own and make the buffers views of it, so later steps copy only G in (saves 6 of 7 copies)
        const pb = p as CpuBuf, mb = m as CpuBuf, vb = v as CpuBuf;
        let r = this.adamResident.get(pb);
        if (!r || r.m !== mb || r.v !== vb || pb.data !== r.slot.P || mb.data !== r.slot.M || vb.data !== r.slot.V) {
          if (M.length !== P.length || V.length !== P.length) { kern.update(P, G, M, V, hp); return; }
          // in the GEMM's memory where it has one: the products that read the parameter then skip copying it
          const gm = this.gemm;
          const slot = kern.slot(P.length, isWasmGemm(gm) && this.adamInGemmMemory ? gm.arena : null);
          slot.P.set(P); slot.M.set(M); slot.V.set(V);
          for (const [b, d] of [[pb, slot.P], [mb, slot.M], [vb, slot.V]] as const) {
            if (b.home) { b.home.freeArray(b.data as Float32Array); b.home = null; }
            b.data = d; b.pooled = false;
          }
          r = { slot, m: mb, v: vb };
          this.adamResident.set(pb, r);
        }
        kern.updateSlot(r.slot, G, hp, this.splitter(this.gemmImpl));
        return;
      }
    }
    adamJs(P, G, M, V, hp);
  }
}

/** The JS Adam loop (float64 arithmetic, rounded on store): any dtype, and the fallback. */
export function adamJs(P: TypedArray, G: TypedArray, M: TypedArray, V: TypedArray, hp: AdamHyper): void {
  const { lr, beta1, beta2, eps, weightDecay, step } = hp;
  const bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
  const stepSize = lr / bc1, sq2 = Math.sqrt(bc2);
  for (let i = 0; i < P.length; i++) {
    let gi = G[i];
    if (weightDecay !== 0) gi += weightDecay * P[i];
    const mi = beta1 * M[i] + (1 - beta1) * gi;
    const vi = beta2 * V[i] + (1 - beta2) * gi * gi;
    M[i] = mi; V[i] = vi;
    P[i] -= stepSize * mi / (Math.sqrt(vi) / sq2 + eps);
  }
}

const copyKernel = compile<Kernel1>('out, X, xo, xs, shape', stridedLoop(['x'], 'x'));

function scatterCopy(D: TypedArray, dOff: number, ds: number[], S: TypedArray, sOff: number, ss: number[], shape: number[]): void {
  const r = shape.length;
  if (r === 0) { D[dOff] = S[sOff]; return; }
  const total = numel(shape);
  if (total === 0) return;
  const inner = shape[r - 1], di = ds[r - 1], si = ss[r - 1];
  const idx = new Int32Array(r);
  let dp = dOff, sp = sOff;
  for (let t = 0; t < total / inner; t++) {
    for (let j = 0, dq = dp, sq = sp; j < inner; j++, dq += di, sq += si) D[dq] = S[sq];
    for (let d = r - 2; d >= 0; d--) {
      idx[d]++; dp += ds[d]; sp += ss[d];
      if (idx[d] < shape[d]) break;
      idx[d] = 0; dp -= ds[d] * shape[d]; sp -= ss[d] * shape[d];
    }
  }
}

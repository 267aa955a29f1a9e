// The WebGPU backend (float32 and int32 storage buffers): the backend contract over a GpuRecorder (device,
// pools, dispatch batching, kernel cache; recorder.ts), with each primitive delegated to its program
// (programs/*.ts, each holding its WGSL beside its dispatch code) and every kernel choice derived from
// whether the adapter is a software rasteriser (choices.ts).
import type { Backend, Buf, View, MatmulArgs, MemoryStats, AdamHyper, LinearAct } from '../../engine/backend.ts';
import type { DType } from '../../engine/dtype.ts';
import type { UnaryOp, BinaryOp } from '../../engine/elementwise.ts';
import { GpuRecorder } from './recorder.ts';
import { chooseKernels, type KernelChoices } from './choices.ts';
import * as elementwise from './programs/elementwise.ts';
import * as reduce from './programs/reduce.ts';
import * as gathers from './programs/gather.ts';
import * as random from './programs/random.ts';
import * as adam from './programs/adam.ts';
import * as mm from './programs/matmul.ts';

export type { MatmulPlan, UboTile, KernelChoices } from './choices.ts';
export type { UboPlan } from './programs/matmul.ts';

/**
 * The WebGPU device as a gapgrad backend (device name 'webgpu'); create it with `initWebGPU()`.
 *
 * Work is recorded into one batch of compute dispatches and submitted by `read`, `flush`, `sync`, or when
 * the batch is full; buffers and textures are pooled; pipelines are compiled once per kernel shape.
 *
 * **One declared property drives the kernel choices: {@link WebGpuBackend.isSoftware}**, true when the
 * adapter is a software rasteriser (Mesa llvmpipe or lavapipe, SwiftShader, or an adapter reporting
 * itself as a fallback adapter). From it and the explicit settings (engine/config.ts) the constructor
 * derives every choice the programs read (see choices.ts), and nothing else about the device is probed:
 * - `matmulPlan`: `webgpuMatmul` if set, else 'ubo' (uniform-block A, texture B) on software adapters
 *   and 'tiled' (shared-memory tiles) elsewhere;
 * - `texInputs`: software adapters read float32 operands of elementwise, reduction and row-packing
 *   kernels through texture copies, unless `webgpuTexInputs` is false;
 * - `fastDiv`: software adapters split elementwise indices by float32 division, unless `webgpuFastDiv`
 *   is false;
 * - `vecStores`, `texAdam`: software adapters store 4 elements per invocation and run Adam on textures.
 * The choice properties are writable for tests and benchmarks; the WebGPU tests check every choice
 * against the CPU backend.
 *
 * @example
 * const gpu = await initWebGPU();
 * console.log(gpu.adapterName, gpu.isSoftware, gpu.matmulPlan.kind);
 */
export class WebGpuBackend implements Backend, KernelChoices {
  readonly name = 'webgpu';
  readonly supportsFloat64 = false;
  /** The adapter's vendor / architecture / device / description, as reported. */
  readonly adapterName: string;
  /** Whether the adapter is a software rasteriser; every kernel choice (KernelChoices) derives from it and the settings. */
  readonly isSoftware: boolean;
  /** How the device was obtained (the adapter attempt that succeeded), for diagnostics. */
  via?: string;
  /** The adapter's own description (GPUAdapterInfo), where the device was created from one. */
  readonly adapterInfo: { vendor: string; architecture: string; device: string; description: string } | null;
  /** The largest buffer a kernel can bind, in bytes (the device's maxStorageBufferBindingSize): a tensor of more
   *  than a quarter of this many elements is refused with a RangeError when it is created. */
  get maxBufferBytes(): number {
    return this.gpu.maxBufferBytes;
  }
  private readonly gpu: GpuRecorder;

  constructor(device: GPUDevice, info: { name: string; software: boolean; maxTexture?: number; adapter?: GPUAdapterInfo }) {
    this.adapterName = info.name;
    this.isSoftware = info.software;
    const a = info.adapter;
    this.adapterInfo = a ? { vendor: a.vendor ?? '', architecture: a.architecture ?? '', device: a.device ?? '', description: a.description ?? '' } : null;
    Object.assign(this, chooseKernels(info.software));
    this.gpu = new GpuRecorder(device, info.maxTexture ?? 8192);
  }

  /** Validation / out-of-memory errors the device reported and no read() has thrown yet. */
  get errors(): string[] {
    return this.gpu.errors;
  }

  /** Dispatches recorded, batches submitted and reads since creation (for benchmarks). */
  get stats(): { dispatches: number; submits: number; reads: number } {
    return this.gpu.stats;
  }

  /** Number of distinct compiled pipelines. */
  get pipelineCount(): number {
    return this.gpu.pipelineCount;
  }

  // ------------------------------------------------------------ memory
  alloc(size: number, dtype: DType): Buf {
    return this.gpu.alloc(size, dtype);
  }

  fromArray(data: Float32Array | Float64Array | Int32Array): Buf {
    return this.gpu.fromArray(data);
  }

  read(buf: Buf): Promise<Float32Array | Int32Array> {
    return this.gpu.read(buf);
  }

  release(buf: Buf): void {
    this.gpu.release(buf);
  }

  memory(): MemoryStats {
    return this.gpu.memory();
  }

  /** Submit everything recorded so far (does not wait). */
  flush(): void {
    this.gpu.flush();
  }

  /** Submit and wait until the device has finished all submitted work. */
  sync(): Promise<void> {
    return this.gpu.sync();
  }

  // ------------------------------------------------------------ primitives
  fill(size: number, value: number, dtype: DType): Buf {
    return elementwise.fill(this.gpu, size, value, dtype);
  }

  unary(op: UnaryOp, x: View, shape: number[], outDtype: DType): Buf {
    return elementwise.unary(this.gpu, this, op, x, shape, outDtype);
  }

  binary(op: BinaryOp, a: View, b: View, shape: number[], outDtype: DType): Buf {
    return elementwise.binary(this.gpu, this, op, a, b, shape, outDtype);
  }

  where(cond: View, a: View, b: View, shape: number[], outDtype: DType): Buf {
    return elementwise.where(this.gpu, this, cond, a, b, shape, outDtype);
  }

  copy(x: View, shape: number[], outDtype: DType): Buf {
    return elementwise.copy(this.gpu, this, x, shape, outDtype);
  }

  copyInto(dst: View, src: View, shape: number[]): void {
    elementwise.copyInto(this.gpu, this, dst, src, shape);
  }

  reduceLast(op: 'sum' | 'max', x: Buf, rows: number, cols: number): Buf {
    return reduce.reduceLast(this.gpu, this, op, x, rows, cols);
  }

  argmaxLast(x: Buf, rows: number, cols: number): Buf {
    return reduce.argmaxLast(this.gpu, x, rows, cols);
  }

  matmul(a: MatmulArgs): Buf {
    return mm.matmul(this.gpu, this, a, null, 'none');
  }

  /**
   * act(A @ B + bias) in one pass where the matmul kernel supports it (bias: length n, added to every
   * row of every batch; act 'relu' or 'none'); otherwise the matmul followed by elementwise dispatches.
   */
  matmulBiasAct(a: MatmulArgs, bias: Buf | null, act: LinearAct): Buf {
    return mm.matmul(this.gpu, this, a, bias, act);
  }

  /**
   * The 'ubo' matmul's tiling of one shape under the current uboTile (null: the plain kernels run).
   * @internal
   */
  uboPlan(m: number, n: number, k: number, batch: number): mm.UboPlan | null {
    return mm.uboPlan(this.uboTile, this.gpu.maxUniformFloats, m, n, k, batch);
  }

  gather(x: Buf, idx: Buf, outer: number, n: number, m: number, inner: number): Buf {
    return gathers.gather(this.gpu, x, idx, outer, n, m, inner);
  }

  scatterAdd(g: Buf, idx: Buf, outer: number, n: number, m: number, inner: number): Buf {
    return gathers.scatterAdd(this.gpu, g, idx, outer, n, m, inner);
  }

  randomBits(key: [number, number], counter: number, size: number): Buf {
    return random.randomBits(this.gpu, key, counter, size);
  }

  adamUpdate(p: Buf, g: Buf, m: Buf, v: Buf, hp: AdamHyper): void {
    adam.adamUpdate(this.gpu, this, p, g, m, v, hp);
  }
}

// the kernel choices (matmulPlan, uboTile, texInputs, fastDiv, vecStores, texAdam) are properties declared
// once, in KernelChoices, and set from chooseKernels by the constructor
export interface WebGpuBackend extends Omit<KernelChoices, 'isSoftware'> {}

// The core of the WebGPU backend: device and queue, the buffer and texture pools, staging buffers for
// reads, the batch of recorded dispatches, and the kernel (pipeline) cache. The programs (programs/*.ts)
// record their dispatches through it; the backend (backend.ts) owns one.
//
// Every dispatch goes into a single pending command encoder (one open compute pass); work is submitted
// only by read(), flush(), or when the batch reaches MAX_BATCH dispatches. No hidden sync.
//
// Scalar parameters go into a CPU-side ring (256 bytes per dispatch) that is written to one uniform
// buffer with a single writeBuffer right before the batch's submit, and bound with a dynamic offset,
// so bind groups depend only on the storage buffers and are cached.
//
// Buffers come from a pool keyed by rounded byte size. queue.writeBuffer runs before commands that
// are recorded but not yet submitted, so fromArray never writes into a pooled buffer that the pending
// batch uses (it takes another one, submits first, or maps a fresh buffer).
import { collapse as collapseViews } from '../../engine/views.ts';
import { setting } from '../../engine/config.ts';
import type { Buf, MemoryStats } from '../../engine/backend.ts';
import type { DType } from '../../engine/dtype.ts';
import { PARAM_WORDS, WG, LIN_W, type WType } from './wgsl.ts';

const MAX_BATCH = 512; // dispatches per submit
const SLOT = PARAM_WORDS * 4; // bytes of parameters per dispatch

// GPUBufferUsage / GPUMapMode flag values (WebGPU spec), so this module needs no globals
const U_MAP_READ = 0x0001, U_COPY_SRC = 0x0004, U_COPY_DST = 0x0008, U_UNIFORM = 0x0040, U_STORAGE = 0x0080;
const MAP_READ = 0x0001;

/** A GPU buffer owned by the pool. */
export interface Slab {
  readonly id: number;
  readonly buffer: GPUBuffer;
  readonly bytes: number;
  lastUse: number; // batch epoch of the last recorded command that touched it
}

/** A pooled rgba32float texture (operands of software-adapter kernels). */
export interface Tex {
  readonly id: number;
  readonly texture: GPUTexture;
  readonly view: GPUTextureView;
  readonly w: number;
  readonly h: number;
  readonly copyDst?: boolean;
}
/** A slab bound as a uniform block of `size` bytes at a dynamic offset (matmul operand A). */
export interface Ubo {
  readonly ubo: Slab;
  readonly size: number;
}
/** What a dispatch binds after the parameter block, in binding order. */
export type Res = Slab | Tex | Ubo;

export class GpuBuf implements Buf {
  constructor(readonly size: number, readonly dtype: DType, public slab: Slab | null) {}
}

/** A compiled pipeline with its bind-group layout. */
export interface Kernel {
  pipeline: GPUComputePipeline;
  sig: string; // per binding after the parameters: 'r' read storage, 'w' read_write storage, 'u' uniform, 't' texture, 's' storage texture
  layout: GPUBindGroupLayout;
}

/** The WGSL element type of a dtype; float64 has none. */
export function wtype(d: DType): WType {
  if (d === 'float32') return 'f32';
  if (d === 'int32') return 'i32';
  throw new Error(`webgpu: dtype ${d} is not supported on the GPU (float32 and int32 only); use device 'cpu' for float64`);
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/** Row-major strides of a shape. */
export function contiguous(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) { s[d] = acc; acc *= shape[d]; }
  return s;
}

/** collapse (engine/views.ts), with a rank-0 result as one element: shaders index at least one axis. */
export function collapse(shape: readonly number[], views: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const c = collapseViews(shape, views);
  return c.shape.length === 0 ? { shape: [1], strides: views.map(() => [0]) } : c;
}

const f32bits = new Float32Array(1);
const u32bits = new Uint32Array(f32bits.buffer);
/** The bit pattern of v rounded to float32 (float parameters travel as u32 words). */
export function fbits(v: number): number {
  f32bits[0] = v;
  return u32bits[0];
}

/** Bytes a request of b bytes is rounded to (pool size classes: <= 25% waste above 4 KiB). */
export function sizeClass(b: number): number {
  if (b <= 256) return 256;
  if (b <= 4096) return 2 ** Math.ceil(Math.log2(b));
  const e = 2 ** Math.floor(Math.log2(b));
  const q = e / 4;
  return Math.ceil(b / q) * q;
}

/** Device, pools, the dispatch batch and the kernel cache of one WebGPU backend. */
export class GpuRecorder {
  /** validation / out-of-memory errors Dawn reported; read() throws the first one */
  readonly errors: string[] = [];
  /** dispatches recorded and batches submitted since creation (for benchmarks) */
  readonly stats = { dispatches: 0, submits: 0, reads: 0 };
  /** largest 2-D texture side of the device */
  readonly maxTexture: number;
  /** floats one uniform binding may hold (at most 16384: 64 KiB) */
  readonly maxUniformFloats: number;

  private readonly queue: GPUQueue;
  private readonly kernels = new Map<string, Kernel>();
  private readonly bySource = new Map<string, Kernel>();
  private readonly layouts = new Map<string, { bgl: GPUBindGroupLayout; pl: GPUPipelineLayout }>();
  private bindGroups = new Map<string, GPUBindGroup>();
  private readonly pool = new Map<number, Slab[]>();
  private readonly staging = new Map<number, GPUBuffer[]>();
  private readonly texPool = new Map<string, Tex[]>();
  private nextSlabId = 1;

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private lastPipeline: GPUComputePipeline | null = null;
  /** batch epoch: incremented by every submit (Slab.lastUse compares against it) */
  private epoch = 1;
  private nDispatch = 0;
  private readonly ring: ArrayBuffer;
  private readonly ringU32: Uint32Array;
  private readonly uniform: GPUBuffer;

  private live = 0;
  private liveBytes = 0;
  private allocated = 0;

  /** The device's maxStorageBufferBindingSize (every buffer is bound whole) and maxBufferSize, read once. */
  readonly maxBufferBytes: number;
  private readonly maxSlabBytes: number;

  constructor(private readonly device: GPUDevice, maxTexture: number) {
    this.queue = device.queue;
    this.maxBufferBytes = Number(device.limits.maxStorageBufferBindingSize);
    this.maxSlabBytes = Number(device.limits.maxBufferSize);
    this.maxTexture = maxTexture;
    this.maxUniformFloats = Math.min(16384, Math.floor(Number(device.limits.maxUniformBufferBindingSize) / 4));
    this.ring = new ArrayBuffer(MAX_BATCH * SLOT);
    this.ringU32 = new Uint32Array(this.ring);
    this.uniform = device.createBuffer({ size: MAX_BATCH * SLOT, usage: U_UNIFORM | U_COPY_DST });
    this.allocated += MAX_BATCH * SLOT;
    device.addEventListener('uncapturederror', (ev: Event) => {
      const msg = (ev as GPUUncapturedErrorEvent).error?.message ?? String(ev);
      if (this.errors.length < 20) this.errors.push(msg);
    });
  }

  // ------------------------------------------------------------ memory
  private newSlab(bytes: number, mapped = false): Slab {
    const buffer = this.device.createBuffer({ size: bytes, usage: U_STORAGE | U_UNIFORM | U_COPY_SRC | U_COPY_DST, mappedAtCreation: mapped });
    this.allocated += bytes;
    return { id: this.nextSlabId++, buffer, bytes, lastUse: 0 };
  }

  /**
   * Every buffer is bound whole to a kernel, so none may exceed the device's maxStorageBufferBindingSize: checked
   * here, before any work, with a clear error (the device would otherwise report validation errors at the next
   * read). A pool size class is capped at maxBufferSize.
   */
  private slabClass(bytes: number, what: string): number {
    const limit = this.maxBufferBytes;
    if (bytes > limit) {
      throw new RangeError(`webgpu.${what}: a buffer of ${bytes / 4} elements (${bytes} bytes) exceeds this device's ` +
        `maxStorageBufferBindingSize of ${limit} bytes; use smaller tensors (e.g. fewer samples per call) or device 'cpu'`);
    }
    return Math.max(bytes, Math.min(sizeClass(bytes), this.maxSlabBytes));
  }

  private takeSlab(bytes: number): Slab {
    const cls = this.slabClass(bytes, 'alloc');
    const list = this.pool.get(cls);
    return list?.pop() ?? this.newSlab(cls);
  }

  private track(size: number, dtype: DType, slab: Slab): GpuBuf {
    this.live++;
    this.liveBytes += size * 4;
    return new GpuBuf(size, dtype, slab);
  }

  alloc(size: number, dtype: DType): Buf {
    wtype(dtype);
    return this.track(size, dtype, this.takeSlab(size * 4));
  }

  fromArray(data: Float32Array | Float64Array | Int32Array): Buf {
    if (data instanceof Float64Array) throw new Error(`webgpu: float64 is not supported on the GPU; cast to float32 or use device 'cpu'`);
    const dtype: DType = data instanceof Float32Array ? 'float32' : 'int32';
    const bytes = data.length * 4;
    const cls = this.slabClass(bytes, 'fromArray');
    const list = this.pool.get(cls);
    let slab: Slab | undefined;
    if (list && list.length) {
      // a pooled buffer the pending batch does not touch can be written by the queue right away
      const i = list.findIndex((s) => s.lastUse < this.epoch);
      if (i >= 0) slab = list.splice(i, 1)[0];
      else { this.submit(); slab = list.pop()!; }
      if (bytes > 0) this.queue.writeBuffer(slab.buffer, 0, data.buffer, data.byteOffset, bytes);
    } else {
      slab = this.newSlab(cls, true);
      if (bytes > 0) {
        const dst = slab.buffer.getMappedRange(0, bytes);
        new Uint8Array(dst).set(new Uint8Array(data.buffer, data.byteOffset, bytes));
      }
      slab.buffer.unmap();
    }
    return this.track(data.length, dtype, slab);
  }

  async read(buf: Buf): Promise<Float32Array | Int32Array> {
    const b = buf as GpuBuf;
    if (!b.slab) throw new Error('webgpu.read: the buffer was released');
    this.stats.reads++;
    const bytes = b.size * 4;
    const out = b.dtype === 'int32' ? new Int32Array(b.size) : new Float32Array(b.size);
    if (bytes === 0) return out;
    const cls = sizeClass(bytes);
    const st = this.staging.get(cls)?.pop() ?? this.newStaging(cls);
    const enc = this.getEncoder();
    this.endPass();
    enc.copyBufferToBuffer(b.slab.buffer, 0, st, 0, bytes);
    b.slab.lastUse = this.epoch;
    this.submit();
    try {
      await st.mapAsync(MAP_READ, 0, bytes);
    } catch (e) {
      this.throwErrors();
      throw e;
    }
    new Uint8Array(out.buffer).set(new Uint8Array(st.getMappedRange(0, bytes)));
    st.unmap();
    this.staging.get(cls)!.push(st);
    this.throwErrors();
    return out;
  }

  private newStaging(bytes: number): GPUBuffer {
    if (!this.staging.has(bytes)) this.staging.set(bytes, []);
    this.allocated += bytes;
    return this.device.createBuffer({ size: bytes, usage: U_MAP_READ | U_COPY_DST });
  }

  private throwErrors(): void {
    if (this.errors.length) {
      const e = this.errors.splice(0);
      throw new Error(`webgpu: the device reported ${e.length} error(s); first: ${e[0]}`);
    }
  }

  release(buf: Buf): void {
    const b = buf as GpuBuf;
    const slab = b.slab;
    if (!slab) return;
    b.slab = null;
    this.live--;
    this.liveBytes -= b.size * 4;
    let list = this.pool.get(slab.bytes);
    if (!list) this.pool.set(slab.bytes, (list = []));
    list.push(slab);
  }

  memory(): MemoryStats {
    return { liveBuffers: this.live, liveBytes: this.liveBytes, allocatedBytes: this.allocated };
  }

  /** The slab behind a live buffer. */
  slab(b: Buf): Slab {
    const s = (b as GpuBuf).slab;
    if (!s) throw new Error('webgpu: a buffer was used after release');
    return s;
  }

  // ------------------------------------------------------------ textures
  /** A pooled rgba32float texture of w x h texels (or more rows); copyDst: filled by copies, else by a storage-texture kernel. */
  takeTex(w: number, h: number, copyDst = false): Tex {
    // round the height up so that nearby shapes share textures
    const hh = h <= 64 ? h : Math.min(this.maxTexture, Math.ceil(h / 32) * 32);
    const key = `${w}x${hh}${copyDst ? 'c' : ''}`;
    const t = this.texPool.get(key)?.pop();
    if (t) return t;
    const texture = this.device.createTexture({ size: [w, hh], format: 'rgba32float', usage: 0x04 /* TEXTURE_BINDING */ | (copyDst ? 0x02 /* COPY_DST */ : 0x08 /* STORAGE_BINDING */) });
    this.allocated += w * hh * 16;
    return { id: this.nextSlabId++, texture, view: texture.createView(), w, h: hh, copyDst };
  }

  releaseTex(t: Tex): void {
    const key = `${t.w}x${t.h}${t.copyDst ? 'c' : ''}`;
    let list = this.texPool.get(key);
    if (!list) this.texPool.set(key, (list = []));
    list.push(t);
  }

  /** A pooled LIN_W-wide rgba32float texture holding the first `texels` * 4 floats of a slab (copy, no shader). */
  linearTexture(src: Slab, texels: number): Tex {
    const h = Math.ceil(texels / LIN_W);
    const t = this.takeTex(LIN_W, h, true);
    const enc = this.getEncoder();
    this.endPass();
    const full = Math.floor(texels / LIN_W), rest = texels % LIN_W;
    if (full > 0) enc.copyBufferToTexture({ buffer: src.buffer, offset: 0, bytesPerRow: LIN_W * 16, rowsPerImage: full }, { texture: t.texture }, [LIN_W, full, 1]);
    if (rest > 0) enc.copyBufferToTexture({ buffer: src.buffer, offset: full * LIN_W * 16, bytesPerRow: LIN_W * 16 }, { texture: t.texture, origin: [0, full, 0] }, [rest, 1, 1]);
    src.lastUse = this.epoch;
    return t;
  }

  /** Whether a linear texture of `elements` floats fits the device's texture size. */
  fitsLinear(elements: number): boolean {
    return Math.ceil(Math.ceil(elements / 4) / LIN_W) <= this.maxTexture;
  }

  // ------------------------------------------------------------ recording
  /** Submit everything recorded so far (does not wait). */
  flush(): void {
    this.submit();
  }

  /** Submit and wait until the device has finished all submitted work. */
  async sync(): Promise<void> {
    this.submit();
    await this.queue.onSubmittedWorkDone();
    this.throwErrors();
  }

  private getEncoder(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
      this.lastPipeline = null;
    }
  }

  private submit(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.nDispatch > 0) this.queue.writeBuffer(this.uniform, 0, this.ring, 0, this.nDispatch * SLOT);
    this.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.nDispatch = 0;
    this.epoch++;
    this.stats.submits++;
  }

  /** Record a copy of n elements (4 bytes each) between slabs, outside any compute pass. */
  copyRun(src: Slab, srcOff: number, dst: Slab, dstOff: number, n: number): void {
    const enc = this.getEncoder();
    this.endPass();
    enc.copyBufferToBuffer(src.buffer, srcOff * 4, dst.buffer, dstOff * 4, n * 4);
    src.lastUse = this.epoch;
    dst.lastUse = this.epoch;
  }

  private layoutFor(sig: string): { bgl: GPUBindGroupLayout; pl: GPUPipelineLayout } {
    let l = this.layouts.get(sig);
    if (!l) {
      const entries: GPUBindGroupLayoutEntry[] = [
        { binding: 0, visibility: 4 /* COMPUTE */, buffer: { type: 'uniform', hasDynamicOffset: true, minBindingSize: SLOT } },
      ];
      for (let i = 0; i < sig.length; i++) {
        const c = sig[i];
        if (c === 'u') entries.push({ binding: i + 1, visibility: 4, buffer: { type: 'uniform', hasDynamicOffset: true } });
        else if (c === 't') entries.push({ binding: i + 1, visibility: 4, texture: { sampleType: 'unfilterable-float', viewDimension: '2d' } });
        else if (c === 's') entries.push({ binding: i + 1, visibility: 4, storageTexture: { access: 'write-only', format: 'rgba32float', viewDimension: '2d' } });
        else entries.push({ binding: i + 1, visibility: 4, buffer: { type: c === 'w' ? 'storage' : 'read-only-storage' } });
      }
      const bgl = this.device.createBindGroupLayout({ entries });
      l = { bgl, pl: this.device.createPipelineLayout({ bindGroupLayouts: [bgl] }) };
      this.layouts.set(sig, l);
    }
    return l;
  }

  /** The pipeline for a kernel key; `make` returns the WGSL source and the binding signature. */
  kernel(key: string, make: () => { src: string; sig: string }): Kernel {
    let k = this.kernels.get(key);
    if (k) return k;
    const { src, sig } = make();
    k = this.bySource.get(src);
    if (!k) {
      const l = this.layoutFor(sig);
      const module = this.device.createShaderModule({ code: src });
      const pipeline = this.device.createComputePipeline({ layout: l.pl, compute: { module, entryPoint: 'main' } });
      k = { pipeline, sig, layout: l.bgl };
      this.bySource.set(src, k);
      if (setting('webgpuDebug')) {
        void module.getCompilationInfo().then((info) => {
          for (const m of info.messages) console.error(`[webgpu ${key}] ${m.type} ${m.lineNum}:${m.linePos} ${m.message}`);
        });
      }
    }
    this.kernels.set(key, k);
    return k;
  }

  /** Number of distinct compiled pipelines. */
  get pipelineCount(): number {
    return this.bySource.size;
  }

  /** Record one dispatch: params (u32 words), storage slabs in binding order, workgroup counts. */
  dispatch(k: Kernel, slabs: Res[], params: ArrayLike<number>, x: number, y = 1, z = 1, uboOffset = -1): void {
    if (x === 0 || y === 0 || z === 0) return;
    if (this.nDispatch >= MAX_BATCH) this.submit();
    const slot = this.nDispatch++;
    const base = slot * PARAM_WORDS;
    const ring = this.ringU32;
    for (let i = 0; i < params.length; i++) ring[base + i] = params[i];
    let key = k.sig;
    for (const s of slabs) key += 'ubo' in s ? `:u${s.ubo.id}/${s.size}` : ':' + s.id;
    let bg = this.bindGroups.get(key);
    if (!bg) {
      if (this.bindGroups.size > 8192) this.bindGroups = new Map();
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.uniform, offset: 0, size: SLOT } }];
      slabs.forEach((s, i) => entries.push({
        binding: i + 1,
        resource: 'view' in s ? s.view : 'ubo' in s ? { buffer: s.ubo.buffer, offset: 0, size: s.size } : { buffer: s.buffer, offset: 0, size: s.bytes },
      }));
      bg = this.device.createBindGroup({ layout: k.layout, entries });
      this.bindGroups.set(key, bg);
    }
    for (const s of slabs) if ('lastUse' in s) s.lastUse = this.epoch; else if ('ubo' in s) s.ubo.lastUse = this.epoch;
    const enc = this.getEncoder();
    const pass = (this.pass ??= enc.beginComputePass());
    if (this.lastPipeline !== k.pipeline) {
      pass.setPipeline(k.pipeline);
      this.lastPipeline = k.pipeline;
    }
    pass.setBindGroup(0, bg, uboOffset >= 0 ? [slot * SLOT, uboOffset] : [slot * SLOT]);
    pass.dispatchWorkgroups(x, y, z);
    this.stats.dispatches++;
  }

  /** Workgroup counts for `threads` invocations in 1-D kernels, and the row stride (params[1]). */
  grid(threads: number): [number, number, number] {
    const groups = Math.ceil(threads / WG);
    if (groups === 0) return [0, 1, WG];
    const gx = Math.min(groups, 65535);
    const gy = Math.ceil(groups / gx);
    return [gx, gy, gx * WG];
  }
}

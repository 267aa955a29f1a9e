// The WebGPU backend (float32 and int32 storage buffers). Every primitive records one or two
// compute dispatches into a single pending command encoder (one open compute pass); work is
// submitted only by read(), flush(), or when the batch reaches MAX_BATCH dispatches. No hidden sync.
//
// Scalar parameters go into a CPU-side ring (256 bytes per dispatch) that is written to one uniform
// buffer with a single writeBuffer right before the batch's submit, and bound with a dynamic offset,
// so bind groups depend only on the storage buffers and are cached.
//
// Buffers come from a pool keyed by rounded byte size. queue.writeBuffer runs before commands that
// are recorded but not yet submitted, so fromArray never writes into a pooled buffer that the pending
// batch uses (it takes another one, submits first, or maps a fresh buffer).
import { collapse as collapseViews } from '../../engine/views.ts';
import type { Backend, Buf, View, MatmulArgs, MemoryStats, AdamHyper } from '../../engine/backend.ts';
import type { DType } from '../../engine/dtype.ts';
import type { UnaryOp, BinaryOp } from '../../engine/elementwise.ts';
import {
  PARAM_WORDS, WG, type WType, elementwiseSource, fillSource, reduceSource, argmaxSource, gatherSource,
  scatterAddSource, philoxSource, adamSource, matmulRegSource, matmulTiledSource, packSource, matmulTexSource, unaryExpr, binaryExpr,
  packRowsSource, packRowsTexSource, matmulUboSource, adamTexSource, LIN_W, type MatmulVariant, type MatmulAct,
} from './wgsl.ts';

const MAX_BATCH = 512; // dispatches per submit
const SLOT = PARAM_WORDS * 4; // bytes of parameters per dispatch
const MAX_RANK = 12;

// GPUBufferUsage / GPUMapMode flag values (WebGPU spec), so this module needs no globals
const U_MAP_READ = 0x0001, U_COPY_SRC = 0x0004, U_COPY_DST = 0x0008, U_UNIFORM = 0x0040, U_STORAGE = 0x0080;
const MAP_READ = 0x0001;

/** A GPU buffer owned by the pool. */
interface Slab {
  readonly id: number;
  readonly buffer: GPUBuffer;
  readonly bytes: number;
  lastUse: number; // batch epoch of the last recorded command that touched it
}

/** A pooled rgba32float texture (matmul operands on software adapters). */
interface Tex {
  readonly id: number;
  readonly texture: GPUTexture;
  readonly view: GPUTextureView;
  readonly w: number;
  readonly h: number;
  readonly copyDst?: boolean;
}
/** A slab bound as a uniform block of `size` bytes at a dynamic offset (matmul operand A). */
interface Ubo {
  readonly ubo: Slab;
  readonly size: number;
}
type Res = Slab | Tex | Ubo;

export class GpuBuf implements Buf {
  constructor(readonly size: number, readonly dtype: DType, public slab: Slab | null) {}
}

interface Kernel {
  pipeline: GPUComputePipeline;
  sig: string; // 'r'/'w' per storage binding
  layout: GPUBindGroupLayout;
}

export interface MatmulPlan {
  kind: 'reg' | 'tiled' | 'tex' | 'ubo';
  tm: number; // reg: outputs per invocation (rows, multiple of 4)
  tn: number; // reg: outputs per invocation (cols, multiple of 4)
  wg?: number; // reg: workgroup side (wg x wg invocations), default 8
}

function wtype(d: DType): WType {
  if (d === 'float32') return 'f32';
  if (d === 'int32') return 'i32';
  throw new Error(`webgpu: dtype ${d} is not supported on the GPU (float32 and int32 only); use device 'cpu' for float64`);
}

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/** Bytes a request of b bytes is rounded to (pool size classes: <= 25% waste above 4 KiB). */
export function sizeClass(b: number): number {
  if (b <= 256) return 256;
  if (b <= 4096) return 2 ** Math.ceil(Math.log2(b));
  const e = 2 ** Math.floor(Math.log2(b));
  const q = e / 4;
  return Math.ceil(b / q) * q;
}

// collapse (engine/views.ts), with a rank-0 result as one element: shaders index at least one axis.
function collapse(shape: readonly number[], views: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const c = collapseViews(shape, views);
  return c.shape.length === 0 ? { shape: [1], strides: views.map(() => [0]) } : c;
}

const f32bits = new Float32Array(1);
const u32bits = new Uint32Array(f32bits.buffer);
function fbits(v: number): number {
  f32bits[0] = v;
  return u32bits[0];
}

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  readonly supportsFloat64 = false;
  readonly adapterName: string;
  readonly isSoftware: boolean;
  /** The adapter's own description (GPUAdapterInfo), where the device was created from one. */
  readonly adapterInfo: { vendor: string; architecture: string; device: string; description: string } | null;
  /** How the device was found (initWebGPU's attempt: 'platform default', 'OpenGL ES (EGL)', ...). */
  via = '';
  matmulPlan: MatmulPlan;
  /**
   * 'ubo' matmul tile: at most TM rows x 4*TQ columns per invocation, WGX invocations per workgroup.
   * tq 0: chosen per shape (2, 3 or 4, least column padding); the row count is chosen per shape too
   * (<= tm, least row padding), see uboPlan.
   */
  uboTile = { tm: 20, tq: 0, wgx: 8 };
  /** software adapters: elementwise kernels read float32 inputs through texture copies */
  texInputs = process.env.GAPGRAD_WEBGPU_TEXIN !== '0';
  /** software adapters: index arithmetic of elementwise kernels through float32 division (see UDIV21) */
  fastDiv = process.env.GAPGRAD_WEBGPU_FASTDIV !== '0';
  /** validation / out-of-memory errors Dawn reported; read() throws the first one */
  readonly errors: string[] = [];

  private readonly device: GPUDevice;
  private readonly queue: GPUQueue;
  private readonly kernels = new Map<string, Kernel>();
  private readonly bySource = new Map<string, Kernel>();
  private readonly layouts = new Map<string, { bgl: GPUBindGroupLayout; pl: GPUPipelineLayout }>();
  private bindGroups = new Map<string, GPUBindGroup>();
  private readonly pool = new Map<number, Slab[]>();
  private readonly staging = new Map<number, GPUBuffer[]>();
  private nextSlabId = 1;

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private lastPipeline: GPUComputePipeline | null = null;
  private epoch = 1;
  private nDispatch = 0;
  private readonly ring: ArrayBuffer;
  private readonly ringU32: Uint32Array;
  private readonly uniform: GPUBuffer;

  private live = 0;
  private liveBytes = 0;
  private allocated = 0;
  /** dispatches recorded and batches submitted since creation (for benchmarks) */
  stats = { dispatches: 0, submits: 0, reads: 0 };

  private readonly maxTexture: number;
  private readonly maxUniformFloats: number;
  private readonly texPool = new Map<string, Tex[]>();

  constructor(device: GPUDevice, info: { name: string; software: boolean; maxTexture?: number; adapter?: GPUAdapterInfo }) {
    this.device = device;
    this.queue = device.queue;
    this.adapterName = info.name;
    this.isSoftware = info.software;
    const a = info.adapter;
    this.adapterInfo = a ? { vendor: a.vendor ?? '', architecture: a.architecture ?? '', device: a.device ?? '', description: a.description ?? '' } : null;
    const forced = process.env.GAPGRAD_WEBGPU_MATMUL;
    this.maxTexture = info.maxTexture ?? 8192;
    // software rasterisers (llvmpipe): storage-buffer loads at per-invocation addresses are scalar
    // loops there while texel fetches are vectorised, and barriers are slow: pack the operands into
    // textures and use register-blocked kernels without workgroup memory. Real GPUs: shared-memory tiles.
    // 'ubo' (default there): A through uniform blocks, B through a texture, see matmulUboSource.
    this.matmulPlan = forced === 'tiled' || (!forced && !info.software)
      ? { kind: 'tiled', tm: 4, tn: 4 }
      : forced === 'reg' ? { kind: 'reg', tm: 8, tn: 16 } : forced === 'tex' ? { kind: 'tex', tm: 16, tn: 8 } : { kind: 'ubo', tm: 8, tn: 8, wg: 8 };
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

  private takeSlab(bytes: number): Slab {
    const cls = sizeClass(bytes);
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
    const cls = sizeClass(bytes);
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

  // ------------------------------------------------------------ recording
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
  private kernel(key: string, make: () => { src: string; sig: string }): Kernel {
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
      if (process.env.GAPGRAD_WEBGPU_DEBUG) {
        void module.getCompilationInfo().then((info) => {
          for (const m of info.messages) console.error(`[webgpu ${key}] ${m.type} ${m.lineNum}:${m.linePos} ${m.message}`);
        });
      }
    }
    this.kernels.set(key, k);
    return k;
  }

  /** Record one dispatch: params (u32 words), storage slabs in binding order, workgroup counts. */
  private dispatch(k: Kernel, slabs: Res[], params: ArrayLike<number>, x: number, y = 1, z = 1, uboOffset = -1): void {
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
  private grid(threads: number): [number, number, number] {
    const groups = Math.ceil(threads / WG);
    if (groups === 0) return [0, 1, WG];
    const gx = Math.min(groups, 65535);
    const gy = Math.ceil(groups / gx);
    return [gx, gy, gx * WG];
  }

  private slab(b: Buf): Slab {
    const s = (b as GpuBuf).slab;
    if (!s) throw new Error('webgpu: a buffer was used after release');
    return s;
  }

  // ------------------------------------------------------------ primitives
  fill(size: number, value: number, dtype: DType): Buf {
    const t = wtype(dtype);
    const out = this.alloc(size, dtype);
    const bits = t === 'f32' ? fbits(value) : (value | 0) >>> 0;
    const k = this.kernel('fill', () => ({ src: fillSource(), sig: 'w' }));
    const [gx, gy, rs] = this.grid(size);
    this.dispatch(k, [this.slab(out)], [size, rs, bits], gx, gy);
    return out;
  }

  /** Shared path of unary/binary/where/copy/copyInto. */
  private elementwise(expr: string, names: string[], views: View[], shape: number[], outDtype: DType, dst?: View): Buf | null {
    const n = numel(shape);
    const ins = views.map((v) => wtype(v.buf.dtype));
    const outT = wtype(dst ? dst.buf.dtype : outDtype);
    const all = dst ? [...views.map((v) => v.strides), dst.strides] : views.map((v) => v.strides);
    const c = collapse(shape, all);
    const R = c.shape.length;
    if (R > MAX_RANK) throw new Error(`webgpu: elementwise views of rank ${R} after merging axes are not supported (max ${MAX_RANK})`);
    const into = !!dst;
    // software adapters: float32 inputs through texture copies (storage loads are scalar loops there)
    const tex = views.map((v) => this.texInputs && this.matmulPlan.kind === 'ubo' && v.buf.dtype === 'float32' && n >= 1024 &&
      v.buf.size > 0 && Math.ceil(v.buf.size / 4 / LIN_W) <= this.maxTexture && (!dst || v.buf !== dst.buf));
    // vec4 stores (4 elements per invocation) for new outputs of software adapters
    const vec = !into && this.matmulPlan.kind === 'ubo' && n >= 64;
    // vec4 kernels: inputs that are 4-aligned contiguous texture runs read one texel per invocation,
    // broadcast elements are read once, the rest per element
    const own = contiguous(c.shape);
    const flat: ('t' | 's' | 'g')[] | null = vec
      ? views.map((v, j) => c.strides[j].every((st) => st === 0) ? 's'
        : tex[j] && v.offset % 4 === 0 && c.strides[j].every((st, d) => st === own[d] || c.shape[d] === 1) ? 't' : 'g')
      : null;
    // software adapters: coordinates through float32 division where every index is below 2^21
    const fdiv = this.fastDiv && this.matmulPlan.kind === 'ubo' && R > 1 && n < 1 << 21;
    const key = `ew|${expr}|${ins.join(',')}|${outT}|${R}|${into ? 1 : 0}|${tex.map((t) => (t ? 't' : 'r')).join('')}|${vec}|${flat ? flat.join('') : ''}|${fdiv}`;
    const k = this.kernel(key, () => ({
      src: elementwiseSource(expr, names, ins, outT, R, into, tex, vec, flat, fdiv),
      sig: tex.map((t) => (t ? 't' : 'r')).join('') + 'w',
    }));
    const texs = views.map((v, j) => (tex[j] ? this.linearTexture(this.slab(v.buf), Math.ceil(v.buf.size / 4)) : null));
    const out = dst ? dst.buf : this.alloc(n, outDtype);
    const [gx, gy, rs] = this.grid(vec ? Math.ceil(n / 4) : n);
    const p: number[] = [n, rs, ...c.shape];
    const offs = dst ? [...views.map((v) => v.offset), dst.offset] : views.map((v) => v.offset);
    offs.forEach((o, v) => { p.push(o, ...c.strides[v]); });
    this.dispatch(k, [...views.map((v, j) => texs[j] ?? this.slab(v.buf)), this.slab(out)], p, gx, gy);
    for (const t of texs) if (t) this.releaseTex(t);
    return dst ? null : out;
  }

  unary(op: UnaryOp, x: View, shape: number[], outDtype: DType): Buf {
    return this.elementwise(unaryExpr(op), ['x'], [x], shape, outDtype)!;
  }

  binary(op: BinaryOp, a: View, b: View, shape: number[], outDtype: DType): Buf {
    return this.elementwise(binaryExpr(op), ['a', 'b'], [a, b], shape, outDtype)!;
  }

  where(cond: View, a: View, b: View, shape: number[], outDtype: DType): Buf {
    return this.elementwise('where', ['c', 'a', 'b'], [cond, a, b], shape, outDtype)!;
  }

  copy(x: View, shape: number[], outDtype: DType): Buf {
    const n = numel(shape);
    if (outDtype === x.buf.dtype && n > 0 && this.contiguousRun(x, shape)) {
      // a contiguous run of the source: a buffer-to-buffer copy, no shader (leaf gradients, clones)
      wtype(outDtype);
      const out = this.alloc(n, outDtype);
      this.copyRun(this.slab(x.buf), x.offset, this.slab(out), 0, n);
      return out;
    }
    return this.elementwise('x', ['x'], [x], shape, outDtype)!;
  }

  /** Whether a view reads numel(shape) consecutive elements in order. */
  private contiguousRun(v: View, shape: number[]): boolean {
    const c = collapse(shape, [v.strides]);
    return c.shape.length === 1 && (c.strides[0][0] === 1 || c.shape[0] === 1);
  }

  private copyRun(src: Slab, srcOff: number, dst: Slab, dstOff: number, n: number): void {
    const enc = this.getEncoder();
    this.endPass();
    enc.copyBufferToBuffer(src.buffer, srcOff * 4, dst.buffer, dstOff * 4, n * 4);
    src.lastUse = this.epoch;
    dst.lastUse = this.epoch;
  }

  copyInto(dst: View, src: View, shape: number[]): void {
    if (src.buf === dst.buf) {
      // a buffer cannot be bound for reading and writing in one dispatch: go through a copy
      const tmp = this.copy(src, shape, src.buf.dtype);
      const own = contiguous(shape);
      this.elementwise('x', ['x'], [{ buf: tmp, strides: own, offset: 0 }], shape, dst.buf.dtype, dst);
      this.release(tmp);
      return;
    }
    if (src.buf.dtype === dst.buf.dtype && numel(shape) > 0 && this.contiguousRun(src, shape) && this.contiguousRun(dst, shape)) {
      this.copyRun(this.slab(src.buf), src.offset, this.slab(dst.buf), dst.offset, numel(shape));
      return;
    }
    this.elementwise('x', ['x'], [src], shape, dst.buf.dtype, dst);
  }

  reduceLast(op: 'sum' | 'max', x: Buf, rows: number, cols: number): Buf {
    const t = wtype(x.dtype);
    const k = this.kernel(`reduce|${op}|${t}`, () => ({ src: reduceSource(op, t), sig: 'rw' }));
    if (cols === 0 && !(op === 'max' && t === 'f32')) return this.fill(rows, 0, x.dtype);
    const out = this.alloc(rows, x.dtype);
    if (rows === 0) return out;
    const texels = Math.ceil((rows * cols) / 4);
    if (this.texInputs && this.matmulPlan.kind === 'ubo' && t === 'f32' && rows * cols >= 1024 && Math.ceil(texels / LIN_W) <= this.maxTexture) {
      // software adapters: the first pass reads x through a texture copy (storage loads are scalar loops there)
      const kt = this.kernel(`reduce|${op}|${t}|tex`, () => ({ src: reduceSource(op, t, true), sig: 'tw' }));
      const tx = this.linearTexture(this.slab(x), texels);
      if (cols >= 2048) {
        const len = Math.ceil(Math.sqrt(cols));
        const chunks = Math.ceil(cols / len);
        const part = this.alloc(rows * chunks, x.dtype);
        let [gx, gy, rs] = this.grid(rows * chunks);
        this.dispatch(kt, [tx, this.slab(part)], [rows * chunks, rs, cols, chunks, len], gx, gy);
        [gx, gy, rs] = this.grid(rows);
        this.dispatch(k, [this.slab(part), this.slab(out)], [rows, rs, chunks, 1, chunks], gx, gy);
        this.release(part);
      } else {
        const [gx, gy, rs] = this.grid(rows);
        this.dispatch(kt, [tx, this.slab(out)], [rows, rs, cols, 1, Math.max(cols, 1)], gx, gy);
      }
      this.releaseTex(tx);
      return out;
    }
    if (cols >= 2048) {
      // two passes over chunks of ~sqrt(cols): parallel, and shorter float32 accumulation chains
      const len = Math.ceil(Math.sqrt(cols));
      const chunks = Math.ceil(cols / len);
      const part = this.alloc(rows * chunks, x.dtype);
      let [gx, gy, rs] = this.grid(rows * chunks);
      this.dispatch(k, [this.slab(x), this.slab(part)], [rows * chunks, rs, cols, chunks, len], gx, gy);
      [gx, gy, rs] = this.grid(rows);
      this.dispatch(k, [this.slab(part), this.slab(out)], [rows, rs, chunks, 1, chunks], gx, gy);
      this.release(part);
    } else {
      const [gx, gy, rs] = this.grid(rows);
      this.dispatch(k, [this.slab(x), this.slab(out)], [rows, rs, cols, 1, Math.max(cols, 1)], gx, gy);
    }
    return out;
  }

  argmaxLast(x: Buf, rows: number, cols: number): Buf {
    const t = wtype(x.dtype);
    const k = this.kernel(`argmax|${t}`, () => ({ src: argmaxSource(t), sig: 'rw' }));
    const out = this.alloc(rows, 'int32');
    const [gx, gy, rs] = this.grid(rows);
    if (cols > 0) this.dispatch(k, [this.slab(x), this.slab(out)], [rows, rs, cols], gx, gy);
    else if (rows > 0) { this.release(out); return this.fill(rows, 0, 'int32'); }
    return out;
  }

  matmul(a: MatmulArgs): Buf {
    return this.matmulEx(a, null, 'none');
  }

  /**
   * act(A @ B + bias) in one pass where the matmul kernel supports it (bias: length n, added to every
   * row of every batch; act 'relu' or 'none'); otherwise the matmul followed by elementwise dispatches.
   */
  matmulBiasAct(a: MatmulArgs, bias: Buf | null, act: MatmulAct): Buf {
    return this.matmulEx(a, bias, act);
  }

  private matmulEx(a: MatmulArgs, bias: Buf | null, act: MatmulAct): Buf {
    const { batch, m, n, k, transA, transB, aBatchStride, bBatchStride } = a;
    if (a.a.dtype !== 'float32' || a.b.dtype !== 'float32') throw new Error(`webgpu.matmul: float32 operands expected, got ${a.a.dtype} and ${a.b.dtype}`);
    if (bias && (bias.dtype !== 'float32' || bias.size !== n)) throw new Error(`webgpu.matmulBiasAct: bias must be float32 of length ${n}`);
    if (batch * m * n === 0) return this.alloc(batch * m * n, 'float32');
    if (this.matmulPlan.kind === 'ubo' && k > 0) {
      const r = this.matmulUbo(a, bias, act);
      if (r) return r;
    }
    const out = this.matmulPlain(a);
    if (!bias && act === 'none') return out;
    // epilogue through the elementwise kernels
    let cur = out;
    if (bias) {
      const shape = [batch * m, n];
      const nxt = this.binary('add', { buf: cur, strides: [n, 1], offset: 0 }, { buf: bias, strides: [0, 1], offset: 0 }, shape, 'float32');
      this.release(cur);
      cur = nxt;
    }
    if (act === 'relu') {
      const nxt = this.unary('relu', { buf: cur, strides: [1], offset: 0 }, [batch * m * n], 'float32');
      this.release(cur);
      cur = nxt;
    }
    return cur;
  }

  /**
   * Tile and uniform-block chunking of the 'ubo' matmul for one shape: TM rows per invocation (<= uboTile.tm,
   * chosen to waste few rows: m = 100 runs as 5 x 20, m = 300 as 15 x 20, not 7 x 16 and 19 x 16), R rows of A per uniform block
   * (a multiple of TM; R * kp floats fit one binding, and chunk offsets stay 256-byte aligned), TQ.
   * null (the plain kernels run) where no tile of >= 4 rows fits: very long k, or no aligned chunking.
   */
  uboPlan(m: number, n: number, k: number, batch: number): { TM: number; TQ: number; WGX: number; R: number; chunks: number } | null {
    const { tm: tmMax, tq: tqFixed, wgx: WGX } = this.uboTile;
    const kp = 4 * Math.ceil(k / 4);
    const maxRows = Math.floor(this.maxUniformFloats / kp);
    const wn = Math.ceil(n / 4);
    let TQ = tqFixed;
    if (!TQ) {
      let best = Infinity;
      for (const q of [2, 3, 4]) {
        const padded = Math.ceil(wn / (q * WGX)) * q * WGX;
        if (padded < best) { best = padded; TQ = q; }
      }
    }
    let plan: { TM: number; TQ: number; WGX: number; R: number; chunks: number } | null = null;
    let best = Infinity;
    for (let TM = Math.min(tmMax, maxRows); TM >= Math.min(4, tmMax); TM--) {
      let R: number, chunks: number, rows: number;
      if (Math.ceil(m / TM) * TM <= maxRows) {
        R = Math.ceil(m / TM) * TM; chunks = 1; rows = R;
      } else {
        R = Math.floor(maxRows / TM) * TM;
        while (R >= TM && (R * kp) % 64 !== 0) R -= TM;
        if (R < TM) continue;
        chunks = Math.ceil(m / R);
        rows = (chunks - 1) * R + Math.ceil((m - (chunks - 1) * R) / TM) * TM;
      }
      if (batch * chunks > 64) continue;
      // estimated cost: padded rows, B texel fetches per FMA falling with TM (on llvmpipe 8 -> 16 rows
      // measured ~1.2-1.3x faster, 16 -> 20 ~1.05-1.1x), ~45 us per dispatch (~0.4 MFLOP of this kernel)
      const cost = rows * wn * k * (1 + 6 / TM) + chunks * batch * 4e5 / 8;
      if (cost < best) { best = cost; plan = { TM, TQ, WGX, R, chunks }; }
    }
    return plan;
  }

  /** The uniform-block matmul (see matmulUboSource); null where the shape does not fit it. */
  private matmulUbo(a: MatmulArgs, bias: Buf | null, act: MatmulAct): Buf | null {
    const { batch, m, n, k, transA, transB, aBatchStride, bBatchStride } = a;
    const plan = this.uboPlan(m, n, k, batch);
    if (!plan) return null;
    const { TM, TQ, WGX, R, chunks } = plan;
    const kp = 4 * Math.ceil(k / 4);
    const aB = aBatchStride ? batch : 1, bB = bBatchStride ? batch : 1;
    const wn = Math.ceil(n / 4);
    // B as a linear texture: rows of ldb texels (n along a row, or k when transposed)
    const inner = transB ? k : n, rowsB = transB ? n : k;
    const ldb = Math.ceil(inner / 4);
    const directB = inner % 4 === 0 && bBatchStride % 4 === 0;
    const bStrideT = directB ? bBatchStride / 4 : rowsB * ldb; // texels between batches
    const texels = (bB - 1) * bStrideT + rowsB * ldb;
    if (Math.ceil(texels / LIN_W) > this.maxTexture) return null;
    // ---- A: rows of kp floats, 256-byte aligned chunks
    const aStride = Math.ceil((chunks * R * kp) / 64) * 64;
    const scratch = this.alloc(aB * aStride, 'float32');
    const ss = this.slab(scratch);
    if (!transA && k % 4 === 0) {
      const enc = this.getEncoder();
      this.endPass();
      const src = this.slab(a.a);
      for (let b = 0; b < aB; b++) enc.copyBufferToBuffer(src.buffer, b * aBatchStride * 4, ss.buffer, b * aStride * 4, m * k * 4);
      src.lastUse = this.epoch;
      ss.lastUse = this.epoch;
    } else {
      this.packRows(a.a, ss, aB, m, k, kp, transA, aBatchStride, aStride);
    }
    // ---- B: linear texture
    let bSrc = this.slab(a.b);
    let bTmp: Buf | null = null;
    if (!directB) {
      bTmp = this.alloc(texels * 4, 'float32');
      bSrc = this.slab(bTmp);
      this.packRows(a.b, bSrc, bB, rowsB, inner, 4 * ldb, false, bBatchStride, rowsB * ldb * 4);
    }
    const tb = this.linearTexture(bSrc, texels);
    // ---- the product
    const out = this.alloc(batch * m * n, 'float32');
    const vecOut = n % 4 === 0;
    const kern = this.kernel(`mmu|${k}|${R}|${TM}|${TQ}|${WGX}|${transB}|${!!bias}|${act}|${vecOut}`, () => ({
      src: matmulUboSource(k, R, TM, TQ, WGX, transB, !!bias, act, vecOut), sig: bias ? 'utwr' : 'utw',
    }));
    const res: Res[] = [{ ubo: ss, size: R * kp * 4 }, tb, this.slab(out)];
    if (bias) res.push(this.slab(bias));
    const gx = Math.ceil(wn / (TQ * WGX));
    for (let bt = 0; bt < batch; bt++) {
      for (let c = 0; c < chunks; c++) {
        const rows = Math.min(R, m - c * R);
        const aOff = ((aBatchStride ? bt : 0) * aStride + c * R * kp) * 4;
        this.dispatch(kern, res, [rows, n, bt * m + c * R, bBatchStride ? bt * bStrideT : 0, ldb], gx, Math.ceil(rows / TM), 1, aOff);
      }
    }
    this.release(scratch);
    if (bTmp) this.release(bTmp);
    this.releaseTex(tb);
    return out;
  }

  /** Write `batches` (R, Cc) operands (column-major when trans) as rows of Cp floats, zero-padded, into dst. */
  private packRows(x: Buf, dst: Slab, batches: number, R: number, Cc: number, Cp: number, trans: boolean, inStride: number, outStride: number): void {
    const texels = Math.ceil(x.size / 4);
    if (this.texInputs && x.size > 0 && Math.ceil(texels / LIN_W) <= this.maxTexture) {
      // read x through a texture copy and store whole vec4s (both several times faster on llvmpipe)
      const kt = this.kernel(`packrowstex|${trans}`, () => ({ src: packRowsTexSource(trans), sig: 'tw' }));
      const tx = this.linearTexture(this.slab(x), texels);
      const total4 = batches * R * (Cp / 4);
      const [gx, gy, rs] = this.grid(total4);
      this.dispatch(kt, [tx, dst], [total4, rs, R, Cc, Cp, inStride, outStride], gx, gy);
      this.releaseTex(tx);
      return;
    }
    const kern = this.kernel(`packrows|${trans}`, () => ({ src: packRowsSource(trans), sig: 'rw' }));
    const total = batches * R * Cp;
    const [gx, gy, rs] = this.grid(total);
    this.dispatch(kern, [this.slab(x), dst], [total, rs, R, Cc, Cp, inStride, outStride], gx, gy);
  }

  /** A pooled LIN_W-wide rgba32float texture holding the first `texels` * 4 floats of a slab (copy, no shader). */
  private linearTexture(src: Slab, texels: number): Tex {
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

  private matmulPlain(a: MatmulArgs): Buf {
    const { batch, m, n, k, transA, transB, aBatchStride, bBatchStride } = a;
    const out = this.alloc(batch * m * n, 'float32');
    if (batch * m * n === 0) return out;
    if (k === 0) { this.release(out); return this.fill(batch * m * n, 0, 'float32'); }
    const params = [m, n, k, aBatchStride, bBatchStride];
    const plan = this.matmulPlan;
    if (batch > 65535) throw new Error(`webgpu.matmul: more than 65535 matrices in one call are not supported (got ${batch})`);
    {
      const nb = batch;
      const tex = (plan.kind === 'tex' || plan.kind === 'ubo') && 2 * batch * m * n * k >= 1 << 17 &&
        Math.max(Math.ceil(k / 4), Math.ceil(n / 4)) <= this.maxTexture &&
        (aBatchStride ? batch : 1) * m <= this.maxTexture && (bBatchStride ? batch : 1) * 4 * Math.ceil(k / 4) <= this.maxTexture;
      if (tex) {
        const ta = this.pack(a.a, m, k, transA, aBatchStride ? batch : 1, aBatchStride, m);
        const kp = 4 * Math.ceil(k / 4);
        const tb = this.pack(a.b, k, n, transB, bBatchStride ? batch : 1, bBatchStride, kp);
        const { tm, tn } = plan.kind === 'tex' ? plan : { tm: 16, tn: 8 }, wg = plan.kind === 'tex' ? plan.wg ?? 8 : 8;
        const kern = this.kernel(`mmx|${tm}|${tn}|${wg}`, () => ({ src: matmulTexSource(tm, tn, wg), sig: 'ttw' }));
        this.dispatch(kern, [ta, tb, this.slab(out)], [m, n, k, aBatchStride ? m : 0, bBatchStride ? kp : 0],
          Math.ceil(n / (tn * wg)), Math.ceil(m / (tm * wg)), nb);
        this.releaseTex(ta);
        this.releaseTex(tb);
      } else if (plan.kind === 'tiled') {
        const kern = this.kernel(`mmt|${transA}|${transB}`, () => ({ src: matmulTiledSource(transA, transB), sig: 'rrw' }));
        this.dispatch(kern, [this.slab(a.a), this.slab(a.b), this.slab(out)], params, Math.ceil(n / 64), Math.ceil(m / 64), nb);
      } else {
        // tile orientation: wide tiles (8x16) unless the output is much taller than wide
        const tall = m >= 4 * n && m >= 64;
        const tm = tall ? plan.tn : plan.tm, tn = tall ? plan.tm : plan.tn;
        const wg = plan.wg ?? 8;
        const v: MatmulVariant = {
          transA, transB, tm, tn, wgx: wg, wgy: wg,
          vecA: transA ? m % 4 === 0 && m >= 4 && aBatchStride % 4 === 0 : k % 4 === 0 && aBatchStride % 4 === 0,
          vecB: transB ? k % 4 === 0 && bBatchStride % 4 === 0 : n % 4 === 0 && n >= 4 && bBatchStride % 4 === 0,
        };
        const key = `mmr|${transA}|${transB}|${v.vecA}|${v.vecB}|${tm}|${tn}|${wg}`;
        const kern = this.kernel(key, () => ({ src: matmulRegSource(v), sig: 'rrw' }));
        this.dispatch(kern, [this.slab(a.a), this.slab(a.b), this.slab(out)], params, Math.ceil(n / (tn * wg)), Math.ceil(m / (tm * wg)), nb);
      }
    }
    return out;
  }

  /** Pack an operand (batches of R x Cc, see packSource) into a pooled texture. */
  private pack(x: Buf, R: number, Cc: number, trans: boolean, batches: number, batchStride: number, Rpad: number): Tex {
    const W = Math.ceil(Cc / 4), H = batches * Rpad;
    const t = this.takeTex(W, H);
    const k = this.kernel(`pack|${trans}`, () => ({ src: packSource(trans), sig: 'rs' }));
    const [gx, gy, rs] = this.grid(W * H);
    this.dispatch(k, [this.slab(x), t], [W * H, rs, R, Cc, W, batchStride, Rpad], gx, gy);
    return t;
  }

  private takeTex(w: number, h: number, copyDst = false): Tex {
    // round the height up so that nearby shapes share textures
    const hh = h <= 64 ? h : Math.min(this.maxTexture, Math.ceil(h / 32) * 32);
    const key = `${w}x${hh}${copyDst ? 'c' : ''}`;
    const t = this.texPool.get(key)?.pop();
    if (t) return t;
    const texture = this.device.createTexture({ size: [w, hh], format: 'rgba32float', usage: 0x04 /* TEXTURE_BINDING */ | (copyDst ? 0x02 /* COPY_DST */ : 0x08 /* STORAGE_BINDING */) });
    this.allocated += w * hh * 16;
    return { id: this.nextSlabId++, texture, view: texture.createView(), w, h: hh, copyDst };
  }

  private releaseTex(t: Tex): void {
    const key = `${t.w}x${t.h}${t.copyDst ? 'c' : ''}`;
    let list = this.texPool.get(key);
    if (!list) this.texPool.set(key, (list = []));
    list.push(t);
  }

  gather(x: Buf, idx: Buf, outer: number, n: number, m: number, inner: number): Buf {
    const t = wtype(x.dtype);
    const k = this.kernel(`gather|${t}`, () => ({ src: gatherSource(t), sig: 'rrw' }));
    const total = outer * m * inner;
    const out = this.alloc(total, x.dtype);
    const [gx, gy, rs] = this.grid(total);
    this.dispatch(k, [this.slab(x), this.slab(idx), this.slab(out)], [total, rs, n, m, inner], gx, gy);
    return out;
  }

  scatterAdd(g: Buf, idx: Buf, outer: number, n: number, m: number, inner: number): Buf {
    const t = wtype(g.dtype);
    const k = this.kernel(`scatter|${t}`, () => ({ src: scatterAddSource(t), sig: 'rrw' }));
    const total = outer * n * inner;
    const out = this.alloc(total, g.dtype);
    const [gx, gy, rs] = this.grid(total);
    this.dispatch(k, [this.slab(g), this.slab(idx), this.slab(out)], [total, rs, n, m, inner], gx, gy);
    return out;
  }

  randomBits(key: [number, number], counter: number, size: number): Buf {
    const k = this.kernel('philox', () => ({ src: philoxSource(), sig: 'w' }));
    const out = this.alloc(size, 'int32');
    const blocks = Math.ceil(size / 4);
    const [gx, gy, rs] = this.grid(blocks);
    const lo = counter >>> 0, hi = Math.floor(counter / 4294967296) >>> 0;
    this.dispatch(k, [this.slab(out)], [blocks, rs, size, key[0] >>> 0, key[1] >>> 0, lo, hi], gx, gy);
    return out;
  }

  adamUpdate(p: Buf, g: Buf, m: Buf, v: Buf, hp: AdamHyper): void {
    const k = this.kernel('adam', () => ({ src: adamSource(), sig: 'wrww' }));
    const { lr, beta1, beta2, eps, weightDecay, step } = hp;
    const bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
    const n = p.size;
    const texels = Math.ceil(n / 4);
    if (this.matmulPlan.kind === 'ubo' && n > 0 && Math.ceil(texels / LIN_W) <= this.maxTexture) {
      // software adapters: operands through texture copies (see adamTexSource)
      const per = 4; // texels per invocation (fewer invocations: ~5-10% faster on llvmpipe)
      const kt = this.kernel(`adamtex|${per}`, () => ({ src: adamTexSource(per), sig: 'wwwtttt' }));
      const texs = [p, g, m, v].map((b) => this.linearTexture(this.slab(b), texels));
      const [gx, gy, rs] = this.grid(Math.ceil(texels / per));
      this.dispatch(kt, [this.slab(p), this.slab(m), this.slab(v), ...texs],
        [texels, rs, fbits(beta1), fbits(1 - beta1), fbits(beta2), fbits(1 - beta2), fbits(eps), fbits(weightDecay), fbits(lr / bc1), fbits(Math.sqrt(bc2)), n],
        gx, gy);
      for (const t of texs) this.releaseTex(t);
      return;
    }
    const [gx, gy, rs] = this.grid(n);
    this.dispatch(k, [this.slab(p), this.slab(g), this.slab(m), this.slab(v)],
      [n, rs, fbits(beta1), fbits(1 - beta1), fbits(beta2), fbits(1 - beta2), fbits(eps), fbits(weightDecay), fbits(lr / bc1), fbits(Math.sqrt(bc2))],
      gx, gy);
  }

  // ------------------------------------------------------------ extras (tests, benchmarks)
  /** Number of distinct compiled pipelines. */
  get pipelineCount(): number {
    return this.bySource.size;
  }
}

function contiguous(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) { s[d] = acc; acc *= shape[d]; }
  return s;
}

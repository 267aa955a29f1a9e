// Elementwise float32 arithmetic in WebAssembly SIMD for the CPU backend's hot binary ops on contiguous arrays:
// add, sub, mul, div (bit-identical to the JS kernels: float64 arithmetic rounded once to float32 gives the
// correctly rounded float32 result for these four) and reluGrad (a where b > 0, else 0; NaN b gives 0). Both
// operands arrays of equal length, or the second a scalar. A JS loop over typed-array arguments ran at ~1.7 to
// 3 ns per element here (bounds and map checks); streaming through a private wasm memory in chunks (as ./bce.ts)
// costs three copies and a SIMD pass.
//
// The same ops also run over the wasm GEMM's memory (ewInMemory): operands that live there (matmul outputs, the
// outputs of these ops) are read in place and the result written into a block there, with no copies; large
// ones give half of their elements to the GEMM's worker thread.
import { Code, ModuleBuilder, I32, F32, V128 } from './emit.ts';
import { MAX_PAGES } from './kernels.ts';
import type { Splitter } from './gemm.ts';

export type EwOp = 'add' | 'sub' | 'mul' | 'div' | 'reluGrad';
const OPS: EwOp[] = ['add', 'sub', 'mul', 'div', 'reluGrad'];
const CHUNK = 16384; // floats per array per chunk; a multiple of 16
const A = 0, B = CHUNK, O = 2 * CHUNK;

/** apply op to v128 values a, b (on the stack: nothing; leaves the result on the stack) */
function emitOp(c: Code, op: EwOp, a: number, b: number, zero: number): void {
  switch (op) {
    case 'add': c.get(a).get(b).f32x4Add(); break;
    case 'sub': c.get(a).get(b).f32x4Sub(); break;
    case 'mul': c.get(a).get(b).f32x4Mul(); break;
    case 'div': c.get(a).get(b).f32x4Div(); break;
    case 'reluGrad': c.get(a).get(zero).get(b).get(zero).f32x4Gt().v128Bitselect(); break;
  }
}

/** <op>(n16, scalar, useScalar): O = op(A, B) (or op(A, scalar)) over n16 groups of 16 floats */
function emitEw(c: Code, op: EwOp): void {
  const [n16, sc, useSc] = [0, 1, 2];
  const off = c.local(I32), end = c.local(I32), zero = c.local(V128), s = c.local(V128);
  const L = [0, 1, 2, 3].map(() => ({ a: c.local(V128), b: c.local(V128) }));
  c.v128Const0().set(zero);
  c.get(sc).f32x4Splat().set(s);
  c.get(n16).if_();
  c.i32(0).set(off);
  c.get(n16).i32(64).i32Mul().set(end);
  c.loop();
  for (let v = 0; v < 4; v++) {
    c.get(off).v128Load(4 * A + 16 * v).set(L[v].a);
    c.get(s).get(off).v128Load(4 * B + 16 * v).get(useSc).select().set(L[v].b);
  }
  for (let v = 0; v < 4; v++) {
    c.get(off);
    emitOp(c, op, L[v].a, L[v].b, zero);
    c.v128Store(4 * O + 16 * v);
  }
  c.get(off).i32(64).i32Add().tee(off).get(end).i32Ne().brIf(0);
  c.end();
  c.end();
}

type Fn = (n16: number, scalar: number, useScalar: number) => void;
let wasm: { ex: Record<EwOp, Fn>; f: Float32Array } | null | undefined;

function kernels(): typeof wasm {
  if (wasm !== undefined) return wasm;
  wasm = null;
  try {
    const pages = Math.ceil((3 * CHUNK * 4) / 65536);
    const mb = new ModuleBuilder({ module: 'env', field: 'mem', initialPages: pages, maxPages: pages, shared: false });
    for (const op of OPS) mb.func(op, [I32, F32, I32], [], (c) => emitEw(c, op));
    const bytes = mb.encode();
    if (!WebAssembly.validate(bytes)) return null;
    const mem = new WebAssembly.Memory({ initial: pages, maximum: pages });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem } });
    wasm = { ex: inst.exports as unknown as Record<EwOp, Fn>, f: new Float32Array(mem.buffer) };
  } catch {
    wasm = null;
  }
  return wasm;
}

/** Whether op has a wasm kernel here. */
export function ewWasmOp(op: string): op is EwOp {
  return (OPS as string[]).includes(op) && kernels() !== null;
}

/**
 * out[i] = op(a[i], b[i]) for i < n, or op(a[i], b) for a number b (float32 arrays, read from index 0).
 * false where WebAssembly SIMD is unavailable (nothing written).
 */
export function ewF32(op: EwOp, a: Float32Array, b: Float32Array | number, out: Float32Array, n: number): boolean {
  const k = kernels();
  if (!k) return false;
  if (a.length < n || out.length < n || (typeof b !== 'number' && b.length < n)) {
    throw new RangeError(`ewF32: arrays shorter than n = ${n}`);
  }
  const fn = k.ex[op], f = k.f;
  const scalar = typeof b === 'number';
  for (let o = 0; o < n; o += CHUNK) {
    const len = Math.min(CHUNK, n - o), e = o + len;
    f.set(a.subarray(o, e), A);
    if (!scalar) f.set(b.subarray(o, e), B);
    fn((len + 15) >> 4, scalar ? b : 0, scalar ? 1 : 0); // lanes past len: stale, never copied back
    out.set(f.subarray(O, O + len), o);
  }
  return true;
}

/** apply op to f32 values a, b (leaves the result on the stack): the same float32 operation as a SIMD lane */
function emitOpScalar(c: Code, op: EwOp, a: number, b: number): void {
  switch (op) {
    case 'add': c.get(a).get(b).f32Add(); break;
    case 'sub': c.get(a).get(b).f32Sub(); break;
    case 'mul': c.get(a).get(b).f32Mul(); break;
    case 'div': c.get(a).get(b).f32Div(); break;
    case 'reluGrad': c.get(a).f32Const(0).get(b).f32Const(0).f32Gt().select(); break;
  }
}

/** <op>(a, b, out, n, scalar, useScalar): out[i] = op(a[i], b[i]) (or op(a[i], scalar)) for i < n, byte addresses
 *  into the imported memory: groups of 16 floats as SIMD, the rest one at a time */
function emitEwAt(c: Code, op: EwOp): void {
  const [a, b, out, n, sc, useSc] = [0, 1, 2, 3, 4, 5];
  const off = c.local(I32), end = c.local(I32), zero = c.local(V128), s = c.local(V128);
  const fa = c.local(F32), fb = c.local(F32);
  const L = [0, 1, 2, 3].map(() => ({ a: c.local(V128), b: c.local(V128) }));
  c.v128Const0().set(zero);
  c.get(sc).f32x4Splat().set(s);
  c.i32(0).set(off);
  c.get(n).i32(-16).i32And().i32(4).i32Mul().set(end);
  c.get(end).if_();
  c.loop();
  for (let v = 0; v < 4; v++) {
    c.get(a).get(off).i32Add().v128Load(16 * v).set(L[v].a);
    c.get(s).get(b).get(off).i32Add().v128Load(16 * v).get(useSc).select().set(L[v].b);
  }
  for (let v = 0; v < 4; v++) {
    c.get(out).get(off).i32Add();
    emitOp(c, op, L[v].a, L[v].b, zero);
    c.v128Store(16 * v);
  }
  c.get(off).i32(64).i32Add().tee(off).get(end).i32Ne().brIf(0);
  c.end();
  c.end();
  c.get(n).i32(4).i32Mul().set(end);
  c.block().loop();
  c.get(off).get(end).i32GeS().brIf(1);
  c.get(a).get(off).i32Add().f32Load(0).set(fa);
  c.get(sc).get(b).get(off).i32Add().f32Load(0).get(useSc).select().set(fb);
  c.get(out).get(off).i32Add();
  emitOpScalar(c, op, fa, fb);
  c.f32Store(0);
  c.get(off).i32(4).i32Add().set(off);
  c.br(0);
  c.end().end();
}

type FnAt = (a: number, b: number, out: number, n: number, scalar: number, useScalar: number) => void;
export interface EwInMemory {
  /** out[i] = op(a[i], b[i]) (b: a byte address) or op(a[i], b) (b: { scalar }), i < n; a, b, out byte addresses
   *  in the memory. With a splitter whose worker is active, n >= SPLIT_MIN give their second half to it. */
  run(op: EwOp, a: number, b: number | { scalar: number }, out: number, n: number, sp: Splitter | null): void;
}

/** elements from which an op over the GEMM's memory is split across the two threads. Measured (mul, hot
 *  operands, median us, 1 vs 2 threads): 16384: 2.9 vs 3.8; 32768: 5.4 vs 6.7; 51200: 8.7 vs 6.2; 78400: 15.7
 *  vs 8.7; 401408: 65 vs 35. */
const SPLIT_MIN = 40960;
let atBytes: Uint8Array | null | undefined;
const atByMemory = new WeakMap<WebAssembly.Memory, { fns: Record<EwOp, FnAt>; shared: WeakMap<Splitter, number> }>();

/** The ops over a shared memory of the GEMM's kind (imported as env.mem); null where wasm SIMD is unavailable. */
export function ewInMemory(memory: WebAssembly.Memory): EwInMemory | null {
  if (atBytes === undefined) {
    atBytes = null;
    try {
      const mb = new ModuleBuilder({ module: 'env', field: 'mem', initialPages: 1, maxPages: MAX_PAGES, shared: true });
      for (const op of OPS) mb.func(op, [I32, I32, I32, I32, F32, I32], [], (c) => emitEwAt(c, op));
      const bytes = mb.encode();
      if (WebAssembly.validate(bytes)) atBytes = bytes;
    } catch {
      atBytes = null;
    }
  }
  if (!atBytes) return null;
  let rec = atByMemory.get(memory);
  if (!rec) {
    const inst = new WebAssembly.Instance(new WebAssembly.Module(atBytes as Uint8Array<ArrayBuffer>), { env: { mem: memory } });
    rec = { fns: inst.exports as unknown as Record<EwOp, FnAt>, shared: new WeakMap() };
    atByMemory.set(memory, rec);
  }
  const r = rec, bytes = atBytes;
  return {
    run(op, a, b, out, n, sp) {
      const scalar = typeof b === 'number' ? 0 : b.scalar, useSc = typeof b === 'number' ? 0 : 1;
      const bAddr = typeof b === 'number' ? b : 0;
      if (!(sp && sp.workerActive && n >= SPLIT_MIN)) { r.fns[op](a, bAddr, out, n, scalar, useSc); return; }
      let slot = r.shared.get(sp);
      if (slot === undefined) { slot = sp.shareModule(bytes, memory, OPS); r.shared.set(sp, slot); }
      // both threads take chunks (multiples of 16 elements, shrinking toward the end) from a shared counter
      sp.splitRange(slot, op, [a, bAddr, out, n, scalar, useSc], [4, useSc ? 0 : 4, 4, 0, 0, 0], 3, 1, n, 16, r.fns[op]);
    },
  };
}

// Softmax, log-softmax and their VJPs over the rows of a contiguous float32 matrix, and elementwise exp, in
// WebAssembly SIMD: the float32 exp / log of ./vmath.ts (<= 1.5 / 1 ulp) instead of Math.exp per element, which
// dominated these ops on short rows (the VAE's 3000 rows of 10: 0.5 ms per op in JS).
//
//   softmaxRowsF32(x, out, rows, cols, log)    out = softmax(x) or log-softmax(x) per row
//   logSoftmaxVjpRowsF32(y, g, out, rows, cols) out = g - exp(y) sum(g) per row (y = log-softmax output)
//   expF32(x, out)                             out = exp(x)
//
// As the backend's JS kernels: the row's shift is its maximum where that is finite (else 0), e = exp(x - shift),
// softmax = e (1 / sum e), log-softmax = x - (log(sum e) + shift). Here in float32 (sums in row order), so values
// differ from the float64 JS kernels by a few ulp (bounds derived in test/cpu_softmax.test.ts). Rows whose maximum
// is not finite (NaN, +Infinity, or every entry -Infinity) are left to the caller's JS kernel (the returned
// list), so special values come out exactly as there. exp: x above 88.7 (where the vector exp saturates) and
// NaN lanes are flagged per chunk and redone by the caller with Math.exp.
// Arrays stream through a private wasm memory in chunks of whole rows (as ./bce.ts does).
import { Code, ModuleBuilder, I32, V128, F32 } from './emit.ts';
import { prepareExp, emitExpF32x4, prepareLog, emitLogF32x4, emitInterleaved } from './vmath.ts';

const CHUNK = 8192; // floats per array per chunk; rows longer than this take the JS kernels
const PAD = 16; // floats of slack after each array (the last vector group may run past n)
// float offsets of the arrays in the private memory
const X = 0, E = X + CHUNK + PAD, O = E + CHUNK + PAD, G = O + CHUNK + PAD;
const SH = G + CHUNK + PAD, Z = SH + CHUNK + PAD, LZ = Z + CHUNK + PAD, BAD = LZ + CHUNK + PAD;
const FLOATS = BAD + CHUNK + PAD;
const EXP_HI = 88.7; // emitExpF32x4 is exact-range below this

/** expv(src, dst, n16, flagAddr): dst = exp(src) over n16 groups of 16 floats; stores (i32) whether any src lane
 *  is above EXP_HI or NaN at flagAddr */
function emitExpMap(c: Code): void {
  const [src, dst, n16, flag] = [0, 1, 2, 3];
  const EK = prepareExp(c);
  const off = c.local(I32), end = c.local(I32), hi = c.local(V128), bad = c.local(V128);
  const L = [0, 1, 2, 3].map(() => ({ x: c.local(V128), y: c.local(V128) }));
  c.v128ConstF32x4(EXP_HI).set(hi);
  c.v128Const0().set(bad);
  c.get(n16).if_();
  c.i32(0).set(off);
  c.get(n16).i32(64).i32Mul().set(end);
  c.loop();
  emitInterleaved(c, L.map(({ x, y }, v) => () => {
    c.get(src).get(off).i32Add().v128Load(16 * v).set(x);
    emitExpF32x4(c, EK, x, y);
    // x > hi, or x != x
    c.get(bad).get(x).get(hi).f32x4Gt().v128Or().get(x).get(x).f32x4Ne().v128Or().set(bad);
  }));
  for (let v = 0; v < 4; v++) c.get(dst).get(off).i32Add().get(L[v].y).v128Store(16 * v);
  c.get(off).i32(64).i32Add().tee(off).get(end).i32Ne().brIf(0);
  c.end();
  c.end();
  c.get(flag).get(bad).v128AnyTrue().i32Store(0);
}

/** logv(src, dst, n4): dst = log(src) (0 -> -Infinity, NaN stays) over n4 vectors */
function emitLogMap(c: Code): void {
  const [src, dst, n4] = [0, 1, 2];
  const LK = prepareLog(c);
  const off = c.local(I32), end = c.local(I32), x = c.local(V128), y = c.local(V128);
  c.get(n4).if_();
  c.i32(0).set(off);
  c.get(n4).i32(16).i32Mul().set(end);
  c.loop();
  c.get(src).get(off).i32Add().v128Load(0).set(x);
  emitLogF32x4(c, LK, x, y, true);
  c.get(dst).get(off).i32Add().get(y).v128Store(0);
  c.get(off).i32(16).i32Add().tee(off).get(end).i32Ne().brIf(0);
  c.end();
  c.end();
}

/** for r in [0, rows): body(row start byte offset, row index byte offset (4 r), row index local) */
function forRows(c: Code, rows: number, cols: number, body: (ro: number, ri: number, r: number) => void): void {
  const r = c.local(I32), ro = c.local(I32), ri = c.local(I32);
  c.get(rows).if_();
  c.i32(0).set(r).i32(0).set(ro).i32(0).set(ri);
  c.loop();
  body(ro, ri, r);
  c.get(ro).get(cols).i32(4).i32Mul().i32Add().set(ro);
  c.get(ri).i32(4).i32Add().set(ri);
  c.get(r).i32(1).i32Add().tee(r).get(rows).i32Ne().brIf(0);
  c.end();
  c.end();
}

/** for j in [0, cols): body(elementByteOffset) with the row starting at byte ro */
function forCols(c: Code, ro: number, cols: number, body: (eo: number) => void): void {
  const eo = c.local(I32), end = c.local(I32);
  c.get(ro).set(eo);
  c.get(ro).get(cols).i32(4).i32Mul().i32Add().set(end);
  c.loop();
  body(eo);
  c.get(eo).i32(4).i32Add().tee(eo).get(end).i32Ne().brIf(0);
  c.end();
}

/** shiftRows(rows, cols) -> nBad: per row m = max (NaN if any), sh = m where finite; E = X - sh; SH[r] = sh;
 *  rows with m not finite are listed in BAD (i32) and counted */
function emitShiftRows(c: Code): void {
  const [rows, cols] = [0, 1];
  const m = c.local(F32), sh = c.local(F32), nBad = c.local(I32);
  c.i32(0).set(nBad);
  forRows(c, rows, cols, (ro, ri, r) => {
    c.f32Const(-Infinity).set(m);
    forCols(c, ro, cols, (eo) => { c.get(m).get(eo).f32Load(4 * X).f32Max().set(m); });
    // finite: m - m == 0
    c.get(m).get(m).f32Sub().f32Const(0).f32Eq();
    c.if_();
    c.get(m).set(sh);
    c.else_();
    c.f32Const(0).set(sh);
    c.i32(4 * BAD).get(nBad).i32(4).i32Mul().i32Add().get(r).i32Store(0);
    c.get(nBad).i32(1).i32Add().set(nBad);
    c.end();
    c.get(ri).get(sh).f32Store(4 * SH);
    forCols(c, ro, cols, (eo) => { c.get(eo).get(eo).f32Load(4 * X).get(sh).f32Sub().f32Store(4 * E); });
  });
  c.get(nBad);
}

/** finishRows(rows, cols, log): per row z = sum E (row order); softmax: O = E (1 / z); log: Z[r] = z only */
function emitFinishRows(c: Code): void {
  const [rows, cols, log] = [0, 1, 2];
  const z = c.local(F32), iz = c.local(F32);
  forRows(c, rows, cols, (ro, ri) => {
    c.f32Const(0).set(z);
    forCols(c, ro, cols, (eo) => { c.get(z).get(eo).f32Load(4 * E).f32Add().set(z); });
    c.get(log);
    c.if_();
    c.get(ri).get(z).f32Store(4 * Z);
    c.else_();
    c.f32Const(1).get(z).f32Div().set(iz);
    forCols(c, ro, cols, (eo) => { c.get(eo).get(eo).f32Load(4 * E).get(iz).f32Mul().f32Store(4 * O); });
    c.end();
  });
}

/** logOutRows(rows, cols): O = X - (LZ[r] + SH[r]) */
function emitLogOutRows(c: Code): void {
  const [rows, cols] = [0, 1];
  const lz = c.local(F32);
  forRows(c, rows, cols, (ro, ri) => {
    c.get(ri).f32Load(4 * LZ).get(ri).f32Load(4 * SH).f32Add().set(lz);
    forCols(c, ro, cols, (eo) => { c.get(eo).get(eo).f32Load(4 * X).get(lz).f32Sub().f32Store(4 * O); });
  });
}

/** lsmVjpRows(rows, cols): with E = exp(y): O = G - E sum(G) per row (sum in row order) */
function emitLsmVjpRows(c: Code): void {
  const [rows, cols] = [0, 1];
  const t = c.local(F32);
  forRows(c, rows, cols, (ro) => {
    c.f32Const(0).set(t);
    forCols(c, ro, cols, (eo) => { c.get(t).get(eo).f32Load(4 * G).f32Add().set(t); });
    forCols(c, ro, cols, (eo) => { c.get(eo).get(eo).f32Load(4 * G).get(eo).f32Load(4 * E).get(t).f32Mul().f32Sub().f32Store(4 * O); });
  });
}

type Fn = (...a: number[]) => number;
interface Exports { expv: Fn; logv: Fn; shiftRows: Fn; finishRows: Fn; logOutRows: Fn; lsmVjpRows: Fn }
let wasm: { ex: Exports; f: Float32Array; i: Int32Array } | null | undefined;

function kernels(): typeof wasm {
  if (wasm !== undefined) return wasm;
  wasm = null;
  try {
    const pages = Math.ceil((FLOATS * 4 + 64) / 65536);
    const mb = new ModuleBuilder({ module: 'env', field: 'mem', initialPages: pages, maxPages: pages, shared: false });
    mb.func('expv', [I32, I32, I32, I32], [], emitExpMap);
    mb.func('logv', [I32, I32, I32], [], emitLogMap);
    mb.func('shiftRows', [I32, I32], [I32], emitShiftRows);
    mb.func('finishRows', [I32, I32, I32], [], emitFinishRows);
    mb.func('logOutRows', [I32, I32], [], emitLogOutRows);
    mb.func('lsmVjpRows', [I32, I32], [], emitLsmVjpRows);
    const bytes = mb.encode();
    if (!WebAssembly.validate(bytes)) return null;
    const mem = new WebAssembly.Memory({ initial: pages, maximum: pages });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem } });
    wasm = { ex: inst.exports as unknown as Exports, f: new Float32Array(mem.buffer), i: new Int32Array(mem.buffer) };
  } catch {
    wasm = null;
  }
  return wasm;
}

/** Whether the WebAssembly SIMD kernels are available here. */
export function softmaxWasmAvailable(): boolean { return kernels() !== null; }

const FLAG = FLOATS; // i32 index of expv's flag

/**
 * out = exp(x) over equal-length arrays. Returns the [start, end) ranges (chunks) that hold an input above 88.7
 * or NaN: the caller redoes those with Math.exp. null where WebAssembly SIMD is unavailable (nothing written).
 */
export function expF32(x: Float32Array, out: Float32Array): [number, number][] | null {
  const k = kernels();
  if (!k) return null;
  if (x.length !== out.length) throw new RangeError(`expF32: arrays must have equal lengths, got ${x.length} and ${out.length}`);
  const n = x.length, redo: [number, number][] = [];
  for (let o = 0; o < n; o += CHUNK) {
    const len = Math.min(CHUNK, n - o), e = o + len;
    k.f.set(x.subarray(o, e), X);
    k.ex.expv(4 * X, 4 * O, (len + 15) >> 4, 4 * FLAG); // lanes past len: stale, never copied back
    out.set(k.f.subarray(O, O + len), o);
    if (k.i[FLAG]) redo.push([o, e]);
  }
  return redo;
}

/**
 * Softmax (log = false) or log-softmax of each row of x (rows x cols, contiguous) into out. Returns the rows
 * whose maximum is not finite, which the caller computes itself (their outputs here are unspecified); null
 * where the kernels do not apply (no WebAssembly SIMD, or rows longer than 8192).
 */
export function softmaxRowsF32(x: Float32Array, out: Float32Array, rows: number, cols: number, log: boolean): number[] | null {
  const k = kernels();
  if (!k || cols > CHUNK || cols < 1) return null;
  const per = Math.floor(CHUNK / cols), special: number[] = [];
  for (let r0 = 0; r0 < rows; r0 += per) {
    const nr = Math.min(per, rows - r0), o = r0 * cols, n = nr * cols;
    k.f.set(x.subarray(o, o + n), X);
    const nBad = k.ex.shiftRows(nr, cols);
    for (let q = 0; q < nBad; q++) special.push(r0 + k.i[BAD + q]);
    k.ex.expv(4 * E, 4 * E, (n + 15) >> 4, 4 * FLAG);
    k.ex.finishRows(nr, cols, log ? 1 : 0);
    if (log) {
      k.ex.logv(4 * Z, 4 * LZ, (nr + 3) >> 2);
      k.ex.logOutRows(nr, cols);
    }
    out.set(k.f.subarray(O, O + n), o);
  }
  return special;
}

/**
 * The VJP of log-softmax per row: out = g - exp(y) sum(g), y the log-softmax output (rows x cols, contiguous).
 * false where the kernels do not apply, or y holds NaN or values above 88.7 (out is then unspecified: the caller
 * computes it).
 */
export function logSoftmaxVjpRowsF32(y: Float32Array, g: Float32Array, out: Float32Array, rows: number, cols: number): boolean {
  const k = kernels();
  if (!k || cols > CHUNK || cols < 1) return false;
  const per = Math.floor(CHUNK / cols);
  for (let r0 = 0; r0 < rows; r0 += per) {
    const nr = Math.min(per, rows - r0), o = r0 * cols, n = nr * cols;
    k.f.set(y.subarray(o, o + n), X);
    k.f.set(g.subarray(o, o + n), G);
    k.ex.expv(4 * X, 4 * E, (n + 15) >> 4, 4 * FLAG);
    if (k.i[FLAG]) return false; // y above 88.7 or NaN (not a log-softmax output of finite rows): the JS kernel redoes it all
    k.ex.lsmVjpRows(nr, cols);
    out.set(k.f.subarray(O, O + n), o);
  }
  return true;
}

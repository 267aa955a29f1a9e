// Binary cross-entropy with logits in WebAssembly SIMD (float32), elementwise on contiguous arrays of equal
// length (the backend decides where to use it):
//   bceLogitsF32(x, y, out):        out = max(x, 0) - x y + log1p(exp(-|x|))
//   bceLogitsGradF32(x, y, g, out): out = (sigmoid(x) - y) g,  sigmoid(x) = (x >= 0 ? 1 : t) / (1 + t), t = exp(-|x|)
// log1p(t) = log(u) - ((u - 1) - t) / u with u = fl(1 + t) (u - 1 is exact), so small t keeps its digits. The
// vector exp / log are ./vmath.ts's (<= 1.5 / 1 ulp). Arrays stream through a private wasm memory in chunks
// (as ./adam.ts does); a plain JS loop (float64 math, rounded on store) is the fallback where WebAssembly
// SIMD is unavailable. Accuracy against the float64 formula: test/cpu_bce_wasm.test.ts.
import { Code, ModuleBuilder, I32, V128 } from './emit.ts';
import { prepareExp, emitExpF32x4, prepareLog, emitLogF32x4, emitInterleaved } from './vmath.ts';

const CHUNK = 8192; // floats per array per chunk (4 arrays: 128 KiB); a multiple of 16
const ONES = 4 * CHUNK; // float offset of a chunk of ones: the upstream gradient when none is given

/** bce(x, y, out, n16) / bceGrad(x, y, g, out, n16) over n16 groups of 16 floats (4 vectors, interleaved) */
function emitBce(c: Code, grad: boolean): void {
  const [xp, yp, gp, op, n16] = grad ? [0, 1, 2, 3, 4] : [0, 1, -1, 2, 3];
  const EK = prepareExp(c);
  const LK = grad ? null : prepareLog(c);
  const off = c.local(I32), end = c.local(I32);
  const sign = c.local(V128), one = c.local(V128), zero = c.local(V128);
  const L = [0, 1, 2, 3].map(() => ({ x: c.local(V128), y: c.local(V128), t: c.local(V128), u: c.local(V128), lg: c.local(V128), r: c.local(V128) }));
  c.v128ConstI32x4(-0x80000000, -0x80000000, -0x80000000, -0x80000000).set(sign);
  c.v128ConstF32x4(1).set(one);
  c.v128Const0().set(zero);
  c.get(n16).i32Eqz().if_().return_().end();
  c.i32(0).set(off);
  c.get(n16).i32(64).i32Mul().set(end);
  c.loop();
  emitInterleaved(c, L.map(({ x, y, t, u, lg, r }, v) => () => {
    c.get(xp).get(off).i32Add().v128Load(16 * v).set(x);
    c.get(yp).get(off).i32Add().v128Load(16 * v).set(y);
    c.get(x).get(sign).v128Or().set(t); // -|x|
    emitExpF32x4(c, EK, t, t);
    if (grad) {
      // (sigmoid(x) - y) g
      c.get(one).get(t).get(x).get(zero).f32x4Ge().v128Bitselect();
      c.get(one).get(t).f32x4Add().f32x4Div();
      c.get(y).f32x4Sub();
      c.get(gp).get(off).i32Add().v128Load(16 * v).f32x4Mul().set(r);
    } else {
      c.get(one).get(t).f32x4Add().set(u);
      emitLogF32x4(c, LK!, u, lg);
      // max(x, 0) - x y + (log u - ((u - 1) - t) / u)
      c.get(x).get(zero).f32x4Pmax().get(x).get(y).f32x4Mul().f32x4Sub();
      c.get(lg).get(u).get(one).f32x4Sub().get(t).f32x4Sub().get(u).f32x4Div().f32x4Sub();
      c.f32x4Add().set(r);
    }
  }));
  for (let v = 0; v < 4; v++) c.get(op).get(off).i32Add().get(L[v].r).v128Store(16 * v);
  c.get(off).i32(64).i32Add().tee(off).get(end).i32Ne().brIf(0);
  c.end();
}

type Fn = (...a: number[]) => void;
let wasm: { ex: { bce: Fn; bceGrad: Fn }; f: Float32Array } | null | undefined;

function kernels(): typeof wasm {
  if (wasm !== undefined) return wasm;
  wasm = null;
  try {
    const pages = Math.ceil((5 * CHUNK * 4) / 65536); // x, y, g, out, and a chunk of ones (g absent)
    const mb = new ModuleBuilder({ module: 'env', field: 'mem', initialPages: pages, maxPages: pages, shared: false });
    mb.func('bce', [I32, I32, I32, I32], [], (c) => emitBce(c, false));
    mb.func('bceGrad', [I32, I32, I32, I32, I32], [], (c) => emitBce(c, true));
    const bytes = mb.encode();
    if (!WebAssembly.validate(bytes)) return null;
    const mem = new WebAssembly.Memory({ initial: pages, maximum: pages });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem } });
    wasm = { ex: inst.exports as unknown as { bce: Fn; bceGrad: Fn }, f: new Float32Array(mem.buffer) };
    wasm.f.fill(1, ONES, ONES + CHUNK);
  } catch {
    wasm = null;
  }
  return wasm;
}

/** Whether the WebAssembly SIMD kernels are in use (false: the JS loops). */
export function bceWasmAvailable(): boolean { return kernels() !== null; }

function checkLengths(name: string, arrays: Float32Array[]): number {
  const n = arrays[0].length;
  for (const a of arrays) if (a.length !== n) throw new RangeError(`${name}: arrays must have equal lengths, got ${arrays.map((b) => b.length).join(', ')}`);
  return n;
}

/** out[i] = max(x, 0) - x y + log1p(exp(-|x|)) (binary cross-entropy of logit x against target y). */
export function bceLogitsF32(x: Float32Array, y: Float32Array, out: Float32Array): void {
  const n = checkLengths('bceLogitsF32', [x, y, out]);
  const k = kernels();
  if (!k) {
    for (let i = 0; i < n; i++) { const a = x[i]; out[i] = Math.max(a, 0) - a * y[i] + Math.log1p(Math.exp(-Math.abs(a))); }
    return;
  }
  const f = k.f, xO = 0, yO = CHUNK, oO = 2 * CHUNK;
  for (let o = 0; o < n; o += CHUNK) {
    const len = Math.min(CHUNK, n - o), e = o + len;
    f.set(x.subarray(o, e), xO);
    f.set(y.subarray(o, e), yO);
    k.ex.bce(4 * xO, 4 * yO, 4 * oO, (len + 15) >> 4); // lanes past len: stale, never copied back
    out.set(f.subarray(oO, oO + len), o);
  }
}

/** out[i] = (sigmoid(x) - y) g: the gradient of bceLogitsF32 in x times the upstream gradient g (null: 1). */
export function bceLogitsGradF32(x: Float32Array, y: Float32Array, g: Float32Array | null, out: Float32Array): void {
  const n = checkLengths('bceLogitsGradF32', g ? [x, y, g, out] : [x, y, out]);
  const k = kernels();
  if (!k) {
    for (let i = 0; i < n; i++) {
      const a = x[i], t = Math.exp(-Math.abs(a));
      const d = (a >= 0 ? 1 : t) / (1 + t) - y[i];
      out[i] = g ? d * g[i] : d;
    }
    return;
  }
  const f = k.f, xO = 0, yO = CHUNK, oO = 3 * CHUNK;
  const gO = g ? 2 * CHUNK : ONES;
  for (let o = 0; o < n; o += CHUNK) {
    const len = Math.min(CHUNK, n - o), e = o + len;
    f.set(x.subarray(o, e), xO);
    f.set(y.subarray(o, e), yO);
    if (g) f.set(g.subarray(o, e), gO);
    k.ex.bceGrad(4 * xO, 4 * yO, 4 * gO, 4 * oO, (len + 15) >> 4);
    out.set(f.subarray(oO, oO + len), o);
  }
}

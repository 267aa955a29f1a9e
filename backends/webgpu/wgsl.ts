// WGSL generators for the WebGPU backend. Every kernel reads its scalar parameters from one
// 256-byte uniform block (bound with a dynamic offset into a per-batch ring), so a kernel's source
// depends only on its "shape class" (op, dtypes, rank, layout flags) and pipelines are shared.
//
// Elementwise expressions come from engine/elementwise.ts (toWgsl): the CPU compiles the same text.
import { UNARY, BINARY, toWgsl } from '../../engine/elementwise.ts';

export type WType = 'f32' | 'i32';
export const PARAM_WORDS = 64; // 64 u32 = 256 bytes
export const WG = 256; // invocations per workgroup for 1-D kernels

const HEADER = `struct Params { v: array<vec4<u32>, ${PARAM_WORDS / 4}> }
@group(0) @binding(0) var<uniform> prm: Params;
fn P(i: u32) -> u32 { return prm.v[i / 4u][i % 4u]; }
fn PF(i: u32) -> f32 { return bitcast<f32>(P(i)); }
// special values through private variables: constant expressions may not produce infinities or NaN
var<private> BITS_INF: u32 = 0x7f800000u;
var<private> BITS_NINF: u32 = 0xff800000u;
var<private> BITS_NAN: u32 = 0x7fc00000u;
`;

// JS ToInt32 on a float32 value: truncate toward zero, wrap modulo 2^32, NaN and infinities give 0.
const TO_I32 = `fn toI32(v: f32) -> i32 {
  if (abs(v) < 2147483648.0) { return i32(v); }
  if (!(abs(v) <= 3.4028234663852886e38)) { return 0; }
  let t = trunc(v);
  let m = t - floor(t / 4294967296.0) * 4294967296.0;
  return bitcast<i32>(u32(m));
}
`;

// Math.pow semantics where WGSL's pow (exp2(b * log2(a))) differs: x^0 = 1, negative bases with
// integer exponents, and 0^b.
const JS_POW = `fn jsPow(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  if (b != b || a != a) { return a + b; }
  if (b == 1.0) { return a; }
  if (b == 2.0) { return a * a; }
  if (b == -1.0) { return 1.0 / a; }
  let m = abs(a);
  var r: f32;
  if (m == 0.0) {
    if (b > 0.0) { r = 0.0; } else { r = bitcast<f32>(BITS_INF); }
  } else {
    r = exp2(b * log2(m));
  }
  if (a < 0.0 || (a == 0.0 && (bitcast<u32>(a) & 0x80000000u) != 0u)) {
    if (floor(b) != b) { if (a != 0.0) { return bitcast<f32>(BITS_NAN); } return r; }
    let h = b * 0.5;
    if (floor(h) != h && abs(b) < 16777216.0) { return -r; }
  }
  return r;
}
`;

// expm1 / log1p of the shared language in float32 (WGSL has neither): a Taylor polynomial of e^x - 1 for
// |x| < 0.5 (degree 9: truncation below 2^-28 relative), 2 atanh(x / (2 + x)) as an odd series in
// s = x / (2 + x) for |x| < 0.5 (|s| < 1/3, 9 terms), exp(x) - 1 and log(1 + x) elsewhere (no cancellation there).
const EXPM1_LOG1P = `fn gExpm1(x: f32) -> f32 {
  if (abs(x) >= 0.5) { return exp(x) - 1.0; }
  var p = 2.7557319e-6;
  p = p * x + 2.4801587e-5; p = p * x + 1.9841270e-4; p = p * x + 1.3888889e-3; p = p * x + 8.3333333e-3;
  p = p * x + 4.1666667e-2; p = p * x + 0.16666667; p = p * x + 0.5;
  return x + x * x * p;
}
fn gLog1p(x: f32) -> f32 {
  if (!(abs(x) < 0.5)) { return log(1.0 + x); }
  let s = x / (2.0 + x);
  let s2 = s * s;
  var q = 1.0 / 19.0;
  q = q * s2 + 1.0 / 17.0; q = q * s2 + 1.0 / 15.0; q = q * s2 + 1.0 / 13.0; q = q * s2 + 1.0 / 11.0;
  q = q * s2 + 1.0 / 9.0; q = q * s2 + 1.0 / 7.0; q = q * s2 + 0.2; q = q * s2 + 1.0 / 3.0;
  return 2.0 * s + 2.0 * s * s2 * q;
}
`;

const GID = `@builtin(global_invocation_id) g: vec3<u32>`;

// x / d for x < 2^21, d >= 1 (exact in float32): the float32 quotient is within 2.5 ULP (WGSL's bound
// for division; <= 0.625 below 2^21) of x / d, so its truncation is floor(x / d) or one off either way.
export const UDIV21 = `fn udiv21(x: u32, d: u32) -> u32 {
  var q = u32(max(f32(x) / f32(d), 0.0));
  if (q * d > x) { q = q - 1u; }
  if ((q + 1u) * d <= x) { q = q + 1u; }
  return q;
}
`;

function binding(i: number, name: string, ty: string, write: boolean): string {
  return `@group(0) @binding(${i}) var<storage, ${write ? 'read_write' : 'read'}> ${name}: array<${ty}>;\n`;
}

/** Expression text -> WGSL with JS semantics where WGSL's builtins differ. */
function wgslExpr(expr: string): string {
  return toWgsl(expr).replace(/\bpow\(/g, 'jsPow(').replace(/\bexpm1\(/g, 'gExpm1(').replace(/\blog1p\(/g, 'gLog1p(');
}

/**
 * True when an expression can be evaluated on i32 operands directly (so int32 tensors do not go
 * through float32 and lose precision): only + - * max min abs sign and comparisons, whose only
 * float literals are the 0.0 / 1.0 branches of a select.
 */
export function intSafe(expr: string): { ok: boolean; result: WType } {
  const hasSelect = expr.includes('select(0.0, 1.0, ');
  const rest = expr.replaceAll('select(0.0, 1.0, ', '(');
  const ok = !/[./]/.test(rest) && rest.replace(/\b(a|b|x|max|min|abs|sign)\b/g, '').replace(/[\s+\-*(),<>=!]/g, '') === '';
  return { ok, result: hasSelect ? 'f32' : 'i32' };
}

export function unaryExpr(op: string): string {
  if (op === 'bitsToUniform') return 'bitsToUniform';
  const e = (UNARY as Record<string, string>)[op];
  if (e === undefined) throw new Error(`webgpu.unary: unknown op '${op}'`);
  return e;
}
export function binaryExpr(op: string): string {
  const e = (BINARY as Record<string, string>)[op];
  if (e === undefined) throw new Error(`webgpu.binary: unknown op '${op}'`);
  return e;
}

function conv(v: string, from: WType, to: WType): string {
  if (from === to) return v;
  return to === 'f32' ? `f32(${v})` : `toI32(${v})`;
}

/**
 * Strided elementwise kernel over a (collapsed) shape of rank R.
 * Params: [0] n, [1] row stride of the 2-D dispatch, [2..2+R) shape, then per input: offset, R strides,
 * then (mode 'into') the destination's offset and R strides.
 * expr: 'where' | 'bitsToUniform' | an expression of the shared language over a, b (binary) or x.
 */
export function elementwiseSource(expr: string, names: string[], ins: WType[], out: WType, rank: number, into: boolean, tex: boolean[] = [], vec = false,
  flat: ('t' | 's' | 'g')[] | null = null, fdiv = false): string {
  const R = rank;
  let s = HEADER + TO_I32;
  // index -> coordinates: integer division by the (runtime) axis sizes. Vector integer division has no
  // SIMD instruction on x86, so llvmpipe runs it lane by lane; fdiv (every index below 2^21) divides in
  // float32 and corrects the quotient instead (see UDIV21): ~5% faster broadcast ops on llvmpipe.
  if (fdiv) s += UDIV21;
  const split = fdiv ? 'let qq = udiv21(rem, sz); let c = rem - qq * sz; rem = qq;' : 'let c = rem % sz; rem = rem / sz;';
  let mode: 'int' | 'float' = 'float';
  let resultType: WType = 'f32';
  let body: string;
  if (expr === 'where') {
    // cond, a, b
    const cond = ins[0] === 'f32' ? 'c != 0.0' : 'c != 0';
    if (ins[1] === out && ins[2] === out) body = `select(b, a, ${cond})`;
    else body = `select(${conv('b', ins[2], 'f32')}, ${conv('a', ins[1], 'f32')}, ${cond})`;
    resultType = ins[1] === out && ins[2] === out ? out : 'f32';
    mode = 'int'; // operands loaded in their own types
  } else if (expr === 'bitsToUniform') {
    const bits = ins[0] === 'i32' ? 'bitcast<u32>(x)' : 'bitcast<u32>(toI32(x))';
    body = `(f32(${bits} >> 9u) + 0.5) * 1.1920928955078125e-7`;
    mode = 'int';
  } else {
    const is = intSafe(expr);
    if (is.ok && ins.every((t) => t === 'i32')) {
      mode = 'int';
      resultType = is.result;
    } else if (expr === 'x' && ins[0] === 'f32') {
      mode = 'int'; // identity: no conversion
      resultType = 'f32';
    }
    body = wgslExpr(expr);
    if (body.includes('jsPow(')) s += JS_POW;
    if (/\bg(Expm1|Log1p)\(/.test(body)) s += EXPM1_LOG1P;
  }
  // tex[j]: input j is read from a linear rgba32float texture (float32 only; see matmulUboSource)
  ins.forEach((t, j) => {
    s += tex[j] ? `@group(0) @binding(${j + 1}) var IN${j}: texture_2d<f32>;\n` : binding(j + 1, `IN${j}`, t, false);
  });
  if (tex.some((t) => t)) s += `fn ldT(T: texture_2d<f32>, q: u32) -> f32 { let t = q / 4u; return textureLoad(T, vec2<u32>(t % ${LIN_W}u, t / ${LIN_W}u), 0)[q % 4u]; }\n`;
  // vec4 (not 'into'): each invocation computes 4 consecutive elements and stores them as one vec4
  // (whole-vec4 stores are several times faster than scalar ones on llvmpipe); elements past n are
  // computed from element n-1 and land in the buffer's padding (slabs are multiples of 16 bytes).
  const vec4 = vec && !into;
  s += binding(ins.length + 1, 'OUT', vec4 ? `vec4<${out}>` : out, true);
  const nv = ins.length + (into ? 1 : 0);
  const base = (v: number) => 2 + R + v * (1 + R);
  const element = (iv: string, res: string, ind: string) => {
    let e = `${ind}var rem = ${iv};\n`;
    for (let v = 0; v < nv; v++) e += `${ind}var q${v} = P(${base(v)}u);\n`;
    for (let d = R - 1; d >= 0; d--) {
      e += d > 0 ? `${ind}{ let sz = P(${2 + d}u); ${split}\n` : `${ind}{ let c = rem;\n`;
      for (let v = 0; v < nv; v++) e += `${ind}  q${v} += c * P(${base(v) + 1 + d}u);\n`;
      e += `${ind}}\n`;
    }
    names.forEach((nm, j) => {
      const raw = tex[j] ? `ldT(IN${j}, q${j})` : `IN${j}[q${j}]`;
      e += `${ind}let ${nm} = ${mode === 'int' ? raw : conv(raw, ins[j], 'f32')};\n`;
    });
    e += `${ind}${res} = ${conv(`(${body})`, resultType, out)};\n`;
    return e;
  };
  if (vec4) {
    // per input: 't' a contiguous texture run starting at a multiple of 4 (one texel per invocation),
    // 's' one broadcast element (loaded once), 'g' anything else (indexed per element)
    const fl = flat ?? ins.map(() => 'g' as const);
    s += `@compute @workgroup_size(${WG}) fn main(${GID}) {
  let t = g.x + g.y * P(1u);
  let n = P(0u);
  if (t * 4u >= n) { return; }
  var r: vec4<${out}>;
`;
    names.forEach((nm, j) => {
      const off = `P(${base(j)}u)`;
      if (fl[j] === 't') s += `  let V${j} = textureLoad(IN${j}, vec2<u32>((${off} / 4u + t) % ${LIN_W}u, (${off} / 4u + t) / ${LIN_W}u), 0);\n`;
      else if (fl[j] === 's') {
        const raw = tex[j] ? `ldT(IN${j}, ${off})` : `IN${j}[${off}]`;
        s += `  let S${j} = ${mode === 'int' ? raw : conv(raw, ins[j], 'f32')};\n`;
      }
    });
    const gen = names.map((_, j) => j).filter((j) => fl[j] === 'g');
    for (let jj = 0; jj < 4; jj++) {
      s += `  {\n`;
      if (gen.length) {
        s += `    var rem = min(t * 4u + ${jj}u, n - 1u);\n`;
        for (const v of gen) s += `    var q${v} = P(${base(v)}u);\n`;
        for (let d = R - 1; d >= 0; d--) {
          s += d > 0 ? `    { let sz = P(${2 + d}u); ${split}\n` : `    { let c = rem;\n`;
          for (const v of gen) s += `      q${v} += c * P(${base(v) + 1 + d}u);\n`;
          s += `    }\n`;
        }
      }
      names.forEach((nm, j) => {
        let v: string;
        if (fl[j] === 't') v = `V${j}[${jj}]`;
        else if (fl[j] === 's') v = `S${j}`;
        else { const raw = tex[j] ? `ldT(IN${j}, q${j})` : `IN${j}[q${j}]`; v = mode === 'int' ? raw : conv(raw, ins[j], 'f32'); }
        s += `    let ${nm} = ${v};\n`;
      });
      s += `    r[${jj}] = ${conv(`(${body})`, resultType, out)};\n  }\n`;
    }
    s += `  OUT[t] = r;\n}\n`;
    return s;
  }
  s += `@compute @workgroup_size(${WG}) fn main(${GID}) {
  let i = g.x + g.y * P(1u);
  if (i >= P(0u)) { return; }
`;
  const dst = into ? `q${ins.length}` : 'i';
  s += element('i', `OUT[${dst}]`, '  ');
  s += `}\n`;
  return s;
}

/** Fill: OUT[i] = bits (raw 32-bit pattern). Params: [0] n, [1] row stride, [2] bits. */
export function fillSource(): string {
  return HEADER + binding(1, 'OUT', 'u32', true) + `@compute @workgroup_size(${WG}) fn main(${GID}) {
  let i = g.x + g.y * P(1u);
  if (i >= P(0u)) { return; }
  OUT[i] = P(2u);
}
`;
}

/**
 * reduceLast over chunks: thread t handles row t / chunks, columns [c*len, min(cols, (c+1)*len)).
 * Params: [0] rows*chunks, [1] row stride, [2] cols, [3] chunks, [4] len.
 */
export function reduceSource(op: 'sum' | 'max', t: WType, tex = false): string {
  const init = op === 'sum' ? (t === 'f32' ? '0.0' : '0') : t === 'f32' ? 'bitcast<f32>(BITS_NINF)' : 'i32(-2147483647 - 1)';
  const step = op === 'sum'
    ? 'acc = acc + v;'
    : t === 'f32' ? 'if (v > acc || v != v) { acc = v; if (acc != acc) { break; } }' : 'acc = max(acc, v);';
  // tex (float32, software adapters): X read from a linear texture (see matmulUboSource)
  const x = tex
    ? `@group(0) @binding(1) var X: texture_2d<f32>;\nfn ldX(q: u32) -> f32 { let t = q / 4u; return textureLoad(X, vec2<u32>(t % ${LIN_W}u, t / ${LIN_W}u), 0)[q % 4u]; }\n`
    : binding(1, 'XB', t, false) + `fn ldX(q: u32) -> ${t} { return XB[q]; }\n`;
  return HEADER + x + binding(2, 'OUT', t, true) + `@compute @workgroup_size(${WG}) fn main(${GID}) {
  let i = g.x + g.y * P(1u);
  if (i >= P(0u)) { return; }
  let cols = P(2u); let chunks = P(3u); let len = P(4u);
  let r = i / chunks; let c = i % chunks;
  let start = r * cols + c * len;
  let stop = r * cols + min(cols, (c + 1u) * len);
  var acc: ${t} = ${init};
  for (var j = start; j < stop; j = j + 1u) { let v = ldX(j); ${step} }
  OUT[i] = acc;
}
`;
}

/** argmaxLast: first index of the maximum. Params: [0] rows, [1] row stride, [2] cols. */
export function argmaxSource(t: WType): string {
  return HEADER + binding(1, 'X', t, false) + binding(2, 'OUT', 'i32', true) + `@compute @workgroup_size(${WG}) fn main(${GID}) {
  let r = g.x + g.y * P(1u);
  if (r >= P(0u)) { return; }
  let cols = P(2u);
  let o = r * cols;
  var best = 0u;
  var m = X[o];
  for (var j = 1u; j < cols; j = j + 1u) { let v = X[o + j]; if (v > m) { m = v; best = j; } }
  OUT[r] = i32(best);
}
`;
}

/** gather: params [0] total, [1] row stride, [2] n, [3] m, [4] inner. */
export function gatherSource(t: WType): string {
  return HEADER + binding(1, 'X', t, false) + binding(2, 'I', 'i32', false) + binding(3, 'OUT', t, true) + `@compute @workgroup_size(${WG}) fn main(${GID}) {
  let e = g.x + g.y * P(1u);
  if (e >= P(0u)) { return; }
  let n = P(2u); let m = P(3u); let inner = P(4u);
  let i = e % inner; let oj = e / inner; let o = oj / m;
  let t = u32(clamp(I[e], 0, i32(n) - 1));
  OUT[e] = X[(o * n + t) * inner + i];
}
`;
}

/** scatterAdd as a gather over m (no float atomics): params [0] total = outer*n*inner, [1] row stride, [2] n, [3] m, [4] inner. */
export function scatterAddSource(t: WType): string {
  const zero = t === 'f32' ? '0.0' : '0';
  return HEADER + binding(1, 'G', t, false) + binding(2, 'I', 'i32', false) + binding(3, 'OUT', t, true) + `@compute @workgroup_size(${WG}) fn main(${GID}) {
  let e = g.x + g.y * P(1u);
  if (e >= P(0u)) { return; }
  let n = P(2u); let m = P(3u); let inner = P(4u);
  let i = e % inner; let ot = e / inner; let t = i32(ot % n); let o = ot / n;
  var acc: ${t} = ${zero};
  var q = o * m * inner + i;
  for (var j = 0u; j < m; j = j + 1u) {
    if (I[q] == t) { acc = acc + G[q]; }
    q = q + inner;
  }
  OUT[e] = acc;
}
`;
}

/**
 * Philox4x32-10 as in engine/philox.ts: thread b computes block (counter + b) split into (lo, hi, 0, 0)
 * under key (k0, k1) and writes words 4b..4b+3 that lie below size.
 * Params: [0] blocks, [1] row stride, [2] size, [3] k0, [4] k1, [5] counter lo, [6] counter hi.
 */
export function philoxSource(): string {
  return HEADER + binding(1, 'OUT', 'u32', true) + `fn mulhi(a: u32, b: u32) -> u32 {
  let al = a & 0xffffu; let ah = a >> 16u; let bl = b & 0xffffu; let bh = b >> 16u;
  let ll = al * bl; let lh = al * bh; let hl = ah * bl; let hh = ah * bh;
  let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
}
@compute @workgroup_size(${WG}) fn main(${GID}) {
  let b = g.x + g.y * P(1u);
  if (b >= P(0u)) { return; }
  let size = P(2u);
  var k0 = P(3u); var k1 = P(4u);
  let lo = P(5u) + b;
  var c0 = lo; var c1 = P(6u) + select(0u, 1u, lo < b); var c2 = 0u; var c3 = 0u;
  for (var r = 0; r < 10; r = r + 1) {
    let hi0 = mulhi(0xd2511f53u, c0); let lo0 = 0xd2511f53u * c0;
    let hi1 = mulhi(0xcd9e8d57u, c2); let lo1 = 0xcd9e8d57u * c2;
    let n0 = hi1 ^ c1 ^ k0; let n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 = k0 + 0x9e3779b9u; k1 = k1 + 0xbb67ae85u;
  }
  let o = b * 4u;
  if (o + 3u < size) { OUT[o] = c0; OUT[o + 1u] = c1; OUT[o + 2u] = c2; OUT[o + 3u] = c3; return; }
  OUT[o] = c0;
  if (o + 1u < size) { OUT[o + 1u] = c1; }
  if (o + 2u < size) { OUT[o + 2u] = c2; }
}
`;
}

/**
 * Fused Adam (PyTorch rule). Params: [0] n, [1] row stride, [2] beta1, [3] 1-beta1, [4] beta2, [5] 1-beta2,
 * [6] eps, [7] weight decay, [8] lr / bc1, [9] sqrt(bc2)   (floats as bits)
 */
export function adamSource(): string {
  return HEADER + binding(1, 'PV', 'f32', true) + binding(2, 'GV', 'f32', false) + binding(3, 'MV', 'f32', true) + binding(4, 'VV', 'f32', true) + `@compute @workgroup_size(${WG}) fn main(${GID}) {
  let i = g.x + g.y * P(1u);
  if (i >= P(0u)) { return; }
  let p = PV[i];
  var gi = GV[i];
  let wd = PF(7u);
  if (wd != 0.0) { gi = gi + wd * p; }
  let mi = PF(2u) * MV[i] + PF(3u) * gi;
  let vi = PF(4u) * VV[i] + PF(5u) * gi * gi;
  MV[i] = mi; VV[i] = vi;
  PV[i] = p - PF(8u) * mi / (sqrt(vi) / PF(9u) + PF(6u));
}
`;
}

// ------------------------------------------------------------------ matmul
export interface MatmulVariant {
  transA: boolean;
  transB: boolean;
  vecA: boolean; // A bound as array<vec4<f32>> and read 4 at a time
  vecB: boolean;
  tm: number; // outputs per invocation (rows), multiple of 4
  tn: number; // outputs per invocation (cols), multiple of 4
  wgx: number;
  wgy: number;
}

/**
 * Register-blocked matmul without workgroup memory (fast where barriers are expensive, e.g. llvmpipe):
 * each invocation computes a tm x tn tile of C, walking k four at a time with vec4 loads where the
 * layout allows (A along k or, transposed, along m; B along n or, transposed, along k).
 * Out-of-range rows/cols are clamped on load and skipped on store.
 * Params: [0] m, [1] n, [2] k, [3] aBatchStride, [4] bBatchStride.
 * Dispatch: x = ceil(n / (tn*wgx)), y = ceil(m / (tm*wgy)), z = batch.
 */
export function matmulRegSource(v: MatmulVariant): string {
  const { tm, tn, transA, transB, vecA, vecB } = v;
  let s = HEADER;
  s += `@group(0) @binding(1) var<storage, read> A: array<${vecA ? 'vec4<f32>' : 'f32'}>;\n`;
  s += `@group(0) @binding(2) var<storage, read> B: array<${vecB ? 'vec4<f32>' : 'f32'}>;\n`;
  s += binding(3, 'C', 'f32', true);
  // scalar element access (used by the scalar paths and the k tail)
  const aAt = (e: string) => (vecA ? `A[(${e}) / 4u][(${e}) % 4u]` : `A[${e}]`);
  const bAt = (e: string) => (vecB ? `B[(${e}) / 4u][(${e}) % 4u]` : `B[${e}]`);
  s += `@compute @workgroup_size(${v.wgx}, ${v.wgy}) fn main(${GID}) {
  let m = P(0u); let n = P(1u); let k = P(2u);
  let col0 = g.x * ${tn}u; let row0 = g.y * ${tm}u; let bt = g.z;
  if (row0 >= m || col0 >= n) { return; }
  let aBase = bt * P(3u); let bBase = bt * P(4u);
`;
  for (let r = 0; r < tm; r++) s += `  let ra${r} = min(row0 + ${r}u, m - 1u);\n`;
  for (let c = 0; c < tn; c++) s += `  let cb${c} = min(col0 + ${c}u, n - 1u);\n`;
  if (transA && vecA) for (let q = 0; q < tm / 4; q++) s += `  let rg${q} = min(row0 + ${4 * q}u, m - 4u);\n`;
  if (!transB && vecB) for (let q = 0; q < tn / 4; q++) s += `  let cg${q} = min(col0 + ${4 * q}u, n - 4u);\n`;
  for (let r = 0; r < tm; r++) for (let h = 0; h < tn / 4; h++) s += `  var acc${r}_${h} = vec4<f32>(0.0);\n`;
  // ---- main loop, 4 k at a time
  s += `  let k4 = k - k % 4u;\n  for (var p = 0u; p < k4; p = p + 4u) {\n`;
  // a{r}_{kk}
  if (!transA) {
    for (let r = 0; r < tm; r++) {
      if (vecA) s += `    let av${r} = A[(aBase + ra${r} * k + p) / 4u];\n`;
      for (let kk = 0; kk < 4; kk++) s += `    let a${r}_${kk} = ${vecA ? `av${r}[${kk}]` : aAt(`aBase + ra${r} * k + p + ${kk}u`)};\n`;
    }
  } else {
    for (let kk = 0; kk < 4; kk++) {
      if (vecA) {
        for (let q = 0; q < tm / 4; q++) {
          s += `    let av${q}_${kk} = A[(aBase + (p + ${kk}u) * m + rg${q}) / 4u];\n`;
          // rows beyond m were clamped to the last group: any value works, they are not stored
          for (let c = 0; c < 4; c++) s += `    let a${4 * q + c}_${kk} = av${q}_${kk}[${c}];\n`;
        }
      } else {
        for (let r = 0; r < tm; r++) s += `    let a${r}_${kk} = ${aAt(`aBase + (p + ${kk}u) * m + ra${r}`)};\n`;
      }
    }
  }
  // b vectors bv{kk}_{h} = B[p+kk, col0+4h .. +3]
  if (!transB) {
    for (let kk = 0; kk < 4; kk++) {
      for (let h = 0; h < tn / 4; h++) {
        if (vecB) s += `    let bv${kk}_${h} = B[(bBase + (p + ${kk}u) * n + cg${h}) / 4u];\n`;
        else s += `    let bv${kk}_${h} = vec4<f32>(${[0, 1, 2, 3].map((c) => bAt(`bBase + (p + ${kk}u) * n + cb${4 * h + c}`)).join(', ')});\n`;
      }
    }
  } else {
    for (let c = 0; c < tn; c++) {
      if (vecB) s += `    let bt${c} = B[(bBase + cb${c} * k + p) / 4u];\n`;
      else s += `    let bt${c} = vec4<f32>(${[0, 1, 2, 3].map((kk) => bAt(`bBase + cb${c} * k + p + ${kk}u`)).join(', ')});\n`;
    }
    for (let kk = 0; kk < 4; kk++) {
      for (let h = 0; h < tn / 4; h++) s += `    let bv${kk}_${h} = vec4<f32>(${[0, 1, 2, 3].map((c) => `bt${4 * h + c}[${kk}]`).join(', ')});\n`;
    }
  }
  for (let kk = 0; kk < 4; kk++) {
    for (let r = 0; r < tm; r++) for (let h = 0; h < tn / 4; h++) s += `    acc${r}_${h} = fma(vec4<f32>(a${r}_${kk}), bv${kk}_${h}, acc${r}_${h});\n`;
  }
  s += `  }\n`;
  // ---- k tail, one at a time with scalar loads
  s += `  for (var p = k4; p < k; p = p + 1u) {\n`;
  for (let r = 0; r < tm; r++) s += `    let a${r} = ${aAt(transA ? `aBase + p * m + ra${r}` : `aBase + ra${r} * k + p`)};\n`;
  for (let h = 0; h < tn / 4; h++) {
    s += `    let bv${h} = vec4<f32>(${[0, 1, 2, 3].map((c) => bAt(transB ? `bBase + cb${4 * h + c} * k + p` : `bBase + p * n + cb${4 * h + c}`)).join(', ')});\n`;
  }
  for (let r = 0; r < tm; r++) for (let h = 0; h < tn / 4; h++) s += `    acc${r}_${h} = fma(vec4<f32>(a${r}), bv${h}, acc${r}_${h});\n`;
  s += `  }\n`;
  // ---- store
  s += `  let cBase = bt * m * n;\n`;
  for (let r = 0; r < tm; r++) {
    s += `  if (row0 + ${r}u < m) {\n    let o = cBase + (row0 + ${r}u) * n + col0;\n`;
    for (let h = 0; h < tn / 4; h++) {
      for (let c = 0; c < 4; c++) {
        const j = 4 * h + c;
        s += `    if (col0 + ${j}u < n) { C[o + ${j}u] = acc${r}_${h}[${c}]; }\n`;
      }
    }
    s += `  }\n`;
  }
  s += `}\n`;
  return s;
}

/**
 * Shared-memory tiled matmul for real GPUs: a 16x16 workgroup computes a 64x64 tile of C, each
 * invocation 4x4 outputs; k advances 16 at a time through workgroup memory.
 * Params and dispatch as matmulRegSource with tm = tn = 4, wgx = wgy = 16.
 */
export function matmulTiledSource(transA: boolean, transB: boolean): string {
  const T = 64, BK = 16;
  const aIdx = transA ? 'aBase + kk * m + row' : 'aBase + row * k + kk';
  const bIdx = transB ? 'bBase + col * k + kk' : 'bBase + kk * n + col';
  let s = HEADER + binding(1, 'A', 'f32', false) + binding(2, 'B', 'f32', false) + binding(3, 'C', 'f32', true);
  s += `var<workgroup> As: array<f32, ${T * BK}>;
var<workgroup> Bs: array<f32, ${T * BK}>;
@compute @workgroup_size(16, 16) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let m = P(0u); let n = P(1u); let k = P(2u);
  let bt = wid.z;
  let aBase = bt * P(3u); let bBase = bt * P(4u);
  let tr0 = wid.y * ${T}u; let tc0 = wid.x * ${T}u;
  let t = lid.y * 16u + lid.x;
  var acc: array<array<f32, 4>, 4>;
  for (var i = 0u; i < 4u; i = i + 1u) { for (var j = 0u; j < 4u; j = j + 1u) { acc[i][j] = 0.0; } }
  for (var k0 = 0u; k0 < k; k0 = k0 + ${BK}u) {
    for (var e = t; e < ${T * BK}u; e = e + 256u) {
      // As[r * BK + c]: row r of the tile, k offset c;  Bs[c * T + j]
      let r = e / ${BK}u; let c = e % ${BK}u;
      let row = tr0 + r; let kk = k0 + c;
      var va = 0.0;
      if (row < m && kk < k) { va = A[${aIdx}]; }
      As[r * ${BK}u + c] = va;
      let kb = e / ${T}u; let j = e % ${T}u;
      let col = tc0 + j; let kk2 = k0 + kb;
      var vb = 0.0;
      if (col < n && kk2 < k) { let kk = kk2; vb = B[${bIdx}]; }
      Bs[kb * ${T}u + j] = vb;
    }
    workgroupBarrier();
    for (var c = 0u; c < ${BK}u; c = c + 1u) {
      var av: array<f32, 4>; var bv: array<f32, 4>;
      for (var i = 0u; i < 4u; i = i + 1u) { av[i] = As[(lid.y * 4u + i) * ${BK}u + c]; bv[i] = Bs[c * ${T}u + lid.x * 4u + i]; }
      for (var i = 0u; i < 4u; i = i + 1u) { for (var j = 0u; j < 4u; j = j + 1u) { acc[i][j] = fma(av[i], bv[j], acc[i][j]); } }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i = i + 1u) {
    let row = tr0 + lid.y * 4u + i;
    if (row >= m) { continue; }
    for (var j = 0u; j < 4u; j = j + 1u) {
      let col = tc0 + lid.x * 4u + j;
      if (col < n) { C[(bt * m + row) * n + col] = acc[i][j]; }
    }
  }
}
`;
  return s;
}

/**
 * Pack one matmul operand into an rgba32float storage texture (software adapters: texel fetches are
 * vectorised there, storage-buffer loads at divergent addresses are not). The operand is viewed per
 * batch as (R, Cc) — stored row-major, or column-major when `trans` — and texel (x, b*Rpad + r) holds
 * columns 4x..4x+3 of row r, zero beyond Cc and for rows R..Rpad-1.
 * Params: [0] texels, [1] row stride, [2] R, [3] Cc, [4] W (texels per row), [5] batch stride, [6] Rpad.
 */
export function packSource(trans: boolean): string {
  const at = trans ? '(c * R + r)' : '(r * Cc + c)';
  return HEADER + binding(1, 'X', 'f32', false) + `@group(0) @binding(2) var T: texture_storage_2d<rgba32float, write>;
@compute @workgroup_size(${WG}) fn main(${GID}) {
  let e = g.x + g.y * P(1u);
  if (e >= P(0u)) { return; }
  let R = P(2u); let Cc = P(3u); let W = P(4u); let Rpad = P(6u);
  let x = e % W; let y = e / W;
  let b = y / Rpad; let r = y % Rpad;
  let base = b * P(5u);
  var v = vec4<f32>(0.0);
  if (r < R) {
    for (var j = 0u; j < 4u; j = j + 1u) {
      let c = x * 4u + j;
      if (c < Cc) { v[j] = X[base + ${at}]; }
    }
  }
  textureStore(T, vec2<u32>(x, y), v);
}
`;
}

/**
 * Matmul over packed operands (see packSource): A texture (ceil(k/4) x m per batch), B texture
 * (ceil(n/4) x roundup4(k) per batch). Each invocation computes tm rows x tn cols (tn multiple of 4).
 * Params: [0] m, [1] n, [2] k, [3] A rows per batch (0 = broadcast), [4] B rows per batch (0 = broadcast).
 * Dispatch: x = ceil(n / (tn*wg)), y = ceil(m / (tm*wg)), z = batch.
 */
export function matmulTexSource(tm: number, tn: number, wg: number): string {
  const hq = tn / 4;
  let s = HEADER + `@group(0) @binding(1) var A: texture_2d<f32>;
@group(0) @binding(2) var B: texture_2d<f32>;
` + binding(3, 'C', 'f32', true) + `@compute @workgroup_size(${wg}, ${wg}) fn main(${GID}) {
  let m = P(0u); let n = P(1u); let k = P(2u);
  let row0 = g.y * ${tm}u; let cq0 = g.x * ${hq}u; let bt = g.z;
  if (row0 >= m || cq0 * 4u >= n) { return; }
  let aRow = bt * P(3u); let bRow = bt * P(4u);
  let wn = (n + 3u) / 4u;
  let kq = (k + 3u) / 4u;
`;
  for (let r = 0; r < tm; r++) s += `  let ra${r} = aRow + min(row0 + ${r}u, m - 1u);\n`;
  for (let h = 0; h < hq; h++) s += `  let cb${h} = min(cq0 + ${h}u, wn - 1u);\n`;
  for (let r = 0; r < tm; r++) for (let h = 0; h < hq; h++) s += `  var acc${r}_${h} = vec4<f32>(0.0);\n`;
  s += `  for (var q = 0u; q < kq; q = q + 1u) {\n    let p = bRow + q * 4u;\n`;
  for (let r = 0; r < tm; r++) s += `    let a${r} = textureLoad(A, vec2<u32>(q, ra${r}), 0);\n`;
  for (let kk = 0; kk < 4; kk++) for (let h = 0; h < hq; h++) s += `    let b${kk}_${h} = textureLoad(B, vec2<u32>(cb${h}, p + ${kk}u), 0);\n`;
  for (let kk = 0; kk < 4; kk++) for (let r = 0; r < tm; r++) for (let h = 0; h < hq; h++) {
    s += `    acc${r}_${h} = fma(vec4<f32>(a${r}[${kk}]), b${kk}_${h}, acc${r}_${h});\n`;
  }
  s += `  }\n  let cBase = bt * m * n;\n`;
  for (let r = 0; r < tm; r++) {
    s += `  if (row0 + ${r}u < m) {\n    let o = cBase + (row0 + ${r}u) * n + cq0 * 4u;\n`;
    for (let h = 0; h < hq; h++) for (let c = 0; c < 4; c++) {
      const j = 4 * h + c;
      s += `    if (cq0 * 4u + ${j}u < n) { C[o + ${j}u] = acc${r}_${h}[${c}]; }\n`;
    }
    s += `  }\n`;
  }
  return s + `}\n`;
}

/**
 * Row-pack one matmul operand for matmulUboSource: the operand viewed per batch as (R, Cc) — row-major,
 * or column-major when `trans` — is written row-major with Cp (multiple of 4) floats per row, zero in
 * columns Cc..Cp-1; batch b starts at b * outStride.
 * Params: [0] total = batches*R*Cp, [1] row stride, [2] R, [3] Cc, [4] Cp, [5] in batch stride, [6] out batch stride.
 */
export function packRowsSource(trans: boolean): string {
  const at = trans ? '(c * R + r)' : '(r * Cc + c)';
  return HEADER + binding(1, 'X', 'f32', false) + binding(2, 'OUT', 'f32', true) + `@compute @workgroup_size(${WG}) fn main(${GID}) {
  let e = g.x + g.y * P(1u);
  if (e >= P(0u)) { return; }
  let R = P(2u); let Cc = P(3u); let Cp = P(4u);
  let c = e % Cp; let br = e / Cp; let r = br % R; let b = br / R;
  var v = 0.0;
  if (c < Cc) { v = X[b * P(5u) + ${at}]; }
  OUT[b * P(6u) + r * Cp + c] = v;
}
`;
}

/**
 * packRowsSource for software adapters: X read through a linear texture (see matmulUboSource), and
 * each invocation writes one vec4 of the output (4 consecutive columns of a row; Cp, the output
 * batch stride and hence every row start are multiples of 4).
 * Params: [0] total = batches*R*Cp/4, [1] row stride, [2] R, [3] Cc, [4] Cp, [5] in batch stride, [6] out batch stride.
 */
export function packRowsTexSource(trans: boolean): string {
  const at = trans ? '(c * R + r)' : '(r * Cc + c)';
  return HEADER + `@group(0) @binding(1) var X: texture_2d<f32>;
fn ldX(q: u32) -> f32 { let t = q / 4u; return textureLoad(X, vec2<u32>(t % ${LIN_W}u, t / ${LIN_W}u), 0)[q % 4u]; }
` + binding(2, 'OUT', 'vec4<f32>', true) + `@compute @workgroup_size(${WG}) fn main(${GID}) {
  let e = g.x + g.y * P(1u);
  if (e >= P(0u)) { return; }
  let R = P(2u); let Cc = P(3u); let W = P(4u) / 4u;
  let cq = e % W; let br = e / W; let r = br % R; let b = br / R;
  let base = b * P(5u);
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    let c = cq * 4u + j;
    if (c < Cc) { v[j] = ldX(base + ${at}); }
  }
  OUT[(b * P(6u) + r * P(4u)) / 4u + cq] = v;
}
`;
}

/** Epilogue applied to each matmul output: optional bias (length n, added to every row) then activation. */
export type MatmulAct = 'none' | 'relu';

/** Texels per row of the "linear" textures matmulUboSource reads B from (texel t at (t % LIN_W, t / LIN_W)). */
export const LIN_W = 256;

/**
 * Matmul for software adapters (llvmpipe), where storage-buffer loads at per-invocation addresses
 * are scalar loops and barriers are slow, but uniform-buffer loads at workgroup-uniform addresses
 * are single broadcasts and texel fetches are vectorised:
 *  - A (rows of kp = 4*ceil(k/4) floats, zero-padded; see packRowsSource) is bound as a uniform block of
 *    R rows (at most 64 KiB; one dispatch per chunk of rows, dynamic offset). Row indices derive from
 *    workgroup_id only, so every load of A is uniform across the SIMD lanes (one broadcast);
 *  - B is read from an rgba32float texture holding the operand's floats linearly (texel t = floats
 *    4t..4t+3 at (t % LIN_W, t / LIN_W)), so it is filled by copyBufferToTexture without a shader;
 *    not transposed: (k, n) rows of ldb texels; transposed: (n, k) rows of ldb texels (k zero-padded);
 *  - each invocation computes TM rows x 4*TQ columns of C in registers (no workgroup memory).
 * Constants: k, R (rows per uniform block), TM, TQ, WGX; vecOut (n % 4 == 0): C bound as vec4s.
 * Params: [0] rows of this chunk, [1] n, [2] first row of C for this chunk, [3] B's first texel for
 * this batch, [4] ldb (texels per row of B).
 * Dispatch: x = ceil(ceil(n/4) / (TQ*WGX)), y = ceil(rows / TM).
 */
export function matmulUboSource(k: number, R: number, TM: number, TQ: number, WGX: number, transB: boolean, bias: boolean, act: MatmulAct, vecOut = false): string {
  const K4 = Math.ceil(k / 4), kFull = Math.floor(k / 4), kTail = k % 4;
  let s = HEADER + `@group(0) @binding(1) var<uniform> A: array<vec4<f32>, ${R * K4}>;
@group(0) @binding(2) var B: texture_2d<f32>;
` + binding(3, 'C', vecOut ? 'vec4<f32>' : 'f32', true) + (bias ? binding(4, 'BIAS', 'f32', false) : '') + `fn ldB(t: u32) -> vec4<f32> { return textureLoad(B, vec2<u32>(t % ${LIN_W}u, t / ${LIN_W}u), 0); }
@compute @workgroup_size(${WGX}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let m = P(0u); let n = P(1u); let bBase = P(3u); let ldb = P(4u);
  let wn = (n + 3u) / 4u;
  let row0 = wid.y * ${TM}u;
  let cqb = (wid.x * ${WGX}u + lid.x) * ${TQ}u;
  if (row0 >= m) { return; }
`;
  for (let r = 0; r < TM; r++) s += `  let ar${r} = min(row0 + ${r}u, ${R - 1}u) * ${K4}u;\n`;
  if (!transB) {
    for (let q = 0; q < TQ; q++) s += `  let cb${q} = bBase + min(cqb + ${q}u, wn - 1u);\n`;
  } else {
    for (let c = 0; c < 4 * TQ; c++) s += `  let cb${c} = bBase + min(cqb * 4u + ${c}u, n - 1u) * ldb;\n`;
  }
  for (let r = 0; r < TM; r++) for (let q = 0; q < TQ; q++) s += `  var acc${r}_${q} = vec4<f32>(0.0);\n`;
  // body for one k quad p; kk < nk rows of it. Order (measured on llvmpipe, ~20% faster than loading
  // every operand first): all of B's texels for the quad, then row by row one vec4 of A and its FMAs,
  // so that only one A value is live at a time. Every component is its own SIMD register there, so
  // composing a vec4 from texel components (transB) costs nothing.
  const body = (nk: number, ind: string) => {
    let b = '';
    if (!transB) {
      b += `${ind}let kr = p * 4u * ldb;\n`;
      for (let kk = 0; kk < nk; kk++) for (let q = 0; q < TQ; q++) b += `${ind}let b${kk}_${q} = ldB(cb${q} + kr + ${kk}u * ldb);\n`;
    } else {
      for (let c = 0; c < 4 * TQ; c++) b += `${ind}let t${c} = ldB(cb${c} + p);\n`;
      for (let kk = 0; kk < nk; kk++) for (let q = 0; q < TQ; q++) {
        b += `${ind}let b${kk}_${q} = vec4<f32>(${[0, 1, 2, 3].map((c) => `t${4 * q + c}[${kk}]`).join(', ')});\n`;
      }
    }
    for (let r = 0; r < TM; r++) {
      b += `${ind}{\n${ind}  let a = A[ar${r} + p];\n`;
      for (let kk = 0; kk < nk; kk++) for (let q = 0; q < TQ; q++) b += `${ind}  acc${r}_${q} = fma(vec4<f32>(a[${kk}]), b${kk}_${q}, acc${r}_${q});\n`;
      b += `${ind}}\n`;
    }
    return b;
  };
  if (kFull > 0) s += `  for (var p = 0u; p < ${kFull}u; p++) {\n${body(4, '    ')}  }\n`;
  if (kTail > 0) s += `  {\n    let p = ${kFull}u;\n${body(transB ? 4 : kTail, '    ')}  }\n`;
  s += `  if (cqb >= wn) { return; }\n  let c0 = cqb * 4u;\n  let rowC = P(2u) + row0;\n`;
  for (let q = 0; q < TQ; q++) {
    if (bias) s += `  var bs${q} = vec4<f32>(0.0);\n  for (var j = 0u; j < 4u; j++) { bs${q}[j] = BIAS[min(c0 + ${4 * q}u + j, n - 1u)]; }\n`;
  }
  const fin = (v: string) => (act === 'relu' ? `max(${v}, vec4<f32>(0.0))` : v);
  for (let r = 0; r < TM; r++) {
    s += `  if (row0 + ${r}u < m) {\n    let o = (rowC + ${r}u) * n + c0;\n`;
    for (let q = 0; q < TQ; q++) {
      if (vecOut) {
        // n % 4 == 0: whole vec4 stores (several times faster than scalar stores on llvmpipe)
        s += `    if (cqb + ${q}u < wn) { C[o / 4u + ${q}u] = ${fin(bias ? `acc${r}_${q} + bs${q}` : `acc${r}_${q}`)}; }\n`;
        continue;
      }
      s += `    { let v = ${fin(bias ? `acc${r}_${q} + bs${q}` : `acc${r}_${q}`)};\n`;
      s += `      if (c0 + ${4 * q + 3}u < n) { C[o + ${4 * q}u] = v.x; C[o + ${4 * q + 1}u] = v.y; C[o + ${4 * q + 2}u] = v.z; C[o + ${4 * q + 3}u] = v.w; }\n`;
      s += `      else { for (var j = 0u; j < 4u; j++) { if (c0 + ${4 * q}u + j < n) { C[o + ${4 * q}u + j] = v[j]; } } } }\n`;
    }
    s += `  }\n`;
  }
  return s + `}\n`;
}

/**
 * Adam for software adapters: the four operands are read through linear textures (copies of the
 * buffers, see matmulUboSource: storage-buffer loads are scalar loops on llvmpipe, texel fetches are
 * vectorised); each invocation updates `per` consecutive texels (4 elements each; the last invocation
 * repeats the last texel where the count does not divide). Params as adamSource, with [0] the number
 * of texels and [10] the number of elements.
 */
export function adamTexSource(per = 1): string {
  // the outputs as vec4s: whole-vec4 stores (the last one may write into the slab's padding)
  let s = HEADER + binding(1, 'PV', 'vec4<f32>', true) + binding(2, 'MV', 'vec4<f32>', true) + binding(3, 'VV', 'vec4<f32>', true);
  ['PT', 'GT', 'MT', 'VT'].forEach((nm, j) => { s += `@group(0) @binding(${4 + j}) var ${nm}: texture_2d<f32>;\n`; });
  s += `fn ld(T: texture_2d<f32>, t: u32) -> vec4<f32> { return textureLoad(T, vec2<u32>(t % ${LIN_W}u, t / ${LIN_W}u), 0); }
@compute @workgroup_size(${WG}) fn main(${GID}) {
  let i0 = (g.x + g.y * P(1u)) * ${per}u;
  let nt = P(0u);
  if (i0 >= nt) { return; }
  let wd = PF(7u);
`;
  for (let e = 0; e < per; e++) {
    s += `  {
    let i = min(i0 + ${e}u, nt - 1u);
    let p = ld(PT, i);
    var gi = ld(GT, i);
    if (wd != 0.0) { gi = gi + wd * p; }
    let mi = PF(2u) * ld(MT, i) + PF(3u) * gi;
    let vi = PF(4u) * ld(VT, i) + PF(5u) * gi * gi;
    let np = p - PF(8u) * mi / (sqrt(vi) / PF(9u) + vec4<f32>(PF(6u)));
    MV[i] = mi; VV[i] = vi; PV[i] = np;
  }
`;
  }
  return s + '}\n';
}

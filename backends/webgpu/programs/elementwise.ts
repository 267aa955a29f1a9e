// Elementwise program: unary, binary, where, copy and copyInto (strided views of any rank after merging
// axes), and fill. One WGSL generator serves every op: the expression text comes from
// engine/elementwise.ts (toWgsl), so the CPU backend compiles the same definitions.
import { UNARY, BINARY, toWgsl } from '../../../engine/elementwise.ts';
import type { Buf, View } from '../../../engine/backend.ts';
import type { DType } from '../../../engine/dtype.ts';
import type { UnaryOp, BinaryOp } from '../../../engine/elementwise.ts';
import { HEADER, GID, WG, LIN_W, binding, type WType } from '../wgsl.ts';
import { type GpuRecorder, type Tex, wtype, numel, contiguous, collapse, fbits } from '../recorder.ts';
import type { KernelChoices } from '../choices.ts';

const MAX_RANK = 12;

// ------------------------------------------------------------------ WGSL
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

// x / d for x < 2^21, d >= 1 (exact in float32): the float32 quotient is within 2.5 ULP (WGSL's bound
// for division; <= 0.625 below 2^21) of x / d, so its truncation is floor(x / d) or one off either way.
export const UDIV21 = `fn udiv21(x: u32, d: u32) -> u32 {
  var q = u32(max(f32(x) / f32(d), 0.0));
  if (q * d > x) { q = q - 1u; }
  if ((q + 1u) * d <= x) { q = q + 1u; }
  return q;
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
  // tex[j]: input j is read from a linear rgba32float texture (float32 only; see LIN_W in ../wgsl.ts)
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

// ------------------------------------------------------------------ dispatch
export function fill(gpu: GpuRecorder, size: number, value: number, dtype: DType): Buf {
  const t = wtype(dtype);
  const out = gpu.alloc(size, dtype);
  const bits = t === 'f32' ? fbits(value) : (value | 0) >>> 0;
  const k = gpu.kernel('fill', () => ({ src: fillSource(), sig: 'w' }));
  const [gx, gy, rs] = gpu.grid(size);
  gpu.dispatch(k, [gpu.slab(out)], [size, rs, bits], gx, gy);
  return out;
}

/** Shared path of unary/binary/where/copy/copyInto: out (or dst) = expr over the views. */
function elementwise(gpu: GpuRecorder, ch: KernelChoices, expr: string, names: string[], views: View[], shape: number[], outDtype: DType, dst?: View): Buf | null {
  const n = numel(shape);
  const ins = views.map((v) => wtype(v.buf.dtype));
  const outT = wtype(dst ? dst.buf.dtype : outDtype);
  const all = dst ? [...views.map((v) => v.strides), dst.strides] : views.map((v) => v.strides);
  const c = collapse(shape, all);
  const R = c.shape.length;
  if (R > MAX_RANK) throw new Error(`webgpu: elementwise views of rank ${R} after merging axes are not supported (max ${MAX_RANK})`);
  const into = !!dst;
  // float32 inputs through texture copies (software adapters: storage loads are scalar loops there)
  const tex = views.map((v) => ch.texInputs && v.buf.dtype === 'float32' && n >= 1024 &&
    v.buf.size > 0 && gpu.fitsLinear(v.buf.size) && (!dst || v.buf !== dst.buf));
  // vec4 stores (4 elements per invocation) for new outputs
  const vec = !into && ch.vecStores && n >= 64;
  // vec4 kernels: inputs that are 4-aligned contiguous texture runs read one texel per invocation,
  // broadcast elements are read once, the rest per element
  const own = contiguous(c.shape);
  const flat: ('t' | 's' | 'g')[] | null = vec
    ? views.map((v, j) => c.strides[j].every((st) => st === 0) ? 's'
      : tex[j] && v.offset % 4 === 0 && c.strides[j].every((st, d) => st === own[d] || c.shape[d] === 1) ? 't' : 'g')
    : null;
  // coordinates through float32 division where every index is below 2^21
  const fdiv = ch.fastDiv && R > 1 && n < 1 << 21;
  const key = `ew|${expr}|${ins.join(',')}|${outT}|${R}|${into ? 1 : 0}|${tex.map((t) => (t ? 't' : 'r')).join('')}|${vec}|${flat ? flat.join('') : ''}|${fdiv}`;
  const k = gpu.kernel(key, () => ({
    src: elementwiseSource(expr, names, ins, outT, R, into, tex, vec, flat, fdiv),
    sig: tex.map((t) => (t ? 't' : 'r')).join('') + 'w',
  }));
  const texs: (Tex | null)[] = views.map((v, j) => (tex[j] ? gpu.linearTexture(gpu.slab(v.buf), Math.ceil(v.buf.size / 4)) : null));
  const out = dst ? dst.buf : gpu.alloc(n, outDtype);
  const [gx, gy, rs] = gpu.grid(vec ? Math.ceil(n / 4) : n);
  const p: number[] = [n, rs, ...c.shape];
  const offs = dst ? [...views.map((v) => v.offset), dst.offset] : views.map((v) => v.offset);
  offs.forEach((o, v) => { p.push(o, ...c.strides[v]); });
  gpu.dispatch(k, [...views.map((v, j) => texs[j] ?? gpu.slab(v.buf)), gpu.slab(out)], p, gx, gy);
  for (const t of texs) if (t) gpu.releaseTex(t);
  return dst ? null : out;
}

export function unary(gpu: GpuRecorder, ch: KernelChoices, op: UnaryOp, x: View, shape: number[], outDtype: DType): Buf {
  return elementwise(gpu, ch, unaryExpr(op), ['x'], [x], shape, outDtype)!;
}

export function binary(gpu: GpuRecorder, ch: KernelChoices, op: BinaryOp, a: View, b: View, shape: number[], outDtype: DType): Buf {
  return elementwise(gpu, ch, binaryExpr(op), ['a', 'b'], [a, b], shape, outDtype)!;
}

export function where(gpu: GpuRecorder, ch: KernelChoices, cond: View, a: View, b: View, shape: number[], outDtype: DType): Buf {
  return elementwise(gpu, ch, 'where', ['c', 'a', 'b'], [cond, a, b], shape, outDtype)!;
}

export function copy(gpu: GpuRecorder, ch: KernelChoices, x: View, shape: number[], outDtype: DType): Buf {
  const n = numel(shape);
  if (outDtype === x.buf.dtype && n > 0 && contiguousRun(x, shape)) {
    // a contiguous run of the source: a buffer-to-buffer copy, no shader (leaf gradients, clones)
    wtype(outDtype);
    const out = gpu.alloc(n, outDtype);
    gpu.copyRun(gpu.slab(x.buf), x.offset, gpu.slab(out), 0, n);
    return out;
  }
  return elementwise(gpu, ch, 'x', ['x'], [x], shape, outDtype)!;
}

export function copyInto(gpu: GpuRecorder, ch: KernelChoices, dst: View, src: View, shape: number[]): void {
  if (src.buf === dst.buf) {
    // a buffer cannot be bound for reading and writing in one dispatch: go through a copy
    const tmp = copy(gpu, ch, src, shape, src.buf.dtype);
    const own = contiguous(shape);
    elementwise(gpu, ch, 'x', ['x'], [{ buf: tmp, strides: own, offset: 0 }], shape, dst.buf.dtype, dst);
    gpu.release(tmp);
    return;
  }
  if (src.buf.dtype === dst.buf.dtype && numel(shape) > 0 && contiguousRun(src, shape) && contiguousRun(dst, shape)) {
    gpu.copyRun(gpu.slab(src.buf), src.offset, gpu.slab(dst.buf), dst.offset, numel(shape));
    return;
  }
  elementwise(gpu, ch, 'x', ['x'], [src], shape, dst.buf.dtype, dst);
}

/** Whether a view reads numel(shape) consecutive elements in order. */
function contiguousRun(v: View, shape: number[]): boolean {
  const c = collapse(shape, [v.strides]);
  return c.shape.length === 1 && (c.strides[0][0] === 1 || c.shape[0] === 1);
}

// Vector exp / log emitters for the WebAssembly SIMD kernels (backends/cpu/wasm/estimator_kernels.ts,
// bce.ts). Each emitter writes straight-line code into a function body (./emit.ts); its constants live
// in locals that a `prepare*` call splats once, before the loops that use them.
//
//  - expF32x4: e^x in float32 for x <= 88.7: Cody-Waite reduction x = n ln2 + r (|r| <= ln2/2, ln2 split
//    so that n * ln2hi is exact), Taylor polynomial of degree 7 for e^r (1 + (r + r^2 q), q by Estrin's
//    scheme), 2^n added to the exponent field. x < -86.5 gives exactly 0 (true value < 2.7e-38; -Infinity
//    gives 0), NaN gives NaN. Within 1.5 ulp of Math.exp over [-86.5, 88.7] (test/cpu_estimators_wasm.test.ts;
//    about 1.05 ulp at worst on 3M random samples).
//  - logF32x4: log x in float32: x = 2^k z with z in [sqrt(1/2), sqrt(2)), f = z - 1 (exact), s = f / (2 + f),
//    log z = f - (f^2/2 - s (f^2/2 + R(s^2))) with R the atanh series 2 s^2/3 + ... + 2 s^8/9 (Estrin's
//    scheme), then + k ln2 (split as for exp).
//    With `special`: 0 -> -Infinity, NaN -> NaN, subnormals scaled first (otherwise inputs must be positive
//    normal floats). Within 1 ulp of Math.log (0.86 ulp at worst over every input of the Gumbel noise).
import { Code, V128 } from './emit.ts';

export const LN2 = Math.LN2;
// ln2 split for float32 Cody-Waite: hi has 16 significant bits, so k * hi is exact for |k| < 256
export const LN2_HI_F32 = Math.round(LN2 * 65536) / 65536;
export const LN2_LO_F32 = Math.fround(LN2 - LN2_HI_F32);

const SQRT_HALF_BITS = 0x3f3504f3; // float32 bits of sqrt(1/2)

/** i8x16.shuffle byte lists from 32-bit lane picks (0-3: first operand, 4-7: second) */
export function lanes32(...l: number[]): number[] {
  const out: number[] = [];
  for (const x of l) for (let b = 0; b < 4; b++) out.push(4 * x + b);
  return out;
}
export const SHUF_HI_WORDS = lanes32(1, 3, 5, 7); // odd 32-bit lanes of (a, b): high halves of 64-bit lanes
export const SHUF_LO_WORDS = lanes32(0, 2, 4, 6);
export const SHUF_SWAP_HALVES = lanes32(2, 3, 0, 1);
export const SHUF_SWAP_PAIRS = lanes32(1, 0, 3, 2);

function splatF32(c: Code, v: number): number {
  const l = c.local(V128);
  c.v128ConstF32x4(v).set(l);
  return l;
}
function splatI32(c: Code, v: number): number {
  const l = c.local(V128);
  c.v128ConstI32x4(v, v, v, v).set(l);
  return l;
}

// ------------------------------------------------------------------ exp (float32)

export interface ExpConsts { hiClamp: number; log2e: number; shift: number; ln2hi: number; ln2lo: number; cut: number; coef: number[]; one: number }

const EXP_DEGREE = 7; // emitExpF32x4's Estrin scheme assumes 7
const SHIFT = 1.5 * 2 ** 23; // adding it rounds to an integer and leaves that integer in the low mantissa bits

export function prepareExp(c: Code): ExpConsts {
  const coef: number[] = [];
  let f = 1;
  for (let k = 0; k <= EXP_DEGREE; k++) { if (k > 0) f *= k; coef.push(splatF32(c, 1 / f)); }
  return {
    hiClamp: splatF32(c, 88.7), log2e: splatF32(c, Math.LOG2E), shift: splatF32(c, SHIFT), ln2hi: splatF32(c, LN2_HI_F32),
    ln2lo: splatF32(c, LN2_LO_F32), cut: splatF32(c, -86.5), coef, one: coef[0],
  };
}

/** out = exp(x) (float32 lanes); x is left unchanged. out may equal x. */
export function emitExpF32x4(c: Code, k: ExpConsts, x: number, out: number): void {
  const xc = c.local(V128), t = c.local(V128), n = c.local(V128), r = c.local(V128), cut = c.local(V128);
  c.get(x).get(k.cut).f32x4Lt().set(cut); // x < -86.5 (false for NaN)
  c.get(x).get(k.hiClamp).f32x4Pmin().set(xc); // NaN stays NaN
  c.get(xc).get(k.log2e).f32x4Mul().get(k.shift).f32x4Add().tee(t).get(k.shift).f32x4Sub().set(n); // n = round(x log2 e)
  c.get(xc).get(n).get(k.ln2hi).f32x4Mul().f32x4Sub().get(n).get(k.ln2lo).f32x4Mul().f32x4Sub().set(r);
  // 1 + (r + r^2 q), q = (c2 + c3 r) + r^2 (c4 + c5 r) + r^4 (c6 + c7 r) by Estrin's scheme: a short dependency
  // chain, and the leading 1 + r added last so that their rounding stays below an ulp
  const r2 = c.local(V128);
  const pair = (i: number) => c.get(k.coef[i]).get(k.coef[i + 1]).get(r).f32x4Mul().f32x4Add();
  c.get(r).get(r).f32x4Mul().set(r2);
  pair(2); c.get(r2); pair(4); c.f32x4Mul().f32x4Add();
  c.get(r2).get(r2).f32x4Mul(); pair(6); c.f32x4Mul().f32x4Add();
  c.get(r2).f32x4Mul().get(r).f32x4Add().get(k.one).f32x4Add();
  // times 2^n through the exponent field: the low 9 bits of t's pattern are n mod 512 (n >= -125 wherever kept)
  c.get(t).i32(23).i32x4Shl().i32x4Add();
  c.get(cut).v128Andnot().set(out);
}

// ------------------------------------------------------------------ log (float32)

export interface LogConsts {
  off: number; mantMask: number; one: number; two: number; half: number; ln2hi: number; ln2lo: number; coef: number[];
  tiny: number; two23: number; negInf: number; i23: number;
}

const LOG_F32_TERMS = 4; // R = sum_{k=1..4} 2 s^(2k) / (2k + 1): truncation < 2^-26 relative (emitLogF32x4 assumes 4)

export function prepareLog(c: Code): LogConsts {
  const coef: number[] = [];
  for (let k = 1; k <= LOG_F32_TERMS; k++) coef.push(splatF32(c, 2 / (2 * k + 1)));
  return {
    off: splatI32(c, SQRT_HALF_BITS), mantMask: splatI32(c, 0xff800000 | 0), one: splatF32(c, 1), two: splatF32(c, 2),
    half: splatF32(c, 0.5), ln2hi: splatF32(c, LN2_HI_F32), ln2lo: splatF32(c, LN2_LO_F32), coef,
    tiny: splatF32(c, 2 ** -126), two23: splatF32(c, 2 ** 23), negInf: splatF32(c, -Infinity), i23: splatI32(c, 23),
  };
}

/** Shared range reduction: from float32 lanes xi, k (int32 lanes) and z (float32 in [sqrt(1/2), sqrt(2))). */
function reduce(c: Code, off: number, mantMask: number, xi: number, k: number, z: number): void {
  const tmp = c.local(V128);
  c.get(xi).get(off).i32x4Sub().tee(tmp).i32(23).i32x4ShrS().set(k);
  c.get(xi).get(tmp).get(mantMask).v128And().i32x4Sub().set(z);
}

/** out = log(x) (float32 lanes); out may equal x. */
export function emitLogF32x4(c: Code, K: LogConsts, x: number, out: number, special = false): void {
  const xi = c.local(V128), k = c.local(V128), z = c.local(V128), f = c.local(V128), s = c.local(V128), s2 = c.local(V128);
  const hfsq = c.local(V128), R = c.local(V128), kf = c.local(V128), sub = c.local(V128);
  if (special && out === x) {
    const xin = c.local(V128);
    c.get(x).set(xin);
    x = xin;
  }
  if (special) {
    // subnormals: scale by 2^23 and take 23 off the exponent
    c.get(x).get(K.tiny).f32x4Lt().set(sub);
    c.get(x).get(K.two23).f32x4Mul().get(x).get(sub).v128Bitselect().set(xi);
  } else c.get(x).set(xi);
  reduce(c, K.off, K.mantMask, xi, k, z);
  if (special) c.get(k).get(K.i23).get(sub).v128And().i32x4Sub().set(k);
  c.get(z).get(K.one).f32x4Sub().set(f);
  c.get(f).get(f).get(K.two).f32x4Add().f32x4Div().set(s); // s = f / (2 + f)
  c.get(s).get(s).f32x4Mul().set(s2);
  // R = s2 (c1 + c2 s2 + s2^2 (c3 + c4 s2)) (Estrin: a shorter dependency chain than Horner)
  c.get(K.coef[0]).get(K.coef[1]).get(s2).f32x4Mul().f32x4Add();
  c.get(s2).get(s2).f32x4Mul();
  c.get(K.coef[2]).get(K.coef[3]).get(s2).f32x4Mul().f32x4Add();
  c.f32x4Mul().f32x4Add().get(s2).f32x4Mul().set(R);
  c.get(f).get(f).f32x4Mul().get(K.half).f32x4Mul().set(hfsq);
  c.get(k).f32x4ConvertI32x4S().set(kf);
  // k ln2hi + (f - (hfsq - (s (hfsq + R) + k ln2lo)))
  c.get(kf).get(K.ln2hi).f32x4Mul();
  c.get(f);
  c.get(hfsq);
  c.get(s).get(hfsq).get(R).f32x4Add().f32x4Mul().get(kf).get(K.ln2lo).f32x4Mul().f32x4Add();
  c.f32x4Sub().f32x4Sub().f32x4Add().set(out);
  if (special) {
    c.get(K.negInf).get(out).get(x).v128Const0().f32x4Eq().v128Bitselect().set(out); // log 0 = -inf
    c.get(x).get(out).get(x).get(x).f32x4Ne().v128Bitselect().set(out); // NaN stays NaN
  }
}

// ------------------------------------------------------------------ scheduling

/**
 * Emit several independent straight-line sequences (no control flow, disjoint locals) interleaved statement
 * by statement (a statement ends at each local.set, where the operand stack is empty), so that the CPU sees
 * independent work next to each other: the float32 logs and exps are long dependency chains, and emitted one
 * after the other they keep the core waiting (interleaving four made the Gumbel noise about 1.5x faster).
 */
export function emitInterleaved(c: Code, parts: (() => void)[]): void {
  const chunks: number[][][] = [];
  for (const part of parts) {
    const start = c.bytes.length;
    const cuts: number[] = [];
    const outer = c.statementEnds;
    c.statementEnds = cuts;
    try { part(); } finally { c.statementEnds = outer; }
    const seq: number[][] = [];
    let prev = start;
    for (const cut of cuts) { seq.push(c.bytes.slice(prev, cut)); prev = cut; }
    if (prev !== c.bytes.length) seq.push(c.bytes.slice(prev));
    c.bytes.length = start;
    chunks.push(seq);
  }
  const m = Math.max(0, ...chunks.map((s) => s.length));
  for (let i = 0; i < m; i++) for (const s of chunks) if (i < s.length) for (const b of s[i]) c.bytes.push(b);
}

// Philox4x32-10 in WebAssembly SIMD: four blocks per step, one block per 32-bit lane, so that the
// 32x32 -> 64-bit products are i64x2.extmul_{low,high}_i32x4_u. Same words as engine/philox.ts
// (checked in test/cpu_estimators_wasm.test.ts): block b has counter (low 32 bits of b, high 32 bits, 0, 0).
import { Code, V128, I32 } from './emit.ts';
import { SHUF_HI_WORDS, SHUF_LO_WORDS, lanes32 } from './vmath.ts';

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

const T_A0B0A1B1 = lanes32(0, 4, 1, 5);
const T_A2B2A3B3 = lanes32(2, 6, 3, 7);
const T_A0A1B0B1 = lanes32(0, 1, 4, 5);
const T_A2A3B2B3 = lanes32(2, 3, 6, 7);

export interface PhiloxState {
  /** i32 locals: the next block's counter (low, high words) */
  blkLo: number; blkHi: number;
  /** v128 locals: the key splatted */
  key0: number; key1: number;
  m0: number; m1: number; w0: number; w1: number; iota: number;
  c: number[]; k0v: number; k1v: number; t: number[];
}

/** Locals and constants; the caller sets blkLo / blkHi and key0 / key1 (i32x4.splat of the key words). */
export function preparePhilox(c: Code): PhiloxState {
  const v = () => c.local(V128);
  const st: PhiloxState = {
    blkLo: c.local(I32), blkHi: c.local(I32), key0: v(), key1: v(),
    m0: v(), m1: v(), w0: v(), w1: v(), iota: v(),
    c: [v(), v(), v(), v()], k0v: v(), k1v: v(), t: [v(), v(), v(), v(), v(), v()],
  };
  c.v128ConstI32x4(M0, M0, M0, M0).set(st.m0);
  c.v128ConstI32x4(M1, M1, M1, M1).set(st.m1);
  c.v128ConstI32x4(W0, W0, W0, W0).set(st.w0);
  c.v128ConstI32x4(W1, W1, W1, W1).set(st.w1);
  c.v128ConstI32x4(0, 1, 2, 3).set(st.iota);
  return st;
}

/**
 * Four consecutive blocks from blkLo/blkHi (which advance by 4): out[b] (v128 locals) receives block b's
 * four words in stream order.
 */
export function emitPhilox4(c: Code, st: PhiloxState, out: number[]): void {
  const [c0, c1, c2, c3] = st.c;
  const [elo, ehi, hi0, lo0, hi1, lo1] = st.t;
  // counters: low word blkLo + lane, high word blkHi plus a carry where the low word wrapped
  c.get(st.blkLo).i32x4Splat().get(st.iota).i32x4Add().set(c0);
  c.get(st.blkHi).i32x4Splat().get(c0).get(st.blkLo).i32x4Splat().i32x4LtU().i32x4Sub().set(c1);
  c.v128Const0().set(c2);
  c.v128Const0().set(c3);
  c.get(st.key0).set(st.k0v);
  c.get(st.key1).set(st.k1v);
  for (let r = 0; r < 10; r++) {
    c.get(c0).get(st.m0).i64x2ExtmulLowI32x4U().set(elo);
    c.get(c0).get(st.m0).i64x2ExtmulHighI32x4U().set(ehi);
    c.get(elo).get(ehi).i8x16Shuffle(SHUF_HI_WORDS).set(hi0);
    c.get(elo).get(ehi).i8x16Shuffle(SHUF_LO_WORDS).set(lo0);
    c.get(c2).get(st.m1).i64x2ExtmulLowI32x4U().set(elo);
    c.get(c2).get(st.m1).i64x2ExtmulHighI32x4U().set(ehi);
    c.get(elo).get(ehi).i8x16Shuffle(SHUF_HI_WORDS).set(hi1);
    c.get(elo).get(ehi).i8x16Shuffle(SHUF_LO_WORDS).set(lo1);
    c.get(hi1).get(c1).v128Xor().get(st.k0v).v128Xor().set(c0);
    c.get(hi0).get(c3).v128Xor().get(st.k1v).v128Xor().set(c2);
    c.get(lo1).set(c1);
    c.get(lo0).set(c3);
    if (r < 9) {
      c.get(st.k0v).get(st.w0).i32x4Add().set(st.k0v);
      c.get(st.k1v).get(st.w1).i32x4Add().set(st.k1v);
    }
  }
  // transpose: lanes are blocks, vectors are words -> vectors are blocks
  const [ta, tb, tc, td] = [elo, ehi, hi0, lo0];
  c.get(c0).get(c1).i8x16Shuffle(T_A0B0A1B1).set(ta); // b0w0 b0w1 b1w0 b1w1
  c.get(c0).get(c1).i8x16Shuffle(T_A2B2A3B3).set(tb); // b2w0 b2w1 b3w0 b3w1
  c.get(c2).get(c3).i8x16Shuffle(T_A0B0A1B1).set(tc); // b0w2 b0w3 b1w2 b1w3
  c.get(c2).get(c3).i8x16Shuffle(T_A2B2A3B3).set(td);
  c.get(ta).get(tc).i8x16Shuffle(T_A0A1B0B1).set(out[0]);
  c.get(ta).get(tc).i8x16Shuffle(T_A2A3B2B3).set(out[1]);
  c.get(tb).get(td).i8x16Shuffle(T_A0A1B0B1).set(out[2]);
  c.get(tb).get(td).i8x16Shuffle(T_A2A3B2B3).set(out[3]);
  // advance 4 blocks (carry into the high word)
  c.get(st.blkLo).i32(4).i32Add().tee(st.blkLo).i32(4).i32LtU().if_();
  c.get(st.blkHi).i32(1).i32Add().set(st.blkHi);
  c.end();
}

/**
 * A function body over the stream: params (dst, nIter, k0, k1, blkLo, blkHi) as locals 0..5. Runs nIter
 * iterations of 4 blocks (16 words); each calls body(w, p) with the blocks in v128 locals w[0..3] and p the
 * i32 local holding dst + 64 * iteration (the body stores its 64 bytes there).
 */
export function emitPhiloxLoop(c: Code, st: PhiloxState, body: (w: number[], p: number) => void): void {
  const [dst, nIter, k0, k1, blkLo, blkHi] = [0, 1, 2, 3, 4, 5];
  const it = c.local(I32), p = c.local(I32);
  const w = [c.local(V128), c.local(V128), c.local(V128), c.local(V128)];
  c.get(k0).i32x4Splat().set(st.key0);
  c.get(k1).i32x4Splat().set(st.key1);
  c.get(blkLo).set(st.blkLo).get(blkHi).set(st.blkHi);
  c.get(nIter).if_();
  c.i32(0).set(it).get(dst).set(p);
  c.loop();
  emitPhilox4(c, st, w);
  body(w, p);
  c.get(p).i32(64).i32Add().set(p);
  c.get(it).i32(1).i32Add().tee(it).get(nIter).i32Ne().brIf(0);
  c.end();
  c.end();
}

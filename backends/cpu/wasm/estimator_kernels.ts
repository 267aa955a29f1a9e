// WebAssembly SIMD kernels for the straight-through estimators on float32 logits (used by
// estimators/fused.ts; the JS kernels there stay the fallback and serve float64).
//
// Forward, per call:
//   gumbelPert   Philox4x32-10 words (./philox.ts), then u -> G = -log(-log u) with float32 vector logs
//                (./vmath.ts) -> perturbed = fround(theta + G); flags NaN / +Infinity logits.
//   argRows      per row: the first argmax D of the perturbed logits, the max of theta, and whether the two
//                largest perturbed values are close enough that the op path's noise (each log rounded to
//                float32 from Math.log, within GUMBEL_ERR of ours) could order them differently; such rows
//                (a few in a million, for logits of order 1) are redone in JS with the op path's exact
//                noise, so D always equals the op path's sample.
//   soft_<kind>  the surrogate's softmax numerators exp((x - max) / tau) and row sums (float32 vector exp).
// Backward: vjp1 / vjp2 (softmax VJPs from the numerators), or for rao_gumbel, per draw, raoE (Exp(1) draws
// from the kRao counter stream, float32 vector log) and raoRows (the conditional draw's softmax and its VJP,
// accumulated in float32).
//
// Rows of C floats are walked in vectors of 4; the last, partial vector of a row reads (and, for outputs
// written in row order, writes) up to 3 lanes past the row: those lanes are masked out of every reduction
// and rewritten by the next row, and every array has 64 bytes of padding on both sides. Work is split in
// passes over all rows so that no row carries a long dependency chain (rows of 10 are latency-bound otherwise).
import { Code, ModuleBuilder, I32, F32, V128, type ValType } from './emit.ts';
import { preparePhilox, emitPhilox4, emitPhiloxLoop } from './philox.ts';
import {
  prepareExp, emitExpF32x4, prepareLog, emitLogF32x4, emitInterleaved, type LogConsts,
  SHUF_SWAP_HALVES, SHUF_SWAP_PAIRS, type ExpConsts,
} from './vmath.ts';
import { philoxWords as philoxWordsJs } from '../../../engine/philox.ts';
import type { Splitter } from './gemm.ts';

export type FwdKind = 'st' | 'gumbel' | 'gst' | 'gstp' | 'reinmax' | 'rao';
const KINDS: FwdKind[] = ['st', 'gumbel', 'gst', 'gstp', 'reinmax', 'rao'];
/** The kernel names these kernels register (Backend.fusedEstimator). */
export const FWD_KINDS: readonly FwdKind[] = KINDS;

/** max |G_wasm(u) - G(u)| over all 2^23 uniforms u, G the op path's noise (each log rounded to float32):
 *  measured exhaustively in test/cpu_estimators_wasm.test.ts */
export const GUMBEL_ERR = 2 ** -20;
/** argRows redoes a row when its two largest perturbed logits a >= b (b finite) have
 *  a - b <= UNDECIDED_ABS + UNDECIDED_REL (|a| + |b|); the exact perturbed logits differ from the computed ones
 *  by at most 1.01 GUMBEL_ERR + 2^-23 (1 + 2^-22) |value| each, so any other row's argmax is the exact one. */
export const UNDECIDED_ABS = 4 * GUMBEL_ERR;
export const UNDECIDED_REL = 2 ** -21;

const PAD = 64; // bytes of padding before and after every array
/** calls on at least this many logits give half of their rows to a worker thread where one is active */
const SPLIT_MIN = 16384;

const HEAP_START = 64;
const MAX_PAGES = 65536;

// ------------------------------------------------------------------ code helpers

/** Uniform (0, 1) lanes from Philox words: ((w >>> 9) + 0.5) 2^-23 = float(0x3f800000 | w >>> 9) - (1 - 2^-24), exact. */
function emitUniform(c: Code, w: number, out: number, oneBits: number, oneMinus: number): void {
  c.get(w).i32(9).i32x4ShrU().get(oneBits).v128Or().get(oneMinus).f32x4Sub().set(out);
}

/** out = -G = log(-log u), each log a float32 vector log (the Gumbel noise of gumbelPert and mapNegGumbel) */
function emitNegGumbel(c: Code, LK: LogConsts, u: number, tmp: number, out: number): void {
  emitLogF32x4(c, LK, u, tmp);
  c.get(tmp).f32x4Neg().set(tmp);
  emitLogF32x4(c, LK, tmp, out);
}

function hreduce(c: Code, v: number, op: 'max' | 'add'): void {
  // leaves the reduction in every lane of v
  for (const sh of [SHUF_SWAP_HALVES, SHUF_SWAP_PAIRS]) {
    c.get(v).get(v).get(v).i8x16Shuffle(sh);
    if (op === 'max') c.f32x4Pmax(); else c.f32x4Add();
    c.set(v);
  }
}

interface Rows {
  R: number; C: number; // i32 params
  r: number; ro: number; pos: number; end: number; nFullB: number; rem: number; // i32 locals
  tail: number; lane: number; iota: number; four: number; // v128 locals
}

function prepareRows(c: Code, R: number, C: number): Rows {
  const rw: Rows = {
    R, C, r: c.local(I32), ro: c.local(I32), pos: c.local(I32), end: c.local(I32), nFullB: c.local(I32), rem: c.local(I32),
    tail: c.local(V128), lane: c.local(V128), iota: c.local(V128), four: c.local(V128),
  };
  c.get(C).i32(-4).i32And().i32(4).i32Mul().set(rw.nFullB); // bytes of whole vectors per row
  c.get(C).i32(3).i32And().set(rw.rem);
  c.v128ConstI32x4(0, 1, 2, 3).set(rw.iota);
  c.v128ConstI32x4(4, 4, 4, 4).set(rw.four);
  c.get(rw.iota).get(rw.rem).i32x4Splat().i32x4LtS().set(rw.tail); // valid lanes of the partial vector
  return rw;
}

/** for r in [0, R): body() with ro = r * C * 4 */
function forRows(c: Code, rw: Rows, body: () => void): void {
  c.get(rw.R).i32(0).i32GtS().if_();
  c.i32(0).set(rw.r).i32(0).set(rw.ro);
  c.loop();
  body();
  c.get(rw.ro).get(rw.C).i32(4).i32Mul().i32Add().set(rw.ro);
  c.get(rw.r).i32(1).i32Add().tee(rw.r).get(rw.R).i32Ne().brIf(0);
  c.end();
  c.end();
}

/** Vectors of the current row: body(false) for each whole vector, then body(true) for a partial one.
 *  pos is the byte offset of the vector, lane holds its lanes' category indices. */
function forVecs(c: Code, rw: Rows, body: (tail: boolean) => void): void {
  c.get(rw.ro).set(rw.pos);
  c.get(rw.iota).set(rw.lane);
  c.get(rw.nFullB).if_();
  c.get(rw.ro).get(rw.nFullB).i32Add().set(rw.end);
  c.loop();
  body(false);
  c.get(rw.lane).get(rw.four).i32x4Add().set(rw.lane);
  c.get(rw.pos).i32(16).i32Add().tee(rw.pos).get(rw.end).i32Ne().brIf(0);
  c.end();
  c.end();
  c.get(rw.rem).if_();
  body(true);
  c.end();
}

/** push the address of array param `a` at the current vector */
function at(c: Code, rw: Rows, a: number): Code { return c.get(a).get(rw.pos).i32Add(); }

/** push v masked to the valid lanes (tail) */
function masked(c: Code, rw: Rows, tail: boolean): void { if (tail) c.get(rw.tail).v128And(); }


// ------------------------------------------------------------------ kernels

/**
 * gumbelPert(theta, pert, nIter, k0, k1, blk0, badAddr): pert = fround(theta + G) for 16 nIter elements, G =
 * -log(-log u) with float32 vector logs (within GUMBEL_ERR of the op path's noise; argRows decides where that
 * could matter), u from the Philox words of blocks blk0, blk0 + 1, ... (theta[0] is the stream's word 4 blk0).
 * Stores (i32) whether any theta is NaN or +Infinity at badAddr.
 */
function emitGumbelPert(c: Code): void {
  const [theta, pert, nIter, k0, k1, blk0, badAddr] = [0, 1, 2, 3, 4, 5, 6];
  const st = preparePhilox(c);
  const LK = prepareLog(c);
  const it = c.local(I32), p = c.local(I32);
  const oneBits = c.local(V128), oneMinus = c.local(V128), inf = c.local(V128), bad = c.local(V128);
  const w = [c.local(V128), c.local(V128), c.local(V128), c.local(V128)];
  const lanes = [0, 1, 2, 3].map(() => ({
    w: c.local(V128), u: c.local(V128), l1: c.local(V128), l2: c.local(V128), t: c.local(V128), bad: c.local(V128),
  }));
  c.v128ConstI32x4(0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000).set(oneBits);
  c.v128ConstF32x4(Math.fround(1 - 2 ** -24)).set(oneMinus);
  c.v128ConstF32x4(Infinity).set(inf);
  c.v128Const0().set(bad);
  for (const l of lanes) c.v128Const0().set(l.bad);
  c.get(k0).i32x4Splat().set(st.key0);
  c.get(k1).i32x4Splat().set(st.key1);
  c.get(blk0).set(st.blkLo).i32(0).set(st.blkHi);
  c.get(nIter).if_();
  // the words first (into pert), then the noise: two lean loops instead of one with twice the live values
  c.i32(0).set(it).i32(0).set(p);
  c.loop();
  emitPhilox4(c, st, w);
  for (let b = 0; b < 4; b++) c.get(pert).get(p).i32Add().get(w[b]).v128Store(16 * b);
  c.get(p).i32(64).i32Add().set(p);
  c.get(it).i32(1).i32Add().tee(it).get(nIter).i32Ne().brIf(0);
  c.end();
  c.i32(0).set(p);
  c.get(nIter).i32(64).i32Mul().set(it); // end offset
  c.loop();
  emitInterleaved(c, [0, 1, 2, 3].map((b) => () => {
    const { w, u, l1, l2, t, bad } = lanes[b];
    c.get(pert).get(p).i32Add().v128Load(16 * b).set(w);
    emitUniform(c, w, u, oneBits, oneMinus);
    emitNegGumbel(c, LK, u, l1, l2);
    c.get(theta).get(p).i32Add().v128Load(16 * b).set(t);
    c.get(bad).get(t).get(t).f32x4Ne().v128Or().get(t).get(inf).f32x4Eq().v128Or().set(bad);
  }));
  for (let b = 0; b < 4; b++) c.get(pert).get(p).i32Add().get(lanes[b].t).get(lanes[b].l2).f32x4Sub().v128Store(16 * b);
  c.get(p).i32(64).i32Add().tee(p).get(it).i32Ne().brIf(0);
  c.end();
  c.end();
  c.get(lanes[0].bad).get(lanes[1].bad).v128Or().get(lanes[2].bad).v128Or().get(lanes[3].bad).v128Or().set(bad);
  c.get(badAddr).get(bad).v128AnyTrue().i32Store(0);
}

/**
 * argRows(pert, theta, idx, mrow, mpert, flags, R, C) -> count: per row the first argmax D of pert, the maxima of
 * theta (mrow) and pert (mpert), and the rows whose top two perturbed values a >= b are too close for the
 * approximate noise to decide (a - b <= UNDECIDED_ABS + UNDECIDED_REL (|a| + |b|), b finite), listed in flags.
 */
function emitArgRows(c: Code): void {
  const [pert, theta, idx, mrow, mpert, flags, R, C] = [0, 1, 2, 3, 4, 5, 6, 7];
  const rw = prepareRows(c, R, C);
  const negInf = c.local(V128), accP = c.local(V128), acc2 = c.local(V128), accT = c.local(V128), idxV = c.local(V128);
  const p = c.local(V128), gt = c.local(V128), mv = c.local(V128), isMax = c.local(V128), cand = c.local(V128), big = c.local(V128);
  const D = c.local(I32), count = c.local(I32), m = c.local(F32), b = c.local(F32);
  c.v128ConstF32x4(-Infinity).set(negInf);
  c.v128ConstI32x4(0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff).set(big);
  c.i32(0).set(count);
  forRows(c, rw, () => {
    c.get(negInf).set(accP).get(negInf).set(acc2).get(negInf).set(accT).v128Const0().set(idxV);
    forVecs(c, rw, (tail) => {
      at(c, rw, pert).v128Load(0);
      if (tail) c.get(negInf).get(rw.tail).v128Bitselect();
      c.set(p);
      c.get(p).get(accP).f32x4Gt().set(gt);
      c.get(acc2).get(p).get(accP).f32x4Pmin().f32x4Pmax().set(acc2); // second largest per lane
      c.get(p).get(accP).get(gt).v128Bitselect().set(accP);
      c.get(rw.lane).get(idxV).get(gt).v128Bitselect().set(idxV); // first index of the lane's maximum
      at(c, rw, theta).v128Load(0);
      if (tail) c.get(negInf).get(rw.tail).v128Bitselect();
      c.get(accT).f32x4Pmax().set(accT);
    });
    c.get(accP).set(mv);
    hreduce(c, mv, 'max');
    c.get(accP).get(mv).f32x4Eq().set(isMax);
    c.get(idxV).get(big).get(isMax).v128Bitselect().set(cand);
    for (const sh of [SHUF_SWAP_HALVES, SHUF_SWAP_PAIRS]) c.get(cand).get(cand).get(cand).i8x16Shuffle(sh).i32x4MinS().set(cand);
    c.get(cand).i32x4ExtractLane(0).set(D);
    // runner-up: the lanes' second values and the other lanes' maxima
    c.get(acc2).get(negInf).get(accP).get(idxV).get(D).i32x4Splat().i32x4Eq().get(isMax).v128And().v128Bitselect().f32x4Pmax().set(acc2);
    hreduce(c, acc2, 'max');
    hreduce(c, accT, 'max');
    c.get(mv).f32x4ExtractLane(0).set(m);
    c.get(acc2).f32x4ExtractLane(0).set(b);
    c.get(idx).get(rw.r).i32(4).i32Mul().i32Add().get(D).i32Store(0);
    c.get(mrow).get(rw.r).i32(4).i32Mul().i32Add().get(accT).f32x4ExtractLane(0).f32Store(0);
    c.get(mpert).get(rw.r).i32(4).i32Mul().i32Add().get(m).f32Store(0);
    // undecided: b != -inf and !(a - b > 2^-18 + 2^-21 (|a| + |b|))
    c.get(b).f32Const(-Infinity).f32Ne();
    c.get(m).get(b).f32Sub();
    c.get(m).f32Abs().get(b).f32Abs().f32Add().f32Const(UNDECIDED_REL).f32Mul().f32Const(UNDECIDED_ABS).f32Add();
    c.f32Gt().i32Eqz().i32And().if_();
    c.get(flags).get(count).i32(4).i32Mul().i32Add().get(rw.r).i32Store(0);
    c.get(count).i32(1).i32Add().set(count);
    c.end();
  });
  c.get(count);
}

/** raoE(E, nIter, k0, k1, blkLo, blkHi): E = -log(u) (float32) for 16 nIter words from block (blkLo, blkHi) */
function emitRaoE(c: Code): void {
  const st = preparePhilox(c);
  const LK = prepareLog(c);
  const oneBits = c.local(V128), oneMinus = c.local(V128);
  const u = [0, 1, 2, 3].map(() => c.local(V128)), l = [0, 1, 2, 3].map(() => c.local(V128));
  c.v128ConstI32x4(0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000).set(oneBits);
  c.v128ConstF32x4(Math.fround(1 - 2 ** -24)).set(oneMinus);
  emitPhiloxLoop(c, st, (w, p) => {
    emitInterleaved(c, [0, 1, 2, 3].map((b) => () => {
      emitUniform(c, w[b], u[b], oneBits, oneMinus);
      emitLogF32x4(c, LK, u[b], l[b]);
    }));
    for (let b = 0; b < 4; b++) c.get(p).get(l[b]).f32x4Neg().v128Store(16 * b);
  });
}

/** philox(out, nIter, k0, k1, blkLo, blkHi): the raw words of 4 nIter blocks (for tests) */
function emitPhiloxWords(c: Code): void {
  emitPhiloxLoop(c, preparePhilox(c), (w, p) => {
    for (let b = 0; b < 4; b++) c.get(p).get(w[b]).v128Store(16 * b);
  });
}

/** elementwise test entry points over n4 vectors: which = 'exp' | 'log' | 'logs' (with specials) | 'negGumbel' */
function emitMap(c: Code, which: 'exp' | 'log' | 'logs' | 'negGumbel'): void {
  const [src, dst, n4] = [0, 1, 2];
  const i = c.local(I32), x = c.local(V128), y = c.local(V128), t = c.local(V128);
  const EK = which === 'exp' ? prepareExp(c) : null;
  const LK = which !== 'exp' ? prepareLog(c) : null;
  c.get(n4).if_();
  c.i32(0).set(i);
  c.loop();
  c.get(src).get(i).i32(16).i32Mul().i32Add().v128Load(0).set(x);
  if (EK) emitExpF32x4(c, EK, x, y);
  if (which === 'negGumbel') emitNegGumbel(c, LK!, x, t, y);
  else if (LK) emitLogF32x4(c, LK, x, y, which === 'logs');
  c.get(dst).get(i).i32(16).i32Mul().i32Add().get(y).v128Store(0);
  c.get(i).i32(1).i32Add().tee(i).get(n4).i32Ne().brIf(0);
  c.end();
  c.end();
}

/**
 * soft_<kind>(theta, pert, s, s2, idx, mrow, mpert, z1, z2, R, C, invTau, gap), after argRows: the surrogate's
 * numerators e = exp((x - max) / tau) in s and their row sums in z1 (the backward divides): x = theta (st),
 * pert (gumbel), theta~ (gst, gstp); reinmax also e2 = exp(theta - M) in s2 with sums z2 (its surrogate is
 * (e / z1 + onehot) / 2, and pi = e2 / z2); rao: w = exp(theta - M) and Z' = z1.
 * Phases over all rows (gst-p: row sums, then the gaps four rows at a time) keep dependency chains short.
 */
function emitSoft(c: Code, kind: FwdKind): void {
  const [theta, pert, s, s2, idx, mrow, mpert, z1, z2, R, C, invTau, gapP] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const rw = prepareRows(c, R, C);
  const EK = prepareExp(c);
  const LK = kind === 'gstp' ? prepareLog(c) : null;
  const v = c.local(V128), e = c.local(V128), baseV = c.local(V128), itV = c.local(V128), zacc = c.local(V128), dacc = c.local(V128);
  const eqD = c.local(V128), capV = c.local(V128), one = c.local(V128), tmpV = c.local(V128);
  const negInf = c.local(V128), zero = c.local(V128);
  const base = c.local(F32), D = c.local(I32), q = c.local(I32), r4 = c.local(I32);
  c.v128ConstF32x4(1).set(one);
  c.v128ConstF32x4(-Infinity).set(negInf);
  c.v128Const0().set(zero);
  c.get(invTau).f32x4Splat().set(itV);

  const rowAddr = (a: number) => c.get(a).get(rw.r).i32(4).i32Mul().i32Add();
  const rowBase = () => {
    // base = finite(max) of the row; D
    rowAddr(idx).i32Load(0).set(D);
    rowAddr(kind === 'gumbel' ? mpert : mrow).f32Load(0).set(base);
    c.f32Const(0).get(base).get(base).f32Const(-Infinity).f32Eq().select().f32x4Splat().set(baseV);
  };
  const eqDinto = () => c.get(rw.lane).get(D).i32x4Splat().i32x4Eq().set(eqD);

  // phase 1 of a softmax: out = exp((x - base) scale) over the row, zOut[r] = its sum
  const expPass = (x: () => void, scale: number | null, out: number, zOut: number) => {
    forRows(c, rw, () => {
      rowBase();
      if (kind === 'gst' || kind === 'gstp') c.get(z2).get(rw.r).i32(4).i32Mul().i32Add().f32Load(0).f32x4Splat().set(capV);
      c.v128Const0().set(zacc);
      forVecs(c, rw, (tail) => {
        x();
        c.get(baseV).f32x4Sub();
        if (scale !== null) c.get(scale).f32x4Mul();
        c.set(e);
        emitExpF32x4(c, EK, e, e);
        if (tail) c.get(e).get(rw.tail).v128And().set(e);
        at(c, rw, out).get(e).v128Store(0);
        c.get(zacc).get(e).f32x4Add().set(zacc);
      });
      hreduce(c, zacc, 'add');
      rowAddr(zOut).get(zacc).f32x4ExtractLane(0).f32Store(0);
    });
  };
  switch (kind) {
    case 'st':
      expPass(() => at(c, rw, theta).v128Load(0), itV, s, z1);
      break;
    case 'gumbel':
      expPass(() => at(c, rw, pert).v128Load(0), itV, s, z1);
      break;
    case 'gst':
    case 'gstp': {
      if (kind === 'gstp') {
        // pi_D = e^(theta_D - M) / sum e^(theta_j - M), times (1 - 1e-5): z1 = sum, z2 = numerator
        forRows(c, rw, () => {
          rowBase();
          c.v128Const0().set(zacc).v128Const0().set(dacc);
          forVecs(c, rw, (tail) => {
            at(c, rw, theta).v128Load(0).get(baseV).f32x4Sub().set(e);
            emitExpF32x4(c, EK, e, e);
            if (tail) c.get(e).get(rw.tail).v128And().set(e);
            eqDinto();
            c.get(zacc).get(e).f32x4Add().set(zacc);
            c.get(dacc).get(e).get(eqD).v128And().f32x4Add().set(dacc);
          });
          hreduce(c, zacc, 'add');
          hreduce(c, dacc, 'add');
          rowAddr(z1).get(zacc).f32x4ExtractLane(0).f32Store(0);
          rowAddr(z2).get(dacc).f32x4ExtractLane(0).f32Store(0);
        });
        // four rows at a time: u = 1 - pi_D; gap = -log(u) / (1 - u), or 1 where u rounds to 1; z2 = cap = M - gap
        c.get(R).if_();
        c.i32(0).set(q);
        c.loop();
        c.get(q).i32(4).i32Mul().set(r4);
        c.get(one).get(z2).get(r4).i32Add().v128Load(0).get(z1).get(r4).i32Add().v128Load(0).f32x4Div();
        c.v128ConstF32x4(1 - 1e-5).f32x4Mul().f32x4Sub().set(tmpV);
        emitLogF32x4(c, LK!, tmpV, v, true);
        c.get(one);
        c.get(v).f32x4Neg().get(one).get(tmpV).f32x4Sub().f32x4Div();
        c.get(tmpV).get(one).f32x4Eq().v128Bitselect().set(capV); // gap
        c.get(z2).get(r4).i32Add();
        c.get(zero).get(mrow).get(r4).i32Add().v128Load(0).tee(v).get(v).get(negInf).f32x4Eq().v128Bitselect(); // finite(M)
        c.get(capV).f32x4Sub().v128Store(0);
        c.get(q).i32(4).i32Add().tee(q).get(R).i32LtS().brIf(0);
        c.end();
        c.end();
      } else {
        // z2 = cap = finite(M) - gap per row
        forRows(c, rw, () => {
          rowAddr(mrow).f32Load(0).set(base);
          rowAddr(z2);
          c.f32Const(0).get(base).get(base).f32Const(-Infinity).f32Eq().select().get(gapP).f32Sub().f32Store(0);
        });
      }
      expPass(() => {
        eqDinto();
        c.get(baseV);
        c.get(capV); at(c, rw, theta).v128Load(0).f32x4Pmin(); // theta < cap ? theta : cap (a NaN cap stays)
        c.get(eqD).v128Bitselect();
      }, itV, s, z1);
      break;
    }
    case 'reinmax':
      expPass(() => at(c, rw, theta).v128Load(0), itV, s, z1);
      expPass(() => at(c, rw, theta).v128Load(0), null, s2, z2);
      break;
    case 'rao':
      expPass(() => at(c, rw, theta).v128Load(0), null, s, z1);
      break;
  }
}

/**
 * vjp1(e, z, g, out, R, C, scale): with s = e / z[r] per row, out = scale s (g - <s, g>).
 * vjp2(e1, e2, z1, z2, idx, g, out, R, C) (reinmax): with s = (e1 / z1[r] + onehot(D)) / 2 and pi = e2 / z2[r],
 * out = 2 s (g - <s, g>) - pi (g - <pi, g>) / 2.
 * The forward leaves the softmax numerators unnormalised (z = their row sums), which saves it a pass.
 */
function emitVjp(c: Code, two: boolean): void {
  const [e1, e2, z1, z2, idx, g, out, R, C, scale] = two ? [0, 1, 2, 3, 4, 5, 6, 7, 8, -1] : [0, -1, 1, -1, -1, 2, 3, 4, 5, 6];
  const rw = prepareRows(c, R, C);
  const d1 = c.local(V128), d2 = c.local(V128), gv = c.local(V128), sc1 = c.local(V128), sc2 = c.local(V128), oh = c.local(V128);
  const one = c.local(V128), half = c.local(V128);
  const inv1 = c.local(F32), inv2 = c.local(F32), gD = c.local(F32), D = c.local(I32);
  c.v128ConstF32x4(1).set(one);
  c.v128ConstF32x4(0.5).set(half);
  const rowAddr = (a: number) => c.get(a).get(rw.r).i32(4).i32Mul().i32Add();
  forRows(c, rw, () => {
    c.f32Const(1); rowAddr(z1).f32Load(0); c.f32Div().set(inv1);
    if (two) {
      c.f32Const(1); rowAddr(z2).f32Load(0); c.f32Div().set(inv2);
      rowAddr(idx).i32Load(0).set(D);
      c.get(g).get(rw.ro).i32Add().get(D).i32(4).i32Mul().i32Add().f32Load(0).set(gD);
    }
    c.v128Const0().set(d1).v128Const0().set(d2);
    forVecs(c, rw, (tail) => {
      at(c, rw, g).v128Load(0).set(gv);
      c.get(d1); at(c, rw, e1).v128Load(0).get(gv).f32x4Mul(); masked(c, rw, tail); c.f32x4Add().set(d1);
      if (two) { c.get(d2); at(c, rw, e2).v128Load(0).get(gv).f32x4Mul(); masked(c, rw, tail); c.f32x4Add().set(d2); }
    });
    hreduce(c, d1, 'add');
    if (two) {
      // <s, g> = (inv1 <e1, g> + g_D) / 2; <pi, g> = inv2 <e2, g>
      c.get(d1).get(inv1).f32x4Splat().f32x4Mul().get(gD).f32x4Splat().f32x4Add().get(half).f32x4Mul().set(d1);
      hreduce(c, d2, 'add');
      c.get(d2).get(inv2).f32x4Splat().f32x4Mul().set(d2);
      c.get(inv1).f32x4Splat().set(sc1);
      c.get(inv2).f32Const(0.5).f32Mul().f32x4Splat().set(sc2);
    } else {
      c.get(d1).get(inv1).f32x4Splat().f32x4Mul().set(d1);
      c.get(scale).get(inv1).f32Mul().f32x4Splat().set(sc1);
    }
    forVecs(c, rw, () => {
      at(c, rw, g).v128Load(0).set(gv);
      at(c, rw, out);
      if (two) {
        // (e1 inv1 + onehot) (g - d1) - (e2 inv2 / 2) (g - d2)
        c.get(one).get(rw.lane).get(D).i32x4Splat().i32x4Eq().v128And().set(oh);
        at(c, rw, e1).v128Load(0).get(sc1).f32x4Mul().get(oh).f32x4Add().get(gv).get(d1).f32x4Sub().f32x4Mul();
        at(c, rw, e2).v128Load(0).get(sc2).f32x4Mul().get(gv).get(d2).f32x4Sub().f32x4Mul();
        c.f32x4Sub();
      } else {
        at(c, rw, e1).v128Load(0).get(sc1).f32x4Mul().get(gv).get(d1).f32x4Sub().f32x4Mul();
      }
      c.v128Const0().f32x4Add(); // -0 -> +0, as the JS kernel's accumulation gives masked categories
      c.v128Store(0);
    });
  });
}

/**
 * raoRows(E, w, zp, idx, g, out, V, t1, t2, R, C, scale, p): one conditional draw of rao_gumbel, accumulated:
 * x_D = E_D / Z', v_j = x_D w_j / (E_j + x_D w_j) (v_D = 1), v^p if p != 1 (variant), s = v / sum v,
 * out += scale s (g - <s, g>). Two phases over the rows: v (into V) with t1 = scale / sum v and
 * t2 = <v, g> / sum v, then the update.
 */
function emitRaoRows(c: Code, pow: boolean): void {
  const [E, w, zp, idx, g, out, V, t1, t2, R, C, scale, pP] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const rw = prepareRows(c, R, C);
  const EK: ExpConsts | null = pow ? prepareExp(c) : null;
  const LK = pow ? prepareLog(c) : null;
  const D = c.local(I32), xD = c.local(V128), v = c.local(V128), zacc = c.local(V128), gacc = c.local(V128);
  const one = c.local(V128), pv = c.local(V128), cc = c.local(V128), dot = c.local(V128), nw = c.local(V128);
  const inv = c.local(F32);
  c.v128ConstF32x4(1).set(one);
  c.get(pP).f32x4Splat().set(pv);
  const rowAddr = (a: number) => c.get(a).get(rw.r).i32(4).i32Mul().i32Add();
  forRows(c, rw, () => {
    rowAddr(idx).i32Load(0).set(D);
    // x_D = E[ro + 4D] / zp[r]
    c.get(E).get(rw.ro).i32Add().get(D).i32(4).i32Mul().i32Add().f32Load(0);
    rowAddr(zp).f32Load(0);
    c.f32Div().f32x4Splat().set(xD);
    c.v128Const0().set(zacc).v128Const0().set(gacc);
    forVecs(c, rw, (tail) => {
      // v = xw / (E + xw), xw = x_D w
      c.get(xD); at(c, rw, w).v128Load(0).f32x4Mul().set(v);
      c.get(v); at(c, rw, E).v128Load(0).get(v).f32x4Add().f32x4Div().set(v);
      c.get(one).get(v).get(rw.lane).get(D).i32x4Splat().i32x4Eq().v128Bitselect().set(v);
      if (pow) {
        emitLogF32x4(c, LK!, v, v, true);
        c.get(v).get(pv).f32x4Mul().set(v);
        emitExpF32x4(c, EK!, v, v);
      }
      if (tail) c.get(v).get(rw.tail).v128And().set(v);
      at(c, rw, V).get(v).v128Store(0);
      c.get(zacc).get(v).f32x4Add().set(zacc);
      c.get(gacc).get(v); at(c, rw, g).v128Load(0).f32x4Mul(); masked(c, rw, tail); c.f32x4Add().set(gacc);
    });
    hreduce(c, zacc, 'add');
    hreduce(c, gacc, 'add');
    c.f32Const(1).get(zacc).f32x4ExtractLane(0).f32Div().set(inv);
    rowAddr(t1).get(scale).get(inv).f32Mul().f32Store(0);
    rowAddr(t2).get(gacc).f32x4ExtractLane(0).get(inv).f32Mul().f32Store(0);
  });
  forRows(c, rw, () => {
    rowAddr(t1).v128Load32Splat(0).set(cc);
    rowAddr(t2).v128Load32Splat(0).set(dot);
    forVecs(c, rw, (tail) => {
      at(c, rw, out).v128Load(0).set(nw);
      c.get(nw).get(cc); at(c, rw, V).v128Load(0).f32x4Mul();
      at(c, rw, g).v128Load(0).get(dot).f32x4Sub().f32x4Mul().f32x4Add();
      if (tail) c.get(nw).get(rw.tail).v128Bitselect();
      c.set(nw);
      at(c, rw, out).get(nw).v128Store(0);
    });
  });
}

// ------------------------------------------------------------------ module + JS API

type Fn = (...a: number[]) => number;

interface Exports {
  philox: Fn; gumbelPert: Fn; argRows: Fn; raoE: Fn; raoRows: Fn; raoRowsPow: Fn; vjp1: Fn; vjp2: Fn;
  mapExp: Fn; mapLog: Fn; mapLogS: Fn; mapNegGumbel: Fn;
  [k: `soft_${string}`]: Fn;
}

const EXPORT_NAMES = ['gumbelPert', 'argRows', 'vjp1', 'vjp2', ...KINDS.map((k) => `soft_${k}`)];

/**
 * raoLoop(ex, E, w, zp, idx, g, out, V, t1, t2, R, C, scale, p, k, k0, k1, N, w0, pow): rao_gumbel's backward over
 * rows of a region whose first logit is word w0 of each draw's N words: per draw kk, the Exp(1) variates of words
 * kk N + w0 ... (raoE, from the block holding the first) and the draw's VJP accumulated into out (raoRows). Plain
 * JS over the exports, so that the worker thread can run it too (Splitter scripts).
 */
const RAO_LOOP_SRC = `function raoLoop(ex, E, w, zp, idx, g, out, V, t1, t2, R, C, scale, p, k, k0, k1, N, w0, pow) {
  const n = R * C, rows = pow ? ex.raoRowsPow : ex.raoRows;
  for (let kk = 0; kk < k; kk++) {
    const start = kk * N + w0;
    const blk = Math.floor(start / 4), skip = start - 4 * blk;
    ex.raoE(E - 4 * skip, Math.ceil((n + skip) / 16), k0, k1, blk >>> 0, Math.floor(blk / 4294967296) | 0);
    rows(E, w, zp, idx, g, out, V, t1, t2, R, C, scale, p);
  }
  return 0;
}`;
const SCRIPTS: Record<string, string> = { raoLoop: RAO_LOOP_SRC };
// eslint-disable-next-line @typescript-eslint/no-implied-eval
const LOCAL_SCRIPTS: Record<string, (ex: unknown, ...a: number[]) => number> = { raoLoop: new Function(`return ${RAO_LOOP_SRC}`)() };

function buildModule(): Uint8Array<ArrayBuffer> {
  // shared memory: a worker thread runs the same kernels on half of the rows (Splitter)
  const mb = new ModuleBuilder({ module: 'env', field: 'mem', initialPages: 1, maxPages: MAX_PAGES, shared: true });
  const i = (n: number): ValType[] => Array(n).fill(I32);
  mb.func('philox', i(6), [], emitPhiloxWords);
  mb.func('gumbelPert', i(7), [], emitGumbelPert);
  mb.func('argRows', i(8), [I32], emitArgRows);
  mb.func('raoE', i(6), [], emitRaoE);
  mb.func('raoRows', [...i(11), F32, F32], [], (c) => emitRaoRows(c, false));
  mb.func('raoRowsPow', [...i(11), F32, F32], [], (c) => emitRaoRows(c, true));
  mb.func('vjp1', [...i(6), F32], [], (c) => emitVjp(c, false));
  mb.func('vjp2', i(9), [], (c) => emitVjp(c, true));
  for (const k of KINDS) mb.func(`soft_${k}`, [...i(11), F32, F32], [], (c) => emitSoft(c, k));
  mb.func('mapExp', i(3), [], (c) => emitMap(c, 'exp'));
  mb.func('mapLog', i(3), [], (c) => emitMap(c, 'log'));
  mb.func('mapLogS', i(3), [], (c) => emitMap(c, 'logs'));
  mb.func('mapNegGumbel', i(3), [], (c) => emitMap(c, 'negGumbel'));
  return mb.encode();
}

export interface FwdResult {
  /** argmax D per row */
  index: Int32Array;
  /** max of theta per row (-Infinity: every category masked) */
  rowMax: Float32Array;
  /** the surrogate softmax's numerators (rao: w = exp(theta - M)) */
  e: Float32Array;
  /** their row sums (rao: Z') */
  z: Float32Array;
  /** reinmax: numerators and row sums of softmax(theta) */
  e2: Float32Array | null;
  z2: Float32Array | null;
}

export class EstimatorKernels {
  private f32!: Float32Array;
  private i32!: Int32Array;
  private top = HEAP_START;
  /** rows whose sample was decided with the op path's exact noise (near ties of the float32 noise); for tests */
  rowsRedone = 0;
  /** arrays handed back by recycle(), reused for the next forward's outputs: a fresh large typed array costs a
   *  page fault per 4 KiB on first touch (0.2 to 0.4 ms for logits of 400k elements) */
  private spare: Float32Array[] = [];

  /** the module's slot in each splitter it was shared with */
  private slots = new WeakMap<Splitter, number>();

  constructor(private readonly mem: WebAssembly.Memory, readonly ex: Exports, private readonly bytes: Uint8Array) { this.views(); }

  private views(): void {
    this.f32 = new Float32Array(this.mem.buffer);
    this.i32 = new Int32Array(this.mem.buffer);
  }

  /** start a new call's allocations */
  reset(): void { this.top = HEAP_START; }

  /** room for n floats (or ints), 16-byte aligned with PAD bytes on both sides; returns the byte offset */
  alloc(n: number): number {
    const at = this.top + PAD;
    this.top = at + Math.ceil((4 * n) / 16) * 16 + PAD;
    const need = this.top - this.mem.buffer.byteLength;
    if (need > 0) {
      const pages = Math.ceil(need / 65536);
      if (this.mem.buffer.byteLength / 65536 + pages > MAX_PAGES) throw new RangeError('estimator kernels: out of wasm memory');
      this.mem.grow(pages);
      this.views();
    }
    return at;
  }

  get F32(): Float32Array { return this.f32; }
  get I32(): Int32Array { return this.i32; }

  /** words [start, start + n) of the Philox stream under (k0, k1), as engine/philox.ts's philoxWords (start may
   *  fall inside a block: the kernel writes from the block's first word, skip words before the result) */
  philoxWords(k0: number, k1: number, start: number, n: number): Int32Array {
    this.reset();
    const blk = Math.floor(start / 4), skip = start - 4 * blk;
    const out = this.alloc(n + 32);
    this.ex.philox(out - 4 * skip, Math.ceil((n + skip) / 16), k0 | 0, k1 | 0, blk >>> 0, Math.floor(blk / 4294967296) | 0);
    return this.i32.slice(out >> 2, (out >> 2) + n);
  }

  /** elementwise float32 maps for tests: exp, log, log with specials (0, NaN, subnormals), log(-log u) */
  map(which: 'exp' | 'log' | 'logs' | 'negGumbel', x: Float32Array): Float32Array {
    this.reset();
    const n4 = Math.ceil(x.length / 4);
    const src = this.alloc(4 * n4), dst = this.alloc(4 * n4);
    this.f32.set(x, src >> 2);
    const fn = { exp: this.ex.mapExp, log: this.ex.mapLog, logs: this.ex.mapLogS, negGumbel: this.ex.mapNegGumbel }[which];
    fn(src, dst, n4);
    return this.f32.slice(dst >> 2, (dst >> 2) + x.length);
  }

  /** Rows of a call, in one region or two (the second for the splitter's worker thread). Each region has arrays
   *  of its own: a row's partial last vector writes up to 3 lanes past the row, which must not land in rows
   *  that the other thread computes. A split row is a multiple of 4 (gst-p's four-row groups), so that the
   *  first element of the second region is a multiple of 4 (whole Philox blocks). */
  private regions(R: number, C: number, sp: Splitter | null): { r0: number; rows: number }[] {
    if (sp && sp.workerActive && R * C >= SPLIT_MIN && R >= 8) {
      const R1 = Math.round(R / 8) * 4;
      if (R1 > 0 && R1 < R) return [{ r0: 0, rows: R1 }, { r0: R1, rows: R - R1 }];
    }
    return [{ r0: 0, rows: R }];
  }

  /** the splitter's slot for this module (shared with its worker on first use) */
  private slotIn(sp: Splitter): number {
    let slot = this.slots.get(sp);
    if (slot === undefined) {
      slot = sp.shareModule(this.bytes, this.mem, EXPORT_NAMES, SCRIPTS);
      this.slots.set(sp, slot);
    }
    return slot;
  }

  /** Run each region's calls: the second region's on the splitter's worker thread while the first runs here.
   *  prep(q) copies region q's inputs in and fin(q) its outputs out, so that with two regions the copies of the
   *  first overlap the worker's work (the second's inputs are copied before the worker starts). Returns each
   *  region's call results. */
  private runRegions(sp: Splitter | null, nReg: number, prep: (q: number) => void, calls: (q: number) => [string, number[]][],
    fin: (q: number) => void): number[][] {
    const run = (q: number) => calls(q).map(([name, args]) => {
      const r = name in LOCAL_SCRIPTS ? LOCAL_SCRIPTS[name](this.ex, ...args) : (this.ex as unknown as Record<string, Fn>)[name](...args);
      return typeof r === 'number' ? r : 0;
    });
    if (nReg === 1) {
      prep(0);
      const r = run(0);
      fin(0);
      return [r];
    }
    prep(1);
    let mine: number[] = [];
    const theirs = sp!.split(this.slotIn(sp!), calls(1), () => {
      prep(0);
      mine = run(0);
      fin(0);
    });
    fin(1);
    return [mine, theirs];
  }

  /**
   * Forward on float32 logits X (R rows of C). mask: 0 = masked (same length), or null. gap: gst's fixed gap.
   * sp: a worker thread to give half of the rows to (large calls only), or null. surrogate: false when no
   * backward can follow (the result's e, z, e2 and z2 are then empty and the surrogate is not computed).
   * Returns null where a logit is NaN or +Infinity (the caller's JS kernel reports or handles those).
   */
  forward(kind: FwdKind, X: Float32Array, mask: ArrayLike<number> | null, R: number, C: number, tau: number, gap: number,
    k0: number, k1: number, sp: Splitter | null = null, surrogate = true): FwdResult | null {
    const N = R * C;
    this.reset();
    const regs = this.regions(R, C, sp).map(({ r0, rows }) => {
      const n = rows * C, nIter = Math.ceil(n / 16);
      return {
        r0, rows, n, nIter, theta: this.alloc(nIter * 16), pert: this.alloc(nIter * 16), s: this.alloc(n),
        s2: kind === 'reinmax' ? this.alloc(n) : 0, idx: this.alloc(rows), mrow: this.alloc(rows), mpert: this.alloc(rows),
        z1: this.alloc(rows), z2: this.alloc(rows), flags: this.alloc(rows), bad: this.alloc(4),
      };
    });
    type Reg = (typeof regs)[number];
    const two = kind === 'reinmax';
    const res: FwdResult = {
      index: new Int32Array(R), rowMax: new Float32Array(R),
      e: surrogate ? this.spareOf(N) : new Float32Array(0), z: new Float32Array(surrogate ? R : 0),
      e2: surrogate && two ? this.spareOf(N) : null, z2: surrogate && two ? new Float32Array(R) : null,
    };
    let badInput = false;
    const prep = (q: number) => {
      const g = regs[q], f32 = this.f32, th = g.theta >> 2, o = g.r0 * C;
      if (mask) {
        for (let i = 0; i < g.n; i++) {
          const x = X[o + i];
          if (x !== x || x === Infinity) badInput = true;
          f32[th + i] = mask[o + i] ? x : -Infinity;
        }
      } else f32.set(X.subarray(o, o + g.n), th);
      f32.fill(0, th + g.n, th + g.nIter * 16);
    };
    const copy = (from: number, n: number, to: Float32Array | Int32Array, at: number) =>
      to.set((to instanceof Int32Array ? this.i32 : this.f32).subarray(from >> 2, (from >> 2) + n), at);
    const fin = (q: number) => {
      const g = regs[q];
      copy(g.idx, g.rows, res.index, g.r0);
      copy(g.mrow, g.rows, res.rowMax, g.r0);
      if (!surrogate) return;
      copy(g.s, g.n, res.e, g.r0 * C);
      copy(g.z1, g.rows, res.z, g.r0);
      if (two) {
        copy(g.s2, g.n, res.e2!, g.r0 * C);
        copy(g.z2, g.rows, res.z2!, g.r0);
      }
    };
    const soft = (g: Reg): [string, number[]] => [`soft_${kind}`,
      [g.theta, g.pert, g.s, g.s2, g.idx, g.mrow, g.mpert, g.z1, g.z2, g.rows, C, 1 / tau, gap]];
    const rets = this.runRegions(sp, regs.length, prep, (q) => {
      const g = regs[q];
      return [
        ['gumbelPert', [g.theta, g.pert, g.nIter, k0 | 0, k1 | 0, (g.r0 * C) / 4, g.bad]],
        ['argRows', [g.pert, g.theta, g.idx, g.mrow, g.mpert, g.flags, g.rows, C]],
        ...(surrogate ? [soft(g)] : []),
      ];
    }, fin);
    if (badInput || regs.some((g) => this.i32[g.bad >> 2])) {
      this.recycle(res);
      return null;
    }
    regs.forEach((g, q) => {
      const nFlag = rets[q][1];
      if (nFlag === 0) return;
      this.redoRows(g.flags, nFlag, g.r0, g.theta >> 2, g.pert >> 2, g.idx >> 2, g.mpert >> 2, C, k0, k1);
      if (surrogate) {
        // the surrogate again over the region (rows write into the next row's first lanes, so not just the redone rows)
        const [name, args] = soft(g);
        (this.ex as unknown as Record<string, Fn>)[name](...args);
      }
      fin(q);
    });
    return res;
  }

  /** an array of n floats: a recycled one where one of that length is spare */
  private spareOf(n: number): Float32Array {
    const i = this.spare.findIndex((a) => a.length === n);
    return i >= 0 ? this.spare.splice(i, 1)[0] : new Float32Array(n);
  }

  /** Hand a forward result's large arrays back for reuse once the backward is done with them (f must not be used
   *  afterwards). Keeps at most 8 arrays. */
  recycle(f: FwdResult): void {
    for (const a of [f.e, f.e2]) {
      if (!a || a.length < 1024) continue;
      this.spare.push(a);
      if (this.spare.length > 8) this.spare.shift();
    }
  }

  /** undecided rows of a region starting at row r0: the op path's noise (Math.log, each log rounded to float32),
   *  its perturbed logits and argmax (th, pe, ix, mp: the region's arrays, as float / int indices) */
  private redoRows(flags: number, nFlag: number, r0: number, th: number, pe: number, ix: number, mp: number, C: number, k0: number, k1: number): void {
    const words = new Int32Array(C);
    const f32 = this.f32;
    for (let q = 0; q < nFlag; q++) {
      const r = this.i32[(flags >> 2) + q];
      const o = r * C;
      philoxWordsJs(k0, k1, (r0 + r) * C, words);
      let best = 0, bv = -Infinity;
      for (let j = 0; j < C; j++) {
        const u = ((words[j] >>> 9) + 0.5) * 1.1920928955078125e-7;
        const G = -Math.fround(Math.log(-Math.fround(Math.log(u))));
        const p = Math.fround(f32[th + o + j] + G);
        f32[pe + o + j] = p;
        if (j === 0 || p > bv) { best = j; bv = p; }
      }
      this.i32[ix + r] = best;
      f32[mp + r] = bv;
      this.rowsRedone++;
    }
  }

  /** scale s (g - <s, g>) per row with s = e / z (vjp1), or reinmax's backward (vjp2, with e2, z2 and index), into out;
   *  sp as for forward */
  backwardSoftmax(f: FwdResult, G: ArrayLike<number>, R: number, C: number, scale: number, out: Float32Array = new Float32Array(R * C),
    sp: Splitter | null = null): Float32Array {
    const two = f.e2 !== null;
    this.reset();
    const regs = this.regions(R, C, sp).map(({ r0, rows }) => {
      const n = rows * C;
      return {
        r0, rows, n, ep: this.alloc(n), zp: this.alloc(rows), gp: this.alloc(n), op: this.alloc(n),
        e2p: two ? this.alloc(n) : 0, z2p: two ? this.alloc(rows) : 0, ip: two ? this.alloc(rows) : 0,
      };
    });
    const Gf = G as Float32Array;
    const prep = (q: number) => {
      const g = regs[q], f32 = this.f32, o = g.r0 * C;
      f32.set(f.e.subarray(o, o + g.n), g.ep >> 2);
      f32.set(f.z.subarray(g.r0, g.r0 + g.rows), g.zp >> 2);
      f32.set(Gf.subarray(o, o + g.n), g.gp >> 2);
      if (two) {
        f32.set(f.e2!.subarray(o, o + g.n), g.e2p >> 2);
        f32.set(f.z2!.subarray(g.r0, g.r0 + g.rows), g.z2p >> 2);
        this.i32.set(f.index.subarray(g.r0, g.r0 + g.rows), g.ip >> 2);
      }
    };
    const fin = (q: number) => {
      const g = regs[q];
      out.set(this.f32.subarray(g.op >> 2, (g.op >> 2) + g.n), g.r0 * C);
    };
    this.runRegions(sp, regs.length, prep, (q): [string, number[]][] => {
      const g = regs[q];
      return [two
        ? ['vjp2', [g.ep, g.e2p, g.zp, g.z2p, g.ip, g.gp, g.op, g.rows, C]]
        : ['vjp1', [g.ep, g.zp, g.gp, g.op, g.rows, C, scale]]];
    }, fin);
    return out;
  }

  /** rao_gumbel's backward: the mean over k conditional draws of the surrogate VJP (draw kk: words kk N ... of kRao),
   *  into out; sp as for forward */
  backwardRao(w: Float32Array, zp: Float32Array, index: Int32Array, G: ArrayLike<number>, R: number, C: number, tau: number,
    k: number, k0: number, k1: number, out: Float32Array = new Float32Array(R * C), sp: Splitter | null = null): Float32Array {
    const N = R * C;
    this.reset();
    const regs = this.regions(R, C, sp).map(({ r0, rows }) => {
      const n = rows * C;
      return {
        r0, rows, n, wp: this.alloc(n), zpp: this.alloc(rows), ip: this.alloc(rows), gp: this.alloc(n), op: this.alloc(n),
        ep: this.alloc(n + 32), V: this.alloc(n), t1: this.alloc(rows), t2: this.alloc(rows),
      };
    });
    const Gf = G as Float32Array;
    const p = 1 / tau;
    const scale = 1 / (tau * k);
    const prep = (q: number) => {
      const g = regs[q], f32 = this.f32, o = g.r0 * C;
      f32.set(w.subarray(o, o + g.n), g.wp >> 2);
      f32.set(zp.subarray(g.r0, g.r0 + g.rows), g.zpp >> 2);
      this.i32.set(index.subarray(g.r0, g.r0 + g.rows), g.ip >> 2);
      f32.set(Gf.subarray(o, o + g.n), g.gp >> 2);
      f32.fill(0, g.op >> 2, (g.op >> 2) + g.n);
    };
    const fin = (q: number) => {
      const g = regs[q];
      out.set(this.f32.subarray(g.op >> 2, (g.op >> 2) + g.n), g.r0 * C);
    };
    this.runRegions(sp, regs.length, prep, (q): [string, number[]][] => {
      const g = regs[q];
      return [['raoLoop', [g.ep, g.wp, g.zpp, g.ip, g.gp, g.op, g.V, g.t1, g.t2, g.rows, C, scale, p, k, k0 | 0, k1 | 0, N, g.r0 * C, p !== 1 ? 1 : 0]]];
    }, fin);
    return out;
  }
}

let cached: EstimatorKernels | null | undefined;

/** The kernels, built on first use; null where WebAssembly SIMD is unavailable. */
export function estimatorKernels(): EstimatorKernels | null {
  if (cached !== undefined) return cached;
  cached = null;
  try {
    cached = buildEstimatorKernelsStrict();
  } catch {
    cached = null;
  }
  return cached;
}

/** A fresh instance (throws where the module does not compile); tests use it directly. */
export function buildEstimatorKernelsStrict(): EstimatorKernels {
  const bytes = buildModule();
  if (!WebAssembly.validate(bytes)) throw new Error('estimator kernels: module does not validate (no WebAssembly SIMD?)');
  const mem = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem } });
  return new EstimatorKernels(mem, inst.exports as unknown as Exports, bytes);
}

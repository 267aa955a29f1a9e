// Generates the wasm module holding the float32 GEMM micro-kernel and the A/B packing routines.
//
// Layout conventions (all pointers are byte addresses into the shared memory):
//  - B is packed into column panels of NR = 4*NV floats: panel p holds, for kk = 0..k-1, the NR
//    values B[kk][p*NR .. p*NR+NR) contiguously, so one panel is k*NR floats.
//  - A is packed into row tiles of MR rows: tile t holds, for kk = 0..k-1, the MR values
//    A[t*MR .. t*MR+MR)[kk] contiguously, so one tile is k*MR floats. Both A layouts (row-major
//    (m, k), or (k, m) for transA) are absorbed by the two A-packing routines, so there is one
//    micro-kernel, and its k loop advances exactly two pointers by constants.
//  - C is written as full MR x NR tiles into a row-major buffer with row stride ldc bytes
//    (ldc >= number of panels * NR * 4); the caller copies the valid m x n part out.
// The whole K dimension is accumulated in registers (MR*NV v128 accumulators), k innermost.
//
// Tile shape, measured on V8 11.3 / Zen 4 (kernel only, no packing): 4x8 with packed A ~40-41
// GFLOPS on every VAE shape; 2x16 with A read in place ~40 for row-major A but 30-35 for the
// transA shapes (A read column-wise, k = 100); 2x16 with packed A ~36 (fewer instructions, yet
// slower); 3x8 ~37; 5x8 ~32; 4x8 'b-first' ~37.5. V8 keeps at most ~15 v128 values in registers
// (xmm15 is its scratch register), so larger tiles or k-unrolling spill. TurboFan itself unrolls
// the k loop 2x (stack check in one copy only).
import { Code, ModuleBuilder, I32, V128 } from './emit.ts';

export interface KernelConfig {
  mr: number; // rows per tile
  nv: number; // v128 vectors per tile row (NR = 4*nv columns)
  relaxed: boolean; // use f32x4.relaxed_madd instead of mul+add
  /** 'b-first': load all NV b vectors, then one broadcast a at a time; 'a-first': load all MR
   *  broadcast a values, then one b vector at a time. Changes the number of live v128 values. */
  order: 'a-first' | 'b-first';
}

export const DEFAULT_CONFIG: Omit<KernelConfig, 'relaxed' | 'order'> = { mr: 4, nv: 2 };
export const defaultOrder = (relaxed: boolean): KernelConfig['order'] => (relaxed ? 'b-first' : 'a-first');

export const MEM_MODULE = 'env';
export const MEM_FIELD = 'mem';
export const MAX_PAGES = 32768; // 2 GiB

/** gemm(aPack, bp, cPtr, ldc, t0, t1, k, p0, p1, tLast, mEdge, pLast, nEdge, bias, relu): for panels p
 *  in [p0,p1) and row tiles t in [t0,t1), C tile = packed A tile @ packed B panel, then (epilogue) plus the
 *  bias row at byte address `bias` (0: none; one float per column, read a whole panel at a time) and, if
 *  relu != 0, max(., 0). Tile tLast stores only its first mEdge rows and panel pLast its first nEdge columns
 *  (mEdge = MR and nEdge = NR store whole tiles), so C can be the caller's exact m x n array, with row
 *  stride ldc = 4n bytes. */
function emitGemm(c: Code, cfg: KernelConfig): void {
  const { mr, nv, relaxed, order } = cfg;
  const nrBytes = nv * 16, aStep = mr * 4;
  const [aPack, bp, cPtr, ldc, t0, t1, k, p0, p1, tLast, mEdge, pLast, nEdge, bias, relu] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
  const p = c.local(I32), t = c.local(I32), pa = c.local(I32), pb = c.local(I32), pbEnd = c.local(I32);
  const pbBase = c.local(I32), crow = c.local(I32), aTile = c.local(I32), kB = c.local(I32);
  const rows = c.local(I32), cols = c.local(I32);
  const acc: number[][] = [];
  for (let r = 0; r < mr; r++) { acc.push([]); for (let v = 0; v < nv; v++) acc[r].push(c.local(V128)); }
  const bv: number[] = [];
  for (let v = 0; v < (order === 'b-first' ? nv : 1); v++) bv.push(c.local(V128));
  const av: number[] = [];
  for (let r = 0; r < (order === 'a-first' ? mr : 1); r++) av.push(c.local(V128));
  const fma = (a: number, b: number, dst: number) => {
    if (relaxed) c.get(a).get(b).get(dst).f32x4RelaxedMadd().set(dst);
    else c.get(dst).get(a).get(b).f32x4Mul().f32x4Add().set(dst);
  };

  c.get(k).i32(aStep).i32Mul().set(aTile);
  c.get(k).i32(nrBytes).i32Mul().set(kB);
  c.get(p0).set(p);
  c.block().loop();
  c.get(p).get(p1).i32GeS().brIf(1);
  c.get(bp).get(p).get(kB).i32Mul().i32Add().set(pbBase);
  c.get(t0).set(t);
  c.block().loop();
  c.get(t).get(t1).i32GeS().brIf(1);
  c.get(aPack).get(t).get(aTile).i32Mul().i32Add().set(pa);
  c.get(pbBase).tee(pb).get(kB).i32Add().set(pbEnd);
  for (let r = 0; r < mr; r++) for (let v = 0; v < nv; v++) c.v128Const0().set(acc[r][v]);
  // k loop (k >= 1 guaranteed by the caller)
  c.loop();
  if (order === 'b-first') {
    for (let v = 0; v < nv; v++) c.get(pb).v128Load(v * 16).set(bv[v]);
    for (let r = 0; r < mr; r++) {
      c.get(pa).v128Load32Splat(r * 4).set(av[0]);
      for (let v = 0; v < nv; v++) fma(av[0], bv[v], acc[r][v]);
    }
  } else {
    for (let r = 0; r < mr; r++) c.get(pa).v128Load32Splat(r * 4).set(av[r]);
    for (let v = 0; v < nv; v++) {
      c.get(pb).v128Load(v * 16).set(bv[0]);
      for (let r = 0; r < mr; r++) fma(av[r], bv[0], acc[r][v]);
    }
  }
  c.get(pa).i32(aStep).i32Add().set(pa);
  c.get(pb).i32(nrBytes).i32Add().tee(pb).get(pbEnd).i32Ne().brIf(0);
  c.end();
  // epilogue: + bias (float32 adds, as the separate op rounds them), then relu (f32x4.max: NaN stays NaN,
  // -0 becomes +0, as Math.max(x, 0) in the JS path)
  c.get(bias).if_();
  for (let v = 0; v < nv; v++) {
    c.get(bias).get(p).i32(nrBytes).i32Mul().i32Add().v128Load(v * 16).set(bv[0]);
    for (let r = 0; r < mr; r++) c.get(acc[r][v]).get(bv[0]).f32x4Add().set(acc[r][v]);
  }
  c.end();
  c.get(relu).if_();
  c.v128Const0().set(av[0]);
  for (let r = 0; r < mr; r++) for (let v = 0; v < nv; v++) c.get(acc[r][v]).get(av[0]).f32x4Max().set(acc[r][v]);
  c.end();
  // store the tile: whole, or (edge tiles) its first `rows` rows and `cols` columns lane by lane
  c.get(cPtr).get(t).i32(mr).i32Mul().get(ldc).i32Mul().i32Add().get(p).i32(nrBytes).i32Mul().i32Add().set(crow);
  c.get(mEdge).i32(mr).get(t).get(tLast).i32Eq().select().set(rows);
  c.get(nEdge).i32(nv * 4).get(p).get(pLast).i32Eq().select().set(cols);
  c.get(rows).i32(mr).i32Eq().get(cols).i32(nv * 4).i32Eq().i32And();
  c.if_();
  for (let r = 0; r < mr; r++) {
    for (let v = 0; v < nv; v++) c.get(crow).get(acc[r][v]).v128Store(v * 16);
    if (r + 1 < mr) c.get(crow).get(ldc).i32Add().set(crow);
  }
  c.else_();
  for (let r = 0; r < mr; r++) {
    c.get(rows).i32(r).i32GtS().if_();
    for (let v = 0; v < nv; v++) {
      for (let l = 0; l < 4; l++) {
        c.get(cols).i32(v * 4 + l).i32GtS().if_();
        c.get(crow).get(acc[r][v]).f32x4ExtractLane(l).f32Store(v * 16 + l * 4);
        c.end();
      }
    }
    c.end();
    if (r + 1 < mr) c.get(crow).get(ldc).i32Add().set(crow);
  }
  c.end();
  c.get(t).i32(1).i32Add().set(t);
  c.br(0);
  c.end().end();
  c.get(p).i32(1).i32Add().set(p);
  c.br(0);
  c.end().end();
}

/** gemv(a, b, c, k, n, bias, relu): the one-row product c (n) = a (k) @ B (k, n row-major, stride 4n bytes), then
 *  the epilogue as gemm's (bias: byte address or 0; relu). Each c[j] is accumulated over p = 0..k-1 from 0 with
 *  the same vector multiply-add as the gemm kernel's, so the result has the same bits as a 1-row gemm. Columns
 *  go 16 at a time, then 4 at a time; a last partial vector stores only its first n % 4 lanes. */
function emitGemv(c: Code, cfg: KernelConfig): void {
  const { relaxed } = cfg;
  const [a, b, cp, k, n, bias, relu] = [0, 1, 2, 3, 4, 5, 6];
  const pa = c.local(I32), pb = c.local(I32), pe = c.local(I32), j = c.local(I32), rowB = c.local(I32), full = c.local(I32);
  const nv = c.local(I32), rem = c.local(I32);
  const s = c.local(V128), zero = c.local(V128);
  const acc = [0, 1, 2, 3].map(() => c.local(V128));
  const madd = (x: number) => {
    // acc[x] += s * load(pb + 16x)
    if (relaxed) c.get(s).get(pb).v128Load(16 * x).get(acc[x]).f32x4RelaxedMadd().set(acc[x]);
    else c.get(acc[x]).get(s).get(pb).v128Load(16 * x).f32x4Mul().f32x4Add().set(acc[x]);
  };
  const epilogue = (count: number, col: number) => {
    // acc[0..count) at columns col.. (a local holding the byte offset of the first column)
    c.get(bias).if_();
    for (let x = 0; x < count; x++) c.get(acc[x]).get(bias).get(col).i32Add().v128Load(16 * x).f32x4Add().set(acc[x]);
    c.end();
    c.get(relu).if_();
    for (let x = 0; x < count; x++) c.get(acc[x]).get(zero).f32x4Max().set(acc[x]);
    c.end();
  };
  c.v128Const0().set(zero);
  c.get(n).i32(4).i32Mul().set(rowB);
  c.get(a).get(k).i32(4).i32Mul().i32Add().set(pe);
  c.get(n).i32(-16).i32And().i32(4).i32Mul().set(full); // bytes of the 16-column groups
  // 16 columns at a time
  c.i32(0).set(j);
  c.block().loop();
  c.get(j).get(full).i32GeS().brIf(1);
  for (let x = 0; x < 4; x++) c.get(zero).set(acc[x]);
  c.get(a).set(pa);
  c.get(b).get(j).i32Add().set(pb);
  c.loop();
  c.get(pa).v128Load32Splat(0).set(s);
  for (let x = 0; x < 4; x++) madd(x);
  c.get(pb).get(rowB).i32Add().set(pb);
  c.get(pa).i32(4).i32Add().tee(pa).get(pe).i32Ne().brIf(0);
  c.end();
  epilogue(4, j);
  for (let x = 0; x < 4; x++) c.get(cp).get(j).i32Add().get(acc[x]).v128Store(16 * x);
  c.get(j).i32(64).i32Add().set(j);
  c.br(0);
  c.end().end();
  // then 4 columns at a time; the last vector may be partial
  c.get(n).i32(3).i32Add().i32(-4).i32And().i32(4).i32Mul().set(nv); // bytes up to the end of the last vector
  c.block().loop();
  c.get(j).get(nv).i32GeS().brIf(1);
  c.get(zero).set(acc[0]);
  c.get(a).set(pa);
  c.get(b).get(j).i32Add().set(pb);
  c.loop();
  c.get(pa).v128Load32Splat(0).set(s);
  madd(0);
  c.get(pb).get(rowB).i32Add().set(pb);
  c.get(pa).i32(4).i32Add().tee(pa).get(pe).i32Ne().brIf(0);
  c.end();
  epilogue(1, j);
  c.get(rowB).get(j).i32Sub().set(rem); // bytes of columns left from j
  c.get(rem).i32(16).i32GeS();
  c.if_();
  c.get(cp).get(j).i32Add().get(acc[0]).v128Store(0);
  c.else_();
  for (let l = 0; l < 3; l++) {
    c.get(rem).i32(4 * l).i32GtS().if_();
    c.get(cp).get(j).i32Add().get(acc[0]).f32x4ExtractLane(l).f32Store(4 * l);
    c.end();
  }
  c.end();
  c.get(j).i32(16).i32Add().set(j);
  c.br(0);
  c.end().end();
}

// float lane shuffle -> byte lanes
const sh = (lanes: number[]) => lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);
const LO = sh([0, 4, 1, 5]), HI = sh([2, 6, 3, 7]), LO2 = sh([0, 1, 4, 5]), HI2 = sh([2, 3, 6, 7]);

/** 4x4 transpose of r[0..3] (rows) into columns, stored at d + i*stride for column i. */
function transpose4Store(c: Code, r: number[], t: number[], d: number, stride: number): void {
  c.get(r[0]).get(r[1]).i8x16Shuffle(LO).set(t[0]);
  c.get(r[0]).get(r[1]).i8x16Shuffle(HI).set(t[1]);
  c.get(r[2]).get(r[3]).i8x16Shuffle(LO).set(t[2]);
  c.get(r[2]).get(r[3]).i8x16Shuffle(HI).set(t[3]);
  c.get(d).get(t[0]).get(t[2]).i8x16Shuffle(LO2).v128Store(0);
  c.get(d).get(t[0]).get(t[2]).i8x16Shuffle(HI2).v128Store(stride);
  c.get(d).get(t[1]).get(t[3]).i8x16Shuffle(LO2).v128Store(2 * stride);
  c.get(d).get(t[1]).get(t[3]).i8x16Shuffle(HI2).v128Store(3 * stride);
}

/** packAN(src, dst, k, lda, t0, t1): A stored (m, k) row-major with row stride lda bytes; tiles
 *  t in [t0,t1) are packed (rows past m are read from the caller's zeroed slack). */
function emitPackAN(c: Code, cfg: KernelConfig): void {
  const mr = cfg.mr, aStep = mr * 4;
  const [src, dst, k, lda, t0, t1] = [0, 1, 2, 3, 4, 5];
  const t = c.local(I32), d = c.local(I32), dEnd = c.local(I32), s = c.local(I32), r = c.local(I32), dk = c.local(I32);
  c.get(t0).set(t);
  c.block().loop();
  c.get(t).get(t1).i32GeS().brIf(1);
  c.get(dst).get(t).get(k).i32Mul().i32(aStep).i32Mul().i32Add().set(d);
  c.get(src).get(t).i32(mr).i32Mul().get(lda).i32Mul().i32Add().set(s);
  if (mr === 4) {
    const sp = [c.local(I32), c.local(I32), c.local(I32), c.local(I32)];
    const rv = [c.local(V128), c.local(V128), c.local(V128), c.local(V128)];
    const tv = [c.local(V128), c.local(V128), c.local(V128), c.local(V128)];
    c.get(s).set(sp[0]);
    for (let i = 1; i < 4; i++) c.get(sp[i - 1]).get(lda).i32Add().set(sp[i]);
    c.get(d).get(k).i32(-4).i32And().i32(16).i32Mul().i32Add().set(dEnd);
    c.get(d).get(dEnd).i32Ne();
    c.if_();
    c.loop();
    for (let i = 0; i < 4; i++) c.get(sp[i]).v128Load(0).set(rv[i]);
    transpose4Store(c, rv, tv, d, 16);
    for (let i = 0; i < 4; i++) c.get(sp[i]).i32(16).i32Add().set(sp[i]);
    c.get(d).i32(64).i32Add().tee(d).get(dEnd).i32Ne().brIf(0);
    c.end();
    c.end();
    // k tail (k % 4)
    c.get(dst).get(t).get(k).i32Mul().i32(aStep).i32Mul().i32Add().get(k).i32(aStep).i32Mul().i32Add().set(dEnd);
    c.get(d).get(dEnd).i32Ne();
    c.if_();
    c.loop();
    for (let i = 0; i < 4; i++) {
      c.get(d).get(sp[i]).f32Load(0).f32Store(4 * i);
      c.get(sp[i]).i32(4).i32Add().set(sp[i]);
    }
    c.get(d).i32(16).i32Add().tee(d).get(dEnd).i32Ne().brIf(0);
    c.end();
    c.end();
  } else {
    // generic: row by row, element by element
    c.i32(0).set(r);
    c.block().loop();
    c.get(r).i32(mr).i32GeS().brIf(1);
    c.get(d).get(r).i32(4).i32Mul().i32Add().tee(dk).get(k).i32(aStep).i32Mul().i32Add().set(dEnd);
    c.loop();
    c.get(dk).get(s).f32Load(0).f32Store(0);
    c.get(s).i32(4).i32Add().set(s);
    c.get(dk).i32(aStep).i32Add().tee(dk).get(dEnd).i32Ne().brIf(0);
    c.end();
    c.get(s).get(k).i32(4).i32Mul().i32Sub().get(lda).i32Add().set(s);
    c.get(r).i32(1).i32Add().set(r);
    c.br(0);
    c.end().end();
  }
  c.get(t).i32(1).i32Add().set(t);
  c.br(0);
  c.end().end();
}

/** packAT(src, dst, k, lda, t0, t1): A stored (k, m) (transA) with row stride lda bytes; tile t
 *  copies MR adjacent floats per kk (the last tile may read up to MR-1 floats past m: the next
 *  row, or the caller's slack; those C rows are discarded). */
function emitPackAT(c: Code, cfg: KernelConfig): void {
  const mr = cfg.mr, aStep = mr * 4;
  const [src, dst, k, lda, t0, t1] = [0, 1, 2, 3, 4, 5];
  const t = c.local(I32), d = c.local(I32), dEnd = c.local(I32), s = c.local(I32);
  c.get(t0).set(t);
  c.block().loop();
  c.get(t).get(t1).i32GeS().brIf(1);
  c.get(dst).get(t).get(k).i32Mul().i32(aStep).i32Mul().i32Add().tee(d).get(k).i32(aStep).i32Mul().i32Add().set(dEnd);
  c.get(src).get(t).i32(aStep).i32Mul().i32Add().set(s);
  c.loop();
  let off = 0;
  for (; off + 16 <= aStep; off += 16) c.get(d).get(s).v128Load(off).v128Store(off);
  for (; off < aStep; off += 4) c.get(d).get(s).f32Load(off).f32Store(off);
  c.get(s).get(lda).i32Add().set(s);
  c.get(d).i32(aStep).i32Add().tee(d).get(dEnd).i32Ne().brIf(0);
  c.end();
  c.get(t).i32(1).i32Add().set(t);
  c.br(0);
  c.end().end();
}

/** packN(src, dst, k, ldb, p0, p1): B stored (k, n) row-major with row stride ldb bytes.
 *  Reads NR floats per row per panel; the last panel may read past n (caller provides slack). */
function emitPackN(c: Code, cfg: KernelConfig): void {
  const nrBytes = cfg.nv * 16;
  const [src, dst, k, ldb, p0, p1] = [0, 1, 2, 3, 4, 5];
  const p = c.local(I32), s = c.local(I32), d = c.local(I32), dEnd = c.local(I32), tmp = c.local(V128);
  c.get(p0).set(p);
  c.block().loop();
  c.get(p).get(p1).i32GeS().brIf(1);
  c.get(src).get(p).i32(nrBytes).i32Mul().i32Add().set(s);
  c.get(dst).get(p).get(k).i32Mul().i32(nrBytes).i32Mul().i32Add().tee(d)
    .get(k).i32(nrBytes).i32Mul().i32Add().set(dEnd);
  c.loop();
  for (let v = 0; v < cfg.nv; v++) c.get(s).v128Load(v * 16).set(tmp).get(d).get(tmp).v128Store(v * 16);
  c.get(s).get(ldb).i32Add().set(s);
  c.get(d).i32(nrBytes).i32Add().tee(d).get(dEnd).i32Ne().brIf(0);
  c.end();
  c.get(p).i32(1).i32Add().set(p);
  c.br(0);
  c.end().end();
}

/** packT(src, dst, k, n, p0, p1): B stored (n, k) row-major (transB). Column j of the panel is
 *  row p*NR+j of the stored matrix; columns >= n are zero-filled. Groups of 4 columns that are
 *  fully inside n are transposed 4x4 at a time with shuffles; the rest goes element by element. */
function emitPackT(c: Code, cfg: KernelConfig): void {
  const nr = cfg.nv * 4, nrBytes = nr * 4;
  const [src, dst, k, n, p0, p1] = [0, 1, 2, 3, 4, 5];
  const p = c.local(I32), j = c.local(I32), col = c.local(I32), d = c.local(I32), d0 = c.local(I32);
  const dEnd = c.local(I32), kBytes = c.local(I32), k4Bytes = c.local(I32), q = c.local(I32), s = c.local(I32);
  const sp = [c.local(I32), c.local(I32), c.local(I32), c.local(I32)];
  const r = [c.local(V128), c.local(V128), c.local(V128), c.local(V128)];
  const t = [c.local(V128), c.local(V128), c.local(V128), c.local(V128)];
  c.get(k).i32(4).i32Mul().set(kBytes);
  c.get(k).i32(-4).i32And().i32(nrBytes).i32Mul().set(k4Bytes); // (k & ~3) rows of packed output, in bytes
  c.get(p0).set(p);
  c.block().loop();
  c.get(p).get(p1).i32GeS().brIf(1);
  c.i32(0).set(j);
  c.block().loop();
  c.get(j).i32(nr).i32GeS().brIf(1);
  c.get(p).i32(nr).i32Mul().get(j).i32Add().set(col);
  c.get(dst).get(p).get(k).i32Mul().i32(nrBytes).i32Mul().i32Add().get(j).i32(4).i32Mul().i32Add().set(d0);
  c.get(col).i32(4).i32Add().get(n).i32LtS().get(col).i32(4).i32Add().get(n).i32Eq().i32Or();
  c.if_();
  {
    // four full columns: rows col..col+3 of the stored matrix
    c.get(src).get(col).get(kBytes).i32Mul().i32Add().set(sp[0]);
    for (let i = 1; i < 4; i++) c.get(sp[i - 1]).get(kBytes).i32Add().set(sp[i]);
    c.get(d0).set(d);
    c.get(d0).get(k4Bytes).i32Add().set(dEnd);
    c.get(d).get(dEnd).i32Ne();
    c.if_();
    c.loop();
    for (let i = 0; i < 4; i++) c.get(sp[i]).v128Load(0).set(r[i]);
    transpose4Store(c, r, t, d, nrBytes);
    for (let i = 0; i < 4; i++) c.get(sp[i]).i32(16).i32Add().set(sp[i]);
    c.get(d).i32(4 * nrBytes).i32Add().tee(d).get(dEnd).i32Ne().brIf(0);
    c.end();
    c.end();
    // k tail (k % 4 rows), element by element
    c.get(d0).get(k).i32(nrBytes).i32Mul().i32Add().set(dEnd);
    c.get(d).get(dEnd).i32Ne();
    c.if_();
    c.loop();
    for (let i = 0; i < 4; i++) {
      c.get(d).get(sp[i]).f32Load(0).f32Store(4 * i);
      c.get(sp[i]).i32(4).i32Add().set(sp[i]);
    }
    c.get(d).i32(nrBytes).i32Add().tee(d).get(dEnd).i32Ne().brIf(0);
    c.end();
    c.end();
  }
  c.else_();
  {
    // partial group at the right edge: column by column, zero-filling columns >= n
    c.i32(0).set(q);
    c.block().loop();
    c.get(q).i32(4).i32GeS().brIf(1);
    c.get(d0).get(q).i32(4).i32Mul().i32Add().tee(d).get(k).i32(nrBytes).i32Mul().i32Add().set(dEnd);
    c.get(col).get(q).i32Add().get(n).i32LtS();
    c.if_();
    c.get(src).get(col).get(q).i32Add().get(kBytes).i32Mul().i32Add().set(s);
    c.loop();
    c.get(d).get(s).f32Load(0).f32Store(0);
    c.get(s).i32(4).i32Add().set(s);
    c.get(d).i32(nrBytes).i32Add().tee(d).get(dEnd).i32Ne().brIf(0);
    c.end();
    c.else_();
    c.loop();
    c.get(d).f32Const(0).f32Store(0);
    c.get(d).i32(nrBytes).i32Add().tee(d).get(dEnd).i32Ne().brIf(0);
    c.end();
    c.end();
    c.get(q).i32(1).i32Add().set(q);
    c.br(0);
    c.end().end();
  }
  c.end();
  c.get(j).i32(4).i32Add().set(j);
  c.br(0);
  c.end().end();
  c.get(p).i32(1).i32Add().set(p);
  c.br(0);
  c.end().end();
}

const P6 = [I32, I32, I32, I32, I32, I32] as const;
const P15 = [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32] as const;

/** Build the module bytes (memory imported as env.mem, shared). */
export function buildKernelModule(cfg: KernelConfig): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder({ module: MEM_MODULE, field: MEM_FIELD, initialPages: 1, maxPages: MAX_PAGES, shared: true });
  m.func('gemm', [...P15], [], (c) => emitGemm(c, cfg));
  m.func('gemv', [I32, I32, I32, I32, I32, I32, I32], [], (c) => emitGemv(c, cfg));
  m.func('packAN', [...P6], [], (c) => emitPackAN(c, cfg));
  m.func('packAT', [...P6], [], (c) => emitPackAT(c, cfg));
  m.func('packN', [...P6], [], (c) => emitPackN(c, cfg));
  m.func('packT', [...P6], [], (c) => emitPackT(c, cfg));
  return m.encode();
}

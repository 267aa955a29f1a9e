// Generates the wasm module holding the float32 GEMM micro-kernels and B-packing routines.
//
// Layout conventions (all pointers are byte addresses into the shared memory):
//  - B is packed into column panels of NR = 4*NV floats: panel p holds, for kk = 0..k-1, the NR
//    values B[kk][p*NR .. p*NR+NR) contiguously, so one panel is k*NR floats.
//  - A is read in place (no packing): either row-major (m, k) ("N" kernels, one pointer per tile
//    row, stepping 4 bytes per kk) or stored (k, m) for transA ("T" kernels, the MR rows of a tile
//    are adjacent, stepping lda bytes per kk). This absorbs transA without a copy.
//  - C is written as full MR x NR tiles into a row-major buffer with row stride ldc bytes
//    (ldc >= number of panels * NR * 4); the caller copies the valid m x n part out.
// The whole K dimension is accumulated in registers (MR*NV v128 accumulators), k innermost.
import { Code, ModuleBuilder, I32, V128 } from './emit.ts';

export interface KernelConfig {
  mr: number; // rows per tile
  nv: number; // v128 vectors per tile row (NR = 4*nv columns)
  relaxed: boolean; // use f32x4.relaxed_madd instead of mul+add
  /** 'b-first': load all NV b vectors, then one broadcast a at a time; 'a-first': load all MR
   *  broadcast a values, then one b vector at a time. Changes the number of live v128 values. */
  order: 'a-first' | 'b-first';
  /** k-loop unroll factor (1 or 2); an odd leftover step is peeled before the loop. */
  ku: number;
}

// 2x16 tile, whole K in registers, no unrolling (k-unroll by 2 spills in V8 11.3: ~25 GFLOPS vs ~38).
// Measured best order: 'a-first' for mul+add (~38 vs ~35 GFLOPS), 'b-first' for relaxed madd (~49 vs ~47).
export const DEFAULT_CONFIG: Omit<KernelConfig, 'relaxed' | 'order'> = { mr: 2, nv: 4, ku: 1 };
export const defaultOrder = (relaxed: boolean): KernelConfig['order'] => (relaxed ? 'b-first' : 'a-first');

export const MEM_MODULE = 'env';
export const MEM_FIELD = 'mem';
export const MAX_PAGES = 32768; // 2 GiB

/** gemm(aPtr, aStride, bp, cPtr, ldc, i0, i1, k, p0, p1): for panels p in [p0,p1) and rows
 *  i in [i0,i1) step MR, C tile = A rows @ packed panel. aStride is the byte stride between rows
 *  (N) or between consecutive kk (T). */
function emitGemm(c: Code, cfg: KernelConfig, transA: boolean): void {
  const { mr, nv, relaxed, order } = cfg;
  const nrBytes = nv * 16;
  const [aPtr, aStride, bp, cPtr, ldc, i0, i1, k, p0, p1] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const p = c.local(I32), i = c.local(I32), pb = c.local(I32), pbEnd = c.local(I32);
  const panelBytes = c.local(I32), pbBase = c.local(I32), crow = c.local(I32);
  const pa: number[] = [];
  for (let r = 0; r < (transA ? 1 : mr); r++) pa.push(c.local(I32));
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
  // one k step: A values at pa (+ aOff bytes for the N kernels), B at pb + bOff
  const loadA = (r: number, into: number, aOff: number) => {
    if (transA) c.get(pa[0]).v128Load32Splat(r * 4).set(into);
    else c.get(pa[r]).v128Load32Splat(aOff).set(into);
  };
  const step = (aOff: number, bOff: number) => {
    if (order === 'b-first') {
      for (let v = 0; v < nv; v++) c.get(pb).v128Load(bOff + v * 16).set(bv[v]);
      for (let r = 0; r < mr; r++) {
        loadA(r, av[0], aOff);
        for (let v = 0; v < nv; v++) fma(av[0], bv[v], acc[r][v]);
      }
    } else {
      for (let r = 0; r < mr; r++) loadA(r, av[r], aOff);
      for (let v = 0; v < nv; v++) {
        c.get(pb).v128Load(bOff + v * 16).set(bv[0]);
        for (let r = 0; r < mr; r++) fma(av[r], bv[0], acc[r][v]);
      }
    }
  };
  const advance = (steps: number) => {
    if (transA) c.get(pa[0]).get(aStride).i32Add().set(pa[0]);
    else for (let r = 0; r < mr; r++) c.get(pa[r]).i32(4 * steps).i32Add().set(pa[r]);
  };
  const ku = cfg.ku === 2 ? 2 : 1;

  c.get(k).i32(nrBytes).i32Mul().set(panelBytes);
  c.get(p0).set(p);
  c.block().loop();
  c.get(p).get(p1).i32GeS().brIf(1);
  c.get(bp).get(p).get(panelBytes).i32Mul().i32Add().set(pbBase);
  c.get(i0).set(i);
  c.block().loop();
  c.get(i).get(i1).i32GeS().brIf(1);
  // row pointers
  if (transA) {
    c.get(aPtr).get(i).i32(4).i32Mul().i32Add().set(pa[0]);
  } else {
    c.get(aPtr).get(i).get(aStride).i32Mul().i32Add().set(pa[0]);
    for (let r = 1; r < mr; r++) c.get(pa[r - 1]).get(aStride).i32Add().set(pa[r]);
  }
  c.get(pbBase).tee(pb).get(panelBytes).i32Add().set(pbEnd);
  for (let r = 0; r < mr; r++) for (let v = 0; v < nv; v++) c.v128Const0().set(acc[r][v]);
  // k loop (k >= 1 guaranteed by the caller)
  if (ku === 1) {
    c.loop();
    step(0, 0);
    advance(1);
    c.get(pb).i32(nrBytes).i32Add().tee(pb).get(pbEnd).i32Ne().brIf(0);
    c.end();
  } else {
    // odd k: peel one step
    c.get(k).i32(1).i32And();
    c.if_();
    step(0, 0);
    advance(1);
    c.get(pb).i32(nrBytes).i32Add().set(pb);
    c.end();
    c.get(pb).get(pbEnd).i32Ne();
    c.if_();
    c.loop();
    step(0, 0);
    if (transA) advance(1);
    step(transA ? 0 : 4, nrBytes);
    advance(transA ? 1 : 2);
    c.get(pb).i32(2 * nrBytes).i32Add().tee(pb).get(pbEnd).i32Ne().brIf(0);
    c.end();
    c.end();
  }
  // store the tile
  c.get(cPtr).get(i).get(ldc).i32Mul().i32Add().get(p).i32(nrBytes).i32Mul().i32Add().set(crow);
  for (let r = 0; r < mr; r++) {
    for (let v = 0; v < nv; v++) c.get(crow).get(acc[r][v]).v128Store(v * 16);
    if (r + 1 < mr) c.get(crow).get(ldc).i32Add().set(crow);
  }
  c.get(i).i32(mr).i32Add().set(i);
  c.br(0);
  c.end().end();
  c.get(p).i32(1).i32Add().set(p);
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
  // float lane shuffle -> byte lanes
  const sh = (lanes: number[]) => lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);
  const LO = sh([0, 4, 1, 5]), HI = sh([2, 6, 3, 7]), LO2 = sh([0, 1, 4, 5]), HI2 = sh([2, 3, 6, 7]);
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
    c.get(r[0]).get(r[1]).i8x16Shuffle(LO).set(t[0]);
    c.get(r[0]).get(r[1]).i8x16Shuffle(HI).set(t[1]);
    c.get(r[2]).get(r[3]).i8x16Shuffle(LO).set(t[2]);
    c.get(r[2]).get(r[3]).i8x16Shuffle(HI).set(t[3]);
    c.get(d).get(t[0]).get(t[2]).i8x16Shuffle(LO2).v128Store(0);
    c.get(d).get(t[0]).get(t[2]).i8x16Shuffle(HI2).v128Store(nrBytes);
    c.get(d).get(t[1]).get(t[3]).i8x16Shuffle(LO2).v128Store(2 * nrBytes);
    c.get(d).get(t[1]).get(t[3]).i8x16Shuffle(HI2).v128Store(3 * nrBytes);
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
const P10 = [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32] as const;

/** Build the module bytes (memory imported as env.mem, shared). */
export function buildKernelModule(cfg: KernelConfig): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder({ module: MEM_MODULE, field: MEM_FIELD, initialPages: 1, maxPages: MAX_PAGES, shared: true });
  m.func('gemmN', [...P10], [], (c) => emitGemm(c, cfg, false));
  m.func('gemmT', [...P10], [], (c) => emitGemm(c, cfg, true));
  m.func('packN', [...P6], [], (c) => emitPackN(c, cfg));
  m.func('packT', [...P6], [], (c) => emitPackT(c, cfg));
  return m.encode();
}

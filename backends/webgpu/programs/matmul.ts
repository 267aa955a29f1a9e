// Matmul program: batched C = op(A) @ op(B) (+ bias, relu), with four kernel families chosen by the
// backend's matmul plan (choices.ts):
//  - 'tiled': 64 x 64 shared-memory tiles (real GPUs);
//  - 'reg': register-blocked tiles on storage buffers, no workgroup memory;
//  - 'tex': both operands packed into rgba32float textures by a shader, register-blocked;
//  - 'ubo' (software adapters): A through uniform blocks, B through a linear texture copy, bias and relu
//    fused; shapes it does not fit run the 'tex' kernel (products under 2^17 flops: 'reg' with its 8 x 8 tile).
// Epilogues the kernel does not fuse run as elementwise dispatches.
import type { Buf, LinearAct, MatmulArgs } from '../../../engine/backend.ts';
import { HEADER, GID, WG, LIN_W, binding } from '../wgsl.ts';
import type { GpuRecorder, Slab, Tex, Res } from '../recorder.ts';
import type { KernelChoices, UboTile } from '../choices.ts';
import { binary, fill, unary } from './elementwise.ts';

// ------------------------------------------------------------------ WGSL
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
export function matmulUboSource(k: number, R: number, TM: number, TQ: number, WGX: number, transB: boolean, bias: boolean, act: LinearAct, vecOut = false): string {
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

// ------------------------------------------------------------------ dispatch
/**
 * act(A @ B + bias) (bias: length n, added to every row of every batch; act 'relu' or 'none'), in one pass
 * where the plan's kernel fuses the epilogue, else the product followed by elementwise dispatches.
 */
export function matmul(gpu: GpuRecorder, ch: KernelChoices, a: MatmulArgs, bias: Buf | null, act: LinearAct): Buf {
  const { batch, m, n, k } = a;
  if (a.a.dtype !== 'float32' || a.b.dtype !== 'float32') throw new Error(`webgpu.matmul: float32 operands expected, got ${a.a.dtype} and ${a.b.dtype}`);
  if (bias && (bias.dtype !== 'float32' || bias.size !== n)) throw new Error(`webgpu.matmulBiasAct: bias must be float32 of length ${n}`);
  if (batch * m * n === 0) return gpu.alloc(batch * m * n, 'float32');
  if (ch.matmulPlan.kind === 'ubo' && k > 0) {
    const r = matmulUbo(gpu, ch, a, bias, act);
    if (r) return r;
  }
  const out = matmulPlain(gpu, ch, a);
  if (!bias && act === 'none') return out;
  // epilogue through the elementwise kernels
  let cur = out;
  if (bias) {
    const shape = [batch * m, n];
    const nxt = binary(gpu, ch, 'add', { buf: cur, strides: [n, 1], offset: 0 }, { buf: bias, strides: [0, 1], offset: 0 }, shape, 'float32');
    gpu.release(cur);
    cur = nxt;
  }
  if (act === 'relu') {
    const nxt = unary(gpu, ch, 'relu', { buf: cur, strides: [1], offset: 0 }, [batch * m * n], 'float32');
    gpu.release(cur);
    cur = nxt;
  }
  return cur;
}

/** How the 'ubo' matmul runs one shape: rows and column quads per invocation, rows per uniform block, chunks. */
export interface UboPlan { TM: number; TQ: number; WGX: number; R: number; chunks: number }

/**
 * Tile and uniform-block chunking of the 'ubo' matmul for one shape: TM rows per invocation (<= tile.tm,
 * chosen to waste few rows: m = 100 runs as 5 x 20, m = 300 as 15 x 20, not 7 x 16 and 19 x 16), R rows of A per uniform block
 * (a multiple of TM; R * kp floats fit one binding of maxUniformFloats, and chunk offsets stay 256-byte aligned), TQ.
 * null (the plain kernels run) where no tile of >= 4 rows fits: very long k, or no aligned chunking.
 */
export function uboPlan(tile: UboTile, maxUniformFloats: number, m: number, n: number, k: number, batch: number): UboPlan | null {
  const { tm: tmMax, tq: tqFixed, wgx: WGX } = tile;
  const kp = 4 * Math.ceil(k / 4);
  const maxRows = Math.floor(maxUniformFloats / kp);
  const wn = Math.ceil(n / 4);
  let TQ = tqFixed;
  if (!TQ) {
    let best = Infinity;
    for (const q of [2, 3, 4]) {
      const padded = Math.ceil(wn / (q * WGX)) * q * WGX;
      if (padded < best) { best = padded; TQ = q; }
    }
  }
  let plan: UboPlan | null = null;
  let best = Infinity;
  for (let TM = Math.min(tmMax, maxRows); TM >= Math.min(4, tmMax); TM--) {
    let R: number, chunks: number, rows: number;
    if (Math.ceil(m / TM) * TM <= maxRows) {
      R = Math.ceil(m / TM) * TM; chunks = 1; rows = R;
    } else {
      R = Math.floor(maxRows / TM) * TM;
      while (R >= TM && (R * kp) % 64 !== 0) R -= TM;
      if (R < TM) continue;
      chunks = Math.ceil(m / R);
      rows = (chunks - 1) * R + Math.ceil((m - (chunks - 1) * R) / TM) * TM;
    }
    if (batch * chunks > 64) continue;
    // estimated cost: padded rows, B texel fetches per FMA falling with TM (on llvmpipe 8 -> 16 rows
    // measured ~1.2-1.3x faster, 16 -> 20 ~1.05-1.1x), ~45 us per dispatch (~0.4 MFLOP of this kernel)
    const cost = rows * wn * k * (1 + 6 / TM) + chunks * batch * 4e5 / 8;
    if (cost < best) { best = cost; plan = { TM, TQ, WGX, R, chunks }; }
  }
  return plan;
}

/** The uniform-block matmul (see matmulUboSource); null where the shape does not fit it. */
function matmulUbo(gpu: GpuRecorder, ch: KernelChoices, a: MatmulArgs, bias: Buf | null, act: LinearAct): Buf | null {
  const { batch, m, n, k, transA, transB, aBatchStride, bBatchStride } = a;
  const plan = uboPlan(ch.uboTile, gpu.maxUniformFloats, m, n, k, batch);
  if (!plan) return null;
  const { TM, TQ, WGX, R, chunks } = plan;
  const kp = 4 * Math.ceil(k / 4);
  const aB = aBatchStride ? batch : 1, bB = bBatchStride ? batch : 1;
  const wn = Math.ceil(n / 4);
  // B as a linear texture: rows of ldb texels (n along a row, or k when transposed)
  const inner = transB ? k : n, rowsB = transB ? n : k;
  const ldb = Math.ceil(inner / 4);
  const directB = inner % 4 === 0 && bBatchStride % 4 === 0;
  const bStrideT = directB ? bBatchStride / 4 : rowsB * ldb; // texels between batches
  const texels = (bB - 1) * bStrideT + rowsB * ldb;
  if (Math.ceil(texels / LIN_W) > gpu.maxTexture) return null;
  // ---- A: rows of kp floats, 256-byte aligned chunks
  const aStride = Math.ceil((chunks * R * kp) / 64) * 64;
  const scratch = gpu.alloc(aB * aStride, 'float32');
  const ss = gpu.slab(scratch);
  if (!transA && k % 4 === 0) {
    const src = gpu.slab(a.a);
    for (let b = 0; b < aB; b++) gpu.copyRun(src, b * aBatchStride, ss, b * aStride, m * k);
  } else {
    packRows(gpu, ch, a.a, ss, aB, m, k, kp, transA, aBatchStride, aStride);
  }
  // ---- B: linear texture
  let bSrc = gpu.slab(a.b);
  let bTmp: Buf | null = null;
  if (!directB) {
    bTmp = gpu.alloc(texels * 4, 'float32');
    bSrc = gpu.slab(bTmp);
    packRows(gpu, ch, a.b, bSrc, bB, rowsB, inner, 4 * ldb, false, bBatchStride, rowsB * ldb * 4);
  }
  const tb = gpu.linearTexture(bSrc, texels);
  // ---- the product
  const out = gpu.alloc(batch * m * n, 'float32');
  const vecOut = n % 4 === 0;
  const kern = gpu.kernel(`mmu|${k}|${R}|${TM}|${TQ}|${WGX}|${transB}|${!!bias}|${act}|${vecOut}`, () => ({
    src: matmulUboSource(k, R, TM, TQ, WGX, transB, !!bias, act, vecOut), sig: bias ? 'utwr' : 'utw',
  }));
  const res: Res[] = [{ ubo: ss, size: R * kp * 4 }, tb, gpu.slab(out)];
  if (bias) res.push(gpu.slab(bias));
  const gx = Math.ceil(wn / (TQ * WGX));
  for (let bt = 0; bt < batch; bt++) {
    for (let c = 0; c < chunks; c++) {
      const rows = Math.min(R, m - c * R);
      const aOff = ((aBatchStride ? bt : 0) * aStride + c * R * kp) * 4;
      gpu.dispatch(kern, res, [rows, n, bt * m + c * R, bBatchStride ? bt * bStrideT : 0, ldb], gx, Math.ceil(rows / TM), 1, aOff);
    }
  }
  gpu.release(scratch);
  if (bTmp) gpu.release(bTmp);
  gpu.releaseTex(tb);
  return out;
}

/** Write `batches` (R, Cc) operands (column-major when trans) as rows of Cp floats, zero-padded, into dst. */
function packRows(gpu: GpuRecorder, ch: KernelChoices, x: Buf, dst: Slab, batches: number, R: number, Cc: number, Cp: number, trans: boolean, inStride: number, outStride: number): void {
  if (ch.texInputs && x.size > 0 && gpu.fitsLinear(x.size)) {
    // read x through a texture copy and store whole vec4s (both several times faster on llvmpipe)
    const kt = gpu.kernel(`packrowstex|${trans}`, () => ({ src: packRowsTexSource(trans), sig: 'tw' }));
    const tx = gpu.linearTexture(gpu.slab(x), Math.ceil(x.size / 4));
    const total4 = batches * R * (Cp / 4);
    const [gx, gy, rs] = gpu.grid(total4);
    gpu.dispatch(kt, [tx, dst], [total4, rs, R, Cc, Cp, inStride, outStride], gx, gy);
    gpu.releaseTex(tx);
    return;
  }
  const kern = gpu.kernel(`packrows|${trans}`, () => ({ src: packRowsSource(trans), sig: 'rw' }));
  const total = batches * R * Cp;
  const [gx, gy, rs] = gpu.grid(total);
  gpu.dispatch(kern, [gpu.slab(x), dst], [total, rs, R, Cc, Cp, inStride, outStride], gx, gy);
}

/** The product alone with the plan's 'tiled', 'reg' or 'tex' kernel ('ubo' plans: 'tex', or 'reg' for small products). */
function matmulPlain(gpu: GpuRecorder, ch: KernelChoices, a: MatmulArgs): Buf {
  const { batch, m, n, k, transA, transB, aBatchStride, bBatchStride } = a;
  const out = gpu.alloc(batch * m * n, 'float32');
  if (batch * m * n === 0) return out;
  if (k === 0) { gpu.release(out); return fill(gpu, batch * m * n, 0, 'float32'); }
  const params = [m, n, k, aBatchStride, bBatchStride];
  const plan = ch.matmulPlan;
  if (batch > 65535) throw new Error(`webgpu.matmul: more than 65535 matrices in one call are not supported (got ${batch})`);
  const nb = batch;
  const tex = (plan.kind === 'tex' || plan.kind === 'ubo') && 2 * batch * m * n * k >= 1 << 17 &&
    Math.max(Math.ceil(k / 4), Math.ceil(n / 4)) <= gpu.maxTexture &&
    (aBatchStride ? batch : 1) * m <= gpu.maxTexture && (bBatchStride ? batch : 1) * 4 * Math.ceil(k / 4) <= gpu.maxTexture;
  if (tex) {
    const ta = pack(gpu, a.a, m, k, transA, aBatchStride ? batch : 1, aBatchStride, m);
    const kp = 4 * Math.ceil(k / 4);
    const tb = pack(gpu, a.b, k, n, transB, bBatchStride ? batch : 1, bBatchStride, kp);
    const { tm, tn } = plan.kind === 'tex' ? plan : { tm: 16, tn: 8 }, wg = plan.kind === 'tex' ? plan.wg ?? 8 : 8;
    const kern = gpu.kernel(`mmx|${tm}|${tn}|${wg}`, () => ({ src: matmulTexSource(tm, tn, wg), sig: 'ttw' }));
    gpu.dispatch(kern, [ta, tb, gpu.slab(out)], [m, n, k, aBatchStride ? m : 0, bBatchStride ? kp : 0],
      Math.ceil(n / (tn * wg)), Math.ceil(m / (tm * wg)), nb);
    gpu.releaseTex(ta);
    gpu.releaseTex(tb);
  } else if (plan.kind === 'tiled') {
    const kern = gpu.kernel(`mmt|${transA}|${transB}`, () => ({ src: matmulTiledSource(transA, transB), sig: 'rrw' }));
    gpu.dispatch(kern, [gpu.slab(a.a), gpu.slab(a.b), gpu.slab(out)], params, Math.ceil(n / 64), Math.ceil(m / 64), nb);
  } else {
    // tile orientation: wide tiles (8x16) unless the output is much taller than wide
    const tall = m >= 4 * n && m >= 64;
    const tm = tall ? plan.tn : plan.tm, tn = tall ? plan.tm : plan.tn;
    const wg = plan.wg ?? 8;
    const v: MatmulVariant = {
      transA, transB, tm, tn, wgx: wg, wgy: wg,
      vecA: transA ? m % 4 === 0 && m >= 4 && aBatchStride % 4 === 0 : k % 4 === 0 && aBatchStride % 4 === 0,
      vecB: transB ? k % 4 === 0 && bBatchStride % 4 === 0 : n % 4 === 0 && n >= 4 && bBatchStride % 4 === 0,
    };
    const key = `mmr|${transA}|${transB}|${v.vecA}|${v.vecB}|${tm}|${tn}|${wg}`;
    const kern = gpu.kernel(key, () => ({ src: matmulRegSource(v), sig: 'rrw' }));
    gpu.dispatch(kern, [gpu.slab(a.a), gpu.slab(a.b), gpu.slab(out)], params, Math.ceil(n / (tn * wg)), Math.ceil(m / (tm * wg)), nb);
  }
  return out;
}

/** Pack an operand (batches of R x Cc, see packSource) into a pooled texture. */
function pack(gpu: GpuRecorder, x: Buf, R: number, Cc: number, trans: boolean, batches: number, batchStride: number, Rpad: number): Tex {
  const W = Math.ceil(Cc / 4), H = batches * Rpad;
  const t = gpu.takeTex(W, H);
  const k = gpu.kernel(`pack|${trans}`, () => ({ src: packSource(trans), sig: 'rs' }));
  const [gx, gy, rs] = gpu.grid(W * H);
  gpu.dispatch(k, [gpu.slab(x), t], [W * H, rs, R, Cc, W, batchStride, Rpad], gx, gy);
  return t;
}

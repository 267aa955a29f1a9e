// Gather / scatter program: index along the middle axis of an (outer, n, inner) buffer, and its adjoint,
// a scatter-add written as a gather over the indices (no float atomics, so results are deterministic).
import type { Buf } from '../../../engine/backend.ts';
import { HEADER, GID, WG, binding, type WType } from '../wgsl.ts';
import { type GpuRecorder, wtype } from '../recorder.ts';

// ------------------------------------------------------------------ WGSL
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

// ------------------------------------------------------------------ dispatch
export function gather(gpu: GpuRecorder, x: Buf, idx: Buf, outer: number, n: number, m: number, inner: number): Buf {
  return indexed(gpu, 'gather', gatherSource, x, idx, outer * m * inner, n, m, inner);
}

export function scatterAdd(gpu: GpuRecorder, g: Buf, idx: Buf, outer: number, n: number, m: number, inner: number): Buf {
  return indexed(gpu, 'scatter', scatterAddSource, g, idx, outer * n * inner, n, m, inner);
}

/** One thread per output element of `total`: params [total, row stride, n, m, inner]. */
function indexed(gpu: GpuRecorder, name: string, source: (t: WType) => string, x: Buf, idx: Buf, total: number, n: number, m: number, inner: number): Buf {
  const t = wtype(x.dtype);
  const k = gpu.kernel(`${name}|${t}`, () => ({ src: source(t), sig: 'rrw' }));
  const out = gpu.alloc(total, x.dtype);
  const [gx, gy, rs] = gpu.grid(total);
  gpu.dispatch(k, [gpu.slab(x), gpu.slab(idx), gpu.slab(out)], [total, rs, n, m, inner], gx, gy);
  return out;
}

// Reduce program: sum / max over the last axis of a (rows, cols) buffer (one pass, or two over chunks of
// ~sqrt(cols) for long rows), and the index of the first maximum.
import type { Buf } from '../../../engine/backend.ts';
import { HEADER, GID, WG, LIN_W, binding, type WType } from '../wgsl.ts';
import { type GpuRecorder, wtype } from '../recorder.ts';
import type { KernelChoices } from '../choices.ts';
import { fill } from './elementwise.ts';

// ------------------------------------------------------------------ WGSL
/**
 * reduceLast over chunks: thread t handles row t / chunks, columns [c*len, min(cols, (c+1)*len)).
 * Params: [0] rows*chunks, [1] row stride, [2] cols, [3] chunks, [4] len.
 */
export function reduceSource(op: 'sum' | 'max', t: WType, tex = false): string {
  const init = op === 'sum' ? (t === 'f32' ? '0.0' : '0') : t === 'f32' ? 'bitcast<f32>(BITS_NINF)' : 'i32(-2147483647 - 1)';
  const step = op === 'sum'
    ? 'acc = acc + v;'
    : t === 'f32' ? 'if (v > acc || v != v) { acc = v; if (acc != acc) { break; } }' : 'acc = max(acc, v);';
  // tex (float32, software adapters): X read from a linear texture (see LIN_W in ../wgsl.ts)
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

// ------------------------------------------------------------------ dispatch
export function reduceLast(gpu: GpuRecorder, ch: KernelChoices, op: 'sum' | 'max', x: Buf, rows: number, cols: number): Buf {
  const t = wtype(x.dtype);
  const k = gpu.kernel(`reduce|${op}|${t}`, () => ({ src: reduceSource(op, t), sig: 'rw' }));
  if (cols === 0 && !(op === 'max' && t === 'f32')) return fill(gpu, rows, 0, x.dtype);
  const out = gpu.alloc(rows, x.dtype);
  if (rows === 0) return out;
  const texels = Math.ceil((rows * cols) / 4);
  if (ch.texInputs && t === 'f32' && rows * cols >= 1024 && gpu.fitsLinear(rows * cols)) {
    // the first pass reads x through a texture copy (software adapters: storage loads are scalar loops there)
    const kt = gpu.kernel(`reduce|${op}|${t}|tex`, () => ({ src: reduceSource(op, t, true), sig: 'tw' }));
    const tx = gpu.linearTexture(gpu.slab(x), texels);
    if (cols >= 2048) {
      const len = Math.ceil(Math.sqrt(cols));
      const chunks = Math.ceil(cols / len);
      const part = gpu.alloc(rows * chunks, x.dtype);
      let [gx, gy, rs] = gpu.grid(rows * chunks);
      gpu.dispatch(kt, [tx, gpu.slab(part)], [rows * chunks, rs, cols, chunks, len], gx, gy);
      [gx, gy, rs] = gpu.grid(rows);
      gpu.dispatch(k, [gpu.slab(part), gpu.slab(out)], [rows, rs, chunks, 1, chunks], gx, gy);
      gpu.release(part);
    } else {
      const [gx, gy, rs] = gpu.grid(rows);
      gpu.dispatch(kt, [tx, gpu.slab(out)], [rows, rs, cols, 1, Math.max(cols, 1)], gx, gy);
    }
    gpu.releaseTex(tx);
    return out;
  }
  if (cols >= 2048) {
    // two passes over chunks of ~sqrt(cols): parallel, and shorter float32 accumulation chains
    const len = Math.ceil(Math.sqrt(cols));
    const chunks = Math.ceil(cols / len);
    const part = gpu.alloc(rows * chunks, x.dtype);
    let [gx, gy, rs] = gpu.grid(rows * chunks);
    gpu.dispatch(k, [gpu.slab(x), gpu.slab(part)], [rows * chunks, rs, cols, chunks, len], gx, gy);
    [gx, gy, rs] = gpu.grid(rows);
    gpu.dispatch(k, [gpu.slab(part), gpu.slab(out)], [rows, rs, chunks, 1, chunks], gx, gy);
    gpu.release(part);
  } else {
    const [gx, gy, rs] = gpu.grid(rows);
    gpu.dispatch(k, [gpu.slab(x), gpu.slab(out)], [rows, rs, cols, 1, Math.max(cols, 1)], gx, gy);
  }
  return out;
}

export function argmaxLast(gpu: GpuRecorder, x: Buf, rows: number, cols: number): Buf {
  const t = wtype(x.dtype);
  const k = gpu.kernel(`argmax|${t}`, () => ({ src: argmaxSource(t), sig: 'rw' }));
  const out = gpu.alloc(rows, 'int32');
  const [gx, gy, rs] = gpu.grid(rows);
  if (cols > 0) gpu.dispatch(k, [gpu.slab(x), gpu.slab(out)], [rows, rs, cols], gx, gy);
  else if (rows > 0) { gpu.release(out); return fill(gpu, rows, 0, 'int32'); }
  return out;
}

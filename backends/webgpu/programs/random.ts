// Random-bits program: Philox4x32-10 blocks, the same words as engine/philox.ts on the CPU, so samples
// are bit-identical across backends.
import type { Buf } from '../../../engine/backend.ts';
import { HEADER, GID, WG, binding } from '../wgsl.ts';
import type { GpuRecorder } from '../recorder.ts';

// ------------------------------------------------------------------ WGSL
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

// ------------------------------------------------------------------ dispatch
export function randomBits(gpu: GpuRecorder, key: [number, number], counter: number, size: number): Buf {
  const k = gpu.kernel('philox', () => ({ src: philoxSource(), sig: 'w' }));
  const out = gpu.alloc(size, 'int32');
  const blocks = Math.ceil(size / 4);
  const [gx, gy, rs] = gpu.grid(blocks);
  const lo = counter >>> 0, hi = Math.floor(counter / 4294967296) >>> 0;
  gpu.dispatch(k, [gpu.slab(out)], [blocks, rs, size, key[0] >>> 0, key[1] >>> 0, lo, hi], gx, gy);
  return out;
}

// Philox4x32-10 (Salmon et al., SC'11), integer-exact in JavaScript doubles.
// The WebGPU backend implements the same function in WGSL; both yield the same uint32 words.

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

const INV65536 = 1 / 65536;

/** High 32 bits of the 64-bit product of two uint32 values: a times each 16-bit half of b is an exact double (< 2^48). */
export function mulhi32(a: number, b: number): number {
  const p1 = a * (b & 0xffff), p2 = a * (b >>> 16);
  // times 2^-16 is exact and much cheaper than a division
  return Math.floor((p2 + Math.floor(p1 * INV65536)) * INV65536) >>> 0;
}

/** One Philox4x32-10 block: counter (c0..c3), key (k0, k1) -> four uint32 words written to out[o..o+3]. */
export function philoxBlock(
  c0: number, c1: number, c2: number, c3: number, k0: number, k1: number,
  out: Int32Array | Uint32Array, o: number,
): void {
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi32(c0, M0), lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi32(c2, M1), lo1 = Math.imul(M1, c2) >>> 0;
    const n0 = (hi1 ^ c1 ^ k0) >>> 0;
    const n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[o] = c0; out[o + 1] = c1; out[o + 2] = c2; out[o + 3] = c3;
}

/**
 * The stream the backends share: element i is word (i % 4) of the block whose counter is
 * (counter + floor(i / 4)) split into (low 32 bits, high 32 bits, 0, 0), under key (k0, k1).
 */
export function philoxFill(k0: number, k1: number, counter: number, out: Int32Array): void {
  const n = out.length;
  const tmp = new Int32Array(4);
  for (let i = 0, blk = 0; i < n; i += 4, blk++) {
    const c = counter + blk;
    const lo = c >>> 0, hi = Math.floor(c / 4294967296) >>> 0;
    if (i + 4 <= n) philoxBlock(lo, hi, 0, 0, k0, k1, out, i);
    else {
      philoxBlock(lo, hi, 0, 0, k0, k1, tmp, 0);
      for (let j = 0; i + j < n; j++) out[i + j] = tmp[j];
    }
  }
}

/**
 * Words [start, start + out.length) of the philoxFill stream with counter 0 (start may fall inside a
 * block): lets a consumer walk a long stream in chunks without materialising it.
 */
export function philoxWords(k0: number, k1: number, start: number, out: Int32Array): void {
  const n = out.length;
  const tmp = new Int32Array(4);
  let i = 0;
  let blk = Math.floor(start / 4);
  const skip = start - blk * 4;
  if (skip > 0 && n > 0) {
    philoxBlock(blk >>> 0, Math.floor(blk / 4294967296) >>> 0, 0, 0, k0, k1, tmp, 0);
    for (let j = skip; j < 4 && i < n; j++) out[i++] = tmp[j];
    blk++;
  }
  for (; i + 4 <= n; i += 4, blk++) philoxBlock(blk >>> 0, Math.floor(blk / 4294967296) >>> 0, 0, 0, k0, k1, out, i);
  if (i < n) {
    philoxBlock(blk >>> 0, Math.floor(blk / 4294967296) >>> 0, 0, 0, k0, k1, tmp, 0);
    for (let j = 0; i < n; j++) out[i++] = tmp[j];
  }
}

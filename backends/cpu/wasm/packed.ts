// Pre-packed B operands (HostGemm.pack / matmulPacked, engine/backend.ts): a weight packed once into the layout the
// GEMM's micro-kernel reads, then used by many products (the ListOps Tree-LSTM's per-merge-step and per-token
// products, 16-32 rows against a weight of up to 1500 x 600, which packed the whole weight on every call).
//
// PackedPanels is the wasm GEMM's form (a block of its arena holding B's column panels, read by both of its
// threads; see Gemm.packB / Gemm.matmulPacked in ./gemm.ts); PackedCopy is the form of any other kernel (a copy of
// B, multiplied by that kernel's own matmul). Both keep a sample of their source's bits, so that a product after
// the source changed (a parameter update while a pack is still in use) throws instead of silently using the old
// weight, and both refuse products after release().
import type { HostGemm, PackedOperand } from '../../../engine/backend.ts';
import { matmulJs } from '../matmul_js.ts';

/** How many of the source's elements (evenly spaced, first and last included) a pack remembers to tell that the
 *  source changed. A parameter update changes (nearly) every element, so a sample catches it; a change of a single
 *  element between samples goes unseen (this is a guard against misuse, not a checksum). */
const SAMPLES = 64;

/** The common part: the shape, the source and its sampled bits, release. */
abstract class PackedBase implements PackedOperand {
  private done = false;
  private readonly srcBits: Int32Array;
  private readonly sampleAt: Int32Array;
  private readonly sample: Int32Array;

  constructor(readonly k: number, readonly n: number, readonly transB: boolean,
              /** the source B, as given to pack (small products read it directly) */
              readonly src: Float32Array, readonly srcOff: number) {
    const len = k * n;
    this.srcBits = new Int32Array(src.buffer, src.byteOffset, src.length);
    const s = Math.min(SAMPLES, len);
    this.sampleAt = new Int32Array(s);
    this.sample = new Int32Array(s);
    for (let i = 0; i < s; i++) {
      const at = srcOff + (s === 1 ? 0 : Math.round(i * (len - 1) / (s - 1)));
      this.sampleAt[i] = at;
      this.sample[i] = this.srcBits[at];
    }
  }

  get released(): boolean { return this.done; }

  release(): void {
    if (this.done) return;
    this.done = true;
    this.free();
  }

  /** Throws if released, or if the source's sampled elements changed since pack. */
  check(what: string): void {
    if (this.done) throw new Error(`${what}: the packed operand was released (pack the weight again)`);
    const bits = this.srcBits, at = this.sampleAt, s = this.sample;
    for (let i = 0; i < at.length; i++) {
      if (bits[at[i]] !== s[i]) {
        throw new Error(`${what}: the packed operand's source B changed since it was packed (element ${at[i] - this.srcOff} of ${this.k} x ${this.n}); ` +
          'release the pack and pack the updated weight');
      }
    }
  }

  protected abstract free(): void;
}

/** The wasm GEMM's packed B: column panels of NR floats (panel p: for kk in [0, k), B[kk][p*NR .. p*NR+NR)), at
 *  byte address `addr` of the GEMM's memory. Built and read by the GEMM (./gemm.ts). */
export class PackedPanels extends PackedBase {
  constructor(readonly owner: object, readonly addr: number, readonly panels: number, k: number, n: number, transB: boolean,
              src: Float32Array, srcOff: number,
              /** a view of the block, registered with the arena: the block is freed once it is garbage-collected */
              private readonly hold: Float32Array,
              private readonly drop: () => void) {
    super(k, n, transB, src, srcOff);
  }
  protected free(): void { void this.hold; this.drop(); }
}

/** A packed B for kernels without a packed form: a copy of op(B) as (k, n) row-major, multiplied by the kernel's
 *  matmul without transB. The same bits as matmul with the source: the wasm GEMM's packing absorbs the transpose
 *  (the same panels either way), and matmulJs sums the same float64 products in the same k order either way. */
export class PackedCopy extends PackedBase {
  copy: Float32Array | null;
  constructor(b: Float32Array, bOff: number, k: number, n: number, transB: boolean) {
    super(k, n, transB, b, bOff);
    if (!transB) this.copy = b.slice(bOff, bOff + k * n);
    else {
      // B stored (n, k): its transpose, (k, n)
      const t = this.copy = new Float32Array(k * n);
      for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) t[p * n + j] = b[bOff + j * k + p];
    }
  }
  protected free(): void { this.copy = null; }
}

/** Arguments of a pack, checked before any work (the argument, its value, what is allowed). */
export function checkPackArgs(what: string, b: Float32Array, bOff: number, k: number, n: number): void {
  if (!(b instanceof Float32Array)) throw new TypeError(`${what}: b must be a Float32Array`);
  for (const [name, v, min] of [['k', k, 1], ['n', n, 1], ['bOff', bOff, 0]] as const) {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${what}: ${name} must be an integer >= ${min}, got ${v}`);
  }
  if (bOff + k * n > b.length) throw new RangeError(`${what}: B of ${k} x ${n} at offset ${bOff} needs ${bOff + k * n} elements, b has ${b.length}`);
}

/** Arguments of a product against a packed B (m rows of A (m, k), or (k, m) if transA; C m x n), checked. */
export function checkPackedProduct(what: string, a: Float32Array, aOff: number, p: PackedOperand, c: Float32Array, cOff: number, m: number): void {
  if (!Number.isInteger(m) || m < 0) throw new RangeError(`${what}: m must be an integer >= 0, got ${m}`);
  if (!Number.isInteger(aOff) || aOff < 0 || aOff + m * p.k > a.length) throw new RangeError(`${what}: A of ${m} x ${p.k} at offset ${aOff} does not fit an array of ${a.length}`);
  if (!Number.isInteger(cOff) || cOff < 0 || cOff + m * p.n > c.length) throw new RangeError(`${what}: C of ${m} x ${p.n} at offset ${cOff} does not fit an array of ${c.length}`);
}

type Matmul = (a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number,
  m: number, n: number, k: number, transA: boolean, transB: boolean) => void;
/** A kernel with a packed form of B (the wasm GEMM). */
export interface PackingGemm {
  matmul: Matmul;
  packB(b: Float32Array, bOff: number, k: number, n: number, transB: boolean): PackedPanels;
  matmulPacked(a: Float32Array, aOff: number, p: PackedPanels, c: Float32Array, cOff: number, m: number, transA: boolean): void;
}

/**
 * The CPU backend's HostGemm over a float32 kernel `g` (null: the plain JS loops): products of fewer than `small`
 * multiply-adds run in JS (matmulJs, float64 accumulation), the rest on g; pack() gives the packed panels of `pg`
 * where the caller has one (the wasm GEMM, the same kernel as g), else a copy of B. Products against a pack take the same route by the same rule, so
 * their bits are matmul's.
 */
export function hostGemmOver(g: { matmul: Matmul } | null, pg: PackingGemm | null, small = 4096): HostGemm {
  const matmul: Matmul = g
    ? (a, ao, b, bo, c, co, m, n, k, ta, tb) => {
      if (m === 0 || n === 0) return;
      if (m * n * k >= small) g.matmul(a, ao, b, bo, c, co, m, n, k, ta, tb);
      else matmulJs(a, ao, b, bo, c, co, m, n, k, ta, tb);
    }
    : matmulJs;
  return {
    fast: g !== null,
    matmul,
    pack(b, bOff, k, n, transB) {
      checkPackArgs('hostGemm.pack', b, bOff, k, n);
      return pg ? pg.packB(b, bOff, k, n, transB) : new PackedCopy(b, bOff, k, n, transB);
    },
    matmulPacked(a, aOff, p, c, cOff, m, transA) {
      if (p instanceof PackedPanels) {
        if (!pg || p.owner !== pg) throw new Error('hostGemm.matmulPacked: the packed operand comes from another kernel (pack it with this HostGemm)');
        if (m * p.n * p.k >= small) { pg.matmulPacked(a, aOff, p, c, cOff, m, transA); return; }
        p.check('hostGemm.matmulPacked');
        checkPackedProduct('hostGemm.matmulPacked', a, aOff, p, c, cOff, m);
        if (m > 0) matmulJs(a, aOff, p.src, p.srcOff, c, cOff, m, p.n, p.k, transA, p.transB);
        return;
      }
      if (!(p instanceof PackedCopy)) throw new Error('hostGemm.matmulPacked: not a packed operand from HostGemm.pack');
      p.check('hostGemm.matmulPacked');
      checkPackedProduct('hostGemm.matmulPacked', a, aOff, p, c, cOff, m);
      matmul(a, aOff, p.copy!, 0, c, cOff, m, p.n, p.k, transA, false);
    },
  };
}

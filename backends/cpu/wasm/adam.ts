// Adam / L2-weight-decay parameter update in WebAssembly SIMD (f32x4), for float32 parameters.
//
// The parameter, gradient and moment arrays are ordinary JS Float32Arrays, so they are streamed
// through a small private wasm memory in chunks (CHUNK floats per array, 128 KiB in all, so the
// copies stay in L2): copy p, g, m, v in, update, copy p, m, v back. The copies cost about as much
// memory traffic as the fused JS loop itself reads and writes; the gain is the arithmetic (the JS
// loop runs scalar float64 math with a sqrt and a division per element).
//
// Resident slots (slot/updateSlot): a parameter's P, M and V can instead live in a wasm memory of
// their own, or in a block of the GEMM's memory (its arena), as Float32Array views that the CPU
// backend makes the tensors' storage; a step then copies only G in (nothing, when G is a matmul
// output in that same memory), and the GEMM reads the parameter in place. Same arithmetic as
// update(), so the paths agree bit for bit.
//
// Arithmetic is float32 (the JS fallback computes in float64 and rounds on store), so results
// agree with the JS path to within float32 rounding, not bit for bit.
import { Code, ModuleBuilder, I32, F32, V128, type ValType } from './emit.ts';
import type { AdamHyper } from '../../../engine/backend.ts';
import type { Splitter } from './gemm.ts';
import type { Arena } from './arena.ts';

const CHUNK = 8192; // floats per array per chunk

/** adam(p, g, m, v, n4, b1, omb1, b2, omb2, wd, stepSize, invSq2, eps): n4 vectors of 4 floats.
 *  withWd adds wd * p to the gradient (the JS path skips that term when wd is 0, so 0 * inf
 *  never turns into NaN there; the variant without it keeps that behaviour). */
function emitAdam(c: Code, withWd: boolean): void {
  const [p, g, m, v, n4, b1, omb1, b2, omb2, wd, stepSize, invSq2, eps] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const off = c.local(I32), end = c.local(I32);
  const B1 = c.local(V128), OMB1 = c.local(V128), B2 = c.local(V128), OMB2 = c.local(V128), WD = c.local(V128);
  const SS = c.local(V128), IS = c.local(V128), EPS = c.local(V128);
  const gv = c.local(V128), pv = c.local(V128), mv = c.local(V128), vv = c.local(V128);
  const splat = (src: number, dst: number) => c.get(src).f32x4Splat().set(dst);
  splat(b1, B1); splat(omb1, OMB1); splat(b2, B2); splat(omb2, OMB2); splat(wd, WD);
  splat(stepSize, SS); splat(invSq2, IS); splat(eps, EPS);
  c.get(n4).i32Eqz().if_().return_().end();
  c.i32(0).set(off);
  c.get(n4).i32(16).i32Mul().set(end);
  c.loop();
  c.get(p).get(off).i32Add().v128Load(0).set(pv);
  c.get(g).get(off).i32Add().v128Load(0).set(gv);
  if (withWd) c.get(gv).get(WD).get(pv).f32x4Mul().f32x4Add().set(gv);
  // m = b1 * m + (1 - b1) * g
  c.get(B1).get(m).get(off).i32Add().v128Load(0).f32x4Mul().get(OMB1).get(gv).f32x4Mul().f32x4Add().set(mv);
  // v = b2 * v + (1 - b2) * g * g
  c.get(B2).get(v).get(off).i32Add().v128Load(0).f32x4Mul().get(OMB2).get(gv).f32x4Mul().get(gv).f32x4Mul().f32x4Add().set(vv);
  c.get(m).get(off).i32Add().get(mv).v128Store(0);
  c.get(v).get(off).i32Add().get(vv).v128Store(0);
  // p -= stepSize * m / (sqrt(v) / sqrt(bc2) + eps)
  c.get(p).get(off).i32Add();
  c.get(pv);
  c.get(SS).get(mv).f32x4Mul();
  c.get(vv).f32x4Sqrt().get(IS).f32x4Mul().get(EPS).f32x4Add();
  c.f32x4Div().f32x4Sub().v128Store(0);
  c.get(off).i32(16).i32Add().tee(off).get(end).i32Ne().brIf(0);
  c.end();
}

export interface AdamKernel {
  /** In-place update of P, M, V (same semantics as CpuBackend's JS loop). */
  update(P: Float32Array, G: Float32Array, M: Float32Array, V: Float32Array, hp: AdamHyper): void;
  /** A parameter of n floats resident in a wasm memory: P, M, V (initially 0) are views there. With an arena,
   *  in a block of it (freed once P, M and V are all garbage-collected), else (or when it is full) in a memory
   *  of the slot's own. */
  slot(n: number, arena?: Arena | null): AdamSlot;
  /** update() on a slot's P, M, V, with G copied in; with a splitter whose worker is active, large parameters
   *  give their second half to the worker thread (the same arithmetic per element, so the same result). */
  updateSlot(s: AdamSlot, G: Float32Array, hp: AdamHyper, sp?: Splitter | null): void;
}

/** parameters of at least this many floats are split across two threads */
const SPLIT_MIN = 131072; // measured: 401k floats 355 -> 258 us, 131k 120 -> 87 us, 77k 70 -> 83 us (slower)

export interface AdamSlot {
  readonly P: Float32Array;
  readonly M: Float32Array;
  readonly V: Float32Array;
  /** @internal */ readonly g: Float32Array;
  /** @internal */ readonly fns: { adam: AdamFn; adamWd: AdamFn };
  /** @internal */ readonly mem: WebAssembly.Memory;
  /** @internal the arena the slot lives in (null: a memory of its own) */
  readonly arena: Arena | null;
  /** @internal the slot's module slot in each splitter it was shared with */
  readonly shared: WeakMap<Splitter, number>;
}

type AdamFn = (p: number, g: number, m: number, v: number, n4: number, b1: number, omb1: number, b2: number,
  omb2: number, wd: number, stepSize: number, invSq2: number, eps: number) => void;

/** Builds the wasm Adam kernel, or returns null where WebAssembly SIMD is unavailable. */
export function createAdamWasm(): AdamKernel | null {
  const pages = Math.ceil((4 * CHUNK * 4) / 65536);
  const mb = new ModuleBuilder({ module: 'env', field: 'mem', initialPages: pages, maxPages: pages, shared: false });
  const params: ValType[] = [I32, I32, I32, I32, I32, F32, F32, F32, F32, F32, F32, F32, F32];
  mb.func('adam', params, [], (c) => emitAdam(c, false));
  mb.func('adamWd', params, [], (c) => emitAdam(c, true));
  const bytes = mb.encode();
  // the same functions over an imported memory of any size, for resident slots
  // slot memories are shared, so that the matmul worker thread can update half of a large parameter
  const sb = new ModuleBuilder({ module: 'env', field: 'mem', initialPages: 1, maxPages: 65536, shared: true });
  sb.func('adam', params, [], (c) => emitAdam(c, false));
  sb.func('adamWd', params, [], (c) => emitAdam(c, true));
  let ex: { adam: AdamFn; adamWd: AdamFn };
  let mem: WebAssembly.Memory;
  let slotModule: WebAssembly.Module;
  let slotBytes: Uint8Array;
  try {
    if (!WebAssembly.validate(bytes)) return null;
    mem = new WebAssembly.Memory({ initial: pages, maximum: pages });
    ex = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem } }).exports as unknown as typeof ex;
    slotBytes = sb.encode();
    slotModule = new WebAssembly.Module(slotBytes as Uint8Array<ArrayBuffer>);
  } catch {
    return null;
  }
  const argsOf = (hp: AdamHyper) => {
    const { lr, beta1, beta2, eps, weightDecay, step } = hp;
    const bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
    return [beta1, 1 - beta1, beta2, 1 - beta2, weightDecay, lr / bc1, 1 / Math.sqrt(bc2), eps] as const;
  };
  const f = new Float32Array(mem.buffer);
  const pO = 0, gO = CHUNK, mO = 2 * CHUNK, vO = 3 * CHUNK;
  // one instance of the slot module per arena memory, shared by its slots (and with each splitter once)
  const inArena = new WeakMap<WebAssembly.Memory, { fns: AdamSlot['fns']; shared: WeakMap<Splitter, number> }>();
  return {
    slot(n, arena) {
      // regions of n rounded up to whole vectors (lanes past n are updated but never read)
      const r = (n + 3) & ~3;
      const at = arena ? arena.alloc(16 * r) : -1;
      if (arena && at >= 0) {
        let rec = inArena.get(arena.memory);
        if (!rec) {
          const fns = new WebAssembly.Instance(slotModule, { env: { mem: arena.memory } }).exports as unknown as AdamSlot['fns'];
          inArena.set(arena.memory, (rec = { fns, shared: new WeakMap() }));
        }
        const [P, M, V] = arena.adopt(at, [[0, n], [r, n], [2 * r, n]]);
        return { P, M, V, g: arena.f32(at + 12 * r, n), fns: rec.fns, mem: arena.memory, arena, shared: rec.shared };
      }
      const pages = Math.max(1, Math.ceil((16 * r) / 65536));
      const m = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      const fns = new WebAssembly.Instance(slotModule, { env: { mem: m } }).exports as unknown as AdamSlot['fns'];
      const view = (i: number) => new Float32Array(m.buffer, 4 * i * r, n);
      return { P: view(0), M: view(1), V: view(2), g: view(3), fns, mem: m, arena: null, shared: new WeakMap() };
    },
    updateSlot(s, G, hp, sp) {
      const n = s.P.length;
      if (G.length < n) throw new RangeError('adamUpdate: gradient shorter than the parameter');
      const name = hp.weightDecay !== 0 ? 'adamWd' : 'adam';
      const args = argsOf(hp);
      // G read in place: it lives in the slot's memory already (a matmul output in the GEMM's arena)
      const gAt = s.arena ? s.arena.addressOf(G) : -1;
      const gAddr = gAt >= 0 ? gAt : s.g.byteOffset;
      // all n elements (the last vector may run into the slot's padding, and read up to 3 floats past G's end:
      // within the arena's guard); splitRange offsets the four pointers per chunk
      const callArgs = [s.P.byteOffset, gAddr, s.M.byteOffset, s.V.byteOffset, (n + 3) >> 2, ...args];
      const fn = s.fns[name] as (...a: number[]) => void;
      if (gAt < 0) s.g.set(n === G.length ? G : G.subarray(0, n));
      if (!(sp && sp.workerActive && n >= SPLIT_MIN)) { fn(...callArgs); return; }
      let slot = s.shared.get(sp);
      if (slot === undefined) {
        slot = sp.shareModule(slotBytes, s.mem, ['adam', 'adamWd']);
        s.shared.set(sp, slot);
      }
      // both threads take chunks of the elements (multiples of 16, shrinking toward the end) from a shared counter
      sp.splitRange(slot, name, callArgs, [4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0], 4, 4, n, 16, fn);
    },
    update(P, G, M, V, hp) {
      const n = P.length;
      if (G.length < n || M.length < n || V.length < n) throw new RangeError('adamUpdate: arrays shorter than the parameter');
      const fn = hp.weightDecay !== 0 ? ex.adamWd : ex.adam;
      const args = argsOf(hp);
      for (let o = 0; o < n; o += CHUNK) {
        const len = Math.min(CHUNK, n - o), e = o + len;
        f.set(P.subarray(o, e), pO); f.set(G.subarray(o, e), gO);
        f.set(M.subarray(o, e), mO); f.set(V.subarray(o, e), vO);
        fn(pO * 4, gO * 4, mO * 4, vO * 4, (len + 3) >> 2, ...args); // lanes past len: stale, never copied back
        P.set(f.subarray(pO, pO + len), o);
        M.set(f.subarray(mO, mO + len), o);
        V.set(f.subarray(vO, vO + len), o);
      }
    },
  };
}

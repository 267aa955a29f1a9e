// The leaf LSTM's recurrence in one op (CPU fast path): the same math as GumbelTreeLstm.leaves' op
// composition (gates [i, f, g, o], c_0 = h_0 = 0), with a hand-written backward through time.
import { Tensor, tensor, isGradEnabled } from '../../engine/tensor.ts';
import * as ops from '../../engine/ops.ts';
import type { Backend, HostGemm, PackedOperand } from '../../engine/backend.ts';
import * as fastmath from './fastmath.ts';
// local bindings: the hot loops call these directly (no module-binding indirection)
const sig = fastmath.sig, ftanh = fastmath.ftanh;

function hostGemmOf(be: Backend): HostGemm {
  if (!be.hostGemm) throw new Error(`listops fused kernel: device '${be.name}' has no host GEMM (Backend.hostGemm)`);
  return be.hostGemm;
}

/** Opt-in accounting of the products that pass through gemmF32 (for benchmarks and profiles): while `on`,
 *  every call adds its multiply-adds x 2 to `flops`, its wall time to `ms`, and 1 to `calls`; the `small*` fields
 *  repeat that for the calls of at most 64 rows (the per-merge-step and per-token products); `packedCalls` counts the
 *  calls against a packed B (gemmPackedF32). */
export const gemmStats = { on: false, calls: 0, flops: 0, ms: 0, smallCalls: 0, smallFlops: 0, smallMs: 0, packedCalls: 0 };

/** C (m x n) = op(A) @ op(B), overwritten, by the backend's host GEMM (Backend.hostGemm). */
export function gemmF32(be: Backend, A: Float32Array, aOff: number, B: Float32Array, bOff: number, C: Float32Array, cOff: number,
  m: number, n: number, k: number, transA: boolean, transB: boolean): void {
  if (m === 0 || n === 0) return;
  if (gemmStats.on) {
    const t0 = performance.now();
    hostGemmOf(be).matmul(A, aOff, B, bOff, C, cOff, m, n, k, transA, transB);
    const dt = performance.now() - t0;
    gemmStats.ms += dt;
    gemmStats.calls++;
    gemmStats.flops += 2 * m * n * k;
    if (m <= 64) {
      gemmStats.smallMs += dt;
      gemmStats.smallCalls++;
      gemmStats.smallFlops += 2 * m * n * k;
    }
    return;
  }
  hostGemmOf(be).matmul(A, aOff, B, bOff, C, cOff, m, n, k, transA, transB);
}

/** B (stored (k, n), or (n, k) if transB) packed once by the backend's host GEMM (HostGemm.pack), for many products
 *  through gemmPackedF32; the caller releases it (before the weight changes: a later product would throw). */
export function packF32(be: Backend, B: Float32Array, bOff: number, k: number, n: number, transB: boolean): PackedOperand {
  return hostGemmOf(be).pack(B, bOff, k, n, transB);
}

/** C (m x n) = op(A) @ B for a packed B (packF32), overwritten: the same bits as gemmF32 with that B. */
export function gemmPackedF32(be: Backend, A: Float32Array, aOff: number, P: PackedOperand, C: Float32Array, cOff: number,
  m: number, transA: boolean): void {
  if (m === 0) return;
  if (gemmStats.on) {
    const t0 = performance.now();
    hostGemmOf(be).matmulPacked(A, aOff, P, C, cOff, m, transA);
    const dt = performance.now() - t0;
    const flops = 2 * m * P.n * P.k;
    gemmStats.ms += dt;
    gemmStats.calls++;
    gemmStats.flops += flops;
    gemmStats.packedCalls++;
    if (m <= 64) {
      gemmStats.smallMs += dt;
      gemmStats.smallCalls++;
      gemmStats.smallFlops += flops;
    }
    return;
  }
  hostGemmOf(be).matmulPacked(A, aOff, P, C, cOff, m, transA);
}

/** Whether the backend's host GEMM is a tuned kernel (which absorbs transposes in its packing, and reads a weight in
 *  place where the weight lives in its memory): then weights are passed as stored, with transB. */
export function hasFastGemm(be: Backend): boolean {
  return hostGemmOf(be).fast;
}

/** The transpose of a row-major (r, c) matrix. */
export function transpose(A: Float32Array, r: number, c: number): Float32Array {
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = A[i * c + j];
  return out;
}

export function f32(t: Tensor): Float32Array {
  const d = t.backend.readSync!(t.buf);
  if (!(d instanceof Float32Array)) throw new Error(`listops fused kernel: expected float32, got ${t.dtype}`);
  return d;
}

const scratchArrays = new Map<string, Float32Array>();
/** A float32 array of at least n elements, reused by every call with this name (contents unspecified). */
function scratch(name: string, n: number): Float32Array {
  let a = scratchArrays.get(name);
  if (!a || a.length < n) scratchArrays.set(name, (a = new Float32Array(n)));
  return a;
}

/**
 * Leaf LSTM states from the input projections xp (T, B, 4H) (both biases included) and the recurrent
 * weight Whh (4H, H): S (B, T, 2H) holding [h | c] of every position.
 */
export function leafLstmFused(xp: Tensor, whh: Tensor): Tensor {
  const [T, B, H4] = xp.shape;
  const H = H4 / 4, H2 = 2 * H;
  interface Res { gates: Float32Array; tcs: Float32Array; S: Float32Array }
  // without a backward to come (evaluation), the gates and tanh(c) are not kept: they go to a scratch array reused
  // by every such pass (same values; an evaluation batch of 64 x 99 tokens at hidden 300 allocated 38 MB for them)
  const keep = isGradEnabled() && (xp.requiresGrad || whh.requiresGrad);
  const op = ops.customVjp<Res>({
    name: 'leafLstm',
    forward: ([xT, wT]) => {
      // h Whh^T at every step against Whh (4H, H) packed once for this pass (released below)
      const XP = f32(xT), be = xT.backend;
      const Wp = T > 1 ? packF32(be, f32(wT), 0, H, H4, true) : null;
      const S = new Float32Array(B * T * H2);
      const gates = keep ? new Float32Array(T * B * H4) : scratch('gates', T * B * H4); // i, f, g, o (activated)
      const tcs = keep ? new Float32Array(T * B * H) : scratch('tcs', T * B * H); // tanh(c)
      const hPrev = new Float32Array(B * H), rec = new Float32Array(B * H4);
      for (let t = 0; t < T; t++) {
        if (t > 0) gemmPackedF32(be, hPrev, 0, Wp!, rec, 0, B, false);
        for (let b = 0; b < B; b++) {
          const zo = (t * B + b) * H4, ro = b * H4, so = (b * T + t) * H2, po = (b * T + t - 1) * H2, to = (t * B + b) * H;
          for (let j = 0; j < H; j++) {
            const zi = t > 0 ? Math.fround(XP[zo + j] + rec[ro + j]) : XP[zo + j];
            const zf = t > 0 ? Math.fround(XP[zo + H + j] + rec[ro + H + j]) : XP[zo + H + j];
            const zg = t > 0 ? Math.fround(XP[zo + 2 * H + j] + rec[ro + 2 * H + j]) : XP[zo + 2 * H + j];
            const zo_ = t > 0 ? Math.fround(XP[zo + 3 * H + j] + rec[ro + 3 * H + j]) : XP[zo + 3 * H + j];
            const i = sig(zi), f = sig(zf), g = ftanh(zg), o = sig(zo_);
            const c = t > 0 ? f * S[po + H + j] + i * g : i * g;
            const tc = ftanh(c);
            const h = o * tc;
            S[so + j] = h;
            S[so + H + j] = c;
            hPrev[b * H + j] = h;
            gates[zo + j] = i; gates[zo + H + j] = f; gates[zo + 2 * H + j] = g; gates[zo + 3 * H + j] = o;
            tcs[to + j] = tc;
          }
        }
      }
      Wp?.release();
      return { outputs: [tensor(S, [B, T, H2], { device: xT.device })], residuals: { gates, tcs, S } };
    },
    backward: ({ gates, tcs, S }, [gS], [xT, wT]) => {
      if (!gS) return [null, null];
      const G = f32(gS), be = xT.backend;
      // dz_t Whh at every step against Whh (4H, H) packed once for this backward (released below)
      const Wp = T > 1 ? packF32(be, f32(wT), 0, H4, H, false) : null;
      const dxp = new Float32Array(T * B * H4);
      const dh = new Float32Array(B * H), dcN = new Float64Array(B * H); // from step t + 1
      const hp = new Float32Array(Math.max(T - 1, 0) * B * H); // h_{t-1} of steps 1..T-1, (T-1, B, H)
      for (let t = 1; t < T; t++) for (let b = 0; b < B; b++) hp.set(S.subarray((b * T + t - 1) * H2, (b * T + t - 1) * H2 + H), ((t - 1) * B + b) * H);
      for (let t = T - 1; t >= 0; t--) {
        for (let b = 0; b < B; b++) {
          const zo = (t * B + b) * H4, so = (b * T + t) * H2, po = (b * T + t - 1) * H2, to = (t * B + b) * H;
          for (let j = 0; j < H; j++) {
            const i = gates[zo + j], f = gates[zo + H + j], g = gates[zo + 2 * H + j], o = gates[zo + 3 * H + j];
            const tc = tcs[to + j];
            const gh = G[so + j] + dh[b * H + j];
            const dc = G[so + H + j] + dcN[b * H + j] + gh * o * (1 - tc * tc);
            const cPrev = t > 0 ? S[po + H + j] : 0;
            dxp[zo + j] = dc * g * i * (1 - i);
            dxp[zo + H + j] = dc * cPrev * f * (1 - f);
            dxp[zo + 2 * H + j] = dc * i * (1 - g * g);
            dxp[zo + 3 * H + j] = gh * tc * o * (1 - o);
            dcN[b * H + j] = dc * f;
          }
        }
        // dh_{t-1} = dz_t Whh
        if (t > 0) gemmPackedF32(be, dxp, t * B * H4, Wp!, dh, 0, B, false);
      }
      Wp?.release();
      // dWhh = sum_t dz_t^T h_{t-1}
      const dW = new Float32Array(H4 * H);
      if (T > 1) {
        // through a pack of h_{t-1} (see TreeCtx.backInit): split over two threads even after the worker fell asleep
        const hpP = packF32(be, hp, 0, (T - 1) * B, H, false);
        gemmPackedF32(be, dxp, B * H4, hpP, dW, 0, H4, true);
        hpP.release();
      }
      const dev = gS.device;
      return [tensor(dxp, [T, B, H4], { device: dev }), tensor(dW, [H4, H], { device: dev })];
    },
  });
  return op(xp, whh)[0];
}

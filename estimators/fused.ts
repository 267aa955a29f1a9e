// One-pass estimator kernels for devices that read synchronously (the CPU backend).
//
// The op-composed estimators in ./index.ts run on every backend but cost a dozen tensor ops (and, for
// rao_gumbel, a dozen ops on K-times-larger tensors). Here each method is one pass over rows forward
// (Gumbel-max sample plus the surrogate the backward needs) and one pass backward.
//
// float32 logits run the WebAssembly SIMD kernels of backends/cpu/wasm/estimator_kernels.ts where
// WebAssembly SIMD is available; float64 logits (and float32 where it is not, or logits holding NaN or
// +Infinity, which the JS loop below reports or handles) run the JS kernel here. Guarantees, both paths:
//  - the one-hot sample is bit-identical to the op path's (same Philox stream; Gumbel noise
//    G = -log(-log u) with each log rounded to the dtype, theta + G rounded, first maximum wins). The JS
//    kernel computes exactly that. The wasm kernel computes G with float32 vector logs, whose result is
//    within 2^-20 of the op path's G for every one of the 2^23 possible u (checked exhaustively in
//    test/cpu_estimators_wasm.test.ts); a row whose two largest perturbed logits a >= b are within
//    2^-18 + 2^-21 (|a| + |b|) of each other (a few in a million rows, for logits of order 1) is redone
//    with the exact noise (Math.log); every other row's argmax provably equals the exact one (both
//    perturbed logits are within 1.01 2^-20 + 2^-23 |value| of the exact ones).
//  - gradients: the JS kernel works in float64, the wasm kernel in float32 (vector exp and log within 1.5
//    and 1 ulp, float32 row sums, rao_gumbel's K draws summed in float32); both agree with the op path
//    within the bounds derived in test/estimators_fused.test.ts and test/wasm_estimator_tol.ts.
import { Tensor, isGradEnabled } from '../engine/tensor.ts';
import * as ops from '../engine/ops.ts';
import { philoxWords } from '../engine/philox.ts';
import { bitsToUniform } from '../engine/elementwise.ts';
import type { Key } from '../engine/random.ts';

/** The kernels this file's JS path implements (a definition's `fused` request names one of these, or a backend's own). */
export const JS_FUSED_KINDS: ReadonlySet<string> = new Set(['st', 'gumbel', 'gst', 'gstp', 'reinmax', 'rao']);

export interface FusedArgs {
  logits: Tensor;
  /** 0 = masked; same shape as logits (other shapes are materialised by the caller) */
  mask: Tensor | null;
  /** the kernel name of the definition's request, and its gap (gst) */
  kind: string;
  gap: number;
  method: string;
  tau: number;
  k: number;
  kSample: Key;
  kRao: Key;
  check: boolean;
}

/** Whether logits can take a fused kernel at all: a device that reads synchronously, floating dtype. */
export function fusedDeviceEligible(logits: Tensor): boolean {
  return Boolean(logits.backend.readSync) && (logits.dtype === 'float32' || logits.dtype === 'float64');
}

function read(t: Tensor): ArrayLike<number> {
  return t.backend.readSync!(t.buf) as ArrayLike<number>;
}

/** softmax(x / tau) of x[xo .. xo+C) into out[oo .. oo+C), given the row's maximum xm (finite). */
function softmaxRow(x: ArrayLike<number>, xo: number, C: number, tau: number, xm: number, out: Float64Array, oo: number): void {
  let z = 0;
  for (let j = 0; j < C; j++) {
    const e = Math.exp((x[xo + j] - xm) / tau);
    out[oo + j] = e;
    z += e;
  }
  const inv = 1 / z;
  for (let j = 0; j < C; j++) out[oo + j] *= inv;
}

/** (scale) s (g - <s, g>) added into out over one row. */
function addSoftmaxVjp(s: ArrayLike<number>, so: number, g: ArrayLike<number>, go: number, C: number, scale: number, out: Float64Array, oo: number): void {
  let dot = 0;
  for (let j = 0; j < C; j++) dot += s[so + j] * g[go + j];
  for (let j = 0; j < C; j++) out[oo + j] += scale * s[so + j] * (g[go + j] - dot);
}

/** A tensor over arr itself (no copy); arr must not be used afterwards. */
function wrap(arr: Float32Array | Float64Array, like: Tensor): Tensor {
  return Tensor.fromBuf(like.backend.fromArray(arr), like.shape.slice(), like.device);
}

function rowsMaskedError(logits: Tensor, r: number): Error {
  return new Error(`estimators.sample: row ${r} of 'logits' (shape [${logits.shape}]) has every category masked`);
}

/** The backend's own fused kernel (Backend.fusedEstimator); null where it has none for this call. */
function sampleBackend(a: FusedArgs): Tensor | null {
  const { logits, mask, kind, gap } = a;
  const be = logits.backend;
  if (!be.fusedEstimator || logits.size === 0) return null;
  const C = logits.shape[logits.rank - 1];
  const R = logits.size / C;
  // without a backward to come (no grad, or logits that need none) the surrogate is not computed
  const surrogate = isGradEnabled() && logits.requiresGrad;
  const f = be.fusedEstimator({
    kind, logits: logits.buf, mask: mask ? mask.buf : null, rows: R, cols: C, tau: a.tau, gap,
    key: a.kSample, raoKey: a.kRao, k: a.k, surrogate,
  });
  if (!f) return null;
  if (a.check) {
    for (let r = 0; r < R; r++) {
      if (f.rowMax[r] === -Infinity) { be.release(f.onehot); throw rowsMaskedError(logits, r); }
    }
  }
  const dev = logits.device;
  const op = ops.customVjp<null>({
    name: `estimator:${a.method}`,
    forward: () => ({ outputs: [Tensor.fromBuf(f.onehot, logits.shape.slice(), dev)], residuals: null }),
    backward: (_r, [g]) => (g ? [Tensor.fromBuf(f.backward(g.buf), logits.shape.slice(), dev)] : [null]),
  });
  return op(logits)[0];
}

/**
 * The sample through the backend's fused kernel for a.kind, else this file's JS kernel; null where neither
 * has a kernel of that name (the caller then runs the op path).
 */
export function sampleFused(a: FusedArgs): Tensor | null {
  const viaBackend = sampleBackend(a);
  if (viaBackend) return viaBackend;
  if (!JS_FUSED_KINDS.has(a.kind)) return null;
  const { logits, mask, kind, tau, k } = a;
  const C = logits.shape[logits.rank - 1];
  const N = logits.size;
  const R = N / C;
  const f32 = logits.dtype === 'float32';
  const X = read(logits);
  const Mk = mask ? read(mask) : null;
  const check = a.check;

  // theta (masked logits) and the Gumbel-max sample, rounding as the op path does:
  // G = -log(-log(u)) with each log rounded to the dtype, then theta + G rounded
  const bits = new Int32Array(N);
  philoxWords(a.kSample[0], a.kSample[1], 0, bits);
  const theta = new Float64Array(N);
  const pert = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const x = X[i];
    if (check && (x !== x || x === Infinity)) {
      throw new Error(`estimators.sample: argument 'logits' contains ${x} at flat index ${i} (shape [${logits.shape}]); logits must be finite or -Infinity (masked)`);
    }
    const t = Mk !== null && !Mk[i] ? -Infinity : x;
    theta[i] = t;
    const u = bitsToUniform(bits[i]);
    pert[i] = f32 ? Math.fround(t - Math.fround(Math.log(-Math.fround(Math.log(u))))) : t - Math.log(-Math.log(u));
  }
  const index = new Int32Array(R);
  const rowMax = new Float64Array(R); // max of theta over allowed categories
  for (let r = 0, o = 0; r < R; r++, o += C) {
    let best = 0, bv = pert[o], tm = theta[o];
    for (let j = 1; j < C; j++) {
      const p = pert[o + j], t = theta[o + j];
      if (p > bv) { best = j; bv = p; }
      if (t > tm) tm = t;
    }
    if (tm === -Infinity && check) throw rowsMaskedError(logits, r);
    index[r] = best; // an unchecked fully masked row gets category 0, as the op path's argmax does
    rowMax[r] = tm;
  }
  const onehot = new (f32 ? Float32Array : Float64Array)(N);
  for (let r = 0; r < R; r++) onehot[r * C + index[r]] = 1;

  // residuals: the surrogate(s) whose VJP is the backward
  let s: Float64Array | null = null;
  let pi: Float64Array | null = null; // reinmax
  let backward: (G: ArrayLike<number>) => Float64Array;
  const finite = (v: number) => (v === -Infinity ? 0 : v); // a fully masked, unchecked row
  switch (kind) {
    case 'st':
    case 'gumbel':
    case 'gst':
    case 'gstp':
    case 'reinmax': {
      s = new Float64Array(N);
      if (kind === 'gumbel') {
        for (let r = 0, o = 0; r < R; r++, o += C) softmaxRow(pert, o, C, tau, finite(pert[o + index[r]]), s, o);
      } else if (kind === 'gst' || kind === 'gstp') {
        const tt = new Float64Array(C);
        for (let r = 0, o = 0; r < R; r++, o += C) {
          const M = finite(rowMax[r]), D = index[r];
          let gap: number;
          if (kind === 'gstp') {
            let z = 0;
            for (let j = 0; j < C; j++) z += Math.exp(theta[o + j] - M);
            const piD = (Math.exp(theta[o + D] - M) / z) * (1 - 1e-5);
            const u = 1 - piD;
            gap = u === 1 ? 1 : -Math.log(u) / (1 - u);
          } else gap = a.gap;
          for (let j = 0; j < C; j++) tt[j] = j === D ? M : Math.min(theta[o + j], M - gap);
          softmaxRow(tt, 0, C, tau, M, s, o);
        }
      } else {
        for (let r = 0, o = 0; r < R; r++, o += C) softmaxRow(theta, o, C, tau, finite(rowMax[r]), s, o);
      }
      if (kind === 'reinmax') {
        // pi = softmax(theta); pi_half = (softmax(theta / tau) + onehot) / 2
        pi = new Float64Array(N);
        for (let r = 0, o = 0; r < R; r++, o += C) {
          softmaxRow(theta, o, C, 1, finite(rowMax[r]), pi, o);
          for (let j = 0; j < C; j++) s[o + j] = (s[o + j] + (j === index[r] ? 1 : 0)) / 2;
        }
        const sh = s, p = pi;
        backward = (G) => {
          const out = new Float64Array(N);
          for (let o = 0; o < N; o += C) {
            addSoftmaxVjp(sh, o, G, o, C, 2, out, o);
            addSoftmaxVjp(p, o, G, o, C, -0.5, out, o);
          }
          return out;
        };
      } else {
        const sv = s;
        backward = (G) => {
          const out = new Float64Array(N);
          for (let o = 0; o < N; o += C) addSoftmaxVjp(sv, o, G, o, C, 1 / tau, out, o);
          return out;
        };
      }
      break;
    }
    case 'rao': {
      // Draw kk's conditional perturbed logits (E ~ Exp(1) from the kRao stream, element (kk, r, j)):
      //   theta~_D = -log(E_D / Z),  theta~_j = -log(E_j e^{-theta_j} + E_D / Z).
      // With w_j = e^{theta_j - M}, Z' = sum w, x_D = E_D / Z' and x_j = E_j / w_j + x_D, the softmax of
      // theta~ / tau is proportional to (x_D / x_j)^(1/tau) = (x_D w_j / (E_j + x_D w_j))^(1/tau): one log per
      // element (for E), plus a pow when tau != 1. Masked w_j = 0 gives 0.
      const w = new Float64Array(N);
      const Zp = new Float64Array(R);
      for (let r = 0, o = 0; r < R; r++, o += C) {
        const M = finite(rowMax[r]);
        let z = 0;
        for (let j = 0; j < C; j++) { const e = Math.exp(theta[o + j] - M); w[o + j] = e; z += e; }
        Zp[r] = z;
      }
      const [k0, k1] = a.kRao;
      const p = 1 / tau;
      backward = (G) => {
        const out = new Float64Array(N);
        const eb = new Int32Array(N);
        const sr = new Float64Array(C);
        const scale = 1 / (tau * k);
        for (let kk = 0; kk < k; kk++) {
          philoxWords(k0, k1, kk * N, eb);
          for (let r = 0, o = 0; r < R; r++, o += C) {
            const D = index[r];
            const xD = -Math.log(bitsToUniform(eb[o + D])) / Zp[r];
            let z = 0;
            for (let j = 0; j < C; j++) {
              let v: number;
              if (j === D) v = 1;
              else {
                const xw = xD * w[o + j];
                v = xw / (-Math.log(bitsToUniform(eb[o + j])) + xw);
                if (p !== 1) v = Math.pow(v, p);
              }
              sr[j] = v;
              z += v;
            }
            let dot = 0;
            const inv = 1 / z;
            for (let j = 0; j < C; j++) { sr[j] *= inv; dot += sr[j] * G[o + j]; }
            for (let j = 0; j < C; j++) out[o + j] += scale * sr[j] * (G[o + j] - dot);
          }
        }
        return out;
      };
      break;
    }
    default:
      return null;
  }

  const op = ops.customVjp<null>({
    name: `estimator:${a.method}`,
    forward: () => ({ outputs: [wrap(onehot, logits)], residuals: null }),
    backward: (_r, [g]) => {
      if (!g) return [null];
      const out = backward(read(g));
      return [wrap(f32 ? Float32Array.from(out) : out, logits)];
    },
  });
  return op(logits)[0];
}


// The CPU backend's fused estimator kernels (Backend.fusedEstimator): float32 logits through the WebAssembly
// SIMD kernels of ./wasm/estimator_kernels.ts, half of the rows on the GEMM's worker thread when it is up.
// Guarantees (sample bit-identical to the op path; gradients within the bounds tested in
// test/estimators_fused.test.ts and test/wasm_estimator_tol.ts) are described in estimators/fused.ts.
import type { Buf, FusedEstimatorArgs, FusedEstimatorSample } from '../../engine/backend.ts';
import { estimatorKernels, FWD_KINDS, type FwdKind } from './wasm/estimator_kernels.ts';
import type { Splitter } from './wasm/gemm.ts';

/** What the kernels need of the backend: its arrays, new buffers, and the worker thread if any. */
export interface EstimatorHost {
  data(buf: Buf): Float32Array | Float64Array | Int32Array;
  /** a new zero-filled float32 buffer and its array (the backend's own, recycled storage) */
  zeros(n: number): { buf: Buf; data: Float32Array };
  /** a new float32 buffer whose every element the caller writes */
  empty(n: number): { buf: Buf; data: Float32Array };
  splitter(): Splitter | null;
}

/**
 * The fused kernel for one call, or null where it does not apply (the caller's JS kernel takes over): the
 * kernels registered under the names of FWD_KINDS (gapgrad's st, gumbel, gst, gstp, reinmax, rao).
 */
export function fusedEstimatorCpu(host: EstimatorHost, a: FusedEstimatorArgs): FusedEstimatorSample | null {
  if (!(FWD_KINDS as readonly string[]).includes(a.kind)) return null;
  const { logits, mask, rows: R, cols: C, tau } = a;
  const kind = a.kind as FwdKind;
  const N = R * C;
  // (past 2^26 elements the arrays would crowd the wasm memory's 4 GiB: the JS kernel takes those)
  if (logits.dtype !== 'float32' || N === 0 || N > 2 ** 26) return null;
  const K = estimatorKernels();
  if (!K) return null;
  const sp = host.splitter();
  const X = host.data(logits) as Float32Array;
  const f = K.forward(kind, X, mask ? host.data(mask) : null, R, C, tau, kind === 'gst' ? a.gap : 0, a.key[0], a.key[1], sp, a.surrogate);
  if (!f) return null;
  // outputs in the backend's own (recycled) arrays: fresh 120 KB arrays cost page faults on every call
  const oh = host.zeros(N);
  for (let r = 0; r < R; r++) oh.data[r * C + f.index[r]] = 1;
  return {
    onehot: oh.buf,
    rowMax: f.rowMax,
    backward: (g: Buf) => {
      const G = host.data(g);
      const out = host.empty(N);
      if (kind === 'rao') K.backwardRao(f.e, f.z, f.index, G, R, C, tau, a.k, a.raoKey[0], a.raoKey[1], out.data, sp);
      else K.backwardSoftmax(f, G, R, C, 1 / tau, out.data, sp);
      K.recycle(f); // a node's backward runs at most once (the tape frees it)
      return out.buf;
    },
  };
}

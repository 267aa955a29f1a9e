// Plain typed-array matmul: the reference every fast kernel is tested against, and the path for
// float64 and small products. C (m x n) = op(A) @ op(B), overwritten.
import type { TypedArray } from '../../engine/dtype.ts';

export function matmulJs(
  A: TypedArray, ao: number, B: TypedArray, bo: number, C: TypedArray, co: number,
  m: number, n: number, k: number, transA: boolean, transB: boolean,
): void {
  // element strides of op(A)(i, p) and op(B)(p, j)
  const aRow = transA ? 1 : k, aCol = transA ? m : 1;
  const bRow = transB ? 1 : n, bCol = transB ? k : 1;
  if (!transB) {
    // i-p-j order: rows of B and C are walked contiguously; 4 rows of A at once reuse each B row
    const acc = new Float64Array(4 * n);
    for (let i0 = 0; i0 < m; i0 += 4) {
      const rows = Math.min(4, m - i0);
      acc.fill(0);
      for (let p = 0; p < k; p++) {
        const bp = bo + p * bRow;
        const a0 = A[ao + i0 * aRow + p * aCol];
        const a1 = rows > 1 ? A[ao + (i0 + 1) * aRow + p * aCol] : 0;
        const a2 = rows > 2 ? A[ao + (i0 + 2) * aRow + p * aCol] : 0;
        const a3 = rows > 3 ? A[ao + (i0 + 3) * aRow + p * aCol] : 0;
        for (let j = 0; j < n; j++) {
          const b = B[bp + j];
          acc[j] += a0 * b;
          acc[n + j] += a1 * b;
          acc[2 * n + j] += a2 * b;
          acc[3 * n + j] += a3 * b;
        }
      }
      for (let r = 0; r < rows; r++) {
        const c = co + (i0 + r) * n;
        for (let j = 0; j < n; j++) C[c + j] = acc[r * n + j];
      }
    }
  } else {
    // dot products along k
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        let ap = ao + i * aRow, bp = bo + j * bCol;
        for (let p = 0; p < k; p++, ap += aCol, bp += bRow) s += A[ap] * B[bp];
        C[co + i * n + j] = s;
      }
    }
  }
}

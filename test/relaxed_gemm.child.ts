// Run by test/relaxed_gemm.test.ts in a child Node started with cli/node_flags.ts's flags (relaxed
// SIMD must be on from process start, so it cannot be tested inside the vitest process). Checks the
// two-thread wasm GEMM against a float64 triple loop on shapes that are not multiples of the tile,
// with every transpose, and prints one JSON line.
import '../platform/node.ts';
import { createGemm } from '../backends/cpu/wasm/gemm.ts';

const U = 2 ** -24;
let s = 12345;
const rnd = () => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return s / 4294967296; };

async function main(): Promise<void> {
  const g = await createGemm({ threads: 2, parallelThreshold: 2 });
  let worst = 0; // max over elements of |c - ref| / (gamma_k * sum |a b|)
  let cases = 0;
  let hash = 0; // of every output bit pattern: tells fused from unfused rounding apart
  for (const [m, n, k] of [[1, 1, 1], [5, 7, 3], [37, 41, 29], [100, 300, 256], [64, 130, 513], [129, 33, 100]]) {
    for (const tA of [false, true]) for (const tB of [false, true]) {
      const a = Float32Array.from({ length: m * k }, () => (rnd() * 2 - 1) * 2 ** Math.floor(rnd() * 8 - 4));
      const b = Float32Array.from({ length: k * n }, () => (rnd() * 2 - 1) * 2 ** Math.floor(rnd() * 8 - 4));
      const c = new Float32Array(m * n);
      g.matmul(a, 0, b, 0, c, 0, m, n, k, tA, tB);
      for (const w of new Int32Array(c.buffer)) hash = (Math.imul(hash, 31) + w) | 0;
      const gamma = (k * U) / (1 - k * U);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
        let sum = 0, abs = 0;
        for (let p = 0; p < k; p++) {
          const x = tA ? a[p * m + i] : a[i * k + p], y = tB ? b[j * k + p] : b[p * n + j];
          sum += x * y; abs += Math.abs(x * y);
        }
        const e = Math.abs(c[i * n + j] - sum) / (gamma * abs || 1);
        if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
      }
      cases++;
    }
  }
  console.log(JSON.stringify({ relaxed: g.relaxed, threads: g.threads, cases, worst, hash }));
  await g.close();
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });

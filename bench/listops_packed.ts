// The ListOps Tree-LSTM's per-step product shapes (16-32 rows against a weight) through the wasm GEMM: B packed on
// every call (matmul) vs packed once (packB + matmulPacked), on 1 thread and split over 2, interleaved; the weight
// in the GEMM's memory as Adam leaves it. Used to set DEFAULT_PACKED_SPLIT and for docs/performance-listops.md.
//
//   node --experimental-wasm-relaxed-simd --import tsx bench/listops_packed.ts [--hidden 300,64] [--reps 9]
//        [--rows 1,4,8,16,32] [--split N]
// Prints, per shape and row count, the median microseconds per product and GFLOPS of each variant.
import os from 'node:os';
import '../node.ts'; // the Node thread platform (the GEMM's worker)
import { createGemm, type Gemm } from '../backends/cpu/wasm/gemm.ts';

const arg = (n: string, d: string) => { const i = process.argv.indexOf(`--${n}`); return i >= 0 ? process.argv[i + 1] : d; };
const hiddens = arg('hidden', '300,64').split(',').map(Number);
const reps = Number(arg('reps', '9'));
const rowsList = arg('rows', '1,4,8,16,32').split(',').map(Number);
const split = Number(arg('split', '0')) || undefined;

const g1 = await createGemm({ threads: 1 });
// one two-thread GEMM for both 2T variants (a second one's spinning worker would take a core from the first):
// unpacked products by the default split rule, packed ones always split (or from --split)
const g2 = await createGemm({ threads: 2, packedParallelThreshold: split ?? 0, backoff: false });

process.stdout.write(`load ${os.loadavg().map((l) => l.toFixed(2)).join(', ')}; relaxed ${g1.relaxed}\n`);
process.stdout.write('| shape (m x n x k) | unpacked 1T | packed 1T | unpacked 2T (default split) | packed 2T (always split) | packed 2T / packed 1T |\n|---|---:|---:|---:|---:|---:|\n');
for (const H of hiddens) {
  const shapes: [string, number, number, boolean][] = [
    ['composition X W^T', 5 * H, 2 * H, true],
    ['input cotangent DZ W', 2 * H, 5 * H, false],
    ['leaf forward h Whh^T', 4 * H, H, true],
    ['leaf backward dz Whh', H, 4 * H, false],
  ];
  for (const [label, n, k, tB] of shapes) {
    const W = new Map<Gemm, Float32Array>();
    for (const g of [g1, g2]) {
      const w = g.allocArray(1, n * k)!;
      for (let i = 0; i < n * k; i++) w[i] = Math.sin(i) * 0.1;
      W.set(g, w);
    }
    const P1 = g1.packB(W.get(g1)!, 0, k, n, tB), P2 = g2.packB(W.get(g2)!, 0, k, n, tB);
    for (const m of rowsList) {
      const A = new Float32Array(m * k).map((_, i) => Math.cos(i));
      const C = new Float32Array(m * n);
      const inner = Math.max(1, Math.round(2e7 / (2 * m * n * k)));
      const variants: [string, () => void][] = [
        ['u1', () => g1.matmul(A, 0, W.get(g1)!, 0, C, 0, m, n, k, false, tB)],
        ['p1', () => g1.matmulPacked(A, 0, P1, C, 0, m, false)],
        ['u2', () => g2.matmul(A, 0, W.get(g2)!, 0, C, 0, m, n, k, false, tB)],
        ['p2', () => g2.matmulPacked(A, 0, P2, C, 0, m, false)],
      ];
      const t = new Map<string, number[]>(variants.map(([v]) => [v, []]));
      for (let r = 0; r < reps; r++) {
        for (const [v, f] of (r % 2 ? variants.slice().reverse() : variants)) {
          f();
          const t0 = performance.now();
          for (let i = 0; i < inner; i++) f();
          t.get(v)!.push((performance.now() - t0) / inner * 1000);
        }
      }
      const med = (v: string) => { const a = t.get(v)!.sort((x, y) => x - y); return a[a.length >> 1]; };
      const cell = (v: string) => `${med(v).toFixed(0)} us (${(2 * m * n * k / med(v) / 1e3).toFixed(1)})`;
      process.stdout.write(`| H${H} ${label} ${m}x${n}x${k} | ${cell('u1')} | ${cell('p1')} | ${cell('u2')} | ${cell('p2')} | ${(med('p2') / med('p1')).toFixed(2)} |\n`);
    }
    P1.release(); P2.release();
  }
}
process.stdout.write(`contention (2T): ${JSON.stringify(g2.contention)}\n`);
await Promise.all([g1.close(), g2.close()]);

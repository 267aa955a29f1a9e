// A worker of bench/matmul.ts: times a 1-thread GEMM on one shape over a wall-clock window, so that two of them
// running at once measure what the machine gives two independent threads (the ceiling for a 2-thread GEMM).
import '../platform/node.ts';
import { parentPort, workerData } from 'node:worker_threads';
import { createGemmSync } from '../backends/cpu/wasm/gemm.ts';

interface Job { m: number; n: number; k: number; tA: boolean; tB: boolean; inPlace: boolean; startAt: number; ms: number }

const g = createGemmSync({ enableRelaxedSimd: Boolean((workerData as { relaxed?: boolean } | null)?.relaxed) });
parentPort!.on('message', (job: Job | 'stop') => {
  if (job === 'stop') { parentPort!.close(); return; }
  const { m, n, k, tA, tB, inPlace, startAt, ms } = job;
  // inPlace: the operands are arrays of the GEMM's own memory (no copies in or out)
  const arr = (rows: number, cols: number) => (inPlace ? g.allocArray(rows, cols)! : new Float32Array(rows * cols));
  const a = arr(m, k), b = arr(k, n), c = arr(m, n);
  for (const x of [a, b]) for (let i = 0; i < x.length; i++) x[i] = Math.random() - 0.5;
  for (let i = 0; i < 3; i++) g.matmul(a, 0, b, 0, c, 0, m, n, k, tA, tB);
  while (Date.now() < startAt) g.matmul(a, 0, b, 0, c, 0, m, n, k, tA, tB); // keep the core busy until both start
  const ts: number[] = [];
  const end = startAt + ms;
  while (Date.now() < end || ts.length < 5) {
    const s = performance.now();
    g.matmul(a, 0, b, 0, c, 0, m, n, k, tA, tB);
    ts.push(performance.now() - s);
  }
  ts.sort((x, y) => x - y);
  const gf = (t: number) => (2 * m * n * k) / (t * 1e-3) / 1e9;
  if (inPlace) for (const x of [a, b, c]) g.freeArray(x);
  parentPort!.postMessage({ best: gf(ts[0]), median: gf(ts[ts.length >> 1]) });
});

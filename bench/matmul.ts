// Matmul throughput on the VAE's shapes: plain-JS register-blocked reference vs the wasm SIMD
// GEMM on 1 and 2 threads, with the operands in ordinary arrays (copied in, C copied out) and in
// place (A, B and C arrays of the GEMM's own memory, as the CPU backend's matmul outputs and Adam's
// parameters are).   Run: npx tsx bench/matmul.ts [--relaxed] [--ms=400]
//
// Timing: each call is timed on its own; we report the best (min) and the median per-call time
// as GFLOPS (2*m*n*k / t). The machine may be shared, so the script also prints how busy the
// CPUs were with *other* processes while it ran (from /proc/stat minus our own CPU time).
import '../platform/node.ts';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { createGemm, createGemmSync, type Gemm } from '../backends/cpu/wasm/gemm.ts';
import { VAE_MATMUL_SHAPES } from './shapes.ts';

const args = process.argv.slice(2);
const relaxed = args.includes('--relaxed');
const budgetMs = Number(args.find((a) => a.startsWith('--ms='))?.slice(5) ?? 400);

const shapes = VAE_MATMUL_SHAPES;

/** Plain-JS reference: transposes handled by a copy, then a 4x4 register-blocked kernel. */
function jsMatmul(a: Float32Array, b: Float32Array, c: Float32Array, m: number, n: number, k: number, tA: boolean, tB: boolean): void {
  let A = a, B = b;
  if (tA) { A = new Float32Array(m * k); for (let p = 0; p < k; p++) for (let i = 0; i < m; i++) A[i * k + p] = a[p * m + i]; }
  if (tB) { B = new Float32Array(k * n); for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) B[p * n + j] = b[j * k + p]; }
  const m4 = m - (m % 4), n4 = n - (n % 4);
  for (let i = 0; i < m4; i += 4) {
    const r0 = i * k, r1 = r0 + k, r2 = r1 + k, r3 = r2 + k;
    for (let j = 0; j < n4; j += 4) {
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      for (let p = 0, bp = j; p < k; p++, bp += n) {
        const b0 = B[bp], b1 = B[bp + 1], b2 = B[bp + 2], b3 = B[bp + 3];
        const a0 = A[r0 + p], a1 = A[r1 + p], a2 = A[r2 + p], a3 = A[r3 + p];
        c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
        c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
        c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
        c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
      }
      let o = i * n + j;
      c[o] = c00; c[o + 1] = c01; c[o + 2] = c02; c[o + 3] = c03; o += n;
      c[o] = c10; c[o + 1] = c11; c[o + 2] = c12; c[o + 3] = c13; o += n;
      c[o] = c20; c[o + 1] = c21; c[o + 2] = c22; c[o + 3] = c23; o += n;
      c[o] = c30; c[o + 1] = c31; c[o + 2] = c32; c[o + 3] = c33;
    }
  }
  // edges
  for (let i = 0; i < m; i++) {
    for (let j = i < m4 ? n4 : 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += A[i * k + p] * B[p * n + j];
      c[i * n + j] = s;
    }
  }
}

function cpuTimes(): { busy: number; total: number } | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] ?? 0);
    const total = f.reduce((x, y) => x + y, 0);
    return { busy: (total - idle) * 10, total: total * 10 }; // ms (USER_HZ = 100)
  } catch { return null; }
}

/** per-call times of fn over ms milliseconds (at least 5 calls) */
function timeCalls(fn: () => void, ms: number): number[] {
  for (let i = 0; i < 3; i++) fn();
  const ts: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < ms || ts.length < 5) {
    const s = performance.now(); fn(); ts.push(performance.now() - s);
  }
  return ts;
}

function stats(ts: number[], flops: number): { best: number; median: number } {
  const s = ts.slice().sort((x, y) => x - y);
  const g = (t: number) => flops / (t * 1e-3) / 1e9;
  return { best: g(s[0]), median: g(s[s.length >> 1]) };
}

function measure(fn: () => void, flops: number): { best: number; median: number } {
  return stats(timeCalls(fn, budgetMs), flops);
}

// The wasm cells of a shape take turns in ROUNDS rounds (budgetMs / ROUNDS each), so that a slow spell of this
// shared machine (its second core sometimes runs at half speed for a second or more) does not land on one cell.
const ROUNDS = 4;

const g1: Gemm = createGemmSync({ enableRelaxedSimd: relaxed });
const g2: Gemm = await createGemm({ threads: 2, enableRelaxedSimd: relaxed });
console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? '?'} x${os.availableParallelism()}; ` +
  `wasm relaxed madd: 1-thread=${g1.relaxed} 2-thread=${g2.relaxed}; per-call timing, ${budgetMs} ms per cell`);
console.log('GFLOPS as best / median');
// the ceiling for two threads: two independent 1-thread GEMMs (worker threads, one core each) timed over the same
// window; their GFLOPS summed (best with best, median with median)
// (a worker thread does not inherit tsx's loader: the bootstrap registers it, then loads the TypeScript worker)
const workerUrl = new URL('./matmul_indep_worker.ts', import.meta.url).href;
const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(workerUrl)}); })`;
const indep = [0, 1].map(() => new Worker(boot, { eval: true, workerData: { relaxed } }));
async function measureIndep(s: { m: number; n: number; k: number; tA: boolean; tB: boolean; inPlace: boolean }, ms: number): Promise<{ best: number; median: number }> {
  const startAt = Date.now() + 100;
  const rs = await Promise.all(indep.map((w) => new Promise<{ best: number; median: number }>((resolve, reject) => {
    const onError = (e: Error) => { w.off('message', onMessage); reject(e); };
    const onMessage = (r: { best: number; median: number }) => { w.off('error', onError); resolve(r); };
    w.once('message', onMessage);
    w.once('error', onError);
    w.postMessage({ ...s, startAt, ms });
  })));
  return { best: rs[0].best + rs[1].best, median: rs[0].median + rs[1].median };
}
const COLS = ['plain JS', 'wasm 1 thread', 'wasm 2 threads', '2 x 1 thread', 'wasm 2 threads in place', '2 x 1 thread in place'];
console.log(`${'shape'.padEnd(24)} ${COLS.map((c) => c.padStart(Math.max(15, c.length))).join(' ')}`);
const cpu0 = cpuTimes(), wall0 = performance.now(), own0 = process.cpuUsage();
const fmt = (r: { best: number; median: number }) => `${r.best.toFixed(1)} / ${r.median.toFixed(1)}`;
for (const s of shapes) {
  const { m, n, k, tA, tB } = s;
  const a = Float32Array.from({ length: m * k }, () => Math.random() - 0.5);
  const b = Float32Array.from({ length: k * n }, () => Math.random() - 0.5);
  const c = new Float32Array(m * n);
  const flops = 2 * m * n * k;
  const js = measure(() => jsMatmul(a, b, c, m, n, k, tA, tB), flops);
  // the same operands as arrays of g2's memory
  const inMem = (x: Float32Array, rows: number, cols: number) => { const r = g2.allocArray(rows, cols)!; r.set(x); return r; };
  const aIn = inMem(a, m, k), bIn = inMem(b, k, n), cIn = g2.allocArray(m, n)!;
  const t1: number[] = [], t2: number[] = [], t2in: number[] = [];
  const i2s: { best: number; median: number }[] = [], i2ins: { best: number; median: number }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    t1.push(...timeCalls(() => g1.matmul(a, 0, b, 0, c, 0, m, n, k, tA, tB), budgetMs / ROUNDS));
    t2.push(...timeCalls(() => g2.matmul(a, 0, b, 0, c, 0, m, n, k, tA, tB), budgetMs / ROUNDS));
    t2in.push(...timeCalls(() => g2.matmul(aIn, 0, bIn, 0, cIn, 0, m, n, k, tA, tB), budgetMs / ROUNDS));
    i2s.push(await measureIndep({ ...s, inPlace: false }, budgetMs / ROUNDS));
    i2ins.push(await measureIndep({ ...s, inPlace: true }, budgetMs / ROUNDS));
  }
  for (const x of [aIn, bIn, cIn]) g2.freeArray(x);
  // a ceiling: its best round, and the median round's median
  const ceil = (xs: { best: number; median: number }[]) =>
    ({ best: Math.max(...xs.map((x) => x.best)), median: xs.map((x) => x.median).sort((x, y) => x - y)[ROUNDS >> 1] });
  const cells = [js, stats(t1, flops), stats(t2, flops), ceil(i2s), stats(t2in, flops), ceil(i2ins)];
  console.log(`${s.name.padEnd(24)} ${cells.map((x, i) => fmt(x).padStart(Math.max(15, COLS[i].length))).join(' ')}`);
}
for (const w of indep) w.postMessage('stop');
const cpu1 = cpuTimes(), wall = performance.now() - wall0, own = process.cpuUsage(own0);
if (cpu0 && cpu1) {
  const others = (cpu1.busy - cpu0.busy) - (own.user + own.system) / 1000;
  console.log(`CPU used by other processes during the run: ~${Math.max(0, others / wall).toFixed(2)} cores (of ${os.availableParallelism()})`);
}
await g2.close();

// WebGPU backend vs CPU: matmul throughput on the VAE's shapes, softmax, dispatch overhead, read
// latency, and one MLP training step.   Run: npx tsx bench/webgpu.ts [--ms=400]
//
// WebGPU timing: N calls are recorded, then the batch is submitted and awaited (queue.onSubmittedWorkDone);
// the per-call time is total / N, so it includes the JS recording cost and the per-dispatch overhead.
import os from 'node:os';
import * as gg from '../index.ts';
import { cpuBackend, tensor, tidy, nn, optim } from '../index.ts';
import { initWebGPU } from '../backends/webgpu/index.ts';
import { createGemmSync } from '../backends/cpu/wasm/gemm.ts';
import type { Buf, MatmulArgs } from '../engine/backend.ts';

const budgetMs = Number(process.argv.find((a) => a.startsWith('--ms='))?.slice(5) ?? 400);
const gpu = await initWebGPU();
const cpu = cpuBackend;

console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? '?'} x${os.availableParallelism()}`);
console.log(`webgpu adapter: ${gpu.adapterName}${gpu.isSoftware ? ' (software)' : ''}; matmul kernel: ${gpu.matmulPlan.kind}`);

function rand(n: number): Float32Array {
  return Float32Array.from({ length: n }, () => Math.random() - 0.5);
}

/** ms per call: best over rounds of `reps` calls each, for at least budgetMs. */
async function timeGpu(call: () => void, reps: number): Promise<number> {
  for (let i = 0; i < 2; i++) call();
  await gpu.sync();
  let best = Infinity;
  const t0 = performance.now();
  while (performance.now() - t0 < budgetMs) {
    const s = performance.now();
    for (let i = 0; i < reps; i++) call();
    await gpu.sync();
    best = Math.min(best, (performance.now() - s) / reps);
  }
  return best;
}
function timeCpu(call: () => void): number {
  for (let i = 0; i < 2; i++) call();
  let best = Infinity;
  const t0 = performance.now();
  while (performance.now() - t0 < budgetMs) {
    const s = performance.now();
    call();
    best = Math.min(best, performance.now() - s);
  }
  return best;
}

// ---------------------------------------------------------------- matmul
const shapes = [
  { name: '(100x784)@(784x512)', m: 100, n: 512, k: 784, tA: false, tB: false },
  { name: '(100x512)@(512x256)', m: 100, n: 256, k: 512, tA: false, tB: false },
  { name: '(100x256)@(256x300)', m: 100, n: 300, k: 256, tA: false, tB: false },
  { name: 'X^T@G  m784 k100 n512', m: 784, n: 512, k: 100, tA: true, tB: false },
  { name: 'G@W^T  m100 k512 n784', m: 100, n: 784, k: 512, tA: false, tB: true },
  { name: '(512x512)@(512x512)', m: 512, n: 512, k: 512, tA: false, tB: false },
];
const wasm = createGemmSync();
console.log('\nmatmul GFLOPS (best)');
console.log(`${'shape'.padEnd(24)} ${'webgpu ubo'.padStart(11)} ${'webgpu tex'.padStart(11)} ${'webgpu reg'.padStart(13)} ${'cpu JS'.padStart(8)} ${'cpu wasm1'.padStart(10)}`);
for (const s of shapes) {
  const { m, n, k } = s;
  const A = rand(m * k), B = rand(k * n);
  const flops = 2 * m * n * k;
  const gf = (ms: number) => (flops / (ms * 1e-3) / 1e9).toFixed(1);
  const args = (a: Buf, b: Buf): MatmulArgs => ({ a, b, batch: 1, m, n, k, transA: s.tA, transB: s.tB, aBatchStride: 0, bBatchStride: 0 });
  const ga = gpu.fromArray(A), gb = gpu.fromArray(B);
  const row: string[] = [];
  const saved = gpu.matmulPlan;
  for (const plan of [{ kind: 'ubo', tm: 8, tn: 8 }, { kind: 'tex', tm: 16, tn: 8 }, { kind: 'reg', tm: 8, tn: 16 }] as const) {
    gpu.matmulPlan = plan;
    row.push(gf(await timeGpu(() => gpu.release(gpu.matmul(args(ga, gb))), 20)));
  }
  gpu.matmulPlan = saved;
  const ca = cpu.fromArray(A), cb = cpu.fromArray(B);
  const savedGemm = cpu.gemm;
  cpu.gemm = null;
  row.push(gf(timeCpu(() => cpu.release(cpu.matmul(args(ca, cb))))));
  cpu.gemm = wasm;
  row.push(gf(timeCpu(() => cpu.release(cpu.matmul(args(ca, cb))))));
  cpu.gemm = savedGemm;
  console.log(`${s.name.padEnd(24)} ${row[0].padStart(11)} ${row[1].padStart(11)} ${row[2].padStart(13)} ${row[3].padStart(8)} ${row[4].padStart(10)}`);
  gpu.release(ga); gpu.release(gb);
}

// ---------------------------------------------------------------- softmax
console.log('\nsoftmax along the last axis, ms per call (best)');
for (const shape of [[100, 10], [100, 512], [100, 30, 10], [2000, 1000]]) {
  const data = rand(shape.reduce((a, b) => a * b, 1));
  const xg = tensor(data, shape, { device: 'webgpu' }), xc = tensor(data, shape);
  const tg = await timeGpu(() => tidy(() => { gg.softmax(xg, -1); }), 20);
  const tc = timeCpu(() => tidy(() => { gg.softmax(xc, -1); }));
  console.log(`  [${shape}]`.padEnd(20) + ` webgpu ${tg.toFixed(3)} ms   cpu ${tc.toFixed(3)} ms`);
}

// ---------------------------------------------------------------- overhead
{
  const one = gpu.fromArray(new Float32Array([1]));
  const v = { buf: one, strides: [], offset: 0 };
  const per = await timeGpu(() => gpu.release(gpu.unary('neg', v, [], 'float32')), 1000);
  console.log(`\ndispatch overhead (1-element unary, recorded in batches, then awaited): ${(per * 1000).toFixed(1)} us per dispatch`);
  let best = Infinity;
  for (let i = 0; i < 200; i++) {
    const s = performance.now();
    await gpu.read(one);
    best = Math.min(best, performance.now() - s);
  }
  console.log(`read() of 4 bytes (copy, submit, map): ${(best * 1000).toFixed(0)} us`);
  let best2 = Infinity;
  for (let i = 0; i < 100; i++) {
    const s = performance.now();
    const o = gpu.unary('neg', v, [], 'float32');
    await gpu.read(o);
    gpu.release(o);
    best2 = Math.min(best2, performance.now() - s);
  }
  console.log(`one dispatch + read of its result: ${(best2 * 1000).toFixed(0)} us`);
}

// ---------------------------------------------------------------- training step
console.log('\nMLP 784-512-256-10, batch 100: forward + backward + Adam, ms per step (best)');
cpu.gemm = wasm;
for (const device of ['cpu', 'webgpu'] as const) {
  nn.manualSeed(1);
  const l1 = new nn.Linear(784, 512, { device }), l2 = new nn.Linear(512, 256, { device }), l3 = new nn.Linear(256, 10, { device });
  const params = [...l1.parameters(), ...l2.parameters(), ...l3.parameters()];
  const opt = new optim.Adam(params, { lr: 1e-3 });
  const X = rand(100 * 784);
  const T = Int32Array.from({ length: 100 }, (_, i) => i % 10);
  const step = () => tidy(() => {
    const x = tensor(X, [100, 784], { device });
    const loss = gg.crossEntropy(l3.forward(l2.forward(l1.forward(x).relu()).relu()), tensor(T, [100], { device }));
    loss.backward();
    opt.step();
    opt.zeroGrad();
    return loss;
  });
  let best = Infinity;
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < Math.max(budgetMs, 1000) || n < 5) {
    const s = performance.now();
    const loss = step();
    await loss.itemAsync(); // one read per step, as a training loop that logs the loss
    loss.dispose();
    if (n++ >= 2) best = Math.min(best, performance.now() - s);
  }
  const d = device === 'webgpu' ? `, ${gpu.stats.dispatches} dispatches / ${gpu.stats.submits} submits so far` : '';
  console.log(`  ${device.padEnd(7)} ${best.toFixed(2)} ms${d}`);
}
console.log(`\nwebgpu: ${gpu.pipelineCount} pipelines; memory ${JSON.stringify(gpu.memory())}`);

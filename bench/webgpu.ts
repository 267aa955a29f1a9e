// WebGPU backend vs CPU: matmul throughput on the VAE's shapes, the fused linear, softmax, dispatch overhead, read
// latency, and one MLP training step.   Run: npx tsx bench/webgpu.ts [--ms=400]
//
// WebGPU timing: N calls are recorded, then the batch is submitted and awaited (queue.onSubmittedWorkDone);
// the per-call time is total / N, so it includes the JS recording cost and the per-dispatch overhead.
// --vae: one MNIST-VAE training step (batch 100, gst-1.0), cpu and webgpu alternated, median ms.
// --vae-profile: every backend call of one webgpu VAE step, replayed alone on copies of its inputs
// (GPU work is flushed only on read, so per-call cost is measured this way), grouped and ranked.
import os from 'node:os';
import * as gg from '../node.ts';
import { cpuBackend, tensor, tidy, nn, optim } from '../node.ts';
import { initWebGPU } from '../backends/webgpu/index.ts';
import { createGemmSync } from '../backends/cpu/wasm/gemm.ts';
import type { Buf, MatmulArgs } from '../engine/backend.ts';
import { VAE_MATMUL_SHAPES } from './shapes.ts';

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
  ...VAE_MATMUL_SHAPES.filter((s) => ['(100x784)@(784x512)', '(100x512)@(512x256)', '(100x256)@(256x300)', 'X^T@G  m784 k100 n512', 'G@W^T  m100 k512 n784'].includes(s.name)),
  { name: '(512x512)@(512x512)', m: 512, n: 512, k: 512, tA: false, tB: false },
];
const wasm = createGemmSync();
console.log('\nmatmul GFLOPS (best)');
console.log(`${'shape'.padEnd(24)} ${'webgpu ubo'.padStart(11)} ${'webgpu tex'.padStart(11)} ${'webgpu reg'.padStart(13)} ${'cpu JS'.padStart(8)} ${'cpu wasm1'.padStart(10)}   ubo tile (rows x cols per invocation, uniform-block chunks)`);
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
  const up = gpu.uboPlan(m, n, k, 1);
  const tile = up ? `${up.TM}x${4 * up.TQ}, ${up.chunks} chunk${up.chunks > 1 ? 's' : ''}` : 'none (plain kernel)';
  console.log(`${s.name.padEnd(24)} ${row[0].padStart(11)} ${row[1].padStart(11)} ${row[2].padStart(13)} ${row[3].padStart(8)} ${row[4].padStart(10)}   ${tile}`);
  gpu.release(ga); gpu.release(gb);
}

// ---------------------------------------------------------------- fused linear
// relu(x @ W^T + b) as ops.linear(x, w, b, 'relu') records it: one matmulBiasAct call, against the
// composed matmul + broadcast add + relu dispatches the engine used before.
console.log('\nlinear + bias + relu (x @ W^T, W stored (out, in)), ms per call (best)');
for (const [rows, inn, out] of [[100, 784, 512], [100, 512, 256], [100, 256, 300], [100, 512, 784]]) {
  const args = (a: Buf, b: Buf): MatmulArgs => ({ a, b, batch: 1, m: rows, n: out, k: inn, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0 });
  const x = gpu.fromArray(rand(rows * inn)), w = gpu.fromArray(rand(out * inn)), bias = gpu.fromArray(rand(out));
  const fused = await timeGpu(() => gpu.release(gpu.matmulBiasAct(args(x, w), bias, 'relu')), 10);
  const composed = await timeGpu(() => {
    const y = gpu.matmul(args(x, w));
    const yb = gpu.binary('add', { buf: y, strides: [out, 1], offset: 0 }, { buf: bias, strides: [0, 1], offset: 0 }, [rows, out], 'float32');
    gpu.release(y);
    gpu.release(gpu.unary('relu', { buf: yb, strides: [1], offset: 0 }, [rows * out], 'float32'));
    gpu.release(yb);
  }, 10);
  const gflops = (ms: number) => ((2 * rows * inn * out) / (ms * 1e-3) / 1e9).toFixed(1);
  console.log(`  (${rows}x${inn}) W(${out}x${inn})`.padEnd(28) + ` fused ${fused.toFixed(2)} ms (${gflops(fused)} GFLOPS)   composed ${composed.toFixed(2)} ms`);
  gpu.release(x); gpu.release(w); gpu.release(bias);
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

// ---------------------------------------------------------------- VAE step
if (process.argv.includes('--vae') || process.argv.includes('--vae-profile')) {
  const { VaeRun, DEFAULT_TRAIN } = await import('../models/vae/train.ts');
  const { loadMnist } = await import('../models/vae/mnist.ts');
  const data = loadMnist();
  const method = 'gst-1.0';
  const x = data.train.images.subarray(0, 100 * 784);
  const runs = { cpu: new VaeRun({ ...DEFAULT_TRAIN, method, device: 'cpu' }, data), webgpu: new VaeRun({ ...DEFAULT_TRAIN, method, device: 'webgpu' }, data) };
  let it = 0;
  const step = async (d: 'cpu' | 'webgpu') => {
    const run = runs[d];
    const t0 = performance.now();
    const v = tidy(() => {
      const { loss } = run.model.forward(tensor(x, [100, 784], { device: d }), { method, tau: 1, key: [1, it++], k: 100 });
      loss.backward(); run.opt.step(); run.opt.zeroGrad(); return loss;
    });
    await v.data();
    v.dispose();
    return performance.now() - t0;
  };
  for (const d of ['cpu', 'webgpu'] as const) for (let i = 0; i < 3; i++) await step(d);
  if (process.argv.includes('--vae')) {
    const times = { cpu: [] as number[], webgpu: [] as number[] };
    for (let r = 0; r < 5; r++) for (const d of ['cpu', 'webgpu'] as const) for (let i = 0; i < 4; i++) times[d].push(await step(d));
    const med = (a: number[]) => a.slice().sort((p, q) => p - q)[a.length >> 1];
    console.log(`\nVAE step (batch 100, ${method}; cpu wasm gemm, alternated): cpu ${med(times.cpu).toFixed(1)} ms (min ${Math.min(...times.cpu).toFixed(1)}), ` +
      `webgpu ${med(times.webgpu).toFixed(1)} ms (min ${Math.min(...times.webgpu).toFixed(1)}), ratio ${(med(times.webgpu) / med(times.cpu)).toFixed(2)}`);
  }
  if (process.argv.includes('--vae-profile')) {
    type AnyFn = (...a: unknown[]) => unknown;
    const g = gpu as unknown as Record<string, AnyFn>;
    const names = ['fill', 'unary', 'binary', 'where', 'copy', 'copyInto', 'reduceLast', 'argmaxLast', 'matmul', 'matmulBiasAct', 'gather', 'scatterAdd', 'randomBits', 'adamUpdate'];
    const orig: Record<string, AnyFn> = {};
    const calls: { name: string; desc: string; args: unknown[] }[] = [];
    const isBuf = (a: unknown): a is Buf => !!a && typeof a === 'object' && 'slab' in a;
    const clone = (a: unknown): unknown => {
      if (isBuf(a)) return orig.copy.call(gpu, { buf: a, strides: [1], offset: 0 }, [a.size], a.dtype);
      if (a && typeof a === 'object' && !Array.isArray(a)) return Object.fromEntries(Object.entries(a).map(([k, v]) => [k, clone(v)]));
      return a;
    };
    const desc = (a: unknown): string => {
      if (isBuf(a)) return `${a.dtype}[${a.size}]`;
      if (Array.isArray(a)) return `[${a.join(',')}]`;
      if (a && typeof a === 'object') return '{' + Object.entries(a).filter(([k]) => !/BatchStride|offset|batch/.test(k)).map(([k, v]) => `${k}:${desc(v)}`).join(' ') + '}';
      return String(a);
    };
    for (const n of names) {
      orig[n] = g[n];
      g[n] = (...args: unknown[]) => { calls.push({ name: n, desc: args.map(desc).join(' '), args: args.map(clone) }); return orig[n].apply(gpu, args); };
    }
    await step('webgpu');
    for (const n of names) g[n] = orig[n];
    const res: { name: string; desc: string; ms: number }[] = [];
    for (const c of calls) {
      const call = () => { const r = orig[c.name].apply(gpu, c.args); if (isBuf(r)) gpu.release(r); };
      res.push({ name: c.name, desc: c.desc, ms: await timeGpu(call, 5) });
    }
    const by = new Map<string, number>();
    for (const r of res) by.set(r.name, (by.get(r.name) ?? 0) + r.ms);
    console.log(`\nwebgpu VAE step, per backend call replayed alone: ${calls.length} calls, ${res.reduce((a, r) => a + r.ms, 0).toFixed(1)} ms in all`);
    console.log('  ' + [...by].sort((a, b) => b[1] - a[1]).map(([n, t]) => `${n} ${t.toFixed(1)}`).join(', '));
    for (const r of res.sort((a, b) => b.ms - a.ms).slice(0, 15)) console.log(`  ${r.ms.toFixed(2).padStart(6)} ms  ${r.name} ${r.desc.slice(0, 120)}`);
  }
}

// Where a ListOps training step's time goes: V8's sampling CPU profiler (node:inspector) over timed training steps
// (after warm-up), each sample attributed to the innermost frame of a known category (the wasm GEMM, the tree
// pass's phases, the leaf LSTM's loops, the estimator, the optimiser, GC, ...), plus the products' own accounting
// (gemmF32's calls, time and FLOPs). Used for docs/performance-listops.md.
//
//   node --experimental-wasm-relaxed-simd --import tsx bench/listops_profile.ts [--hidden 300] [--steps 18]
//        [--threads 1] [--data DIR] [--shapes] [--no-profile] [--no-backoff]
// --shapes: instead, the GFLOPS of the step's product shapes through gemmF32 (median and best of 7, interleaved),
// the weight in the GEMM's memory as Adam leaves it; with --cold, a 64 MB sweep before every call (operands out of
// the caches, as between a training step's products).
import { Session } from 'node:inspector';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { enableFastCpu } from '../cli/device.ts';
import { ListopsRun, DEFAULT_LISTOPS, PAPER_PRESET, type ListopsTrainConfig } from '../models/listops/train.ts';
import { loadListOps, Vocab } from '../models/listops/data.ts';
import { gemmStats } from '../models/listops/leaf.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (n: string, d: string) => { const i = process.argv.indexOf(`--${n}`); return i >= 0 ? process.argv[i + 1] : d; };
const H = Number(arg('hidden', '300'));
const steps = Number(arg('steps', H >= 200 ? '18' : '54'));
const threads = Number(arg('threads', '1'));
const dataDir = resolve(arg('data', join(ROOT, '..', 'shared', 'data', 'listops')));

await enableFastCpu(threads as 1 | 2);
if (process.argv.includes('--no-backoff')) {
  // diagnosis: the GEMM never backs off to one thread on signs of contention (GemmOptions.backoff false)
  const { cpuBackend } = await import('../index.ts');
  const { createGemm } = await import('../backends/cpu/wasm/gemm.ts');
  cpuBackend.gemm = await createGemm({ threads: threads as 1 | 2, backoff: false });
}
if (process.argv.includes('--shapes')) await shapes();

async function shapes(): Promise<never> {
  const { cpuBackend } = await import('../index.ts');
  const g = (cpuBackend as unknown as { gemm: { allocArray(m: number, n: number): Float32Array | null } }).gemm;
  const { gemmF32 } = await import('../models/listops/leaf.ts');
  const list: [string, number, number, number, boolean, boolean][] = [
    ['compositions of a merge step (32 new pairs) X W^T', 32, 5 * H, 2 * H, false, true],
    ["chosen pairs' input cotangents (16) DZ W", 16, 2 * H, 5 * H, false, false],
    ['leaf step forward (16) h Whh^T', 16, 4 * H, H, false, true],
    ['leaf step backward (16) dz Whh', 16, H, 4 * H, false, false],
    ['initial compositions (16 x 25 pairs)', 400, 5 * H, 2 * H, false, true],
    ['query Jacobians U = DZQ W (1168 pairs)', 1168, 2 * H, 5 * H, false, false],
    ['weight gradient DZ^T X (1168 pairs)', 5 * H, 2 * H, 1168, true, false],
  ];
  const W = new Map<string, Float32Array>();
  const got = new Map<string, number[]>();
  const cold = process.argv.includes('--cold');
  const junk = new Float32Array(cold ? 16 << 20 : 0);
  let sink = 0;
  const sweep = () => { for (let i = 0; i < junk.length; i += 16) junk[i] += 1; sink += junk[0]; };
  for (let rep = 0; rep < 7; rep++) {
    for (const [label, m, n, k, tA, tB] of list) {
      const key = `${n}x${k}`;
      if (!W.has(key)) {
        const w = g.allocArray(1, n * k) ?? new Float32Array(n * k);
        for (let i = 0; i < n * k; i++) w[i] = Math.sin(i);
        W.set(key, w);
      }
      const A = new Float32Array(m * k).fill(0.5), C = new Float32Array(m * n);
      const B = tA ? new Float32Array(k * n).fill(0.25) : W.get(key)!;
      const reps = Math.max(1, Math.round(3e8 / (2 * m * n * k)));
      let ms = 0;
      for (let r = 0; r < reps; r++) {
        if (cold) sweep();
        const t0 = performance.now();
        gemmF32(cpuBackend, A, 0, B, 0, C, 0, m, n, k, tA, tB);
        ms += performance.now() - t0;
      }
      ms /= reps;
      if (!got.has(label)) got.set(label, []);
      got.get(label)!.push(2 * m * n * k / ms / 1e6);
    }
  }
  process.stdout.write(`hidden ${H}, ${threads} thread(s), ${cold ? 'cold (64 MB sweep before each call)' : 'warm'}, load ${os.loadavg()[0].toFixed(2)}${sink < 0 ? '' : ''}\n`);
  for (const [label, v] of got) {
    v.sort((a, b) => a - b);
    process.stdout.write(`${label}: median ${v[3].toFixed(1)} GFLOPS, best ${v[6].toFixed(1)}\n`);
  }
  process.exit(0);
}
const { cpuBackend: cpuBe } = await import('../index.ts');
const gemmOf = () => (cpuBe as unknown as { gemm: { threads?: number; contention?: object } | null }).gemm;
const gemmThreads = gemmOf()?.threads ?? 0;
const contention = () => gemmOf()?.contention ?? null;
const ex = loadListOps(join(dataDir, 'valid.tsv'), { maxLen: 100 }).filter((_, i) => i % 3 === 0);
const { epochs: _e, ...paper } = PAPER_PRESET;
const cfg: ListopsTrainConfig = { ...DEFAULT_LISTOPS, ...(H === 300 ? paper : {}), hidden: H, embDim: H, validPath: 'unused', examples: 1e12 };
const run = new ListopsRun(cfg, Vocab.build(ex.map((e) => e.tokens)), ex);
for (let i = 0; i < 3; i++) run.trainStep();

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[] }
const session = new Session();
session.connect();
const post = <T>(m: string, p?: object) => new Promise<T>((res, rej) => session.post(m, p ?? {}, (e, r) => (e ? rej(e) : res(r as T))));
await post('Profiler.enable');
await post('Profiler.setSamplingInterval', { interval: 200 });
const load0 = os.loadavg()[0];
// --no-profile: only the products' accounting (the sampling profiler's thread competes for the second core)
const profiling = !process.argv.includes('--no-profile');
if (profiling) await post('Profiler.start');
gemmStats.on = true;
const t0 = performance.now();
let n = 0;
for (let i = 0; i < steps; i++) n += run.trainStep().size;
const ms = performance.now() - t0;
gemmStats.on = false;
const { profile } = profiling ? await post<{ profile: Profile }>('Profiler.stop') : { profile: { nodes: [], samples: [], timeDeltas: [] } as Profile };

// innermost matching frame wins; wasm frames are the GEMM's (the only wasm on the tree path besides the
// estimator kernels, which run inside sample())
const CATS: [RegExp, string][] = [
  [/^(matmul|gemmRaw|gemmF32|matmulPacked|packB|pack|check|gemmPackedF32|packF32|rowProduct)@.*(gemm|leaf|index|packed)\.ts$/, 'products: JS side of the GEMM calls (copies in/out, dispatch)'],
  [/^compose@.*tree\.ts$/, 'tree forward: compositions (gathers, cell activations, scores)'],
  [/^(step|init|scores|root)@.*tree\.ts$/, 'tree forward: merge bookkeeping'],
  [/^backScores@.*tree\.ts$/, 'tree backward: score cotangents into nodes (O(T^2))'],
  [/^backMerge@.*tree\.ts$/, "tree backward: y's cotangent (O(T^2)) + chosen cells"],
  [/^ensureBackward@.*tree\.ts$/, 'tree backward: per-pair query Jacobians (elementwise)'],
  [/^backInit@.*tree\.ts$/, 'tree backward: weight/bias/query gradients (elementwise)'],
  [/@.*listops\/leaf\.ts$/, 'leaf LSTM recurrence (elementwise)'],
  [/@.*estimators\//, 'estimator (sample + VJP)'],
  [/^(step|adamUpdate)@.*(optim\.ts|cpu\/index\.ts)$/, 'Adam'],
  [/^clipGradNorm@/, 'gradient clipping'],
];
const byId = new Map(profile.nodes.map((x) => [x.id, x]));
const parent = new Map<number, number>();
for (const x of profile.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
const name = (x: Node) => `${x.callFrame.functionName || '(anon)'}@${x.callFrame.url}`;
const acc = new Map<string, number>();
let total = 0;
profile.samples.forEach((s, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  total += dt;
  const leaf = byId.get(s)!;
  let cat: string | null = null;
  if (leaf.callFrame.functionName === '(garbage collector)') cat = 'garbage collection';
  else if (leaf.callFrame.functionName === '(idle)' || leaf.callFrame.functionName === '(program)') cat = 'idle / program (V8 internal)';
  for (let id: number | undefined = s; !cat && id !== undefined; id = parent.get(id)) {
    const nm = name(byId.get(id)!);
    if (byId.get(id)!.callFrame.url.startsWith('wasm://')) {
      // wasm called from the GEMM's JS is the GEMM (kernel, packing); other wasm (Adam, estimator, elementwise
      // kernels) goes with its caller's category
      let up = parent.get(id);
      // (past js-to-wasm wrappers and the GEMM's job loop, compiled from a string: no .ts url)
      while (up !== undefined && !byId.get(up)!.callFrame.url.endsWith('.ts')) up = parent.get(up);
      if (up !== undefined && /gemm\.ts$/.test(byId.get(up)!.callFrame.url)) cat = 'products: wasm GEMM (kernel + packing)';
      continue;
    }
    for (const [re, c] of CATS) if (re.test(nm)) { cat = c; break; }
  }
  cat ??= 'other: engine ops, tape, tensors, per-step scheduling';
  acc.set(cat, (acc.get(cat) ?? 0) + dt);
});
const out = [
  `hidden ${H}, ${threads} thread(s), ${steps} steps of 16 (${n} examples): ${(n / ms * 1000).toFixed(1)} examples/s, ${(ms / steps).toFixed(1)} ms/step; ` +
  `load ${load0.toFixed(2)} -> ${os.loadavg()[0].toFixed(2)}`,
  `gemmF32: ${(gemmStats.calls / steps).toFixed(0)} calls/step, ${(gemmStats.ms / steps).toFixed(1)} ms/step (${(100 * gemmStats.ms / ms).toFixed(1)} % of the step), ` +
  `${(gemmStats.flops / steps / 1e9).toFixed(3)} GFLOP/step at ${(gemmStats.flops / gemmStats.ms / 1e6).toFixed(1)} GFLOPS; ` +
  `of which <= 64 rows (per merge step / token): ${(gemmStats.smallCalls / steps).toFixed(0)} calls, ${(gemmStats.smallMs / steps).toFixed(1)} ms, ` +
  `${(gemmStats.smallFlops / steps / 1e9).toFixed(3)} GFLOP at ${(gemmStats.smallFlops / gemmStats.smallMs / 1e6).toFixed(1)} GFLOPS; ` +
  `larger: ${((gemmStats.ms - gemmStats.smallMs) / steps).toFixed(1)} ms at ${((gemmStats.flops - gemmStats.smallFlops) / (gemmStats.ms - gemmStats.smallMs) / 1e6).toFixed(1)} GFLOPS`,
  `GEMM threads ${gemmThreads}; contention over the timed steps: ${JSON.stringify(contention())}; packed-B products ${(gemmStats.packedCalls / steps).toFixed(0)}/step`,
  '',
  '| share of profiled time | ms/step | category |',
  '|---:|---:|---|',
  ...[...acc].sort((a, b) => b[1] - a[1]).map(([c, t]) => `| ${(100 * t / total).toFixed(1)} % | ${(t / 1000 / steps).toFixed(1)} | ${c} |`),
];
process.stdout.write(`${out.join('\n')}\n`);
session.disconnect();
process.exit(0);

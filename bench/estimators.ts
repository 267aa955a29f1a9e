// Forward + backward time per call of every registered estimator (npx tsx bench/estimators.ts
// [--estimators FILE] [--methods M1,M2] [--devices cpu]).
// Paper's claim to check: GST costs about what ST Gumbel-softmax costs, far less than rao_gumbel (K = 100).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tensor, tidy, random, estimators, type Device, type DType } from '../node.ts';
import { loadEstimatorModules, estimatorPaths } from '../cli/estimators.ts';

// every registered method's example names (user-defined ones too, with --estimators FILE), plus rao_gumbel at
// K = 10 beside the default K = 100; --methods M1,M2 picks some, --devices cpu skips webgpu
const argv = process.argv.slice(2);
const argOf = (name: string) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3); };
await loadEstimatorModules(estimatorPaths(argv));
const picked = argOf('methods')?.split(',').map((m) => m.trim()).filter(Boolean);
for (const m of picked ?? []) estimators.resolve(m); // an unknown name fails here, listing the valid ones
const METHODS: { name: string; method: string; k?: number }[] = (picked ?? estimators.exampleMethods()).flatMap((m) =>
  m === 'rao_gumbel' ? [{ name: 'rao_gumbel (K=10)', method: m, k: 10 }, { name: 'rao_gumbel (K=100)', method: m, k: 100 }] : [{ name: m, method: m }]);
const SHAPES = [[100, 30, 10], [200, 32, 64]];
const DTYPE: DType = 'float32';
const TARGET_MS = Number(process.env.BENCH_TARGET_MS ?? 300); // time per repeat
const REPEATS = 5;

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const warmed = new Set<Device>();

async function benchOne(device: Device, shape: number[], m: (typeof METHODS)[number]): Promise<{ ms: number; iters: number; repeats: number }> {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(i * 12.9898) * 3;
  const x = tensor(data, shape, { dtype: DTYPE, device, requiresGrad: true });
  const up = tensor(Float32Array.from(data, (v) => Math.cos(v)), shape, { dtype: DTYPE, device });
  let step = 0;
  const call = async (): Promise<void> => {
    tidy(() => {
      const y = estimators.sample(x, { method: m.method, k: m.k, key: random.key(step++), check: device === 'cpu' });
      y.backward(up);
    });
    // asynchronous backends: read the gradient back so that the device finishes the work. A synchronous backend
    // has finished it already; its readSync hands over the storage itself, with no copy (PyTorch's side reads
    // nothing either)
    const g = x.grad!;
    if (g.backend.readSync) g.backend.readSync(g.buf); else await g.data();
    g.dispose();
    x.grad = null;
  };
  let t0 = performance.now();
  await call(); // warm-up (kernel compilation, JIT)
  const first = performance.now() - t0;
  if (first > 3000) {
    // very slow configuration: one more timed call is enough
    t0 = performance.now();
    await call();
    return { ms: performance.now() - t0, iters: 1, repeats: 1 };
  }
  // warm-up: the JIT tiers up over the first few hundred calls of the process (the first method measured
  // ran ~30 % slow after 100 calls), then over a few dozen calls of each further method
  const warmEnd = performance.now() + (warmed.has(device) ? Math.min(TARGET_MS, 300) : 1500);
  warmed.add(device);
  for (let i = 0; i < 30 || performance.now() < warmEnd; i++) await call();
  t0 = performance.now();
  await call();
  const one = Math.max(0.01, performance.now() - t0);
  const iters = Math.max(1, Math.round(TARGET_MS / one));
  const times: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    t0 = performance.now();
    for (let i = 0; i < iters; i++) await call();
    times.push((performance.now() - t0) / iters);
  }
  x.dispose(); up.dispose();
  return { ms: median(times), iters, repeats: REPEATS };
}

async function devices(): Promise<Device[]> {
  const out: Device[] = ['cpu'];
  if (argOf('devices') === 'cpu') return out;
  const here = fileURLToPath(new URL('../backends/webgpu/index.ts', import.meta.url));
  if (existsSync(here)) {
    try {
      const mod = (await import('../backends/webgpu/index.ts' as string)) as { initWebGPU?: () => Promise<unknown> };
      if (typeof mod.initWebGPU !== 'function') throw new Error('no initWebGPU export');
      await mod.initWebGPU();
      out.push('webgpu');
    } catch (e) {
      console.log(`(webgpu skipped: ${(e as Error).message})`);
    }
  } else console.log('(webgpu skipped: backends/webgpu/index.ts not present)');
  return out;
}

async function main(): Promise<void> {
  const devs = await devices();
  const lines: string[] = [];
  for (const device of devs) {
    for (const shape of SHAPES) {
      const res = new Map<string, { ms: number; iters: number; repeats: number } | string>();
      let broken: string | null = null;
      for (const m of METHODS) {
        if (broken) { res.set(m.name, `skipped (${broken})`); continue; }
        try {
          const r = await benchOne(device, shape, m);
          res.set(m.name, r);
          process.stderr.write(`  ${device} [${shape}] ${m.name}: ${r.ms.toFixed(3)} ms\n`);
        } catch (e) {
          const msg = (e as Error).message.split('\n')[0].slice(0, 160);
          res.set(m.name, `failed: ${msg}`);
          if (device !== 'cpu') broken = 'device failed earlier';
        }
      }
      const g = res.get('gumbel');
      const base = typeof g === 'object' ? g.ms : NaN;
      lines.push('', `### ${device}, logits [${shape.join(', ')}] ${DTYPE}, forward + backward`, '',
        '| method | ms / call | × gumbel | iters × repeats |', '|---|---:|---:|---:|');
      for (const m of METHODS) {
        const r = res.get(m.name)!;
        if (typeof r === 'string') lines.push(`| ${m.name} | ${r} | | |`);
        else lines.push(`| ${m.name} | ${r.ms.toFixed(3)} | ${Number.isFinite(base) ? (r.ms / base).toFixed(2) : '—'} | ${r.iters} × ${r.repeats} |`);
      }
    }
  }
  console.log(`node ${process.version}, median of ${REPEATS} repeats of ~${TARGET_MS} ms after warm-up (1 timed call where a call exceeds 3 s)`);
  console.log(lines.join('\n'));
}

await main();

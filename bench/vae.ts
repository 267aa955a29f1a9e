// One MNIST-VAE training step (batch 100, 30x10 latents, forward + backward + Adam) per backend:
// median milliseconds over repeated steps, and the implied seconds per 600-step epoch.
// Usage: npx tsx bench/vae.ts [--methods gumbel,gst-1.0] [--steps 30] [--webgpu]
import { cpuBackend, tidy, tensor } from '../node.ts';
import { createGemm } from '../backends/cpu/wasm/gemm.ts';
import { VaeRun, DEFAULT_TRAIN } from '../models/vae/train.ts';
import { loadMnist } from '../models/vae/mnist.ts';

const arg = (name: string, def: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : def; };
const methods = arg('methods', 'gumbel,gst-1.0,rao_gumbel').split(',');
const steps = Number(arg('steps', '30'));
const data = loadMnist();

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// The products of a step: time spent in the GEMM and its multiply-adds, summed over the timed steps of the
// configuration that is running (the GEMMs are wrapped below).
interface Products { ms: number; flop: number; calls: number; steps: number }
let products: Products | null = null;

/** A training run whose steps can be timed a few at a time. */
function stepper(device: string, method: string, prod?: Products): (n: number, record?: boolean) => Promise<number[]> {
  const run = new VaeRun({ ...DEFAULT_TRAIN, method, device }, data);
  const x = data.train.images.subarray(0, 100 * 784);
  let i = 0;
  return async (n: number, record = true) => {
    const times: number[] = [];
    for (let s = 0; s < n; s++, i++) {
      products = record ? prod ?? null : null;
      if (products) products.steps++;
      const t0 = performance.now();
      const v = tidy(() => {
        const { loss } = run.model.forward(tensor(x, [100, 784], { device }), { method, tau: 1, key: [1, i], k: 100 });
        loss.backward();
        run.opt.step();
        run.opt.zeroGrad();
        return loss;
      });
      await v.data();
      v.dispose();
      times.push(performance.now() - t0);
      products = null;
    }
    return times;
  };
}

// warm-up: the JIT tiers up over the first ~20 steps (measured on 2 threads: 25 ms per step, 20 after)
const WARM = 25;
const ROUNDS = 4;

/**
 * Median step time of each configuration. The configurations take turns in ROUNDS rounds of steps / ROUNDS
 * steps each, so that a slow spell of this shared machine (its second core sometimes runs at half speed for a
 * second or more) falls on all of them rather than on whichever happened to be running.
 */
async function timeConfigs(configs: { before: () => void; step: (n: number, record?: boolean) => Promise<number[]> }[]): Promise<number[]> {
  for (const c of configs) { c.before(); await c.step(WARM, false); }
  const times: number[][] = configs.map(() => []);
  const per = Math.max(1, Math.round(steps / ROUNDS));
  for (let r = 0; r < ROUNDS; r++) {
    for (let q = 0; q < configs.length; q++) {
      configs[q].before();
      times[q].push(...await configs[q].step(per));
    }
  }
  return times.map(median);
}

const rows: string[] = ['| device | threads | method | ms / step | s / epoch (600 steps) |', '|---|---|---|---|---|'];
{
  const gemms = { 1: await createGemm({ threads: 1 }), 2: await createGemm({ threads: 2 }) };
  for (const g of Object.values(gemms)) {
    const mm = g.matmul.bind(g);
    g.matmul = (a, ao, b, bo, c, co, m, n, k, tA, tB) => {
      if (!products) { mm(a, ao, b, bo, c, co, m, n, k, tA, tB); return; }
      const t0 = performance.now();
      mm(a, ao, b, bo, c, co, m, n, k, tA, tB);
      products.ms += performance.now() - t0;
      products.flop += 2 * m * n * k;
      products.calls++;
    };
  }
  const configs = ([1, 2] as const).flatMap((threads) => methods.map((m) => {
    const prod: Products = { ms: 0, flop: 0, calls: 0, steps: 0 };
    return { threads, m, prod, before: () => { cpuBackend.gemm = gemms[threads]; }, step: stepper('cpu', m, prod) };
  }));
  const ms = await timeConfigs(configs);
  configs.forEach((c, q) => {
    rows.push(`| cpu | ${c.threads} | ${c.m} | ${ms[q].toFixed(1)} | ${(ms[q] * 0.6).toFixed(1)} |`);
    console.error(rows[rows.length - 1]);
  });
  // one line per configuration, parsed by bench/run.ts
  for (const c of configs) {
    const p = c.prod;
    console.log(`products: cpu ${c.threads}T ${c.m}: ${(p.calls / p.steps).toFixed(0)} GEMM calls per step, ` +
      `${(p.ms / p.steps).toFixed(2)} ms per step, ${(p.flop / (p.ms * 1e-3) / 1e9).toFixed(1)} GFLOPS`);
  }
}
if (process.argv.includes('--webgpu')) {
  try {
    const { initWebGPU } = await import('../backends/webgpu/index.ts');
    await initWebGPU();
    const configs = methods.map((m) => ({ m, before: () => {}, step: stepper('webgpu', m) }));
    const ms = await timeConfigs(configs);
    configs.forEach((c, q) => rows.push(`| webgpu | - | ${c.m} | ${ms[q].toFixed(1)} | ${(ms[q] * 0.6).toFixed(1)} |`));
  } catch (e) {
    console.error(`webgpu skipped: ${(e as Error).message}`);
  }
}
console.log(rows.join('\n'));
process.exit(0);

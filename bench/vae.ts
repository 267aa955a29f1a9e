// One MNIST-VAE training step (batch 100, 30x10 latents, forward + backward + Adam) per backend:
// median milliseconds over repeated steps, and the implied seconds per 600-step epoch.
// Usage: npx tsx bench/vae.ts [--methods gumbel,gst-1.0] [--steps 30] [--webgpu]
import { cpuBackend, tidy, tensor } from '../index.ts';
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

async function timeSteps(device: string, method: string): Promise<number> {
  const run = new VaeRun({ ...DEFAULT_TRAIN, method, device }, data);
  const x = data.train.images.subarray(0, 100 * 784);
  const times: number[] = [];
  // warm-up: the JIT tiers up over the first ~20 steps (measured on 2 threads: 25 ms per step, 20 after)
  const warm = 25;
  for (let i = 0; i < steps + warm; i++) {
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
    if (i >= warm) times.push(performance.now() - t0);
  }
  return median(times);
}

const rows: string[] = ['| device | threads | method | ms / step | s / epoch (600 steps) |', '|---|---|---|---|---|'];
for (const threads of [1, 2]) {
  cpuBackend.gemm = await createGemm({ threads });
  for (const m of methods) {
    const ms = await timeSteps('cpu', m);
    rows.push(`| cpu | ${threads} | ${m} | ${ms.toFixed(1)} | ${(ms * 0.6).toFixed(1)} |`);
    console.error(rows[rows.length - 1]);
  }
}
if (process.argv.includes('--webgpu')) {
  try {
    const { initWebGPU } = await import('../backends/webgpu/index.ts');
    await initWebGPU();
    for (const m of methods) {
      const ms = await timeSteps('webgpu', m);
      rows.push(`| webgpu | - | ${m} | ${ms.toFixed(1)} | ${(ms * 0.6).toFixed(1)} |`);
    }
  } catch (e) {
    console.error(`webgpu skipped: ${(e as Error).message}`);
  }
}
console.log(rows.join('\n'));
process.exit(0);

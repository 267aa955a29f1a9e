// The CPU GEMM's 2-thread policy before and after a change, in one process: MNIST-VAE training steps with the
// GEMM on 1 thread, on 2 threads with the new code and on 2 threads with an earlier gemm.ts, in phases without
// and with busy-looping processes beside, the configurations taking turns (2 steps each, in a rotating order).
//   git show 2f84656:backends/cpu/wasm/gemm.ts > backends/cpu/wasm/gemm_before.ts   (untracked; same folder so its imports resolve)
//   npx tsx bench/contention_ab.ts [--steps 80] [--phases quiet,busy,quiet,busy] [--busy 1] [--method gst-1.0]
import '../platform/node.ts';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { cpuBackend, tidy, tensor } from '../node.ts';
import { createGemm, type Gemm } from '../backends/cpu/wasm/gemm.ts';
import { VaeRun, DEFAULT_TRAIN } from '../models/vae/train.ts';
import { loadMnist } from '../models/vae/mnist.ts';
import { startBusy, stats } from '../cli/bench_core.ts';

const arg = (n: string, d: string) => { const i = process.argv.indexOf(`--${n}`); return i >= 0 ? process.argv[i + 1] : d; };
const steps = Number(arg('steps', '80')), method = arg('method', 'gst-1.0'), busyN = Number(arg('busy', '1'));
const phases = arg('phases', 'quiet,busy,quiet,busy').split(',');
const beforePath = fileURLToPath(new URL('../backends/cpu/wasm/gemm_before.ts', import.meta.url));
if (!existsSync(beforePath)) throw new Error(`${beforePath} is missing: see the usage at the top of this file`);
const { createGemm: createBefore } = await import(beforePath) as { createGemm: typeof createGemm };
const data = loadMnist();
const gemms: Record<string, Gemm> = { '1T': await createGemm({ threads: 1 }), '2T before': await createBefore({ threads: 2 }), '2T after': await createGemm({ threads: 2 }) };

function stepper(): (n: number) => Promise<number[]> {
  const run = new VaeRun({ ...DEFAULT_TRAIN, method, device: 'cpu' }, data);
  const x = data.train.images.subarray(0, 100 * 784);
  let i = 0;
  return async (n) => {
    const t: number[] = [];
    for (let s = 0; s < n; s++, i++) {
      const t0 = performance.now();
      const v = tidy(() => {
        const { loss } = run.model.forward(tensor(x, [100, 784]), { method, tau: 1, key: [1, i], k: 100 });
        loss.backward(); run.opt.step(); run.opt.zeroGrad();
        return loss;
      });
      await v.data(); v.dispose();
      t.push(performance.now() - t0);
    }
    return t;
  };
}
const cfgs = Object.entries(gemms).map(([k, g]) => ({ k, g, step: stepper() }));
for (const c of cfgs) { cpuBackend.gemm = c.g; await c.step(25); } // warm-up: the JIT tiers up
console.log(`| phase | load at start | 1T ms/step | 2T before | 2T after | before / 1T | after / 1T |\n|---|---|---:|---:|---:|---:|---:|`);
for (const phase of phases) {
  const busy = phase === 'busy' ? startBusy(busyN) : null;
  await new Promise((r) => setTimeout(r, 300));
  const load = os.loadavg()[0].toFixed(2);
  const times: Record<string, number[]> = {};
  for (let r = 0; r < steps / 2; r++) {
    for (let j = 0; j < cfgs.length; j++) {
      const c = cfgs[(j + r) % cfgs.length];
      // let the previous configuration's worker finish spinning and sleep (its spinning would take a core from this one)
      await new Promise((res) => setTimeout(res, 10));
      cpuBackend.gemm = c.g;
      (times[c.k] ??= []).push(...await c.step(2));
    }
  }
  busy?.stop();
  const m = (k: string) => stats(times[k]).median;
  console.log(`| ${phase} | ${load} | ${m('1T').toFixed(1)} | ${m('2T before').toFixed(1)} | ${m('2T after').toFixed(1)} | ${(m('2T before') / m('1T')).toFixed(2)} | ${(m('2T after') / m('1T')).toFixed(2)} |`);
}
process.exit(0);

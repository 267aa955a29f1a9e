// The demo's training loop, in a Web Worker (where Atomics.wait is allowed, so the CPU backend can use its second
// thread when the page is cross-origin isolated). It fetches MNIST from the page's own server, trains the
// categorical VAE step by step with gapgrad's browser build, and posts progress, pictures and checkpoints.
import { initWebGPU, estimators, cpuThreads, configure, tensor, random, cpuBackend, type Device } from '../../browser.ts';
import { VaeRun, DEFAULT_TRAIN, limitSplit, type VaeTrainConfig } from '../../models/vae/run.ts';
import { splitFromBytes, type Mnist } from '../../models/vae/idx.ts';
import type { FromPage, ToPage, Conformance } from './protocol.ts';

const post = (m: ToPage) => (self as unknown as { postMessage(m: ToPage, t?: Transferable[]): void }).postMessage(m);

let run: VaeRun | null = null;
let running = false;
let mnist: Promise<Mnist> | null = null;

async function fetchBytes(name: string): Promise<Uint8Array> {
  const r = await fetch(`/mnist/${name}`);
  if (!r.ok) throw new Error(`MNIST: GET /mnist/${name} answered ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

function loadMnist(): Promise<Mnist> {
  mnist ??= (async () => {
    const [a, b, c, d] = await Promise.all(['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'].map(fetchBytes));
    return {
      train: splitFromBytes(a, b, { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' }),
      test: splitFromBytes(c, d, { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' }),
    };
  })();
  return mnist;
}

/** The device to run on: WebGPU when asked for and an adapter exists. */
async function prepareDevice(want: Device): Promise<{ device: Device; adapter: string }> {
  if (want === 'webgpu') {
    const gpu = await initWebGPU();
    return { device: 'webgpu', adapter: `${gpu.adapterName}${gpu.isSoftware ? ' (software)' : ''}` };
  }
  return { device: 'cpu', adapter: '' };
}

async function start(cfgIn: Partial<VaeTrainConfig>, steps: number | null, every: number): Promise<void> {
  const { device, adapter } = await prepareDevice((cfgIn.device ?? 'cpu') as Device);
  const threads = cpuThreads();
  const data = await loadMnist();
  const cfg: VaeTrainConfig = { ...DEFAULT_TRAIN, ...cfgIn, device };
  run = new VaeRun(cfg, { train: limitSplit(data.train, cfg.trainLimit), test: limitSplit(data.test, cfg.testLimit) });
  post({ kind: 'started', device, adapter, threads: threads.threads, threadsReason: threads.reason, stepsPerEpoch: run.stepsPerEpoch() });
  running = true;
  let done = 0;
  const losses: number[] = [];
  const t0 = performance.now();
  while (running && (steps === null || done < steps)) {
    const n = steps === null ? every : Math.min(every, steps - done);
    const ts = performance.now();
    const l = await run.trainSteps(n);
    const ms = (performance.now() - ts) / n;
    losses.push(...l);
    done += n;
    post({ kind: 'steps', step: run.step, losses: l, msPerStep: ms });
    if (steps === null || done >= steps) {
      const pics = await run.pictures();
      post({ kind: 'pictures', images: pics.images, recon: pics.recon, n: pics.n, samples: pics.samples });
    }
    await new Promise((r) => setTimeout(r, 0)); // let 'stop' and other messages in
  }
  running = false;
  // the CPU GEMM's signs of oversubscribed cores and backoffs (diagnostics for the page's readers and tests)
  const gemm = (cpuBackend.gemm ?? null) as { contention?: unknown } | null;
  post({ kind: 'finished', losses, seconds: (performance.now() - t0) / 1000, contention: gemm?.contention ?? null });
}

/** A few engine checks of WebGPU against the CPU in this page: values within float32 tolerance, samples bit for bit. */
async function conformance(): Promise<Conformance[]> {
  const out: Conformance[] = [];
  const gpu = await initWebGPU();
  const check = async (name: string, f: (d: Device) => Promise<number[]> | number[], rtol: number) => {
    try {
      const a = await f('cpu'), b = await f('webgpu');
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(a[i])));
      out.push({ name, ok: a.length === b.length && worst <= rtol, worst });
    } catch (e) {
      out.push({ name, ok: false, worst: NaN, error: (e as Error).message });
    }
  };
  const vals = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * 3);
  await check('matmul (65x70 @ 70x33)', async (d) => Array.from(await tensor(vals(65 * 70, 1), [65, 70], { device: d }).matmul(tensor(vals(70 * 33, 2), [70, 33], { device: d })).data()), 1e-4);
  await check('softmax over 10', async (d) => Array.from(await tensor(vals(300, 3), [30, 10], { device: d }).softmax(-1).data()), 1e-5);
  await check('gradient of sum(exp(x) * y)', async (d) => {
    const x = tensor(vals(64, 4), [8, 8], { device: d, requiresGrad: true });
    x.exp().mul(tensor(vals(64, 5), [8, 8], { device: d })).sum().backward();
    return Array.from(await x.grad!.data());
  }, 1e-5);
  await check('random.uniform bits', async (d) => Array.from(await random.uniform(random.key(7), [1000], { device: d }).data()), 0);
  for (const method of estimators.exampleMethods()) {
    await check(`estimator ${method}: sample`, async (d) => Array.from(await estimators.sample(tensor(vals(200, 6), [20, 10], { device: d }), { method, tau: 0.5, key: random.key(11) }).data()), 0);
    // the drawn categories, which Node must draw too (the same key gives the same sample everywhere)
    out[out.length - 1].index = Array.from(await estimators.sample(tensor(vals(200, 6), [20, 10]), { method, tau: 0.5, key: random.key(11) }).argmax(-1).data());
  }
  out.push({ name: `adapter: ${gpu.adapterName}`, ok: true, worst: 0 });
  return out;
}

// the page's method selector: every registered estimator
post({ kind: 'methods', methods: estimators.exampleMethods() });

self.onmessage = (e: MessageEvent<FromPage>) => {
  const m = e.data;
  const fail = (err: unknown) => post({ kind: 'error', message: (err as Error).message ?? String(err) });
  if (m.kind === 'start') {
    // threads: the CPU backend reads it when it builds its GEMM, at the first product
    if (m.threads !== undefined) configure({ threads: m.threads });
    start(m.cfg, m.steps ?? null, m.every ?? 5).catch(fail);
  }
  else if (m.kind === 'stop') running = false;
  else if (m.kind === 'checkpoint') {
    if (!run) return fail(new Error('no run to save'));
    run.checkpointBytes().then((bytes) => post({ kind: 'checkpoint', bytes }), fail);
  } else if (m.kind === 'conformance') conformance().then((results) => post({ kind: 'conformance', results }), fail);
};

// `gapgrad bench --check`: is the WebGPU adapter Dawn finds here ready for gapgrad? Runs conformance checks of
// the WebGPU backend against the CPU backend (the comparisons of test/webgpu*.test.ts, as library code), then
// times one MNIST-VAE training epoch on the adapter. Prints pass/fail per check; fails (exit 1, the adapter
// named) when there is no adapter or a check fails, never falling back to the CPU.
import * as gg from '../index.ts';
import { tensor, tidy, random, estimators, type Tensor } from '../index.ts';
import { loadAverage, machineInfo } from './bench_core.ts';
import { writeFileAtomic } from '../platform/atomic.ts';

type Device = 'cpu' | 'webgpu';

/** One conformance check: computes the same thing on both devices and returns a mismatch description, or null. */
export interface Check { name: string; run: () => Promise<string | null> }

function values(n: number, seed: number, lo = -3, hi = 3): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    a[i] = lo + (hi - lo) * (s / 4294967296);
  }
  return a;
}

/** The first element where got and want differ beyond atol + rtol |want| (NaN must match NaN), or null. */
export function mismatch(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number): string | null {
  if (got.length !== want.length) return `length ${got.length}, expected ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(w) || Number.isNaN(g)) { if (Number.isNaN(w) !== Number.isNaN(g)) return `[${i}] ${g}, expected ${w}`; continue; }
    if (!Number.isFinite(w)) { if (g !== w) return `[${i}] ${g}, expected ${w}`; continue; }
    if (!(Math.abs(g - w) <= atol + rtol * Math.abs(w))) return `[${i}] ${g}, expected ${w} (tolerance ${atol} + ${rtol}|x|)`;
  }
  return null;
}

/** Run f on each device, read the results, and compare the webgpu ones with the CPU's. */
async function onBoth(f: (d: Device) => Tensor | Tensor[], rtol: number, atol: number): Promise<string | null> {
  const res: Record<Device, ArrayLike<number>[]> = { cpu: [], webgpu: [] };
  for (const d of ['cpu', 'webgpu'] as const) {
    const outs = tidy(() => { const r = f(d); return Array.isArray(r) ? r : [r]; });
    for (const t of outs) { res[d].push(await t.data()); t.dispose(); }
  }
  for (let i = 0; i < res.cpu.length; i++) {
    const m = mismatch(res.webgpu[i], res.cpu[i], rtol, atol);
    if (m) return `output ${i}: ${m}`;
  }
  return null;
}

const t = (data: Float32Array, shape: number[], d: Device, grad = false) => tensor(data, shape, { device: d, requiresGrad: grad });

/** The conformance checks: elementwise ops through broadcast views, reductions, matmul in every layout, softmax,
 *  gather, Philox streams (bit-identical), the estimators (identical samples, matching gradients), an MLP's gradients. */
export function conformanceChecks(): Check[] {
  const A = values(6 * 7, 1), B = values(7, 2), P = values(6 * 7, 3, 0.1, 3);
  const unary: [string, (x: Tensor) => Tensor, Float32Array][] = [
    ['neg', gg.neg, A], ['exp', gg.exp, A], ['log', gg.log, P], ['sqrt', gg.sqrt, P], ['abs', gg.abs, A], ['relu', gg.relu, A],
    ['sigmoid', gg.sigmoid, A], ['tanh', gg.tanh, A], ['sign', gg.sign, A], ['reciprocal', gg.reciprocal, P], ['floor', gg.floor, A],
    ['cos', gg.cos, A], ['sin', gg.sin, A], ['square', gg.square, A],
  ];
  const binary: [string, (a: Tensor, b: Tensor) => Tensor][] = [
    ['add', gg.add], ['sub', gg.sub], ['mul', gg.mul], ['div', gg.div], ['maximum', gg.maximum], ['minimum', gg.minimum],
  ];
  const checks: Check[] = [
    { name: 'round trip of a buffer', run: () => onBoth((d) => t(A, [6, 7], d), 0, 0) },
    ...unary.map(([n, f, x]): Check => ({ name: `unary ${n}`, run: () => onBoth((d) => f(t(x, [6, 7], d)), 2e-5, 2e-6) })),
    ...binary.map(([n, f]): Check => ({
      name: `binary ${n} (broadcast row, transposed view)`,
      run: () => onBoth((d) => [f(t(A, [6, 7], d), t(B, [7], d)), f(t(A, [6, 7], d).transpose(0, 1), t(values(6, 5), [6], d))], 2e-5, 2e-6),
    })),
    { name: 'sum, max, argmax over the last axis', run: () => onBoth((d) => { const x = t(values(33 * 130, 7), [33, 130], d); return [gg.sum(x, -1), gg.max(x, -1), gg.argmax(x, -1).cast('float32')]; }, 1e-5, 1e-5) },
    ...([[1, 1, 1], [7, 5, 3], [100, 784, 512], [64, 256, 300], [33, 65, 17]] as const).flatMap(([m, k, n]) => [
      { name: `matmul ${m}x${k}x${n}`, run: () => onBoth((d) => gg.matmul(t(values(m * k, m), [m, k], d), t(values(k * n, n), [k, n], d)), 1e-4, 1e-4) },
      { name: `matmul ${m}x${k}x${n}, both transposed`, run: () => onBoth((d) => gg.matmul(t(values(m * k, m), [k, m], d).transpose(0, 1), t(values(k * n, n), [n, k], d).transpose(0, 1)), 1e-4, 1e-4) },
    ]),
    { name: 'batched matmul with a broadcast batch', run: () => onBoth((d) => gg.matmul(t(values(3 * 5 * 4, 9), [3, 5, 4], d), t(values(4 * 6, 10), [4, 6], d)), 1e-4, 1e-4) },
    { name: 'softmax, logSoftmax, logsumexp', run: () => onBoth((d) => { const x = t(values(40 * 10, 11), [40, 10], d); return [gg.softmax(x, -1), gg.logSoftmax(x, -1), gg.logsumexp(x, -1)]; }, 2e-5, 2e-6) },
    { name: 'gather', run: () => onBoth((d) => gg.gather(t(A, [6, 7], d), tensor(Int32Array.from({ length: 6 * 3 }, (_, i) => (i * 5) % 7), [6, 3], { dtype: 'int32', device: d }), 1), 0, 0) },
    { name: 'Philox random bits (bit-identical)', run: () => onBoth((d) => random.bits(random.key(12345), [1027], { device: d }).cast('float32'), 0, 0) },
    { name: 'uniform draws (bit-identical)', run: () => onBoth((d) => random.uniform(random.key(3), [999], { device: d }), 0, 0) },
    // normal and gumbel go through log (and cos / sin), whose last bits differ between devices
    { name: 'normal, gumbel draws', run: () => onBoth((d) => [random.normal(random.key(4), [999], { device: d }), random.gumbel(random.key(5), [999], { device: d })], 1e-4, 1e-5) },
    ...['st', 'gumbel', 'gst-1.0', 'gst-p', 'reinmax', 'rao_gumbel'].map((method): Check => ({
      name: `estimator ${method}: identical sample, matching gradient`,
      run: async () => {
        const L = values(16 * 6, 9);
        const res: Record<Device, { s: ArrayLike<number>; g: ArrayLike<number> }> = {} as never;
        for (const d of ['cpu', 'webgpu'] as const) {
          const logits = t(L, [16, 6], d, true);
          const s = estimators.sample(logits, { method, key: random.key(42), tau: 0.7, k: 10, check: false });
          tidy(() => s.mul(t(values(16 * 6, 3), [16, 6], d)).sum().backward());
          res[d] = { s: await s.data(), g: await logits.grad!.data() };
          s.dispose(); logits.grad!.dispose(); logits.dispose();
        }
        return mismatch(res.webgpu.s, res.cpu.s, 0, 0) ?? mismatch(res.webgpu.g, res.cpu.g, 1e-4, 1e-5);
      },
    })),
    {
      name: 'MLP forward + backward (gradients of every parameter)',
      run: async () => {
        const res: Record<Device, ArrayLike<number>[]> = { cpu: [], webgpu: [] };
        for (const d of ['cpu', 'webgpu'] as const) {
          const w1 = t(values(20 * 12, 21, -0.3, 0.3), [20, 12], d, true), b1 = t(values(12, 22), [12], d, true);
          const w2 = t(values(12 * 5, 23, -0.3, 0.3), [12, 5], d, true);
          tidy(() => {
            const h = gg.relu(gg.add(gg.matmul(t(values(8 * 20, 24), [8, 20], d), w1), b1));
            gg.crossEntropy(gg.matmul(h, w2), tensor(Int32Array.from([0, 1, 2, 3, 4, 0, 1, 2]), [8], { dtype: 'int32', device: d })).backward();
          });
          for (const p of [w1, b1, w2]) { res[d].push(await p.grad!.data()); p.grad!.dispose(); p.dispose(); }
        }
        for (let i = 0; i < 3; i++) { const m = mismatch(res.webgpu[i], res.cpu[i], 1e-4, 1e-5); if (m) return `parameter ${i}: ${m}`; }
        return null;
      },
    },
  ];
  return checks;
}

export interface CheckReport {
  adapter: string; software: boolean; via: string;
  checks: { name: string; ok: boolean; detail: string | null; ms: number }[];
  epoch: { images: number; steps: number; seconds: number; loss: number; cpuSeconds: number | null } | null;
  ok: boolean;
}

/** Run the readiness check: throws (naming the reason) when no WebGPU adapter can be created. */
export async function runCheck(o: { trainLimit: number | null; say?: (s: string) => void }): Promise<CheckReport> {
  const say = o.say ?? ((s: string) => process.stdout.write(`${s}\n`));
  const { initWebGPU } = await import('../backends/webgpu/index.ts');
  let gpu;
  try { gpu = await initWebGPU(); } catch (e) { throw new Error(`check: no WebGPU adapter: ${(e as Error).message}`); }
  say(`WebGPU adapter: ${gpu.adapterName} (${gpu.isSoftware ? 'software adapter' : 'hardware adapter'}, via ${gpu.via}); load average ${loadAverage()}`);
  const checks: CheckReport['checks'] = [];
  for (const c of conformanceChecks()) {
    const t0 = performance.now();
    let detail: string | null;
    try { detail = await c.run(); } catch (e) { detail = `threw: ${(e as Error).message}`; }
    checks.push({ name: c.name, ok: detail === null, detail, ms: performance.now() - t0 });
    say(`  ${detail === null ? 'pass' : 'FAIL'}  ${c.name}${detail ? `: ${detail}` : ''}`);
  }
  // one MNIST-VAE epoch on the adapter (and on the CPU, for scale, when it is a short one)
  let epoch: CheckReport['epoch'] = null;
  try {
    const { VaeRun, DEFAULT_TRAIN } = await import('../models/vae/train.ts');
    const { loadMnist } = await import('../models/vae/mnist.ts');
    const full = loadMnist();
    const n = Math.min(o.trainLimit ?? full.train.count, full.train.count);
    const data = { train: { ...full.train, count: n, images: full.train.images.subarray(0, n * 784) }, test: full.test };
    const time = async (device: Device) => {
      const run = new VaeRun({ ...DEFAULT_TRAIN, method: 'gst-1.0', device }, data);
      const t0 = performance.now();
      const loss = await run.trainEpoch();
      return { seconds: (performance.now() - t0) / 1000, loss, steps: run.stepsPerEpoch() };
    };
    say(`  timing one MNIST-VAE epoch (gst-1.0, batch 100, ${n} images) on webgpu ...`);
    const g = await time('webgpu');
    const c = n <= 10000 ? await time('cpu') : null;
    epoch = { images: n, steps: g.steps, seconds: g.seconds, loss: g.loss, cpuSeconds: c?.seconds ?? null };
    const ok = Number.isFinite(g.loss) && (!c || Math.abs(g.loss - c.loss) <= 1e-3 * Math.abs(c.loss));
    checks.push({ name: 'MNIST-VAE epoch: finite loss, the CPU\'s within 1e-3', ok, detail: ok ? null : `loss ${g.loss}${c ? `, CPU ${c.loss}` : ''}`, ms: g.seconds * 1000 });
    say(`  ${ok ? 'pass' : 'FAIL'}  MNIST-VAE epoch: ${g.steps} steps in ${g.seconds.toFixed(1)} s on webgpu (${(1000 * g.seconds / g.steps).toFixed(1)} ms/step), ` +
      `mean loss ${g.loss.toFixed(3)}${c ? `; CPU ${c.seconds.toFixed(1)} s, loss ${c.loss.toFixed(3)}` : ''}`);
  } catch (e) {
    checks.push({ name: 'MNIST-VAE epoch', ok: false, detail: (e as Error).message, ms: 0 });
    say(`  FAIL  MNIST-VAE epoch: ${(e as Error).message}`);
  }
  return { adapter: gpu.adapterName, software: gpu.isSoftware, via: gpu.via ?? '', checks, epoch, ok: checks.every((c) => c.ok) };
}

/** `gapgrad bench --check`: prints the checks (and writes them to `json`, with the machine); throws (exit 1) unless
 *  all pass. */
export async function checkCmd(o: { trainLimit: number | null; json?: string | null }): Promise<void> {
  const t0 = performance.now();
  const machine = machineInfo();
  const r = await runCheck(o);
  const failed = r.checks.filter((c) => !c.ok);
  process.stdout.write(`${failed.length ? 'FAIL' : 'PASS'}: ${r.checks.length - failed.length}/${r.checks.length} checks passed on ${r.adapter} in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  if (o.json) {
    writeFileAtomic(o.json, JSON.stringify({ format: 'gapgrad-check/1', createdAt: new Date().toISOString(), machine, ...r, loadAverageEnd: loadAverage() }, null, 2) + '\n');
    process.stdout.write(`wrote ${o.json}\n`);
  }
  if (failed.length) throw new Error(`check failed on ${r.adapter}: ${failed.map((c) => c.name).join('; ')}`);
}

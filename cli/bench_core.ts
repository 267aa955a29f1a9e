// Timing helpers for `gapgrad bench` (and reusable by other reports): sample statistics, configurations
// interleaved in rounds so that a slow spell of a shared machine falls on all of them, busy processes for the
// contention mode, and a description of the machine. Node-only (child processes, os): CLI layer.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Summary of timing samples (milliseconds unless `unit` says otherwise). */
export interface Stats { min: number; median: number; max: number; n: number }

/** min / median / max / count of `xs` (which must be non-empty and finite). */
export function stats(xs: readonly number[]): Stats {
  if (xs.length === 0) throw new Error('stats: no samples');
  for (const x of xs) if (!Number.isFinite(x)) throw new Error(`stats: a sample is ${x}`);
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return { min: s[0], median: s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2, max: s[s.length - 1], n: s.length };
}

/** One configuration to time: `enter` makes it current (e.g. picks the CPU's thread count), `sample` runs the
 *  work once and returns its time in ms (measured by itself, so that it can exclude its own setup). */
export interface Timed { enter?: () => void; sample: () => Promise<number> | number }

export interface RoundOptions {
  /** warm-up samples of each configuration before timing (the JIT tiers up, kernels compile) */
  warm: number;
  /** timed samples of each configuration, in total */
  samples: number;
  /** samples a configuration takes per turn; the turns go round all configurations until each has `samples` */
  perTurn?: number;
  /** stop a configuration's warm-up, and then its sampling, once it has spent this many ms on it (at least one
   *  warm-up sample and minSamples timed samples are taken) */
  budgetMs?: number;
  /** default 3 */
  minSamples?: number;
}

/**
 * Time configurations in interleaved rounds: every configuration is warmed up, then they take turns of
 * `perTurn` samples each, in an order that rotates every round, until each has `samples` samples or its time
 * budget is spent. Returns each configuration's samples (ms).
 */
export async function interleave(configs: readonly Timed[], o: RoundOptions): Promise<number[][]> {
  const per = Math.max(1, o.perTurn ?? 1);
  const budget = o.budgetMs ?? Infinity, minSamples = Math.min(o.samples, o.minSamples ?? 3);
  for (const c of configs) {
    c.enter?.();
    for (let i = 0, spent = 0; i < o.warm && (i === 0 || spent < budget); i++) spent += await c.sample();
  }
  const out: number[][] = configs.map(() => []);
  const spent = configs.map(() => 0);
  const done = (q: number) => out[q].length >= o.samples || (spent[q] >= budget && out[q].length >= minSamples);
  for (let r = 0; configs.some((_, q) => !done(q)); r++) {
    for (let j = 0; j < configs.length; j++) {
      const q = (j + r) % configs.length;
      if (done(q)) continue;
      configs[q].enter?.();
      for (let i = 0; i < per && !done(q); i++) {
        const t = await configs[q].sample();
        out[q].push(t);
        spent[q] += t;
      }
    }
  }
  return out;
}

/** `n` processes that busy-loop beside the measurement (the contention mode); stop() ends exactly those. */
export function startBusy(n: number): { stop: () => void; pids: number[] } {
  const kids: ChildProcess[] = [];
  for (let i = 0; i < n; i++) kids.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  const stop = () => {
    for (const k of kids) if (k.exitCode === null && k.signalCode === null) k.kill('SIGKILL');
    process.off('exit', stop);
  };
  process.on('exit', stop); // never leave a busy loop behind, whatever happens to this process
  return { stop, pids: kids.map((k) => k.pid ?? -1) };
}

/** The 1/5/15-minute load averages, formatted. */
export function loadAverage(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(', ');
}

/** The gapgrad package's root directory (where its package.json is), from this file upward. */
export function packageRoot(): string | null {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = join(d, 'package.json');
    if (existsSync(p)) {
      try { if (JSON.parse(readFileSync(p, 'utf8')).name === 'gapgrad') return d; } catch { /* keep looking */ }
    }
    d = dirname(d);
  }
  return null;
}

/** The machine and software a benchmark ran on. */
export interface MachineInfo {
  hostname: string; platform: string; arch: string; cpu: string; cores: number; memoryGiB: number;
  node: string; v8: string; gapgrad: string; git: string | null; webgpuPackage: string | null;
  loadAverageStart: string;
}

export function machineInfo(): MachineInfo {
  const root = packageRoot();
  const version = (p: string | null) => { try { return p ? String(JSON.parse(readFileSync(p, 'utf8')).version) : null; } catch { return null; } };
  let git: string | null = null;
  if (root && existsSync(join(root, '.git'))) {
    try { git = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { git = null; }
  }
  return {
    hostname: os.hostname(), platform: `${os.platform()} ${os.release()}`, arch: os.arch(), cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(), memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, v8: process.versions.v8,
    gapgrad: (root && version(join(root, 'package.json'))) ?? 'unknown', git,
    webgpuPackage: root ? version(join(root, 'node_modules', 'webgpu', 'package.json')) : null,
    loadAverageStart: loadAverage(),
  };
}

// A run directory (--out) belongs to one run. openRunDir, called by the train loops before any work:
//  - creates the directory level by level (a recursive mkdir hangs on /proc and reports a read-only parent as
//    ENOENT), with errors naming the directory and the reason;
//  - takes a lock file for the run's life: a second writer is refused; a lock whose process is gone (killed) is
//    taken over;
//  - removes the temp files (`.NAME.PID.*.tmp`, platform/atomic.ts) of writers that are no longer alive;
//  - refuses a directory holding another run's outputs unless resuming (then the saved config must equal this
//    one in everything but the budget) or forced (then that run's outputs are removed first).
// Node-only (files, process ids).
import { existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/** A refused directory: a usage mistake (the CLI exits with status 2). */
export class RunDirRefused extends Error {
  override name = 'RunDirRefused';
}

export const LOCK_FILE = '.gapgrad.lock';
// platform/atomic.ts's temp names: .<target>.<pid>.<time base 36>.<12 hex>.tmp
const TEMP = /^\..+\.(\d+)\.[0-9a-z]+\.[0-9a-f]{12}\.tmp$/;
// the lock's own helpers (createWith, removeStale below): .gapgrad.lock.<pid>.new / .stale
const LOCK_ASIDE = /^\.gapgrad\.lock\.(\d+)\.(new|stale)$/;

export interface RunDirOptions {
  /** continue the run in the directory (its saved config must match `config` but for `budgetKeys`) */
  resume?: boolean;
  /** start afresh in a directory holding another run: its `outputs` are removed first */
  force?: boolean;
  /** this run's configuration, compared with the directory's config.json on resume */
  config: Record<string, unknown>;
  /** config keys a resumed run may change (the training budget: epochs, examples) */
  budgetKeys: string[];
  /** the files a run writes here (removed by force; anything else makes the directory someone else's) */
  outputs: string[];
}

export interface RunDir {
  readonly dir: string;
  /** stale temp files removed when the directory was opened */
  readonly removedTemps: string[];
  /** give the lock back (idempotent; also done at process exit) */
  release(): void;
}

function alive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/** mkdir -p one level at a time, with the reason in the error */
export function makeDirectory(dir: string, what = '--out'): void {
  dir = resolve(dir);
  const missing: string[] = [];
  let p = dir;
  while (!existsSync(p)) {
    missing.unshift(p);
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  if (!statSync(p).isDirectory()) throw new RunDirRefused(`${what} ${dir}: ${p} is not a directory`);
  for (const m of missing) {
    try {
      mkdirSync(m);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EEXIST' && statSync(m).isDirectory()) continue;
      const why = err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS' ? `${dirname(m)} is not writable`
        : err.code === 'ENOENT' ? `${dirname(m)} does not allow creating directories` : err.message;
      throw new RunDirRefused(`${what} ${dir}: cannot create ${m}: ${why} (${err.code})`);
    }
  }
  if (!statSync(dir).isDirectory()) throw new RunDirRefused(`${what} ${dir}: not a directory`);
}

/** Create `path` holding `content` in one step (written aside, then hard-linked: never seen empty); false if it exists. */
function createWith(path: string, content: string): boolean {
  const aside = `${path}.${process.pid}.new`;
  writeFileSync(aside, content, { mode: 0o644 });
  try {
    linkSync(aside, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw e;
    // a file system without hard links: exclusive create, then write (a reader may see it empty for a moment)
    try { writeFileSync(path, content, { flag: 'wx', mode: 0o644 }); } catch (e2) {
      if ((e2 as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e2;
    }
    return true;
  } finally {
    rmSync(aside, { force: true });
  }
}

/**
 * Remove the lock if it still holds `stale` (a dead process's), under a second exclusive file so that two
 * processes that both saw the stale lock cannot both remove a lock (one of them a fresh one). false: another
 * process is taking over right now (its takeover file is cleared if that process died).
 */
function takeOver(path: string, stale: string): boolean {
  const mutex = `${path}.takeover`;
  if (!createWith(mutex, String(process.pid))) {
    let pid = NaN;
    try { pid = Number(readFileSync(mutex, 'utf8')); } catch { /* released meanwhile */ }
    if (!Number.isNaN(pid) && !alive(pid)) rmSync(mutex, { force: true });
    return false;
  }
  try {
    let now = '';
    try { now = readFileSync(path, 'utf8'); } catch { /* gone */ }
    if (now === stale) rmSync(path, { force: true });
    return true;
  } finally {
    rmSync(mutex, { force: true });
  }
}

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Take the lock, or say who holds it; a lock of a dead process is taken over. */
function lock(dir: string): () => void {
  const path = join(dir, LOCK_FILE);
  const me = JSON.stringify({ pid: process.pid, host: hostname(), started: new Date().toISOString() });
  for (let attempt = 0; attempt < 100; attempt++) {
    let created: boolean;
    try {
      created = createWith(path, me);
    } catch (e) {
      throw new RunDirRefused(`--out ${dir}: cannot create the lock file ${path}: ${(e as Error).message}`);
    }
    if (!created) {
      let text = '', holder: { pid?: number; host?: string } = {};
      try { text = readFileSync(path, 'utf8'); holder = JSON.parse(text); } catch { /* gone or unreadable: stale */ }
      const sameHost = holder.host === undefined || holder.host === hostname();
      if (holder.pid !== undefined && (!sameHost || alive(holder.pid))) {
        throw new Error(`--out ${dir} is in use by another run (pid ${holder.pid}${sameHost ? '' : ` on ${holder.host}`}, lock file ${path}); wait for it or choose another directory (if no such run is going on, remove the lock file)`);
      }
      if (!takeOver(path, text)) pause(10);
      continue;
    }
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      process.removeListener('exit', release);
      try { if (readFileSync(path, 'utf8') === me) unlinkSync(path); } catch { /* already gone */ }
    };
    process.on('exit', release);
    return release;
  }
  throw new Error(`--out ${dir}: could not take over its stale lock file ${path} (other processes kept taking it); try again`);
}

/** Remove temp files of writers that are gone (never a live process's, never this one's). */
export function removeStaleTemps(dir: string): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    const m = TEMP.exec(name) ?? LOCK_ASIDE.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || alive(pid)) continue;
    try {
      if (lstatSync(join(dir, name)).isFile()) { unlinkSync(join(dir, name)); removed.push(name); }
    } catch { /* removed by someone else */ }
  }
  return removed;
}

/** The first key (other than `ignore`) whose value differs, with both values; null when equal. */
export function configDifference(saved: Record<string, unknown>, current: Record<string, unknown>, ignore: string[]): string | null {
  for (const k of new Set([...Object.keys(saved), ...Object.keys(current)])) {
    if (ignore.includes(k)) continue;
    const a = JSON.stringify(saved[k]), b = JSON.stringify(current[k]);
    if (a !== b) return `${k}=${a ?? 'absent'}, not ${b ?? 'absent'}`;
  }
  return null;
}

/** Open `dir` for a run: create, lock, clean, and check it (see the top of this file). */
export function openRunDir(dir: string, o: RunDirOptions): RunDir {
  dir = resolve(dir);
  makeDirectory(dir);
  const release = lock(dir);
  try {
    const removedTemps = removeStaleTemps(dir);
    const present = readdirSync(dir).filter((n) => !n.startsWith(LOCK_FILE) && !TEMP.test(n));
    if (present.length && o.resume) {
      const cfgPath = join(dir, 'config.json');
      if (existsSync(cfgPath)) {
        let saved: Record<string, unknown>;
        try { saved = JSON.parse(readFileSync(cfgPath, 'utf8')); } catch (e) { throw new RunDirRefused(`--resume: ${cfgPath} is not valid JSON (${(e as Error).message})`); }
        const diff = configDifference(saved, o.config, o.budgetKeys);
        if (diff) throw new RunDirRefused(`--resume: the run in ${dir} was started with ${diff}; only ${o.budgetKeys.map((k) => `'${k}'`).join(' or ')} may change on resume`);
      }
    } else if (present.length && o.force) {
      for (const n of present) if (o.outputs.includes(n)) rmSync(join(dir, n), { force: true });
      const foreign = readdirSync(dir).filter((n) => !n.startsWith(LOCK_FILE) && !TEMP.test(n));
      if (foreign.length) throw new RunDirRefused(`--out ${dir}: --force removes only a run's outputs, and the directory also holds ${foreign.slice(0, 5).join(', ')}; choose a fresh directory`);
    } else if (present.length) {
      throw new RunDirRefused(`--out ${dir} is not empty (${present.slice(0, 5).join(', ')}${present.length > 5 ? ', ...' : ''}): pass --resume to continue that run, --force to replace it, or choose a fresh directory`);
    }
    return { dir, removedTemps, release };
  } catch (e) {
    release();
    throw e;
  }
}

/** Run `work` with `dir` opened for the run (openRunDir), giving the lock back however it ends. */
export async function inRunDir<T>(dir: string, o: RunDirOptions, work: () => Promise<T>): Promise<T> {
  const rd = openRunDir(dir, o);
  try {
    return await work();
  } finally {
    rd.release();
  }
}

// The command line as a user runs it (node bin/gapgrad.js, tiny limits): a run never clobbers another's
// directory, a lock stops a second writer and a dead writer's lock and temp files are cleaned up, every bad flag
// is refused with exit 2 before any work, empty data is an error naming the file, a sweep with a failed run
// fails, and --out where no directory can be made fails at once.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, rmSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'gapgrad.js');
const TINY = ['--epochs', '1', '--train-limit', '200', '--test-limit', '100'];
const VALID = join(ROOT, '..', 'shared', 'data', 'listops', 'valid.tsv');
const tmp = mkdtempSync(join(tmpdir(), 'gapgrad-cli-'));

interface Out { code: number | null; stdout: string; stderr: string }
function gg(args: string[], timeoutMs = 120_000): Promise<Out> {
  return new Promise((resolve) => {
    // its own process group: bin/gapgrad.js may start Node again with a V8 flag, and a timeout kills both
    const p = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, GAPGRAD_THREADS: '1' }, detached: true });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => { try { process.kill(-p.pid!, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    p.on('exit', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
  });
}
/** the id of a process that has exited (for stale locks and temp files) */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}
const tempName = (pid: number) => `.checkpoint.safetensors.${pid}.mabc12.0123456789ab.tmp`;

/** a best.safetensors of a tiny untrained model (written in this process) */
async function tinyBest(): Promise<string> {
  await import('../index.ts');
  const { ListopsRun, DEFAULT_LISTOPS } = await import('../models/listops/train.ts');
  const { Vocab } = await import('../models/listops/data.ts');
  const run = new ListopsRun({ ...DEFAULT_LISTOPS, hidden: 8, embDim: 8, validPath: VALID }, Vocab.build([['[MAX', '1', ']']]), []);
  const p = join(tmp, 'best.safetensors');
  await run.saveBest(p, 0.5);
  return p;
}

let runA: string;
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  runA = join(tmp, 'A');
  const r = await gg(['train', 'vae', ...TINY, '--out', runA]);
  expect(r.code, r.stderr).toBe(0);
});

describe('run directories', () => {
  it('a non-empty --out is refused without --resume or --force (exit 2, nothing replaced); --force replaces the run', async () => {
    const B = join(tmp, 'B');
    cpSync(runA, B, { recursive: true });
    const before = readFileSync(join(B, 'checkpoint.safetensors'));
    const r = await gg(['train', 'vae', ...TINY, '--seed', '2', '--out', B]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--out .*B is not empty \(.*checkpoint.safetensors.*\): pass --resume to continue that run, --force to replace it, or choose a fresh directory/);
    expect(r.stdout).not.toMatch(/training VAE/);
    expect(readFileSync(join(B, 'checkpoint.safetensors')).equals(before)).toBe(true);
    const f = await gg(['train', 'vae', ...TINY, '--seed', '2', '--out', B, '--force']);
    expect(f.code, f.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(B, 'config.json'), 'utf8')).seed).toBe(2);
    expect(readdirSync(B).filter((n) => n.startsWith('.'))).toEqual([]); // lock given back, no temp files
  });

  it('--resume refuses a changed config but the epoch budget', async () => {
    const C = join(tmp, 'C');
    cpSync(runA, C, { recursive: true });
    const [lr, more] = await Promise.all([
      gg(['train', 'vae', ...TINY, '--lr', '0.01', '--out', C, '--resume']),
      gg(['train', 'vae', ...TINY, '--out', join(tmp, 'C-unused'), '--resume', '--force']),
    ]);
    expect(lr.code).toBe(2);
    expect(lr.stderr).toMatch(/--resume: the run in .*C was started with lr=0\.001, not 0\.01; only 'epochs' may change on resume/);
    expect(more.code).toBe(2);
    expect(more.stderr).toMatch(/give --resume or --force, not both/);
    const ok = await gg(['train', 'vae', '--epochs', '2', '--train-limit', '200', '--test-limit', '100', '--out', C, '--resume']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readFileSync(join(C, 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);
  });

  it('two runs started into one --out: one runs, the other is refused', async () => {
    const D = join(tmp, 'D');
    const rs = await Promise.all([0, 1].map(() => gg(['train', 'vae', ...TINY, '--out', D])));
    expect(rs.map((r) => r.code === 0).filter(Boolean)).toHaveLength(1);
    const loser = rs.find((r) => r.code !== 0)!;
    expect(loser.stderr).toMatch(/is in use by another run \(pid \d+|is not empty/);
  });

  it("a live writer's lock stops a run; a dead writer's lock and temp files are taken over and removed", async () => {
    const E = join(tmp, 'E'), F = join(tmp, 'F');
    mkdirSync(E); mkdirSync(F);
    writeFileSync(join(E, '.gapgrad.lock'), JSON.stringify({ pid: process.pid, host: hostname() })); // this test runner: alive
    const dead = deadPid();
    writeFileSync(join(F, '.gapgrad.lock'), JSON.stringify({ pid: dead, host: hostname() }));
    writeFileSync(join(F, tempName(dead)), Buffer.alloc(1024)); // a crashed write
    writeFileSync(join(F, tempName(process.pid)), Buffer.alloc(16)); // a live writer's: kept
    const [e, f] = await Promise.all([gg(['train', 'vae', ...TINY, '--out', E]), gg(['train', 'vae', ...TINY, '--out', F])]);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(new RegExp(`--out .*E is in use by another run \\(pid ${process.pid}, lock file`));
    expect(f.code, f.stderr).toBe(0);
    expect(readdirSync(F).filter((n) => n.startsWith('.')).sort()).toEqual([tempName(process.pid)]);
  });

  it('--out where no directory can be made fails at once with the reason (no hang on /proc)', async () => {
    writeFileSync(join(tmp, 'afile'), 'x');
    const [proc, file, sys] = await Promise.all([
      gg(['train', 'vae', ...TINY, '--out', '/proc/gapgrad-x/y'], 60_000),
      gg(['train', 'vae', ...TINY, '--out', join(tmp, 'afile', 'x')]),
      gg(['train', 'vae', ...TINY, '--out', '/sys/gapgrad-x'], 60_000), // a parent nobody may write to (was: ENOENT)
    ]);
    expect(sys.code).toBe(2);
    expect(sys.stderr).toMatch(/--out \/sys\/gapgrad-x: cannot create \/sys\/gapgrad-x: \/sys is not writable \((EPERM|EACCES|EROFS)\)/);
    expect(proc.code).toBe(2);
    expect(proc.stderr).toMatch(/--out \/proc\/gapgrad-x\/y: cannot create \/proc\/gapgrad-x: \/proc does not allow creating directories/);
    expect(file.code).toBe(2);
    expect(file.stderr).toMatch(/afile is not a directory/);
  });
});

describe('bad flags: exit 2 before the banner, naming the flag and the value', () => {
  const V = join(tmp, 'V');
  mkdirSync(V);
  writeFileSync(join(V, 'variance.json'), '{}'); // another measurement's results
  const cases: [string[], RegExp][] = [
    [['variance', 'vae', '--out', V], /--out .*V already holds a variance.json: pass --force to replace it/],
    [['train', 'vae', '--train-limit', '50'], /--train-limit 50 is smaller than --batch-size 100/],
    [['train', 'vae', '--train-limit=-5'], /--train-limit: expected a positive integer, got -5/],
    [['train', 'vae', '--epochs', '-1'], /--epochs: expected a positive integer, got -1/],
    [['train', 'vae', '--batch-size', '500', '--train-limit', '200'], /--train-limit 200 is smaller than --batch-size 500/],
    [['train', 'vae', '--test-limit', '0'], /--test-limit: expected a positive integer, got 0/],
    [['variance', 'vae', '--passes', '1'], /--passes: expected an integer >= 2, got '1'/],
    [['variance', 'vae', '--images', '0'], /--images: expected an integer >= 1, got '0'/],
    [['eval', 'listops', '--checkpoint', join(V, 'variance.json'), '--data', VALID, '--eval-batch', '0'], /--eval-batch: expected an integer >= 1, got '0'/],
    [['train', 'listops', '--valid', VALID, '--hidden', '-3'], /--hidden: expected a positive integer, got -3/],
    [['train', 'listops', '--valid', VALID, '--examples', '-3'], /--examples: expected an integer >= 1, got '-3'/],
    [['train', 'vae', '--device', 'tpu'], /--device: expected 'cpu' or 'webgpu', got 'tpu'/],
    [['train', 'vae', '--method', 'gst'], /--method: estimators: unknown method 'gst'/],
    [['sweep', 'vae', '--workers', '0'], /--workers: expected an integer >= 1, got '0'/],
    [['sweep', 'vae', '--taus', 'abc'], /--taus: expected comma-separated positive temperatures, got 'abc'/],
    [['eval', 'vae', '--checkpoint', join(tmp, 'none.safetensors')], /--checkpoint: no such file '.*none\.safetensors'/],
    [['eval', 'listops', '--checkpoint', V, '--data', VALID], /--checkpoint: '.*V' is not a file/],
    [['train', 'listops', '--valid', join(tmp, 'none.tsv')], /--valid: no such file '.*none\.tsv'/],
    [['train', 'vae', '--mnist-dir', join(tmp, 'nowhere')], /--mnist-dir: no such folder '.*nowhere'/],
    [['reproduce', '--experiments', 'listops', '--listops-dir', join(V, 'variance.json'), '--out', join(tmp, 'R')], /--listops-dir: '.*variance\.json' is not a folder/],
    [['report', V], /report: DIR '.*V' is not a gapgrad reproduce folder \(no grid.json in .*V\)/],
  ];
  it('each case', async () => {
    const rs = await Promise.all(cases.map(([a]) => gg(a)));
    rs.forEach((r, i) => {
      expect({ args: cases[i][0], code: r.code }).toEqual({ args: cases[i][0], code: 2 });
      expect(r.stderr).toMatch(cases[i][1]);
      expect(r.stdout).not.toMatch(/^training/m);
    });
  });

  it('a sweep whose run fails exits non-zero', async () => {
    const r = await gg(['sweep', 'vae', '--methods', 'st', '--taus', '1', '--seeds', '1', '--workers', '1', '--epochs', '1', '--out', join(tmp, 'sweep'), '--extra=--train-limit 50']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL st tau=1 seed=1/);
    expect(r.stderr).toMatch(/sweep vae: 1 run\(s\) failed/);
  });

  it('gapgrad report of a grid no run has written to fails, saying so', async () => {
    const d = join(tmp, 'grid-empty');
    mkdirSync(d);
    writeFileSync(join(d, 'grid.json'), JSON.stringify({ scale: 'smoke', experiments: ['vae'], seeds: [1], varianceAt: [], runs: [
      { id: 'vae-st-t1-s1', model: 'vae', method: 'st', tau: 1, seed: 1, experiments: ['vae'], args: [] },
    ] }));
    const r = await gg(['report', d]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/report: no run in .*grid-empty has written results yet/);
  });
});

describe('empty or fully filtered ListOps data is an error naming the file', () => {
  it('empty valid, --max-len 2, empty --train, eval on empty data', async () => {
    const empty = join(tmp, 'empty.tsv');
    writeFileSync(empty, '');
    const out = (n: string) => ['--out', join(tmp, n)];
    const [v, m, t, e] = await Promise.all([
      gg(['train', 'listops', '--valid', empty, '--examples', '32', ...out('l1')]),
      gg(['train', 'listops', '--valid', VALID, '--max-len', '2', '--examples', '32', ...out('l2')]),
      gg(['train', 'listops', '--valid', VALID, '--train', empty, '--examples', '32', ...out('l3')]),
      gg(['eval', 'listops', '--checkpoint', await tinyBest(), '--data', empty]),
    ]);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/empty\.tsv: no ListOps examples \(the file is empty\)/);
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/valid\.tsv: none of its \d+ examples has fewer than 2 tokens \(--max-len 2\)/);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/empty\.tsv: no ListOps examples/);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/empty\.tsv: no ListOps examples/);
    expect(e.stdout).not.toMatch(/accuracy/);
    for (const n of ['l1', 'l2', 'l3']) expect(existsSync(join(tmp, n, 'checkpoint.safetensors'))).toBe(false);
  });
});

describe('input files', () => {
  it('a UTF-8 byte-order mark at the start of a ListOps file is skipped', async () => {
    const { loadListOps } = await import('../models/listops/data.ts');
    const p = join(tmp, 'bom.tsv');
    writeFileSync(p, '\uFEFF0\t( ( ( ( ( [MIN 1 ) 6 ) 5 ) 0 ) ] )\n');
    expect(loadListOps(p).map((e) => [e.label, e.expr])).toEqual([[0, '( ( ( ( ( [MIN 1 ) 6 ) 5 ) 0 ) ] )']]);
  });

  it('MNIST images that are not 28x28 are named as such', async () => {
    await import('../index.ts');
    const { VaeRun, DEFAULT_TRAIN } = await import('../models/vae/train.ts');
    const split = { count: 4, rows: 32, cols: 32, images: new Float32Array(4 * 1024), labels: new Uint8Array(4) };
    expect(() => new VaeRun({ ...DEFAULT_TRAIN, batchSize: 2, mnistDir: '/data/svhn' }, { train: split, test: split })).toThrow(/MNIST training images in \/data\/svhn are 32x32 pixels; the VAE takes 28x28 images/);
  });
});

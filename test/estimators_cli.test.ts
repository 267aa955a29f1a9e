// A user-defined estimator (test/fixtures/my-estimator.ts, outside the sources, importing 'gapgrad') through the
// command line as a user runs it (node bin/gapgrad.js): listed, trained (vae and listops, with a τ schedule),
// swept (the module passed through to every run), benchmarked, and measured by the zoo report's CI configuration.
import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'gapgrad.js');
const FIXTURE = 'test/fixtures/my-estimator.ts';
const VALID = join(ROOT, '..', 'shared', 'data', 'listops', 'valid.tsv');
const TINY_VAE = ['--epochs', '1', '--train-limit', '200', '--test-limit', '100', '--latent', '4', '--categories', '4'];
const tmp = mkdtempSync(join(tmpdir(), 'gapgrad-est-cli-'));

interface Out { code: number | null; stdout: string; stderr: string }
function run(args: string[], timeoutMs = 150_000, env: Record<string, string> = {}): Promise<Out> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, GAPGRAD_THREADS: '1', ...env } });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
  });
}
const gg = (args: string[], timeoutMs?: number) => run([BIN, ...args], timeoutMs);

describe('a user-defined estimator on the command line (--estimators)', () => {
  it('estimators list shows it beside the built-in ones; --method help lists it', async () => {
    const r = await gg(['estimators', 'list', '--estimators', FIXTURE]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\| `half_gst` \| fixture: GST .* \| user \|/);
    expect(r.stdout).toMatch(/\| `gst-<gap>` \|.*\| gapgrad \|/);
    const h = await gg(['train', 'vae', '--estimators', FIXTURE, '--help']);
    expect(h.stdout).toMatch(/--method .*estimator: st, gumbel, rao_gumbel, reinmax, gst-<gap>, gst-p, nd_gst-<gap>, half_gst/);
  });

  it('without the module the method is a usage error naming the valid ones; a missing module is one too', async () => {
    const r = await gg(['train', 'vae', '--method', 'half_gst', ...TINY_VAE, '--out', join(tmp, 'none')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--method: estimators: unknown method 'half_gst'; valid methods: st, gumbel/);
    const m = await gg(['train', 'vae', '--estimators', 'nope.ts', '--method', 'half_gst', '--out', join(tmp, 'none2')]);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/--estimators: no such file 'nope.ts'/);
    const s = await gg(['train', 'vae', '--tau-schedule', 'exp:1:0:1e-3', ...TINY_VAE, '--out', join(tmp, 'none3')]);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/--tau-schedule: FLOOR must be a positive finite number/);
    for (const d of ['none', 'none2', 'none3']) expect(existsSync(join(tmp, d))).toBe(false);
  });

  it('train vae --method half_gst with a τ schedule: trains, and records the schedule', async () => {
    const out = join(tmp, 'vae');
    const r = await gg(['train', 'vae', '--estimators', FIXTURE, '--method', 'half_gst', '--tau-schedule', 'exp:1:0.5:1e-2', ...TINY_VAE, '--out', out]);
    expect(r.stderr.replace(/.*\r/g, '')).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/training VAE half_gst/);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(JSON.stringify(cfg)).toMatch(/"tauSchedule":"exp:1:0.5:1e-2"/);
    const m = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(Number.isFinite(m[0].test_loss)).toBe(true);
  });

  it('train listops --method half_gst trains', async () => {
    const out = join(tmp, 'listops');
    const r = await gg(['train', 'listops', '--estimators', FIXTURE, '--method', 'half_gst', '--valid', VALID, '--examples', '64', '--eval-every', '64', '--hidden', '8', '--train-count', '300', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/half_gst/);
    expect(existsSync(join(out, 'result.json')) || readdirSync(out).length > 0).toBe(true);
  });

  it('sweep vae passes the module to every run', async () => {
    const out = join(tmp, 'sweep');
    const r = await gg(['sweep', 'vae', '--estimators', FIXTURE, '--methods', 'half_gst,gst-1.0', '--taus', '1', '--seeds', '1', '--epochs', '1', '--workers', '2', `--extra=--train-limit 200 --test-limit 100 --latent 4 --categories 4`, '--out', out], 240_000);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const log = readFileSync(join(out, 'half_gst-t1-s1', 'log.txt'), 'utf8');
    expect(log).toMatch(/training VAE half_gst/);
    expect(r.stdout).toMatch(/half_gst/);
  });

  it('the estimator benchmark times it', async () => {
    const r = await run(['--conditions=gapgrad-source', '--import', 'tsx', 'bench/estimators.ts', '--estimators', FIXTURE, '--methods', 'half_gst,gst-1.0', '--devices', 'cpu'], 240_000, { BENCH_TARGET_MS: '20' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\| half_gst \| [\d.]+ \|/);
  });

  it('estimators report --quick (the CI configuration) measures it with the built-in ones and writes md, csv, json and charts', async () => {
    const out = join(tmp, 'zoo');
    const r = await gg(['estimators', 'report', '--quick', '--estimators', FIXTURE, '--methods', 'gumbel,gst-1.0,half_gst', '--out', out], 240_000);
    expect(r.code, r.stderr).toBe(0);
    for (const f of ['report.md', 'report.csv', 'report.json', 'toy_bias_variance.png', 'vae_bias_variance.png', 'vae_variance.png']) expect(existsSync(join(out, f)), f).toBe(true);
    const j = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    for (const section of ['toy', 'vae', 'cost'] as const) {
      const rows = j[section] as { method: string; relative_error?: number; variance?: number; ms_per_call?: number }[];
      expect(rows.filter((x) => x.method === 'half_gst').length, section).toBeGreaterThan(0);
      for (const x of rows) for (const v of [x.relative_error, x.variance, x.ms_per_call]) if (v !== undefined) expect(Number.isFinite(v)).toBe(true);
    }
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/\| quadratic C=10 \| `half_gst` \|/);
    // a second report never overwrites the first
    const again = await gg(['estimators', 'report', '--quick', '--methods', 'st', '--out', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/not empty/);
  });
});

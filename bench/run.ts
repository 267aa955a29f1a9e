// `npm run bench`: every benchmark in one run, on every backend present, with the same work in PyTorch and
// TF.js when they are installed, and gapgrad/peer ratios. Prints markdown and writes bench/out/results.md.
//
//   gapgrad: bench/matmul.ts (GFLOPS by shape), bench/vae.ts (ms per training step, s per 600-step epoch),
//            bench/estimators.ts (each estimator's forward + backward), spawned as child processes;
//   peers:   bench/peers/torch_vae.py (python3 with torch), bench/peers/tfjs_vae.ts (@tensorflow/tfjs-*).
//
// Every ratio is a ratio of times measured in this run: gapgrad time / peer time (< 1: gapgrad is faster;
// for matmul, peer GFLOPS / gapgrad GFLOPS). The machine may be shared, so load averages are recorded.
// Options: --quick (shorter timings), --skip torch,tfjs,webgpu,matmul,vae,estimators,listops,contention,
// --estimators FILE (user-defined estimators, benchmarked with the registered ones)
import { spawn, spawnSync, execSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, existsSync, readFileSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { nodeFlags } from '../cli/node_flags.ts';
import { writeFileAtomic } from '../platform/atomic.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
// gapgrad's own benchmarks run as the CLI does: with the V8 flags of cli/node_flags.ts (relaxed SIMD on Node 20)
// (and the package's source condition, so that --estimators modules importing 'gapgrad' get these sources)
const GG = [...nodeFlags(), '--conditions=gapgrad-source', '--import', 'tsx'];
// --estimators FILE: user-defined estimators, benchmarked with the registered ones
const estimatorsArg = process.argv.flatMap((a, i) => (a === '--estimators' ? [a, process.argv[i + 1]] : a.startsWith('--estimators=') ? [a] : []));
const quick = process.argv.includes('--quick');
const skipArg = process.argv.find((a, i) => process.argv[i - 1] === '--skip') ?? '';
const skip = new Set(skipArg.split(',').filter(Boolean));
const T0 = performance.now();
const say = (s: string) => process.stderr.write(`[bench ${((performance.now() - T0) / 1000).toFixed(0)}s] ${s}\n`);

// ----------------------------------------------------------------------------- child processes
interface ChildResult { code: number | null; stdout: string; stderr: string; seconds: number; timedOut: boolean }

/** Run a command, stream its stderr (progress) through, capture both; SIGTERM it (by pid) after timeoutS. */
function runChild(cmd: string, args: string[], timeoutS: number, env: Record<string, string> = {}): Promise<ChildResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '', timedOut = false;
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; process.stderr.write(`    ${d.toString().replace(/\n(?=.)/g, '\n    ')}`); });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGTERM'); setTimeout(() => child.kill('SIGKILL'), 5000).unref(); }, timeoutS * 1000);
    const done = (code: number | null) => { clearTimeout(timer); resolve({ code, stdout, stderr, seconds: (performance.now() - t0) / 1000, timedOut }); };
    child.on('error', (e) => { stderr += String(e); done(-1); });
    child.on('close', done);
  });
}

const why = (r: ChildResult) => r.timedOut ? `timed out after ${r.seconds.toFixed(0)} s` : `exit code ${r.code}: ${lastLine(r.stderr)}`;
function lastLine(s: string): string {
  const ls = s.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('at '));
  return (ls[ls.length - 1] ?? '').slice(0, 200);
}
function lastJson(s: string): any { // eslint-disable-line @typescript-eslint/no-explicit-any
  const ls = s.trim().split('\n');
  for (let i = ls.length - 1; i >= 0; i--) if (ls[i].startsWith('{')) return JSON.parse(ls[i]);
  throw new Error('no JSON line in output');
}
function load(): string { const l = os.loadavg(); return `${l[0].toFixed(2)}, ${l[1].toFixed(2)}, ${l[2].toFixed(2)}`; }
function uptime(): string { try { return execSync('uptime', { encoding: 'utf8' }).trim(); } catch { return `load average: ${load()}`; } }

// ----------------------------------------------------------------------------- formatting
const f = (x: number | undefined, d = 1) => (x === undefined || !Number.isFinite(x) ? '–' : x >= 1000 ? x.toFixed(0) : x.toFixed(d));
const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || !(a > 0) || !(b > 0) ? '–' : `${(a / b).toFixed(2)}`);
function table(head: string[], rows: string[][], align?: string[]): string {
  const al = align ?? head.map((_, i) => (i === 0 ? '---' : '---:'));
  return [`| ${head.join(' | ')} |`, `|${al.join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

const out: string[] = [];
const notes: string[] = []; // skipped / failed items
const emit = (...ls: string[]) => { out.push(...ls); };

// ----------------------------------------------------------------------------- header
const startUptime = uptime();
let head = '?';
try { head = execSync('git rev-parse --short HEAD', { cwd: ROOT, encoding: 'utf8' }).trim(); } catch { /* not a checkout */ }
emit(`# gapgrad benchmarks`);
emit('');
emit(`${new Date().toISOString()}, git ${head}, node ${process.version}, ${os.cpus()[0]?.model ?? '?'} ×${os.availableParallelism()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`);
emit('');
emit(`\`uptime\` at start: \`${startUptime}\``);

// ----------------------------------------------------------------------------- gapgrad runs
type MM = Record<string, { best: number; median: number }>;
const gg: { matmul: Record<string, MM>; vae: Record<string, Record<string, number>>; products: Record<string, Record<string, { calls: number; ms: number; gflops: number }>>; est: Record<string, Record<string, Record<string, number>>>; otherCpu?: string; relaxed?: string; webgpuAdapter?: string } =
  { matmul: {}, vae: {}, products: {}, est: {} };
const loads: string[] = [];
const section = (name: string) => { loads.push(`${name}: ${load()}`); say(`${name} (load ${load()})`); };

let webgpuOk = false;
if (!skip.has('webgpu')) {
  section('probing webgpu');
  const url = pathToFileURL(join(ROOT, 'node.ts')).href; // the Node entry installs Dawn as the WebGPU provider
  const code = `import(${JSON.stringify(url)}).then((m) => m.initWebGPU()).then((g) => { console.log(JSON.stringify({ name: g.adapterName, software: g.isSoftware })); process.exit(0); })`;
  const probe = existsSync(fileURLToPath(url)) ? await runChild(TSX, ['-e', code], 60) : null;
  if (!probe) notes.push('gapgrad webgpu: node.ts not present');
  try {
    const p = lastJson(probe?.stdout ?? "");
    webgpuOk = true;
    gg.webgpuAdapter = `${p.name}${p.software ? ' (software)' : ''}`;
  } catch { if (probe) notes.push(`gapgrad webgpu: not available (${why(probe)})`); }
} else notes.push('gapgrad webgpu: skipped (--skip webgpu)');

if (!skip.has('matmul')) {
  section('gapgrad matmul');
  const r = await runChild(process.execPath, [...GG, 'bench/matmul.ts', `--ms=${quick ? 100 : 200}`], 300);
  // a row: the shape's name, then one 'best / median' pair per column of COLS in bench/matmul.ts
  const cols = ['plain JS', 'wasm 1 thread', 'wasm 2 threads', '2 x 1 thread', 'wasm 2 threads in place', '2 x 1 thread in place'];
  for (const line of r.stdout.split('\n')) {
    const pairs = [...line.matchAll(/([\d.]+) \/ ([\d.]+)/g)];
    if (pairs.length !== cols.length) {
      if (line.startsWith('CPU used by other')) gg.otherCpu = line.trim();
      const rx = /wasm relaxed madd: ([^;]+)/.exec(line);
      if (rx) gg.relaxed = rx[1];
      continue;
    }
    const name = line.slice(0, pairs[0].index).trim();
    cols.forEach((c, i) => { (gg.matmul[c] ??= {})[name] = { best: Number(pairs[i][1]), median: Number(pairs[i][2]) }; });
  }
  if (r.code !== 0) notes.push(`gapgrad matmul: ${why(r)}`);
}

const methods = ['gumbel', 'gst-1.0'];
if (!skip.has('vae')) {
  section('gapgrad vae');
  const args = ['bench/vae.ts', '--methods', methods.join(','), '--steps', quick ? '8' : '40'];
  if (webgpuOk) args.push('--webgpu');
  const r = await runChild(process.execPath, [...GG, ...args], 300);
  // rows are printed to stderr as they finish (cpu) and as a table to stdout at the end
  for (const line of (r.stdout + '\n' + r.stderr).split('\n')) {
    const m = /^\|\s*(cpu|webgpu)\s*\|\s*([\d-]+)\s*\|\s*([\w.-]+)\s*\|\s*([\d.]+)\s*\|/.exec(line.trim());
    if (m) (gg.vae[m[1] === 'cpu' ? `cpu ${m[2]}T` : 'webgpu'] ??= {})[m[3]] = Number(m[4]);
    const p = /^products: (cpu \d+T) ([\w.-]+): (\d+) GEMM calls per step, ([\d.]+) ms per step, ([\d.]+) GFLOPS/.exec(line.trim());
    if (p) (gg.products[p[1]] ??= {})[p[2]] = { calls: Number(p[3]), ms: Number(p[4]), gflops: Number(p[5]) };
  }
  if (r.code !== 0) notes.push(`gapgrad vae: ${why(r)} (rows printed before that are kept)`);
  if (r.stderr.includes('webgpu skipped')) notes.push(`gapgrad vae on webgpu: ${r.stderr.split('\n').find((l) => l.includes('webgpu skipped'))}`);
}

if (!skip.has('estimators')) {
  section('gapgrad estimators');
  const env: Record<string, string> = { BENCH_TARGET_MS: quick ? '60' : '150' };
  const r = await runChild(process.execPath, [...GG, 'bench/estimators.ts', ...estimatorsArg], 360, env);
  let cur: Record<string, number> | null = null, where = '';
  for (const line of r.stdout.split('\n')) {
    const h = /^### (\w+), logits \[([\d, ]+)\]/.exec(line);
    if (h) { cur = ((gg.est[h[1]] ??= {})[h[2].replace(/\s/g, '')] = {}); where = `${h[1]} [${h[2]}]`; continue; }
    const m = /^\|\s*([^|]+?)\s*\|\s*([\d.]+)\s*\|/.exec(line);
    if (m && cur) cur[m[1]] = Number(m[2]);
    const fl = /^\|\s*([^|]+?)\s*\|\s*((?:failed|skipped)[^|]*)\|/.exec(line);
    if (fl) notes.push(`gapgrad estimators, ${where} ${fl[1]}: ${fl[2].trim()}`);
    const sk = /^\((webgpu skipped: .*)\)$/.exec(line.trim());
    if (sk) notes.push(`gapgrad estimators: ${sk[1]}`);
  }
  // per-call progress lines on stderr ("  cpu [100,30,10] st: 11.167 ms") keep what finished if it was cut short
  for (const line of r.stderr.split('\n')) {
    const m = /^\s*(\w+) \[([\d,]+)\] (.+): ([\d.]+) ms$/.exec(line);
    if (m) ((gg.est[m[1]] ??= {})[m[2]] ??= {})[m[3]] ??= Number(m[4]);
  }
  if (r.code !== 0) notes.push(`gapgrad estimators: ${why(r)}`);
}

// 1 vs 2 CPU threads, quiet and with a busy-looping process beside the measurement (gapgrad bench --contention),
// ratios within one run
let contention: { rows: string[][]; busy: number } | null = null;
if (!skip.has('contention')) {
  section('contention (1 vs 2 threads, quiet and busy)');
  const json = join(os.tmpdir(), `gapgrad-contention-${process.pid}-${Date.now()}.json`);
  const r = await runChild(process.execPath, [...GG, 'bin/gapgrad.js', 'bench', '--devices', 'cpu', '--threads', '1,2', '--groups', 'matmul,vae,listops',
    '--shapes', '100x784x512,512x512x512', '--methods', 'gst-1.0', '--contention', '--json', json, ...(quick ? [] : ['--samples', '30'])], 600);
  try {
    const rep = JSON.parse(readFileSync(json, 'utf8'));
    unlinkSync(json);
    const med = (c: string, d: string, m: string): number | undefined => rep.results.find((x: any) => x.case === c && x.device === d && x.mode === m)?.stats?.median; // eslint-disable-line @typescript-eslint/no-explicit-any
    const cases = [...new Set<string>(rep.results.map((x: { case: string }) => x.case))];
    contention = { busy: rep.settings.busy, rows: cases.map((c) => [c, ...['quiet', 'busy'].flatMap((m) => [f(med(c, 'cpu-1T', m), 2), f(med(c, 'cpu-2T', m), 2), ratio(med(c, 'cpu-2T', m), med(c, 'cpu-1T', m))])]) };
  } catch (e) { notes.push(`contention: ${r.code === 0 ? (e as Error).message : why(r)}`); }
}

// ----------------------------------------------------------------------------- peers
/* eslint-disable @typescript-eslint/no-explicit-any */
let torch: any = null;
let torchPy = '';
let torchOmp = '';
if (!skip.has('torch')) {
  section('pytorch');
  const cands = [process.env.PYTHON, '/usr/bin/python3', 'python3', 'python'].filter((c): c is string => !!c);
  const tried: string[] = [];
  for (const c of cands) {
    const p = spawnSync(c, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60000 });
    if (p.status === 0) { torchPy = c; break; }
    tried.push(`${c}: ${p.error ? (p.error as NodeJS.ErrnoException).code : lastLine(p.stderr ?? '')}`);
  }
  if (!torchPy) notes.push(`PyTorch: skipped, no python with torch (${tried.join('; ')}); install: apt-get install -y python3-torch libopenblas0-openmp`);
  else {
    const q = quick ? ['--steps', '8', '--est-ms', '60', '--matmul-ms', '100'] : ['--steps', '40', '--est-ms', '150', '--matmul-ms', '200'];
    // libgomp's default active spin-wait makes 2-thread torch 5-50x slower when the 2 CPUs are shared with other
    // processes (measured here: 157-1420 ms/step instead of ~30); let idle OpenMP threads sleep, as gapgrad's do
    const omp = process.env.OMP_WAIT_POLICY ?? 'PASSIVE';
    torchOmp = omp;
    const r = await runChild(torchPy, ['bench/peers/torch_vae.py', '--methods', methods.join(','), '--threads', '1,2', ...q], 300, { OMP_WAIT_POLICY: omp });
    try { torch = lastJson(r.stdout); } catch { notes.push(`PyTorch: failed (${why(r)})`); }
  }
} else notes.push('PyTorch: skipped (--skip torch)');

let tfjs: any = null;
if (!skip.has('tfjs')) {
  section('tf.js');
  const req = createRequire(join(ROOT, 'package.json'));
  const has = (p: string) => { try { req.resolve(`${p}/package.json`); return true; } catch { return false; } };
  const bes: string[] = [];
  if (!has('@tensorflow/tfjs-core')) notes.push('TF.js: skipped, @tensorflow/tfjs-core is not installed (npm install --save-dev @tensorflow/tfjs-core @tensorflow/tfjs-backend-cpu @tensorflow/tfjs-backend-wasm)');
  else {
    for (const [be, pkg] of [['cpu', '@tensorflow/tfjs-backend-cpu'], ['wasm', '@tensorflow/tfjs-backend-wasm']]) {
      if (has(pkg)) bes.push(be); else notes.push(`TF.js ${be}: skipped, ${pkg} is not installed`);
    }
  }
  if (bes.length === 2) {
    const q = quick ? ['--steps-cpu', '1', '--steps-wasm', '3', '--matmul-ms', '100'] : ['--steps-cpu', '3', '--steps-wasm', '8', '--matmul-ms', '200'];
    const r = await runChild(TSX, ['bench/peers/tfjs_vae.ts', '--backends', bes.join(','), '--methods', methods.join(','), ...q], 360);
    try {
      tfjs = lastJson(r.stdout);
      for (const [be, v] of Object.entries<any>(tfjs.backends)) if (v.error) notes.push(`TF.js ${be}: failed (${v.error})`);
    } catch { notes.push(`TF.js: failed (${why(r)})`); }
  } else if (bes.length === 1) notes.push('TF.js: skipped, the peer script imports both backends');
} else notes.push('TF.js: skipped (--skip tfjs)');
loads.push(`end: ${load()}`);

// ----------------------------------------------------------------------------- tables
emit('');
emit('Ratios are gapgrad time / peer time from this run (< 1: gapgrad faster); for matmul, peer GFLOPS / gapgrad GFLOPS.');
if (torch) emit(`PyTorch ${torch.torch} (${torchPy}, python ${torch.python}), BLAS libraries loaded: ${(torch.libblas ?? []).join(', ') || '?'}; OMP_WAIT_POLICY=${torchOmp}; input: ${torch.data}.`);
if (tfjs) emit(`TF.js ${tfjs.tfjs} (tfjs-core + tfjs-backend-cpu / tfjs-backend-wasm, wasm threads: ${tfjs.backends?.wasm?.threads ?? '?'}); input: ${tfjs.data}.`);
if (gg.webgpuAdapter) emit(`gapgrad webgpu adapter: ${gg.webgpuAdapter}.`);

// matmul
if (Object.keys(gg.matmul).length) {
  const shapes = Object.keys(gg.matmul['wasm 1 thread'] ?? {});
  const tm = (t: string, s: string): number | undefined => torch?.matmul?.[t]?.[s]?.best_gflops;
  const tj = (b: string, s: string): number | undefined => tfjs?.backends?.[b]?.matmul?.[s]?.best_gflops;
  const col = (c: string) => (s: string) => gg.matmul[c]?.[s]?.best;
  const g1 = col('wasm 1 thread'), g2 = col('wasm 2 threads'), g11 = col('2 x 1 thread');
  const g2in = col('wasm 2 threads in place'), g11in = col('2 x 1 thread in place');
  // the machine's ceiling for two threads: two independent 1-thread GEMMs at once, their GFLOPS summed
  const headers = ['shape', 'gapgrad plain JS', 'gapgrad wasm 1T', 'gapgrad wasm 2T', '2 x 1T at once (ceiling)', '2T / ceiling',
    'gapgrad wasm 2T, in place', '2 x 1T in place (ceiling)', '2T in place / ceiling'];
  if (torch) headers.push('torch 1T', 'torch 2T', 'ratio 1T vs torch', 'ratio 2T vs torch');
  if (tfjs) headers.push('tfjs-wasm 1T', 'tfjs-cpu', 'ratio 1T vs tfjs-wasm', 'ratio 1T vs tfjs-cpu');
  const rows = shapes.map((s) => {
    const r = [s, f(gg.matmul['plain JS']?.[s]?.best), f(g1(s)), f(g2(s)), f(g11(s)), ratio(g2(s), g11(s)),
      f(g2in(s)), f(g11in(s)), ratio(g2in(s), g11in(s))];
    if (torch) r.push(f(tm('1', s)), f(tm('2', s)), ratio(tm('1', s), g1(s)), ratio(tm('2', s), g2in(s) ?? g2(s)));
    if (tfjs) r.push(f(tj('wasm', s)), f(tj('cpu', s), 2), ratio(tj('wasm', s), g1(s)), ratio(tj('cpu', s), g1(s)));
    return r;
  });
  emit('', '## Matmul, GFLOPS (best per-call time)', '', table(headers, rows));
  emit('', '"2 x 1T at once": two independent 1-thread GEMMs on two worker threads, timed over the same window, their ' +
    'GFLOPS summed: what this machine gives two threads that never wait for each other, the ceiling for a 2-thread GEMM. ' +
    '"In place": A, B and C are arrays of the GEMM\'s own memory (as the CPU backend keeps matmul outputs and Adam\'s ' +
    'parameters), so nothing is copied in or out; otherwise they are ordinary arrays, copied in and out per call. ' +
    '"ratio 2T vs torch" uses the in-place column.');
  if (gg.relaxed) emit('', `Relaxed-SIMD fused multiply-add in the wasm matmul (node flags: ${nodeFlags().join(' ') || 'none needed'}): ${gg.relaxed}.`);
  if (gg.otherCpu) emit('', `bench/matmul.ts: ${gg.otherCpu}`);
}

// VAE step
if (Object.keys(gg.vae).length || torch || tfjs) {
  const cols: { name: string; get: (m: string) => number | undefined }[] = [];
  for (const k of Object.keys(gg.vae)) cols.push({ name: `gapgrad ${k}`, get: (m) => gg.vae[k][m] });
  if (torch) for (const t of ['1', '2']) cols.push({ name: `torch ${t}T`, get: (m) => torch.vae?.[t]?.[m] });
  if (tfjs) for (const b of ['wasm', 'cpu']) if (tfjs.backends?.[b]?.vae) cols.push({ name: b === 'wasm' ? 'tfjs-wasm 1T' : 'tfjs-cpu', get: (m) => tfjs.backends[b].vae[m] });
  const ratios: { name: string; a: (m: string) => number | undefined; b: (m: string) => number | undefined }[] = [];
  const g = (k: string) => (m: string) => gg.vae[k]?.[m];
  if (torch) { ratios.push({ name: 'cpu 1T / torch 1T', a: g('cpu 1T'), b: (m) => torch.vae?.['1']?.[m] }, { name: 'cpu 2T / torch 2T', a: g('cpu 2T'), b: (m) => torch.vae?.['2']?.[m] }); }
  if (tfjs) {
    if (tfjs.backends?.wasm?.vae) ratios.push({ name: 'cpu 1T / tfjs-wasm', a: g('cpu 1T'), b: (m) => tfjs.backends.wasm.vae[m] });
    if (tfjs.backends?.cpu?.vae) ratios.push({ name: 'cpu 1T / tfjs-cpu', a: g('cpu 1T'), b: (m) => tfjs.backends.cpu.vae[m] });
  }
  const rowsMs = methods.map((m) => [m, ...cols.map((c) => f(c.get(m))), ...ratios.map((r) => ratio(r.a(m), r.b(m)))]);
  const rowsEp = methods.map((m) => [m, ...cols.map((c) => f(c.get(m) === undefined ? undefined : c.get(m)! * 0.6))]);
  const steps = [`gapgrad ${quick ? 8 : 40}`, torch ? `torch ${quick ? 8 : 40}` : '', tfjs ? `tfjs-wasm ${tfjs.backends?.wasm?.steps}, tfjs-cpu ${tfjs.backends?.cpu?.steps}` : ''].filter(Boolean).join(', ');
  emit('', '## VAE training step (batch 100, 30×10 latents, forward + backward + Adam), median ms / step', '',
    `timed steps after warm-up: ${steps}`, '', table(['method', ...cols.map((c) => c.name), ...ratios.map((r) => r.name)], rowsMs));
  emit('', '## Full epoch estimate (600 steps × median step), seconds', '', table(['method', ...cols.map((c) => c.name)], rowsEp));
  const pk = Object.keys(gg.products);
  if (pk.length) {
    const rowsP = methods.map((m) => [m, ...pk.flatMap((k) => {
      const x = gg.products[k][m];
      return x ? [`${x.ms.toFixed(2)} (${x.calls})`, x.gflops.toFixed(1)] : ['–', '–'];
    })]);
    emit('', '## The step\'s products: GEMM time per step (calls), ms, and their GFLOPS, over the timed steps', '',
      table(['method', ...pk.flatMap((k) => [`gapgrad ${k} ms`, `gapgrad ${k} GFLOPS`])], rowsP));
  }
}

if (contention) {
  emit('', '## Threads under contention: 1 vs 2 CPU threads, median ms per call / step', '',
    `\`gapgrad bench --devices cpu --threads 1,2 --groups matmul,vae,listops --contention\`: every case quiet, then with ${contention.busy} busy-looping process(es) beside it; ratios within one run (< 1: 2 threads faster).`, '',
    table(['case', '1T quiet', '2T quiet', '2T/1T quiet', '1T busy', '2T busy', '2T/1T busy'], contention.rows));
}

// estimators
if (Object.keys(gg.est).length || torch) {
  const shapes = [...new Set([...Object.values(gg.est).flatMap((d) => Object.keys(d)), ...Object.keys(torch?.estimators?.['1'] ?? {})])];
  const devs = Object.keys(gg.est);
  for (const sh of shapes) {
    const names = [...new Set([...devs.flatMap((d) => Object.keys(gg.est[d][sh] ?? {})), ...Object.keys(torch?.estimators?.['1']?.[sh] ?? {})])];
    const tt = (t: string, n: string): number | undefined => torch?.estimators?.[t]?.[sh]?.[n]?.ms;
    const headers = ['method', ...devs.map((d) => `gapgrad ${d}`)];
    if (torch) headers.push('torch 1T', 'torch 2T', 'gapgrad cpu / torch 1T', 'gapgrad cpu / torch 2T');
    if (torch && devs.includes('webgpu')) headers.push('gapgrad webgpu / torch 2T');
    const rows = names.map((n) => {
      const r = [n, ...devs.map((d) => f(gg.est[d][sh]?.[n], 3))];
      if (torch) r.push(f(tt('1', n), 3), f(tt('2', n), 3), ratio(gg.est.cpu?.[sh]?.[n], tt('1', n)), ratio(gg.est.cpu?.[sh]?.[n], tt('2', n)));
      if (torch && devs.includes('webgpu')) r.push(ratio(gg.est.webgpu?.[sh]?.[n], tt('2', n)));
      return r;
    });
    emit('', `## Estimator forward + backward, logits [${sh.replace(/,/g, ', ')}] float32, ms / call`, '', table(headers, rows));
  }
}

if (!skip.has('listops')) { // bench/listops.ts: training/eval throughput, the PyTorch peer beside it when torch is there
  section('listops');
  const lo = await (await import('./listops.ts')).listopsSection({ quick, nodeArgs: GG, python: skip.has('torch') ? undefined : torchPy || undefined });
  emit('', ...lo.lines);
  notes.push(...lo.notes);
}
emit('', '## Skipped / failed', '', ...(notes.length ? notes.map((n) => `- ${n}`) : ['- nothing']));
emit('', '## Machine load', '', `1/5/15-min load averages (${os.availableParallelism()} CPUs) when each part started: ${loads.join('; ')}.`);
emit('', `\`uptime\` at end: \`${uptime()}\`; total ${((performance.now() - T0) / 1000).toFixed(0)} s.`);

const md = out.join('\n') + '\n';
console.log(md);
const dir = join(ROOT, 'bench', 'out');
if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
writeFileAtomic(join(dir, 'results.md'), md);
say(`wrote ${join('bench', 'out', 'results.md')}`);

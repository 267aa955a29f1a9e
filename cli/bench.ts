// `gapgrad bench`: time matmul, the estimators, a training step of each model and a transfer round trip on
// every available device (the CPU at 1 and 2 threads, the WebGPU adapter Dawn finds), print a table, write
// JSON, compare with an earlier JSON, draw charts; --contention repeats everything with busy processes
// beside it; --check runs the WebGPU readiness check instead (cli/check.ts).
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseFlags, UsageError } from './args.ts';
import { interleave, loadAverage, machineInfo, startBusy, stats, type MachineInfo, type Stats } from './bench_core.ts';
import { benchMethods, enterDevice, estimatorCase, listopsCase, matmulCase, parseShape, transferCase, vaeCase, type BenchCase, type DeviceConfig } from './bench_cases.ts';
import { writeFileAtomic } from '../platform/atomic.ts';

export const BENCH_FLAGS = {
  devices: { type: 'string', help: 'comma-separated: cpu, webgpu (default both; webgpu is skipped, with the reason, only when not asked for)' },
  threads: { type: 'string', default: '1,2', help: 'CPU matmul threads to compare, comma-separated (1, 2)' },
  suite: { type: 'string', default: 'quick', help: "'quick' (under 2 minutes on 2 cores) or 'full'" },
  shapes: { type: 'string', help: 'matmul shapes MxKxN, comma-separated (default per suite)' },
  methods: { type: 'string', help: 'estimators, comma-separated (default: every method; the models use gst-1.0 if listed, else the first)' },
  estimators: { type: 'string', help: 'FILE[,FILE]: modules defining estimators (estimators.define), benchmarked with the registered ones' },
  json: { type: 'string', help: 'write the results (or with --check, the checks) as JSON to FILE (must not exist)' },
  compare: { type: 'string', path: 'file', help: 'print the ratios of these results to an earlier JSON from --json' },
  from: { type: 'string', help: 'read results from this JSON instead of measuring (with --compare / --out)' },
  out: { type: 'string', help: 'write results.json, table.md and charts (SVG + PNG) to DIR (new or empty)' },
  contention: { type: 'boolean', default: false, help: 'measure everything twice: quiet, then with --busy busy-looping processes beside it' },
  busy: { type: 'string', default: '1', help: 'busy processes in the contention mode' },
  check: { type: 'boolean', default: false, help: 'WebGPU readiness check instead: conformance against the CPU, then a timed MNIST-VAE epoch' },
  'train-limit': { type: 'string', help: '--check: images in the timed epoch (default all 60000)' },
  samples: { type: 'string', help: 'timed samples per configuration, at most (each stops earlier once it has spent the suite\'s time budget; default per suite)' },
  groups: { type: 'string', default: 'matmul,estimator,vae,listops,transfer', help: 'which kinds of case to time, comma-separated' },
} as const;

const USAGE = 'Usage: gapgrad bench [--devices cpu,webgpu] [--threads 1,2] [--suite quick|full] [--shapes MxKxN,...] [--methods ...]\n' +
  '                     [--json FILE] [--compare FILE] [--out DIR] [--contention] | --check | --from FILE [--compare FILE] [--out DIR]';

export const REPORT_FORMAT = 'gapgrad-bench/1';

/** A device as measured: the CPU at a thread count, or a WebGPU adapter. */
export interface DeviceInfo {
  id: string;
  kind: 'cpu' | 'webgpu';
  threads?: number;
  relaxedSimd?: boolean;
  adapter?: { name: string; vendor: string; software: boolean; via: string };
}

export interface BenchResult {
  case: string;
  group: BenchCase['group'];
  device: string;
  mode: 'quiet' | 'busy';
  /** per-sample times, ms */
  stats?: Stats;
  /** from the median time, for matmul */
  gflops?: number;
  /** from the median time, for the transfer */
  gbPerS?: number;
  error?: string;
}

export interface BenchReport {
  format: typeof REPORT_FORMAT;
  createdAt: string;
  machine: MachineInfo;
  settings: { suite: string; devices: string[]; threads: number[]; shapes: string[]; methods: string[]; groups: string[]; contention: boolean; busy: number; samples: number };
  devices: DeviceInfo[];
  unavailable: { device: string; reason: string }[];
  results: BenchResult[];
  /** per mode: the 2-thread CPU GEMM's signs of contention and backoffs during it (see GemmContention) */
  contention?: Record<string, { events: number; spin: number; wait: number; late: number; wake?: number; backoffs: number }>;
  loadAverageEnd: string;
  seconds: number;
}

// samples: the most per configuration; each stops earlier once it has spent budgetMs (with at least 3)
const SUITES = {
  quick: { shapes: ['100x784x512', '512x512x512'], logits: [[100, 30, 10]], samples: 40, warm: 3, budgetMs: 1000, transfer: 1 << 20, listopsBatches: 1 },
  full: { shapes: ['100x784x512', '784x100x512', '100x512x784', '512x512x512', '1024x1024x1024'], logits: [[100, 30, 10], [200, 32, 64]], samples: 200, warm: 8, budgetMs: 5000, transfer: 1 << 22, listopsBatches: 4 },
} as const;

const list = (s: string | undefined) => (s ?? '').split(',').map((x) => x.trim()).filter(Boolean);

/** Read and check a JSON report written by --json. */
export function readReport(path: string): BenchReport {
  let r: BenchReport;
  try { r = JSON.parse(readFileSync(path, 'utf8')); } catch (e) { throw new UsageError(`${path}: not a readable JSON file (${(e as Error).message})`); }
  if (r?.format !== REPORT_FORMAT || !Array.isArray(r.results)) throw new UsageError(`${path}: not a gapgrad bench report (format '${r?.format}', expected '${REPORT_FORMAT}')`);
  return r;
}

// ------------------------------------------------------------------------------------------- formatting
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3));

/** The figure a row shows: GFLOPS for matmul, GB/s for transfers, else the median ms. */
function figure(r: BenchResult | undefined): string {
  if (!r) return '–';
  if (r.error) return 'error';
  if (r.gflops !== undefined) return `${fmt(r.gflops)} GFLOPS`;
  if (r.gbPerS !== undefined) return `${fmt(r.gbPerS)} GB/s`;
  return `${fmt(r.stats!.median)} ms`;
}

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ')} |`;
  return [line(head), `|${w.map((x, i) => (i === 0 ? '-'.repeat(x + 2) : `${'-'.repeat(x + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** The results as a markdown table: a row per case, a column per device (and mode), 2T / 1T time ratios. */
export function formatReport(r: BenchReport): string {
  const modes = [...new Set(r.results.map((x) => x.mode))];
  const devs = r.devices.map((d) => d.id);
  const cols = modes.flatMap((m) => devs.map((d) => ({ m, d })));
  const cases = [...new Set(r.results.map((x) => x.case))];
  const get = (c: string, d: string, m: string) => r.results.find((x) => x.case === c && x.device === d && x.mode === m);
  const ratioCols = devs.includes('cpu-1T') && devs.includes('cpu-2T') ? modes : [];
  const head = ['case', ...cols.map(({ m, d }) => (modes.length > 1 ? `${d} ${m}` : d)), ...ratioCols.map((m) => (modes.length > 1 ? `2T/1T ${m}` : '2T/1T time'))];
  const rows = cases.map((c) => [c, ...cols.map(({ m, d }) => figure(get(c, d, m))), ...ratioCols.map((m) => {
    const a = get(c, 'cpu-2T', m)?.stats?.median, b = get(c, 'cpu-1T', m)?.stats?.median;
    return a && b ? (a / b).toFixed(2) : '–';
  })]);
  const lines = [
    `gapgrad bench (${r.settings.suite}) ${r.createdAt}: ${r.machine.cpu} x${r.machine.cores}, node ${r.machine.node}, gapgrad ${r.machine.gapgrad}${r.machine.git ? ` (git ${r.machine.git})` : ''}`,
    ...r.devices.filter((d) => d.adapter).map((d) => `${d.id}: ${d.adapter!.name} (vendor ${d.adapter!.vendor || 'unknown'}, ${d.adapter!.software ? 'software adapter' : 'hardware adapter'}, via ${d.adapter!.via})`),
    ...r.unavailable.map((u) => `${u.device}: not available: ${u.reason}`),
    `load average ${r.machine.loadAverageStart} at start, ${r.loadAverageEnd} at end; ${r.seconds.toFixed(0)} s` +
      (r.settings.contention ? `; busy: ${r.settings.busy} busy-looping process(es) beside the measurement` : ''),
    '',
    table(head, rows),
    '',
    'Figures are medians over the samples (min/max/n in the JSON); 2T/1T: ratio of median times (< 1: 2 threads faster).',
  ];
  const errs = r.results.filter((x) => x.error);
  if (errs.length) lines.push('', 'Errors:', ...errs.map((x) => `- ${x.case} on ${x.device} (${x.mode}): ${x.error}`));
  if (r.contention) {
    lines.push('', `cpu-2T, signs of oversubscribed cores (worker descheduled while spinning / caller waited on it / worker late / slow to wake) and backoffs to one thread: ${
      Object.entries(r.contention).map(([m, c]) => `${m}: ${c.spin} / ${c.wait} / ${c.late} / ${c.wake ?? 0}, ${c.backoffs} backoffs`).join('; ')}`);
  }
  return lines.join('\n');
}

export interface CompareRow { case: string; device: string; mode: string; now: number; before: number; ratio: number }

/** Median-time ratios now / before for the (case, device, mode) both reports have; < 1: faster now. */
export function compareReports(now: BenchReport, before: BenchReport): CompareRow[] {
  const out: CompareRow[] = [];
  for (const a of now.results) {
    const b = before.results.find((x) => x.case === a.case && x.device === a.device && x.mode === a.mode);
    if (!a.stats || !b?.stats) continue;
    out.push({ case: a.case, device: a.device, mode: a.mode, now: a.stats.median, before: b.stats.median, ratio: a.stats.median / b.stats.median });
  }
  return out;
}

export function formatComparison(now: BenchReport, before: BenchReport, beforePath: string): string {
  const rows = compareReports(now, before);
  const who = (r: BenchReport) => `${r.machine.hostname}, ${r.machine.cpu} x${r.machine.cores}, ${r.createdAt}${r.machine.git ? `, git ${r.machine.git}` : ''}` +
    r.devices.filter((d) => d.adapter).map((d) => `, ${d.id}: ${d.adapter!.name}`).join('');
  if (!rows.length) return `compare: no case, device and mode in common with ${beforePath}`;
  return [`Compared with ${beforePath} (${who(before)}); this: ${who(now)}`, '',
    table(['case', 'device', 'mode', 'ms now', 'ms before', 'now / before'], rows.map((r) => [r.case, r.device, r.mode, fmt(r.now), fmt(r.before), r.ratio.toFixed(2)])),
    '', 'now / before: ratio of median times (< 1: faster now).'].join('\n');
}

/** Charts of the table: GFLOPS by matmul shape per device; step times per device. */
export async function writeCharts(r: BenchReport, dir: string): Promise<string[]> {
  const { writeChart } = await import('./charts.ts');
  const label = (x: BenchResult) => (r.settings.contention ? `${x.device} ${x.mode}` : x.device);
  const files: string[] = [];
  const mm = r.results.filter((x) => x.group === 'matmul' && x.gflops !== undefined).map((x) => ({ shape: x.case.replace('matmul ', ''), device: label(x), gflops: x.gflops }));
  if (mm.length) {
    const f = await writeChart({
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json', title: `matmul GFLOPS by shape (${r.machine.cpu} x${r.machine.cores})`,
      data: { values: mm }, mark: 'bar', width: 380, height: 220,
      encoding: { x: { field: 'shape', type: 'nominal', title: 'M x K x N', axis: { labelAngle: 0 } }, xOffset: { field: 'device' }, y: { field: 'gflops', type: 'quantitative', title: 'GFLOPS' }, color: { field: 'device', type: 'nominal' } },
    }, join(dir, 'matmul_gflops'));
    files.push(f.svg, f.png);
  }
  const steps = r.results.filter((x) => (x.group === 'vae' || x.group === 'listops') && x.stats).map((x) => ({ case: x.case, device: label(x), ms: x.stats!.median, min: x.stats!.min, max: x.stats!.max }));
  if (steps.length) {
    const f = await writeChart({
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json', title: 'training step time per device (median; bar: min to max)',
      data: { values: steps }, width: 380, height: 220,
      encoding: { y: { field: 'case', type: 'nominal', title: null }, yOffset: { field: 'device' }, color: { field: 'device', type: 'nominal' } },
      layer: [
        { mark: 'bar', encoding: { x: { field: 'ms', type: 'quantitative', title: 'ms per step' } } },
        { mark: { type: 'rule', color: 'black' }, encoding: { x: { field: 'min', type: 'quantitative' }, x2: { field: 'max' } } },
      ],
    }, join(dir, 'step_ms'));
    files.push(f.svg, f.png);
  }
  return files;
}

// ------------------------------------------------------------------------------------------- measuring
async function openDevices(want: string[], threads: number[], explicit: boolean): Promise<{ configs: DeviceConfig[]; info: DeviceInfo[]; unavailable: BenchReport['unavailable'] }> {
  const configs: DeviceConfig[] = [], info: DeviceInfo[] = [], unavailable: BenchReport['unavailable'] = [];
  if (want.includes('cpu')) {
    const { createGemm } = await import('../backends/cpu/wasm/gemm.ts');
    for (const t of threads) {
      const gemm = await createGemm({ threads: t });
      configs.push({ id: `cpu-${t}T`, device: 'cpu', threads: t, gemm });
      info.push({ id: `cpu-${t}T`, kind: 'cpu', threads: gemm.threads, relaxedSimd: gemm.relaxed });
    }
  }
  if (want.includes('webgpu')) {
    const { initWebGPU } = await import('../backends/webgpu/index.ts');
    try {
      const gpu = await initWebGPU();
      configs.push({ id: 'webgpu', device: 'webgpu', gpu });
      const a = gpu.adapterInfo;
      info.push({ id: 'webgpu', kind: 'webgpu', adapter: { name: gpu.adapterName, vendor: a?.vendor ?? '', software: gpu.isSoftware, via: gpu.via ?? '' } });
    } catch (e) {
      // asked for by name: fail, never fall back to the CPU silently
      if (explicit) throw new Error(`bench: --devices asks for webgpu, but ${(e as Error).message}`);
      unavailable.push({ device: 'webgpu', reason: (e as Error).message });
    }
  }
  return { configs, info, unavailable };
}

function cases(suite: (typeof SUITES)[keyof typeof SUITES], shapes: string[], methods: string[]): BenchCase[] {
  const model = methods.includes('gst-1.0') ? 'gst-1.0' : methods[0];
  const out: BenchCase[] = [...shapes.map(matmulCase)];
  for (const sh of suite.logits) for (const m of methods) out.push(estimatorCase(m, [...sh]));
  out.push(vaeCase(model), listopsCase(model, suite.listopsBatches), transferCase(suite.transfer));
  return out;
}

async function measure(cs: BenchCase[], configs: DeviceConfig[], mode: 'quiet' | 'busy', o: { samples: number; warm: number; budgetMs: number },
                       say: (s: string) => void): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const c of cs) {
    const live: { d: DeviceConfig; inst: Awaited<ReturnType<BenchCase['make']>> }[] = [];
    for (const d of configs) {
      try {
        enterDevice(d);
        live.push({ d, inst: await c.make(d) });
      } catch (e) {
        out.push({ case: c.name, group: c.group, device: d.id, mode, error: (e as Error).message });
      }
    }
    const perTurn = c.group === 'vae' || c.group === 'listops' ? 2 : 3;
    // The CPU configurations take turns with each other, and WebGPU is timed after them, not between: on a software
    // adapter Dawn and llvmpipe keep CPU threads busy after a sample has finished (compiling pipelines), which
    // slowed the CPU samples that followed (ListOps steps on 2 threads: 1.22x the time of 1 thread, against 0.89x
    // and 0.91x with the CPU alone, in three consecutive runs).
    const times: number[][] = live.map(() => []);
    for (const device of ['cpu', 'webgpu'] as const) {
      const idx = live.flatMap(({ d }, q) => (d.device === device ? [q] : []));
      if (!idx.length) continue;
      try {
        const t = await interleave(idx.map((q) => ({ enter: () => enterDevice(live[q].d), sample: live[q].inst.sample })), { ...o, perTurn });
        idx.forEach((q, j) => { times[q] = t[j]; });
      } catch {
        // a configuration failed mid-way: time them one at a time, so that the others still get their rows
        for (const q of idx) {
          const { d, inst } = live[q];
          try { times[q] = (await interleave([{ enter: () => enterDevice(d), sample: inst.sample }], { ...o, perTurn }))[0]; }
          catch (e) { times[q] = []; out.push({ case: c.name, group: c.group, device: d.id, mode, error: (e as Error).message }); }
        }
      }
    }
    live.forEach(({ d, inst }, q) => {
      inst.dispose();
      if (!times[q]?.length) return;
      const s = stats(times[q]);
      const r: BenchResult = { case: c.name, group: c.group, device: d.id, mode, stats: s };
      if (c.flop) r.gflops = c.flop / (s.median * 1e6);
      if (c.bytes) r.gbPerS = c.bytes / (s.median * 1e6);
      out.push(r);
    });
    say(`${c.name}: ${live.map(({ d }, q) => `${d.id} ${times[q]?.length ? figure(out.find((x) => x.case === c.name && x.device === d.id && x.mode === mode)) : 'error'}`).join(', ')}`);
  }
  return out;
}

/** Run the benchmark and return the report (printing progress to stderr). */
export async function runBench(o: {
  suite: keyof typeof SUITES; devices: string[]; devicesExplicit: boolean; threads: number[]; shapes: string[]; methods: string[];
  contention: boolean; busy: number; samples?: number; groups?: string[]; say?: (s: string) => void;
}): Promise<BenchReport> {
  const t0 = performance.now();
  const say = o.say ?? ((s: string) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0)}s] ${s}\n`));
  const suite = SUITES[o.suite];
  const machine = machineInfo();
  const { cpuBackend } = await import('../index.ts');
  const before = cpuBackend.gemm; // restored at the end
  say(`load average ${machine.loadAverageStart}`);
  const { configs, info, unavailable } = await openDevices(o.devices, o.threads, o.devicesExplicit);
  for (const u of unavailable) say(`${u.device}: not available: ${u.reason}`);
  for (const d of info) if (d.adapter) say(`${d.id}: ${d.adapter.name}${d.adapter.software ? ' (software adapter)' : ''}`);
  const settings = { samples: o.samples ?? suite.samples, warm: suite.warm, budgetMs: suite.budgetMs };
  const cs = cases(suite, o.shapes, o.methods).filter((c) => !o.groups || o.groups.includes(c.group));
  const results: BenchResult[] = [];
  const contention: NonNullable<BenchReport['contention']> = {};
  const gemm2 = configs.find((c) => c.threads === 2)?.gemm;
  for (const mode of o.contention ? (['quiet', 'busy'] as const) : (['quiet'] as const)) {
    const busy = mode === 'busy' ? startBusy(o.busy) : null;
    if (busy) { say(`busy: ${o.busy} busy-looping process(es), pids ${busy.pids.join(', ')}`); await new Promise((r) => setTimeout(r, 200)); }
    const c0 = gemm2?.contention;
    try {
      results.push(...await measure(cs, configs, mode, settings, say));
    } finally {
      busy?.stop();
    }
    if (gemm2 && c0) {
      const c1 = gemm2.contention;
      contention[mode] = { events: c1.events - c0.events, spin: c1.spin - c0.spin, wait: c1.wait - c0.wait, late: c1.late - c0.late, wake: c1.wake - c0.wake, backoffs: c1.backoffs - c0.backoffs };
    }
  }
  cpuBackend.gemm = before;
  for (const c of configs) await c.gemm?.close();
  return {
    format: REPORT_FORMAT, createdAt: new Date().toISOString(), machine,
    settings: { suite: o.suite, devices: o.devices, threads: o.threads, shapes: o.shapes, methods: o.methods, groups: o.groups ?? [...new Set(cs.map((c) => c.group))], contention: o.contention, busy: o.contention ? o.busy : 0, samples: settings.samples },
    devices: info, unavailable, results, ...(gemm2 ? { contention } : {}), loadAverageEnd: loadAverage(), seconds: (performance.now() - t0) / 1000,
  };
}

/** `gapgrad bench [flags]`. */
export async function benchCmd(args: string[]): Promise<void> {
  const f = parseFlags(args, BENCH_FLAGS, USAGE);
  if (f.estimators !== undefined) {
    const { loadEstimatorModules } = await import('./estimators.ts');
    await loadEstimatorModules(String(f.estimators).split(',').filter(Boolean));
  }
  if (f.check) {
    const { checkCmd } = await import('./check.ts');
    const limit = f['train-limit'] === undefined ? null : Number(f['train-limit']);
    if (limit !== null && !(Number.isInteger(limit) && limit >= 100)) throw new UsageError(`--train-limit: expected an integer >= 100 (one batch), got '${f['train-limit']}'`);
    const json = f.json === undefined ? null : resolve(String(f.json));
    if (json && existsSync(json)) throw new UsageError(`--json: ${json} exists; a run never overwrites another's results (choose a new file)`);
    return checkCmd({ trainLimit: limit, json });
  }
  // every argument is checked before any work starts
  const suite = String(f.suite);
  if (suite !== 'quick' && suite !== 'full') throw new UsageError(`--suite: expected 'quick' or 'full', got '${suite}'`);
  const devices = f.devices === undefined ? ['cpu', 'webgpu'] : list(String(f.devices));
  for (const d of devices) if (d !== 'cpu' && d !== 'webgpu') throw new UsageError(`--devices: expected cpu and/or webgpu, got '${d}'`);
  if (!devices.length) throw new UsageError(`--devices: expected cpu and/or webgpu, got '${f.devices}'`);
  const threads = list(String(f.threads)).map(Number);
  if (!threads.length || threads.some((t) => t !== 1 && t !== 2)) throw new UsageError(`--threads: expected 1 and/or 2, got '${f.threads}'`);
  const shapes = f.shapes === undefined ? [...SUITES[suite].shapes] : list(String(f.shapes));
  for (const s of shapes) { try { parseShape(s); } catch (e) { throw new UsageError(`--shapes: ${(e as Error).message}`); } }
  const all = benchMethods();
  const methods = f.methods === undefined ? all : list(String(f.methods));
  const { parseMethod } = await import('../estimators/index.ts');
  for (const m of methods) { try { parseMethod(m); } catch (e) { throw new UsageError(`--methods: ${(e as Error).message}`); } }
  const GROUPS = ['matmul', 'estimator', 'vae', 'listops', 'transfer'];
  const groups = list(String(f.groups));
  for (const g of groups) if (!GROUPS.includes(g)) throw new UsageError(`--groups: expected some of ${GROUPS.join(', ')}, got '${g}'`);
  const busyN = Number(f.busy);
  if (!(Number.isInteger(busyN) && busyN >= 1 && busyN <= 64)) throw new UsageError(`--busy: expected an integer from 1 to 64, got '${f.busy}'`);
  const samples = f.samples === undefined ? undefined : Number(f.samples);
  if (samples !== undefined && !(Number.isInteger(samples) && samples >= 1)) throw new UsageError(`--samples: expected a positive integer, got '${f.samples}'`);
  const jsonPath = f.json === undefined ? null : resolve(String(f.json));
  if (jsonPath && existsSync(jsonPath)) throw new UsageError(`--json: ${jsonPath} exists; a run never overwrites another's results (choose a new file)`);
  const outDir = f.out === undefined ? null : resolve(String(f.out));
  if (outDir && existsSync(outDir) && readdirSync(outDir).length) throw new UsageError(`--out: ${outDir} is not empty; a run never overwrites another's results (choose a new directory)`);
  const before = f.compare === undefined ? null : readReport(resolve(String(f.compare)));
  if (f.from !== undefined && f.json !== undefined) throw new UsageError('--from and --json: a report read with --from is not written again');
  if (outDir) {
    // --out draws charts: without the chart packages, say so before timing anything
    const { requireCharts } = await import('./charts.ts');
    await requireCharts('bench --out:', 'or use --json FILE (no charts)');
  }

  const report = f.from !== undefined ? readReport(resolve(String(f.from))) :
    await runBench({ suite, devices, devicesExplicit: f.devices !== undefined, threads, shapes, methods, contention: Boolean(f.contention), busy: busyN, samples, groups });
  const text = formatReport(report);
  process.stdout.write(`${text}\n`);
  const ok = report.results.some((r) => r.stats);
  if (jsonPath) { writeFileAtomic(jsonPath, JSON.stringify(report, null, 2) + '\n'); process.stdout.write(`wrote ${jsonPath}\n`); }
  if (before) process.stdout.write(`\n${formatComparison(report, before, String(f.compare))}\n`);
  if (outDir) {
    mkdirSync(outDir, { recursive: true });
    writeFileAtomic(join(outDir, 'results.json'), JSON.stringify(report, null, 2) + '\n');
    writeFileAtomic(join(outDir, 'table.md'), text + (before ? `\n\n${formatComparison(report, before, String(f.compare))}` : '') + '\n');
    const charts = await writeCharts(report, outDir);
    process.stdout.write(`wrote ${outDir}: results.json, table.md${charts.map((c) => `, ${c.slice(outDir.length + 1)}`).join('')}\n`);
  }
  if (!ok) throw new Error('bench: no case could be measured (see the errors above)');
  const errors = report.results.filter((r) => r.error);
  if (errors.length && f.from === undefined) throw new Error(`bench: ${errors.length} case(s) failed (listed above)`);
}

// Browser step times beside Node's: the demo page (examples/browser) in headless Chromium trains the MNIST VAE
// (batch 100, gst-1.0) on the CPU backend with 1 and 2 threads and on WebGPU (the browser's adapter); Node runs
// the same steps (models/vae/run.ts) on 1 and 2 threads. Reports the median ms per step after a warm-up.
//   npx tsx bench/browser.ts [--steps 60] [--json FILE]
import '../platform/node.ts';
import { writeFileAtomic } from '../platform/atomic.ts';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import puppeteer from 'puppeteer-core';
import { startDemoServer } from '../examples/browser/serve.ts';
import { VaeRun, DEFAULT_TRAIN } from '../models/vae/run.ts';
import { limitSplit } from '../models/vae/run.ts';
import { loadMnist } from '../models/vae/mnist.ts';
import { cpuBackend } from '../node.ts';

const arg = (n: string, d: string) => { const i = process.argv.indexOf(`--${n}`); return i >= 0 ? process.argv[i + 1] : d; };
const STEPS = Number(arg('steps', '60'));
const EVERY = 10;
const CHROMIUM = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (!CHROMIUM) throw new Error('bench/browser: no Chromium found (set CHROMIUM_PATH)');
const cfg = { ...DEFAULT_TRAIN, method: 'gst-1.0', tau: 1, seed: 1, batchSize: 100, trainLimit: 10000, testLimit: 500 };
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const load0 = loadavg()[0];

interface Row { where: string; device: string; threads: string; adapter: string; msPerStep: number }
const rows: Row[] = [];

// Node: the same run, per step (trainSteps), after the first EVERY steps as warm-up
const m = loadMnist();
const data = { train: limitSplit(m.train, cfg.trainLimit), test: limitSplit(m.test, cfg.testLimit) };
for (const threads of [1, 2] as const) {
  await cpuBackend.ready(threads);
  const run = new VaeRun({ ...cfg, device: 'cpu' }, data);
  const per: number[] = [];
  for (let done = 0; done < STEPS; done += EVERY) {
    const t0 = performance.now();
    await run.trainSteps(EVERY);
    if (done > 0) per.push((performance.now() - t0) / EVERY);
  }
  rows.push({ where: `Node ${process.versions.node}`, device: 'cpu', threads: String(threads), adapter: '', msPerStep: median(per) });
}

const server = await startDemoServer({ port: 0 });
const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu'] });
const version = await browser.version();
for (const [device, threads] of [['cpu', 1], ['cpu', 2], ['webgpu', 0]] as const) {
  const page = await browser.newPage();
  const q = `autostart=1&steps=${STEPS}&every=${EVERY}&device=${device}${threads ? `&threads=${threads}` : ''}&method=${cfg.method}&seed=1&batch=100&trainLimit=${cfg.trainLimit}&testLimit=${cfg.testLimit}`;
  await page.goto(`${server.url}?${q}`);
  await page.waitForFunction('globalThis.__gapgrad && (globalThis.__gapgrad.finished || globalThis.__gapgrad.errors.length)', { timeout: 600_000, polling: 200 });
  const st = await page.evaluate('globalThis.__gapgrad') as { errors: string[]; msPerStep: number[]; started: { threads: number; adapter: string }; contention: unknown };
  if (device === 'cpu') console.log(`chromium cpu ${threads}T: contention ${JSON.stringify(st.contention)}`);
  if (st.errors.length) throw new Error(`page: ${st.errors.join('; ')}`);
  rows.push({
    where: version, device, threads: device === 'cpu' ? String(st.started.threads) : '', adapter: st.started.adapter,
    msPerStep: median(st.msPerStep.slice(1)), // the first chunk compiles shaders / warms up
  });
  await page.close();
}
await browser.close();
await server.close();

const table = ['| where | device | threads | adapter | ms per step (median) |', '|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.where} | ${r.device} | ${r.threads || '—'} | ${r.adapter || '—'} | ${r.msPerStep.toFixed(1)} |`)];
console.log(table.join('\n'));
console.log(`\n${STEPS} steps of batch ${cfg.batchSize} per configuration, median over chunks of ${EVERY} after the first; load average ${load0.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end; bundles: page ${(server.bundleBytes.main / 1024).toFixed(0)} KB (${(server.bundleBytes.mainGzip / 1024).toFixed(0)} KB gzipped), worker ${(server.bundleBytes.worker / 1024).toFixed(0)} KB (${(server.bundleBytes.workerGzip / 1024).toFixed(0)} KB gzipped)`);
const json = arg('json', '');
if (json) writeFileAtomic(json, JSON.stringify({ rows, steps: STEPS, load: [load0, loadavg()[0]], bundles: server.bundleBytes }, null, 2));
process.exit(0);

// The demo page in a real browser: Debian's Chromium, headless, driven with puppeteer-core against the demo server
// (examples/browser/serve.ts) on 127.0.0.1. The page trains 3 steps of the MNIST VAE on the CPU backend (two
// threads: a Web Worker over shared memory) and on
// WebGPU (SwiftShader, from --enable-unsafe-webgpu) for a fixed seed; the losses must equal what Node computes
// for the same seed within float32 tolerance, the samples must be the ones Node draws, the page must log no
// errors, its checkpoint must load in Node, and the engine's cross-device checks must pass in the page.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { startDemoServer, type DemoServer } from '../examples/browser/serve.ts';
import { VaeRun, DEFAULT_TRAIN, evalVaeCheckpoint } from '../models/vae/train.ts';
import { limitSplit } from '../models/vae/run.ts';
import { loadMnist } from '../models/vae/mnist.ts';
import { estimators, random, tensor } from '../index.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const OUT = resolve(import.meta.dirname, '.out');
const STEPS = 3;
const cfg = { ...DEFAULT_TRAIN, method: 'gst-1.0', tau: 1, seed: 1, batchSize: 100, trainLimit: 1000, testLimit: 200 };

if (!CHROMIUM && process.env.CI === 'true') throw new Error('browser test: no Chromium in CI (.ci/run installs Debian\'s chromium)');

describe.skipIf(!CHROMIUM)('the demo page in headless Chromium', () => {
  let server: DemoServer;
  let browser: Browser;
  let nodeLosses: number[];

  beforeAll(async () => {
    const { default: puppeteer } = await import('puppeteer-core');
    server = await startDemoServer({ port: 0 });
    browser = await puppeteer.launch({
      executablePath: CHROMIUM, headless: true,
      args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--window-size=1200,1000'],
    });
    const m = loadMnist();
    const run = new VaeRun({ ...cfg, device: 'cpu' }, { train: limitSplit(m.train, cfg.trainLimit), test: limitSplit(m.test, cfg.testLimit) });
    nodeLosses = await run.trainSteps(STEPS);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** Open the page with the test parameters and wait until it has trained and saved its checkpoint. */
  async function trainIn(device: 'cpu' | 'webgpu', extra = ''): Promise<{ page: Page; state: Record<string, unknown>; problems: string[] }> {
    const page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 1000 });
    const problems: string[] = [];
    page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`); });
    page.on('pageerror', (e) => problems.push(`pageerror: ${(e as Error).message}`));
    const q = `autostart=1&steps=${STEPS}&every=1&device=${device}&method=${cfg.method}&tau=${cfg.tau}&seed=${cfg.seed}&batch=${cfg.batchSize}&trainLimit=${cfg.trainLimit}&testLimit=${cfg.testLimit}${extra}`;
    await page.goto(`${server.url}?${q}`);
    const done = extra.includes('conformance')
      ? '(g) => g && (g.errors.length > 0 || (g.checkpoint && g.conformance))'
      : '(g) => g && (g.errors.length > 0 || g.checkpoint)';
    await page.waitForFunction(`(${done})(globalThis.__gapgrad)`, { timeout: 90_000, polling: 100 });
    const state = await page.evaluate('globalThis.__gapgrad') as Record<string, unknown>;
    return { page, state, problems };
  }

  it('trains on the CPU backend with the losses Node computes, and its checkpoint loads in Node', async () => {
    const { page, state, problems } = await trainIn('cpu');
    expect(state.errors).toEqual([]);
    expect(problems).toEqual([]);
    // the page is cross-origin isolated and trains in a Worker: the CPU backend's second thread is a Web Worker
    const started = state.started as { threads: number; threadsReason: string };
    expect(started.threads, started.threadsReason).toBe(2);
    const losses = state.losses as number[];
    expect(losses).toHaveLength(STEPS);
    // the same draws; the products may round differently (relaxed-SIMD fused multiply-add in Chromium)
    for (let i = 0; i < STEPS; i++) expect(Math.abs(losses[i] - nodeLosses[i])).toBeLessThan(1e-4 * nodeLosses[i]);
    mkdirSync(OUT, { recursive: true });
    const ckpt = join(OUT, 'browser-vae.safetensors');
    writeFileSync(ckpt, Buffer.from(state.checkpoint as string, 'base64'));
    const ev = await evalVaeCheckpoint(ckpt, { data: (() => { const m = loadMnist(); return { train: m.train, test: limitSplit(m.test, 200) }; })() });
    expect(Number.isFinite(ev.testLoss)).toBe(true);
    expect(ev.cfg.method).toBe(cfg.method);
    await page.close();
  }, 120_000);

  it('trains on WebGPU (the browser\'s adapter) within float32 tolerance of Node, and passes the cross-device checks in the page', async () => {
    const { page, state, problems } = await trainIn('webgpu', '&conformance=1');
    expect(state.errors).toEqual([]);
    expect(problems).toEqual([]);
    const started = state.started as { device: string; adapter: string };
    expect(started.device).toBe('webgpu');
    expect(started.adapter.length).toBeGreaterThan(0);
    const losses = state.losses as number[];
    for (let i = 0; i < STEPS; i++) expect(Math.abs(losses[i] - nodeLosses[i])).toBeLessThan(1e-3 * nodeLosses[i]);
    const conf = state.conformance as { name: string; ok: boolean; worst: number; index?: number[] }[];
    expect(conf.filter((c) => !c.ok)).toEqual([]);
    // every estimator draws in the page what it draws in Node from the same key
    const vals = Float32Array.from({ length: 200 }, (_, i) => Math.fround(Math.sin(i * 12.9898 + 6) * 3));
    for (const method of estimators.exampleMethods()) {
      const c = conf.find((x) => x.name === `estimator ${method}: sample`)!;
      const here = Array.from(estimators.sample(tensor(vals, [20, 10]), { method, tau: 0.5, key: random.key(11) }).argmax(-1).dataSync());
      expect(c.index, method).toEqual(here);
    }
    mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: join(OUT, 'browser-demo.png') });
    await page.close();
  }, 120_000);
});

// The demo page: controls, a live loss chart (Vega-Lite), pictures, and the training worker (worker.ts).
// Query parameters drive it without clicks (the browser test uses them):
//   ?steps=N&every=K&device=cpu|webgpu&threads=1|2&method=M&tau=T&seed=S&batch=B&trainLimit=L&testLimit=L&autostart=1&conformance=1
import embedChart from './chart.ts';
import type { FromPage, ToPage, Conformance } from './protocol.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const q = new URLSearchParams(location.search);
const num = (k: string) => (q.has(k) ? Number(q.get(k)) : undefined);

/** What the page exposes for tests and for readers of the console. */
interface PageState {
  started?: Extract<ToPage, { kind: 'started' }>;
  losses: number[];
  msPerStep: number[];
  finished: boolean;
  checkpoint?: string; // base64
  conformance?: Conformance[];
  errors: string[];
  /** the CPU GEMM's contention counters at the end (see GemmContention) */
  contention?: unknown;
}
const state: PageState = { losses: [], msPerStep: [], finished: false, errors: [] };
(globalThis as unknown as { __gapgrad: PageState }).__gapgrad = state;

const method = $<HTMLSelectElement>('method');
if (q.has('tau')) $<HTMLInputElement>('tau').value = q.get('tau')!;
if (q.has('batch')) $<HTMLInputElement>('batch').value = q.get('batch')!;
if (q.has('seed')) $<HTMLInputElement>('seed').value = q.get('seed')!;
const deviceSel = $<HTMLSelectElement>('device');
const hasGpu = 'gpu' in navigator && (await (navigator as unknown as { gpu: { requestAdapter(): Promise<unknown> } }).gpu.requestAdapter().catch(() => null)) !== null;
deviceSel.value = q.get('device') ?? (hasGpu ? 'webgpu' : 'cpu');
if (!hasGpu) deviceSel.options[0].disabled = true;

const chart = await embedChart($('chart'));
let methodsReady: () => void = () => {};
const methodsLoaded = new Promise<void>((r) => { methodsReady = r; });
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const status = (s: string) => { $('status').textContent = s; };
const fail = (s: string) => { state.errors.push(s); $('errors').textContent = state.errors.join('\n'); };
status(`Ready. ${crossOriginIsolated ? 'Cross-origin isolated: the CPU backend may use two threads.' : 'Not cross-origin isolated: the CPU backend runs one thread.'}`);

function drawGrid(canvas: HTMLCanvasElement, imgs: Float32Array, count: number, cols: number, scale: number): void {
  const ctx = canvas.getContext('2d')!;
  const rows = Math.ceil(count / cols);
  canvas.width = cols * 28 * scale; canvas.height = rows * 28 * scale;
  const img = ctx.createImageData(cols * 28, rows * 28);
  for (let k = 0; k < count; k++) {
    const ox = (k % cols) * 28, oy = Math.floor(k / cols) * 28;
    for (let i = 0; i < 784; i++) {
      const v = Math.round(255 * (1 - Math.min(1, Math.max(0, imgs[k * 784 + i]))));
      const p = 4 * ((oy + Math.floor(i / 28)) * cols * 28 + ox + (i % 28));
      img.data[p] = img.data[p + 1] = img.data[p + 2] = v; img.data[p + 3] = 255;
    }
  }
  const off = new OffscreenCanvas(img.width, img.height);
  off.getContext('2d')!.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
}

worker.onmessage = (e: MessageEvent<ToPage>) => {
  const m = e.data;
  switch (m.kind) {
    case 'methods':
      // every registered estimator (the worker's registry), the query's choice selected
      for (const name of m.methods) method.add(new Option(name, name));
      method.value = q.get('method') ?? 'gst-1.0';
      methodsReady();
      break;
    case 'started':
      state.started = m;
      status(`Training on ${m.device === 'webgpu' ? `WebGPU (${m.adapter})` : `the CPU, ${m.threads} thread${m.threads > 1 ? 's' : ''}${m.threadsReason ? ` (${m.threadsReason})` : ''}`}; ${m.stepsPerEpoch} steps per epoch…`);
      break;
    case 'steps': {
      const first = state.losses.length;
      state.losses.push(...m.losses);
      state.msPerStep.push(m.msPerStep);
      chart.add(m.losses.map((l, i) => ({ step: first + i + 1, loss: l })));
      const d = state.started!;
      status(`Step ${m.step}: loss ${m.losses.at(-1)!.toFixed(2)}, ${(1000 / m.msPerStep).toFixed(1)} steps/s on ${d.device === 'webgpu' ? `WebGPU (${d.adapter})` : `the CPU (${d.threads} thread${d.threads > 1 ? 's' : ''})`}`);
      break;
    }
    case 'pictures': {
      const both = new Float32Array(2 * m.n * 784);
      both.set(m.images.subarray(0, m.n * 784)); both.set(m.recon, m.n * 784);
      drawGrid($('recon'), both, 2 * m.n, m.n, 1);
      drawGrid($('samples'), m.samples, 64, 8, 1);
      break;
    }
    case 'finished':
      state.finished = true;
      state.contention = m.contention;
      $<HTMLButtonElement>('start').disabled = false; $<HTMLButtonElement>('stop').disabled = true;
      break;
    case 'checkpoint': {
      let s = '';
      for (let i = 0; i < m.bytes.length; i += 0x8000) s += String.fromCharCode(...m.bytes.subarray(i, i + 0x8000));
      state.checkpoint = btoa(s);
      const a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob([m.bytes as BlobPart], { type: 'application/octet-stream' }));
      a.download = 'gapgrad-vae.safetensors';
      if (!q.has('autostart')) a.click();
      break;
    }
    case 'conformance':
      state.conformance = m.results;
      for (const r of m.results) if (!r.ok) fail(`conformance: ${r.name} failed (worst ${r.worst}${r.error ? `: ${r.error}` : ''})`);
      break;
    case 'error':
      fail(m.message);
      state.finished = true;
      break;
  }
};

function send(m: FromPage): void { worker.postMessage(m); }

function begin(): void {
  state.losses = []; state.finished = false; chart.clear();
  $<HTMLButtonElement>('start').disabled = true; $<HTMLButtonElement>('stop').disabled = false; $<HTMLButtonElement>('save').disabled = false;
  send({
    kind: 'start',
    cfg: {
      method: method.value, tau: Number($<HTMLInputElement>('tau').value), device: deviceSel.value,
      batchSize: Number($<HTMLInputElement>('batch').value), seed: Number($<HTMLInputElement>('seed').value),
      trainLimit: num('trainLimit') ?? null, testLimit: num('testLimit') ?? null, epochs: 1000,
    },
    steps: num('steps'), every: num('every') ?? 5, threads: num('threads') as 1 | 2 | undefined,
  });
}
$('start').onclick = begin;
$('stop').onclick = () => send({ kind: 'stop' });
$('save').onclick = () => send({ kind: 'checkpoint' });

if (q.has('autostart')) {
  await methodsLoaded;
  begin();
  await new Promise<void>((r) => { const t = setInterval(() => { if (state.finished) { clearInterval(t); r(); } }, 50); });
  if (!state.errors.length) send({ kind: 'checkpoint' });
  if (q.has('conformance')) send({ kind: 'conformance' });
}

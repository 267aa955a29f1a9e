// The browser platform: the CPU backend's second thread as a Web Worker over the GEMM's shared WebAssembly memory.
// That needs a page that is cross-origin isolated (COOP/COEP headers: shared memory exists only there) and a
// caller that may block (Atomics.wait: allowed in a Worker, not on a page's main thread), so the thread platform
// is installed only in a Worker of an isolated page; elsewhere the CPU backend runs one thread, and cpuThreads()
// says why. The helper worker receives messages between its tasks (it sleeps with Atomics.waitAsync).
import { setThreadPlatform, threadPlatform, type WorkerThread } from '../backends/cpu/threads.ts';
import { setting } from '../engine/config.ts';

interface BrowserGlobals {
  crossOriginIsolated?: boolean;
  document?: unknown;
  WorkerGlobalScope?: unknown;
  Worker?: new (url: string, opts?: { name?: string }) => {
    postMessage(m: unknown): void; terminate(): void; onerror: ((e: unknown) => void) | null;
  };
  navigator?: { hardwareConcurrency?: number };
  Blob?: new (parts: string[], opts: { type: string }) => unknown;
  URL: { createObjectURL(b: unknown): string };
}
const g = globalThis as unknown as BrowserGlobals & { Atomics: { waitAsync?: unknown } };

// what backends/cpu/threads.ts promises in a worker's scope: workerData, post(), poll(), sleep(); inbox() on messages
const PRELUDE_HEAD = `
let workerData;
const queue = [];
let inboxHook = null;
const post = (m) => self.postMessage(m);
const poll = () => queue.shift();
const sleep = (i32, index, value) => { const r = Atomics.waitAsync(i32, index, value); return r.async ? r.value : undefined; };
let started = false;
self.onmessage = (e) => {
  if (!started) { started = true; workerData = e.data; main(); return; }
  queue.push(e.data);
  if (inboxHook) inboxHook();
};
function main() {
`;
const PRELUDE_TAIL = `
inboxHook = inbox;
}
`;

/** Why the CPU backend cannot have a second thread here ('' where it can). */
function obstacle(): string {
  if (!g.crossOriginIsolated) return 'the page is not cross-origin isolated (COOP/COEP), so no shared memory';
  if (g.document !== undefined || g.WorkerGlobalScope === undefined) return "on a page's main thread Atomics.wait is not allowed: run gapgrad in a Worker";
  if (!g.Worker || !g.Blob) return 'this Worker cannot start Workers';
  if (typeof g.Atomics.waitAsync !== 'function') return 'this browser has no Atomics.waitAsync';
  return '';
}

if (!threadPlatform() && obstacle() === '') {
  setThreadPlatform({
    name: 'browser Web Worker',
    cores: () => g.navigator?.hardwareConcurrency ?? 1,
    spawn(body: string, data: unknown): WorkerThread {
      const url = g.URL.createObjectURL(new g.Blob!([PRELUDE_HEAD, body, PRELUDE_TAIL], { type: 'text/javascript' }));
      const w = new g.Worker!(url, { name: 'gapgrad-gemm' });
      w.postMessage(data);
      let failed: (() => void) | null = null;
      w.onerror = () => failed?.();
      return {
        asyncMessages: true,
        postMessage: (m) => w.postMessage(m),
        onFailure: (fn) => { failed = fn; },
        terminate: async () => { w.terminate(); },
      };
    },
  });
}

/** How many threads the CPU backend uses here, and why not two. */
export function cpuThreads(): { threads: 1 | 2; reason: string } {
  const p = threadPlatform();
  if (p && setting('threads') === 1) return { threads: 1, reason: 'configured to one thread' };
  if (p) return p.cores() >= 2 ? { threads: 2, reason: '' } : { threads: 1, reason: 'one core' };
  return { threads: 1, reason: obstacle() || 'no thread platform' };
}

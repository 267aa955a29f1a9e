// The browser platform. The CPU backend's second thread needs a Web Worker over shared WebAssembly memory,
// which a page has only when cross-origin isolated (COOP/COEP headers), and a caller that may block
// (Atomics.wait: allowed in a Worker, not on a page's main thread). Until a thread platform is installed here,
// the CPU backend runs one thread; cpuThreads() says how many and why.
import { threadPlatform } from '../backends/cpu/threads.ts';

/** How many threads the CPU backend uses here, and why not two. */
export function cpuThreads(): { threads: 1 | 2; reason: string } {
  const p = threadPlatform();
  if (p) return { threads: p.cores() >= 2 ? 2 : 1, reason: p.cores() >= 2 ? '' : 'one core' };
  const g = globalThis as { crossOriginIsolated?: boolean; document?: unknown };
  if (!g.crossOriginIsolated) return { threads: 1, reason: 'the page is not cross-origin isolated (COOP/COEP), so no shared memory' };
  if (g.document !== undefined) return { threads: 1, reason: "on a page's main thread Atomics.wait is not allowed: run gapgrad in a Worker" };
  return { threads: 1, reason: 'no second thread in this build' };
}

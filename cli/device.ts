// Prepare a device for the CLI: the CPU backend's WASM SIMD matmul (threads from GAPGRAD_THREADS, default
// min(2, cores)) with its worker thread started; 'webgpu' initialises Dawn.
import { cpuBackend } from '../index.ts';
import { UsageError } from './args.ts';

let cpuReady: Promise<void> | null = null;

/** Build the CPU backend's matmul kernel now and wait for its worker thread. With `threads`, replace the
 *  default kernel by one on that many threads. */
export async function enableFastCpu(threads?: number): Promise<void> {
  cpuReady ??= (async () => {
    if (threads !== undefined) {
      const { createGemm } = await import('../backends/cpu/wasm/gemm.ts');
      cpuBackend.gemm = await createGemm({ threads });
      return;
    }
    const g = cpuBackend.gemm as { ready?: () => Promise<void> } | null;
    if (g?.ready) await g.ready();
  })();
  return cpuReady;
}

/** threads: the CPU backend's threads when GAPGRAD_THREADS does not say (default min(2, cores)). */
export async function useDevice(name: string, threads?: number): Promise<void> {
  const t = process.env.GAPGRAD_THREADS ? undefined : threads;
  if (name === 'cpu') return enableFastCpu(t);
  if (name === 'webgpu') {
    await enableFastCpu(t);
    const { initWebGPU } = await import('../backends/webgpu/index.ts');
    await initWebGPU();
    return;
  }
  throw new UsageError(`--device: expected 'cpu' or 'webgpu', got '${name}'`);
}

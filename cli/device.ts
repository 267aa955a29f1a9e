// Prepare a device for the CLI: the CPU backend's WASM SIMD matmul (threads from GAPGRAD_THREADS, default
// min(2, cores)) with its worker thread started; 'webgpu' initialises Dawn.
import { cpuBackend, initWebGPU } from '../node.ts';
import { setting } from '../engine/config.ts';
import { UsageError } from './args.ts';

let cpuReady: Promise<void> | null = null;

/** Build the CPU backend's matmul kernel now and wait for its worker thread. With `threads`, use that many. */
export async function enableFastCpu(threads?: 1 | 2): Promise<void> {
  cpuReady ??= cpuBackend.ready(threads);
  return cpuReady;
}

/** threads: the CPU backend's threads when GAPGRAD_THREADS does not say (default min(2, cores)). */
export async function useDevice(name: string, threads?: 1 | 2): Promise<void> {
  const t = setting('threads') !== undefined ? undefined : threads;
  if (name === 'cpu') return enableFastCpu(t);
  if (name === 'webgpu') {
    await enableFastCpu(t);
    await initWebGPU();
    return;
  }
  throw new UsageError(`--device: expected 'cpu' or 'webgpu', got '${name}'`);
}

// Prepare a device for the CLI: the CPU backend gets the WASM SIMD matmul (threads from
// GAPGRAD_THREADS, default min(2, cores)); 'webgpu' initialises Dawn.
import { cpuBackend } from '../index.ts';

let cpuReady: Promise<void> | null = null;

export async function enableFastCpu(threads?: number): Promise<void> {
  cpuReady ??= (async () => {
    const { createGemm } = await import('../backends/cpu/wasm/gemm.ts');
    const t = threads ?? (process.env.GAPGRAD_THREADS ? Number(process.env.GAPGRAD_THREADS) : undefined);
    cpuBackend.gemm = await createGemm(t ? { threads: t } : {});
  })();
  return cpuReady;
}

export async function useDevice(name: string): Promise<void> {
  if (name === 'cpu') return enableFastCpu();
  if (name === 'webgpu') {
    await enableFastCpu();
    const { initWebGPU } = await import('../backends/webgpu/index.ts');
    await initWebGPU();
    return;
  }
  throw new Error(`--device: expected 'cpu' or 'webgpu', got '${name}'`);
}

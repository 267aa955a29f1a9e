// initWebGPU's platform seam: where the WebGPU entry point comes from (an explicit GPU, the provider a
// platform module installed, navigator.gpu), its argument checks, and the install hint when Dawn's Node
// bindings (npm 'webgpu', an optional peer dependency) cannot be loaded.
import { describe, it, expect } from 'vitest';
import * as gg from '../index.ts';
import { initWebGPU, setGpuProvider } from '../backends/webgpu/index.ts';
import { dawnProvider } from '../platform/webgpu-node.ts';

// Dawn on OpenGL ES (Mesa's llvmpipe where there is no GPU), when it gives an adapter here
const dawn = await import('webgpu').then((m) => m as { create(o: string[]): GPU }, () => null);
const gles = dawn ? dawn.create(['backend=opengles']) : null;
const glesOk = !!(await gles?.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions).catch(() => null));
if (!glesOk) {
  if (process.env.CI === 'true') throw new Error('webgpu_provider tests: no OpenGL ES adapter in CI');
  console.warn('[webgpu_provider.test] the explicit-GPU test is skipped: no OpenGL ES adapter');
}

describe('initWebGPU platform seam', () => {
  it('a missing webgpu package fails with the exact install command and the Mesa hint', async () => {
    // a real failed import of a package that is not installed
    const provider = dawnProvider(() => import('gapgrad-no-such-package-webgpu' as string) as never);
    const err = await provider('auto').then(() => null, (e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toContain("optional peer dependency 'webgpu'");
    expect(err!.message).toContain('npm install webgpu');
    expect(err!.message).toContain('EGL_PLATFORM=surfaceless');
    expect(err!.message).toContain('libgl1-mesa-dri');
  });

  it('rejects a bad backend name or gpu object before any work, naming the argument and the value', async () => {
    await expect(initWebGPU({ backend: 'no such' })).rejects.toThrow(/initWebGPU: backend must be .*'vulkan'.*got "no such"/);
    await expect(initWebGPU({ gpu: {} as GPU })).rejects.toThrow(/initWebGPU: gpu must be a WebGPU entry point .*requestAdapter/);
  });

  it('without a provider, a GPU argument or navigator.gpu, the error says what to install', async () => {
    if ((globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) return; // not the situation under test
    setGpuProvider(null);
    try {
      await expect(initWebGPU()).rejects.toThrow(/no WebGPU implementation here.*npm install webgpu/);
    } finally {
      setGpuProvider(dawnProvider());
    }
  });

  it.skipIf(!glesOk)('uses a GPU passed in (here Dawn on OpenGL ES) instead of the provider', async () => {
    setGpuProvider(async () => { throw new Error('the provider must not be asked when a gpu is given'); });
    try {
      const gpu = await initWebGPU({ gpu: gles! });
      // OpenGL ES offers only a compatibility-mode adapter: the second of the two attempts on the given GPU
      expect(gpu.via).toBe('the given GPU (compatibility)');
      expect(gg.getBackend('webgpu')).toBe(gpu);
      const y = gg.tensor([1, 2, 3], null, { device: 'webgpu' }).mul(2).add(1);
      expect(Array.from(await y.data())).toEqual([3, 5, 7]);
    } finally {
      setGpuProvider(dawnProvider());
    }
  });
});

/**
 * `gapgrad/webgpu`: the WebGPU backend's entry points. In a browser `initWebGPU()` uses `navigator.gpu`; on
 * Node the package's `node` condition installs Dawn (npm `webgpu`); anywhere, `initWebGPU({ gpu })` takes a
 * GPU object and `setGpuProvider()` a provider.
 * @module webgpu
 */
export { initWebGPU, webgpuAvailable, setGpuProvider, type WebGpuOptions, type WebGpuBackend, type KernelChoices, type MatmulPlan, type UboTile, type GpuProvider, type OpenedDevice, type AdapterAttempt } from './backends/webgpu/index.ts';

// 'gapgrad/webgpu' (browsers and other platforms): the WebGPU backend's entry points. In a browser initWebGPU()
// uses navigator.gpu; anywhere, initWebGPU({ gpu }) takes a GPU object or setGpuProvider() a provider.
export { initWebGPU, webgpuAvailable, setGpuProvider, type WebGpuOptions, type WebGpuBackend, type GpuProvider, type OpenedDevice, type AdapterAttempt } from './backends/webgpu/index.ts';

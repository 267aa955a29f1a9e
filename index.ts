// gapgrad: reverse-mode autodiff in TypeScript with discrete gradient estimators as first-class ops.
import { registerBackend, hintBackend } from './engine/tensor.ts';
import { CpuBackend } from './backends/cpu/index.ts';

export const cpuBackend = new CpuBackend();
registerBackend('cpu', cpuBackend);
hintBackend('webgpu', "call 'await initWebGPU()' (exported by 'gapgrad' and 'gapgrad/webgpu') before using device 'webgpu'");

export {
  Tensor, tensor, zeros, ones, full, arange, noGrad, tidy, keep, memory, isGradEnabled,
  registerBackend, getBackend, setDefaultDevice, getDefaultDevice,
  type TensorOptions, type Device,
} from './engine/tensor.ts';
export * from './engine/ops.ts';
export type { DType, TypedArray } from './engine/dtype.ts';
export type { Backend, Buf, View, MatmulArgs } from './engine/backend.ts';
export * as random from './engine/random.ts';
export * as nn from './engine/nn.ts';
export * as optim from './engine/optim.ts';
export * as estimators from './estimators/index.ts';
export { saveBytes, loadBytes } from './engine/serialize.ts';
export { configure, type Settings } from './engine/config.ts';
export { initWebGPU, webgpuAvailable, type WebGpuOptions, type WebGpuBackend } from './backends/webgpu/index.ts';

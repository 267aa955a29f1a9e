// gapgrad: reverse-mode autodiff in TypeScript with discrete gradient estimators as first-class ops.
import { registerBackend, hintBackend } from './engine/tensor.ts';
import { CpuBackend } from './backends/cpu/index.ts';

export const cpuBackend = new CpuBackend();
registerBackend('cpu', cpuBackend);
hintBackend('webgpu', "call 'await initWebGPU()' (from the package root) before using device 'webgpu'");

export {
  Tensor, tensor, zeros, ones, full, arange, noGrad, tidy, keep, memory, isGradEnabled,
  registerBackend, getBackend, setDefaultDevice, getDefaultDevice,
  type TensorOptions, type Device,
} from './engine/tensor.ts';
// The ops users call; helpers such as sumTo, broadcastShapes, softmaxVjp, rsub and copyOf stay internal
// (the repository's own modules import them from engine/ops.ts).
export {
  // elementwise
  neg, exp, log, sqrt, abs, relu, sigmoid, tanh, square, reciprocal, sign, floor, cos, sin, isFinite,
  add, sub, mul, div, pow, maximum, minimum, lt, le, gt, ge, eq, ne, where, clamp, cast,
  zerosLike, onesLike, detach,
  // shapes
  reshape, flatten, permute, transpose, expand, unsqueeze, squeeze, slice, narrow, concat, cat, stack,
  // reductions and normalisations
  sum, mean, max, min, argmax, argmin, logsumexp, softmax, logSoftmax, cumsum,
  // products
  matmul, linear, linearRelu, type LinearAct,
  // indexing
  gather, take, oneHot,
  // losses
  binaryCrossEntropy, binaryCrossEntropyWithLogits, crossEntropy, type Reduction,
  // custom gradients
  customVjp, type CustomVjpSpec,
} from './engine/ops.ts';
export type { DType, TypedArray } from './engine/dtype.ts';
export type { Backend, Buf, View, MatmulArgs } from './engine/backend.ts';
export * as random from './engine/random.ts';
export * as nn from './engine/nn.ts';
export * as optim from './engine/optim.ts';
export * as estimators from './estimators/index.ts';
export { save, load } from './engine/serialize.ts';

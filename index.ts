/**
 * gapgrad: reverse-mode autodiff in TypeScript with discrete gradient estimators as first-class ops.
 *
 * Tensors and ops at the top level (every op is also a `Tensor` method); layers in `nn`, optimizers in
 * `optim`, counter-based random numbers in `random`, the discrete gradient estimators in `estimators`.
 * @example
 * ```ts
 * import { tensor, nn, optim, random, estimators } from 'gapgrad';
 * const model = new nn.Linear(4, 3);
 * const opt = new optim.Adam(model.parameters(), { lr: 1e-2 });
 * const z = estimators.sample(model.forward(tensor([[1, 0, 0, 1]])), { method: 'gst-1.0', key: random.key(0) });
 * z.mul(tensor([[1, 2, 3]])).sum().backward();
 * opt.step();
 * ```
 * @module gapgrad
 */
import { registerBackend, hintBackend } from './engine/tensor.ts';
import { CpuBackend } from './backends/cpu/index.ts';

/** The CPU backend instance registered as device 'cpu' (typed arrays, WebAssembly SIMD kernels). */
export const cpuBackend = new CpuBackend();
registerBackend('cpu', cpuBackend);
hintBackend('webgpu', "call 'await initWebGPU()' (exported by 'gapgrad' and 'gapgrad/webgpu') before using device 'webgpu'");

export {
  Tensor, tensor, zeros, ones, full, arange, noGrad, tidy, keep, memory, isGradEnabled,
  registerBackend, getBackend, setDefaultDevice, getDefaultDevice,
  type TensorOptions, type Device, type Nested,
} from './engine/tensor.ts';
// The ops users call; helpers such as sumTo, broadcastShapes, softmaxVjp, rsub and copyOf stay internal
// (the repository's own modules import them from engine/ops.ts).
export {
  // elementwise
  neg, exp, log, expm1, log1p, softplus, sqrt, abs, relu, sigmoid, tanh, square, reciprocal, sign, floor, cos, sin, isFinite,
  add, sub, mul, div, pow, maximum, minimum, lt, le, gt, ge, eq, ne, where, clamp, cast,
  zerosLike, onesLike, detach, clone,
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
export type {
  Backend, Buf, View, MatmulArgs, MemoryStats, AdamHyper, HostGemm, PackedOperand, FusedEstimatorKind, FusedEstimatorArgs, FusedEstimatorSample,
} from './engine/backend.ts';
export type { UnaryOp, BinaryOp } from './engine/elementwise.ts';
export type { CpuBackend, FastGemm } from './backends/cpu/index.ts';
/** Counter-based random numbers (Philox): keys, draws and seeded generators, bit-identical across backends. */
export * as random from './engine/random.ts';
/** Layers with PyTorch's parameter names and default initialisation. */
export * as nn from './engine/nn.ts';
/** Optimizers with PyTorch's update rules, gradient clipping and a plateau scheduler. */
export * as optim from './engine/optim.ts';
/** Discrete gradient estimators (straight-through, Gumbel, Gumbel-Rao, ReinMax, GST) as differentiable samplers. */
export * as estimators from './estimators/index.ts';
export { saveBytes, loadBytes } from './engine/serialize.ts';
export { configure, type Settings } from './engine/config.ts';
export {
  initWebGPU, webgpuAvailable, type WebGpuOptions, type WebGpuBackend, type KernelChoices, type MatmulPlan, type UboTile,
} from './backends/webgpu/index.ts';

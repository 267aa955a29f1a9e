// 'gapgrad/webgpu' on Node: installs Dawn (the optional peer 'webgpu', loaded when initWebGPU runs) as the provider.
import './platform/webgpu-node.ts';

export * from './webgpu.ts';

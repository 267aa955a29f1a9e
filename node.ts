// gapgrad on Node: everything the package root exports, plus safetensors files (save/load) and the Node
// platform (GAPGRAD_* environment settings, the CPU backend's worker thread, Dawn for WebGPU).
import './platform/node.ts';
import './platform/webgpu-node.ts';

export * from './index.ts';
export { save, load } from './platform/files.ts';

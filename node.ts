/**
 * `gapgrad` on Node (the package's `node` condition): everything the platform-neutral root exports, plus
 * safetensors files ({@link save}/{@link load}, atomic writes) and the Node platform: `GAPGRAD_*` environment
 * settings, the CPU backend's second thread (worker_threads) and Dawn (the optional peer `webgpu`) behind
 * `initWebGPU()`.
 * @module node
 */
import './platform/node.ts';
import './platform/webgpu-node.ts';

export * from './index.ts';
export { save, load } from './platform/files.ts';

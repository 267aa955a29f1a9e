// Every test file runs with the Node platform installed (environment settings, worker threads, files)
// and Dawn (npm 'webgpu') as the WebGPU provider behind initWebGPU.
import '../platform/node.ts';
import '../platform/webgpu-node.ts';

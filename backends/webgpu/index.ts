// Device creation for the WebGPU backend, the same on every platform.
//
// Where the WebGPU entry point (GPU) comes from, in order:
//  1. initWebGPU({ gpu }): the caller's (a browser's navigator.gpu, Dawn's create([...]), ...);
//  2. the provider a platform module installed with setGpuProvider (Node: platform/webgpu-node.ts, which
//     loads Dawn's bindings, npm 'webgpu', and tries the platform default adapter, then OpenGL ES);
//  3. navigator.gpu where it exists (browsers).
// The adapter attempts and the device limits are shared by every platform (open.ts); nothing here
// imports 'webgpu' or reads Node's environment.
import { registerBackend } from '../../engine/tensor.ts';
import { WebGpuBackend } from './backend.ts';
import { setting } from '../../engine/config.ts';
import { adapterAttempts, openFirst, type GpuProvider, type OpenedDevice } from './open.ts';

export type { WebGpuBackend, KernelChoices, MatmulPlan, UboTile } from './backend.ts';
export type { GpuProvider, OpenedDevice, AdapterAttempt } from './open.ts';

let provider: GpuProvider | null = null;
let backendPromise: Promise<WebGpuBackend> | null = null;
let lastFailure = '';

/**
 * Install (or, with null, remove) the platform's way of opening a WebGPU device; initWebGPU uses it when
 * no `gpu` is passed. On Node, importing platform/webgpu-node.ts installs Dawn's bindings (npm 'webgpu').
 */
export function setGpuProvider(p: GpuProvider | null): void {
  provider = p;
}

function describe(info: GPUAdapterInfo | undefined): { name: string; software: boolean } {
  const fields = info ? [info.vendor, info.architecture, info.device, info.description].filter((s) => s) : [];
  const name = fields.join(' / ') || 'unknown adapter';
  // software rasterisers: kernels without workgroup memory run much faster there
  const software = /llvmpipe|lavapipe|softpipe|swiftshader/i.test(name) || !!(info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter;
  return { name, software };
}

const NO_WEBGPU =
  'initWebGPU: no WebGPU implementation here: no GPU was passed (initWebGPU({ gpu })), no platform provider is ' +
  'installed, and navigator.gpu does not exist. On Node: install Dawn\'s bindings with `npm install webgpu` and ' +
  'import gapgrad\'s Node entry (which imports platform/webgpu-node and installs them); in a browser: use one with WebGPU enabled.';

async function open(choice: string, gpu: GPU | undefined): Promise<OpenedDevice> {
  if (gpu) return openFirst(adapterAttempts(() => gpu, 'the given GPU'));
  if (provider) return provider(choice);
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!nav) throw new Error(NO_WEBGPU);
  if (choice !== 'auto' && choice !== 'default') {
    throw new Error(`initWebGPU: backend '${choice}' picks one of Dawn's backends on Node; with navigator.gpu only 'auto' or 'default' apply`);
  }
  return openFirst(adapterAttempts(() => nav, 'navigator.gpu'), 'The browser offers WebGPU but no adapter: check that hardware acceleration is enabled.');
}

async function createBackend(choice: string, gpu: GPU | undefined): Promise<WebGpuBackend> {
  const { adapter, device, via } = await open(choice, gpu);
  const info = { ...describe(adapter.info), maxTexture: Number(adapter.limits.maxTextureDimension2D), adapter: adapter.info };
  device.lost.then((l) => {
    if (l.reason !== 'destroyed') console.error(`gapgrad webgpu: device lost (${l.reason}): ${l.message}`);
  });
  const backend = new WebGpuBackend(device, info);
  backend.via = via;
  return backend;
}

/** Options of initWebGPU and webgpuAvailable. */
export interface WebGpuOptions {
  /**
   * Which adapter backend a platform provider tries: 'auto' (default: the platform default, then OpenGL ES
   * on Node), 'default', or a Dawn backend name such as 'vulkan', 'metal', 'd3d12', 'opengles' (Node only).
   * Unset: the webgpuBackend setting (GAPGRAD_WEBGPU_BACKEND on Node).
   */
  backend?: string;
  /** A WebGPU entry point to use instead of the platform's (e.g. navigator.gpu, or Dawn's create([...])). */
  gpu?: GPU;
}

/**
 * Create the WebGPU device (once per program or page) and register it as device 'webgpu'.
 * Later calls return the same backend (their options are ignored once it exists); after a failure a
 * later call tries again.
 *
 * @example
 * const gpu = await initWebGPU();
 * const x = tensor([1, 2, 3], null, { device: 'webgpu' });
 */
export function initWebGPU(opts: WebGpuOptions = {}): Promise<WebGpuBackend> {
  if (!backendPromise) {
    if (opts.backend !== undefined && (typeof opts.backend !== 'string' || !/^[a-z0-9_-]+$/i.test(opts.backend))) {
      return Promise.reject(new Error(`initWebGPU: backend must be 'auto', 'default' or a Dawn backend name such as 'vulkan', 'metal', 'd3d12', 'opengles', got ${JSON.stringify(opts.backend)}`));
    }
    if (opts.gpu !== undefined && typeof (opts.gpu as { requestAdapter?: unknown } | null)?.requestAdapter !== 'function') {
      return Promise.reject(new Error(`initWebGPU: gpu must be a WebGPU entry point (an object with requestAdapter(), such as navigator.gpu), got ${String(opts.gpu)}`));
    }
    const choice = (opts.backend ?? setting('webgpuBackend') ?? 'auto').toLowerCase();
    backendPromise = createBackend(choice, opts.gpu).then(
      (b) => {
        registerBackend('webgpu', b);
        return b;
      },
      (e: Error) => {
        lastFailure = e.message;
        backendPromise = null; // a later call may try again (e.g. with another backend option)
        throw e;
      },
    );
  }
  return backendPromise;
}

/** Whether a WebGPU device can be created here, and why not (creates and registers it when it can). */
export async function webgpuAvailable(opts: WebGpuOptions = {}): Promise<{ ok: boolean; reason: string; adapter?: string }> {
  try {
    const b = await initWebGPU(opts);
    return { ok: true, reason: `${b.adapterName}${b.isSoftware ? ' (software)' : ''}`, adapter: b.adapterName };
  } catch (e) {
    return { ok: false, reason: (e as Error).message || lastFailure };
  }
}

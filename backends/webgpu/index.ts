// Device creation for the WebGPU backend (Dawn's Node bindings, npm 'webgpu').
//
// Adapter choice: the platform default (Vulkan / Metal / D3D12) first, then OpenGL ES through EGL
// (which is how Mesa's llvmpipe gives a software device on a machine without a GPU).
// GAPGRAD_WEBGPU_BACKEND (or initWebGPU({backend})) = default | vulkan | opengles | metal | d3d12 | ...
// picks one explicitly.
import { registerBackend } from '../../engine/tensor.ts';
import { WebGpuBackend } from './backend.ts';

export { WebGpuBackend } from './backend.ts';

// Every GPU object create() returned stays referenced for the life of the process: if Dawn's instance
// is garbage-collected while a device lives, Node crashes inside Dawn.
const instances: unknown[] = [];
let backendPromise: Promise<WebGpuBackend> | null = null;
let lastFailure = '';

const INSTALL_HINT =
  'On a machine without a GPU, install Mesa\'s software OpenGL ES (Debian/Ubuntu: ' +
  'apt-get install -y libegl1 libgles2 libgl1-mesa-dri) and run with EGL_PLATFORM=surfaceless ' +
  '(set automatically when unset); or set GAPGRAD_WEBGPU_BACKEND to one of default, vulkan, opengles.';

interface Attempt {
  label: string;
  createOpts: string[];
  featureLevel?: 'compatibility';
}

function attemptsFor(choice: string): Attempt[] {
  const gles: Attempt = { label: 'OpenGL ES (EGL)', createOpts: ['backend=opengles'], featureLevel: 'compatibility' };
  const dflt: Attempt[] = [
    { label: 'platform default', createOpts: [] },
    { label: 'platform default (compatibility)', createOpts: [], featureLevel: 'compatibility' },
  ];
  switch (choice) {
    case 'auto': case '': return [...dflt, gles];
    case 'default': return dflt;
    case 'opengles': case 'gles': case 'gl': case 'opengl': return [gles];
    default: return [
      { label: choice, createOpts: [`backend=${choice}`] },
      { label: `${choice} (compatibility)`, createOpts: [`backend=${choice}`], featureLevel: 'compatibility' },
    ];
  }
}

function describe(info: GPUAdapterInfo | undefined): { name: string; software: boolean } {
  const fields = info ? [info.vendor, info.architecture, info.device, info.description].filter((s) => s) : [];
  const name = fields.join(' / ') || 'unknown adapter';
  // software rasterisers: kernels without workgroup memory run much faster there
  const software = /llvmpipe|lavapipe|softpipe|swiftshader/i.test(name) || !!(info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter;
  return { name, software };
}

async function createBackend(choice: string): Promise<WebGpuBackend> {
  let mod: { create: (opts: string[]) => GPU; globals: object };
  try {
    mod = (await import('webgpu')) as never;
  } catch (e) {
    throw new Error(`initWebGPU: the npm package 'webgpu' (Dawn for Node) could not be loaded: ${(e as Error).message}`);
  }
  const tried: string[] = [];
  const gpus = new Map<string, GPU>();
  for (const a of attemptsFor(choice)) {
    if (a.createOpts.includes('backend=opengles')) process.env.EGL_PLATFORM ??= 'surfaceless';
    const key = a.createOpts.join(',');
    let gpu = gpus.get(key);
    try {
      if (!gpu) {
        gpu = mod.create(a.createOpts);
        instances.push(gpu);
        gpus.set(key, gpu);
      }
      const adapter = await gpu.requestAdapter(a.featureLevel ? ({ featureLevel: a.featureLevel } as GPURequestAdapterOptions) : undefined);
      if (!adapter) { tried.push(`${a.label}: no adapter`); continue; }
      const L = adapter.limits;
      const want = (name: keyof GPUSupportedLimits, v: number) => Math.min(v, Number(L[name]));
      const device = await adapter.requestDevice({
        requiredLimits: {
          maxComputeInvocationsPerWorkgroup: want('maxComputeInvocationsPerWorkgroup', 256),
          maxComputeWorkgroupSizeX: want('maxComputeWorkgroupSizeX', 256),
          maxComputeWorkgroupSizeY: want('maxComputeWorkgroupSizeY', 256),
          maxStorageBuffersPerShaderStage: want('maxStorageBuffersPerShaderStage', 8),
          maxStorageTexturesPerShaderStage: want('maxStorageTexturesPerShaderStage', 4),
          maxTextureDimension2D: Number(L.maxTextureDimension2D),
          maxBufferSize: Number(L.maxBufferSize),
          maxStorageBufferBindingSize: Number(L.maxStorageBufferBindingSize),
          maxUniformBufferBindingSize: Number(L.maxUniformBufferBindingSize),
        },
      });
      instances.push(adapter, device);
      const info = { ...describe(adapter.info), maxTexture: Number(L.maxTextureDimension2D), adapter: adapter.info };
      device.lost.then((l) => {
        if (l.reason !== 'destroyed') console.error(`gapgrad webgpu: device lost (${l.reason}): ${l.message}`);
      });
      const backend = new WebGpuBackend(device, info);
      backend.via = a.label;
      return backend;
    } catch (e) {
      tried.push(`${a.label}: ${(e as Error).message}`);
    }
  }
  throw new Error(`initWebGPU: no WebGPU adapter found (tried ${tried.join('; ')}). ${INSTALL_HINT}`);
}

/**
 * Create the WebGPU device (once per process) and register it as device 'webgpu'.
 * opts.backend (or env GAPGRAD_WEBGPU_BACKEND): 'auto' (default), 'default', 'vulkan', 'opengles', ...
 */
export function initWebGPU(opts: { backend?: string } = {}): Promise<WebGpuBackend> {
  if (!backendPromise) {
    const choice = (opts.backend ?? process.env.GAPGRAD_WEBGPU_BACKEND ?? 'auto').toLowerCase();
    backendPromise = createBackend(choice).then(
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
export async function webgpuAvailable(opts: { backend?: string } = {}): Promise<{ ok: boolean; reason: string; adapter?: string }> {
  try {
    const b = await initWebGPU(opts);
    return { ok: true, reason: `${b.adapterName}${b.isSoftware ? ' (software)' : ''}`, adapter: b.adapterName };
  } catch (e) {
    return { ok: false, reason: (e as Error).message || lastFailure };
  }
}

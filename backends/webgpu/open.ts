// Opening a WebGPU device, shared by every platform: the adapter attempts on one entry point and the
// device limits gapgrad's kernels use. initWebGPU (index.ts) and the platform providers
// (platform/webgpu-node.ts) build on these.

/** One way to reach an adapter: a label for messages, the WebGPU entry point, the adapter request options. */
export interface AdapterAttempt {
  label: string;
  /** The entry point; called inside the attempt, so a failure to create it counts as that attempt failing. */
  gpu: () => GPU;
  options?: GPURequestAdapterOptions;
}

/** An adapter, the device created on it with the limits gapgrad's kernels use, and the attempt that won. */
export interface OpenedDevice {
  adapter: GPUAdapter;
  device: GPUDevice;
  via: string;
}

/**
 * Opens a device for initWebGPU when the caller passes no `gpu`. `backend` is the requested adapter
 * backend ('auto' unless opts.backend or the webgpuBackend setting say otherwise), lower case.
 */
export type GpuProvider = (backend: string) => Promise<OpenedDevice>;

// Every adapter and device opened stays referenced for the program's lifetime: with Dawn, if the
// instance is garbage-collected while a device lives, Node crashes inside Dawn.
const instances: unknown[] = [];

/** The attempts on one entry point: its default adapter, then a compatibility-mode adapter. */
export function adapterAttempts(gpu: () => GPU, label: string): AdapterAttempt[] {
  return [
    { label, gpu },
    { label: `${label} (compatibility)`, gpu, options: { featureLevel: 'compatibility' } as GPURequestAdapterOptions },
  ];
}

/** The device on an adapter, with the limits the kernels use (larger workgroups, textures, buffers as the adapter allows). */
export function requestDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const L = adapter.limits;
  const want = (name: keyof GPUSupportedLimits, v: number) => Math.min(v, Number(L[name]));
  return adapter.requestDevice({
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
}

/**
 * The first attempt that yields an adapter and a device; otherwise an error listing every attempt's
 * failure, followed by `hint` (what to install or set on this platform).
 */
export async function openFirst(attempts: AdapterAttempt[], hint = ''): Promise<OpenedDevice> {
  const tried: string[] = [];
  for (const a of attempts) {
    try {
      const adapter = await a.gpu().requestAdapter(a.options);
      if (!adapter) { tried.push(`${a.label}: no adapter`); continue; }
      const device = await requestDevice(adapter);
      instances.push(adapter, device);
      return { adapter, device, via: a.label };
    } catch (e) {
      tried.push(`${a.label}: ${(e as Error).message}`);
    }
  }
  throw new Error(`initWebGPU: no WebGPU adapter found (tried ${tried.join('; ')}).${hint ? ' ' + hint : ''}`);
}

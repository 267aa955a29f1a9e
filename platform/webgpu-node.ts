// The Node WebGPU platform: Dawn's Node bindings (npm 'webgpu', an optional peer dependency) behind
// initWebGPU. Importing this module installs the provider; 'webgpu' itself is loaded only when
// initWebGPU runs, so an install without it works until WebGPU is asked for, and then says what to install.
//
// Adapter choice: the platform default (Vulkan / Metal / D3D12) first, then OpenGL ES through EGL (how
// Mesa's llvmpipe gives a software device on a machine without a GPU; EGL_PLATFORM=surfaceless is set
// for it when unset). GAPGRAD_WEBGPU_BACKEND (or initWebGPU({ backend })) = default | vulkan | opengles |
// metal | d3d12 | ... picks one explicitly.
import './node.ts'; // settings from the environment (GAPGRAD_WEBGPU_BACKEND, ...)
import { setGpuProvider } from '../backends/webgpu/index.ts';
import { adapterAttempts, openFirst, type AdapterAttempt, type GpuProvider } from '../backends/webgpu/open.ts';

/** What gapgrad uses of the 'webgpu' package. */
export interface Dawn {
  create(options: string[]): GPU;
}

/** What to do on a machine without a GPU. */
export const MESA_HINT =
  'On a machine without a GPU, install Mesa\'s software OpenGL ES (Debian/Ubuntu: ' +
  'apt-get install -y libegl1 libgles2 libgl1-mesa-dri) and run with EGL_PLATFORM=surfaceless ' +
  '(set automatically when unset); or set GAPGRAD_WEBGPU_BACKEND to one of default, vulkan, opengles.';

// Dawn instances stay referenced for the life of the process: if one is garbage-collected while a
// device lives, Node crashes inside Dawn.
const instances: GPU[] = [];

function attemptsFor(dawn: Dawn, choice: string): AdapterAttempt[] {
  const gpus = new Map<string, GPU>();
  const entry = (createOpts: string[]) => (): GPU => {
    if (createOpts.includes('backend=opengles')) process.env.EGL_PLATFORM ??= 'surfaceless';
    const key = createOpts.join(',');
    let gpu = gpus.get(key);
    if (!gpu) {
      gpu = dawn.create(createOpts);
      instances.push(gpu);
      gpus.set(key, gpu);
    }
    return gpu;
  };
  const compatibility = { featureLevel: 'compatibility' } as GPURequestAdapterOptions;
  const gles: AdapterAttempt = { label: 'OpenGL ES (EGL)', gpu: entry(['backend=opengles']), options: compatibility };
  const dflt = adapterAttempts(entry([]), 'platform default');
  switch (choice) {
    case 'auto': case '': return [...dflt, gles];
    case 'default': return dflt;
    case 'opengles': case 'gles': case 'gl': case 'opengl': return [gles];
    default: return adapterAttempts(entry([`backend=${choice}`]), choice);
  }
}

/**
 * The Dawn provider: loads the bindings with `load` (default: `import('webgpu')`) on first use and opens
 * the first adapter of the attempts for the requested backend.
 */
export function dawnProvider(load: () => Promise<Dawn> = () => import('webgpu')): GpuProvider {
  return async (choice) => {
    let dawn: Dawn;
    try {
      dawn = await load();
    } catch (e) {
      throw new Error(
        `initWebGPU: the optional peer dependency 'webgpu' (Dawn's WebGPU for Node) could not be loaded ` +
        `(${(e as Error).message}). Install it with: npm install webgpu. ${MESA_HINT}`,
      );
    }
    return openFirst(attemptsFor(dawn, choice), MESA_HINT);
  };
}

setGpuProvider(dawnProvider());

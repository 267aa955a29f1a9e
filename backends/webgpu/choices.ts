// Kernel choices of the WebGPU backend: every one derives from a single declared property of the device,
// whether its adapter is a software rasteriser (WebGpuBackend.isSoftware), and the explicit settings
// (engine/config.ts). Programs read these choices and nothing else about the device.
//
// Why software adapters differ: on llvmpipe storage-buffer loads at per-invocation addresses run as scalar
// loops while texel fetches and uniform-block loads are vectorised, whole-vec4 stores are several times
// faster than scalar ones, vector integer division runs lane by lane, and workgroup barriers are slow.
import { setting } from '../../engine/config.ts';

/** The matmul kernel family and its tile (see programs/matmul.ts). */
export interface MatmulPlan {
  /**
   * 'tiled': shared-memory tiles (real GPUs); 'reg': register-blocked, storage buffers; 'tex': operands
   * packed into textures; 'ubo': A through uniform blocks and B through a linear texture, the 'tex'
   * kernel where a shape does not fit ('reg' for products under 2^17 flops).
   */
  kind: 'reg' | 'tiled' | 'tex' | 'ubo';
  tm: number; // reg/tex (and ubo's 'reg' fallback): outputs per invocation (rows, multiple of 4)
  tn: number; // reg/tex (and ubo's 'reg' fallback): outputs per invocation (cols, multiple of 4)
  wg?: number; // reg/tex (and ubo's 'reg' fallback): workgroup side (wg x wg invocations), default 8
}

/** The 'ubo' matmul tile limits (see uboPlan in programs/matmul.ts). */
export interface UboTile {
  /** at most this many rows of C per invocation (the count is chosen per shape, least row padding) */
  tm: number;
  /** columns per invocation in quads (4 columns); 0: chosen per shape (2, 3 or 4, least column padding) */
  tq: number;
  /** invocations per workgroup */
  wgx: number;
}

/** What the programs read to pick their kernels; WebGpuBackend holds these as properties. */
export interface KernelChoices {
  /** The adapter is a software rasteriser (llvmpipe, lavapipe, SwiftShader, a fallback adapter). */
  readonly isSoftware: boolean;
  /** Matmul kernel (setting webgpuMatmul, else 'ubo' on software adapters and 'tiled' elsewhere). */
  matmulPlan: MatmulPlan;
  /** Tile limits of the 'ubo' matmul. */
  uboTile: UboTile;
  /** Float32 operands of elementwise, reduction and row-packing kernels read through texture copies (software adapters unless webgpuTexInputs is false). */
  texInputs: boolean;
  /** Index arithmetic of elementwise kernels through float32 division below 2^21 elements (software adapters unless webgpuFastDiv is false). */
  fastDiv: boolean;
  /** Elementwise kernels producing a new buffer store 4 elements per invocation as one vec4 (software adapters). */
  vecStores: boolean;
  /** Adam reads its four operands through texture copies and stores vec4s (software adapters). */
  texAdam: boolean;
}

/** The matmul plans by kind; 'tiled' ignores its tile fields. */
export const MATMUL_PLANS: Readonly<Record<MatmulPlan['kind'], Readonly<MatmulPlan>>> = {
  tiled: { kind: 'tiled', tm: 4, tn: 4 },
  reg: { kind: 'reg', tm: 8, tn: 16 },
  tex: { kind: 'tex', tm: 16, tn: 8 },
  ubo: { kind: 'ubo', tm: 8, tn: 8, wg: 8 },
};

/** Every kernel choice for a device, from whether it is a software adapter and the explicit settings. */
export function chooseKernels(isSoftware: boolean): Omit<KernelChoices, 'isSoftware'> {
  return {
    matmulPlan: { ...MATMUL_PLANS[setting('webgpuMatmul') ?? (isSoftware ? 'ubo' : 'tiled')] },
    uboTile: { tm: 20, tq: 0, wgx: 8 },
    texInputs: isSoftware && (setting('webgpuTexInputs') ?? true),
    fastDiv: isSoftware && (setting('webgpuFastDiv') ?? true),
    vecStores: isSoftware,
    texAdam: isSoftware,
  };
}

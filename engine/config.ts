// Runtime settings: the one place the engine and its backends read configuration from.
//
// A setting comes from `configure({...})` when the caller gave it, else from the environment source the
// platform installed (on Node: the environment variables, see platform/node.ts), else its default. Every value is
// validated where it is read, with an error that names the setting, the value and what is allowed.
// Nothing here reads the environment itself: in a browser no source exists and only configure() counts.

/** Settings of the CPU and WebGPU backends. Each has an environment variable on Node (in brackets). */
export interface Settings {
  /** Threads of the CPU backend's float32 GEMM: 1 or 2 (GAPGRAD_THREADS; default min(2, cores)). */
  threads?: 1 | 2;
  /** MiB the CPU backend may keep in the GEMM's WebAssembly memory, 0 to 2048 (GAPGRAD_WASM_HEAP_MB; 256). */
  wasmHeapMB?: number;
  /** MiB of released arrays the CPU backend keeps for reuse, 0 turns pooling off (GAPGRAD_CPU_POOL_MB; 256). */
  cpuPoolMB?: number;
  /** Dawn backend for initWebGPU: 'auto', 'default', 'vulkan', 'opengles', ... (GAPGRAD_WEBGPU_BACKEND; 'auto'). */
  webgpuBackend?: string;
  /** Force the WebGPU matmul kernel: 'tiled', 'ubo', 'reg' or 'tex' (GAPGRAD_WEBGPU_MATMUL; chosen per adapter). */
  webgpuMatmul?: 'tiled' | 'ubo' | 'reg' | 'tex';
  /** Software adapters: elementwise kernels read float32 inputs through textures (GAPGRAD_WEBGPU_TEXIN=0 turns off). */
  webgpuTexInputs?: boolean;
  /** Software adapters: index arithmetic through float32 division (GAPGRAD_WEBGPU_FASTDIV=0 turns off). */
  webgpuFastDiv?: boolean;
  /** Log WebGPU dispatches (GAPGRAD_WEBGPU_DEBUG=1). */
  webgpuDebug?: boolean;
}

type Key = keyof Settings;

interface Rule {
  env: string;
  parse(raw: string): unknown; // throws with `allowed` text on a bad value
  allowed: string;
}

const bool = (raw: string): boolean => {
  if (raw === '1' || raw === 'true') return true;
  if (raw === '0' || raw === 'false') return false;
  throw new Error();
};
const numberIn = (lo: number, hi: number) => (raw: string): number => {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v < lo || v > hi) throw new Error();
  return v;
};
const oneOf = <T extends string>(...vals: T[]) => (raw: string): T => {
  const v = raw.toLowerCase() as T;
  if (!vals.includes(v)) throw new Error();
  return v;
};

const RULES: Record<Key, Rule> = {
  threads: { env: 'GAPGRAD_THREADS', parse: (r) => Number(oneOf('1', '2')(r)), allowed: '1 or 2' },
  wasmHeapMB: { env: 'GAPGRAD_WASM_HEAP_MB', parse: numberIn(0, 2048), allowed: 'a number of MiB from 0 to 2048' },
  cpuPoolMB: { env: 'GAPGRAD_CPU_POOL_MB', parse: numberIn(0, 65536), allowed: 'a number of MiB from 0 to 65536' },
  webgpuBackend: {
    env: 'GAPGRAD_WEBGPU_BACKEND',
    parse: (r) => { if (!/^[a-z0-9_-]+$/i.test(r)) throw new Error(); return r.toLowerCase(); },
    allowed: "'auto', 'default' or a Dawn backend name such as 'vulkan', 'metal', 'd3d12', 'opengles'",
  },
  webgpuMatmul: { env: 'GAPGRAD_WEBGPU_MATMUL', parse: oneOf('tiled', 'ubo', 'reg', 'tex'), allowed: "'tiled', 'ubo', 'reg' or 'tex'" },
  webgpuTexInputs: { env: 'GAPGRAD_WEBGPU_TEXIN', parse: bool, allowed: '0, 1, true or false' },
  webgpuFastDiv: { env: 'GAPGRAD_WEBGPU_FASTDIV', parse: bool, allowed: '0, 1, true or false' },
  webgpuDebug: { env: 'GAPGRAD_WEBGPU_DEBUG', parse: bool, allowed: '0, 1, true or false' },
};

let given: Settings = {};
let envSource: ((name: string) => string | undefined) | null = null;

/**
 * Set runtime settings for this program or page; they take precedence over environment variables.
 * Call before the first operation on a device (backends read their settings when they start).
 *
 * @example
 * configure({ threads: 1, wasmHeapMB: 64 });
 */
export function configure(settings: Settings): void {
  for (const [k, v] of Object.entries(settings)) {
    const rule = RULES[k as Key];
    if (!rule) throw new Error(`configure: unknown setting '${k}'; allowed: ${Object.keys(RULES).join(', ')}`);
    if (v === undefined) continue;
    try {
      rule.parse(String(v));
    } catch {
      throw new Error(`configure: ${k} must be ${rule.allowed}, got ${JSON.stringify(v)}`);
    }
  }
  given = { ...given, ...settings };
}

/** Forget every value given to configure() (tests). */
export function resetConfiguration(): void { given = {}; }

/** Where unset settings are looked up by their environment-variable name (the Node platform installs its environment variables). */
export function setEnvironmentSource(source: ((name: string) => string | undefined) | null): void {
  envSource = source;
}

/** The value of one setting: configure()'s, else the environment's (validated), else undefined (the default applies). */
export function setting<K extends Key>(key: K): Settings[K] | undefined {
  if (given[key] !== undefined) {
    const rule = RULES[key];
    return rule.parse(String(given[key])) as Settings[K];
  }
  const rule = RULES[key];
  const raw = envSource?.(rule.env);
  if (raw === undefined || raw === '') return undefined;
  try {
    return rule.parse(raw) as Settings[K];
  } catch {
    throw new Error(`${rule.env}: expected ${rule.allowed}, got '${raw}'`);
  }
}

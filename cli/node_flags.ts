// V8 flags the gapgrad processes (CLI, sweep workers, benchmarks) start Node with.
//
// Relaxed SIMD (f32x4.relaxed_madd, a fused multiply-add) makes the CPU matmul ~10-25 % faster. It
// ships enabled from V8 11.4 (Node 21+); Node 20's V8 11.3 has it only behind a flag. The flag must
// be given when the process starts: set at run time (v8.setFlagsFromString) with worker threads
// alive it hung Node 20 intermittently, and Node rejects V8 flags in a Worker's execArgv. V8 flags
// are process-wide, so the matmul worker thread gets it too.
// GAPGRAD_RELAXED_SIMD=0 opts out (plain mul + add kernels; results then differ in the last bits).

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// the package's bin script, which child runs (sweeps, reproduce) start: ../bin from the sources (cli/), ../../bin
// from the build (dist/cli/)
const HERE = dirname(fileURLToPath(import.meta.url));
export const GAPGRAD_BIN = [join(HERE, '..', 'bin', 'gapgrad.js'), join(HERE, '..', '..', 'bin', 'gapgrad.js')].find((p) => existsSync(p)) ?? join(HERE, '..', 'bin', 'gapgrad.js');

export const RELAXED_SIMD_FLAG = '--experimental-wasm-relaxed-simd';

/** The flags this Node needs on its command line for gapgrad's fast paths ([] when none). */
export function nodeFlags(env: NodeJS.ProcessEnv = process.env, v8Version: string = process.versions.v8): string[] {
  if (env.GAPGRAD_RELAXED_SIMD === '0') return [];
  const [major, minor] = v8Version.split('.').map(Number);
  // 11.0-11.3 implement the final relaxed-SIMD opcodes behind the flag; 11.4+ enable them by default
  return major === 11 && minor <= 3 ? [RELAXED_SIMD_FLAG] : [];
}

/** Flags from nodeFlags() that this process was not started with. */
export function missingNodeFlags(): string[] {
  return nodeFlags().filter((f) => !process.execArgv.includes(f));
}

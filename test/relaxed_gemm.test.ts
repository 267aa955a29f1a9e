// The relaxed-SIMD (fused multiply-add) matmul kernels, in a child process started the way the CLI
// starts (bin/gapgrad.js adds cli/node_flags.ts's flags), since the V8 flag must be set at start-up.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nodeFlags, RELAXED_SIMD_FLAG } from '../cli/node_flags.ts';

const child = fileURLToPath(new URL('./relaxed_gemm.child.ts', import.meta.url));

describe('relaxed-SIMD matmul', () => {
  it('asks for the flag exactly on V8 11.0-11.3, and never when GAPGRAD_RELAXED_SIMD=0', () => {
    expect(nodeFlags({}, '11.3.244.8-node.33')).toEqual([RELAXED_SIMD_FLAG]);
    expect(nodeFlags({}, '11.8.172.17')).toEqual([]);
    expect(nodeFlags({}, '12.4.254.21-node.33')).toEqual([]);
    expect(nodeFlags({ GAPGRAD_RELAXED_SIMD: '0' }, '11.3.244.8')).toEqual([]);
  });

  it('with the CLI flags, both threads use fused multiply-add and stay within the float32 dot-product bound', () => {
    const r = spawnSync(process.execPath, [...nodeFlags(), '--import', 'tsx', child], { encoding: 'utf8', timeout: 120000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.threads).toBe(2);
    // relaxed madd is available with the flags on every Node this package supports (>= 20)
    expect(out.relaxed).toBe(true);
    expect(out.cases).toBe(24);
    // |c - ref| <= gamma_k sum |a b| (one rounding per multiply-add at most; fused rounds less)
    expect(out.worst).toBeLessThanOrEqual(1);
  }, 130000);
});

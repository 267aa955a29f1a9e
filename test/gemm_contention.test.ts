// The 2-thread GEMM with busy-looping processes beside it (more runnable threads than cores): the worker loses
// its core mid-spin and mid-job, the caller backs off and withdraws jobs the worker has not started. Whatever
// happens, every product must be bit-identical to one thread's, and nothing may hang or fail. (How fast this is
// is what `gapgrad bench --contention` reports; no timing is asserted here.)
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import os from 'node:os';
import { createGemm, createGemmSync, type Gemm } from '../backends/cpu/wasm/gemm.ts';
import { startBusy } from '../cli/bench_core.ts';

function mulberry32(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

describe('2-thread GEMM under contention', () => {
  let g1: Gemm, g2: Gemm, g2t: Gemm;
  let busy: ReturnType<typeof startBusy>;
  beforeAll(async () => {
    g1 = createGemmSync();
    g2 = await createGemm({ threads: 2, parallelThreshold: 0 });
    g2t = await createGemm({ threads: 2 });
    busy = startBusy(os.availableParallelism());
  });
  afterAll(async () => {
    busy?.stop();
    await g2?.close();
    await g2t?.close();
  });

  it('products stay bit-identical to one thread while the cores are oversubscribed', () => {
    if (g1.relaxed !== g2.relaxed) return; // fused vs unfused rounding may differ
    const rnd = mulberry32(5);
    const t0 = performance.now();
    let n = 0;
    // small and large products, transposes, back to back (the worker spins, is descheduled, sleeps, is withdrawn from)
    while (n < 400 || performance.now() - t0 < 3000) {
      const m = 1 + Math.floor(rnd() * 150), k = 1 + Math.floor(rnd() * 300), nn = 1 + Math.floor(rnd() * 400);
      const tA = rnd() < 0.3, tB = rnd() < 0.3;
      const a = Float32Array.from({ length: m * k }, () => rnd() * 2 - 1), b = Float32Array.from({ length: k * nn }, () => rnd() * 2 - 1);
      const c1 = new Float32Array(m * nn), c2 = new Float32Array(m * nn), c3 = new Float32Array(m * nn);
      g1.matmul(a, 0, b, 0, c1, 0, m, nn, k, tA, tB);
      g2.matmul(a, 0, b, 0, c2, 0, m, nn, k, tA, tB);
      g2t.matmul(a, 0, b, 0, c3, 0, m, nn, k, tA, tB);
      for (let i = 0; i < c1.length; i++) {
        if (!Object.is(c1[i], c2[i]) || !Object.is(c1[i], c3[i])) expect([c2[i], c3[i]], `product ${n} (${m}x${k}x${nn}) [${i}]`).toEqual([c1[i], c1[i]]);
      }
      n++;
      if (n > 5000) break;
    }
    expect(n).toBeGreaterThanOrEqual(400);
    expect(g2.contention.backoffMs).toBeLessThanOrEqual(2000); // the backoff is capped
  }, 60000);
});

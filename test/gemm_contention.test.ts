// The 2-thread GEMM with busy-looping processes beside it (more runnable threads than cores): the worker loses
// its core mid-spin and mid-job, the caller backs off and withdraws jobs the worker has not started. Whatever
// happens, every product must be bit-identical to one thread's, and nothing may hang or fail. (How fast this is
// is what `gapgrad bench --contention` reports; no timing is asserted here.)
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import os from 'node:os';
import { createGemm, createGemmSync, type Gemm } from '../backends/cpu/wasm/gemm.ts';
import { startBusy } from '../cli/bench_core.ts';
import { ContentionPolicy, DEFAULT_POLICY } from '../backends/cpu/wasm/contention.ts';
import { threadPlatform } from '../backends/cpu/threads.ts';

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
    // every core had a busy loop: the default GEMM backed off (g2 uses one thread's worth of evidence, g2t the same
    // rule with products above the default split size only)
    expect(g2.contention.backoffs).toBeGreaterThanOrEqual(1);
  }, 60000);

  it('large products given to a sleeping worker (the caller takes chunks until it wakes) are bit-identical', async () => {
    if (g1.relaxed !== g2.relaxed) return;
    // backoff: false, so that the busy loops cannot keep the worker out; it sleeps after each product's pause
    const g = await createGemm({ threads: 2, backoff: false });
    try {
      const rnd = mulberry32(11);
      // at and above 2^24 multiply-adds (SLEEPER_MACS), edge tiles and panels, transposes
      for (const [m, k, nn, tA, tB] of [[256, 256, 256, false, false], [300, 250, 260, true, false], [130, 777, 170, false, true], [257, 259, 263, true, true]] as const) {
        const a = Float32Array.from({ length: m * k }, () => rnd() * 2 - 1), b = Float32Array.from({ length: k * nn }, () => rnd() * 2 - 1);
        const c1 = new Float32Array(m * nn);
        g1.matmul(a, 0, b, 0, c1, 0, m, nn, k, tA, tB);
        for (let rep = 0; rep < 3; rep++) {
          await new Promise((r) => setTimeout(r, 30)); // longer than the worker spins after a job: it is asleep
          const c2 = new Float32Array(m * nn).fill(NaN);
          g.matmul(a, 0, b, 0, c2, 0, m, nn, k, tA, tB);
          const bad = c1.findIndex((v, i) => !Object.is(v, c2[i]));
          expect(bad, `${m}x${k}x${nn} tA=${tA} tB=${tB} rep ${rep}`).toBe(-1);
        }
      }
    } finally {
      await g.close();
    }
  }, 60000);
});

describe('the contention policy (backends/cpu/wasm/contention.ts)', () => {
  const S = { ...DEFAULT_POLICY, decay: 0.75, level: 3, minMs: 25, maxMs: 200, resetMs: 1000, probeMs: 25, fast: 2, watch: 4 };

  it('sporadic signs never start a backoff; five in five consecutive occasions, or two waits in a row, do', () => {
    const p = new ContentionPolicy(false, S);
    let t = 0;
    for (let i = 0; i < 1000; i++, t += 1) {
      expect(p.occasion(t)).toBe(true);
      if (i % 3 === 0) p.sign(t, 1); // one occasion in three: evidence stays below the level
    }
    expect(p.backoffs).toBe(0);
    const r = new ContentionPolicy(false, S);
    for (let i = 0; i < 4; i++) { r.occasion(0); r.sign(0, 1); }
    expect(r.solo(0)).toBe(false);
    r.occasion(0); r.sign(0, 1);
    expect(r.solo(0)).toBe(true);
    expect(r.occasion(0)).toBe(false);

    const q = new ContentionPolicy(false, S);
    q.occasion(0); q.sign(0, 2);
    expect(q.solo(0)).toBe(false);
    q.occasion(0); q.sign(0, 2);
    expect(q.solo(0)).toBe(true);
  });

  it('confirmed signs count double (two in a row start a backoff); signs during a backoff are ignored', () => {
    const p = new ContentionPolicy(false, S);
    p.occasion(0);
    p.sign(0, 1, true);
    expect(p.solo(0)).toBe(false);
    p.occasion(0);
    p.sign(0, 1, true);
    expect(p.solo(0)).toBe(true);
    for (let i = 0; i < 20; i++) p.sign(1, 2, true);
    expect(p.backoffs).toBe(1);
    expect(p.events).toBe(22);
  });

  it('without probes: a backoff lasts minMs, doubles while they keep coming, up to maxMs, and starts over after resetMs', () => {
    const p = new ContentionPolicy(false, S);
    const lengths: number[] = [];
    let t = 0;
    for (let b = 0; b < 6; b++) {
      p.occasion(t); p.sign(t, 3);
      const t0 = t;
      while (p.solo(t)) t += 1;
      lengths.push(t - t0);
      p.occasion(t); // the next backoff comes within the watched occasions: at once
    }
    expect(lengths).toEqual([25, 50, 100, 200, 200, 200]);
    t += 1001;
    p.occasion(t); p.sign(t, 3);
    expect(p.backoffMs(t + 10)).toBe(10);
    while (p.solo(t)) t += 1;
    expect(p.backoffMs(t)).toBe(25);
    expect(p.probeDue(t)).toBe(false);
  });

  it('with probes: it lasts while probes find no core free (up to maxMs), and ends after two free answers in a row', () => {
    const capped = new ContentionPolicy(true, S);
    capped.occasion(0); capped.sign(0, 3);
    for (let t = 25; t < 200; t += 25) { capped.probed(t, false); expect(capped.solo(t)).toBe(true); }
    expect(capped.solo(200)).toBe(false);
    const p = new ContentionPolicy(true, { ...S, maxMs: 1e9 });
    p.occasion(0); p.sign(0, 3);
    expect(p.probeDue(24)).toBe(false);
    let t = 25;
    const gaps: number[] = []; // between probes, while each finds no core free: doubling from probeMs to probeMaxMs
    for (let i = 0; i < 100; i++) {
      expect(p.probeDue(t)).toBe(true);
      p.probed(t, false);
      let next = t + 1;
      while (!p.probeDue(next)) next++;
      gaps.push(next - t);
      t = next;
    }
    expect(gaps.slice(0, 7)).toEqual([25, 50, 100, 200, 400, 400, 400]);
    expect(p.solo(t + 1e6)).toBe(true); // never ends by time below maxMs
    p.probed(t, true); // one free answer, then a busy one: still backed off
    expect(p.probeDue(t)).toBe(true);
    p.probed(t, false);
    expect(p.solo(t)).toBe(true);
    t += 400;
    p.probed(t, true);
    p.probed(t, true);
    expect(p.solo(t)).toBe(false);
    expect([p.probes, p.busyProbes]).toEqual([104, 101]);
    expect(p.backoffMs(t)).toBe(t);
    // watched: a single sign within four occasions starts the next backoff at once ...
    for (let i = 0; i < 4; i++) p.occasion(t);
    p.sign(t, 1);
    expect(p.solo(t)).toBe(true);
    // ... but not after that
    p.probed(t + 25, true); p.probed(t + 25, true);
    for (let i = 0; i < 5; i++) p.occasion(t + 25);
    p.sign(t + 25, 1);
    expect(p.solo(t + 25)).toBe(false);
  });
});

describe('the Node thread platform', () => {
  it('counts runnable threads on Linux (the caller among them), for the contention probes', () => {
    const pf = threadPlatform();
    if (os.platform() !== 'linux') { expect(pf?.runnable).toBeUndefined(); return; }
    const r = pf!.runnable!();
    expect(Number.isInteger(r) && r! >= 1).toBe(true);
  });
});

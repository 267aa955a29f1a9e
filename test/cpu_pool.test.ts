// The CPU backend's reuse of released output arrays: a recycled array never changes a live tensor,
// arrays the caller handed in are never recycled, and a training loop's allocated bytes stay flat.
import { describe, it, expect } from 'vitest';
import * as g from '../index.ts';
import { CpuBackend } from '../backends/cpu/index.ts';

const be = new CpuBackend();
// ordinary arrays only: large float32 results would otherwise live in the GEMM's memory (its own reuse,
// tested in wasm_arena.test.ts), not in the pool
be.residentMin = Infinity;
g.registerBackend('cpu-pool-test', be);
const dev = { device: 'cpu-pool-test' as const };

describe('cpu output-array pool', () => {
  it('reuses a released array for the next output of the same size without touching live tensors', () => {
    const n = 5000;
    const x = g.tensor(Float32Array.from({ length: n }, (_, i) => i), [n], dev);
    const keep = g.mul(x, 2); // live throughout
    const tmp = g.add(x, 1);
    const tmpData = be.readSync(tmp.buf);
    tmp.dispose();
    const before = be.memory();
    expect(before.allocatedBytes - before.liveBytes).toBe(n * 4); // tmp's array waits for reuse
    const next = g.sub(x, 3); // same dtype and length: gets tmp's array back
    expect(be.readSync(next.buf)).toBe(tmpData);
    const k = keep.dataSync(), v = next.dataSync();
    for (let i = 0; i < n; i += 997) { expect(k[i]).toBe(2 * i); expect(v[i]).toBe(i - 3); }
    // a recycled array comes back dirty: ops that accumulate must clear it first
    next.dispose();
    const idx = g.tensor(new Int32Array(n).fill(0), [n], { ...dev, dtype: 'int32' });
    const grad = g.tensor(new Float32Array(n).fill(1), [n], dev);
    const s = be.scatterAdd(grad.buf, idx.buf, 1, n, n, 1); // n ones into slot 0
    const sd = be.readSync(s);
    expect(sd[0]).toBe(n);
    expect(sd[1]).toBe(0);
    be.release(s);
    [x, keep, idx, grad].forEach((t) => t.dispose());
  });

  it('never recycles an array the caller handed in', () => {
    const n = 4096;
    const mine = new Float32Array(n).fill(7);
    const b = be.fromArray(mine);
    be.release(b);
    const out = be.alloc(n, 'float32');
    expect(be.readSync(out)).not.toBe(mine);
    expect(mine[0]).toBe(7);
    be.release(out);
  });

  it('keeps allocated bytes flat over 200 training steps', () => {
    const w = g.tensor(Float32Array.from({ length: 64 * 32 }, (_, i) => Math.sin(i) * 0.1), [64, 32], { ...dev, requiresGrad: true });
    const xs = g.tensor(Float32Array.from({ length: 50 * 64 }, (_, i) => Math.cos(i)), [50, 64], dev);
    const opt = new g.optim.Adam([w], { lr: 1e-3 });
    const seen: number[] = [];
    for (let step = 0; step < 200; step++) {
      g.tidy(() => {
        const y = g.relu(g.matmul(xs, w));
        g.mean(g.mul(y, y)).backward();
        opt.step();
        opt.zeroGrad();
      });
      if (step >= 10) seen.push(be.memory().allocatedBytes);
    }
    expect(Math.max(...seen)).toBe(Math.min(...seen));
    w.dispose(); xs.dispose();
  });

  // every estimator (fused kernels and composed ops), 1000 steps each: nothing may pile up in the pool, in
  // particular not int32 arrays (Philox words, argmax rows) that the pool held but nothing ever took back
  it('keeps allocated bytes flat over 1000 steps of every estimator, and pools nothing it never reuses', () => {
    const R = 120, C = 10; // R * C >= the pool's minimum, so every output is a pooling candidate
    const theta = g.tensor(Float32Array.from({ length: R * C }, (_, i) => Math.sin(i)), [R, C], { ...dev, requiresGrad: true });
    const w = g.tensor(Float32Array.from({ length: R * C }, (_, i) => Math.cos(i)), [R, C], dev);
    const methods = g.estimators.list().filter((m) => m.builtin).flatMap((m) => m.examples);
    for (const impl of ['fused', 'ops'] as const) {
      for (const method of methods) {
        if (impl === 'fused' && !g.estimators.resolve(method).def.fused) continue; // composed only
        be.emptyPool();
        const seen: number[] = [];
        for (let step = 0; step < 1000; step++) {
          g.tidy(() => {
            const d = g.estimators.sample(theta, { method, tau: 0.5, k: 4, key: g.random.key(step), impl });
            g.sum(g.mul(d, w)).backward();
            theta.grad?.dispose(); theta.grad = null;
          });
          if (step >= 20) seen.push(be.memory().allocatedBytes);
        }
        expect({ impl, method, growth: Math.max(...seen) - Math.min(...seen) }).toEqual({ impl, method, growth: 0 });
        // what the pool holds after the loop is at most one step's worth of arrays
        const m = be.memory();
        expect(m.allocatedBytes - m.liveBytes).toBeLessThan(64 * R * C * 8);
      }
    }
    theta.dispose(); w.dispose();
  });
});

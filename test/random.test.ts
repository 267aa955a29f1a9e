// Philox known-answer vectors, reproducibility, key independence and distribution checks.
// Every statistical bound is derived from the sampling error at a fixed false-positive rate; seeds are fixed.
import { describe, it, expect } from 'vitest';
import * as g from '../index.ts';
import { random } from '../index.ts';
import { philoxBlock, philoxFill, mulhi32 } from '../engine/philox.ts';
import { bitsToUniform } from '../engine/elementwise.ts';
import { chiSquareCritical, chiSquareStat, correlation, meanVar, normalQuantile, arr } from './helpers.ts';

const ALPHA = 1e-4; // false-positive rate of each chi-square test
const K = 5; // z bound of each moment test (two-sided false-positive rate 5.7e-7)

const hex = (a: ArrayLike<number>) => Array.from(a, (x) => (x >>> 0).toString(16).padStart(8, '0')).join(' ');

describe('Philox4x32-10', () => {
  it('matches the Random123 known-answer vectors', () => {
    const out = new Uint32Array(4);
    philoxBlock(0, 0, 0, 0, 0, 0, out, 0);
    expect(hex(out)).toBe('6627e8d5 e169c58d bc57ac4c 9b00dbd8');
    const f = 0xffffffff;
    philoxBlock(f, f, f, f, f, f, out, 0);
    expect(hex(out)).toBe('408f276d 41c83b0e a20bc7c6 6d5451fd');
    philoxBlock(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, out, 0);
    expect(hex(out)).toBe('d16cfe09 94fdcceb 5001e420 24126ea1');
  });

  it('mulhi32 is the exact high word of the 64-bit product', () => {
    const cases = [[0, 0], [1, 1], [0xffffffff, 0xffffffff], [0xd2511f53, 0x12345678], [0xcd9e8d57, 0xdeadbeef], [65536, 65536]];
    for (const [a, b] of cases) expect(mulhi32(a, b)).toBe(Number((BigInt(a) * BigInt(b)) >> 32n));
  });

  it('philoxFill and random.bits lay out the stream as word i%4 of block counter + i/4 (64-bit counter split lo/hi)', () => {
    const k: random.Key = [0x12345678, 0x9abcdef0];
    const words = arr(random.bits(k, [10]));
    const blk = new Int32Array(4);
    for (let i = 0; i < 10; i++) {
      philoxBlock(Math.floor(i / 4), 0, 0, 0, k[0], k[1], blk, 0);
      expect(words[i]).toBe(blk[i % 4]);
    }
    const big = new Int32Array(6);
    const c = 2 ** 32 + 5; // crosses into the high counter word
    philoxFill(7, 8, c, big);
    philoxBlock(5, 1, 0, 0, 7, 8, blk, 0);
    expect(Array.from(big.slice(0, 4))).toEqual(Array.from(blk));
    philoxBlock(6, 1, 0, 0, 7, 8, blk, 0);
    expect(Array.from(big.slice(4))).toEqual(Array.from(blk.slice(0, 2)));
  });

  it('uniform is bitsToUniform of the raw words: in (0, 1), never 0 or 1', () => {
    const k = random.key(99);
    const w = arr(random.bits(k, [1000]));
    const u = arr(random.uniform(k, [1000], { dtype: 'float64' }));
    u.forEach((v, i) => expect(v).toBe(bitsToUniform(w[i])));
    expect(bitsToUniform(0)).toBeGreaterThan(0);
    expect(bitsToUniform(-1)).toBeLessThan(1);
  });
});

describe('keys', () => {
  it('draws are reproducible per key and differ across keys', () => {
    const k = random.key(1234);
    expect(arr(random.normal(k, [100]))).toEqual(arr(random.normal(k, [100])));
    expect(arr(random.uniform(random.key(1234), [50]))).toEqual(arr(random.uniform(k, [50])));
    expect(arr(random.uniform(random.key(1235), [50]))).not.toEqual(arr(random.uniform(k, [50])));
    expect(random.split(k, 3)).toEqual(random.split(k, 3));
    expect(random.foldIn(k, 17)).toEqual(random.foldIn(k, 17));
    // seeds above 2^32 use the high word
    expect(random.key(2 ** 32 + 1)).toEqual([1, 1]);
    expect(() => random.key(-1)).toThrow(/seed/);
    expect(() => random.split([1, 2, 3] as never)).toThrow(/random.split: key/);
  });

  it('split and foldIn keys are distinct from each other and from the parent', () => {
    const k = random.key(42);
    const ks = [k, ...random.split(k, 8), ...Array.from({ length: 8 }, (_, i) => random.foldIn(k, i)), random.foldIn(k, 2 ** 40)];
    const set = new Set(ks.map((x) => x.join(':')));
    expect(set.size).toBe(ks.length);
    // split(k, n) is a prefix-stable family
    expect(random.split(k, 2)).toEqual(random.split(k, 5).slice(0, 2));
  });

  it('streams from related keys are uncorrelated (|r| < 5/sqrt(n))', () => {
    const n = 100_000;
    const bound = K / Math.sqrt(n);
    const k = random.key(7);
    const [a, b] = random.split(k, 2);
    const pairs: [random.Key, random.Key][] = [
      [a, b], [k, a], [random.foldIn(k, 0), random.foldIn(k, 1)], [random.key(0), random.key(1)], [random.foldIn(k, 1), random.split(k, 2)[1]],
    ];
    for (const [p, q] of pairs) {
      const x = arr(random.uniform(p, [n], { dtype: 'float64' }));
      const y = arr(random.uniform(q, [n], { dtype: 'float64' }));
      expect(Math.abs(correlation(x, y))).toBeLessThan(bound);
    }
    // and within one stream: lag-1 and lag-4 (same word of the next block) autocorrelation
    const x = arr(random.uniform(k, [n + 4], { dtype: 'float64' }));
    expect(Math.abs(correlation(x.slice(0, n), x.slice(1, n + 1)))).toBeLessThan(bound);
    expect(Math.abs(correlation(x.slice(0, n), x.slice(4, n + 4)))).toBeLessThan(bound);
  });
});

describe('moments (|estimate - truth| < 5 standard errors)', () => {
  const n = 1_000_000; // resolves a 1% scale error in the variance
  // central moments mu2 and mu4 give the standard error of the sample variance: sqrt((mu4 - mu2^2) / n)
  const cases: [string, (k: random.Key) => g.Tensor, number, number, number][] = [
    ['uniform', (k) => random.uniform(k, [n], { dtype: 'float64' }), 0.5, 1 / 12, 1 / 80],
    ['uniform(low, high)', (k) => random.uniform(k, [n], { dtype: 'float64', low: -2, high: 6 }), 2, 64 / 12, 4096 / 80],
    ['normal', (k) => random.normal(k, [n], { dtype: 'float64' }), 0, 1, 3],
    ['normal(mean, std)', (k) => random.normal(k, [n], { dtype: 'float64', mean: 3, std: 2 }), 3, 4, 48],
    ['gumbel', (k) => random.gumbel(k, [n], { dtype: 'float64' }), 0.5772156649015329, Math.PI ** 2 / 6, (27 / 5) * (Math.PI ** 2 / 6) ** 2],
    ['exponential', (k) => random.exponential(k, [n], { dtype: 'float64' }), 1, 1, 9],
  ];
  for (const [name, draw, mean, variance, mu4] of cases) {
    it(`${name}: mean and variance`, () => {
      const x = arr(draw(random.key(31337)));
      const s = meanVar(x);
      expect(Math.abs(s.mean - mean)).toBeLessThan(K * Math.sqrt(variance / n));
      expect(Math.abs(s.variance - variance)).toBeLessThan(K * Math.sqrt((mu4 - variance ** 2) / n));
    });
  }

  it('float32 draws agree in distribution (normal, float32 default dtype)', () => {
    const t = random.normal(random.key(5), [n]);
    expect(t.dtype).toBe('float32');
    const s = meanVar(arr(t));
    expect(Math.abs(s.mean)).toBeLessThan(K / Math.sqrt(n));
    expect(Math.abs(s.variance - 1)).toBeLessThan(K * Math.sqrt(2 / n));
  });

  it('normal passes a chi-square test on 20 equiprobable bins', () => {
    const x = arr(random.normal(random.key(8), [n], { dtype: 'float64' }));
    const edges = Array.from({ length: 19 }, (_, i) => normalQuantile((i + 1) / 20));
    const counts = new Array(20).fill(0);
    for (const v of x) {
      let b = 0;
      while (b < 19 && v > edges[b]) b++;
      counts[b]++;
    }
    expect(chiSquareStat(counts, new Array(20).fill(1 / 20))).toBeLessThan(chiSquareCritical(19, ALPHA));
  });

  it('bernoulli: mean p for a number p and elementwise for a tensor p', () => {
    const p = 0.3;
    const x = arr(random.bernoulli(random.key(11), p, [n]));
    expect(new Set(x)).toEqual(new Set([0, 1]));
    const m = meanVar(x).mean;
    expect(Math.abs(m - p)).toBeLessThan(K * Math.sqrt((p * (1 - p)) / n));
    // tensor of probabilities: rows with p = 0, 0.5, 0.9, 1
    const reps = 50_000;
    const P = g.expand(g.tensor([[0], [0.5], [0.9], [1]], null, { dtype: 'float64' }), [4, reps]);
    const y = random.bernoulli(random.key(12), P, undefined, { dtype: 'float64' });
    expect(y.shape).toEqual([4, reps]);
    const means = arr(g.mean(y, 1));
    [0, 0.5, 0.9, 1].forEach((q, i) => expect(Math.abs(means[i] - q)).toBeLessThanOrEqual(K * Math.sqrt((q * (1 - q)) / reps)));
  });
});

describe('histograms (chi-square goodness of fit, alpha = 1e-4, Wilson-Hilferty critical value)', () => {
  it('the Wilson-Hilferty critical values have upper-tail probability close to alpha', () => {
    // exact survival function for even df = 2m: exp(-x/2) * sum_{j<m} (x/2)^j / j!
    const sf = (x: number, df: number) => {
      let term = Math.exp(-x / 2), s = 0;
      for (let j = 0; j < df / 2; j++) { s += term; term *= x / 2 / (j + 1); }
      return s;
    };
    for (const df of [2, 4, 10, 24, 50, 120]) {
      const p = sf(chiSquareCritical(df, ALPHA), df);
      expect(p).toBeGreaterThan(ALPHA / 3);
      expect(p).toBeLessThan(ALPHA * 1.5);
    }
  });

  it('uniform: 50 equal bins', () => {
    const n = 250_000, bins = 50;
    const x = arr(random.uniform(random.key(2024), [n], { dtype: 'float64' }));
    const counts = new Array(bins).fill(0);
    for (const v of x) counts[Math.floor(v * bins)]++;
    expect(chiSquareStat(counts, new Array(bins).fill(1 / bins))).toBeLessThan(chiSquareCritical(bins - 1, ALPHA));
  });

  it('categorical follows softmax(logits), never draws -Infinity, and batches over leading axes', () => {
    const probs = [0.05, 0.1, 0.15, 0.2, 0.5];
    const logits = probs.map((p) => Math.log(p) + 1.7); // unnormalised
    const n = 60_000;
    const L = g.expand(g.tensor([logits], null, { dtype: 'float64' }), [n, 5]);
    const draws = random.categorical(random.key(77), L);
    expect(draws.shape).toEqual([n]);
    expect(draws.dtype).toBe('int32');
    const counts = new Array(5).fill(0);
    for (const d of arr(draws)) counts[d]++;
    expect(chiSquareStat(counts, probs)).toBeLessThan(chiSquareCritical(4, ALPHA));

    const withInf = g.tensor([[0, -Infinity, 0, -Infinity]], null, { dtype: 'float32' });
    const d2 = arr(random.categorical(random.key(3), g.expand(withInf, [20_000, 4])));
    const c2 = [0, 0, 0, 0];
    for (const d of d2) c2[d]++;
    expect(c2[1]).toBe(0);
    expect(c2[3]).toBe(0);
    expect(chiSquareStat([c2[0], c2[2]], [0.5, 0.5])).toBeLessThan(chiSquareCritical(1, ALPHA));
  });
});

describe('permutation', () => {
  it('is a permutation of 0..n-1 for many sizes, reproducible per key', () => {
    for (const n of [0, 1, 2, 3, 10, 257, 1000]) {
      const p = random.permutation(random.key(n), n);
      expect(Array.from(p).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(Array.from(random.permutation(random.key(n), n))).toEqual(Array.from(p));
    }
  });

  it('all 24 permutations of 4 are equally likely', () => {
    const reps = 24_000;
    const base = random.key(555);
    const counts = new Map<string, number>();
    for (let i = 0; i < reps; i++) {
      const s = Array.from(random.permutation(random.foldIn(base, i), 4)).join('');
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    expect(counts.size).toBe(24);
    expect(chiSquareStat([...counts.values()], new Array(24).fill(1 / 24))).toBeLessThan(chiSquareCritical(23, ALPHA));
  });

  it('each element lands in each position with probability 1/n (n = 10)', () => {
    const n = 10, reps = 10_000;
    const base = random.key(556);
    const pos = Array.from({ length: n }, () => new Array(n).fill(0)); // pos[element][position]
    for (let i = 0; i < reps; i++) {
      const p = random.permutation(random.foldIn(base, i), n);
      p.forEach((e, j) => pos[e][j]++);
    }
    // one test per element (Bonferroni over the n rows keeps the family-wise rate at ALPHA)
    for (const row of pos) expect(chiSquareStat(row, new Array(n).fill(1 / n))).toBeLessThan(chiSquareCritical(n - 1, ALPHA / n));
  });
});

describe('Generator', () => {
  it('state round trip (also through JSON) continues the same key stream', () => {
    const gen = new random.Generator(9);
    const first = [gen.next(), gen.next(), gen.next()];
    const s = gen.state();
    expect(s).toEqual({ seed: 9, counter: 3 });
    const restored = random.Generator.fromState(JSON.parse(JSON.stringify(s)));
    const a = [gen.next(), gen.next()], b = [restored.next(), restored.next()];
    expect(b).toEqual(a);
    // next() is foldIn(key(seed), counter)
    expect(first[1]).toEqual(random.foldIn(random.key(9), 1));
    expect(new random.Generator(9).next()).toEqual(first[0]);
    expect(new random.Generator(10).next()).not.toEqual(first[0]);
    expect(() => random.Generator.fromState({ seed: 1.5, counter: 0 })).toThrow(/Generator.fromState/);
  });
});

describe('draw arguments', () => {
  it('bad shapes and parameters are errors naming the function, the argument and its value', () => {
    const k = random.key(1);
    expect(() => random.uniform(k, [-1])).toThrow('random.uniform: shape must be an array of non-negative integers, got [-1]');
    expect(() => random.gumbel(k, [2.5])).toThrow('random.gumbel: shape must be an array of non-negative integers, got [2.5]');
    expect(() => random.bits(k, [-2])).toThrow('random.bits: shape must be an array of non-negative integers, got [-2]');
    expect(() => random.uniform(k, [2], { low: 2, high: 1 })).toThrow('random.uniform: high must be a finite number above low (2), got 1');
    expect(() => random.uniform(k, [2], { low: -Infinity })).toThrow('random.uniform: low must be a finite number, got -Infinity');
    expect(() => random.normal(k, [2], { std: -1 })).toThrow('random.normal: std must be a finite number >= 0, got -1');
    expect(() => random.normal(k, [2], { mean: NaN })).toThrow('random.normal: mean must be a finite number, got NaN');
    expect(() => random.bernoulli(k, 2, [2])).toThrow('random.bernoulli: p must be a probability in [0, 1] (or a tensor of them), got 2');
    expect(() => random.permutation(k, -1)).toThrow('random.permutation: n must be a non-negative integer, got -1');
    expect(() => random.exponential([1, 2, 3] as never, [2])).toThrow(/random.exponential: key/);
    expect(random.uniform(k, [0]).shape).toEqual([0]);
    expect(random.normal(k, [3], { std: 0, mean: 2 }).dataSync()).toEqual(new Float32Array([2, 2, 2]));
  });
});

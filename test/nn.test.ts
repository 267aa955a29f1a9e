// Modules: initialisation bounds and determinism, LSTMCell against a hand computation, Embedding,
// Dropout, parameter names, state dicts, and a small MLP that learns a smooth regression.
import { describe, it, expect } from 'vitest';
import * as g from '../index.ts';
import { nn, optim, random } from '../index.ts';
import type { Tensor } from '../index.ts';
import { Rng, fill, f64, arr, meanVar, gradcheck } from './helpers.ts';

const K = 5; // z bound for sampling-error checks

describe('Linear', () => {
  it('shapes, bias option and forward = x W^T + b', () => {
    const l = new nn.Linear(4, 3, { key: random.key(1), dtype: 'float64' });
    expect(l.weight.shape).toEqual([3, 4]);
    expect(l.bias!.shape).toEqual([3]);
    expect(l.weight.requiresGrad && l.bias!.requiresGrad).toBe(true);
    const x = f64(fill(new Rng(2), 10, (r) => r.uniform(-1, 1)), [5, 2]).reshape([10]);
    const X = g.reshape(g.concat([x, x], 0), [5, 4]);
    const y = l.forward(X);
    expect(y.shape).toEqual([5, 3]);
    const W = arr(l.weight), b = arr(l.bias!), xv = arr(X), yv = arr(y);
    for (let i = 0; i < 5; i++) for (let o = 0; o < 3; o++) {
      let s = b[o];
      for (let k = 0; k < 4; k++) s += xv[i * 4 + k] * W[o * 4 + k];
      expect(yv[i * 3 + o]).toBeCloseTo(s, 12);
    }
    const nb = new nn.Linear(4, 2, { bias: false });
    expect(nb.bias).toBeNull();
    expect(nb.parameters().length).toBe(1);
    expect(() => new nn.Linear(0, 2)).toThrow(/Linear: inFeatures and outFeatures must be positive integers/);
  });

  it('init: every weight and bias within +-1/sqrt(fan_in), variance bound^2/3 within sampling error', () => {
    const fanIn = 100, fanOut = 1000;
    const l = new nn.Linear(fanIn, fanOut, { key: random.key(2024), dtype: 'float64' });
    const bound = 1 / Math.sqrt(fanIn);
    for (const [name, t] of [['weight', l.weight], ['bias', l.bias!]] as const) {
      const v = arr(t);
      expect(v.reduce((m, x) => Math.max(m, Math.abs(x)), 0), name).toBeLessThanOrEqual(bound);
      const n = v.length;
      const s = meanVar(v);
      // U(-b, b): mean 0, variance b^2/3, fourth central moment b^4/5
      expect(Math.abs(s.mean)).toBeLessThan(K * Math.sqrt(bound ** 2 / 3 / n));
      expect(Math.abs(s.variance - bound ** 2 / 3)).toBeLessThan(K * Math.sqrt((bound ** 4 / 5 - bound ** 4 / 9) / n));
    }
    // the weights reach the edges of the interval: P(max |w| < 0.9995 b) = 0.9995^100000 ~ 2e-22
    expect(arr(l.weight).reduce((m, v) => Math.max(m, Math.abs(v)), 0)).toBeGreaterThan(0.9995 * bound);
    // float32 (the default dtype): within the float32 rounding of the bound
    const l32 = new nn.Linear(fanIn, fanOut, { key: random.key(2025) });
    expect(l32.weight.dtype).toBe('float32');
    expect(arr(l32.weight).reduce((m, x) => Math.max(m, Math.abs(x)), 0)).toBeLessThanOrEqual(Math.fround(bound));
  });

  it('deterministic under nn.manualSeed and under an explicit key', () => {
    nn.manualSeed(3);
    const a1 = new nn.Linear(4, 3), a2 = new nn.Linear(4, 3);
    nn.manualSeed(3);
    const b1 = new nn.Linear(4, 3), b2 = new nn.Linear(4, 3);
    expect(arr(b1.weight)).toEqual(arr(a1.weight));
    expect(arr(b2.bias!)).toEqual(arr(a2.bias!));
    expect(arr(a2.weight)).not.toEqual(arr(a1.weight)); // successive modules get fresh keys
    nn.manualSeed(4);
    expect(arr(new nn.Linear(4, 3).weight)).not.toEqual(arr(a1.weight));
    const k = random.key(77);
    expect(arr(new nn.Linear(4, 3, { key: k }).weight)).toEqual(arr(new nn.Linear(4, 3, { key: k }).weight));
    // weight and bias come from different streams
    const l = new nn.Linear(3, 3, { key: k });
    expect(arr(l.bias!)).not.toEqual(arr(l.weight).slice(0, 3));
  });
});

describe('LSTMCell', () => {
  const sig = (x: number) => 1 / (1 + Math.exp(-x));

  it('equals a hand computation with PyTorch gate order (i, f, g, o)', () => {
    const I = 3, H = 4, N = 2;
    const cell = new nn.LSTMCell(I, H, { key: random.key(5), dtype: 'float64' });
    expect(cell.weight_ih.shape).toEqual([4 * H, I]);
    expect(cell.weight_hh.shape).toEqual([4 * H, H]);
    const r = new Rng(9);
    const xv = fill(r, N * I, (q) => q.uniform(-1, 1)), hv = fill(r, N * H, (q) => q.uniform(-1, 1)), cv = fill(r, N * H, (q) => q.uniform(-1, 1));
    const [h2, c2] = cell.forward(f64(xv, [N, I]), [f64(hv, [N, H]), f64(cv, [N, H])]);
    expect(h2.shape).toEqual([N, H]);
    const Wi = arr(cell.weight_ih), Wh = arr(cell.weight_hh), bi = arr(cell.bias_ih), bh = arr(cell.bias_hh);
    const hOut = arr(h2), cOut = arr(c2);
    for (let n = 0; n < N; n++) {
      const z = new Array(4 * H).fill(0).map((_, row) => {
        let s = bi[row] + bh[row];
        for (let k = 0; k < I; k++) s += Wi[row * I + k] * xv[n * I + k];
        for (let k = 0; k < H; k++) s += Wh[row * H + k] * hv[n * H + k];
        return s;
      });
      for (let j = 0; j < H; j++) {
        const ig = sig(z[j]), fg = sig(z[H + j]), gg = Math.tanh(z[2 * H + j]), og = sig(z[3 * H + j]);
        const c = fg * cv[n * H + j] + ig * gg;
        expect(cOut[n * H + j]).toBeCloseTo(c, 12);
        expect(hOut[n * H + j]).toBeCloseTo(og * Math.tanh(c), 12);
      }
    }
    // init bound 1/sqrt(hidden)
    for (const p of cell.parameters()) for (const v of arr(p)) expect(Math.abs(v)).toBeLessThanOrEqual(1 / Math.sqrt(H));
  });

  it("state_dict keys are PyTorch's (weight_ih, weight_hh, bias_ih, bias_hh); a checkpoint with the old camelCase names fails naming the renames", () => {
    const cell = new nn.LSTMCell(2, 3, { key: random.key(5) });
    expect(Object.keys(cell.stateDict())).toEqual(['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh']);
    const old = Object.fromEntries(Object.entries(cell.stateDict()).map(([n, t]) => [n.replace(/_(.)/, (_m, c: string) => c.toUpperCase()), t]));
    expect(Object.keys(old)).toEqual(['weightIh', 'weightHh', 'biasIh', 'biasHh']);
    expect(() => new nn.LSTMCell(2, 3).loadStateDict(old)).toThrow("'weightIh' is now named 'weight_ih', 'weightHh' is now named 'weight_hh', 'biasIh' is now named 'bias_ih', 'biasHh' is now named 'bias_hh'");
    const fresh = new nn.LSTMCell(2, 3);
    fresh.loadStateDict(cell.stateDict());
    expect(arr(fresh.bias_hh)).toEqual(arr(cell.bias_hh));
  });

  it('gradients through the cell match finite differences', () => {
    const cell = new nn.LSTMCell(2, 3, { key: random.key(6), dtype: 'float64' });
    const r = new Rng(10);
    gradcheck((x, h, c) => cell.forward(x, [h, c]), [
      { shape: [2, 2], values: fill(r, 4, (q) => q.uniform(-1, 1)) },
      { shape: [2, 3], values: fill(r, 6, (q) => q.uniform(-1, 1)) },
      { shape: [2, 3], values: fill(r, 6, (q) => q.uniform(-1, 1)) },
    ]);
  });
});

describe('Embedding', () => {
  it('looks up rows for any index shape; gradients accumulate on repeated indices', () => {
    const e = new nn.Embedding(5, 3, { key: random.key(8), dtype: 'float64' });
    expect(e.weight.shape).toEqual([5, 3]);
    const idx = g.tensor([[4, 0, 4], [2, 2, 1]], null, { dtype: 'int32' });
    const y = e.forward(idx);
    expect(y.shape).toEqual([2, 3, 3]);
    const W = arr(e.weight), out = arr(y);
    [4, 0, 4, 2, 2, 1].forEach((row, j) => expect(out.slice(j * 3, j * 3 + 3)).toEqual(W.slice(row * 3, row * 3 + 3)));
    g.sum(y).backward();
    expect(arr(e.weight.grad!)).toEqual([1, 1, 1, 1, 1, 1, 2, 2, 2, 0, 0, 0, 2, 2, 2]);
  });

  it('weights are standard normal (mean and variance within sampling error)', () => {
    const e = new nn.Embedding(400, 50, { key: random.key(9), dtype: 'float64' });
    const s = meanVar(arr(e.weight));
    const n = 20000;
    expect(Math.abs(s.mean)).toBeLessThan(K / Math.sqrt(n));
    expect(Math.abs(s.variance - 1)).toBeLessThan(K * Math.sqrt(2 / n));
  });
});

describe('Dropout', () => {
  it('train: zeros a fraction p and scales survivors by 1/(1-p), mean preserved; eval: identity', () => {
    const p = 0.25, n = 100_000;
    const d = new nn.Dropout(p, { seed: 1 });
    const x = g.ones([n], { dtype: 'float64' });
    const v = arr(d.forward(x));
    const zeros = v.filter((t) => t === 0).length;
    expect(v.every((t) => t === 0 || t === 1 / (1 - p))).toBe(true);
    expect(Math.abs(zeros / n - p)).toBeLessThan(K * Math.sqrt((p * (1 - p)) / n));
    // E[y] = 1, Var[y] = p / (1 - p)
    expect(Math.abs(meanVar(v).mean - 1)).toBeLessThan(K * Math.sqrt(p / (1 - p) / n));
    // each call draws a fresh mask; an explicit key is reproducible
    expect(arr(d.forward(x))).not.toEqual(v);
    const k = random.key(4);
    expect(arr(d.forward(x, k))).toEqual(arr(d.forward(x, k)));
    d.eval();
    expect(d.training).toBe(false);
    expect(d.forward(x)).toBe(x);
    d.train();
    expect(arr(new nn.Dropout(0).forward(x))).toEqual(arr(x));
    expect(() => new nn.Dropout(1)).toThrow(/Dropout: p must be in \[0, 1\)/);
  });

  it('gradient flows through the kept entries scaled by 1/(1-p)', () => {
    const d = new nn.Dropout(0.5);
    const x = g.ones([1000], { dtype: 'float64', requiresGrad: true });
    const y = d.forward(x, random.key(2));
    g.sum(y).backward();
    expect(arr(x.grad!)).toEqual(arr(y));
  });

  it('Dropout generator state is checkpointable', () => {
    const a = new nn.Dropout(0.5, { seed: 3 });
    const x = g.ones([64]);
    a.forward(x); a.forward(x);
    const b = new nn.Dropout(0.5);
    b.generator = random.Generator.fromState(a.generator.state());
    expect(arr(b.forward(x))).toEqual(arr(a.forward(x)));
  });
});

class Block extends nn.Module {
  encoder = new nn.Sequential(new nn.Linear(2, 3, { key: random.key(1) }), new nn.Tanh(), new nn.Linear(3, 3, { key: random.key(2) }));
  heads = [new nn.Linear(3, 1, { key: random.key(3) }), new nn.Linear(3, 2, { key: random.key(4), bias: false })];
  scale = g.ones([1]).requireGrad();
  constant = g.ones([2]); // not a parameter
  forward(x: Tensor): Tensor {
    const h = this.encoder.forward(x);
    return g.mul(g.concat([this.heads[0].forward(h), this.heads[1].forward(h)], -1), this.scale);
  }
}

describe('parameter names and state dicts', () => {
  it('Sequential names parameters by position; nested modules and module arrays by PyTorch convention', () => {
    const s = new nn.Sequential(new nn.Linear(2, 3), new nn.ReLU(), new nn.Linear(3, 1), new nn.Sigmoid());
    expect(s.namedParameters().map(([n]) => n)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    expect(s.numParameters()).toBe(2 * 3 + 3 + 3 + 1);
    const b = new Block();
    expect(b.namedParameters().map(([n]) => n)).toEqual([
      'encoder.0.weight', 'encoder.0.bias', 'encoder.2.weight', 'encoder.2.bias',
      'heads.0.weight', 'heads.0.bias', 'heads.1.weight', 'scale',
    ]);
    expect(Object.keys(b.stateDict())).toEqual(b.namedParameters().map(([n]) => n));
    b.eval();
    expect(b.modules().every((m) => !m.training)).toBe(true);
    expect(b.modules().length).toBe(1 + 1 + 3 + 2);
  });

  it('stateDict/loadStateDict round trip: equal outputs, independent buffers, dtype conversion', () => {
    nn.manualSeed(11);
    const a = new nn.Sequential(new nn.Linear(2, 4), new nn.Tanh(), new nn.Linear(4, 1));
    nn.manualSeed(12);
    const b = new nn.Sequential(new nn.Linear(2, 4), new nn.Tanh(), new nn.Linear(4, 1));
    const x = g.tensor([[0.1, -0.3], [2, 1]]);
    expect(arr(b.forward(x))).not.toEqual(arr(a.forward(x)));
    b.loadStateDict(a.stateDict());
    expect(arr(b.forward(x))).toEqual(arr(a.forward(x)));
    // b owns copies: changing a afterwards does not change b
    const before = arr(b.forward(x));
    a.parameters()[0].assign(g.zeros([4, 2]));
    expect(arr(b.forward(x))).toEqual(before);
    // loaded parameters still train
    expect(b.parameters().every((p) => p.requiresGrad)).toBe(true);
    // float32 state into a float64 model
    const c = new nn.Sequential(new nn.Linear(2, 4, { dtype: 'float64' }), new nn.Tanh(), new nn.Linear(4, 1, { dtype: 'float64' }));
    c.loadStateDict(b.stateDict());
    expect(c.parameters()[0].dtype).toBe('float64');
    expect(arr(c.parameters()[0])).toEqual(arr(b.parameters()[0]));
  });

  it('loadStateDict errors name missing, unexpected and mis-shaped entries', () => {
    const m = new nn.Sequential(new nn.Linear(2, 3), new nn.Linear(3, 1));
    const sd = m.stateDict();
    const { ['1.bias']: _drop, ...missing } = sd;
    expect(() => m.loadStateDict(missing)).toThrow('loadStateDict: missing [1.bias], unexpected []');
    expect(() => m.loadStateDict({ ...sd, extra: g.ones([1]) })).toThrow('loadStateDict: missing [], unexpected [extra]');
    expect(() => m.loadStateDict({ ...sd, '0.weight': g.ones([2, 3]) })).toThrow("loadStateDict: '0.weight' has shape [2,3], expected [3,2]");
  });
});

describe('training', () => {
  it('a 2-16-16-1 tanh MLP learns a smooth regression with Adam (MSE < 1e-3 of the target variance)', () => {
    // target f(x, y) = sin(2x) cos(y) on a 16 x 16 grid over [-1, 1]^2
    const pts: number[] = [], ys: number[] = [];
    for (let i = 0; i < 16; i++) for (let j = 0; j < 16; j++) {
      const x = -1 + (2 * i) / 15, y = -1 + (2 * j) / 15;
      pts.push(x, y);
      ys.push(Math.sin(2 * x) * Math.cos(y));
    }
    const variance = meanVar(ys).variance;
    const X = g.tensor(Float64Array.from(pts), [256, 2], { dtype: 'float64' });
    const Y = g.tensor(Float64Array.from(ys), [256, 1], { dtype: 'float64' });
    const opts = { dtype: 'float64' as const };
    nn.manualSeed(2024);
    const model = new nn.Sequential(new nn.Linear(2, 16, opts), new nn.Tanh(), new nn.Linear(16, 16, opts), new nn.Tanh(), new nn.Linear(16, 1, opts));
    const opt = new optim.Adam(model.parameters(), { lr: 1e-2 });
    const base = g.memory().liveTensors;
    let loss = Infinity;
    for (let step = 0; step < 2000; step++) {
      loss = g.tidy(() => {
        opt.zeroGrad();
        const l = g.mean(g.square(g.sub(model.forward(X), Y)));
        l.backward();
        opt.step();
        return l.item();
      });
    }
    expect(g.memory().liveTensors - base).toBeLessThan(50); // grads and optimizer slots only: no per-step leak
    expect(loss).toBeLessThan(1e-3 * variance);
  });
});

describe('layer sizes', () => {
  it('a size that is not a positive integer is an error naming the layer, the size and its value', () => {
    expect(() => new nn.Linear(0, 3)).toThrow('Linear: inFeatures and outFeatures must be positive integers, got inFeatures 0, outFeatures 3');
    expect(() => new nn.Embedding(0, 3)).toThrow('Embedding: numEmbeddings and dim must be positive integers, got numEmbeddings 0, dim 3');
    expect(() => new nn.LSTMCell(4, 2.5)).toThrow('LSTMCell: inputSize and hiddenSize must be positive integers, got inputSize 4, hiddenSize 2.5');
  });
});

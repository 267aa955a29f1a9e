// Optimizers against PyTorch's update rules computed by hand in float64, clipGradNorm and
// ReduceLROnPlateau against hand traces.
import { describe, it, expect } from 'vitest';
import * as g from '../index.ts';
import { optim } from '../index.ts';
import { CpuBackend } from '../backends/cpu/index.ts';
import { f64, arr } from './helpers.ts';

// A CPU backend without the fused Adam kernel: Adam then runs its composed-ops path.
const unfused = new CpuBackend();
(unfused as { adamUpdate?: unknown }).adamUpdate = undefined;
g.registerBackend('cpu-unfused', unfused);

// loss(p) = sum(0.5 * a * p^2 + b * p) has gradient a * p + b
const A = [1.5, -0.3, 2.0, 0.7, 4.0];
const B = [0.2, 1.0, -3.0, 0.0, -0.5];
const P0 = [0.5, -1.0, 2.5, 0.0, -0.25];
const gradAt = (p: number[]) => p.map((v, i) => A[i] * v + B[i]);

function autodiffStep(p: g.Tensor, opt: optim.Optimizer): void {
  opt.zeroGrad();
  const a = g.tensor(Float64Array.from(A), [5], { dtype: 'float64', device: p.device });
  const b = g.tensor(Float64Array.from(B), [5], { dtype: 'float64', device: p.device });
  g.sum(g.add(g.mul(g.mul(g.mul(p, p), a), 0.5), g.mul(p, b))).backward();
  opt.step();
}

interface Hyper { lr: number; b1: number; b2: number; eps: number; wd: number }

/** torch.optim.Adam, single tensor, written out in plain float64 */
function adamRef(steps: number, h: Hyper): number[][] {
  let p = P0.slice();
  const m = p.map(() => 0), v = p.map(() => 0);
  const trace: number[][] = [];
  for (let t = 1; t <= steps; t++) {
    const grad = gradAt(p).map((gi, i) => gi + h.wd * p[i]);
    const bc1 = 1 - h.b1 ** t, bc2 = 1 - h.b2 ** t;
    p = p.map((pi, i) => {
      m[i] = h.b1 * m[i] + (1 - h.b1) * grad[i];
      v[i] = h.b2 * v[i] + (1 - h.b2) * grad[i] * grad[i];
      const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + h.eps;
      return pi - (h.lr / bc1) * (m[i] / denom);
    });
    trace.push(p.slice());
  }
  return trace;
}

/** torch.optim.RAdam (decoupled_weight_decay=False), single tensor, plain float64 */
function radamRef(steps: number, h: Hyper): number[][] {
  let p = P0.slice();
  const m = p.map(() => 0), v = p.map(() => 0);
  const trace: number[][] = [];
  const rhoInf = 2 / (1 - h.b2) - 1;
  for (let t = 1; t <= steps; t++) {
    const grad = gradAt(p).map((gi, i) => gi + h.wd * p[i]);
    const bc1 = 1 - h.b1 ** t, bc2 = 1 - h.b2 ** t;
    const rhoT = rhoInf - (2 * t * h.b2 ** t) / bc2;
    p = p.map((pi, i) => {
      m[i] = h.b1 * m[i] + (1 - h.b1) * grad[i];
      v[i] = h.b2 * v[i] + (1 - h.b2) * grad[i] * grad[i];
      const mHat = m[i] / bc1;
      if (rhoT > 5) {
        const rect = Math.sqrt(((rhoT - 4) * (rhoT - 2) * rhoInf) / ((rhoInf - 4) * (rhoInf - 2) * rhoT));
        const adaptive = Math.sqrt(bc2) / (Math.sqrt(v[i]) + h.eps);
        return pi - mHat * h.lr * adaptive * rect;
      }
      return pi - mHat * h.lr;
    });
    trace.push(p.slice());
  }
  return trace;
}

function expectClose(got: number[], want: number[], label: string): void {
  got.forEach((x, i) => {
    const ok = Math.abs(x - want[i]) <= 1e-12 * Math.max(1, Math.abs(want[i]));
    if (!ok) throw new Error(`${label}: entry ${i}: got ${x}, want ${want[i]}`);
  });
}

describe('Adam', () => {
  const settings: [string, Hyper][] = [
    ['defaults with lr 0.1', { lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0 }],
    ['custom betas and eps', { lr: 0.05, b1: 0.5, b2: 0.9, eps: 1e-3, wd: 0 }],
    ['weightDecay 0.1', { lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.1 }],
  ];
  for (const device of ['cpu', 'cpu-unfused']) {
    for (const [name, h] of settings) {
      it(`${name} on ${device}: 12 steps equal the hand-computed PyTorch update to 1e-12`, () => {
        const p = g.tensor(Float64Array.from(P0), [5], { dtype: 'float64', device, requiresGrad: true });
        const opt = new optim.Adam([p], { lr: h.lr, betas: [h.b1, h.b2], eps: h.eps, weightDecay: h.wd });
        const ref = adamRef(12, h);
        for (let t = 0; t < 12; t++) {
          autodiffStep(p, opt);
          expectClose(arr(p), ref[t], `${name} step ${t + 1}`);
        }
        expect(opt.stepCount).toBe(12);
      });
    }
  }

  it('the default hyperparameters are PyTorch\'s', () => {
    const p = f64([1], [1], true);
    const opt = new optim.Adam([p]);
    expect([opt.lr, ...opt.betas, opt.eps, opt.weightDecay]).toEqual([1e-3, 0.9, 0.999, 1e-8, 0]);
  });

  it('parameters without a gradient are left alone; the first step moves each coordinate by about lr', () => {
    const p = f64([1, 2], [2], true), q = f64([3], [1], true);
    const opt = new optim.Adam([p, q], { lr: 0.01 });
    g.sum(g.mul(p, g.tensor([5, -0.001], null, { dtype: 'float64' }))).backward();
    opt.step();
    expect(arr(q)).toEqual([3]);
    const d = arr(p);
    expect(d[0]).toBeCloseTo(1 - 0.01, 7);
    expect(d[1]).toBeCloseTo(2 + 0.01, 4);
  });

  it('state round trip: a restored optimizer continues identically', () => {
    const h = { lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0 };
    const p = f64(P0, [5], true);
    const opt = new optim.Adam([p], { lr: h.lr });
    for (let t = 0; t < 3; t++) autodiffStep(p, opt);
    const p2 = f64(arr(p), [5], true);
    const opt2 = new optim.Adam([p2], { lr: 0.5 });
    opt2.loadStateDict(opt.stateDict());
    expect(opt2.lr).toBe(0.1);
    for (let t = 0; t < 3; t++) { autodiffStep(p, opt); autodiffStep(p2, opt2); }
    expect(arr(p2)).toEqual(arr(p));
    expectClose(arr(p), adamRef(6, h)[5], 'after restore');
  });
});

describe('RAdam', () => {
  // with beta2 = 0.999 the rectification switches on at step 6 (rho_t > 5): 12 steps cover both branches
  const settings: [string, Hyper][] = [
    ['defaults with lr 0.1', { lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0 }],
    ['weightDecay 0.05, beta2 0.99', { lr: 0.05, b1: 0.8, b2: 0.99, eps: 1e-6, wd: 0.05 }],
  ];
  for (const [name, h] of settings) {
    it(`${name}: 12 steps equal the hand-computed PyTorch update to 1e-12`, () => {
      const rhoInf = 2 / (1 - h.b2) - 1;
      const rho = (t: number) => rhoInf - (2 * t * h.b2 ** t) / (1 - h.b2 ** t);
      expect(rho(1)).toBeLessThanOrEqual(5);
      expect(rho(12)).toBeGreaterThan(5);
      const p = f64(P0, [5], true);
      const opt = new optim.RAdam([p], { lr: h.lr, betas: [h.b1, h.b2], eps: h.eps, weightDecay: h.wd });
      const ref = radamRef(12, h);
      for (let t = 0; t < 12; t++) {
        autodiffStep(p, opt);
        expectClose(arr(p), ref[t], `${name} step ${t + 1}`);
      }
    });
  }
});

describe('clipGradNorm', () => {
  it('returns the global norm and scales by maxNorm / (norm + 1e-6) when above maxNorm', () => {
    const a = f64([0, 0], [2], true), b = f64([0], [1], true), c = f64([1], [1], true);
    a.grad = g.keep(f64([3, 4], [2]));
    b.grad = g.keep(f64([12], [1]));
    const norm = optim.clipGradNorm([a, b, c], 6.5);
    expect(norm).toBeCloseTo(13, 12);
    const coef = 6.5 / (13 + 1e-6);
    expectClose(arr(a.grad), [3 * coef, 4 * coef], 'a');
    expectClose(arr(b.grad), [12 * coef], 'b');
    expect(c.grad).toBeNull();
    const after = Math.hypot(...arr(a.grad), ...arr(b.grad));
    expect(after).toBeLessThanOrEqual(6.5);
  });

  it('leaves gradients untouched when the norm is at most maxNorm', () => {
    const a = f64([0, 0], [2], true);
    a.grad = g.keep(f64([0.3, -0.4], [2]));
    expect(optim.clipGradNorm([a], 0.6)).toBeCloseTo(0.5, 14);
    expect(arr(a.grad)).toEqual([0.3, -0.4]);
    expect(optim.clipGradNorm([a], 10)).toBeCloseTo(0.5, 14);
    expect(arr(a.grad)).toEqual([0.3, -0.4]);
    // at exactly maxNorm PyTorch still multiplies by maxNorm / (norm + 1e-6) < 1
    optim.clipGradNorm([a], 0.5);
    expectClose(arr(a.grad), [0.3 * (0.5 / 0.500001), -0.4 * (0.5 / 0.500001)], 'at maxNorm');
    expect(optim.clipGradNorm([f64([1], [1], true)], 1)).toBe(0);
  });
});

describe('ReduceLROnPlateau', () => {
  const lrTrace = (opts: optim.PlateauOptions, lr: number, metrics: number[]) => {
    const opt = new optim.Adam([f64([0], [1], true)], { lr });
    const s = new optim.ReduceLROnPlateau(opt, opts);
    return metrics.map((m) => { s.step(m); return opt.lr; });
  };

  it('mode min, patience 2: reduces after three bad epochs, best resets the count', () => {
    // epoch:   1   2  3  4  5    6    7    8    9     10
    // metric: 10   9  9  9  9    8    8    8    8     8
    // bad:     0   0  1  2  3->0 0    1    2    3->0  1
    expect(lrTrace({ factor: 0.5, patience: 2 }, 1, [10, 9, 9, 9, 9, 8, 8, 8, 8, 8])).toEqual([1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]);
  });

  it('mode min, relative threshold: an improvement smaller than threshold * best is not an improvement', () => {
    // best 1; 0.99995 > 1 * (1 - 1e-4) so it is bad; 0.9 improves
    expect(lrTrace({ factor: 0.5, patience: 1 }, 1, [1, 0.99995, 0.99995, 0.9, 0.9])).toEqual([1, 1, 0.5, 0.5, 0.5]);
    // abs threshold 0.1: 0.95 is not better than 1 - 0.1
    expect(lrTrace({ factor: 0.5, patience: 0, thresholdMode: 'abs', threshold: 0.1 }, 1, [1, 0.95, 0.85])).toEqual([1, 0.5, 0.5]);
  });

  it('mode max with cooldown and minLr', () => {
    // patience 1, cooldown 2, factor 0.1, minLr 0.015; a flat metric
    // ep1 best=1; ep2 bad1; ep3 bad2>1 -> lr 0.1, cooldown 2; ep4 bad->0 (cool 1); ep5 bad->0 (cool 0);
    // ep6 bad1; ep7 bad2 -> max(0.01, 0.015) = 0.015, cooldown 2; ep8, ep9 cooling; ep10 bad1;
    // ep11 bad2 -> max(0.0015, 0.015) = 0.015: no change (difference below eps)
    const t = lrTrace({ mode: 'max', factor: 0.1, patience: 1, cooldown: 2, minLr: 0.015 }, 1, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    const want = [1, 1, 0.1, 0.1, 0.1, 0.1, 0.015, 0.015, 0.015, 0.015, 0.015];
    t.forEach((x, i) => expect(x).toBeCloseTo(want[i], 15));
  });

  it('mode max: rising metrics never reduce; rel threshold uses best * (1 + threshold)', () => {
    expect(lrTrace({ mode: 'max', patience: 0 }, 1, [1, 2, 3, 4])).toEqual([1, 1, 1, 1]);
    // 1.00005 < 1 * (1 + 1e-4): bad -> with patience 0 reduce at once
    expect(lrTrace({ mode: 'max', patience: 0, factor: 0.5 }, 1, [1, 1.00005, 2])).toEqual([1, 0.5, 0.5]);
  });

  it('eps: a reduction smaller than eps is skipped', () => {
    expect(lrTrace({ factor: 0.5, patience: 0, eps: 1e-8 }, 1e-8, [1, 1, 1])).toEqual([1e-8, 1e-8, 1e-8]);
  });

  it('state()/loadState() round trip continues the same trace', () => {
    const metrics = [5, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3];
    const full = lrTrace({ factor: 0.5, patience: 1, cooldown: 1 }, 1, metrics);
    const opt = new optim.Adam([f64([0], [1], true)], { lr: 1 });
    const s = new optim.ReduceLROnPlateau(opt, { factor: 0.5, patience: 1, cooldown: 1 });
    metrics.slice(0, 5).forEach((m) => s.step(m));
    const opt2 = new optim.Adam([f64([0], [1], true)], { lr: opt.lr });
    const s2 = new optim.ReduceLROnPlateau(opt2, { factor: 0.5, patience: 1, cooldown: 1 });
    s2.loadState(JSON.parse(JSON.stringify(s.state())));
    const rest = metrics.slice(5).map((m) => { s2.step(m); return opt2.lr; });
    expect(rest).toEqual(full.slice(5));
    expect(() => new optim.ReduceLROnPlateau(opt, { factor: 1 })).toThrow(/factor/);
  });
});

describe('optimizer arguments', () => {
  const p = () => [g.zeros([2]).requireGrad()];
  it('bad hyperparameters are errors naming the argument and its value', () => {
    expect(() => new optim.Adam(p(), { lr: -1 })).toThrow(/lr must be a positive finite number, got -1/);
    expect(() => new optim.Adam(p(), { lr: Infinity })).toThrow(/lr must be a positive finite number, got Infinity/);
    expect(() => new optim.Adam(p(), { betas: [1.5, 0.9] })).toThrow(/betas must be two numbers in \[0, 1\), got \[1.5,0.9\]/);
    expect(() => new optim.RAdam(p(), { betas: [0.9, 1] })).toThrow(/betas must be two numbers in \[0, 1\), got \[0.9,1\]/);
    expect(() => new optim.Adam(p(), { betas: [0.9] as never })).toThrow(/betas must be two numbers/);
    expect(() => new optim.Adam(p(), { eps: -1e-8 })).toThrow(/eps must be a finite number >= 0, got -1e-8/);
    expect(() => new optim.Adam(p(), { weightDecay: NaN })).toThrow(/weightDecay must be a finite number >= 0, got NaN/);
    expect(() => new optim.Adam([], {})).toThrow(/params must be a non-empty array/);
    expect(() => new optim.Adam([g.zeros([2])], {})).toThrow(/params\[0\] must be a tensor with requiresGrad/);
    expect(new optim.Adam(p(), { betas: [0, 0.999], eps: 0, weightDecay: 0 }).betas).toEqual([0, 0.999]);
  });
});

describe('clipGradNorm and ReduceLROnPlateau arguments', () => {
  it('bad values are errors naming the argument and its value', () => {
    const p = [g.zeros([2]).requireGrad()];
    expect(() => optim.clipGradNorm(p, -1)).toThrow(/clipGradNorm: maxNorm must be a positive number \(Infinity: no clipping\), got -1/);
    expect(() => optim.clipGradNorm(p, NaN)).toThrow(/got NaN/);
    expect(optim.clipGradNorm(p, Infinity)).toBe(0);
    const o = new optim.Adam(p);
    const P = (opts: optim.PlateauOptions) => () => new optim.ReduceLROnPlateau(o, opts);
    expect(P({ mode: 'up' as never })).toThrow(/mode must be 'min' or 'max', got 'up'/);
    expect(P({ factor: 0 })).toThrow(/factor must be in \(0, 1\), got 0/);
    expect(P({ factor: 1 })).toThrow(/factor must be in \(0, 1\), got 1/);
    expect(P({ patience: -1 })).toThrow(/patience must be an integer >= 0, got -1/);
    expect(P({ patience: 1.5 })).toThrow(/patience must be an integer >= 0, got 1.5/);
    expect(P({ threshold: -1 })).toThrow(/threshold must be a finite number >= 0, got -1/);
    expect(P({ thresholdMode: 'x' as never })).toThrow(/thresholdMode must be 'rel' or 'abs', got 'x'/);
    expect(P({ cooldown: -2 })).toThrow(/cooldown must be an integer >= 0, got -2/);
    expect(P({ minLr: -1 })).toThrow(/minLr must be a finite number >= 0, got -1/);
    expect(P({ eps: NaN })).toThrow(/eps must be a finite number >= 0, got NaN/);
    expect(P({ mode: 'max', factor: 0.5, patience: 0 })).not.toThrow();
  });
});

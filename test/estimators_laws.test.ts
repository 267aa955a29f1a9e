// gapgrad's estimators on its own law kit (gapgrad/testing): one suite over the registry, each method checked
// against the universal laws and the laws its definition claims. A user-defined fixture estimator
// (test/fixtures/my-estimator.ts, importing only the public package) runs through the same suite, and
// deliberately broken estimators show that each law can fail.
import { describe, it, expect } from 'vitest';
import { estimators, tensor, random, softmax, div, add, type Tensor } from 'gapgrad';
import * as laws from 'gapgrad/testing';
import { DEVICES } from './devices.ts';
import './fixtures/my-estimator.ts';

describe('the registry', () => {
  it('lists every built-in method and the fixture, each with a description and example names that resolve', () => {
    const names = estimators.list().map((m) => m.name);
    expect(names).toEqual(expect.arrayContaining(['st', 'gumbel', 'rao_gumbel', 'reinmax', 'gst', 'gst-p', 'nd_gst', 'half_gst']));
    for (const m of estimators.list()) {
      expect(m.description.length).toBeGreaterThan(5);
      for (const ex of m.examples) expect(estimators.resolve(ex).def.name).toBe(m.name);
    }
    expect(estimators.list().find((m) => m.name === 'half_gst')!.builtin).toBe(false);
    expect(String(estimators.METHODS_HELP)).toContain('half_gst');
  });

  it('define refuses duplicates, bad names, unknown laws and examples its parse rejects, naming the problem', () => {
    const build = ({ theta }: { theta: Tensor }) => ({ surrogate: softmax(theta, -1) });
    expect(() => estimators.define({ name: 'st', description: 'x', build })).toThrow(/already defined \(built in\)/);
    expect(() => estimators.define({ name: 'half_gst', description: 'x', build })).toThrow(/replace: true/);
    expect(() => estimators.define({ name: '9bad', description: 'x', build })).toThrow(/'name' must match/);
    expect(() => estimators.define({ name: 'ok1', description: 'x', build, laws: ['fast' as never] })).toThrow(/unknown law 'fast'/);
    expect(() => estimators.define({ name: 'ok2', description: 'x', build, examples: ['nope'] })).toThrow(/example 'nope'/);
    expect(() => estimators.define({ name: 'ok3', description: 'x', build, examples: ['gst-1.0'], parse: (m) => (m === 'gst-1.0' ? {} : undefined) })).toThrow(/already a name of method 'gst'/);
    expect(() => estimators.resolve('gst-x')).toThrow(/gap of gst-<gap>.*valid methods: st, gumbel/);
  });

  it('a method without a fused kernel runs on the op path by default on the CPU (no trap); impl fused says why not', () => {
    const x = tensor([[0.5, -1, 2]], null, { requiresGrad: true });
    const z = estimators.sample(x, { method: 'half_gst', key: random.key(3) });
    z.backward(tensor([[1, 2, 3]]));
    expect(Array.from(z.dataSync()).reduce((a, b) => a + b, 0)).toBe(1);
    expect(x.grad!.dataSync().every(Number.isFinite)).toBe(true);
    expect(() => estimators.sample(x, { method: 'half_gst', key: random.key(3), impl: 'fused' })).toThrow(/impl 'fused'.*'half_gst'/);
  });

  it('a definition asking for a kernel no backend has falls back to the op path', () => {
    estimators.define({ name: 'st_kernel_less', description: 'st asking for a kernel nobody registers', build: ({ theta, tau }) => ({ surrogate: softmax(div(theta, tau), -1) }), fused: () => ({ kind: 'no-such-kernel' }) }, { replace: true });
    const x = tensor([[0.5, -1, 2]], null, { requiresGrad: true });
    const a = estimators.sample(x, { method: 'st_kernel_less', key: random.key(5) });
    const b = estimators.sample(x, { method: 'st', key: random.key(5), impl: 'ops' });
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    estimators.undefine('st_kernel_less');
  });

  it('tau schedules: exp decays to its floor, linear reaches its end; bad specs name the argument', () => {
    const s = estimators.tauSchedule('exp:1.0:0.5:1e-3');
    expect(s.at(0)).toBe(1);
    expect(s.at(100)).toBeCloseTo(Math.exp(-0.1), 12);
    expect(s.at(1e6)).toBe(0.5);
    const l = estimators.tauSchedule('linear:2:1:10');
    expect([l.at(0), l.at(5), l.at(10), l.at(99)]).toEqual([2, 1.5, 1, 1]);
    expect(() => estimators.tauSchedule('exp:1:0:1', '--tau-schedule')).toThrow(/--tau-schedule: FLOOR must be a positive/);
    expect(() => estimators.tauSchedule('cos:1', '--tau-schedule')).toThrow(/unknown schedule 'cos'/);
    // sample takes a schedule and a step
    const x = tensor([[1, 2, 3]], null, { requiresGrad: true });
    const d = estimators.sampleDetailed(x, { method: 'st', key: random.key(1), tau: s, step: 1e6 });
    expect(d.tau).toBe(0.5);
  });
});

// ------------------------------------------------------------------------------------------------
describe('every registered method obeys the laws it claims (gapgrad/testing)', () => {
  for (const method of estimators.exampleMethods()) {
    for (const law of laws.lawsOf(method)) {
      it(`${method}: ${law}`, async () => {
        const fn = (laws as unknown as Record<string, (m: string, o: laws.LawOptions & { devices?: string[] }) => Promise<laws.LawResult>>)[law];
        const r = await fn(method, { sampleOptions: { k: 20 }, ...(law === 'sameSample' ? { devices: DEVICES } : {}) });
        expect(r.pass).toBe(true);
        expect(r.checks).toBeGreaterThan(0);
      });
    }
  }
  it('REINFORCE (estimators.reinforce) is unbiased against exact enumeration', async () => {
    expect((await laws.reinforceUnbiased()).pass).toBe(true);
  });
  it('the bias/variance measurement returns numbers: st at tau 1 on a linear f has zero bias and zero variance', async () => {
    const b = await laws.measureBiasVariance('st', [0.3, -1, 2], laws.linearF([1, -2, 0.5]), { samples: 200 });
    expect(b.relativeError).toBeLessThan(1e-12);
    expect(b.variance).toBeLessThan(1e-24);
    const g = await laws.measureBiasVariance('gumbel', [0.3, -1, 2], laws.quadraticF([0.2, 0.5, 0.1]), { samples: 2000 });
    expect(g.variance).toBeGreaterThan(0);
    expect(g.cosine).toBeGreaterThan(0.5);
  });
});

// ------------------------------------------------------------------------------------------------
describe('each law can fail: broken estimators are caught, with a readable AssertionError', () => {
  const def = (name: string, d: Omit<Parameters<typeof estimators.define>[0], 'name' | 'description'>) =>
    estimators.define({ name, description: `broken: ${name}`, ...d } as never, { replace: true });

  it('exactForward: a relaxed (soft) forward is not one-hot', async () => {
    def('broken_soft', { build: ({ theta }: { theta: Tensor }) => { const s = softmax(theta, -1); return { surrogate: s, sample: s }; } });
    await expect(laws.exactForward('broken_soft', { runs: 1 })).rejects.toMatchObject({ name: 'AssertionError', message: expect.stringMatching(/not one-hot/) });
    const r = await laws.exactForward('broken_soft', { runs: 1, throws: false });
    expect(r.pass).toBe(false);
  });

  it('straightThrough: a backward that is not the returned surrogate\'s VJP', async () => {
    def('broken_st', { laws: ['straight-through'], build: ({ theta }: { theta: Tensor }) => { const s = softmax(theta, -1); return { surrogate: s, backward: (g: Tensor) => estimators.surrogateVjp(s, g, 0.5) }; } });
    const r = await laws.straightThrough('broken_st', { throws: false });
    expect(r.pass).toBe(false);
    expect(r.message).toMatch(/op path: gradient .* but the surrogate's VJP is/);
  });

  it('gapProperty: a GST whose perturbed logits ignore the gap', async () => {
    def('broken_gap', { laws: ['gap'], gap: () => 1, build: ({ theta }: { theta: Tensor }) => ({ surrogate: softmax(theta, -1), perturbed: theta }) });
    await expect(laws.gapProperty('broken_gap', { runs: 2 })).rejects.toThrow(/gapProperty \(broken_gap\)/);
  });

  it('meanGap: gst-1.0 claims no mean gap, and indeed fails it', async () => {
    const r = await laws.meanGap('gst-1.0', { throws: false, runs: 2 });
    expect(r.pass).toBe(false);
    expect(r.message).toMatch(/E\[gap \| D = \d+\]/);
  });

  it('unbiased: straight-through Gumbel-softmax is biased on a quadratic f', async () => {
    const r = await laws.unbiased('gumbel', { throws: false, samples: 4000 });
    expect(r.pass).toBe(false);
  });

  it('unbiasedLinear: a surrogate at twice the temperature is biased', async () => {
    def('broken_linear', { build: ({ theta }: { theta: Tensor }) => ({ surrogate: softmax(div(theta, 2), -1) }) });
    const r = await laws.unbiasedLinear('broken_linear', { throws: false });
    expect(r.pass).toBe(false);
  });

  it('raoBlackwell: gumbel with extra noise has a larger variance than gumbel', async () => {
    def('broken_rb', {
      laws: ['rao-blackwell'], raoBlackwellOf: 'gumbel',
      build: ({ theta, gumbel, key, tau }: { theta: Tensor; gumbel: Tensor; key: random.Key; tau: number }) => {
        const extra = random.gumbel(key, theta.shape, { dtype: theta.dtype });
        return { surrogate: softmax(div(add(add(theta, gumbel), extra), tau), -1) };
      },
    });
    const r = await laws.raoBlackwell('broken_rb', { throws: false });
    expect(r.pass).toBe(false);
  });

  it('finiteGradients: a surrogate dividing by a vanishing spread gives NaN', async () => {
    def('broken_nan', { build: ({ theta }: { theta: Tensor }) => ({ surrogate: softmax(div(theta, 0), -1) }) });
    const r = await laws.finiteGradients('broken_nan', { throws: false });
    expect(r.pass).toBe(false);
  });
});

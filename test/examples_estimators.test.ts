// The worked examples of examples/estimators/ (user-defined estimators, written against the public package)
// on the law kit, as a user's own test file would check them.
import { describe, it, expect } from 'vitest';
import { estimators, tensor, random } from 'gapgrad';
import { checkEstimator, gapProperty } from 'gapgrad/testing';
import '../examples/estimators/annealed-gumbel.ts';
import '../examples/estimators/gst-pi-gap.ts';

describe('examples/estimators', () => {
  for (const method of ['anneal_gumbel-1e-4', 'anneal_gumbel-0.01', 'gst_pi-1.0', 'gst_pi-3.0']) {
    it(`${method} obeys its laws`, async () => {
      const results = await checkEstimator(method, { sampleOptions: { step: 500 } });
      expect(results.map((r) => r.law)).toEqual(expect.arrayContaining(['exactForward', 'sameSample', 'finiteGradients']));
      expect(results.every((r) => r.pass)).toBe(true);
    });
  }

  it('gst_pi: the gap law holds with the definition\'s gap and fails when checked against a larger constant gap', async () => {
    expect((await gapProperty('gst_pi-2.0')).pass).toBe(true);
    // the same perturbed logits do not keep a gap of 1 + a everywhere (π_D > 0): a law that can fail
    estimators.define({ ...estimators.resolve('gst_pi-2.0').def, name: 'gst_pi_wrong', parse: undefined, examples: undefined, gap: () => 3 } as never, { replace: true });
    const r = await gapProperty('gst_pi_wrong', { throws: false });
    expect(r.pass).toBe(false);
  });

  it('anneal_gumbel: the gradient changes with the step (τ_t falls to τ/2) while the sample does not', () => {
    const grad = (step: number) => {
      const x = tensor([[0.3, -1.2, 2.0, 0.1]], null, { requiresGrad: true });
      const z = estimators.sample(x, { method: 'anneal_gumbel-0.01', key: random.key(9), step });
      z.backward(tensor([[1, -2, 0.5, 3]]));
      return { z: Array.from(z.dataSync()), g: Array.from(x.grad!.dataSync()) };
    };
    const a = grad(0), b = grad(10_000), c = grad(20_000);
    expect(a.z).toEqual(b.z);
    expect(a.g).not.toEqual(b.g);
    expect(b.g).toEqual(c.g); // both at the floor τ/2
  });
});

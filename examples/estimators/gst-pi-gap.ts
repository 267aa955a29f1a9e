// Worked example: Gapped Straight-Through whose gap is a fixed function of π_D, defined outside gapgrad's sources.
//
//   gst_pi-<a>: GST's perturbed logits θ̃_D = max θ, θ̃_j = min(θ_j, max θ − gap) with
//   gap = 1 + a · (1 − π_D): a confident sample (π_D near 1) keeps gap 1, a surprising one gets up to 1 + a.
//   (gst-p's gap −log(1 − π_D)/π_D grows the other way; this variant is for comparison in the zoo report.)
//
// The 'gap' law of gapgrad/testing checks it through the definition's `gap`:
//   await checkEstimator('gst_pi-1.0')   // exact forward, same sample per key, finite gradients, gap property
import { estimators, softmax, mul, sum, add, div } from 'gapgrad';

estimators.define<{ a: number }>({
  name: 'gst_pi',
  syntax: 'gst_pi-<a>',
  description: 'GST with gap 1 + a·(1 − π_D), a function of the sample\'s probability',
  examples: ['gst_pi-1.0'],
  laws: ['straight-through', 'gap'],
  parse(method) {
    const m = /^gst_pi-(\d+(?:\.\d+)?)$/.exec(method);
    if (!m) {
      if (method.startsWith('gst_pi-')) throw new Error(`gst_pi: '${method}': a must be a non-negative decimal number (e.g. gst_pi-1.0)`);
      return undefined;
    }
    return { a: Number(m[1]) };
  },
  // for the law kit: the gap as a function of π_D
  gap: ({ a }) => (piD) => 1 + a * (1 - piD),
  build({ theta, onehot, tau, params }) {
    const piD = sum(mul(softmax(theta, -1), onehot), -1, true); // [..., 1]
    const gap = add(mul(piD, -params.a), 1 + params.a); // 1 + a (1 - π_D)
    const perturbed = estimators.gstPerturbedLogits(theta, onehot, gap);
    return { surrogate: softmax(div(perturbed, tau), -1), perturbed };
  },
});

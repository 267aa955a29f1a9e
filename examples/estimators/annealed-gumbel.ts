// Worked example: a temperature-annealed straight-through Gumbel-softmax, defined outside gapgrad's sources.
//
//   anneal_gumbel-<rate>: forward onehot(D) (exact, drawn by gapgrad); backward the VJP of
//   s = softmax((θ + G) / τ_t) with the sample's own Gumbel noise G and τ_t = max(τ / 2, τ · exp(−rate · step)):
//   Jang et al. (2017)'s annealing schedule, built into the method and driven by the step passed to
//   estimators.sample ({ step }), which the VAE and ListOps trainers pass every step.
//
// Load it on the command line with --estimators:
//   npx gapgrad train vae --estimators examples/estimators/annealed-gumbel.ts --method anneal_gumbel-1e-4
// or anneal plain gumbel with the generic flag instead: --method gumbel --tau-schedule exp:1:0.5:1e-4
import { estimators, add, div, softmax } from 'gapgrad';

estimators.define<{ rate: number }>({
  name: 'anneal_gumbel',
  syntax: 'anneal_gumbel-<rate>',
  description: 'straight-through Gumbel-softmax at τ_t = max(τ/2, τ·exp(−rate·step)) (Jang et al. 2017 annealing)',
  examples: ['anneal_gumbel-1e-4'],
  laws: ['straight-through'],
  parse(method) {
    const m = /^anneal_gumbel-(.+)$/.exec(method);
    if (!m) return undefined;
    const rate = Number(m[1]);
    if (!(rate >= 0) || !Number.isFinite(rate)) throw new Error(`anneal_gumbel: the rate in '${method}' must be a non-negative number`);
    return { rate };
  },
  build({ theta, gumbel, tau, step, params }) {
    const tauT = Math.max(tau / 2, tau * Math.exp(-params.rate * step));
    const perturbed = add(theta, gumbel);
    // backward: the surrogate's VJP (1/τ_t) s (g − <s, g>) at its own temperature τ_t
    return { surrogate: softmax(div(perturbed, tauT), -1), perturbed, tau: tauT };
  },
});

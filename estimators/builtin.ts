// gapgrad's own estimators, each defined once (Fan et al., ICML 2022, and the baselines it compares with).
// Every straight-through method emits onehot(D) forward and, backward, the VJP of a soft surrogate
// s = softmax(perturbed / tau); they differ only in the perturbed logits.
import * as ops from '../engine/ops.ts';
import { noGrad } from '../engine/tensor.ts';
import type { EstimatorDefinition } from './registry.ts';
import { gstPerturbedLogits, raoGumbelPerturbed, surrogateVjp } from './surrogates.ts';

const GAP_RE = /^(\d+(?:\.\d+)?)$/;

/** `PREFIX-<gap>` -> { gap }; undefined for other names; throws for a malformed gap. */
function gapParser(prefix: string): (m: string) => { gap: number } | undefined {
  return (m) => {
    if (!m.startsWith(`${prefix}-`)) return undefined;
    const s = m.slice(prefix.length + 1);
    if (prefix === 'gst' && s === 'p') return undefined; // gst-p is its own method
    if (!GAP_RE.test(s)) throw new Error(`estimators: method '${m}': the gap of ${prefix}-<gap> must be a non-negative decimal number (e.g. ${prefix}-1.0), got '${s}'`);
    return { gap: Number(s) };
  };
}

const st: EstimatorDefinition<{}> = {
  name: 'st',
  description: 'straight-through: s = softmax(θ/τ)',
  laws: ['straight-through', 'unbiased-linear'],
  build: ({ theta, tau }) => ({ surrogate: ops.softmax(ops.div(theta, tau), -1) }),
  fused: () => ({ kind: 'st' }),
};

const gumbel: EstimatorDefinition<{}> = {
  name: 'gumbel',
  description: 'straight-through Gumbel-softmax: s = softmax((θ + G)/τ) with the sample\'s own G (hard: false returns s itself)',
  laws: ['straight-through'],
  build: ({ theta, gumbel: G, tau, hard }) => {
    const perturbed = ops.add(theta, G);
    const surrogate = ops.softmax(ops.div(perturbed, tau), -1);
    return hard === false ? { surrogate, perturbed, sample: surrogate } : { surrogate, perturbed };
  },
  // the relaxed sample is a softmax with its own graph: differentiable through the logits
  differentiable: (_p, o) => o.hard === false,
  fused: (_p, o) => (o.hard === false ? null : { kind: 'gumbel' }),
};

const raoGumbel: EstimatorDefinition<{}> = {
  name: 'rao_gumbel',
  description: 'Gumbel-Rao (Paulus et al. 2021): mean over K draws of G | D of the Gumbel-softmax surrogate VJP',
  // not 'straight-through': the backward is the mean of K surrogate VJPs, not the VJP of one surrogate
  laws: ['rao-blackwell'],
  raoBlackwellOf: 'gumbel',
  build: ({ theta, onehot, key, k, tau }) => {
    const perturbed = raoGumbelPerturbed(theta, onehot, key, k);
    // the mean of K surrogate VJPs (each draw has its own softmax Jacobian); g broadcasts over K
    const sK = ops.softmax(ops.div(perturbed, tau), -1);
    return { surrogate: ops.mean(sK, 0), perturbed, backward: (g) => ops.mean(surrogateVjp(sK, g, tau), 0) };
  },
  fused: () => ({ kind: 'rao' }),
};

const reinmax: EstimatorDefinition<{}> = {
  name: 'reinmax',
  description: 'ReinMax (Liu et al. 2023): 2 VJP(π½) − ½ VJP(π), π½ = (softmax(θ/τ) + onehot)/2',
  build: ({ theta, onehot, tau }) => {
    const pi = ops.softmax(theta, -1);
    const piHalf = ops.div(ops.add(ops.softmax(ops.div(theta, tau), -1), onehot), 2);
    return { surrogate: piHalf, backward: (g) => ops.sub(ops.mul(ops.softmaxVjp(piHalf, g, -1), 2), ops.mul(ops.softmaxVjp(pi, g, -1), 0.5)) };
  },
  fused: () => ({ kind: 'reinmax' }),
};

const gst: EstimatorDefinition<{ gap: number }> = {
  name: 'gst',
  syntax: 'gst-<gap>',
  description: 'Gapped straight-through: θ̃_D = max θ, θ̃_j = min(θ_j, max θ − gap), perturbation detached; s = softmax(θ̃/τ)',
  parse: gapParser('gst'),
  examples: ['gst-0.0', 'gst-1.0', 'gst-2.5'],
  laws: ['straight-through', 'gap'],
  gap: (p) => p.gap,
  build: ({ theta, onehot, params, tau }) => {
    const perturbed = gstPerturbedLogits(theta, onehot, params.gap);
    return { surrogate: ops.softmax(ops.div(perturbed, tau), -1), perturbed };
  },
  fused: (p) => ({ kind: 'gst', gap: p.gap }),
};

const gstP: EstimatorDefinition<{}> = {
  name: 'gst-p',
  description: 'GST with gap −log(1 − π_D)/π_D (π_D scaled by 1 − 1e-5): the mean Gumbel gap given D',
  laws: ['straight-through', 'gap', 'mean-gap'],
  gap: () => (piD: number) => { const x = piD * (1 - 1e-5); return -Math.log1p(-x) / x; },
  build: ({ theta, onehot, tau }) => {
    const perturbed = gstPerturbedLogits(theta, onehot, 'p');
    return { surrogate: ops.softmax(ops.div(perturbed, tau), -1), perturbed };
  },
  fused: () => ({ kind: 'gstp' }),
};

const ndGst: EstimatorDefinition<{ gap: number }> = {
  name: 'nd_gst',
  syntax: 'nd_gst-<gap>',
  description: 'ablation: GST with the perturbation θ̃ − θ not detached (differentiates through the cap)',
  parse: gapParser('nd_gst'),
  examples: ['nd_gst-1.0'],
  laws: ['gap'],
  gap: (p) => p.gap,
  differentiable: true,
  build: ({ theta, onehot, params, tau }) => {
    // theta~ = where(D, max, min(theta, max - gap)) differentiated (theta keeps its graph in a differentiable build)
    const M = ops.max(theta, -1, true);
    const tt = ops.where(onehot, M, ops.minimum(theta, ops.sub(M, params.gap)));
    const s = ops.softmax(ops.div(tt, tau), -1);
    const sample = ops.add(ops.sub(s, noGrad(() => ops.copyOf(s))), onehot); // value onehot, gradient of s
    return { surrogate: null, perturbed: noGrad(() => ops.copyOf(tt)), sample };
  },
};

/** The built-in definitions, in the order `estimators.list()` shows them. */
export const BUILTIN_ESTIMATORS: readonly EstimatorDefinition<any>[] = [st, gumbel, raoGumbel, reinmax, gst, gstP, ndGst];

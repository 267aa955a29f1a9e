/**
 * `gapgrad/testing`: the property-law kit for discrete gradient estimators, gapgrad's own and yours
 * (estimators.define). Framework-agnostic: each law is an async function that returns a {@link LawResult}
 * and, on failure, throws a {@link LawViolation} (name `AssertionError`) with a readable message, so it
 * works from vitest, jest or `node:test`. Thresholds come from the sampling error at a stated false-alarm
 * rate (`alpha`, default 1e-6 per law); inputs come from fast-check with a fixed seed.
 * @example
 * ```ts
 * import { test } from 'vitest';
 * import { estimators } from 'gapgrad';
 * import { checkEstimator } from 'gapgrad/testing';
 * estimators.define({ name: 'my_st', description: '...', laws: ['straight-through'], build: ... });
 * test('my_st obeys its laws', () => checkEstimator('my_st'));
 * ```
 * @module testing
 */
export {
  exactForward, sameSample, straightThrough, gapProperty, meanGap, unbiasedLinear, unbiased, reinforceUnbiased, raoBlackwell,
  finiteGradients, checkEstimator, lawsOf, measureBiasVariance, linearF, quadraticF, LawViolation,
  type LawOptions, type LawResult, type TestFunction, type BiasVariance,
} from './testing/laws.ts';
export { logitsCase, makeLogitsCase, temperature, type LogitsCase, type LogitsOptions, type MaskMode } from './testing/arbitraries.ts';
export { chiSquareTest, chiSquareCritical, normalQuantile, softmax64, type ChiSquareResult } from './testing/stats.ts';

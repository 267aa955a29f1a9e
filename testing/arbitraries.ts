// fast-check arbitraries for estimator inputs: logits (shapes, category counts, masks, -Infinity, near-ties,
// extreme spreads) and temperatures.
import fc from 'fast-check';
import { mulberry32 } from './stats.ts';

/** How masked categories are given: none, a mask tensor of the logits' shape, a mask row broadcast over the batch, or -Infinity logits. */
export type MaskMode = 'none' | 'mask-full' | 'mask-row' | 'neginf';

/** One generated estimator input: `rows` rows of `C` logits (batch shape `batch`), with its masking. */
export interface LogitsCase {
  /** Categories. */
  C: number;
  /** Batch shape; its product is `rows`. */
  batch: number[];
  /** Number of rows. */
  rows: number;
  /** θ: rows × C, -Infinity where masked. */
  theta: Float64Array;
  /** What is passed as logits (masked entries hold finite junk where a mask tensor masks them). */
  raw: Float64Array;
  /** 1 where allowed (rows × C). */
  allowed: Uint8Array;
  /** How masking is given. */
  maskMode: MaskMode;
  /** The mask tensor's shape and values (null without a mask tensor). */
  maskShape: number[];
  /** The mask's values (1 allowed, 0 masked), or null. */
  maskData: Float64Array | null;
  /** Half-width of the logits' range. */
  spread: number;
  /** Whether the row's values are near-ties (all within 1e-6 · spread of one value). */
  nearTies: boolean;
}

/** Options of {@link logitsCase}. */
export interface LogitsOptions {
  /** Smallest category count (default 2). */
  minC?: number;
  /** Largest category count (default 64; up to 1000 and more). */
  maxC?: number;
  /** Batch shapes to choose from (default `[[], [3], [2, 2]]`). */
  batches?: number[][];
  /** Masking modes (default all four). */
  masks?: MaskMode[];
  /** Spreads (half-widths) to choose from (default 0, 0.5, 3, 10, 30). */
  spreads?: number[];
  /** Also draw extreme spreads (1e-30, 1e-8, 1e4) and near-ties (default false). */
  extremes?: boolean;
}

/**
 * Build one case from its parameters (deterministic in `seed`): logits uniform in [-spread, spread], each
 * row keeping at least one allowed category.
 */
export function makeLogitsCase(C: number, batch: number[], spread: number, maskMode: MaskMode, maskDensity: number, seed: number, nearTies = false): LogitsCase {
  const rnd = mulberry32(seed);
  const rows = batch.reduce((a, b) => a * b, 1);
  const raw = new Float64Array(rows * C);
  const centre = (2 * rnd() - 1) * spread;
  for (let i = 0; i < raw.length; i++) raw[i] = nearTies ? centre + (2 * rnd() - 1) * 1e-6 * Math.max(spread, 1e-300) : (2 * rnd() - 1) * spread;
  const allowed = new Uint8Array(rows * C).fill(1);
  let maskData: Float64Array | null = null;
  let maskShape: number[] = [];
  if (maskMode === 'mask-row') {
    const m = new Float64Array(C);
    const keep = Math.floor(rnd() * C);
    for (let j = 0; j < C; j++) m[j] = j === keep || rnd() >= maskDensity ? 1 : 0;
    for (let r = 0; r < rows; r++) for (let j = 0; j < C; j++) allowed[r * C + j] = m[j];
    maskData = m; maskShape = [C];
  } else if (maskMode !== 'none') {
    for (let r = 0; r < rows; r++) {
      const keep = Math.floor(rnd() * C);
      for (let j = 0; j < C; j++) allowed[r * C + j] = j === keep || rnd() >= maskDensity ? 1 : 0;
    }
    if (maskMode === 'mask-full') { maskData = Float64Array.from(allowed); maskShape = [...batch, C]; }
  }
  const theta = raw.map((v, i) => (allowed[i] ? v : -Infinity));
  if (maskMode === 'neginf') raw.set(theta);
  return { C, batch, rows, theta, raw, allowed, maskMode, maskShape, maskData, spread, nearTies };
}

/**
 * Logits with masks, -Infinity entries, category counts from `minC` to `maxC`, batch shapes, and (with `extremes`)
 * very large and very small spreads and near-ties.
 * @param opts - ranges
 */
export function logitsCase(opts: LogitsOptions = {}): fc.Arbitrary<LogitsCase> {
  const spreads = [...(opts.spreads ?? [0, 0.5, 3, 10, 30]), ...(opts.extremes ? [1e-30, 1e-8, 1e4] : [])];
  // noBias: small runs must cover large C, large spreads and every mask mode, not only small values
  return fc.noBias(fc.record({
    C: fc.integer({ min: opts.minC ?? 2, max: opts.maxC ?? 64 }),
    batch: fc.constantFrom(...(opts.batches ?? [[], [3], [2, 2]])),
    spread: fc.constantFrom(...spreads),
    maskMode: fc.constantFrom<MaskMode>(...(opts.masks ?? ['none', 'mask-full', 'mask-row', 'neginf'])),
    maskDensity: fc.integer({ min: 0, max: 70 }).map((v) => v / 100),
    nearTies: opts.extremes ? fc.boolean() : fc.constant(false),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  })).map((r) => makeLogitsCase(r.C, r.batch, r.spread, r.maskMode, r.maskDensity, r.seed, r.nearTies));
}

/**
 * Temperatures, log-uniform in [min, max] (default 0.05 to 5), rounded to 3 significant digits.
 * @param opts - range
 */
export function temperature(opts: { min?: number; max?: number } = {}): fc.Arbitrary<number> {
  const lo = Math.log(opts.min ?? 0.05), hi = Math.log(opts.max ?? 5);
  return fc.integer({ min: 0, max: 1000 }).map((i) => Number(Math.exp(lo + ((hi - lo) * i) / 1000).toPrecision(3)));
}

// Out-of-range values are refused with an error naming the argument and the value (they used to give NaN,
// zeros or index 0 silently): class labels, embedding indices, one-hot indices, categorical rows with nothing
// to draw, split counts and estimator masks. On WebGPU, indices and masks created from host values are checked
// on the host.
import { describe, it, expect } from 'vitest';
import * as g from '../index.ts';
import { webgpuAvailable, initWebGPU } from '../backends/webgpu/index.ts';

const i32 = (v: number[], device = 'cpu') => g.tensor(Int32Array.from(v), [v.length], { dtype: 'int32', device });

describe('out-of-range arguments (cpu)', () => {
  it('crossEntropy: a label outside [0, C) is an error naming targets and the label', () => {
    const logits = g.tensor([[1, 2, 3], [0, 0, 0]]);
    expect(() => g.crossEntropy(logits, i32([0, 5]))).toThrow(/crossEntropy: argument 'targets' contains 5; class labels of 3 classes must be in \[0, 3\)/);
    expect(() => g.crossEntropy(logits, i32([-1, 0]))).toThrow(/'targets' contains -1/);
    expect(Number.isFinite(g.crossEntropy(logits, i32([2, 0])).item())).toBe(true);
  });

  it('nn.Embedding / take, gather and oneHot refuse indices outside the axis', () => {
    const emb = new g.nn.Embedding(3, 2, { key: g.random.key(0) });
    expect(() => emb.forward(i32([0, 5]))).toThrow(/take: argument 'indices' contains 5; indices into axis 0 of size 3 must be in \[0, 3\)/);
    expect(emb.forward(i32([2, 1])).shape).toEqual([2, 2]);
    expect(() => g.gather(g.tensor([[1, 2]]), g.tensor([[0, 2]], null, { dtype: 'int32' }), 1)).toThrow(/gather: argument 'indices' contains 2/);
    expect(() => g.oneHot(i32([1, 3]), 3)).toThrow(/oneHot: argument 'indices' contains 3; indices of a one-hot of depth 3 must be in \[0, 3\)/);
    expect(() => g.oneHot(i32([-2]), 3)).toThrow(/contains -2/);
  });

  it('random.categorical: a row of -Infinity or with NaN is an error, not index 0', () => {
    const k = g.random.key(1);
    expect(() => g.random.categorical(k, g.tensor([[0, 0], [-Infinity, -Infinity]]))).toThrow(/row 1 of 'logits' .* -Infinity everywhere/);
    expect(() => g.random.categorical(k, g.tensor([[NaN, 0]]))).toThrow(/row 0 of 'logits' .* contains NaN/);
    expect(g.random.categorical(k, g.tensor([[-Infinity, 0]])).dataSync()[0]).toBe(1);
  });

  it('random.split: a negative or fractional count is an error', () => {
    expect(() => g.random.split(g.random.key(0), -1)).toThrow(/random.split: n must be a non-negative integer, got -1/);
    expect(() => g.random.split(g.random.key(0), 1.5)).toThrow(/got 1.5/);
    expect(g.random.split(g.random.key(0), 3)).toHaveLength(3);
  });

  it('estimators: a mask with 0.5, -1 or NaN is an error (fused and composed)', () => {
    const logits = g.tensor([[0.1, 0.2, 0.3]], null, { requiresGrad: true });
    for (const impl of ['fused', 'ops'] as const) {
      for (const bad of [0.5, -1, NaN]) {
        const mask = g.tensor([[1, bad, 1]]);
        expect(() => g.estimators.sample(logits, { method: 'gst-1.0', key: g.random.key(0), mask, impl })).toThrow(new RegExp(`argument 'mask' contains ${bad} at flat index 1`));
      }
      expect(g.estimators.sample(logits, { method: 'gst-1.0', key: g.random.key(0), mask: g.tensor([[1, 0, 1]]), impl }).dataSync()[1]).toBe(0);
    }
  });
});

const avail = await webgpuAvailable();
describe.skipIf(!avail.ok)('out-of-range arguments (webgpu, host-created values)', () => {
  it('labels, indices and masks made from host values are checked without reading the device', async () => {
    await initWebGPU();
    const logits = g.tensor([[1, 2, 3]], null, { device: 'webgpu' });
    expect(() => g.crossEntropy(logits, i32([3], 'webgpu'))).toThrow(/'targets' contains 3/);
    const emb = new g.nn.Embedding(3, 2, { key: g.random.key(0), device: 'webgpu' });
    expect(() => emb.forward(i32([-1], 'webgpu'))).toThrow(/'indices' contains -1/);
    expect(() => g.oneHot(i32([7], 'webgpu'), 3)).toThrow(/contains 7/);
    const mask = g.tensor([[1, 0.5, 1]], null, { device: 'webgpu' });
    expect(() => g.estimators.sample(logits, { method: 'st', key: g.random.key(0), mask })).toThrow(/'mask' contains 0.5/);
    const ok = await g.crossEntropy(logits, i32([2], 'webgpu')).data();
    expect(Number.isFinite(ok[0])).toBe(true);
  });
});

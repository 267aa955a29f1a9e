// Bad input raises an Error whose message names the op, the argument and the shapes (or dtypes).
import { describe, it, expect } from 'vitest';
import * as g from '../index.ts';
import { nn } from '../index.ts';
import { CpuBackend } from '../backends/cpu/index.ts';

const i32 = (v: number[], shape?: number[]) => g.tensor(v, shape ?? null, { dtype: 'int32' });

/** expect fn to throw an Error whose message contains every fragment */
function throwsWith(fn: () => unknown, ...fragments: string[]): void {
  let err: unknown = null;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected a throw mentioning ${fragments.join(' | ')}`).toBeInstanceOf(Error);
  const msg = (err as Error).message;
  for (const f of fragments) expect(msg, msg).toContain(f);
}

describe('shape mismatches', () => {
  it('add/sub/mul/where: cannot broadcast, both shapes and argument names', () => {
    throwsWith(() => g.add(g.zeros([2, 3]), g.zeros([4])), 'add', '[2,3] (a)', '[4] (b)');
    throwsWith(() => g.mul(g.zeros([3, 1]), g.zeros([2, 2])), 'mul', '[3,1] (a)', '[2,2] (b)');
    throwsWith(() => g.zeros([5]).sub(g.zeros([2])), 'sub', '[5]', '[2]');
    throwsWith(() => g.where(g.zeros([3]), g.zeros([2]), 0), 'where', '[3] (cond)', '[2] (a)');
    throwsWith(() => g.expand(g.zeros([2, 3]), [4, 3]), 'expand', '[2,3]', '[4,3]');
  });

  it('matmul: inner dimensions, batch broadcasting, rank 0, dtypes', () => {
    throwsWith(() => g.matmul(g.zeros([2, 3]), g.zeros([4, 5])), 'matmul', 'a has shape [2,3]', 'b has shape [4,5]');
    throwsWith(() => g.matmul(g.zeros([2, 2, 3]), g.zeros([3, 3, 1])), 'matmul', '[2] (a batch)', '[3] (b batch)');
    throwsWith(() => g.matmul(g.zeros([]), g.zeros([3])), 'matmul', 'rank >= 1', '[] (a)', '[3] (b)');
    throwsWith(() => g.matmul(g.zeros([3]), g.zeros([4])), 'matmul', '3', '4');
    throwsWith(() => g.matmul(g.zeros([2, 2]), g.zeros([2, 2], { dtype: 'float64' })), 'matmul', 'float32 (a)', 'float64 (b)');
  });

  it('concat and stack: the offending input, its shape and the axis', () => {
    throwsWith(() => g.concat([g.zeros([2, 3]), g.zeros([2, 4]), g.zeros([3, 3])], 0), 'concat', 'xs[1]', '[2,4]', '[2,3]', 'axis 0');
    throwsWith(() => g.concat([g.zeros([2, 3]), g.zeros([2])], 1), 'concat', 'xs[1]', '[2]');
    throwsWith(() => g.concat([]), 'concat', 'non-empty');
    throwsWith(() => g.concat([g.zeros([2])], 3), 'concat', 'axis 3', 'rank 1');
    throwsWith(() => g.stack([g.zeros([2]), g.zeros([3])]), 'stack', 'xs[1]', '[3]', '[2]');
  });

  it('linear: input, weight and bias shapes', () => {
    throwsWith(() => g.linear(g.zeros([4, 3]), g.zeros([2, 5])), 'linear', 'input', '[4,3]', 'weight', '[2,5]');
    throwsWith(() => g.linear(g.zeros([4, 3]), g.zeros([2, 3]), g.zeros([3])), 'linear', 'bias', '[2]', '[3]');
    throwsWith(() => g.linear(g.zeros([3]), g.zeros([3])), 'linear', 'weight', '[3]');
    throwsWith(() => new nn.Linear(3, 2).forward(g.zeros([1, 4])), 'linear', '[1,4]', '[2,3]');
  });

  it('crossEntropy and the binary cross-entropies: logits/target shapes', () => {
    throwsWith(() => g.crossEntropy(g.zeros([4, 3]), i32([0, 1, 2])), 'crossEntropy', 'logits', 'targets', '[4,3]', '[3]');
    throwsWith(() => g.crossEntropy(g.zeros([4]), i32([0, 1, 2, 0])), 'crossEntropy', '[4]');
    throwsWith(() => g.binaryCrossEntropy(g.zeros([2]), g.zeros([3])), 'binaryCrossEntropy', 'p', 'target', '[2]', '[3]');
    throwsWith(() => g.binaryCrossEntropyWithLogits(g.zeros([2, 1]), g.zeros([2])), 'binaryCrossEntropyWithLogits', '[2,1]', '[2]');
    throwsWith(() => g.crossEntropy(g.zeros([2, 3]), i32([0, 1]), 'avg' as never), 'crossEntropy', "reduction", "'avg'");
  });

  it('reshape, permute, slice, squeeze, gather, backward seed', () => {
    throwsWith(() => g.reshape(g.zeros([2, 3]), [4, 2]), 'reshape', '[2,3]', '[4,2]');
    throwsWith(() => g.reshape(g.zeros([2, 3]), [4, -1]), 'reshape', '-1', '6');
    throwsWith(() => g.permute(g.zeros([2, 3]), [0, 0]), 'permute', '[0,0]', '[2,3]');
    throwsWith(() => g.slice(g.zeros([2, 3]), [1, 2], [1, 2]), 'slice', '[2,3]');
    throwsWith(() => g.squeeze(g.zeros([2, 3]), 1), 'squeeze', 'axis 1', 'size 3');
    throwsWith(() => g.gather(g.zeros([2, 3]), i32([0, 1], [2]), 1), 'gather', 'indices', '[2]', '[2,3]');
    throwsWith(() => g.sum(g.zeros([2, 3]), 2), 'sum', 'axis 2', 'rank 2');
    const x = g.ones([2], { requiresGrad: true });
    throwsWith(() => g.mul(x, 2).backward(g.ones([3])), 'backward', '[3]', '[2]');
  });
});

describe('dtypes', () => {
  it('int32 into a float-only op names the op, the argument and the dtype', () => {
    throwsWith(() => g.exp(i32([1, 2])), 'exp', "argument 'x'", 'int32');
    throwsWith(() => g.log(i32([1])), 'log', 'int32');
    throwsWith(() => g.softmax(i32([1, 2])), 'softmax', 'int32');
    throwsWith(() => g.matmul(i32([1, 2, 3, 4], [2, 2]), i32([1, 2, 3, 4], [2, 2])), 'matmul', "'a'", 'int32');
    throwsWith(() => i32([1]).requireGrad(), 'requiresGrad', 'int32');
  });

  it('float indices into gather/take/crossEntropy/oneHot', () => {
    throwsWith(() => g.gather(g.zeros([2, 3]), g.zeros([2, 1]), 1), 'gather', "'indices'", 'int32', 'float32');
    throwsWith(() => g.take(g.zeros([4, 2]), g.tensor([1.5])), 'take', "'indices'", 'float32');
    throwsWith(() => g.crossEntropy(g.zeros([2, 3]), g.zeros([2])), 'crossEntropy', "'targets'", 'float32');
    throwsWith(() => g.oneHot(g.zeros([2]), 3), 'oneHot', 'float32');
  });

  it('unknown dtype names the creating function and the value', () => {
    throwsWith(() => g.tensor([1, 2], null, { dtype: 'float16' as never }), 'tensor', 'dtype', "'float16'");
    throwsWith(() => g.zeros([2], { dtype: 'bool' as never }), 'dtype', "'bool'");
    throwsWith(() => g.full([2], 1, { dtype: 'uint8' as never }), 'full', "'uint8'");
  });

  it('non-tensor arguments name the op and the argument', () => {
    throwsWith(() => g.exp(null as never), 'exp', "'x'", 'null');
    throwsWith(() => g.matmul(g.zeros([2, 2]), [1, 2] as never), 'matmul', "'b'");
    throwsWith(() => g.add(1 as never, 2 as never), 'add', 'Tensor');
  });
});

describe('devices', () => {
  it('unknown device names the device and the known ones', () => {
    throwsWith(() => g.tensor([1], null, { device: 'tpu' }), "unknown device 'tpu'", 'cpu');
    throwsWith(() => g.zeros([2], { device: 'tpu' }), "'tpu'");
    throwsWith(() => g.setDefaultDevice('nope'), "'nope'");
    throwsWith(() => g.tensor([1], null, { device: 'webgpu' }), "'webgpu'", 'initWebGPU');
  });

  it('mixing devices names the op and both devices', () => {
    g.registerBackend('cpu-b', new CpuBackend());
    const a = g.zeros([2]), b = g.zeros([2], { device: 'cpu-b' });
    throwsWith(() => g.add(a, b), 'add', "'cpu'", "'cpu-b'");
    throwsWith(() => g.matmul(g.zeros([2, 2]), g.zeros([2, 2], { device: 'cpu-b' })), 'matmul', "'cpu-b'");
    throwsWith(() => g.concat([a, b]), 'concat', 'xs[1]', "'cpu-b'");
  });
});

describe('creation and lifetime', () => {
  it('ragged nested arrays name the axis and the lengths', () => {
    throwsWith(() => g.tensor([[1, 2], [3]]), 'tensor', 'ragged', 'expected length 2', 'axis 1', 'got 1');
    throwsWith(() => g.tensor([[1, 2], 3] as never), 'tensor', 'ragged', 'a scalar');
    throwsWith(() => g.tensor([1, [2, 3]] as never), 'tensor', 'ragged');
    throwsWith(() => g.tensor([1, 2, 3], [2, 2]), 'tensor', '[2,2]', '4', '3');
    throwsWith(() => g.zeros([2, -1]), 'full', 'shape', '[2,-1]');
  });

  it('item() on a non-scalar names the shape', () => {
    throwsWith(() => g.zeros([2, 3]).item(), 'item', '[2,3]');
    expect(g.zeros([1, 1]).item()).toBe(0);
  });

  it('use after dispose names the tensor and its shape', () => {
    const t = g.ones([2, 2]);
    t.dispose();
    expect(t.isDisposed).toBe(true);
    throwsWith(() => t.dataSync(), 'disposed', '[2,2]');
    throwsWith(() => g.exp(t), 'disposed', '[2,2]');
    throwsWith(() => g.add(g.ones([2, 2]), t), 'disposed');
    t.dispose(); // idempotent
  });

  it('backward on a non-scalar without grad, and on a graph without grad', () => {
    const x = g.ones([2, 3], { requiresGrad: true });
    throwsWith(() => g.mul(x, 2).backward(), 'backward', 'gradient argument', '[2,3]');
    throwsWith(() => g.ones([1]).backward(), 'backward', 'does not require grad');
  });

  it('customVjp validates its backward', () => {
    const bad = g.customVjp({
      name: 'badOp',
      forward: ([x]) => ({ outputs: [g.mul(x, 2)], residuals: null }),
      backward: () => [g.ones([3]), null],
    });
    const x = g.ones([2], { requiresGrad: true });
    throwsWith(() => g.sum(bad(x)[0]).backward(), 'badOp', '2 cotangents', '1 inputs');
    const bad2 = g.customVjp({
      name: 'badShape',
      forward: ([x]) => ({ outputs: [g.mul(x, 2)], residuals: null }),
      backward: () => [g.ones([3])],
    });
    throwsWith(() => g.sum(bad2(x)[0]).backward(), 'badShape', '[3]', '[2]');
  });
});

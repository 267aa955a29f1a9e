// The op table. Each op computes its forward with backend primitives (or with other ops) and
// registers its vector-Jacobian product right beside it, written in ops. Gradients are summed back
// to each input's shape in one place (sumTo, called by the tape).
//
// Primitives used (engine/backend.ts): unary, binary, where, copy, copyInto, reduceLast, argmaxLast,
// matmul, gather, scatterAdd, randomBits, fill.
import { Tensor, record, numel, contiguousStrides, full, tensor, noGrad, valueSummary, type Device } from './tensor.ts';
import type { DType } from './dtype.ts';
import { isFloat } from './dtype.ts';
import type { UnaryOp, BinaryOp } from './elementwise.ts';
import type { View, LinearAct } from './backend.ts';

/** @inline */
type T = Tensor;
/** A tensor or a number (a number acts as a 0-d tensor of the other argument's dtype). @inline */
type TN = Tensor | number;

// ---------------------------------------------------------------- helpers
function fail(op: string, msg: string): never {
  throw new Error(`${op}: ${msg}`);
}

function checkTensor(x: unknown, op: string, arg: string): asserts x is Tensor {
  if (!(x instanceof Tensor)) fail(op, `argument '${arg}' must be a Tensor, got ${x === null ? 'null' : typeof x}`);
}

function promote(a: DType, b: DType): DType {
  if (a === b) return a;
  if (a === 'float64' || b === 'float64') return 'float64';
  return 'float32';
}

function scalarLike(v: number, like: T, dtype?: DType): T {
  return full([], v, { dtype: dtype ?? like.dtype, device: like.device });
}

function lift(x: TN, like: T, op: string, arg: string): T {
  if (typeof x === 'number') return scalarLike(x, like, isFloat(like.dtype) || Number.isInteger(x) ? like.dtype : 'float32');
  checkTensor(x, op, arg);
  if (x.device !== like.device) fail(op, `arguments are on different devices: '${like.device}' and '${x.device}' (argument '${arg}')`);
  return x;
}

/**
 * NumPy broadcast of two shapes; throws naming both. Internal (not exported from the package root).
 * @internal
 */
export function broadcastShapes(a: readonly number[], b: readonly number[], op = 'broadcast', names = ['a', 'b']): number[] {
  const r = Math.max(a.length, b.length);
  const out = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1, db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      fail(op, `cannot broadcast shapes [${a}] (${names[0]}) and [${b}] (${names[1]})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

function normAxis(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= Math.max(rank, 1)) fail(op, `axis ${axis} is out of range for a tensor of rank ${rank}`);
  return a;
}

function normAxes(axis: number | number[] | null | undefined, rank: number, op: string): number[] {
  if (axis === null || axis === undefined) return [...Array(rank).keys()];
  const list = (Array.isArray(axis) ? axis : [axis]).map((a) => normAxis(a, rank, op));
  return [...new Set(list)].sort((x, y) => x - y);
}

function requireFloat(x: T, op: string, arg = 'x'): void {
  if (!isFloat(x.dtype)) fail(op, `argument '${arg}' must be a floating tensor, got ${x.dtype}`);
}

// ---------------------------------------------------------------- elementwise
function unaryRaw(op: UnaryOp, x: T, outDtype: DType = x.dtype): T {
  return Tensor.fromBuf(x.backend.unary(op, x.viewFor(x.shape), x.shape, outDtype), x.shape.slice(), x.device);
}

function binaryRaw(op: BinaryOp, a: T, b: T, opName: string, outDtype?: DType): T {
  const shape = broadcastShapes(a.shape, b.shape, opName);
  const dt = outDtype ?? promote(a.dtype, b.dtype);
  return Tensor.fromBuf(a.backend.binary(op, a.viewFor(shape), b.viewFor(shape), shape, dt), shape, a.device);
}

function defUnary(op: UnaryOp & string, vjp: ((x: T, y: T, g: T) => T) | null, floatOnly = true) {
  return (x: T): T => {
    checkTensor(x, op, 'x');
    if (floatOnly) requireFloat(x, op);
    const y = unaryRaw(op, x);
    if (vjp) record(op, [x], [y], ([g]) => [vjp(x, y, g!)]);
    return y;
  };
}

/** Elementwise negation `-x` (any dtype). @function */
export const neg = defUnary('neg', (_x, _y, g) => neg(g), false);
/** Elementwise `e^x`. @function */
export const exp = defUnary('exp', (_x, y, g) => mul(g, y));
/** Elementwise natural logarithm. @function */
export const log = defUnary('log', (x, _y, g) => div(g, x));
/** e^x - 1, exact to the last bits near 0 (torch.expm1) */
export const expm1 = defUnary('expm1', (_x, y, g) => mul(g, add(y, 1)));
/** log(1 + x), exact to the last bits near 0 (torch.log1p) */
export const log1p = defUnary('log1p', (x, _y, g) => div(g, add(x, 1)));
/** log(1 + e^x) without overflow or cancellation (torch.nn.functional.softplus with beta 1) */
export const softplus = defUnary('softplus', (x, _y, g) => mul(g, sigmoid(x)));
/** Elementwise square root. @function */
export const sqrt = defUnary('sqrt', (_x, y, g) => div(g, mul(y, 2)));
/** Elementwise absolute value (any dtype). @function */
export const abs = defUnary('abs', (x, _y, g) => mul(g, sign(x)), false);
/** Elementwise `max(x, 0)`. @function */
export const relu = defUnary('relu', (x, _y, g) => mul(g, unaryRaw('step', x)));
/** Elementwise logistic function `1 / (1 + e^-x)`. @function */
export const sigmoid = defUnary('sigmoid', (_x, y, g) => mul(g, mul(y, rsub(1, y))));
/** Elementwise hyperbolic tangent. @function */
export const tanh = defUnary('tanh', (_x, y, g) => mul(g, rsub(1, mul(y, y))));
/** Elementwise `x * x` (any dtype). @function */
export const square = defUnary('square', (x, _y, g) => mul(g, mul(x, 2)), false);
/** Elementwise `1 / x`. @function */
export const reciprocal = defUnary('recip', (_x, y, g) => neg(mul(g, mul(y, y))));
/** Elementwise sign: -1, 0 or 1 (no gradient). @function */
export const sign = defUnary('sign', null, false);
/** Elementwise floor (no gradient). @function */
export const floor = defUnary('floor', null);
/** Elementwise cosine. @function */
export const cos = defUnary('cos', (x, _y, g) => neg(mul(g, sin(x))));
/** Elementwise sine. @function */
export const sin = defUnary('sin', (x, _y, g) => mul(g, cos(x)));
/** 1 where x is finite, 0 where it is NaN or infinite (like `torch.isfinite`, as a float tensor). @function */
export const isFinite = (x: T): T => unaryRaw('isfinite', x, x.dtype === 'int32' ? 'float32' : x.dtype);

/** A binary op's signatures: at least one argument is a tensor (two numbers raise at runtime). */
interface BinaryFn {
  /**
   * @param a - a tensor
   * @param b - a tensor or a number
   */
  (a: Tensor, b: Tensor | number): Tensor;
  /**
   * @param a - a number
   * @param b - a tensor
   */
  (a: number, b: Tensor): Tensor;
}

function defBinary(op: BinaryOp, vjp: ((a: T, b: T, y: T, g: T) => [T | null, T | null]) | null): BinaryFn {
  return (a: TN, b: TN): T => {
    if (typeof a === 'number' && typeof b === 'number') fail(op, 'at least one argument must be a Tensor');
    const A = typeof a === 'number' ? lift(a, b as T, op, 'a') : (checkTensor(a, op, 'a'), a);
    const B = lift(b, A, op, 'b');
    if (A.device !== B.device) fail(op, `arguments are on different devices: '${A.device}' (a) and '${B.device}' (b)`);
    const y = vjp ? binaryRaw(op, A, B, op) : binaryRaw(op, A, B, op, isFloat(A.dtype) || isFloat(B.dtype) ? promote(A.dtype, B.dtype) : 'float32');
    if (vjp) record(op, [A, B], [y], ([g]) => vjp(A, B, y, g!));
    return y;
  };
}

/**
 * Elementwise `a + b` with broadcasting; either argument may be a number.
 * @example
 * ```ts
 * add(tensor([1, 2]), 10); // [11, 12]
 * ```
 * @function
 */
export const add = defBinary('add', (_a, _b, _y, g) => [g, g]);
/** Elementwise `a - b` with broadcasting; either argument may be a number (`sub(1, x)` is `1 - x`). @function */
export const sub = defBinary('sub', (_a, _b, _y, g) => [g, neg(g)]);
/** Elementwise `a * b` with broadcasting; either argument may be a number. @function */
export const mul = defBinary('mul', (a, b, _y, g) => [a.requiresGrad ? mul(g, b) : null, b.requiresGrad ? mul(g, a) : null]);
/** Elementwise `a / b` with broadcasting; either argument may be a number. @function */
export const div = defBinary('div', (a, b, y, g) => [a.requiresGrad ? div(g, b) : null, b.requiresGrad ? neg(div(mul(g, y), b)) : null]);
/** Elementwise `a ** b` with broadcasting (as `Math.pow`); either argument may be a number. @function */
export const pow = defBinary('pow', (a, b, y, g) => [
  a.requiresGrad ? mul(g, mul(b, pow(a, sub(b, 1)))) : null,
  b.requiresGrad ? mul(g, mul(y, log(a))) : null,
]);
/** Elementwise maximum with broadcasting (at ties the gradient is split equally between a and b, as PyTorch's). @function */
export const maximum = defBinary('maximum', (a, b, _y, g) => {
  const m = tieSplit(binaryRaw('gt', a, b, 'maximum', g.dtype), binaryRaw('ge', a, b, 'maximum', g.dtype));
  return [mul(g, m), mul(g, rsub(1, m))];
});
/** Elementwise minimum with broadcasting (at ties the gradient is split equally between a and b, as PyTorch's). @function */
export const minimum = defBinary('minimum', (a, b, _y, g) => {
  const m = tieSplit(binaryRaw('lt', a, b, 'minimum', g.dtype), binaryRaw('le', a, b, 'minimum', g.dtype));
  return [mul(g, m), mul(g, rsub(1, m))];
});
/** (strict + loose) / 2: 1 where a wins, 1/2 at a tie, 0 where b wins */
function tieSplit(strict: T, loose: T): T {
  return noGrad(() => mul(add(strict, loose), 0.5));
}
/** Elementwise `a < b` as 0/1 (floating result, no gradient). @function */
export const lt = defBinary('lt', null);
/** Elementwise `a <= b` as 0/1 (floating result, no gradient). @function */
export const le = defBinary('le', null);
/** Elementwise `a > b` as 0/1 (floating result, no gradient). @function */
export const gt = defBinary('gt', null);
/** Elementwise `a >= b` as 0/1 (floating result, no gradient). @function */
export const ge = defBinary('ge', null);
/** Elementwise `a == b` as 0/1 (floating result, no gradient). @function */
export const eq = defBinary('eq', null);
/** Elementwise `a != b` as 0/1 (floating result, no gradient). @function */
export const ne = defBinary('ne', null);

/**
 * `c - x` for a number c. Internal; `sub(c, x)` does the same.
 * @internal
 */
export function rsub(c: number, x: T): T {
  return sub(scalarLike(c, x), x);
}

/**
 * Select `a` where `cond` is non-zero, else `b`; all three broadcast together (`torch.where`).
 * @param cond - condition tensor (non-zero = true)
 * @param a - values where true (tensor or number)
 * @param b - values where false (tensor or number)
 * @example
 * ```ts
 * where(x.gt(0), x, x.mul(0.1)); // leaky ReLU
 * ```
 */
export function where(cond: T, a: TN, b: TN): T {
  checkTensor(cond, 'where', 'cond');
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : null;
  const A = like ? lift(a, like, 'where', 'a') : scalarLike(a as number, cond, 'float32');
  const B = lift(b, A, 'where', 'b');
  const shape = broadcastShapes(broadcastShapes(cond.shape, A.shape, 'where', ['cond', 'a']), B.shape, 'where', ['cond/a', 'b']);
  const dt = promote(A.dtype, B.dtype);
  const y = Tensor.fromBuf(cond.backend.where(cond.viewFor(shape), A.viewFor(shape), B.viewFor(shape), shape, dt), shape, cond.device);
  record('where', [A, B], [y], ([g]) => {
    const z = zerosLike(g!);
    return [A.requiresGrad ? where(cond, g!, z) : null, B.requiresGrad ? where(cond, z, g!) : null];
  });
  return y;
}

/**
 * Clamp into `[lo, hi]` (`torch.clamp`); a bound may be a number, a broadcastable tensor, or null/undefined for none.
 * With number bounds the gradient passes where lo <= x <= hi, boundaries included (as PyTorch's); with tensor
 * bounds it is the gradient of maximum/minimum (split equally at ties), and reaches the bounds too.
 * @param x - input tensor
 * @param lo - lower bound
 * @param hi - upper bound
 */
export function clamp(x: T, lo?: TN | null, hi?: TN | null): T {
  checkTensor(x, 'clamp', 'x');
  const hasLo = lo !== null && lo !== undefined, hasHi = hi !== null && hi !== undefined;
  if (!hasLo && !hasHi) return x;
  if ((hasLo && typeof lo !== 'number') || (hasHi && typeof hi !== 'number')) {
    let v = x;
    if (hasLo) v = maximum(v, lo!);
    if (hasHi) v = minimum(v, hi!);
    return v;
  }
  const y = noGrad(() => {
    let v = x;
    if (hasLo) v = maximum(v, lo!);
    if (hasHi) v = minimum(v, hi!);
    return v;
  });
  record('clamp', [x], [y], ([g]) => {
    const inside = noGrad(() => {
      let m: T | null = hasLo ? binaryRaw('ge', x, scalarLike(lo as number, x), 'clamp', g!.dtype) : null;
      if (hasHi) {
        const h = binaryRaw('le', x, scalarLike(hi as number, x), 'clamp', g!.dtype);
        m = m ? mul(m, h) : h;
      }
      return m!;
    });
    return [mul(g!, inside)];
  });
  return y;
}

/**
 * Convert to another dtype (differentiable between floating dtypes).
 * @param x - input tensor
 * @param dtype - target dtype
 */
export function cast(x: T, dtype: DType): T {
  checkTensor(x, 'cast', 'x');
  if (x.dtype === dtype) return x;
  if (dtype === 'float64' && !x.backend.supportsFloat64) fail('cast', `device '${x.device}' does not support float64`);
  const y = Tensor.fromBuf(x.backend.copy(x.viewFor(x.shape), x.shape, dtype), x.shape.slice(), x.device);
  if (isFloat(dtype)) record('cast', [x], [y], ([g]) => [cast(g!, x.dtype)]);
  return y;
}

/** Zeros with x's shape, dtype and device. @function */
export const zerosLike = (x: T): T => full(x.shape, 0, { dtype: x.dtype, device: x.device });
/** Ones with x's shape, dtype and device. @function */
export const onesLike = (x: T): T => full(x.shape, 1, { dtype: x.dtype, device: x.device });
/**
 * A new buffer with the same values, outside the graph. Internal.
 * @internal
 */
export function copyOf(x: T): T {
  return Tensor.fromBuf(x.backend.copy(x.viewFor(x.shape), x.shape, x.dtype), x.shape.slice(), x.device);
}

/**
 * A copy in a new buffer that stays in the graph (`torch.clone`): the gradient passes through unchanged.
 * @param x - input tensor
 */
export function clone(x: T): T {
  checkTensor(x, 'clone', 'x');
  const y = copyOf(x);
  record('clone', [x], [y], ([g]) => [g]);
  return y;
}

/**
 * The same values cut from the graph (shares the buffer).
 * @param x - input tensor
 */
export function detach(x: T): T {
  return x.detach();
}

// ---------------------------------------------------------------- shape ops
/**
 * View the values with another shape (row-major; one entry may be -1 to infer it). Shares the buffer.
 * @param x - input tensor
 * @param shape - new shape with the same element count
 */
export function reshape(x: T, shape: number[]): T {
  checkTensor(x, 'reshape', 'x');
  const s = shape.slice();
  const neg1 = s.indexOf(-1);
  if (neg1 >= 0) {
    const rest = numel(s.filter((_, i) => i !== neg1));
    if (rest === 0 || x.size % rest !== 0) fail('reshape', `cannot infer -1 in [${shape}] for ${x.size} elements`);
    s[neg1] = x.size / rest;
  }
  if (!s.every((d) => Number.isInteger(d) && d >= 0) || numel(s) !== x.size) {
    fail('reshape', `cannot reshape a tensor of shape [${x.shape}] (${x.size} elements) to [${shape}]`);
  }
  const y = x.withShape(s);
  record('reshape', [x], [y], ([g]) => [reshape(g!, x.shape)]);
  return y;
}

/**
 * Reorder the axes (`torch.permute`).
 * @param x - input tensor
 * @param dims - a permutation of the axes (negative axes count from the end)
 */
export function permute(x: T, dims: number[]): T {
  checkTensor(x, 'permute', 'x');
  if (dims.length !== x.rank || new Set(dims.map((d) => normAxis(d, x.rank, 'permute'))).size !== x.rank) {
    fail('permute', `dims [${dims}] is not a permutation of the ${x.rank} axes of shape [${x.shape}]`);
  }
  const p = dims.map((d) => normAxis(d, x.rank, 'permute'));
  const own = contiguousStrides(x.shape);
  const shape = p.map((d) => x.shape[d]);
  const view: View = { buf: x.buf, strides: p.map((d) => own[d]), offset: 0 };
  const y = Tensor.fromBuf(x.backend.copy(view, shape, x.dtype), shape, x.device);
  record('permute', [x], [y], ([g]) => {
    const inv = new Array<number>(p.length);
    p.forEach((d, i) => { inv[d] = i; });
    return [permute(g!, inv)];
  });
  return y;
}

/**
 * Swap two axes (default: the last two).
 * @param x - input tensor
 * @param a - first axis
 * @param b - second axis
 */
export function transpose(x: T, a = -2, b = -1): T {
  const r = x.rank;
  const dims = [...Array(r).keys()];
  const i = normAxis(a, r, 'transpose'), j = normAxis(b, r, 'transpose');
  [dims[i], dims[j]] = [dims[j], dims[i]];
  return permute(x, dims);
}

/**
 * Broadcast size-1 (or missing leading) axes to `shape`.
 * @param x - input tensor
 * @param shape - target shape
 */
export function expand(x: T, shape: number[]): T {
  checkTensor(x, 'expand', 'x');
  const out = broadcastShapes(x.shape, shape, 'expand', ['x', 'shape']);
  if (out.join() !== shape.join()) fail('expand', `cannot expand shape [${x.shape}] to [${shape}]`);
  const y = Tensor.fromBuf(x.backend.copy(x.viewFor(shape), shape, x.dtype), shape.slice(), x.device);
  record('expand', [x], [y], ([g]) => [g]); // the tape sums back to x's shape
  return y;
}

/**
 * Insert an axis of size 1 at `axis` (negative counts from the end of the result).
 * @param x - input tensor
 * @param axis - position of the new axis
 */
export function unsqueeze(x: T, axis: number): T {
  const a = axis < 0 ? axis + x.rank + 1 : axis;
  const s = x.shape.slice();
  s.splice(a, 0, 1);
  return reshape(x, s);
}

/**
 * Remove axes of size 1: all of them, or only `axis` (which must have size 1).
 * @param x - input tensor
 * @param axis - the axis to remove
 */
export function squeeze(x: T, axis?: number): T {
  if (axis === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const a = normAxis(axis, x.rank, 'squeeze');
  if (x.shape[a] !== 1) fail('squeeze', `axis ${axis} has size ${x.shape[a]}, expected 1`);
  return reshape(x, x.shape.filter((_, i) => i !== a));
}

/**
 * Merge axes `startAxis..endAxis` (inclusive) into one (`torch.flatten`); a 0-d tensor becomes shape [1].
 * @param x - input tensor
 * @param startAxis - first axis to merge (default 0)
 * @param endAxis - last axis to merge (default -1)
 */
export function flatten(x: T, startAxis = 0, endAxis = -1): T {
  checkTensor(x, 'flatten', 'x');
  if (x.rank === 0) return reshape(x, [1]);
  const s = normAxis(startAxis, x.rank, 'flatten'), e = normAxis(endAxis, x.rank, 'flatten');
  if (s > e) fail('flatten', `startAxis ${startAxis} comes after endAxis ${endAxis} for a tensor of rank ${x.rank}`);
  return reshape(x, [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
}

/**
 * Sum a gradient back to `shape` (the adjoint of broadcasting). Internal: the tape calls it.
 * @internal
 */
export function sumTo(g: T, shape: readonly number[]): T {
  if (g.shape.join() === shape.join()) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let d = 0; d < g.rank; d++) {
    if (d < lead || (shape[d - lead] === 1 && g.shape[d] !== 1)) axes.push(d);
  }
  return reshape(axes.length ? sum(g, axes, true) : g, shape.slice());
}

/**
 * A block of x starting at `begin` with extent `size` (TF.js convention: -1 or a missing entry means to the end).
 * @param x - input tensor
 * @param begin - start index per axis (missing trailing entries are 0)
 * @param size - extent per axis
 * @example
 * ```ts
 * slice(x, [0, 1], [-1, 2]); // x[:, 1:3]
 * ```
 */
export function slice(x: T, begin: number[], size?: number[]): T {
  checkTensor(x, 'slice', 'x');
  if (begin.length > x.rank) fail('slice', `begin has ${begin.length} entries for a tensor of rank ${x.rank}`);
  const b = x.shape.map((_, d) => begin[d] ?? 0);
  const s = x.shape.map((n, d) => (size?.[d] === undefined || size[d] === -1 ? n - b[d] : size[d]));
  x.shape.forEach((n, d) => {
    if (!Number.isInteger(b[d]) || b[d] < 0 || s[d] < 0 || b[d] + s[d] > n) {
      fail('slice', `begin [${begin}] with size [${size ?? ''}] is out of bounds for shape [${x.shape}]`);
    }
  });
  const own = contiguousStrides(x.shape);
  const offset = b.reduce((acc, bd, d) => acc + bd * own[d], 0);
  const y = Tensor.fromBuf(x.backend.copy({ buf: x.buf, strides: own, offset }, s, x.dtype), s, x.device);
  record('slice', [x], [y], ([g]) => {
    const z = zerosLike(x);
    z.backend.copyInto({ buf: z.buf, strides: own, offset }, g!.viewFor(s), s);
    return [z];
  });
  return y;
}

/**
 * `length` entries of one axis from `start` (`torch.narrow`).
 * @param x - input tensor
 * @param axis - the axis
 * @param start - first index
 * @param length - number of entries
 */
export function narrow(x: T, axis: number, start: number, length: number): T {
  const a = normAxis(axis, x.rank, 'narrow');
  const begin = x.shape.map((_, d) => (d === a ? start : 0));
  const size = x.shape.map((n, d) => (d === a ? length : n));
  return slice(x, begin, size);
}

/**
 * Join tensors along an existing axis (`torch.cat`); other axes must match.
 * @param xs - tensors on one device
 * @param axis - the axis to join along (default 0)
 */
export function concat(xs: T[], axis = 0): T {
  if (!Array.isArray(xs) || xs.length === 0) fail('concat', 'expected a non-empty array of tensors');
  xs.forEach((x, i) => checkTensor(x, 'concat', `xs[${i}]`));
  const first = xs[0];
  const a = normAxis(axis, first.rank, 'concat');
  xs.forEach((x, i) => {
    if (x.rank !== first.rank || x.shape.some((n, d) => d !== a && n !== first.shape[d])) {
      fail('concat', `xs[${i}] has shape [${x.shape}], incompatible with [${first.shape}] along axis ${axis}`);
    }
    if (x.device !== first.device) fail('concat', `xs[${i}] is on '${x.device}', xs[0] on '${first.device}'`);
  });
  const dt = xs.map((x) => x.dtype).reduce(promote);
  const shape = first.shape.slice();
  shape[a] = xs.reduce((acc, x) => acc + x.shape[a], 0);
  const own = contiguousStrides(shape);
  const buf = first.backend.alloc(numel(shape), dt);
  let off = 0;
  for (const x of xs) {
    first.backend.copyInto({ buf, strides: own, offset: off * own[a] }, x.viewFor(x.shape), x.shape);
    off += x.shape[a];
  }
  const y = Tensor.fromBuf(buf, shape, first.device);
  record('concat', xs, [y], ([g]) => {
    let o = 0;
    return xs.map((x) => {
      const part = x.requiresGrad ? narrow(g!, a, o, x.shape[a]) : null;
      o += x.shape[a];
      return part;
    });
  });
  return y;
}

/**
 * Alias of {@link concat} (PyTorch's name).
 * @param xs - tensors on one device
 * @param axis - the axis to join along (default 0)
 */
export function cat(xs: T[], axis = 0): T {
  return concat(xs, axis);
}

/**
 * Join same-shape tensors along a new axis (`torch.stack`).
 * @param xs - tensors of one shape
 * @param axis - position of the new axis (default 0)
 */
export function stack(xs: T[], axis = 0): T {
  if (!Array.isArray(xs) || xs.length === 0) fail('stack', 'expected a non-empty array of tensors');
  const a = axis < 0 ? axis + xs[0].rank + 1 : axis;
  xs.forEach((x, i) => {
    checkTensor(x, 'stack', `xs[${i}]`);
    if (x.shape.join() !== xs[0].shape.join()) fail('stack', `xs[${i}] has shape [${x.shape}], expected [${xs[0].shape}]`);
  });
  return concat(xs.map((x) => unsqueeze(x, a)), a);
}

// ---------------------------------------------------------------- reductions
// Reduce the given axes: move them last (a copy only when needed), reduce the trailing block.
function reduceRaw(op: 'sum' | 'max', x: T, axes: number[], keepDims: boolean): T {
  const keep = x.shape.map((_, d) => d).filter((d) => !axes.includes(d));
  const perm = [...keep, ...axes];
  const rows = numel(keep.map((d) => x.shape[d]));
  const cols = numel(axes.map((d) => x.shape[d]));
  const outShape0 = keepDims ? x.shape.map((n, d) => (axes.includes(d) ? 1 : n)) : keep.map((d) => x.shape[d]);
  if (op === 'sum' && isFloat(x.dtype) && axes.length && axes.every((a, i) => a === i) && keep.length && cols > 1) {
    // leading axes: a product with a row of ones reads x in place (no transposing copy)
    const xv = x.withShape([cols, rows]);
    const r = columnSum(xv);
    const y = r.withShape(outShape0);
    xv.dispose();
    r.dispose();
    return y;
  }
  let src = x;
  if (perm.some((p, i) => p !== i)) {
    const own = contiguousStrides(x.shape);
    const pshape = perm.map((d) => x.shape[d]);
    src = Tensor.fromBuf(x.backend.copy({ buf: x.buf, strides: perm.map((d) => own[d]), offset: 0 }, pshape, x.dtype), pshape, x.device);
  }
  if (op === 'max' && cols === 0) fail('max', `cannot reduce an empty axis of shape [${x.shape}]`);
  const outShape = keepDims ? x.shape.map((n, d) => (axes.includes(d) ? 1 : n)) : keep.map((d) => x.shape[d]);
  const buf = x.backend.reduceLast(op, src.buf, rows, cols);
  if (src !== x) src.dispose();
  return Tensor.fromBuf(buf, outShape, x.device);
}

/**
 * Sum over `axis` (a number, a list, or null/undefined for all axes).
 * @param x - input tensor
 * @param axis - axes to reduce
 * @param keepDims - keep reduced axes with size 1
 */
export function sum(x: T, axis?: number | number[] | null, keepDims = false): T {
  checkTensor(x, 'sum', 'x');
  const axes = normAxes(axis, x.rank, 'sum');
  const y = reduceRaw('sum', x, axes, keepDims);
  record('sum', [x], [y], ([g]) => {
    const gk = keepDims ? g! : reshape(g!, x.shape.map((n, d) => (axes.includes(d) ? 1 : n)));
    return [expand(gk, x.shape)];
  });
  return y;
}

/**
 * Mean over `axis` (a number, a list, or null/undefined for all axes).
 * @param x - input tensor
 * @param axis - axes to reduce
 * @param keepDims - keep reduced axes with size 1
 */
export function mean(x: T, axis?: number | number[] | null, keepDims = false): T {
  const axes = normAxes(axis, x.rank, 'mean');
  const n = numel(axes.map((d) => x.shape[d]));
  return div(sum(x, axes, keepDims), n);
}

/**
 * Maximum over `axis` (`torch.amax`: tied maxima share the gradient equally).
 * @param x - input tensor
 * @param axis - axes to reduce (null/undefined: all)
 * @param keepDims - keep reduced axes with size 1
 */
export function max(x: T, axis?: number | number[] | null, keepDims = false): T {
  checkTensor(x, 'max', 'x');
  const axes = normAxes(axis, x.rank, 'max');
  const y = reduceRaw('max', x, axes, keepDims);
  record('max', [x], [y], ([g]) => {
    const kshape = x.shape.map((n, d) => (axes.includes(d) ? 1 : n));
    const yk = y.withShape(kshape);
    const mask = binaryRaw('eq', x, yk, 'max', g!.dtype);
    const count = reduceRaw('sum', mask, axes, true);
    return [mul(mask, div(reshape(g!, kshape), count))];
  });
  return y;
}

/**
 * Minimum over `axis` (`torch.amin`: tied minima share the gradient equally).
 * @param x - input tensor
 * @param axis - axes to reduce (null/undefined: all)
 * @param keepDims - keep reduced axes with size 1
 */
export function min(x: T, axis?: number | number[] | null, keepDims = false): T {
  return neg(max(neg(x), axis, keepDims));
}

/**
 * Index of the first maximum along one axis, as int32.
 * @param x - input tensor
 * @param axis - the axis (default -1)
 * @param keepDims - keep the axis with size 1
 */
export function argmax(x: T, axis = -1, keepDims = false): T {
  checkTensor(x, 'argmax', 'x');
  const a = normAxis(axis, x.rank, 'argmax');
  const moved = a === x.rank - 1 ? x : noGrad(() => permute(x, [...x.shape.keys()].filter((d) => d !== a).concat([a])));
  const cols = x.shape[a];
  if (cols === 0) fail('argmax', `cannot take argmax over an empty axis of shape [${x.shape}]`);
  const buf = x.backend.argmaxLast(moved.buf, x.size / cols, cols);
  if (moved !== x) moved.dispose();
  const shape = keepDims ? x.shape.map((n, d) => (d === a ? 1 : n)) : x.shape.filter((_, d) => d !== a);
  return Tensor.fromBuf(buf, shape, x.device);
}

/**
 * Index of the first minimum along one axis, as int32.
 * @param x - input tensor
 * @param axis - the axis (default -1)
 * @param keepDims - keep the axis with size 1
 */
export function argmin(x: T, axis = -1, keepDims = false): T {
  return argmax(noGrad(() => neg(x)), axis, keepDims);
}

/**
 * `log(sum(exp(x)))` over `axis`, computed stably.
 * @param x - floating input
 * @param axis - an axis or a list of axes (default -1)
 * @param keepDims - keep reduced axes with size 1
 */
export function logsumexp(x: T, axis: number | number[] = -1, keepDims = false): T {
  const m = noGrad(() => max(x, axis, true));
  const safe = noGrad(() => where(isFinite(m), m, 0));
  const r = add(log(sum(exp(sub(x, safe)), axis, true)), safe);
  return keepDims ? r : reshape(r, r.shape.filter((_, d) => !normAxes(axis, x.rank, 'logsumexp').includes(d)));
}

/**
 * Softmax along an axis.
 * @param x - floating input
 * @param axis - the axis (default -1)
 */
export function softmax(x: T, axis = -1): T {
  checkTensor(x, 'softmax', 'x');
  requireFloat(x, 'softmax');
  const a = normAxis(axis, x.rank, 'softmax');
  const fused = softmaxFused(x, a, false);
  const s = fused ?? noGrad(() => {
    const m = max(x, a, true);
    const e = exp(sub(x, where(isFinite(m), m, 0)));
    return div(e, sum(e, a, true));
  });
  record('softmax', [x], [s], ([g]) => [softmaxVjpFused(s, g!, a, false) ?? softmaxVjp(s, g!, a)]);
  return s;
}

// One pass per row where the backend has it (softmaxLast), over the last axis only.
function softmaxFused(x: T, a: number, log: boolean): T | null {
  const be = x.backend;
  if (!be.softmaxLast || a !== x.rank - 1 || x.size === 0) return null;
  const cols = x.shape[a];
  return Tensor.fromBuf(be.softmaxLast(x.buf, x.size / cols, cols, log), x.shape.slice(), x.device);
}

function softmaxVjpFused(y: T, g: T, a: number, log: boolean): T | null {
  const be = y.backend;
  if (!be.softmaxLastVjp || a !== y.rank - 1 || y.size === 0 || g.dtype !== y.dtype || !sameShape(g.shape, y.shape)) return null;
  const cols = y.shape[a];
  return Tensor.fromBuf(be.softmaxLastVjp(y.buf, g.buf, y.size / cols, cols, log), y.shape.slice(), y.device);
}

function sameShape(p: number[], q: number[]): boolean {
  return p.length === q.length && p.every((d, i) => d === q[i]);
}

/**
 * The VJP of softmax at output s: `s * (g - sum(s * g))`. Internal; shared by softmax and the estimators.
 * @internal
 */
export function softmaxVjp(s: T, g: T, axis = -1): T {
  return mul(s, sub(g, sum(mul(s, g), axis, true)));
}

/**
 * Log-softmax along an axis, computed stably.
 * @param x - floating input
 * @param axis - the axis (default -1)
 */
export function logSoftmax(x: T, axis = -1): T {
  checkTensor(x, 'logSoftmax', 'x');
  requireFloat(x, 'logSoftmax');
  const a = normAxis(axis, x.rank, 'logSoftmax');
  const y = softmaxFused(x, a, true) ?? noGrad(() => sub(x, logsumexp(x, a, true)));
  record('logSoftmax', [x], [y], ([g]) => [softmaxVjpFused(y, g!, a, true) ?? sub(g!, mul(exp(y), sum(g!, a, true)))]);
  return y;
}

// ---------------------------------------------------------------- matmul
function mmRaw(a: T, b: T, transA: boolean, transB: boolean, batch: number, aB: boolean, bB: boolean): T {
  const [m, k] = transA ? [a.shape[a.rank - 1], a.shape[a.rank - 2]] : [a.shape[a.rank - 2], a.shape[a.rank - 1]];
  const n = transB ? b.shape[b.rank - 2] : b.shape[b.rank - 1];
  const buf = a.backend.matmul({
    a: a.buf, b: b.buf, batch, m, n, k, transA, transB,
    aBatchStride: aB ? m * k : 0, bBatchStride: bB ? k * n : 0,
  });
  return Tensor.fromBuf(buf, [batch, m, n], a.device);
}

/**
 * Matrix product with NumPy semantics: batched over leading axes with broadcasting; 1-d arguments are promoted as in `torch.matmul`.
 * @param a - floating tensor, rank >= 1
 * @param b - same dtype and device as a
 * @example
 * ```ts
 * matmul(zeros([8, 3, 4]), zeros([4, 5])).shape; // [8, 3, 5]
 * ```
 */
export function matmul(a: T, b: T): T {
  checkTensor(a, 'matmul', 'a');
  checkTensor(b, 'matmul', 'b');
  if (a.device !== b.device) fail('matmul', `arguments are on different devices: '${a.device}' (a) and '${b.device}' (b)`);
  if (a.rank === 0 || b.rank === 0) fail('matmul', `arguments must have rank >= 1, got shapes [${a.shape}] (a) and [${b.shape}] (b)`);
  if (a.dtype !== b.dtype) fail('matmul', `dtypes differ: ${a.dtype} (a) and ${b.dtype} (b)`);
  requireFloat(a, 'matmul', 'a');
  if (a.rank === 1 && b.rank === 1) return reshape(matmul(unsqueeze(a, 0), unsqueeze(b, -1)), []); // dot product -> 0-d
  if (a.rank === 1) return squeeze(matmul(unsqueeze(a, 0), b), -2);
  if (b.rank === 1) return squeeze(matmul(a, unsqueeze(b, -1)), -1);
  const m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], k2 = b.shape[b.rank - 2], n = b.shape[b.rank - 1];
  if (k !== k2) fail('matmul', `inner dimensions differ: a has shape [${a.shape}], b has shape [${b.shape}]`);
  const batchShape = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul', ['a batch', 'b batch']);
  const batch = numel(batchShape);
  const prep = (x: T, r: number, c: number): [T, boolean] => {
    const xb = numel(x.shape.slice(0, -2));
    if (xb === 1) return [x, false];
    if (x.shape.slice(0, -2).join() === batchShape.join()) return [x, true];
    return [noGrad(() => expand(x, [...batchShape, r, c])), true];
  };
  const [A, aB] = prep(a, m, k);
  const [B, bB] = prep(b, k, n);
  const y3 = mmRaw(A, B, false, false, batch, aB, bB);
  const y = y3.withShape([...batchShape, m, n]);
  y3.dispose();
  record('matmul', [a, b], [y], ([g]) => {
    const g3 = reshape(g!, [batch, m, n]);
    let ga: T | null = null, gb: T | null = null;
    if (a.requiresGrad) {
      // dA = g @ B^T, summed over broadcast batch
      const r = mmRaw(g3, B, false, true, batch, true, bB);
      ga = sumTo(reshape(r, [...batchShape, m, k]), a.shape);
    }
    if (b.requiresGrad) {
      // dB = A^T @ g
      const r = bB || !aB ? mmRaw(A, g3, true, false, batch, aB, true) : null;
      if (r) gb = sumTo(reshape(r, [...batchShape, k, n]), b.shape);
      else {
        // b is shared across a batched a: fold the batch into the rows
        const A2 = reshape(A, [batch * m, k]), g2 = reshape(g3, [batch * m, n]);
        gb = reshape(mmRaw(A2, g2, true, false, 1, false, false), b.shape);
      }
    }
    return [ga, gb];
  });
  return y;
}

export type { LinearAct } from './backend.ts';

/**
 * `act(x @ w^T + b)` with `w` stored (out, in) as in PyTorch's `F.linear`; fused where the backend can.
 * @param x - input (..., in)
 * @param w - weight (out, in)
 * @param b - optional bias (out)
 * @param act - 'none' (default) or 'relu'
 */
export function linear(x: T, w: T, b?: T | null, act: LinearAct = 'none'): T {
  checkTensor(x, 'linear', 'x');
  checkTensor(w, 'linear', 'weight');
  if (w.rank !== 2) fail('linear', `weight must have shape (out, in), got [${w.shape}]`);
  const [out, inn] = w.shape;
  if (x.rank < 1 || x.shape[x.rank - 1] !== inn) fail('linear', `input has shape [${x.shape}], expected last axis ${inn} to match weight [${w.shape}]`);
  if (x.dtype !== w.dtype) fail('linear', `dtypes differ: ${x.dtype} (x) and ${w.dtype} (weight)`);
  if (b && (b.rank !== 1 || b.shape[0] !== out)) fail('linear', `bias must have shape [${out}], got [${b.shape}]`);
  if (act !== 'none' && act !== 'relu') fail('linear', `activation must be 'none' or 'relu', got '${act}'`);
  const rows = x.size / inn;
  const x2 = x.withShape([rows, inn]);
  const outShape = [...x.shape.slice(0, -1), out];
  const be = x.backend;
  let y: T;
  if (be.matmulBiasAct && (b || act !== 'none') && isFloat(x.dtype) && (!b || b.dtype === x.dtype)) {
    const buf = be.matmulBiasAct({
      a: x2.buf, b: w.buf, batch: 1, m: rows, n: out, k: inn, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0,
    }, b ? b.buf : null, act);
    y = Tensor.fromBuf(buf, outShape, x.device);
  } else {
    const y3 = mmRaw(x2, w, false, true, 1, false, false);
    y = y3.withShape(outShape);
    y3.dispose();
    if (b) {
      // the bias joins the same node: its gradient is a column sum, done as ones(1, rows) @ g
      const yb = binaryRaw('add', y, b, 'linear');
      y.dispose();
      y = yb;
    }
    if (act === 'relu') {
      const yr = unaryRaw('relu', y);
      y.dispose();
      y = yr;
    }
  }
  const inputs = b ? [x, w, b] : [x, w];
  record(act === 'relu' ? 'linearRelu' : 'linear', inputs, [y], ([g]) => {
    // relu: the cotangent where the output is positive (y > 0 exactly where the pre-activation is),
    // 0 elsewhere and where y is NaN; one pass (reluGrad)
    const gm = act === 'relu' ? binaryRaw('reluGrad', g!, y, 'linear') : g!;
    const g2 = gm.withShape([rows, out]);
    const gx = x.requiresGrad ? mmRaw(g2, w, false, false, 1, false, false).withShape(x.shape.slice()) : null;
    const gw = w.requiresGrad ? mmRaw(g2, x2, true, false, 1, false, false).withShape([out, inn]) : null;
    const gb = b?.requiresGrad ? columnSum(g2).withShape([out]) : null;
    return b ? [gx, gw, gb] : [gx, gw];
  });
  return y;
}

/**
 * `relu(x @ w^T + b)` as one op; same as `linear(x, w, b, 'relu')`.
 * @param x - input (..., in)
 * @param w - weight (out, in)
 * @param b - optional bias (out)
 */
export function linearRelu(x: T, w: T, b?: T | null): T {
  return linear(x, w, b, 'relu');
}

/** Sum over the rows of a (rows, cols) tensor as a product with a row of ones: (1, cols). */
function columnSum(g2: T): T {
  const ones = full([1, g2.shape[0]], 1, { dtype: g2.dtype, device: g2.device });
  return mmRaw(ones, g2, false, false, 1, false, false);
}

// ---------------------------------------------------------------- indexing
function checkIndex(idx: T, op: string, arg = 'indices'): void {
  checkTensor(idx, op, arg);
  if (idx.dtype !== 'int32') fail(op, `argument '${arg}' must be an int32 tensor, got ${idx.dtype}`);
}

/**
 * Every index in [0, n): checked where the values are known on the host (every CPU tensor; on WebGPU, indices
 * created from host values). Indices computed on a WebGPU device are not checked (a read would stall its queue):
 * the WebGPU gather clamps an out-of-range index to the nearest valid one, and its gradient is dropped.
 */
function checkIndexRange(idx: T, n: number, op: string, arg: string, what: string): void {
  if (idx.size === 0) return;
  const s = valueSummary(idx);
  if (s && (s.min < 0 || s.max >= n)) {
    const bad = s.min < 0 ? s.min : s.max;
    fail(op, `argument '${arg}' contains ${bad}; ${what} must be in [0, ${n})`);
  }
}

/**
 * `torch.gather`: out[..., j, ...] = x[..., indices[..., j, ...], ...] along `axis`; indices has x's rank and shape except along `axis`.
 * @param x - source tensor
 * @param indices - int32 tensor
 * @param axis - the axis (default -1)
 */
export function gather(x: T, indices: T, axis = -1): T {
  checkTensor(x, 'gather', 'x');
  checkIndex(indices, 'gather');
  const a = normAxis(axis, x.rank, 'gather');
  if (indices.rank !== x.rank || indices.shape.some((n, d) => d !== a && n !== x.shape[d])) {
    fail('gather', `indices of shape [${indices.shape}] must match x's shape [${x.shape}] except along axis ${axis}`);
  }
  const outer = numel(x.shape.slice(0, a)), n = x.shape[a], m = indices.shape[a], inner = numel(x.shape.slice(a + 1));
  checkIndexRange(indices, n, 'gather', 'indices', `indices into axis ${a} of size ${n}`);
  const y = Tensor.fromBuf(x.backend.gather(x.buf, indices.buf, outer, n, m, inner), indices.shape.slice(), x.device);
  record('gather', [x], [y], ([g]) => [Tensor.fromBuf(x.backend.scatterAdd(g!.buf, indices.buf, outer, n, m, inner), x.shape.slice(), x.device)]);
  return y;
}

/**
 * Select entries along an axis with an int32 index tensor of any shape (`torch.index_select` generalised; an embedding lookup on axis 0). Result shape: x's shape with `axis` replaced by indices' shape.
 * @param x - source tensor
 * @param indices - int32 tensor of any shape
 * @param axis - the axis (default 0)
 */
export function take(x: T, indices: T, axis = 0): T {
  checkTensor(x, 'take', 'x');
  checkIndex(indices, 'take');
  const a = normAxis(axis, x.rank, 'take');
  checkIndexRange(indices, x.shape[a], 'take', 'indices', `indices into axis ${a} of size ${x.shape[a]}`);
  const flat = reshape(indices, [indices.size]);
  const outer = x.shape.slice(0, a), inner = x.shape.slice(a + 1);
  const idxShape = [...outer, indices.size, ...inner];
  const idx = noGrad(() => expand(reshape(flat, [...outer.map(() => 1), indices.size, ...inner.map(() => 1)]), idxShape));
  const y = gather(x, idx, a);
  return reshape(y, [...outer, ...indices.shape, ...inner]);
}

/**
 * One-hot encoding of int32 indices: shape `[...indices.shape, depth]` (no gradient).
 * @param indices - int32 tensor with values in [0, depth)
 * @param depth - number of classes
 * @param dtype - result dtype (default float32)
 */
export function oneHot(indices: T, depth: number, dtype: DType = 'float32'): T {
  checkIndex(indices, 'oneHot');
  if (!Number.isInteger(depth) || depth <= 0) fail('oneHot', `depth must be a positive integer, got ${depth}`);
  checkIndexRange(indices, depth, 'oneHot', 'indices', `indices of a one-hot of depth ${depth}`);
  return noGrad(() => {
    const r = tensor(Int32Array.from({ length: depth }, (_, i) => i), [depth], { device: indices.device });
    return cast(eq(unsqueeze(indices, -1), r), dtype);
  });
}

/**
 * Cumulative sum along an axis.
 * @param x - floating input
 * @param axis - the axis (default -1)
 */
export function cumsum(x: T, axis = -1): T {
  const a = normAxis(axis, x.rank, 'cumsum');
  const n = x.shape[a];
  const tri = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) tri[i * n + j] = 1; // tri[i][j] = 1 if i <= j
  const U = tensor(tri, [n, n], { dtype: x.dtype, device: x.device });
  const moved = a === x.rank - 1 ? x : transpose(x, a, -1);
  const r = matmul(moved, U);
  return a === x.rank - 1 ? r : transpose(r, a, -1);
}

// ---------------------------------------------------------------- losses
/** How a loss reduces its elementwise values. */
export type Reduction = 'mean' | 'sum' | 'none';
function reduce(x: T, reduction: Reduction, op: string): T {
  if (reduction === 'mean') return mean(x);
  if (reduction === 'sum') return sum(x);
  if (reduction === 'none') return x;
  fail(op, `reduction must be 'mean', 'sum' or 'none', got '${reduction}'`);
}

/**
 * Binary cross-entropy on probabilities, as PyTorch's BCELoss (`F.binary_cross_entropy`): each log clamped at -100,
 * and the gradient in p (p - t) / max(p (1 - p), 1e-12), so finite at p = 0 or 1 (0 where the target equals p,
 * +-1e12 where not).
 * @param p - probabilities in [0, 1]
 * @param target - targets in [0, 1], same shape
 * @param reduction - 'mean' (default), 'sum' or 'none'
 */
export function binaryCrossEntropy(p: T, target: T, reduction: Reduction = 'mean'): T {
  checkTensor(p, 'binaryCrossEntropy', 'p');
  checkTensor(target, 'binaryCrossEntropy', 'target');
  requireFloat(p, 'binaryCrossEntropy', 'p');
  if (p.shape.join() !== target.shape.join()) fail('binaryCrossEntropy', `p has shape [${p.shape}] but target has shape [${target.shape}]`);
  const [lp, lq, l] = noGrad(() => {
    const lp = maximum(log(p), -100), lq = maximum(log1p(neg(p)), -100);
    return [lp, lq, neg(add(mul(target, lp), mul(rsub(1, target), lq)))];
  });
  record('binaryCrossEntropy', [p, target], [l], ([g]) => [
    p.requiresGrad ? mul(g!, div(sub(p, target), maximum(mul(p, rsub(1, p)), 1e-12))) : null,
    target.requiresGrad ? mul(g!, sub(lq, lp)) : null,
  ]);
  return reduce(l, reduction, 'binaryCrossEntropy');
}

/**
 * Binary cross-entropy on logits, stable (`F.binary_cross_entropy_with_logits`).
 * @param z - logits
 * @param target - targets in [0, 1], same shape
 * @param reduction - 'mean' (default), 'sum' or 'none'
 */
export function binaryCrossEntropyWithLogits(z: T, target: T, reduction: Reduction = 'mean'): T {
  checkTensor(z, 'binaryCrossEntropyWithLogits', 'logits');
  checkTensor(target, 'binaryCrossEntropyWithLogits', 'target');
  requireFloat(z, 'binaryCrossEntropyWithLogits');
  if (z.shape.join() !== target.shape.join()) fail('binaryCrossEntropyWithLogits', `logits have shape [${z.shape}] but target has shape [${target.shape}]`);
  // softplus(z) - z t in one elementwise pass; the derivative sigmoid(z) - t is smooth at z = 0
  // (relu/abs subgradients would give 0 there instead of 1/2)
  const l = binaryRaw('bceLogits', z, target, 'binaryCrossEntropyWithLogits');
  record('binaryCrossEntropyWithLogits', [z, target], [l], ([g]) => [
    mul(g!, binaryRaw('bceLogitsGrad', z, target, 'binaryCrossEntropyWithLogits')),
    target.requiresGrad ? mul(g!, neg(z)) : null,
  ]);
  return reduce(l, reduction, 'binaryCrossEntropyWithLogits');
}

/**
 * Cross-entropy of logits (N, C) against int32 class targets (N) (`F.cross_entropy`).
 * @param logits - (N, C) floating tensor
 * @param targets - (N) int32 class indices
 * @param reduction - 'mean' (default), 'sum' or 'none'
 */
export function crossEntropy(logits: T, targets: T, reduction: Reduction = 'mean'): T {
  checkTensor(logits, 'crossEntropy', 'logits');
  checkIndex(targets, 'crossEntropy', 'targets');
  if (logits.rank !== 2 || targets.rank !== 1 || targets.shape[0] !== logits.shape[0]) {
    fail('crossEntropy', `expected logits (N, C) and targets (N), got [${logits.shape}] and [${targets.shape}]`);
  }
  checkIndexRange(targets, logits.shape[1], 'crossEntropy', 'targets', `class labels of ${logits.shape[1]} classes`);
  const lp = logSoftmax(logits, -1);
  const picked = reshape(gather(lp, reshape(targets, [targets.size, 1]), 1), [targets.size]);
  return reduce(neg(picked), reduction, 'crossEntropy');
}

// ---------------------------------------------------------------- custom VJP
/** The forward and backward rules of {@link customVjp}. */
export interface CustomVjpSpec<R> {
  name?: string;
  /** forward on tensors (already cut from the graph); returns outputs and residuals for backward */
  forward: (inputs: T[]) => { outputs: T[]; residuals: R };
  /** maps output cotangents (null where an output got none) to one cotangent per input */
  backward: (residuals: R, cotangents: (T | null)[], inputs: T[]) => (T | null | undefined)[];
}

/**
 * An op with a hand-written backward (JAX's `custom_vjp`). Differentiable inputs are tensors; constants (seeds, temperatures) are closed over.
 * @param spec - forward (on detached inputs, returns outputs and residuals) and backward (residuals and output cotangents to one cotangent per input)
 * @returns a function of the input tensors returning the output tensors
 * @example
 * ```ts
 * const square = customVjp<Tensor>({
 *   forward: ([x]) => ({ outputs: [mul(x, x)], residuals: x }),
 *   backward: (x, [g]) => [g ? mul(g, mul(x, 2)) : null],
 * });
 * const [y] = square(tensor([3], null, { requiresGrad: true }));
 * ```
 */
export function customVjp<R>(spec: CustomVjpSpec<R>): (...inputs: T[]) => T[] {
  const name = spec.name ?? 'customVjp';
  return (...inputs: T[]): T[] => {
    inputs.forEach((x, i) => checkTensor(x, name, `inputs[${i}]`));
    const { outputs, residuals } = noGrad(() => spec.forward(inputs));
    record(name, inputs, outputs, (cts) => {
      const r = spec.backward(residuals, cts, inputs);
      if (r.length !== inputs.length) fail(name, `backward returned ${r.length} cotangents for ${inputs.length} inputs`);
      r.forEach((c, i) => {
        if (c && c.shape.join() !== inputs[i].shape.join()) fail(name, `backward's cotangent ${i} has shape [${c.shape}], input has [${inputs[i].shape}]`);
      });
      return r;
    });
    return outputs;
  };
}

export type { Device };

// One definition per elementwise op, written in a tiny expression language that is valid WGSL
// and that `toJs` turns into JavaScript. The CPU backend compiles the JS form, the WebGPU backend
// pastes the WGSL form into its shaders: the two cannot drift.
//
// Language: variables x (unary) or a, b (binary); float literals with a dot (1.0); + - * /;
// calls exp expm1 log log1p sqrt abs tanh max min pow floor sign cos sin; select(ifFalse, ifTrue, cond); comparisons.
// expm1(x) = e^x - 1 and log1p(x) = log(1 + x) keep full relative precision near 0 (Math.expm1 / Math.log1p
// on the CPU; on WebGPU the helpers in backends/webgpu/wgsl.ts).

export const UNARY = {
  neg: '-x',
  exp: 'exp(x)',
  expm1: 'expm1(x)',
  log: 'log(x)',
  log1p: 'log1p(x)',
  sqrt: 'sqrt(x)',
  abs: 'abs(x)',
  relu: 'max(x, 0.0)',
  sigmoid: 'select(exp(x) / (1.0 + exp(x)), 1.0 / (1.0 + exp(-x)), x >= 0.0)',
  // tanh |x| = -e / (2 + e) with e = expm1(-2|x|) in (-1, 0]: never overflows on any device, and no
  // cancellation near 0 (1 - e^{-2|x|} lost all digits below |x| ~ 1e-8)
  tanh: '-sign(x) * expm1(-2.0 * abs(x)) / (2.0 + expm1(-2.0 * abs(x)))',
  softplus: 'max(x, 0.0) + log1p(exp(-abs(x)))',
  sign: 'sign(x)',
  recip: '1.0 / x',
  floor: 'floor(x)',
  cos: 'cos(x)',
  sin: 'sin(x)',
  square: 'x * x',
  step: 'select(0.0, 1.0, x > 0.0)', // derivative of relu
  isfinite: 'select(0.0, 1.0, abs(x) <= 3.4028234663852886e38)',
} as const;

export const BINARY = {
  add: 'a + b',
  sub: 'a - b',
  mul: 'a * b',
  div: 'a / b',
  pow: 'pow(a, b)',
  maximum: 'max(a, b)',
  minimum: 'min(a, b)',
  lt: 'select(0.0, 1.0, a < b)',
  le: 'select(0.0, 1.0, a <= b)',
  gt: 'select(0.0, 1.0, a > b)',
  ge: 'select(0.0, 1.0, a >= b)',
  eq: 'select(0.0, 1.0, a == b)',
  ne: 'select(0.0, 1.0, a != b)',
  // binary cross-entropy of logits a against targets b, softplus(a) - a b, and its derivative in a,
  // sigmoid(a) - b: one pass each instead of a dozen (the MNIST-VAE's 78,400-pixel loss)
  bceLogits: 'max(a, 0.0) - a * b + log1p(exp(-abs(a)))',
  bceLogitsGrad: 'select(exp(a) / (1.0 + exp(a)), 1.0 / (1.0 + exp(-a)), a >= 0.0) - b',
  // relu's VJP from its output: the cotangent a where b = relu(.) > 0, else 0 (NaN b gives 0)
  reluGrad: 'select(0.0, a, b > 0.0)',
} as const;

/** The name of an elementwise unary op a backend runs ({@link Backend.unary}): a key of the elementwise table, or
 *  'bitsToUniform' (32 random bits, stored as int32, to a uniform float in the open interval (0, 1)). */
export type UnaryOp = keyof typeof UNARY | 'bitsToUniform';
/** The name of an elementwise binary op a backend runs ({@link Backend.binary}): a key of the elementwise table. */
export type BinaryOp = keyof typeof BINARY;

// bitsToUniform maps a uint32 (stored as int32) into the open interval (0, 1):
// ((bits >>> 9) + 0.5) * 2^-23, exact in float32 and float64. It is integer work, so each backend
// writes it directly and all agree bit for bit; never 0 or 1, so log(u) and log(-log(u)) are finite.
export function bitsToUniform(bits: number): number {
  return ((bits >>> 9) + 0.5) * 1.1920928955078125e-7;
}

/** Translate an expression of the shared language into a JavaScript expression. */
export function toJs(expr: string): string {
  return expr.replace(/\b(exp|expm1|log|log1p|sqrt|abs|tanh|max|min|pow|floor|sign|cos|sin)\(/g, 'Math.$1(');
}

/** The JS helper every compiled expression may call. */
export function select(ifFalse: number, ifTrue: number, cond: boolean): number {
  return cond ? ifTrue : ifFalse;
}

/** The WGSL form: the language is a subset of WGSL, so the expression is used as written. */
export function toWgsl(expr: string): string {
  return expr;
}

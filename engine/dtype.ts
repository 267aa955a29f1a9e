/** Element type of a tensor. float64 is CPU-only. */
export type DType = 'float32' | 'float64' | 'int32';
/** The typed array that holds a tensor's values on the host. */
export type TypedArray = Float32Array | Float64Array | Int32Array;

export const DTYPES: readonly DType[] = ['float32', 'float64', 'int32'];

export function bytesPerElement(dtype: DType): number {
  return dtype === 'float64' ? 8 : 4;
}

export function arrayFor(dtype: DType, size: number): TypedArray {
  if (dtype === 'float32') return new Float32Array(size);
  if (dtype === 'float64') return new Float64Array(size);
  if (dtype === 'int32') return new Int32Array(size);
  throw new Error(`dtype: expected one of ${DTYPES.join(', ')}, got ${String(dtype)}`);
}

export function dtypeOf(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  return 'int32';
}

export function isFloat(dtype: DType): boolean {
  return dtype !== 'int32';
}

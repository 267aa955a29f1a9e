// The WGSL every program shares. Every kernel reads its scalar parameters from one 256-byte uniform
// block (bound with a dynamic offset into a per-batch ring, see recorder.ts), so a kernel's source depends
// only on its "shape class" (op, dtypes, rank, layout flags) and pipelines are shared. Each program's own
// WGSL sits beside its dispatch code in programs/.

export type WType = 'f32' | 'i32';
export const PARAM_WORDS = 64; // 64 u32 = 256 bytes
export const WG = 256; // invocations per workgroup for 1-D kernels

export const HEADER = `struct Params { v: array<vec4<u32>, ${PARAM_WORDS / 4}> }
@group(0) @binding(0) var<uniform> prm: Params;
fn P(i: u32) -> u32 { return prm.v[i / 4u][i % 4u]; }
fn PF(i: u32) -> f32 { return bitcast<f32>(P(i)); }
// special values through private variables: constant expressions may not produce infinities or NaN
var<private> BITS_INF: u32 = 0x7f800000u;
var<private> BITS_NINF: u32 = 0xff800000u;
var<private> BITS_NAN: u32 = 0x7fc00000u;
`;

export const GID = `@builtin(global_invocation_id) g: vec3<u32>`;

/** A storage-buffer binding `name: array<ty>` at binding i (read-only unless write). */
export function binding(i: number, name: string, ty: string, write: boolean): string {
  return `@group(0) @binding(${i}) var<storage, ${write ? 'read_write' : 'read'}> ${name}: array<${ty}>;\n`;
}

/**
 * Texels per row of the "linear" rgba32float textures that software-adapter kernels read float32 operands
 * from: a copy of a buffer's floats, texel t = floats 4t..4t+3 at (t % LIN_W, t / LIN_W) (GpuRecorder.linearTexture).
 */
export const LIN_W = 256;

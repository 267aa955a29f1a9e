// A tiny WebAssembly binary emitter: just enough of the format to build the matmul
// micro-kernels at runtime (no external compiler, no committed .wasm files).
//
// Supported: one imported (optionally shared) memory, functions with i32/f32 params and no or one
// result, locals of type i32/f32/v128, exported functions, and the handful of opcodes below
// (control flow, i32 arithmetic, scalar f32 load/store, and the SIMD subset the kernels use).

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof V128;

/** Unsigned LEB128. */
export function uleb(out: number[], v: number): void {
  if (v < 0 || !Number.isInteger(v)) throw new Error(`uleb: bad value ${v}`);
  do {
    let byte = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
}

/** Signed LEB128 (for i32.const). */
export function sleb(out: number[], v: number): void {
  if (!Number.isInteger(v)) throw new Error(`sleb: bad value ${v}`);
  v |= 0; // i32 semantics
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return;
  }
}

function name(out: number[], s: string): void {
  const b = new TextEncoder().encode(s);
  uleb(out, b.length);
  for (const x of b) out.push(x);
}

function section(out: number[], id: number, body: number[]): void {
  out.push(id);
  uleb(out, body.length);
  for (const x of body) out.push(x);
}

/** Builds the instruction stream of one function body. Local indices are plain numbers. */
export class Code {
  readonly bytes: number[] = [];
  /** While set: the byte offset after each local.set is appended (the statement ends emitInterleaved cuts at). */
  statementEnds: number[] | null = null;
  private readonly localTypes: ValType[] = [];
  constructor(readonly numParams: number) {}

  /** Declare a new local of the given type; returns its index. */
  local(t: ValType): number {
    this.localTypes.push(t);
    return this.numParams + this.localTypes.length - 1;
  }

  private op(...b: number[]): this { for (const x of b) this.bytes.push(x); return this; }
  private simd(opcode: number): this { this.bytes.push(0xfd); uleb(this.bytes, opcode); return this; }
  private memarg(alignLog2: number, offset: number): this {
    uleb(this.bytes, alignLog2); uleb(this.bytes, offset); return this;
  }

  // control
  block(): this { return this.op(0x02, 0x40); }
  loop(): this { return this.op(0x03, 0x40); }
  if_(): this { return this.op(0x04, 0x40); }
  else_(): this { return this.op(0x05); }
  end(): this { return this.op(0x0b); }
  br(depth: number): this { this.op(0x0c); uleb(this.bytes, depth); return this; }
  brIf(depth: number): this { this.op(0x0d); uleb(this.bytes, depth); return this; }
  return_(): this { return this.op(0x0f); }

  // locals
  get(i: number): this { this.op(0x20); uleb(this.bytes, i); return this; }
  set(i: number): this { this.op(0x21); uleb(this.bytes, i); this.statementEnds?.push(this.bytes.length); return this; }
  tee(i: number): this { this.op(0x22); uleb(this.bytes, i); return this; }

  // i32
  i32(v: number): this { this.op(0x41); sleb(this.bytes, v); return this; }
  i32Eqz(): this { return this.op(0x45); }
  i32Eq(): this { return this.op(0x46); }
  i32Ne(): this { return this.op(0x47); }
  i32LtS(): this { return this.op(0x48); }
  i32LtU(): this { return this.op(0x49); }
  i32GeS(): this { return this.op(0x4e); }
  i32GeU(): this { return this.op(0x4f); }
  i32Add(): this { return this.op(0x6a); }
  i32Sub(): this { return this.op(0x6b); }
  i32Mul(): this { return this.op(0x6c); }
  i32And(): this { return this.op(0x71); }
  i32Or(): this { return this.op(0x72); }
  i32Shl(): this { return this.op(0x74); }

  // scalar memory
  f32Load(offset = 0): this { return this.op(0x2a).memarg(2, offset); }
  f32Store(offset = 0): this { return this.op(0x38).memarg(2, offset); }
  f32Const(v: number): this {
    this.op(0x43);
    const b = new Uint8Array(new Float32Array([v]).buffer);
    return this.op(...b);
  }

  // SIMD (0xfd prefix)
  v128Load(offset = 0): this { return this.simd(0x00).memarg(4, offset); }
  v128Load32Splat(offset = 0): this { return this.simd(0x09).memarg(2, offset); }
  v128Load64Splat(offset = 0): this { return this.simd(0x0a).memarg(3, offset); }
  v128Store(offset = 0): this { return this.simd(0x0b).memarg(4, offset); }
  v128Const0(): this { this.simd(0x0c); for (let i = 0; i < 16; i++) this.bytes.push(0); return this; }
  i8x16Shuffle(lanes: number[]): this {
    if (lanes.length !== 16) throw new Error('shuffle needs 16 lanes');
    this.simd(0x0d); for (const l of lanes) this.bytes.push(l); return this;
  }
  f32x4Splat(): this { return this.simd(0x13); }
  f32x4Add(): this { return this.simd(0xe4); }
  f32x4Sub(): this { return this.simd(0xe5); }
  f32x4Mul(): this { return this.simd(0xe6); }
  f32x4Div(): this { return this.simd(0xe7); }
  f32x4Sqrt(): this { return this.simd(0xe3); }
  /** relaxed-SIMD f32x4.relaxed_madd (a*b+c), opcode 0xfd 0x105. */
  f32x4RelaxedMadd(): this { return this.simd(0x105); }

  // ---- additions for the estimator kernels (backends/cpu/wasm/estimator_kernels.ts, vmath.ts, philox.ts, bce.ts)

  // control / parametric
  /** select(a, b, cond): a if cond != 0 else b (operands pushed in that order) */
  select(): this { return this.op(0x1b); }

  // more i32
  i32GtS(): this { return this.op(0x4a); }
  i32Load(offset = 0): this { return this.op(0x28).memarg(2, offset); }
  i32Store(offset = 0): this { return this.op(0x36).memarg(2, offset); }

  // scalar f32
  f32Eq(): this { return this.op(0x5b); }
  f32Ne(): this { return this.op(0x5c); }
  f32Gt(): this { return this.op(0x5e); }
  f32Abs(): this { return this.op(0x8b); }
  f32Add(): this { return this.op(0x92); }
  f32Sub(): this { return this.op(0x93); }
  f32Mul(): this { return this.op(0x94); }
  f32Div(): this { return this.op(0x95); }
  /** f32.max: NaN if either operand is NaN */
  f32Max(): this { return this.op(0x97); }

  // SIMD constants, lanes, bitwise
  /** v128.const from 16 raw bytes */
  v128ConstBytes(b: ArrayLike<number>): this {
    if (b.length !== 16) throw new Error('v128.const needs 16 bytes');
    this.simd(0x0c); for (let i = 0; i < 16; i++) this.bytes.push(b[i] & 0xff); return this;
  }
  v128ConstI32x4(a: number, b: number, c: number, d: number): this {
    return this.v128ConstBytes(new Uint8Array(new Int32Array([a | 0, b | 0, c | 0, d | 0]).buffer));
  }
  v128ConstF32x4(a: number, b = a, c = a, d = a): this {
    return this.v128ConstBytes(new Uint8Array(new Float32Array([a, b, c, d]).buffer));
  }
  i32x4Splat(): this { return this.simd(0x11); }
  i32x4ExtractLane(l: number): this { this.simd(0x1b); this.bytes.push(l); return this; }
  f32x4ExtractLane(l: number): this { this.simd(0x1f); this.bytes.push(l); return this; }
  v128And(): this { return this.simd(0x4e); }
  v128Andnot(): this { return this.simd(0x4f); }
  v128Or(): this { return this.simd(0x50); }
  v128Xor(): this { return this.simd(0x51); }
  /** bitselect(a, b, mask): bits of a where mask is 1, of b elsewhere */
  v128Bitselect(): this { return this.simd(0x52); }
  v128AnyTrue(): this { return this.simd(0x53); }

  // i32x4
  i32x4Eq(): this { return this.simd(0x37); }
  i32x4LtS(): this { return this.simd(0x39); }
  i32x4LtU(): this { return this.simd(0x3a); }
  i32x4Shl(): this { return this.simd(0xab); }
  i32x4ShrS(): this { return this.simd(0xac); }
  i32x4ShrU(): this { return this.simd(0xad); }
  i32x4Add(): this { return this.simd(0xae); }
  i32x4Sub(): this { return this.simd(0xb1); }
  i32x4MinS(): this { return this.simd(0xb6); }

  // i64x2
  i64x2ExtmulLowI32x4U(): this { return this.simd(0xde); }
  i64x2ExtmulHighI32x4U(): this { return this.simd(0xdf); }

  // f32x4
  f32x4Eq(): this { return this.simd(0x41); }
  f32x4Ne(): this { return this.simd(0x42); }
  f32x4Lt(): this { return this.simd(0x43); }
  f32x4Gt(): this { return this.simd(0x44); }
  f32x4Ge(): this { return this.simd(0x46); }
  f32x4Neg(): this { return this.simd(0xe1); }
  /** pseudo-min / max: pmin(a, b) = b < a ? b : a, pmax(a, b) = a < b ? b : a (one minps / maxps on x64) */
  f32x4Pmin(): this { return this.simd(0xea); }
  f32x4Pmax(): this { return this.simd(0xeb); }
  /** IEEE-754 maximum: NaN if either is NaN, max(-0, +0) = +0 */
  f32x4Max(): this { return this.simd(0xe9); }
  f32x4ConvertI32x4S(): this { return this.simd(0xfa); }

  /** Encoded function body (locals + instructions + final end). */
  encode(): number[] {
    const out: number[] = [];
    // run-length group consecutive locals of the same type
    const groups: [number, ValType][] = [];
    for (const t of this.localTypes) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    uleb(out, groups.length);
    for (const [n, t] of groups) { uleb(out, n); out.push(t); }
    for (const x of this.bytes) out.push(x);
    out.push(0x0b);
    const sized: number[] = [];
    uleb(sized, out.length);
    return sized.concat(out);
  }
}

interface FuncDef { name: string; params: ValType[]; results: ValType[]; code: Code }

export interface MemoryImport { module: string; field: string; initialPages: number; maxPages: number; shared: boolean }

/** A module: one imported memory plus exported functions. */
export class ModuleBuilder {
  private readonly funcs: FuncDef[] = [];
  constructor(private readonly memory: MemoryImport) {}

  /** Add an exported function; `body` fills in the code. Returns the function index. */
  func(fname: string, params: ValType[], results: ValType[], body: (c: Code) => void): number {
    const code = new Code(params.length);
    body(code);
    this.funcs.push({ name: fname, params, results, code });
    return this.funcs.length - 1;
  }

  encode(): Uint8Array<ArrayBuffer> {
    const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    // type section: one type per function (dedup not worth it here)
    const types: number[] = [];
    uleb(types, this.funcs.length);
    for (const f of this.funcs) {
      types.push(0x60);
      uleb(types, f.params.length); for (const p of f.params) types.push(p);
      uleb(types, f.results.length); for (const r of f.results) types.push(r);
    }
    section(out, 1, types);
    // import section: the memory
    const imp: number[] = [];
    uleb(imp, 1);
    name(imp, this.memory.module); name(imp, this.memory.field);
    imp.push(0x02, this.memory.shared ? 0x03 : 0x01);
    uleb(imp, this.memory.initialPages); uleb(imp, this.memory.maxPages);
    section(out, 2, imp);
    // function section
    const fn: number[] = [];
    uleb(fn, this.funcs.length);
    this.funcs.forEach((_, i) => uleb(fn, i));
    section(out, 3, fn);
    // export section
    const ex: number[] = [];
    uleb(ex, this.funcs.length);
    this.funcs.forEach((f, i) => { name(ex, f.name); ex.push(0x00); uleb(ex, i); });
    section(out, 7, ex);
    // code section
    const code: number[] = [];
    uleb(code, this.funcs.length);
    for (const f of this.funcs) for (const x of f.code.encode()) code.push(x);
    section(out, 10, code);
    return new Uint8Array(out);
  }
}

// safetensors reader/writer.
//
// Layout: 8-byte little-endian u64 header length N, then N bytes of UTF-8
// JSON header, then the raw little-endian tensor data. The header maps each
// tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets are
// relative to the start of the data section) and may carry a
// "__metadata__" object of string -> string. We pad the header with spaces
// so that the data section starts on an 8-byte boundary.


export type NamedArray = {
  dtype: 'float32' | 'float64' | 'int32';
  shape: number[];
  data: Float32Array | Float64Array | Int32Array;
};

type DType = NamedArray['dtype'];
type STDType = 'F32' | 'F64' | 'I32';

const TO_ST: Record<DType, STDType> = { float32: 'F32', float64: 'F64', int32: 'I32' };
const FROM_ST: Record<STDType, DType> = { F32: 'float32', F64: 'float64', I32: 'int32' };
const ELEM_SIZE: Record<DType, number> = { float32: 4, float64: 8, int32: 4 };
const METADATA_KEY = '__metadata__';
/** Refuse absurd headers instead of trying to allocate/parse them. */
const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function fail(source: string, msg: string): never {
  throw new Error(`safetensors ${source}: ${msg}`);
}

function isStDType(s: unknown): s is STDType {
  return s === 'F32' || s === 'F64' || s === 'I32';
}

function checkShape(shape: unknown, where: () => string): number {
  if (!Array.isArray(shape)) throw new Error(`${where()}: shape must be an array, got ${JSON.stringify(shape)}`);
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new Error(`${where()}: shape ${JSON.stringify(shape)} has invalid dimension ${JSON.stringify(d)}`);
    }
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new Error(`${where()}: shape ${JSON.stringify(shape)} is too large`);
  return n;
}

function arrayMatchesDtype(dtype: DType, data: unknown): boolean {
  switch (dtype) {
    case 'float32':
      return data instanceof Float32Array;
    case 'float64':
      return data instanceof Float64Array;
    case 'int32':
      return data instanceof Int32Array;
  }
}

/** Little-endian bytes of a typed array (a view when the host is LE). */
function leBytes(a: Float32Array | Float64Array | Int32Array): Uint8Array {
  const raw = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (LITTLE_ENDIAN_HOST) return raw;
  const out = new Uint8Array(raw.length);
  const w = a.BYTES_PER_ELEMENT;
  for (let i = 0; i < raw.length; i += w) for (let j = 0; j < w; j++) out[i + j] = raw[i + w - 1 - j];
  return out;
}

/** Serialise tensors (and optional string metadata) to safetensors bytes. */
export function encodeSafetensors(
  tensors: Record<string, NamedArray>,
  metadata?: Record<string, string>,
): Uint8Array {
  const src = '<encode>';
  const names = Object.keys(tensors);
  for (const name of names) {
    if (name === METADATA_KEY) fail(src, `tensor name "${METADATA_KEY}" is reserved`);
    if (name.length === 0) fail(src, 'empty tensor name');
    const t = tensors[name];
    if (t === null || typeof t !== 'object') fail(src, `tensor "${name}" is not an object`);
    if (!(t.dtype in TO_ST)) fail(src, `tensor "${name}" has unsupported dtype ${JSON.stringify(t.dtype)}`);
    if (!arrayMatchesDtype(t.dtype, t.data)) {
      fail(src, `tensor "${name}": data is ${t.data?.constructor?.name ?? typeof t.data}, expected ${t.dtype}`);
    }
    let n: number;
    try {
      n = checkShape(t.shape, () => `tensor "${name}"`);
    } catch (e) {
      fail(src, (e as Error).message);
    }
    if (n !== t.data.length) {
      fail(src, `tensor "${name}": shape ${JSON.stringify(t.shape)} has ${n} elements but data has ${t.data.length}`);
    }
  }
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object') fail(src, 'metadata must be an object');
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') fail(src, `metadata "${k}" must be a string, got ${typeof v}`);
    }
  }

  // Widest dtypes first (stable otherwise), so every tensor is naturally
  // aligned relative to the 8-byte aligned data section.
  const order = names
    .map((name, i) => ({ name, i }))
    .sort((a, b) => ELEM_SIZE[tensors[b.name].dtype] - ELEM_SIZE[tensors[a.name].dtype] || a.i - b.i)
    .map((x) => x.name);

  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) header[METADATA_KEY] = { ...metadata };
  let offset = 0;
  for (const name of order) {
    const t = tensors[name];
    const end = offset + t.data.byteLength;
    header[name] = { dtype: TO_ST[t.dtype], shape: t.shape.slice(), data_offsets: [offset, end] };
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let pos = 8 + headerLen;
  for (const name of order) {
    const b = leBytes(tensors[name].data);
    out.set(b, pos);
    pos += b.length;
  }
  return out;
}

function makeArray(dtype: DType, bytes: Uint8Array): Float32Array | Float64Array | Int32Array {
  // Copy into a fresh (hence aligned) buffer; the source offset may be
  // misaligned for the element type.
  const buf = new ArrayBuffer(bytes.length);
  const u8 = new Uint8Array(buf);
  u8.set(bytes);
  if (!LITTLE_ENDIAN_HOST) {
    const w = ELEM_SIZE[dtype];
    for (let i = 0; i < u8.length; i += w) u8.subarray(i, i + w).reverse();
  }
  switch (dtype) {
    case 'float32':
      return new Float32Array(buf);
    case 'float64':
      return new Float64Array(buf);
    case 'int32':
      return new Int32Array(buf);
  }
}

/** One tensor's entry in a safetensors header: dtype, shape and its byte range in the data section. */
export type HeaderEntry = { dtype: DType; shape: number[]; begin: number; end: number };

/** A parsed, validated header: tensor entries (in file order), string metadata, where the data section starts. */
export type SafetensorsHeader = { entries: Record<string, HeaderEntry>; metadata: Record<string, string>; dataStart: number };

/** Caps on what a header may ask of the reader: checked before the JSON is parsed (bytes) and before any entry is built. */
export type HeaderLimits = { maxHeaderBytes: number; maxEntries: number };

/** 16 MiB of header and 65,536 tensors: far above any checkpoint here (a few KB, under 100 tensors). */
export const DEFAULT_HEADER_LIMITS: HeaderLimits = { maxHeaderBytes: 16 * 2 ** 20, maxEntries: 65_536 };

function checkEntry(source: string, name: string, raw: unknown, dataLen: number): HeaderEntry {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(source, `tensor "${name}" entry is not an object`);
  const e = raw as Record<string, unknown>;
  if (!isStDType(e.dtype)) fail(source, `tensor "${name}" has unknown/unsupported dtype ${JSON.stringify(e.dtype)}`);
  const dtype = FROM_ST[e.dtype];
  let count: number;
  try {
    count = checkShape(e.shape, () => `tensor "${name}"`);
  } catch (err) {
    fail(source, (err as Error).message);
  }
  const offs = e.data_offsets;
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)) {
    fail(source, `tensor "${name}" has invalid data_offsets ${JSON.stringify(offs)}`);
  }
  const [begin, end] = offs as [number, number];
  if (end < begin) fail(source, `tensor "${name}" data_offsets [${begin}, ${end}] are reversed`);
  if (end > dataLen) {
    fail(source, `tensor "${name}" data_offsets [${begin}, ${end}] out of range: data section is only ${dataLen} bytes (truncated file?)`);
  }
  const expected = count * ELEM_SIZE[dtype];
  if (end - begin !== expected) {
    fail(source, `tensor "${name}": shape ${JSON.stringify(e.shape)} x ${e.dtype} needs ${expected} bytes but data_offsets span ${end - begin}`);
  }
  return { dtype, shape: (e.shape as number[]).slice(), begin, end };
}

/** Offsets must tile the data section exactly: no overlaps, no holes. */
function checkTiling(source: string, entries: Record<string, HeaderEntry>, dataLen: number): void {
  const sorted = Object.entries(entries).sort(([, a], [, b]) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const [name, t] of sorted) {
    if (t.begin < cursor) fail(source, `tensor "${name}" data_offsets [${t.begin}, ${t.end}] overlap a previous tensor`);
    if (t.begin > cursor) fail(source, `gap in data section: bytes [${cursor}, ${t.begin}) belong to no tensor`);
    cursor = t.end;
  }
  if (cursor !== dataLen) {
    fail(source, `data section is ${dataLen} bytes but tensors cover only ${cursor} (trailing garbage or corrupt header)`);
  }
}

/**
 * Parse and validate the header of safetensors bytes without touching the tensor data: callers can compare
 * shapes with what they expect before anything is allocated. `source` (e.g. a file path) is used in errors.
 */
export function decodeSafetensorsHeader(bytes: Uint8Array, source = '<bytes>', limits: HeaderLimits = DEFAULT_HEADER_LIMITS): SafetensorsHeader {
  if (bytes.length < 8) fail(source, `file is ${bytes.length} bytes, shorter than the 8-byte header length prefix`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(bytes.length - 8)) {
    fail(source, `header length ${n64} exceeds the ${bytes.length - 8} bytes after the length prefix (truncated or corrupt file)`);
  }
  const n = Number(n64);
  if (n > Math.min(limits.maxHeaderBytes, MAX_HEADER_BYTES)) fail(source, `header length ${n} is unreasonably large (at most ${limits.maxHeaderBytes} bytes are read)`);
  if (n < 2) fail(source, `header length ${n} is too small to hold a JSON object`);

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    fail(source, 'header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(source, `header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail(source, 'header JSON is not an object');
  const names = Object.keys(header as object);
  if (names.length > limits.maxEntries + 1) fail(source, `header lists ${names.length} entries; at most ${limits.maxEntries} tensors are accepted`);

  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: Record<string, HeaderEntry> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name !== METADATA_KEY) { entries[name] = checkEntry(source, name, raw, dataLen); continue; }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(source, '__metadata__ is not an object');
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
      if (typeof v !== 'string') fail(source, `__metadata__ value for "${k}" is not a string`);
      metadata[k] = v;
    }
  }
  checkTiling(source, entries, dataLen);
  return { entries, metadata, dataStart };
}

/** Parse safetensors bytes. `source` (e.g. a file path) is used in errors. */
export function decodeSafetensors(
  bytes: Uint8Array,
  source = '<bytes>',
  limits: HeaderLimits = DEFAULT_HEADER_LIMITS,
): { tensors: Record<string, NamedArray>; metadata: Record<string, string> } {
  const { entries, metadata, dataStart } = decodeSafetensorsHeader(bytes, source, limits);
  const tensors: Record<string, NamedArray> = {};
  for (const [name, t] of Object.entries(entries)) {
    tensors[name] = { dtype: t.dtype, shape: t.shape, data: makeArray(t.dtype, bytes.subarray(dataStart + t.begin, dataStart + t.end)) };
  }
  return { tensors, metadata };
}

import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodeSafetensors,
  encodeSafetensors,
  type NamedArray,
} from '../engine/safetensors.ts';
import { loadSafetensors, saveSafetensors } from '../platform/safetensors_file.ts';
import { writeFileAtomic } from '../platform/atomic.ts';

function bytesOf(a: Float32Array | Float64Array | Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function expectBitExact(a: NamedArray, b: NamedArray): void {
  expect(b.dtype).toBe(a.dtype);
  expect(b.shape).toEqual(a.shape);
  expect(b.data.constructor).toBe(a.data.constructor);
  expect(b.data.length).toBe(a.data.length);
  expect(Array.from(bytesOf(b.data))).toEqual(Array.from(bytesOf(a.data)));
}

/** Build a safetensors file by hand from a header object and raw data bytes. */
function rawFile(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const SPECIAL_F32_BITS = [
  0x7fc00000, // NaN
  0x7fc00001, // NaN with payload
  0xffc00000, // negative NaN
  0x7f800001, // signalling NaN
  0x80000000, // -0
  0x7f800000, // +Inf
  0xff800000, // -Inf
  0x00000001, // smallest subnormal
];
const SPECIAL_F64_BITS: [number, number][] = [
  [0x00000000, 0x7ff80000], // NaN (lo, hi)
  [0x00000001, 0x7ff80000], // NaN payload
  [0x00000000, 0x80000000], // -0
  [0x00000000, 0x7ff00000], // +Inf
  [0x00000000, 0xfff00000], // -Inf
  [0x00000001, 0x7ff00000], // sNaN
];

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const shapeArb = fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 4 });

const namedArrayArb: fc.Arbitrary<NamedArray> = fc
  .tuple(fc.constantFrom('float32' as const, 'float64' as const, 'int32' as const), shapeArb)
  .chain(([dtype, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    if (dtype === 'float64') {
      const word = fc.oneof(fc.tuple(u32, u32), fc.constantFrom(...SPECIAL_F64_BITS));
      return fc.array(word, { minLength: n, maxLength: n }).map((pairs) => {
        const w = new Uint32Array(n * 2);
        pairs.forEach(([lo, hi], i) => {
          w[2 * i] = lo;
          w[2 * i + 1] = hi;
        });
        return { dtype, shape, data: new Float64Array(w.buffer) } as NamedArray;
      });
    }
    const word = dtype === 'float32' ? fc.oneof(u32, fc.constantFrom(...SPECIAL_F32_BITS)) : u32;
    return fc.array(word, { minLength: n, maxLength: n }).map((ws) => {
      const w = Uint32Array.from(ws);
      const data = dtype === 'float32' ? new Float32Array(w.buffer) : new Int32Array(w.buffer);
      return { dtype, shape, data } as NamedArray;
    });
  });

const nameArb = fc.string({ minLength: 1, maxLength: 8 }).filter((s) => s !== '__metadata__');

describe('safetensors encode/decode', () => {
  it('round-trips bit-exactly (property)', () => {
    fc.assert(
      fc.property(
        fc.dictionary(nameArb, namedArrayArb, { maxKeys: 5 }),
        fc.option(fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 10 }), { maxKeys: 3 }), {
          nil: undefined,
        }),
        (tensors, metadata) => {
          const bytes = encodeSafetensors(tensors, metadata);
          // header length is a multiple of 8, so the data section is 8-aligned
          const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
          expect(n % 8).toBe(0);
          const { tensors: back, metadata: meta } = decodeSafetensors(bytes);
          expect(Object.keys(back).sort()).toEqual(Object.keys(tensors).sort());
          for (const k of Object.keys(tensors)) expectBitExact(tensors[k], back[k]);
          expect(meta).toEqual(metadata ?? {});
        },
      ),
      { numRuns: 300 },
    );
  });

  it('handles 0-d and zero-size tensors', () => {
    const t: Record<string, NamedArray> = {
      scalar: { dtype: 'float64', shape: [], data: new Float64Array([-0]) },
      empty: { dtype: 'float32', shape: [3, 0, 2], data: new Float32Array(0) },
      ints: { dtype: 'int32', shape: [2], data: new Int32Array([-1, 2147483647]) },
    };
    const back = decodeSafetensors(encodeSafetensors(t)).tensors;
    for (const k of Object.keys(t)) expectBitExact(t[k], back[k]);
    expect(Object.is(back.scalar.data[0], -0)).toBe(true);
  });

  it('matches a hand-computed layout byte by byte', () => {
    const bytes = encodeSafetensors({ a: { dtype: 'float32', shape: [2], data: new Float32Array([1, -2]) } });
    // {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} is 54 bytes,
    // padded with two spaces to 56.
    const header = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}  ';
    const expected = [
      56, 0, 0, 0, 0, 0, 0, 0,
      ...Array.from(header, (c) => c.charCodeAt(0)),
      0x00, 0x00, 0x80, 0x3f, // 1.0f
      0x00, 0x00, 0x00, 0xc0, // -2.0f
    ];
    expect(expected.length).toBe(72);
    expect(Array.from(bytes)).toEqual(expected);
  });

  it('writes metadata into the header and reads it back', () => {
    const bytes = encodeSafetensors(
      { w: { dtype: 'int32', shape: [1], data: new Int32Array([7]) } },
      { format: 'pt', step: '12' },
    );
    const n = bytes[0];
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(JSON.parse(text).__metadata__).toEqual({ format: 'pt', step: '12' });
    expect(decodeSafetensors(bytes).metadata).toEqual({ format: 'pt', step: '12' });
  });

  it('places wider dtypes first so F64 data is 8-aligned', () => {
    const bytes = encodeSafetensors({
      a: { dtype: 'float32', shape: [1], data: new Float32Array([1]) },
      b: { dtype: 'float64', shape: [1], data: new Float64Array([2]) },
    });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const h = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(h.b.data_offsets).toEqual([0, 8]);
    expect(h.a.data_offsets).toEqual([8, 12]);
  });

  it('decodes unaligned F64 data (e.g. files from other writers)', () => {
    // Unpadded 4-byte-aligned layout: i32 first at [0,4), f64 at [4,12).
    const data = new Uint8Array(12);
    const dv = new DataView(data.buffer);
    dv.setInt32(0, -5, true);
    dv.setFloat64(4, Math.PI, true);
    const header = {
      i: { dtype: 'I32', shape: [], data_offsets: [0, 4] },
      d: { dtype: 'F64', shape: [1, 1], data_offsets: [4, 12] },
    };
    // Make header length odd so the data section itself is misaligned.
    const text = JSON.stringify(header) + (JSON.stringify(header).length % 2 === 0 ? ' ' : '');
    const file = rawFile(null, data, text);
    // and present it inside a buffer at an odd byteOffset
    const big = new Uint8Array(file.length + 1);
    big.set(file, 1);
    const { tensors } = decodeSafetensors(big.subarray(1));
    expect(tensors.d.data[0]).toBe(Math.PI);
    expect(tensors.d.shape).toEqual([1, 1]);
    expect(tensors.i.data[0]).toBe(-5);
    expect(tensors.i.shape).toEqual([]);
  });

  it('rejects invalid tensors on encode', () => {
    expect(() => encodeSafetensors({ x: { dtype: 'float32', shape: [3], data: new Float32Array(2) } })).toThrow(
      /3 elements but data has 2/,
    );
    expect(() =>
      encodeSafetensors({ x: { dtype: 'float32', shape: [2], data: new Float64Array(2) as unknown as Float32Array } }),
    ).toThrow(/expected float32/);
    expect(() => encodeSafetensors({ x: { dtype: 'int8' as 'int32', shape: [1], data: new Int32Array(1) } })).toThrow(
      /unsupported dtype/,
    );
    expect(() => encodeSafetensors({ x: { dtype: 'int32', shape: [-1], data: new Int32Array(1) } })).toThrow(
      /invalid dimension/,
    );
    expect(() => encodeSafetensors({ __metadata__: { dtype: 'int32', shape: [1], data: new Int32Array(1) } })).toThrow(
      /reserved/,
    );
  });
});

describe('safetensors validation errors', () => {
  const src = '/some/where/model.safetensors';
  const good = encodeSafetensors({
    a: { dtype: 'float32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    b: { dtype: 'int32', shape: [1], data: new Int32Array([9]) },
  });
  const dec = (b: Uint8Array) => () => decodeSafetensors(b, src);
  const f32 = (n: number) => new Uint8Array(4 * n);

  it('errors name the source', () => {
    expect(dec(good.subarray(0, 5))).toThrow(src);
  });
  it('file shorter than 8 bytes', () => {
    expect(dec(new Uint8Array(3))).toThrow(/shorter than the 8-byte/);
  });
  it('header length beyond the file', () => {
    const b = good.slice(0, 20);
    expect(dec(b)).toThrow(/header length \d+ exceeds/);
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 0xffffffffffffffffn, true);
    expect(dec(huge)).toThrow(/exceeds/);
  });
  it('truncated data section', () => {
    expect(dec(good.subarray(0, good.length - 1))).toThrow(/out of range.*truncated/);
    for (let cut = 1; cut < good.length; cut++) {
      expect(dec(good.subarray(0, cut))).toThrow(src);
    }
  });
  it('trailing garbage', () => {
    const b = new Uint8Array(good.length + 4);
    b.set(good);
    expect(dec(b)).toThrow(/cover only/);
  });
  it('header not JSON', () => {
    expect(dec(rawFile(null, new Uint8Array(0), '{"a": nope}'))).toThrow(/not valid JSON/);
    expect(dec(rawFile(null, new Uint8Array(0), '[1,2]   '))).toThrow(/not an object/);
    const bad = rawFile(null, new Uint8Array(0), '{"\xff":1}');
    bad[10] = 0xff;
    expect(dec(bad)).toThrow(/UTF-8|JSON/);
  });
  it('unknown dtype', () => {
    expect(dec(rawFile({ a: { dtype: 'BF16', shape: [1], data_offsets: [0, 2] } }, new Uint8Array(2)))).toThrow(
      /unknown\/unsupported dtype "BF16"/,
    );
  });
  it('shape mismatching byte length', () => {
    expect(dec(rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(2)))).toThrow(
      /needs 12 bytes but data_offsets span 8/,
    );
    expect(dec(rawFile({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, f32(1)))).toThrow(
      /invalid dimension/,
    );
  });
  it('overlapping offsets', () => {
    expect(
      dec(
        rawFile(
          {
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
          },
          f32(3),
        ),
      ),
    ).toThrow(/overlap/);
  });
  it('gaps and bad offsets', () => {
    expect(dec(rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32(2)))).toThrow(/gap/);
    expect(dec(rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, f32(2)))).toThrow(/reversed/);
    expect(dec(rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0] } }, f32(1)))).toThrow(
      /invalid data_offsets/,
    );
    expect(dec(rawFile({ a: { dtype: 'F32', shape: [1] } }, f32(1)))).toThrow(/invalid data_offsets/);
  });
  it('bad metadata', () => {
    expect(dec(rawFile({ __metadata__: { a: 1 } }, new Uint8Array(0)))).toThrow(/not a string/);
  });
  it('NaN data is allowed', () => {
    const t = decodeSafetensors(
      encodeSafetensors({ n: { dtype: 'float32', shape: [1], data: new Float32Array([NaN]) } }),
    ).tensors;
    expect(Number.isNaN(t.n.data[0])).toBe(true);
  });
});

describe('safetensors files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gapgrad-st-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const v1: Record<string, NamedArray> = {
    w: { dtype: 'float32', shape: [2], data: new Float32Array([1, 2]) },
  };
  const v2: Record<string, NamedArray> = {
    w: { dtype: 'float32', shape: [2], data: new Float32Array([3, 4]) },
  };

  it('save/load round trip', () => {
    const p = join(dir, 'm.safetensors');
    saveSafetensors(p, v1, { epoch: '1' });
    const { tensors, metadata } = loadSafetensors(p);
    expectBitExact(v1.w, tensors.w);
    expect(metadata).toEqual({ epoch: '1' });
    saveSafetensors(p, v2);
    expectBitExact(v2.w, loadSafetensors(p).tensors.w);
    expect(readdirSync(dir)).toEqual(['m.safetensors']);
  });

  it('missing file error names the path', () => {
    const p = join(dir, 'nope.safetensors');
    expect(() => loadSafetensors(p)).toThrow(new RegExp(`${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: file not found`));
  });

  it('corrupt file error names the path', () => {
    const p = join(dir, 'bad.safetensors');
    saveSafetensors(p, v1);
    const b = readFileSync(p);
    writeFileSync(p, b.subarray(0, b.length - 2));
    expect(() => loadSafetensors(p)).toThrow(p);
    expect(() => loadSafetensors(p)).toThrow(/truncated/);
  });

  it('invalid data: save fails and previous file is intact', () => {
    const p = join(dir, 'm.safetensors');
    saveSafetensors(p, v1);
    const before = readFileSync(p);
    const bad = { w: { dtype: 'float32', shape: [5], data: new Float32Array(2) } } as Record<string, NamedArray>;
    expect(() => saveSafetensors(p, bad)).toThrow(/m\.safetensors.*5 elements/);
    expect(readFileSync(p).equals(before)).toBe(true);
    expect(readdirSync(dir)).toEqual(['m.safetensors']);
  });

  it('failure mid-write (before rename) removes the temp file and keeps the old target', () => {
    const p = join(dir, 'm.safetensors');
    saveSafetensors(p, v1);
    const before = readFileSync(p);
    let sawTemp = '';
    expect(() =>
      writeFileAtomic(p, encodeSafetensors(v2), {
        beforeRename: (tmp) => {
          sawTemp = tmp;
          expect(existsSync(tmp)).toBe(true);
          throw new Error('simulated crash');
        },
      }),
    ).toThrow(/m\.safetensors.*simulated crash/);
    expect(sawTemp.startsWith(dir)).toBe(true);
    expect(existsSync(sawTemp)).toBe(false);
    expect(readFileSync(p).equals(before)).toBe(true);
    expect(readdirSync(dir)).toEqual(['m.safetensors']);
  });

  it('target directory removed mid-way: error, nothing left behind', () => {
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    const p = join(sub, 'm.safetensors');
    saveSafetensors(p, v1);
    expect(() =>
      writeFileAtomic(p, encodeSafetensors(v2), {
        beforeRename: () => rmSync(sub, { recursive: true, force: true }),
      }),
    ).toThrow(/m\.safetensors/);
    expect(existsSync(sub)).toBe(false);
    // and saving into a missing directory fails cleanly
    expect(() => saveSafetensors(p, v1)).toThrow(/cannot write .*m\.safetensors: the folder .*sub does not exist/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('rename failure (target is a directory) leaves it intact and no temp file', () => {
    const p = join(dir, 'occupied');
    mkdirSync(p);
    writeFileSync(join(p, 'keep'), 'x');
    expect(() => saveSafetensors(p, v1)).toThrow(/occupied/);
    expect(readFileSync(join(p, 'keep'), 'utf8')).toBe('x');
    expect(readdirSync(dir)).toEqual(['occupied']);
  });

  it('writeFileAtomic writes strings', () => {
    const p = join(dir, 'a.txt');
    writeFileAtomic(p, 'hello');
    writeFileAtomic(p, 'world!');
    expect(readFileSync(p, 'utf8')).toBe('world!');
    expect(readdirSync(dir)).toEqual(['a.txt']);
  });
});

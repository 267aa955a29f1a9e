// MNIST's IDX format, parsed from bytes (every platform): the original big-endian files.
//
// Images (idx3-ubyte): u32 magic 2051, u32 count, u32 rows, u32 cols, then
// count*rows*cols unsigned bytes. Labels (idx1-ubyte): u32 magic 2049,
// u32 count, then count unsigned bytes. Files on Node: ./mnist.ts.

export const IDX_IMAGES_MAGIC = 2051;
export const IDX_LABELS_MAGIC = 2049;

export type IdxImages = { count: number; rows: number; cols: number; pixels: Uint8Array };

export type MnistSplit = {
  /** count*rows*cols values in [0, 1] (pixel / 255), row-major per image. */
  images: Float32Array;
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
};

export type Mnist = { train: MnistSplit; test: MnistSplit };

function header(bytes: Uint8Array, words: number, path: string, what: string): number[] {
  if (bytes.length < 4 * words) {
    throw new Error(
      `MNIST ${what} file ${path}: truncated header (${bytes.length} bytes, need at least ${4 * words})`,
    );
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  for (let i = 0; i < words; i++) out.push(dv.getUint32(4 * i, false));
  return out;
}

function describeMagic(m: number): string {
  if (m === 0x1f8b0800 || (m >>> 16) === 0x1f8b) return ' (looks gzip-compressed; decompress it first)';
  return '';
}

/** Parse an idx3-ubyte image file held in memory. `path` is used in errors. */
export function parseIdxImages(bytes: Uint8Array, path = '<bytes>'): IdxImages {
  const what = 'images';
  const [magic, count, rows, cols] = header(bytes, 4, path, what);
  if (magic !== IDX_IMAGES_MAGIC) {
    throw new Error(
      `MNIST ${what} file ${path}: bad magic number ${magic} (expected ${IDX_IMAGES_MAGIC})${describeMagic(magic)}`,
    );
  }
  if (rows === 0 || cols === 0) throw new Error(`MNIST ${what} file ${path}: invalid image size ${rows}x${cols}`);
  const expected = 16 + count * rows * cols;
  if (bytes.length !== expected) {
    throw new Error(
      `MNIST ${what} file ${path}: size ${bytes.length} bytes does not match header ` +
        `(${count} images of ${rows}x${cols} need ${expected} bytes)` +
        (bytes.length < expected ? ' - file is truncated' : ' - trailing bytes'),
    );
  }
  return { count, rows, cols, pixels: bytes.slice(16) };
}

/** Parse an idx1-ubyte label file held in memory. `path` is used in errors. */
export function parseIdxLabels(bytes: Uint8Array, path = '<bytes>'): Uint8Array {
  const what = 'labels';
  const [magic, count] = header(bytes, 2, path, what);
  if (magic !== IDX_LABELS_MAGIC) {
    throw new Error(
      `MNIST ${what} file ${path}: bad magic number ${magic} (expected ${IDX_LABELS_MAGIC})${describeMagic(magic)}`,
    );
  }
  const expected = 8 + count;
  if (bytes.length !== expected) {
    throw new Error(
      `MNIST ${what} file ${path}: size ${bytes.length} bytes does not match header ` +
        `(${count} labels need ${expected} bytes)` +
        (bytes.length < expected ? ' - file is truncated' : ' - trailing bytes'),
    );
  }
  const labels = bytes.slice(8);
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] > 9) throw new Error(`MNIST ${what} file ${path}: label ${labels[i]} at index ${i} is not a digit`);
  }
  return labels;
}

export function toFloat(pixels: Uint8Array): Float32Array {
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = pixels[i] / 255;
  return out;
}

/** A split from the bytes of its image and label files (`names` in errors). */
export function splitFromBytes(images: Uint8Array, labels: Uint8Array, names: { images: string; labels: string } = { images: '<images>', labels: '<labels>' }): MnistSplit {
  const img = parseIdxImages(images, names.images);
  const lab = parseIdxLabels(labels, names.labels);
  if (lab.length !== img.count) {
    throw new Error(`MNIST: ${names.images} has ${img.count} images but ${names.labels} has ${lab.length} labels`);
  }
  return { images: toFloat(img.pixels), labels: lab, count: img.count, rows: img.rows, cols: img.cols };
}

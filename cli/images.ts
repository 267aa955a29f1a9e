// PNG output for the CLI: image grids (e.g. MNIST samples/reconstructions)
// and the VAE run's pictures (its loss chart is Vega-Lite, cli/charts.ts). Encoding is done by pngjs;
// files are written atomically.

import { PNG } from 'pngjs';
import { chartSvg, svgToPng, ChartsMissing } from './charts.ts';
import { writeFileAtomic } from '../platform/atomic.ts';
import { join } from 'node:path';
import type { VaePictures } from '../models/vae/train.ts';

export type RGB = [number, number, number];

export type ImageGridOptions = {
  /** Gap (in source pixels) between and around the images. Default 1. */
  pad?: number;
  /** Integer nearest-neighbour upscale factor. Default 1. */
  scale?: number;
  /** Gray level in [0, 1] for padding and empty cells. Default 0.5. */
  padValue?: number;
};


function toByte(v: number): number {
  if (!(v > 0)) return 0; // also maps NaN to 0
  if (v >= 1) return 255;
  return Math.round(v * 255);
}

function checkPosInt(name: string, v: number, min = 1): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer >= ${min}, got ${v}`);
}

/**
 * Lay out `count` grayscale h*w images (values in [0, 1], row-major,
 * image-major) in a grid with `cols` columns. Returns the 8-bit gray pixels.
 */
export function renderImageGrid(
  images: Float32Array,
  count: number,
  h: number,
  w: number,
  cols: number,
  opts: ImageGridOptions = {},
): { width: number; height: number; gray: Uint8Array } {
  const pad = opts.pad ?? 1;
  const scale = opts.scale ?? 1;
  checkPosInt('count', count);
  checkPosInt('h', h);
  checkPosInt('w', w);
  checkPosInt('cols', cols);
  checkPosInt('pad', pad, 0);
  checkPosInt('scale', scale);
  if (images.length !== count * h * w) {
    throw new Error(`image grid: expected ${count}*${h}*${w}=${count * h * w} values, got ${images.length}`);
  }
  const c = Math.min(cols, count);
  const rows = Math.ceil(count / c);
  const bw = c * (w + pad) + pad;
  const bh = rows * (h + pad) + pad;
  const base = new Uint8Array(bw * bh).fill(toByte(opts.padValue ?? 0.5));
  for (let k = 0; k < count; k++) {
    const ox = pad + (k % c) * (w + pad);
    const oy = pad + Math.floor(k / c) * (h + pad);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) base[(oy + y) * bw + ox + x] = toByte(images[k * h * w + y * w + x]);
    }
  }
  if (scale === 1) return { width: bw, height: bh, gray: base };
  const width = bw * scale;
  const height = bh * scale;
  const gray = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const src = Math.floor(y / scale) * bw;
    for (let x = 0; x < width; x++) gray[y * width + x] = base[src + Math.floor(x / scale)];
  }
  return { width, height, gray };
}

/** Encode 8-bit grayscale pixels as a grayscale PNG. */
export function encodeGrayPng(width: number, height: number, gray: Uint8Array): Uint8Array {
  const png = new PNG({ width, height });
  png.data = Buffer.from(gray.buffer, gray.byteOffset, gray.byteLength);
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 });
}

/** Encode RGBA pixels as an RGBA PNG. */
export function encodeRgbaPng(width: number, height: number, rgba: Uint8Array): Uint8Array {
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba.buffer, rgba.byteOffset, rgba.byteLength);
  return PNG.sync.write(png, { colorType: 6, inputColorType: 6, inputHasAlpha: true, bitDepth: 8 });
}

/** Write a grid of grayscale images to a PNG file (atomically). */
export function saveImageGrid(
  path: string,
  images: Float32Array,
  count: number,
  h: number,
  w: number,
  cols: number,
  opts: ImageGridOptions = {},
): void {
  const { width, height, gray } = renderImageGrid(images, count, h, w, cols, opts);
  writeFileAtomic(path, encodeGrayPng(width, height, gray));
}

// ---------------------------------------------------------------------------
// Line chart

/** A tiny 3x5 bitmap font: digits, upper-case letters and a few symbols. */
/** The VAE run's pictures (models/vae/train.ts PictureWriter): recon.png (test images over their
 *  reconstructions), samples.png (decodes of random codes), and loss.svg / loss.png (train and test loss per epoch,
 *  a Vega-Lite chart: cli/charts.ts). */
export async function writeVaePictures(dir: string, p: VaePictures): Promise<void> {
  const both = new Float32Array(2 * p.n * 784);
  both.set(p.images.subarray(0, p.n * 784), 0);
  both.set(p.recon, p.n * 784);
  saveImageGrid(join(dir, 'recon.png'), both, 2 * p.n, 28, 28, p.n, { scale: 2 });
  saveImageGrid(join(dir, 'samples.png'), p.samples, 64, 28, 28, 8, { scale: 2 });
  if (p.metrics.length) {
    try {
      await writeLossChart(dir, p);
    } catch (e) {
      if (!(e instanceof ChartsMissing)) throw e;
      if (!chartNoteShown) process.stderr.write(`note: no loss.png: ${e.message}\n`);
      chartNoteShown = true;
    }
  }
}

let chartNoteShown = false;

async function writeLossChart(dir: string, p: VaePictures): Promise<void> {
  const values = p.metrics.flatMap((m) => [{ epoch: m.epoch, split: 'train', loss: m.train_loss }, { epoch: m.epoch, split: 'test', loss: m.test_loss }]);
  const svg = await chartSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `MNIST-VAE ${p.cfg.method}, τ ${p.cfg.tau}, seed ${p.cfg.seed}`,
    width: 480, height: 280, data: { values },
    mark: { type: 'line', point: p.metrics.length <= 20 },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
      y: { field: 'loss', type: 'quantitative', title: 'loss (nats per image)', scale: { zero: false } },
      color: { field: 'split', type: 'nominal', title: 'split' },
    },
  });
  writeFileAtomic(join(dir, 'loss.svg'), svg);
  writeFileAtomic(join(dir, 'loss.png'), svgToPng(svg));
}

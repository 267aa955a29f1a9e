// PNG output for the CLI: image grids (e.g. MNIST samples/reconstructions)
// and simple line charts (e.g. training curves). Encoding is done by pngjs;
// files are written atomically.

import { PNG } from 'pngjs';
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

export type ChartSeries = { name: string; points: [number, number][]; color?: RGB };

export type LineChartOptions = { width?: number; height?: number; title?: string };

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
const FONT: Record<string, string> = {
  '0': '###/#.#/#.#/#.#/###',
  '1': '.#./##./.#./.#./###',
  '2': '###/..#/###/#../###',
  '3': '###/..#/###/..#/###',
  '4': '#.#/#.#/###/..#/..#',
  '5': '###/#../###/..#/###',
  '6': '###/#../###/#.#/###',
  '7': '###/..#/..#/..#/..#',
  '8': '###/#.#/###/#.#/###',
  '9': '###/#.#/###/..#/###',
  A: '.#./#.#/###/#.#/#.#',
  B: '##./#.#/##./#.#/##.',
  C: '.##/#../#../#../.##',
  D: '##./#.#/#.#/#.#/##.',
  E: '###/#../##./#../###',
  F: '###/#../##./#../#..',
  G: '.##/#../#.#/#.#/.##',
  H: '#.#/#.#/###/#.#/#.#',
  I: '###/.#./.#./.#./###',
  J: '..#/..#/..#/#.#/.#.',
  K: '#.#/#.#/##./#.#/#.#',
  L: '#../#../#../#../###',
  M: '#.#/###/###/#.#/#.#',
  N: '##./#.#/#.#/#.#/#.#',
  O: '.#./#.#/#.#/#.#/.#.',
  P: '##./#.#/##./#../#..',
  Q: '.#./#.#/#.#/##./.##',
  R: '##./#.#/##./#.#/#.#',
  S: '.##/#../.#./..#/##.',
  T: '###/.#./.#./.#./.#.',
  U: '#.#/#.#/#.#/#.#/###',
  V: '#.#/#.#/#.#/#.#/.#.',
  W: '#.#/#.#/###/###/#.#',
  X: '#.#/#.#/.#./#.#/#.#',
  Y: '#.#/#.#/.#./.#./.#.',
  Z: '###/..#/.#./#../###',
  '.': '.../.../.../.../.#.',
  ',': '.../.../.../.#./#..',
  '-': '.../.../###/.../...',
  '+': '.../.#./###/.#./...',
  '=': '.../###/.../###/...',
  ':': '.../.#./.../.#./...',
  '/': '..#/..#/.#./#../#..',
  '_': '.../.../.../.../###',
  '(': '.#./#../#../#../.#.',
  ')': '.#./..#/..#/..#/.#.',
  '%': '#.#/..#/.#./#../#.#',
  ' ': '.../.../.../.../...',
};
const GLYPH_W = 3;
const GLYPH_H = 5;
const ADVANCE = GLYPH_W + 1;

function textWidth(s: string): number {
  return s.length === 0 ? 0 : s.length * ADVANCE - 1;
}

const PALETTE: RGB[] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
];

/** Compact number label using only characters the built-in font has. */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  if (!Number.isFinite(v)) return String(v).toUpperCase();
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-2) {
    const [m, e] = v.toExponential(1).split('e');
    return `${m.replace(/\.0$/, '')}E${e.replace('+', '')}`;
  }
  return String(Number(v.toPrecision(3)));
}

class Canvas {
  readonly data: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
    bg: RGB = [255, 255, 255],
  ) {
    this.data = new Uint8Array(width * height * 4);
    for (let i = 0; i < width * height; i++) {
      this.data[4 * i] = bg[0];
      this.data[4 * i + 1] = bg[1];
      this.data[4 * i + 2] = bg[2];
      this.data[4 * i + 3] = 255;
    }
  }
  set(x: number, y: number, c: RGB): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = 4 * (y * this.width + x);
    this.data[i] = c[0];
    this.data[i + 1] = c[1];
    this.data[i + 2] = c[2];
    this.data[i + 3] = 255;
  }
  rect(x: number, y: number, w: number, h: number, c: RGB): void {
    for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) this.set(x + i, y + j, c);
  }
  /** Bresenham line, endpoints inclusive. */
  line(x0: number, y0: number, x1: number, y1: number, c: RGB): void {
    const dx = Math.abs(x1 - x0);
    const dy = -Math.abs(y1 - y0);
    const sx = x0 < x1 ? 1 : -1;
    const sy = y0 < y1 ? 1 : -1;
    let err = dx + dy;
    for (;;) {
      this.set(x0, y0, c);
      if (x0 === x1 && y0 === y1) return;
      const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }
  text(x: number, y: number, s: string, c: RGB): void {
    let cx = x;
    for (const ch of s.toUpperCase()) {
      const g = FONT[ch] ?? FONT[' '];
      const rows = g.split('/');
      for (let j = 0; j < GLYPH_H; j++) {
        for (let i = 0; i < GLYPH_W; i++) if (rows[j][i] === '#') this.set(cx + i, y + j, c);
      }
      cx += ADVANCE;
    }
  }
}

export type ChartLayout = {
  width: number;
  height: number;
  /** Inclusive pixel bounds of the data area. */
  plot: { x0: number; y0: number; x1: number; y1: number };
  xRange: [number, number];
  yRange: [number, number];
  /** Map a data point to (rounded) pixel coordinates. */
  toPixel(x: number, y: number): [number, number];
  legend: { x: number; y: number; name: string; color: RGB }[];
  yLabels: [string, string];
  xLabels: [string, string];
};

const LEGEND_BOX = 7;
const LEGEND_ROW = 11;

function range(values: number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === Infinity) return [0, 1];
  if (lo === hi) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.5;
    return [lo - d, hi + d];
  }
  return [lo, hi];
}

/** Compute the chart geometry (exposed so callers/tests can locate pixels). */
export function chartLayout(series: ChartSeries[], opts: LineChartOptions = {}): ChartLayout {
  const width = opts.width ?? 640;
  const height = opts.height ?? 400;
  checkPosInt('width', width);
  checkPosInt('height', height);
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of series) {
    for (const [x, y] of s.points) {
      if (Number.isFinite(x) && Number.isFinite(y)) {
        xs.push(x);
        ys.push(y);
      }
    }
  }
  const xRange = range(xs);
  const yRange = range(ys);
  const yLabels: [string, string] = [formatTick(yRange[0]), formatTick(yRange[1])];
  const xLabels: [string, string] = [formatTick(xRange[0]), formatTick(xRange[1])];
  const left = 4 + Math.max(textWidth(yLabels[0]), textWidth(yLabels[1])) + 8;
  const top = opts.title ? 6 + GLYPH_H + 6 : 8;
  const bottom = 4 + 3 + 3 + GLYPH_H + 4;
  const nameW = Math.max(0, ...series.map((s) => textWidth(s.name)));
  const right = series.length > 0 ? 10 + LEGEND_BOX + 3 + nameW + 6 : 10;
  const plot = { x0: left, y0: top, x1: width - 1 - right, y1: height - 1 - bottom };
  if (plot.x1 - plot.x0 < 8 || plot.y1 - plot.y0 < 8) {
    throw new Error(`line chart: ${width}x${height} is too small for the labels and legend`);
  }
  const toPixel = (x: number, y: number): [number, number] => [
    Math.round(plot.x0 + ((x - xRange[0]) / (xRange[1] - xRange[0])) * (plot.x1 - plot.x0)),
    Math.round(plot.y1 - ((y - yRange[0]) / (yRange[1] - yRange[0])) * (plot.y1 - plot.y0)),
  ];
  const legend = series.map((s, i) => ({
    x: plot.x1 + 10,
    y: plot.y0 + i * LEGEND_ROW,
    name: s.name,
    color: s.color ?? PALETTE[i % PALETTE.length],
  }));
  return { width, height, plot, xRange, yRange, toPixel, legend, yLabels, xLabels };
}

export const CHART_AXIS_COLOR: RGB = [0, 0, 0];
export const CHART_TEXT_COLOR: RGB = [40, 40, 40];
export const CHART_GRID_COLOR: RGB = [230, 230, 230];

/** Draw a line chart into RGBA pixels. */
export function renderLineChart(
  series: ChartSeries[],
  opts: LineChartOptions = {},
): { width: number; height: number; rgba: Uint8Array; layout: ChartLayout } {
  const L = chartLayout(series, opts);
  const { plot } = L;
  const cv = new Canvas(L.width, L.height);
  const ax = plot.x0 - 2; // vertical axis column
  const ay = plot.y1 + 2; // horizontal axis row
  const ticks = 5;

  // light grid lines at the ticks (drawn first so data goes on top)
  for (let i = 0; i < ticks; i++) {
    const gx = Math.round(plot.x0 + (i / (ticks - 1)) * (plot.x1 - plot.x0));
    const gy = Math.round(plot.y1 - (i / (ticks - 1)) * (plot.y1 - plot.y0));
    cv.line(gx, plot.y0, gx, plot.y1, CHART_GRID_COLOR);
    cv.line(plot.x0, gy, plot.x1, gy, CHART_GRID_COLOR);
  }
  // axes and tick marks
  cv.line(ax, plot.y0, ax, ay, CHART_AXIS_COLOR);
  cv.line(ax, ay, plot.x1, ay, CHART_AXIS_COLOR);
  for (let i = 0; i < ticks; i++) {
    const gx = Math.round(plot.x0 + (i / (ticks - 1)) * (plot.x1 - plot.x0));
    const gy = Math.round(plot.y1 - (i / (ticks - 1)) * (plot.y1 - plot.y0));
    cv.line(gx, ay + 1, gx, ay + 3, CHART_AXIS_COLOR);
    cv.line(ax - 3, gy, ax - 1, gy, CHART_AXIS_COLOR);
  }
  // min/max labels
  cv.text(ax - 5 - textWidth(L.yLabels[1]), plot.y0 - 2, L.yLabels[1], CHART_TEXT_COLOR);
  cv.text(ax - 5 - textWidth(L.yLabels[0]), plot.y1 - 2, L.yLabels[0], CHART_TEXT_COLOR);
  cv.text(plot.x0, ay + 6, L.xLabels[0], CHART_TEXT_COLOR);
  cv.text(plot.x1 - textWidth(L.xLabels[1]) + 1, ay + 6, L.xLabels[1], CHART_TEXT_COLOR);
  if (opts.title) cv.text(Math.max(0, Math.round((L.width - textWidth(opts.title)) / 2)), 6, opts.title, CHART_TEXT_COLOR);

  // data: consecutive finite points joined by lines; non-finite points break the line
  series.forEach((s, i) => {
    const color = L.legend[i].color;
    let prev: [number, number] | null = null;
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        prev = null;
        continue;
      }
      const p = L.toPixel(x, y);
      if (prev) cv.line(prev[0], prev[1], p[0], p[1], color);
      else cv.set(p[0], p[1], color);
      prev = p;
    }
  });

  // legend: colored box + name
  for (const e of L.legend) {
    cv.rect(e.x, e.y, LEGEND_BOX, LEGEND_BOX, e.color);
    cv.text(e.x + LEGEND_BOX + 3, e.y + 1, e.name, CHART_TEXT_COLOR);
  }
  return { width: L.width, height: L.height, rgba: cv.data, layout: L };
}

/** Write a line chart PNG (atomically). */
export function saveLineChart(path: string, series: ChartSeries[], opts: LineChartOptions = {}): void {
  const { width, height, rgba } = renderLineChart(series, opts);
  writeFileAtomic(path, encodeRgbaPng(width, height, rgba));
}

/** The VAE run's pictures (models/vae/train.ts PictureWriter): recon.png (test images over their
 *  reconstructions), samples.png (decodes of random codes) and loss.png (train and test loss per epoch). */
export function writeVaePictures(dir: string, p: VaePictures): void {
  const both = new Float32Array(2 * p.n * 784);
  both.set(p.images.subarray(0, p.n * 784), 0);
  both.set(p.recon, p.n * 784);
  saveImageGrid(join(dir, 'recon.png'), both, 2 * p.n, 28, 28, p.n, { scale: 2 });
  saveImageGrid(join(dir, 'samples.png'), p.samples, 64, 28, 28, 8, { scale: 2 });
  if (p.metrics.length) {
    saveLineChart(join(dir, 'loss.png'), [
      { name: 'train', points: p.metrics.map((m) => [m.epoch, m.train_loss]), color: [30, 90, 200] },
      { name: 'test', points: p.metrics.map((m) => [m.epoch, m.test_loss]), color: [220, 60, 30] },
    ], { width: 640, height: 400, title: `${p.cfg.method} tau ${p.cfg.tau}` });
  }
}

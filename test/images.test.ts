import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { saveImageGrid, writeVaePictures } from '../cli/images.ts';
import { DEFAULT_TRAIN } from '../models/vae/run.ts';
import { createProgress, formatDuration, formatValue } from '../cli/progress.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gapgrad-img-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function readPng(path: string) {
  const buf = readFileSync(path);
  return { png: PNG.sync.read(buf), colorType: buf[25], bitDepth: buf[24] };
}
function px(png: PNG, x: number, y: number): number[] {
  const i = 4 * (y * png.width + x);
  return Array.from(png.data.subarray(i, i + 4));
}

describe('saveImageGrid', () => {
  // 3 images of 2x3: image k has value (k*6 + i)/17 at pixel i
  const h = 2;
  const w = 3;
  const count = 3;
  const images = new Float32Array(count * h * w);
  for (let i = 0; i < images.length; i++) images[i] = i / 17;

  it('writes a grayscale PNG with the expected layout', () => {
    const p = join(dir, 'grid.png');
    saveImageGrid(p, images, count, h, w, 2, { pad: 1 });
    const { png, colorType, bitDepth } = readPng(p);
    expect(colorType).toBe(0); // grayscale
    expect(bitDepth).toBe(8);
    // 2 cols x 2 rows: width = 2*(3+1)+1 = 9, height = 2*(2+1)+1 = 7
    expect(png.width).toBe(9);
    expect(png.height).toBe(7);
    const g = (x: number, y: number) => {
      const [r, gg, b, a] = px(png, x, y);
      expect(r).toBe(gg);
      expect(gg).toBe(b);
      expect(a).toBe(255);
      return r;
    };
    const v = (k: number, y: number, x: number) => Math.round(((k * 6 + y * w + x) / 17) * 255);
    expect(g(0, 0)).toBe(128); // pad
    expect(g(1, 1)).toBe(v(0, 0, 0)); // image 0 top-left
    expect(g(3, 2)).toBe(v(0, 1, 2)); // image 0 bottom-right
    expect(g(5, 1)).toBe(v(1, 0, 0)); // image 1 top-left
    expect(g(7, 2)).toBe(v(1, 1, 2));
    expect(g(1, 4)).toBe(v(2, 0, 0)); // image 2 (second row)
    expect(g(3, 5)).toBe(v(2, 1, 2));
    expect(g(5, 4)).toBe(128); // empty cell
    expect(g(4, 1)).toBe(128); // gap between images
  });

  it('clamps values and upscales', () => {
    const p = join(dir, 'scaled.png');
    const img = Float32Array.from([-1, 2, 0.5, NaN]);
    saveImageGrid(p, img, 1, 2, 2, 4, { pad: 0, scale: 3, padValue: 0 });
    const { png } = readPng(p);
    expect(png.width).toBe(6);
    expect(png.height).toBe(6);
    expect(px(png, 0, 0)[0]).toBe(0);
    expect(px(png, 2, 2)[0]).toBe(0);
    expect(px(png, 3, 0)[0]).toBe(255);
    expect(px(png, 5, 2)[0]).toBe(255);
    expect(px(png, 0, 3)[0]).toBe(128);
    expect(px(png, 5, 5)[0]).toBe(0);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('validates its arguments', () => {
    const p = join(dir, 'bad.png');
    expect(() => saveImageGrid(p, new Float32Array(5), 1, 2, 3, 1)).toThrow(/expected 1\*2\*3=6 values, got 5/);
    expect(() => saveImageGrid(p, new Float32Array(6), 1, 2, 3, 0)).toThrow(/cols/);
  });
});

describe('writeVaePictures', () => {
  it('writes the image grids and a Vega-Lite loss chart (SVG with axis titles and legend, and its PNG)', async () => {
    const d = mkdtempSync(join(dir, 'pics-'));
    const n = 3;
    const metrics = [1, 2, 3].map((e) => ({ epoch: e, train_loss: 200 - 10 * e, test_loss: 205 - 9 * e, seconds: 1, steps: 10 * e }));
    await writeVaePictures(d, {
      cfg: { ...DEFAULT_TRAIN, method: 'gst-p', tau: 0.5 }, images: new Float32Array(n * 784).fill(0.5), recon: new Float32Array(n * 784).fill(0.25),
      n, samples: new Float32Array(64 * 784).fill(1), metrics,
    });
    expect(readdirSync(d).sort()).toEqual(['loss.png', 'loss.svg', 'recon.png', 'samples.png']);
    const svg = readFileSync(join(d, 'loss.svg'), 'utf8');
    for (const t of ['epoch', 'loss (nats per image)', 'train', 'test', 'gst-p']) expect(svg).toContain(t);
    expect(svg).toMatch(/role-axis-title/);
    expect(svg).toMatch(/role-legend/);
    const { png } = readPng(join(d, 'loss.png'));
    expect(png.width).toBeGreaterThan(480);
    const recon = readPng(join(d, 'recon.png')).png;
    expect(recon.width).toBeGreaterThanOrEqual(2 * 28 * n); // n columns of 28x28 at scale 2, plus padding
    expect(recon.height).toBeGreaterThanOrEqual(2 * 2 * 28);
  });
});

describe('createProgress', () => {
  function fakeStream(isTTY: boolean) {
    const out: string[] = [];
    return { out, stream: { isTTY, columns: 200, write: (s: string) => out.push(s) } };
  }

  it('non-TTY: plain lines every 10% with the rate, and a final summary', () => {
    const { out, stream } = fakeStream(false);
    let t = 0;
    const p = createProgress({ total: 100, label: 'train', stream, now: () => t, intervalMs: 1e9 });
    for (let i = 0; i < 100; i++) {
      t += 50; // 20 steps/s
      p.tick(1, { loss: 1 / (i + 1) });
    }
    p.done({ nelbo: 101.25 });
    const text = out.join('');
    expect(text).not.toContain('\r');
    const lines = text.trimEnd().split('\n');
    expect(lines.length).toBe(11); // 10%, 20%, ..., 100%, plus summary
    for (const l of lines) expect(l).toMatch(/20\.0 steps\/s/);
    expect(lines[0]).toMatch(/^train 10\/100 10\.0% 20\.0 steps\/s ETA 0:05/);
    expect(lines[0]).toContain('loss=0.1');
    expect(lines[9]).toContain('100/100');
    expect(lines[10]).toBe('train done: 100/100 steps in 0:05 (20.0 steps/s) nelbo=101.3');
  });

  it('non-TTY: time-based lines between deciles', () => {
    const { out, stream } = fakeStream(false);
    let t = 0;
    const p = createProgress({ total: 1e6, stream, now: () => t, intervalMs: 1000 });
    for (let i = 0; i < 50; i++) {
      t += 100;
      p.tick(10);
    }
    // 5 seconds at 100 steps/s -> one line per second
    expect(out.length).toBe(5);
    expect(out[0]).toMatch(/^100\/1000000 0\.0% 100 steps\/s/);
  });

  it('TTY: single updating line with bar and info', () => {
    const { out, stream } = fakeStream(true);
    let t = 0;
    const p = createProgress({ total: 10, label: 'ep1', stream, now: () => t });
    for (let i = 0; i < 10; i++) {
      t += 200;
      p.tick(1, { loss: 2.5 });
    }
    p.done();
    expect(out.slice(0, -2).every((s) => s.startsWith('\r') && !s.includes('\n'))).toBe(true);
    expect(out[0]).toContain('[##');
    expect(out[0]).toContain('loss=2.5');
    expect(out[0]).toMatch(/5\.00 steps\/s/);
    expect(out[out.length - 1]).toMatch(/^ep1 done: 10\/10 steps in 0:02/);
  });

  it('formats values and durations', () => {
    expect(formatValue(0.123456)).toBe('0.1235');
    expect(formatValue(3)).toBe('3');
    expect(formatValue(1e-5)).toBe('1.00e-5');
    expect(formatValue('x')).toBe('x');
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(formatDuration(NaN)).toBe('--:--');
  });
});

import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import {
  saveImageGrid,
  saveLineChart,
  chartLayout,
  formatTick,
  CHART_AXIS_COLOR,
  type ChartSeries,
} from '../cli/images.ts';
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

describe('saveLineChart', () => {
  const red: [number, number, number] = [200, 10, 20];
  const series: ChartSeries[] = [
    { name: 'train', points: [[0, 0], [10, 10]], color: red },
    { name: 'test', points: [[0, 10], [5, NaN], [10, 0]] },
  ];
  const opts = { width: 200, height: 120, title: 'Loss' };

  it('draws lines, axes, ticks and legend at the expected pixels', () => {
    const p = join(dir, 'chart.png');
    saveLineChart(p, series, opts);
    const { png, colorType } = readPng(p);
    expect(colorType).toBe(6);
    expect(png.width).toBe(200);
    expect(png.height).toBe(120);

    const L = chartLayout(series, opts);
    const { x0, y0, x1, y1 } = L.plot;
    expect(L.xRange).toEqual([0, 10]);
    expect(L.yRange).toEqual([0, 10]);
    expect(L.toPixel(0, 0)).toEqual([x0, y1]);
    expect(L.toPixel(10, 10)).toEqual([x1, y0]);

    // background corner is white
    expect(px(png, 0, png.height - 1)).toEqual([255, 255, 255, 255]);
    // series 1 (explicit colour) runs bottom-left -> top-right
    expect(px(png, x0, y1)).toEqual([...red, 255]);
    expect(px(png, x1, y0)).toEqual([...red, 255]);
    const [mx, my] = L.toPixel(3, 3);
    // Bresenham passes within one pixel of any point on the segment
    const near = [-1, 0, 1].flatMap((d) => [px(png, mx, my + d), px(png, mx + d, my)]);
    expect(near.some((c) => c[0] === red[0] && c[1] === red[1] && c[2] === red[2])).toBe(true);
    // series 2 (palette colour 1: the palette follows the series index) has only its endpoints: the NaN breaks the line
    const orange = [255, 127, 14, 255];
    expect(px(png, x0, y0)).toEqual(orange);
    expect(px(png, x1, y1)).toEqual(orange);
    const [qx, qy] = L.toPixel(7.5, 2.5);
    expect(px(png, qx, qy)).not.toEqual(orange);

    // axes: vertical at x0-2, horizontal at y1+2
    const black = [...CHART_AXIS_COLOR, 255];
    expect(px(png, x0 - 2, Math.round((y0 + y1) / 2))).toEqual(black);
    expect(px(png, Math.round((x0 + x1) / 2), y1 + 2)).toEqual(black);
    // tick marks below the x axis at the ends and middle, left of y axis
    expect(px(png, x0, y1 + 4)).toEqual(black);
    expect(px(png, x1, y1 + 5)).toEqual(black);
    expect(px(png, Math.round((x0 + x1) / 2), y1 + 4)).toEqual(black);
    expect(px(png, x0 - 5, y0)).toEqual(black);
    // no tick between tick positions
    expect(px(png, x0 + 1, y1 + 4)).toEqual([255, 255, 255, 255]);

    // legend boxes filled with the series colours
    expect(L.legend.length).toBe(2);
    expect(px(png, L.legend[0].x + 3, L.legend[0].y + 3)).toEqual([...red, 255]);
    expect(px(png, L.legend[1].x + 3, L.legend[1].y + 3)).toEqual(orange);
    expect(L.legend[0].x).toBeGreaterThan(x1);

    // some text pixels exist in the title row
    let dark = 0;
    for (let y = 6; y < 11; y++) for (let x = 0; x < png.width; x++) if (px(png, x, y)[0] < 100) dark++;
    expect(dark).toBeGreaterThan(10);
  });

  it('handles flat / empty series and rejects tiny canvases', () => {
    const p = join(dir, 'flat.png');
    saveLineChart(p, [{ name: 'c', points: [[1, 5], [2, 5]] }], { width: 100, height: 80 });
    const L = chartLayout([{ name: 'c', points: [[1, 5], [2, 5]] }], { width: 100, height: 80 });
    expect(L.yRange).toEqual([2.5, 7.5]);
    const { png } = readPng(p);
    const [x, y] = L.toPixel(1.5, 5);
    expect(px(png, x, y)).toEqual([31, 119, 180, 255]);
    saveLineChart(join(dir, 'empty.png'), [], { width: 60, height: 40 });
    expect(() => saveLineChart(join(dir, 'tiny.png'), series, { width: 20, height: 20 })).toThrow(/too small/);
  });

  it('formats tick labels compactly', () => {
    expect(formatTick(0)).toBe('0');
    expect(formatTick(0.13071)).toBe('0.131');
    expect(formatTick(60000)).toBe('6E4');
    expect(formatTick(12345)).toBe('1.2E4');
    expect(formatTick(-0.0005)).toBe('-5E-4');
    expect(formatTick(123.456)).toBe('123');
  });
});

// cli/progress.ts is tested here as well (the CLI helpers share this file).
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

// Charts for the CLI's reports: a Vega-Lite spec compiled with `vega-lite`, rendered headless to SVG by
// `vega` (no canvas, no browser), and to PNG by `@resvg/resvg-js`. Written with writeFileAtomic.
// (Vega-Lite: a declarative grammar of well-kept, widely used charts, so the reports need no drawing code.)
import { compile, type TopLevelSpec } from 'vega-lite';
import { parse, View } from 'vega';
import { Resvg } from '@resvg/resvg-js';
import { writeFileAtomic } from '../engine/atomic.ts';

export type ChartSpec = TopLevelSpec;

/** Render a Vega-Lite spec to an SVG string. */
export async function chartSvg(spec: ChartSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterize an SVG string to PNG bytes, `scale` times its size. */
export function svgToPng(svg: string, scale = 2): Uint8Array {
  const r = new Resvg(svg, { fitTo: { mode: 'zoom', value: scale }, background: 'white', font: { loadSystemFonts: true } });
  return r.render().asPng();
}

/**
 * Write `spec` as `<base>.svg` and `<base>.png` (base: a path without extension), each atomically.
 * Returns the two paths.
 */
export async function writeChart(spec: ChartSpec, base: string): Promise<{ svg: string; png: string }> {
  const svg = await chartSvg(spec);
  const out = { svg: `${base}.svg`, png: `${base}.png` };
  writeFileAtomic(out.svg, svg);
  writeFileAtomic(out.png, svgToPng(svg));
  return out;
}

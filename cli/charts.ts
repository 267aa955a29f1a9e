// Charts for the CLI's reports: a Vega-Lite spec compiled with `vega-lite`, rendered headless to SVG by
// `vega` (no canvas, no browser), and to PNG by `@resvg/resvg-js`. Written with writeFileAtomic.
// (Vega-Lite: a declarative grammar of well-kept, widely used charts, so the reports need no drawing code.)
// The three packages are optional peer dependencies of the published package (24 MB together): they are loaded
// when a chart is drawn, and their absence is a ChartsMissing error that says what to install.
import type { TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../platform/atomic.ts';

export type ChartSpec = TopLevelSpec;

/** The chart packages are not installed. */
export class ChartsMissing extends Error {
  override name = 'ChartsMissing';
}

type Libs = { vl: typeof import('vega-lite'); vega: typeof import('vega'); resvg: typeof import('@resvg/resvg-js') };
let libs: Libs | null = null;

/** Load vega-lite, vega and @resvg/resvg-js (once); a ChartsMissing error names the packages to install. */
export async function loadCharts(): Promise<Libs> {
  if (libs) return libs;
  try {
    const [vl, vega, resvg] = await Promise.all([import('vega-lite'), import('vega'), import('@resvg/resvg-js')]);
    libs = { vl, vega, resvg };
    return libs;
  } catch (e) {
    throw new ChartsMissing(`charts need the optional packages vega, vega-lite and @resvg/resvg-js: npm install vega vega-lite @resvg/resvg-js (${(e as Error).message})`, { cause: e });
  }
}

/**
 * Load the chart packages before work that ends in charts, so that their absence is said before the work starts:
 * a ChartsMissing error reading `${prefix} <what to install>` and, if given, `; ${alternative}`.
 */
export async function requireCharts(prefix: string, alternative?: string): Promise<void> {
  try {
    await loadCharts();
  } catch (e) {
    throw new ChartsMissing(`${prefix} ${(e as Error).message}${alternative ? `; ${alternative}` : ''}`, { cause: e });
  }
}

/** Render a Vega-Lite spec to an SVG string. */
export async function chartSvg(spec: ChartSpec): Promise<string> {
  const { vl, vega } = await loadCharts();
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterize an SVG string to PNG bytes, `scale` times its size. */
export function svgToPng(svg: string, scale = 2): Uint8Array {
  if (!libs) throw new ChartsMissing('svgToPng: call chartSvg (or loadCharts) first, which loads the chart packages');
  const r = new libs.resvg.Resvg(svg, { fitTo: { mode: 'zoom', value: scale }, background: 'white', font: { loadSystemFonts: true } });
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

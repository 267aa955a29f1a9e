// The live loss chart: a Vega-Lite line chart rendered by Vega as SVG, fed new points as training goes.
import { compile, type TopLevelSpec } from 'vega-lite';
import { parse, View } from 'vega';

export interface LossChart { add(points: { step: number; loss: number }[]): void; clear(): void }

export default async function embedChart(el: HTMLElement): Promise<LossChart> {
  const spec: TopLevelSpec = {
    width: 460, height: 260, autosize: { type: 'pad', resize: true }, padding: 10,
    data: { name: 'points' },
    mark: { type: 'line', interpolate: 'monotone' },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'training step' },
      y: { field: 'loss', type: 'quantitative', title: 'loss (nats per image)', scale: { zero: false } },
    },
  };
  const view = new View(parse(compile(spec).spec), { renderer: 'svg', container: el, hover: false });
  await view.runAsync();
  let pending: { step: number; loss: number }[] = [];
  let scheduled = false;
  return {
    add(points) {
      pending.push(...points);
      if (scheduled) return;
      scheduled = true;
      requestAnimationFrame(() => {
        const p = pending; pending = []; scheduled = false;
        view.insert('points', p).runAsync();
      });
    },
    clear() { pending = []; view.remove('points', () => true).runAsync(); },
  };
}

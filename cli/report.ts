// `gapgrad report DIR`: the reproduction report from whatever runs exist in DIR (written by `gapgrad reproduce`):
// DIR/report/results.md, DIR/report/index.html (self-contained: the charts are inline SVG) and each chart as
// SVG and PNG in DIR/report/charts. Tables give mean ± sample standard deviation over seeds (and a 95 %
// t interval where it matters); charts are Vega-Lite (cli/charts.ts).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { writeFileAtomic } from '../platform/atomic.ts';
import { chartSvg, svgToPng, type ChartSpec } from './charts.ts';
import type { Experiment, RunSpec } from './reproduce.ts';

/**
 * The authors' PyTorch code run on this project's machine type (seed 1), MNIST-VAE test loss in nats by epoch:
 * the reference column of the VAE table (source: the project's ANCHORS notes and the earlier README table).
 */
export const VAE_REFERENCE: Record<string, Record<number, number>> = {
  'gumbel|1': { 1: 179.8, 10: 127.7, 20: 122.9, 40: 118.3 },
  'gst-1.0|1': { 1: 177.4, 10: 125.9, 20: 119.5, 40: 113.6 },
  'gst-p|0.5': { 1: 174.3, 10: 121.8, 20: 114.3, 40: 108.2 },
  'gst-1.0|0.5': { 40: 108.1 },
  'gumbel|0.5': { 40: 121.1 },
};

const REF_EPOCHS = [1, 10, 20, 40];

interface Grid { scale: string; experiments: Experiment[]; seeds: number[]; varianceAt: number[]; runs: RunSpec[] }
type Row = Record<string, number>;

const readJsonl = (p: string): Row[] => (existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);

/** Mean and sample standard deviation. */
export function meanStd(xs: number[]): { mean: number; std: number; n: number } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

// two-sided 95 % Student t quantiles by degrees of freedom (1..30); beyond, the normal's 1.96
const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];
/** Half-width of the 95 % t confidence interval of the mean (NaN for one value). */
export function ci95(xs: number[]): number {
  const { std, n } = meanStd(xs);
  return n < 2 ? NaN : (T95[n - 2] ?? 1.96) * std / Math.sqrt(n);
}

/**
 * Each method against a baseline, paired by seed (same seed, same temperature): the mean difference method −
 * baseline and its 95 % t interval, and what that decides. Markdown lines (empty when nothing pairs).
 */
export function pairedComparison(rows: { method: string; tau: number; seed: number; value: number }[], baseline: string,
  what: string, higherIsBetter: boolean, digits = 2): string[] {
  const md: string[] = [];
  for (const k of [...new Set(rows.map((r) => `${r.method}|${r.tau}`))]) {
    const [method, tau] = [k.split('|')[0], Number(k.split('|')[1])];
    if (method === baseline) continue;
    const diffs: number[] = [];
    for (const r of rows.filter((d) => d.method === method && d.tau === tau)) {
      const b = rows.find((d) => d.method === baseline && d.tau === tau && d.seed === r.seed);
      if (b) diffs.push(r.value - b.value);
    }
    if (!diffs.length) continue;
    const { mean } = meanStd(diffs);
    const h = ci95(diffs);
    const better = higherIsBetter ? mean - h > 0 : mean + h < 0;
    const worse = higherIsBetter ? mean + h < 0 : mean - h > 0;
    const verdict = Number.isNaN(h) ? 'one seed: undecided' : better ? `better than ${baseline}` : worse ? `worse than ${baseline}` : 'not distinguishable (the interval contains 0)';
    md.push(`| ${method} | ${tau} | ${diffs.length} | ${mean >= 0 ? '+' : ''}${mean.toFixed(digits)} | ${Number.isNaN(h) ? '—' : `[${(mean - h).toFixed(digits)}, ${(mean + h).toFixed(digits)}]`} | ${verdict} |`);
  }
  if (!md.length) return [];
  return ['', `Against ${baseline}, paired by seed (${what}; 95 % t interval of the mean difference):`, '',
    `| method | tau | paired seeds | mean difference | 95 % CI | verdict |`, '|---|---|---|---|---|---|', ...md];
}

const fmt = (xs: number[], d = 2) => {
  if (!xs.length) return '—';
  const { mean, std, n } = meanStd(xs);
  return n > 1 ? `${mean.toFixed(d)} ± ${std.toFixed(d)}` : mean.toFixed(d);
};

/** A band of ± 1 std over seeds and the mean line, per method (the layers of the training-curve charts). */
function bandAndMean(x: string, xTitle: string, y: string, yTitle: string, point = false): ChartSpec[] {
  const enc = { x: { field: x, type: 'quantitative', title: xTitle }, color: { field: 'method', type: 'nominal', title: 'method' } } as const;
  return [
    { mark: { type: 'errorband', extent: 'stdev', opacity: 0.25 }, encoding: { ...enc, y: { field: y, type: 'quantitative', title: yTitle, scale: { zero: false } } } },
    { mark: { type: 'line', point }, encoding: { ...enc, y: { aggregate: 'mean', field: y, type: 'quantitative', title: yTitle } } },
  ] as ChartSpec[];
}

interface Chart { id: string; title: string; spec: ChartSpec }

/** A report section; `partial` says how its table and charts show runs that have not finished. */
interface Section { title: string; md: string[]; charts: Chart[]; partial?: string }

function vaeSection(out: string, grid: Grid, exp: 'vae' | 'ablation'): Section | null {
  const runs = grid.runs.filter((r) => r.experiments.includes(exp));
  const data: { method: string; tau: number; seed: number; epoch: number; test_loss: number }[] = [];
  for (const r of runs) for (const m of readJsonl(join(out, 'runs', r.id, 'metrics.jsonl'))) {
    data.push({ method: r.method, tau: r.tau, seed: r.seed, epoch: m.epoch, test_loss: m.test_loss });
  }
  if (!data.length) return null;
  const maxEpoch = Math.max(...data.map((d) => d.epoch));
  const epochs = [...new Set([1, 10, 20, 30, 40, maxEpoch].filter((e) => e <= maxEpoch))].sort((a, b) => a - b);
  const title = exp === 'vae' ? 'MNIST-VAE: test loss (nats) by epoch' : 'Ablation: the gap and the detached perturbation (MNIST-VAE test loss, nats)';
  const md = [`## ${title}`, '', `Mean ± std over seeds; reference: the authors' PyTorch code, seed 1, on the same machine type.`, '',
    `| method | tau | seeds | ${epochs.map((e) => `epoch ${e}`).join(' | ')} | reference (epochs ${REF_EPOCHS.join(' / ')}) |`,
    `|---|---|---|${epochs.map(() => '---|').join('')}---|`];
  const keys = [...new Set(runs.map((r) => `${r.method}|${r.tau}`))];
  for (const k of keys) {
    const [method, tau] = [k.split('|')[0], Number(k.split('|')[1])];
    const rows = data.filter((d) => d.method === method && d.tau === tau);
    const seeds = new Set(rows.map((d) => d.seed)).size;
    const cells = epochs.map((e) => fmt(rows.filter((d) => d.epoch === e).map((d) => d.test_loss)));
    const ref = VAE_REFERENCE[`${method}|${tau}`];
    md.push(`| ${method} | ${tau} | ${seeds} | ${cells.join(' | ')} | ${ref ? REF_EPOCHS.map((e) => ref[e]?.toFixed(1) ?? '—').join(' / ') : '—'} |`);
  }
  const last = data.filter((d) => d.epoch === maxEpoch).map((d) => ({ ...d, value: d.test_loss }));
  // the paper's baselines: ST Gumbel-softmax and Gumbel-Rao for the main grid; gst-1.0 for the ablation
  for (const baseline of exp === 'vae' ? ['gumbel', 'rao_gumbel'] : ['gst-1.0']) {
    md.push(...pairedComparison(last, baseline, `test loss at epoch ${maxEpoch}, lower is better`, false));
  }
  const spec: ChartSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values: data },
    facet: { column: { field: 'tau', type: 'ordinal', title: 'temperature τ' } },
    spec: {
      width: 300, height: 220,
      layer: bandAndMean('epoch', 'epoch', 'test_loss', 'test loss (nats)', maxEpoch <= 5) as never,
    },
    title: `${exp === 'vae' ? 'Test loss' : 'Ablation: test loss'} per epoch (mean over seeds, band ± 1 std)`,
  };
  return { title, md, charts: [{ id: `${exp}-test-loss`, title, spec }] };
}

function varianceSection(out: string, grid: Grid): Section | null {
  const runs = grid.runs.filter((r) => r.experiments.includes('variance'));
  const data: { method: string; tau: number; seed: number; epoch: number; variance: number }[] = [];
  for (const r of runs) for (const v of readJsonl(join(out, 'runs', r.id, 'variance.jsonl'))) {
    data.push({ method: r.method, tau: r.tau, seed: r.seed, epoch: v.epoch, variance: v.encoder_grad_variance });
  }
  if (!data.length) return null;
  const epochs = [...new Set(data.map((d) => d.epoch))].sort((a, b) => a - b);
  const title = 'Encoder gradient variance during training (MNIST-VAE)';
  const md = [`## ${title}`, '', 'Mean over encoder weights and biases of the per-element variance over repeated passes on fixed test images; mean ± std over seeds.', '',
    `| method | tau | ${epochs.map((e) => `epoch ${e}`).join(' | ')} |`, `|---|---|${epochs.map(() => '---|').join('')}`];
  for (const k of [...new Set(runs.map((r) => `${r.method}|${r.tau}`))]) {
    const [method, tau] = [k.split('|')[0], Number(k.split('|')[1])];
    const rows = data.filter((d) => d.method === method && d.tau === tau);
    md.push(`| ${method} | ${tau} | ${epochs.map((e) => {
      const xs = rows.filter((d) => d.epoch === e).map((d) => d.variance);
      if (!xs.length) return '—';
      const { mean, std, n } = meanStd(xs);
      return n > 1 ? `${mean.toExponential(2)} ± ${std.toExponential(1)}` : mean.toExponential(2);
    }).join(' | ')} |`);
  }
  const spec: ChartSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values: data }, width: 420, height: 260,
    title: 'Encoder gradient variance over training (mean over seeds)',
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch' },
      y: { aggregate: 'mean', field: 'variance', type: 'quantitative', title: 'gradient variance', scale: { type: 'log' } },
      color: { field: 'method', type: 'nominal', title: 'method' },
      strokeDash: { field: 'tau', type: 'ordinal', title: 'τ' },
    },
  };
  return { title, md, charts: [{ id: 'variance', title, spec }] };
}

function listopsSection(out: string, grid: Grid): Section | null {
  const runs = grid.runs.filter((r) => r.experiments.includes('listops'));
  const curve: { method: string; tau: number; seed: number; examples: number; valid_acc: number }[] = [];
  const results: { method: string; tau: number; seed: number; valid: number; test: number }[] = [];
  // the model and budget each run trained with (its config.json); with more than one in the grid, the methods are
  // labelled by it so that different studies never share a row
  const configOf = (r: RunSpec) => {
    const p = join(out, 'runs', r.id, 'config.json');
    if (!existsSync(p)) return null;
    const c = JSON.parse(readFileSync(p, 'utf8'));
    return `hidden ${c.hidden}, ${c.examples} training examples, lr ${c.lr}, dropout ${c.dropout}, batch ${c.batchSize}`;
  };
  const configs = new Map(runs.map((r) => [r.id, configOf(r)] as const));
  const distinct = [...new Set([...configs.values()].filter((c): c is string => c !== null))];
  const label = (r: RunSpec) => (distinct.length > 1 ? `${r.method} (${configs.get(r.id) ?? '?'})` : r.method);
  for (const r of runs) {
    const dir = join(out, 'runs', r.id);
    const method = label(r);
    for (const m of readJsonl(join(dir, 'metrics.jsonl'))) curve.push({ method, tau: r.tau, seed: r.seed, examples: m.examples, valid_acc: 100 * m.valid_acc });
    const res = readJsonl(join(dir, 'result.jsonl')).at(-1);
    if (res && res.test_acc !== undefined) results.push({ method, tau: r.tau, seed: r.seed, valid: 100 * res.best_valid_acc, test: 100 * res.test_acc });
  }
  if (!curve.length && !results.length) return null;
  const title = 'ListOps (Gumbel Tree-LSTM): accuracy';
  const md = [`## ${title}`, '', `Selected on the validation split, reported on the test split; mean ± std over seeds and the 95 % t interval of the mean test accuracy.${distinct.length === 1 ? ` Every run: ${distinct[0]}.` : ''}`, '',
    '| method | tau | seeds | best valid acc (%) | test acc (%) | test 95 % CI |', '|---|---|---|---|---|---|'];
  const summary: { method: string; tau: number; mean: number; lo: number; hi: number }[] = [];
  for (const k of [...new Set(runs.map((r) => `${label(r)}|${r.tau}`))]) {
    const [method, tau] = [k.split('|')[0], Number(k.split('|')[1])];
    const rs = results.filter((d) => d.method === method && d.tau === tau);
    const te = rs.map((d) => d.test);
    const h = ci95(te);
    md.push(`| ${method} | ${tau} | ${rs.length} | ${fmt(rs.map((d) => d.valid), 1)} | ${fmt(te, 1)} | ${Number.isNaN(h) ? '—' : `± ${h.toFixed(1)}`} |`);
    if (te.length) {
      const { mean } = meanStd(te);
      summary.push({ method, tau, mean, lo: Number.isNaN(h) ? mean : mean - h, hi: Number.isNaN(h) ? mean : mean + h });
    }
  }
  md.push(...pairedComparison(results.map((d) => ({ ...d, value: d.test })), 'gumbel', 'test accuracy in points, higher is better', true, 1));
  const charts: Chart[] = [];
  if (curve.length) {
    charts.push({
      id: 'listops-valid', title: 'ListOps validation accuracy during training',
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v6.json', data: { values: curve }, width: 420, height: 260,
        title: 'Validation accuracy over training examples (mean over seeds, band ± 1 std)',
        layer: bandAndMean('examples', 'training examples', 'valid_acc', 'validation accuracy (%)') as never,
      },
    });
  }
  if (summary.length) {
    charts.push({
      id: 'listops-test', title: 'ListOps test accuracy with 95 % confidence intervals',
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v6.json', data: { values: summary }, width: 320, height: 200,
        title: 'Test accuracy (mean over seeds, 95 % t interval)',
        layer: [
          { mark: { type: 'rule', strokeWidth: 2 }, encoding: { y: { field: 'method', type: 'nominal', title: 'method' }, x: { field: 'lo', type: 'quantitative', title: 'test accuracy (%)', scale: { zero: false } }, x2: { field: 'hi' }, color: { field: 'method', type: 'nominal', title: 'method' } } },
          { mark: { type: 'point', filled: true, size: 60 }, encoding: { y: { field: 'method', type: 'nominal', title: 'method' }, x: { field: 'mean', type: 'quantitative', title: 'test accuracy (%)' }, color: { field: 'method', type: 'nominal', title: 'method' } } },
        ],
      },
    });
  }
  return { title, md, charts, partial: 'the table counts finished runs only (test accuracy is measured when a run ends); the validation chart shows every run as far as it has trained' };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Markdown tables to HTML tables (the only Markdown the sections use besides headings and paragraphs). */
function mdToHtml(lines: string[]): string {
  const html: string[] = [];
  let table: string[][] = [];
  const flush = () => {
    if (!table.length) return;
    const [head, , ...body] = table;
    html.push(`<table><thead><tr>${head.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>${body.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`);
    table = [];
  };
  for (const l of lines) {
    if (l.startsWith('|')) { table.push(l.slice(1, -1).split('|').map((c) => c.trim())); continue; }
    flush();
    if (l.startsWith('## ')) html.push(`<h2>${esc(l.slice(3))}</h2>`);
    else if (l.trim()) html.push(`<p>${esc(l)}</p>`);
  }
  flush();
  return html.join('\n');
}

/**
 * Write DIR/report/{results.md,index.html,charts/*}; returns the paths written. `shown` is the folder as the user
 * named it, for the report's provenance line (`gapgrad report runs/x`, not this machine's absolute path).
 */
export async function writeReport(out: string, shown = out): Promise<{ dir: string; md: string; html: string; charts: string[]; sections: number }> {
  const gridPath = join(out, 'grid.json');
  if (!existsSync(gridPath)) throw new Error(`report: ${gridPath} not found; run 'gapgrad reproduce --out ${out}' first`);
  const grid = JSON.parse(readFileSync(gridPath, 'utf8')) as Grid;
  const dir = join(out, 'report');
  const chartDir = join(dir, 'charts');
  mkdirSync(chartDir, { recursive: true });
  const sections: Section[] = [];
  for (const exp of ['vae', 'ablation', 'variance', 'listops'] as const) {
    if (!grid.experiments.includes(exp)) continue;
    const s = exp === 'vae' || exp === 'ablation' ? vaeSection(out, grid, exp) : exp === 'variance' ? varianceSection(out, grid) : listopsSection(out, grid);
    if (!s) continue;
    // a partial grid is reported as far as it goes, and says so under the section's heading
    const runs = grid.runs.filter((r) => r.experiments.includes(exp));
    const open = runs.filter((r) => !existsSync(join(out, 'done', `${r.id}.json`)));
    if (open.length) {
      s.md.splice(2, 0, `In progress: ${runs.length - open.length} of ${runs.length} runs of this experiment finished; ${s.partial ?? 'the rows of the others show what they have written so far'} (not finished: ${open.map((r) => r.id).join(', ')}).`, '');
    }
    sections.push(s);
  }
  const finished = grid.runs.filter((r) => existsSync(join(out, 'done', `${r.id}.json`))).length;
  const intro = [`# gapgrad reproduction report`, '', `Scale '${grid.scale}', seeds ${grid.seeds.join(', ')}: ${finished} of ${grid.runs.length} runs finished. Written by \`gapgrad report ${shown}\` on ${new Date().toISOString().slice(0, 10)}.`, ''];
  const md: string[] = [...intro];
  const htmlParts: string[] = [];
  const chartFiles: string[] = [];
  for (const s of sections) {
    md.push(...s.md, '');
    htmlParts.push(mdToHtml(s.md));
    for (const c of s.charts) {
      const svg = await chartSvg(c.spec);
      const base = join(chartDir, c.id);
      writeFileAtomic(`${base}.svg`, svg);
      writeFileAtomic(`${base}.png`, svgToPng(svg));
      chartFiles.push(`${base}.svg`, `${base}.png`);
      md.push(`![${c.title}](${relative(dir, `${base}.png`)})`, '');
      htmlParts.push(`<figure>${svg}<figcaption>${esc(c.title)}</figcaption></figure>`);
    }
  }
  if (!sections.length) md.push('No run has written results yet.', '');
  const mdPath = join(dir, 'results.md');
  writeFileAtomic(mdPath, md.join('\n'));
  const html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>gapgrad reproduction report</title>
<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}th:first-child,td:first-child{text-align:left}figure{margin:1.5em 0}figcaption{color:#555;font-size:.9em}</style>
</head><body>
${mdToHtml(intro)}
${htmlParts.join('\n') || '<p>No run has written results yet.</p>'}
</body></html>
`;
  const htmlPath = join(dir, 'index.html');
  writeFileAtomic(htmlPath, html);
  return { dir, md: mdPath, html: htmlPath, charts: chartFiles, sections: sections.length };
}

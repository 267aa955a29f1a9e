// `gapgrad reproduce --scale smoke`: locally with two workers (then rerun: nothing is redone), and through a real
// single-node Slurm cluster (Debian's slurmctld/slurmd/munge, started by test/slurm/cluster.sh) as a job array
// with --wait; the report's files exist, the HTML parses, and every chart has axis titles and a legend.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parse, type DefaultTreeAdapterMap } from 'parse5';
import { planGrid, shardOf, parseShard } from '../cli/reproduce.ts';
import { pairedComparison } from '../cli/report.ts';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'gapgrad.js');
const LISTOPS = resolve(ROOT, '..', 'shared', 'data', 'listops');
const haveListops = existsSync(join(LISTOPS, 'valid.tsv'));
const experiments = haveListops ? 'vae,ablation,variance,listops' : 'vae,ablation,variance';
const common = ['--scale', 'smoke', '--experiments', experiments, '--seeds', '1', ...(haveListops ? ['--listops-dir', LISTOPS] : [])];
const haveSlurm = spawnSync('sh', ['-c', 'command -v slurmctld && command -v slurmd && command -v munged && command -v sbatch'], { encoding: 'utf8' }).status === 0;
let work = '';

function gapgrad(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
}

type Node = DefaultTreeAdapterMap['node'];
function walk(n: Node, f: (n: DefaultTreeAdapterMap['element']) => void): void {
  if ('tagName' in n) f(n);
  for (const c of ('childNodes' in n ? n.childNodes : []) as Node[]) walk(c, f);
}
const cls = (e: DefaultTreeAdapterMap['element']) => e.attrs.find((a) => a.name === 'class')?.value ?? '';

/** The report's checks: files, an HTML that parses, charts with axis titles and legends. */
function checkReport(out: string, runs: number): void {
  const dir = join(out, 'report');
  for (const f of ['index.html', 'results.md']) expect(existsSync(join(dir, f)), f).toBe(true);
  const md = readFileSync(join(dir, 'results.md'), 'utf8');
  expect(md).toContain(`${runs} of ${runs} runs finished`);
  for (const h of ['MNIST-VAE: test loss', 'Ablation', 'Encoder gradient variance', ...(haveListops ? ['ListOps'] : [])]) expect(md).toContain(h);
  // the paper's baselines: ST Gumbel-softmax and Gumbel-Rao for the VAE grid, gst-1.0 for the ablation
  for (const b of ['gumbel', 'rao_gumbel', 'gst-1.0']) expect(md).toContain(`Against ${b}, paired by seed`);
  const html = readFileSync(join(dir, 'index.html'), 'utf8');
  const errors: string[] = [];
  const doc = parse(html, { onParseError: (e) => errors.push(e.code) });
  expect(errors).toEqual([]);
  const svgs: DefaultTreeAdapterMap['element'][] = [];
  walk(doc as unknown as Node, (e) => { if (e.tagName === 'svg') svgs.push(e); });
  const charts = readdirSync(join(dir, 'charts'));
  expect(svgs.length).toBe(charts.filter((c) => c.endsWith('.svg')).length);
  expect(charts.filter((c) => c.endsWith('.png')).length).toBe(svgs.length);
  expect(svgs.length).toBeGreaterThanOrEqual(haveListops ? 5 : 3);
  for (const svg of svgs) {
    let axisTitles = 0, legends = 0;
    walk(svg as unknown as Node, (e) => {
      if (/\brole-axis-title\b/.test(cls(e))) axisTitles++;
      if (/\brole-legend\b/.test(cls(e))) legends++;
    });
    expect(axisTitles, 'axis titles').toBeGreaterThanOrEqual(2);
    expect(legends, 'legend').toBeGreaterThanOrEqual(1);
  }
}

beforeAll(() => { work = mkdtempSync(join(tmpdir(), 'gapgrad-repro-')); });
afterAll(() => { if (work) rmSync(work, { recursive: true, force: true }); });

describe('the grid', () => {
  it('shares runs between experiments and cuts deterministic, disjoint shards that cover it', () => {
    const runs = planGrid({ scale: 'paper', experiments: ['vae', 'ablation', 'variance'], seeds: [1, 2, 3] });
    const ids = runs.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    // 4 methods x 2 taus (vae) + 2 more methods x 2 taus (ablation; gst-1.0 shared) + 4 variance runs, per seed
    expect(runs.length).toBe(3 * (8 + 4 + 4));
    const shared = runs.find((r) => r.id === 'vae-gst-1.0-t1-s1')!;
    expect(shared.experiments.sort()).toEqual(['ablation', 'vae']);
    expect(shared.args).toEqual(expect.arrayContaining(['--epochs', '40']));
    const parts = [1, 2, 3, 4, 5].map((i) => shardOf(runs, parseShard(`${i}/5`)).map((r) => r.id));
    expect(parts.flat().sort()).toEqual([...ids].sort());
    expect(() => parseShard('6/5')).toThrow(/--shard: expected i\/N/);
    expect(() => planGrid({ scale: 'paper', experiments: ['listops'], seeds: [1] })).toThrow(/--listops-dir/);
    // a user's method joins every experiment's comparison, and every run loads its module
    const withMine = planGrid({ scale: 'smoke', experiments: ['vae', 'ablation'], seeds: [1], estimators: ['/x/mine.ts'], extraMethods: ['half_gst'] });
    expect(withMine.filter((r) => r.method === 'half_gst').map((r) => r.id).sort()).toEqual(['vae-half_gst-t0.5-s1', 'vae-half_gst-t1-s1']);
    for (const r of withMine) expect(r.args).toEqual(expect.arrayContaining(['--estimators', '/x/mine.ts']));
    const lp = planGrid({ scale: 'paper', experiments: ['listops'], seeds: [1], listopsDir: '/d' });
    expect(lp[0].args).toEqual(expect.arrayContaining(['--preset', 'paper', '--valid', '/d/valid.tsv', '--test', '/d/test.tsv']));
    // a study sized to the machine: the overrides replace the scale's budget (one --examples) and get their own ids
    const sized = planGrid({ scale: 'quick', experiments: ['listops'], seeds: [2], listopsDir: '/d', listopsHidden: 96, listopsExamples: 500000 });
    expect(sized.map((r) => r.id)).toContain('listops-gst-1.0-t0.1-s2-h96-n500000');
    expect(sized[0].args.filter((a) => a === '--examples').length).toBe(1);
    expect(sized[0].args).toEqual(expect.arrayContaining(['--hidden', '96', '--examples', '500000']));
  });

  it('decides a method against the baseline from seed-paired differences and their t interval', () => {
    const rows = [
      ...[100, 101, 102].map((value, i) => ({ method: 'gumbel', tau: 1, seed: i + 1, value })),
      ...[98, 99.1, 99.9].map((value, i) => ({ method: 'a', tau: 1, seed: i + 1, value })), // -2, -1.9, -2.1
      ...[101, 100, 102.5].map((value, i) => ({ method: 'b', tau: 1, seed: i + 1, value })), // +1, -1, +0.5
      { method: 'c', tau: 1, seed: 2, value: 90 },
      { method: 'a', tau: 0.5, seed: 1, value: 1 }, // no baseline at this tau: no row
    ];
    const md = pairedComparison(rows, 'gumbel', 'test loss, lower is better', false);
    // a: mean -2, std 0.1, half-width 4.303 * 0.1 / sqrt(3) = 0.248
    expect(md).toContain('| a | 1 | 3 | -2.00 | [-2.25, -1.75] | better than gumbel |');
    expect(md.find((l) => l.startsWith('| b |'))).toMatch(/\| \+0\.17 \| \[-2\.\d\d, 2\.\d\d\] \| not distinguishable/);
    expect(md).toContain('| c | 1 | 1 | -11.00 | — | one seed: undecided |');
    expect(md.some((l) => l.startsWith('| a | 0.5'))).toBe(false);
    // higher is better flips the verdict
    expect(pairedComparison(rows, 'gumbel', 'accuracy', true)).toContain('| a | 1 | 3 | -2.00 | [-2.25, -1.75] | worse than gumbel |');
    expect(pairedComparison(rows.filter((r) => r.method === 'gumbel'), 'gumbel', 'x', true)).toEqual([]);
  });

  it('refuses bad flags before any work, with exit 2', () => {
    for (const [args, re] of [
      [['--scale', 'huge'], /--scale: expected one of smoke, quick, paper, got 'huge'/],
      [['--experiments', 'vae,nope'], /--experiments: 'nope' is not one of/],
      [['--seeds', '1,x'], /--seeds: expected comma-separated integers/],
      [['--workers', '0'], /--workers: expected comma-separated integers >= 1/],
      [['--shard', '0/3'], /--shard: expected i\/N/],
      [['--wait'], /--wait: only with --slurm/],
      [['--experiments', 'vae', '--listops-examples', '1000'], /--listops-hidden\/--listops-examples: only with the listops experiment/],
      [['--experiments', 'listops', '--listops-hidden', '0'], /--listops-hidden: expected comma-separated integers >= 1/],
    ] as [string[], RegExp][]) {
      const r = gapgrad(['reproduce', '--out', join(work, 'bad'), ...args]);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(re);
    }
    expect(existsSync(join(work, 'bad'))).toBe(false);
  });
});

describe('reproduce --scale smoke', () => {
  it('runs locally with two workers, writes the report, and a rerun redoes nothing', () => {
    const out = join(work, 'local');
    const r = gapgrad(['reproduce', ...common, '--workers', '2', '--out', out]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const n = JSON.parse(readFileSync(join(out, 'grid.json'), 'utf8')).runs.length;
    checkReport(out, n);
    const again = gapgrad(['reproduce', ...common, '--workers', '2', '--out', out]);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toContain(`(${n} already finished, 0 to run)`);
    // a run without its finish marker is reported as in progress under its experiment's heading
    const grid = JSON.parse(readFileSync(join(out, 'grid.json'), 'utf8'));
    const open = grid.runs.find((r: { id: string; experiments: string[] }) => r.experiments.includes('ablation')).id;
    rmSync(join(out, 'done', `${open}.json`));
    // the folder named relative to the working directory: the report's provenance line names it as given
    const rel = relative(process.cwd(), out);
    const rep = gapgrad(['report', rel]);
    expect(rep.status, rep.stderr).toBe(0);
    const md = readFileSync(join(out, 'report', 'results.md'), 'utf8');
    expect(md).toContain(`Written by \`gapgrad report ${rel}\` on`);
    expect(md).toMatch(new RegExp(`In progress: \\d+ of \\d+ runs of this experiment finished;[^\\n]*not finished: ${open.replace(/\./g, '\\.')}`));
    expect(md).toContain(`${n - 1} of ${n} runs finished`);

    // --publish DEST: the report and the runs' records (no checkpoints, no logs); reporting a copy of the records
    // gives the same report, and a second publication replaces the first
    const pub = join(work, 'published');
    for (let i = 0; i < 2; i++) {
      const p = gapgrad(['report', rel, '--publish', pub]);
      expect(p.status, p.stderr).toBe(0);
      expect(p.stdout).toContain(`the records of ${n} runs in ${pub}`);
    }
    const files = readdirSync(pub, { recursive: true }) as string[];
    for (const f of ['results.md', 'index.html', join('records', 'grid.json')]) expect(files, f).toContain(f);
    expect(files.filter((f) => /\.(safetensors|log)$/.test(f))).toEqual([]);
    expect(readdirSync(join(pub, 'records', 'runs')).length).toBe(n);
    expect(readdirSync(work).filter((f) => f.includes('published.'))).toEqual([]); // no temporary folder left (.published.<pid>...tmp)
    const copy = join(work, 'republished');
    cpSync(join(pub, 'records'), copy, { recursive: true });
    expect(gapgrad(['report', copy]).status).toBe(0);
    const body = (file: string) => readFileSync(file, 'utf8').split('\n').slice(3).join('\n');
    expect(body(join(copy, 'report', 'results.md'))).toBe(body(join(pub, 'results.md')));
    // a folder that is not an earlier publication is never replaced
    const other = join(work, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'keep.txt'), 'mine');
    const refused = gapgrad(['report', rel, '--publish', other]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('--publish');
    expect(readFileSync(join(other, 'keep.txt'), 'utf8')).toBe('mine');
  }, 600_000);

  it.skipIf(!haveSlurm)('runs as a Slurm job array on a real single-node cluster (sbatch --wait), then writes the report', () => {
    const cluster = join(work, 'slurm');
    const started = spawnSync('bash', [join(ROOT, 'test', 'slurm', 'cluster.sh'), 'start', cluster], { encoding: 'utf8' });
    expect(started.status, started.stderr).toBe(0);
    const SLURM_CONF = /SLURM_CONF=(\S+)/.exec(started.stdout)![1];
    try {
      const out = join(work, 'viaslurm');
      const r = gapgrad(['reproduce', ...common, '--slurm', '--wait', '--cpus-per-task', '1', '--out', out], { SLURM_CONF });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      const n = JSON.parse(readFileSync(join(out, 'grid.json'), 'utf8')).runs.length;
      expect(readFileSync(join(out, 'slurm', 'array.sh'), 'utf8')).toContain(`#SBATCH --array=1-${n}`);
      expect(readdirSync(join(out, 'slurm')).filter((f) => f.startsWith('task-')).length).toBe(n);
      checkReport(out, n);
    } finally {
      execFileSync('bash', [join(ROOT, 'test', 'slurm', 'cluster.sh'), 'stop', cluster]);
    }
  }, 600_000);
});

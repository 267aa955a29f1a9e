// ListOps Gumbel Tree-LSTM throughput: training examples/s (forward + backward + clip + Adam, real ListOps lines in
// length-bucketed batches of 16), the products' effective GFLOPS, and evaluation examples/s over the validation
// (857 lines) and test (8,689 lines) splits; optionally the same steps on an older commit in the same process,
// interleaved, to give old/new ratios that a shared machine's load affects alike.
//
//   npx tsx bench/listops.ts [--hidden 300,64] [--threads 1,2] [--rounds 6] [--chunk 3] [--ab REF]
//                            [--eval valid,test] [--data DIR] [--python python3] [--json]
//
// Training lines: every third line of valid.tsv (286 lines, mean 26.5 tokens), the batches of one epoch
// (lengthBuckets, seed 1). Each configuration (hidden, threads) runs in its own child process (the thread count is
// the CPU backend's, per process); --threads 1,2 alternates the children round by round. With --ab REF the child
// also builds REF's model (its source tree, extracted with `git archive` under .scratch/ab/) and times its steps
// interleaved with the current code's step by step (ABBA order by round), on the same batches from the same seed; it
// reports the per-step time ratios (median, quartiles) and whether the two produced the same losses bit for bit.
// `npm run bench` calls listopsSection() (below), which runs this file as a child and formats its JSON.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../platform/atomic.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** What one implementation (the current tree, or an older commit's) exports for the benchmark. */
interface Impl {
  label: string;
  train: typeof import('../models/listops/train.ts');
  data: typeof import('../models/listops/data.ts');
  device: typeof import('../cli/device.ts');
}

async function loadImpl(root: string, label: string): Promise<Impl> {
  const u = (p: string) => pathToFileURL(join(root, p)).href;
  return {
    label,
    train: await import(u('models/listops/train.ts')),
    data: await import(u('models/listops/data.ts')),
    device: await import(u('cli/device.ts')),
  };
}

/** REF's source tree under bench/out/ab/<sha> (extracted once). */
function extractRef(ref: string): { dir: string; sha: string } {
  const sha = execFileSync('git', ['rev-parse', '--short', ref], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dir = join(ROOT, '.scratch', 'ab', sha); // ignored by git and outside tsc's include
  if (!existsSync(join(dir, 'models', 'listops', 'tree.ts'))) {
    mkdirSync(dir, { recursive: true });
    const paths = execFileSync('git', ['ls-tree', '--name-only', sha], { cwd: ROOT, encoding: 'utf8' }).split('\n')
      .filter((p) => ['engine', 'backends', 'estimators', 'models', 'cli', 'platform', 'index.ts', 'node.ts', 'browser.ts', 'webgpu.ts', 'webgpu.node.ts', 'testing.ts', 'testing'].includes(p));
    execFileSync('sh', ['-c', `git archive ${sha} ${paths.join(' ')} | tar -x -C '${dir}'`], { cwd: ROOT });
  }
  return { dir, sha };
}

const loadAvg = () => os.loadavg().map((l) => l.toFixed(2)).join(', ');

export interface ListopsBenchRow {
  impl: string;
  hidden: number;
  threads: number;
  /** training examples per second over the timed steps */
  trainExS: number;
  /** product GFLOP per training example (the GEMMs of leaf.ts/tree.ts, counted, plus the leaf LSTM's input
   *  projection, forward and backward, counted from its shapes) */
  gflopPerEx: number;
  effGflops: number;
  steps: number;
  examples: number;
  evalValidExS?: number;
  evalTestExS?: number;
  evalValidAcc?: number;
  evalTestAcc?: number;
}

export interface ListopsBenchOut {
  rows: ListopsBenchRow[];
  /** per hidden size: whether the reference implementation's losses equal the current one's, bit for bit */
  identical?: Record<string, boolean>;
  /** per hidden size: current / reference training examples/s, from the interleaved steps (totals) */
  ratio?: Record<string, number>;
  /** per hidden size: the per-step time ratios reference / current on the same batch (median, quartiles) */
  stepRatio?: Record<string, { median: number; q1: number; q3: number; n: number }>;
  load: { start: string; end: string };
  lines: { train: number; meanTokens: number; valid: number; test: number };
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

/** The leaf LSTM's input projection of the run's next batch (T*B rows, E = H -> 4H, through ops.linear, not
 *  gemmF32): forward and the backward's two products. */
function inputProjFlop(r: object, H: number): number {
  const run = r as { epochBatches(): number[][]; batchInEpoch: number; train: { ids: Int32Array[] } };
  const idx = run.epochBatches()[run.batchInEpoch];
  let T = 0;
  for (const i of idx) T = Math.max(T, run.train.ids[i].length);
  return 3 * 2 * T * idx.length * H * 4 * H;
}

/** One process: the configurations for one thread count, current code (and REF, interleaved). */
async function child(): Promise<void> {
  const hiddens = arg('hidden', '300,64').split(',').map(Number);
  const threads = Number(arg('threads', '1'));
  const rounds = Number(arg('rounds', '6'));
  const chunk = Number(arg('chunk', '3'));
  const evals = arg('eval', 'valid,test').split(',').filter(Boolean);
  const dataDir = resolve(arg('data', join(ROOT, '..', 'shared', 'data', 'listops')));
  const abRef = arg('ab', '');
  const cur = await loadImpl(ROOT, 'current');
  const impls: Impl[] = [cur];
  if (abRef) {
    const { dir, sha } = extractRef(abRef);
    impls.push(await loadImpl(dir, sha));
  }
  for (const im of impls) await im.device.enableFastCpu(threads as 1 | 2);
  const { gemmStats } = await import('../models/listops/leaf.ts');
  const loadStart = loadAvg();
  const validAll = cur.data.loadListOps(join(dataDir, 'valid.tsv'), { maxLen: 100 });
  const trainEx = validAll.filter((_, i) => i % 3 === 0);
  const meanTokens = trainEx.reduce((s, e) => s + e.tokens.length, 0) / trainEx.length;
  const testAll = evals.includes('test') ? cur.data.loadListOps(join(dataDir, 'test.tsv'), { maxLen: 100 }) : [];
  const out: ListopsBenchOut = {
    rows: [], load: { start: loadStart, end: '' },
    lines: { train: trainEx.length, meanTokens: Number(meanTokens.toFixed(1)), valid: validAll.length, test: testAll.length },
  };
  for (const H of hiddens) {
    const paper = H === 300;
    const runs = impls.map((im) => {
      const { epochs: _e, ...p } = im.train.PAPER_PRESET;
      const cfg = { ...im.train.DEFAULT_LISTOPS, ...(paper ? p : {}), hidden: H, embDim: H, validPath: 'unused', examples: 1e12 };
      // the same vocabulary (built by the current code) for both, so the two models are the same model
      const vocab = cur.data.Vocab.build(trainEx.map((e) => e.tokens));
      const run = new im.train.ListopsRun(cfg, im.data.Vocab.fromJSON(vocab.toJSON()), trainEx);
      return { im, run, ms: 0, ex: 0, losses: [] as number[] };
    });
    // warm-up (JIT, the GEMM's worker, the pools): two steps each
    for (const r of runs) for (let i = 0; i < 2; i++) r.losses.push(r.run.trainStep().loss);
    let flop = 0;
    // step s of every implementation is the same batch (same seed, same lines): per-step time ratios are paired.
    // The order alternates (ABBA) so that a drift in the machine's load falls on both alike.
    const stepMs: number[][] = runs.map(() => []);
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? runs : runs.slice().reverse();
      for (let i = 0; i < chunk; i++) {
        for (const r of order) {
          const counting = r.im === cur;
          if (counting) { flop += inputProjFlop(r.run, H); gemmStats.on = true; gemmStats.flops = 0; }
          const t0 = performance.now();
          const s = r.run.trainStep();
          const dt = performance.now() - t0;
          if (counting) { gemmStats.on = false; flop += gemmStats.flops; }
          stepMs[runs.indexOf(r)].push(dt);
          r.ms += dt;
          r.losses.push(s.loss);
          r.ex += s.size;
        }
      }
    }
    if (runs.length > 1) {
      // per-step ratios reference / current (> 1: current faster), their median and quartiles
      const q = stepMs[0].map((t, i) => stepMs[1][i] / t).sort((a, b) => a - b);
      const at = (f: number) => q[Math.min(q.length - 1, Math.floor(f * q.length))];
      (out.stepRatio ??= {})[H] = { median: Number(at(0.5).toFixed(3)), q1: Number(at(0.25).toFixed(3)), q3: Number(at(0.75).toFixed(3)), n: q.length };
    }
    const gflopPerEx = flop / runs[0].ex / 1e9;
    for (const r of runs) {
      const row: ListopsBenchRow = {
        impl: r.im.label, hidden: H, threads, trainExS: Number((r.ex / r.ms * 1000).toFixed(1)),
        gflopPerEx: Number(gflopPerEx.toFixed(4)), effGflops: Number((gflopPerEx * r.ex / r.ms * 1000).toFixed(1)),
        steps: r.losses.length - 2, examples: r.ex,
      };
      out.rows.push(row);
    }
    if (runs.length > 1) {
      (out.identical ??= {})[H] = runs[1].losses.every((l, i) => Object.is(l, runs[0].losses[i]));
      (out.ratio ??= {})[H] = Number(((runs[0].ex / runs[0].ms) / (runs[1].ex / runs[1].ms)).toFixed(3));
    }
    // evaluation passes: argmax parses over the whole split, batches of 64 (the CLI's default)
    for (const split of evals) {
      const lines = split === 'valid' ? validAll : testAll;
      for (const r of runs) {
        const enc = r.im.train.encodeAll(r.run.vocab, lines);
        const t0 = performance.now();
        const acc = r.im.train.accuracy(r.run.model, enc, 64);
        const s = (performance.now() - t0) / 1000;
        const row = out.rows.find((x) => x.impl === r.im.label && x.hidden === H)!;
        if (split === 'valid') { row.evalValidExS = Number((lines.length / s).toFixed(1)); row.evalValidAcc = acc; }
        else { row.evalTestExS = Number((lines.length / s).toFixed(1)); row.evalTestAcc = acc; }
        process.stderr.write(`  H=${H} ${threads}T ${r.im.label}: eval ${split} ${lines.length} lines in ${s.toFixed(1)} s (load ${loadAvg()})\n`);
      }
    }
    for (const row of out.rows.filter((x) => x.hidden === H)) {
      process.stderr.write(`  H=${H} ${threads}T ${row.impl}: ${row.trainExS} ex/s, ${row.effGflops} GFLOPS (load ${loadAvg()})\n`);
    }
  }
  out.load.end = loadAvg();
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

function runChildJson(args: string[], nodeArgs: string[], timeoutS: number): Promise<ListopsBenchOut | string> {
  return new Promise((res) => {
    const ch = spawn(process.execPath, [...nodeArgs, join(ROOT, 'bench', 'listops.ts'), '--child', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let so = '', se = '';
    const timer = setTimeout(() => ch.kill('SIGTERM'), timeoutS * 1000);
    ch.stdout.on('data', (d: Buffer) => { so += d; });
    ch.stderr.on('data', (d: Buffer) => { se += d; process.stderr.write(d); });
    ch.on('close', (code) => {
      clearTimeout(timer);
      const line = so.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      if (code === 0 && line) res(JSON.parse(line) as ListopsBenchOut);
      else res(`exit ${code}: ${se.trim().split('\n').slice(-1)[0] ?? ''}`);
    });
  });
}

export interface SectionOptions {
  quick?: boolean;
  /** Node flags for the child (relaxed SIMD, tsx loader) */
  nodeArgs: string[];
  ab?: string;
  hidden?: number[];
  threads?: number[];
  evals?: string[];
  /** a python with torch: also time bench/peers/torch_listops.py on the same lines and batches */
  python?: string;
}

interface TorchOut { torch: string; python: string; rows: { hidden: number; threads: number; exS: number }[] }

/** The training lines and the batches of the bench's first epoch (seed 1), as token ids, for the PyTorch peer. */
async function writePeerBatches(dataDir: string, path: string): Promise<void> {
  await import('../index.ts'); // registers the CPU backend (the run builds a small model)
  const data = await import('../models/listops/data.ts');
  const train = await import('../models/listops/train.ts');
  const ex = data.loadListOps(join(dataDir, 'valid.tsv'), { maxLen: 100 }).filter((_, i) => i % 3 === 0);
  const vocab = data.Vocab.build(ex.map((e) => e.tokens));
  const run = new train.ListopsRun({ ...train.DEFAULT_LISTOPS, hidden: 4, embDim: 4, validPath: 'unused' }, vocab, ex);
  const batches = (run as unknown as { epochBatches(): number[][] }).epochBatches();
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, JSON.stringify({
    vocab: vocab.size,
    batches: batches.map((idx) => ({ ids: idx.map((i) => Array.from(run.train.ids[i])), labels: idx.map((i) => run.train.labels[i]) })),
  }));
}

/** The ListOps section of `npm run bench`: markdown lines, and notes for what was skipped or failed. */
export async function listopsSection(o: SectionOptions): Promise<{ lines: string[]; notes: string[]; results: ListopsBenchOut[] }> {
  const notes: string[] = [];
  const dataDir = join(ROOT, '..', 'shared', 'data', 'listops');
  if (!existsSync(join(dataDir, 'valid.tsv'))) return { lines: [], notes: [`ListOps: skipped, no ${join(dataDir, 'valid.tsv')}`], results: [] };
  const threads = o.threads ?? [1, 2];
  const hidden = o.hidden ?? [300, 64];
  const rounds = o.quick ? 2 : 6;
  const evals = o.evals ?? (o.quick ? ['valid'] : ['valid', 'test']);
  const results: ListopsBenchOut[] = [];
  for (const t of threads) {
    const args = ['--threads', String(t), '--hidden', hidden.join(','), '--rounds', String(rounds), '--eval', evals.join(',') || ''];
    if (o.ab) args.push('--ab', o.ab);
    const r = await runChildJson(args, o.nodeArgs, 1800);
    if (typeof r === 'string') notes.push(`ListOps ${t} thread(s): ${r}`);
    else results.push(r);
  }
  let torch: TorchOut | null = null;
  if (o.python) {
    const bp = join(ROOT, 'bench', 'out', 'listops_batches.json');
    await writePeerBatches(dataDir, bp);
    const r = await new Promise<{ code: number | null; out: string; err: string }>((res) => {
      const ch = spawn(o.python!, [join(ROOT, 'bench', 'peers', 'torch_listops.py'), '--batches', bp, '--hidden', hidden.join(','),
        '--threads', threads.join(','), '--steps', o.quick ? '6' : '12'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' } });
      let out = '', err = '';
      ch.stdout.on('data', (d: Buffer) => { out += d; });
      ch.stderr.on('data', (d: Buffer) => { err += d; process.stderr.write(d); });
      ch.on('close', (code) => res({ code, out, err }));
    });
    const line = r.out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
    if (r.code === 0 && line) torch = JSON.parse(line) as TorchOut;
    else notes.push(`ListOps PyTorch peer: ${r.code === 3 ? 'skipped, torch not installed' : `failed (exit ${r.code}: ${r.err.trim().split('\n').slice(-1)[0] ?? ''})`}`);
  } else notes.push('ListOps PyTorch peer: skipped (no python with torch)');
  const lines = ['## ListOps Gumbel Tree-LSTM (training and evaluation throughput)', ''];
  if (results.length) {
    const l0 = results[0].lines;
    lines.push(`Training: ${l0.train} lines of valid.tsv (every third, mean ${l0.meanTokens} tokens), batches of 16, steps with Adam and clipping; ` +
      `evaluation: argmax parses, batches of 64, over ${l0.valid} valid${l0.test ? ` and ${l0.test} test` : ''} lines. GFLOPS: product FLOPs per example / time.`, '');
    lines.push('| impl | hidden | threads | train ex/s | GFLOP/ex | eff. GFLOPS | eval valid ex/s | eval test ex/s | load (start; end) |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const r of results) {
      for (const row of r.rows) {
        lines.push(`| ${row.impl} | ${row.hidden} | ${row.threads} | ${row.trainExS} | ${row.gflopPerEx} | ${row.effGflops} | ${row.evalValidExS ?? '–'} | ${row.evalTestExS ?? '–'} | ${r.load.start}; ${r.load.end} |`);
      }
    }
    lines.push('');
    for (const r of results) {
      if (r.ratio) {
        const t = r.rows[0].threads;
        for (const [h, x] of Object.entries(r.ratio)) {
          const sr = r.stepRatio?.[h];
          lines.push(`- ${t} thread(s), hidden ${h}: current / ${r.rows.find((x2) => x2.impl !== 'current')?.impl} = ${x}x in total` +
            (sr ? `, per-step (same batch) median ${sr.median}x (quartiles ${sr.q1}-${sr.q3}, ${sr.n} steps)` : '') + `; losses bit-identical: ${r.identical?.[h] ? 'yes' : 'NO'}`);
        }
      }
    }
    if (torch) {
      lines.push(`PyTorch ${torch.torch} (python ${torch.python}), bench/peers/torch_listops.py (all pairs composed at every level, as the authors' code), same lines and batches:`, '');
      for (const t of torch.rows) {
        const g = results.flatMap((r) => r.rows).find((x) => x.impl === 'current' && x.hidden === t.hidden && x.threads === t.threads);
        lines.push(`- hidden ${t.hidden}, ${t.threads} thread(s): PyTorch ${t.exS} ex/s; gapgrad / PyTorch = ${g ? (g.trainExS / t.exS).toFixed(2) : '–'}x`);
      }
      lines.push('');
    }
    if (results.length === 2) {
      for (const h of hidden) {
        const a = results[0].rows.find((x) => x.impl === 'current' && x.hidden === h), b = results[1].rows.find((x) => x.impl === 'current' && x.hidden === h);
        if (a && b) lines.push(`- hidden ${h}: ${b.threads} threads / ${a.threads} thread = ${(b.trainExS / a.trainExS).toFixed(2)}x (separate processes, one after the other)`);
      }
    }
    lines.push('');
  }
  return { lines, notes, results };
}

if (process.argv.includes('--child')) {
  await child();
} else if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const { nodeFlags } = await import('../cli/node_flags.ts');
  const { lines, notes, results } = await listopsSection({
    quick: process.argv.includes('--quick'),
    nodeArgs: [...nodeFlags(), '--import', 'tsx'],
    ab: arg('ab', '') || undefined,
    hidden: arg('hidden', '300,64').split(',').map(Number),
    threads: arg('threads', '1,2').split(',').map(Number),
    evals: arg('eval', 'valid,test').split(',').filter(Boolean),
    python: arg('python', '') || undefined,
  });
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(results)}\n`);
  else process.stdout.write(`${lines.join('\n')}\n${notes.map((n) => `- ${n}`).join('\n')}\n`);
}

// The cells of `gapgrad bench --contention` (matmul products, VAE and ListOps training steps), timed with two
// 1-thread GEMMs and one 2-thread GEMM taking turns, so that 1T'/1T (two identical configurations) shows the noise
// of the 2T/1T ratio beside it; quiet and busy (busy-looping processes beside) phases, repeated.
//   npx tsx bench/contention_cells.ts [--rounds 2] [--samples 30] [--busy 1] [--groups matmul,vae,listops] [--two-first]
import '../platform/node.ts';
import os from 'node:os';
import { createGemm } from '../backends/cpu/wasm/gemm.ts';
import { cpuBackend } from '../node.ts';
import { enterDevice, listopsCase, matmulCase, vaeCase, type BenchCase, type DeviceConfig } from '../cli/bench_cases.ts';
import { interleave, startBusy, stats } from '../cli/bench_core.ts';

const arg = (n: string, d: string) => { const i = process.argv.indexOf(`--${n}`); return i >= 0 ? process.argv[i + 1] : d; };
const rounds = Number(arg('rounds', '2')), samples = Number(arg('samples', '30')), busyN = Number(arg('busy', '1'));
const groups = arg('groups', 'matmul,vae,listops').split(',');
const cases: BenchCase[] = [matmulCase('100x784x512'), matmulCase('512x512x512'), vaeCase('gst-1.0'), listopsCase('gst-1.0', 1)]
  .filter((c) => groups.includes(c.group));
// --two-first: create the 2-thread GEMM first (a check on any bias from the order of creation)
const twoFirst = process.argv.includes('--two-first');
const made: Record<string, DeviceConfig> = {};
for (const [id, t] of (twoFirst ? [['2T', 2], ['1T', 1], ["1T'", 1]] : [['1T', 1], ["1T'", 1], ['2T', 2]]) as [string, number][]) {
  made[id] = { id, device: 'cpu', threads: t, gemm: await createGemm({ threads: t }) };
}
const configs: DeviceConfig[] = [made['1T'], made["1T'"], made['2T']];
const g2 = configs[2].gemm!;
const before = cpuBackend.gemm;
console.log(`load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log('| round | phase | case | 1T | 1T\' | 2T | 1T\'/1T | 2T/1T | 2T signs spin/wait/late/wake, backoffs, probes (busy) |');
console.log('|---|---|---|---:|---:|---:|---:|---:|---|');
for (let r = 0; r < rounds; r++) {
  for (const phase of ['quiet', 'busy']) {
    const busy = phase === 'busy' ? startBusy(busyN) : null;
    await new Promise((res) => setTimeout(res, 200));
    try {
      for (const c of cases) {
        const live: Awaited<ReturnType<BenchCase["make"]>>[] = [];
        for (const d of configs) { enterDevice(d); live.push(await c.make(d)); }
        const c0 = g2.contention;
        const t = await interleave(configs.map((d, q) => ({ enter: () => enterDevice(d), sample: live[q].sample })),
          { samples, warm: 3, budgetMs: 1000, perTurn: c.group === 'matmul' ? 3 : 2 });
        const c1 = g2.contention;
        for (const l of live) l.dispose();
        const med = t.map((x) => stats(x).median);
        const fmt = (x: number) => (c.flop ? `${(c.flop / (x * 1e6)).toFixed(1)} GF` : `${x.toFixed(2)} ms`);
        console.log(`| ${r} | ${phase} | ${c.name} | ${med.map(fmt).join(' | ')} | ${(med[1] / med[0]).toFixed(2)} | ${(med[2] / med[0]).toFixed(2)} | ` +
          `${c1.spin - c0.spin}/${c1.wait - c0.wait}/${c1.late - c0.late}/${c1.wake - c0.wake}, ${c1.backoffs - c0.backoffs}, ${c1.probes - c0.probes} (${c1.busyProbes - c0.busyProbes}) |`);
      }
    } finally {
      busy?.stop();
    }
  }
}
cpuBackend.gemm = before;
for (const d of configs) await d.gemm!.close();
console.log(`load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);

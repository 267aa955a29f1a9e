// The restructured ListOps CPU path (issue 17) against the path it replaced: the same training run (losses of
// every step, the parameters after it, the evaluation accuracy) must come out bit-identical. GOLDEN holds the
// values the previous implementation (commit 2f84656, tree.ts/leaf.ts before issue 17) produced for this exact
// run, with the wasm GEMM's plain SIMD kernels (vitest's Node flags) and with relaxed-SIMD madd (the CLI's flags on
// Node 20), which round differently; print new ones with LISTOPS_GOLDEN_PRINT=1.
import { describe, expect, it } from 'vitest';
import { cpuBackend } from '../index.ts';
import { generateListOps, Vocab } from '../models/listops/data.ts';
import { DEFAULT_LISTOPS, ListopsRun, accuracy, encodeAll, type ListopsTrainConfig } from '../models/listops/train.ts';

interface Trace { losses: number[]; paramSum: number; paramAbsSum: number; acc: number }

function trace(method: string, hidden: number, steps: number): Trace {
  const ex = generateListOps({ count: 48, seed: 2026, maxTokens: 31 });
  const cfg: ListopsTrainConfig = {
    ...DEFAULT_LISTOPS, method, tau: 0.8, seed: 7, hidden, embDim: hidden, batchSize: 8, dropout: 0.1, k: 4,
    examples: 1e6, validPath: 'unused',
  };
  const run = new ListopsRun(cfg, Vocab.build(ex.map((e) => e.tokens)), ex);
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) losses.push(run.trainStep().loss);
  let paramSum = 0, paramAbsSum = 0;
  for (const p of run.model.parameters()) for (const v of p.dataSync()) { paramSum += v; paramAbsSum += Math.abs(v); }
  const acc = accuracy(run.model, encodeAll(run.vocab, ex), 16);
  return { losses, paramSum, paramAbsSum, acc };
}

const CASES: { method: string; hidden: number; steps: number }[] = [
  { method: 'gst-1.0', hidden: 24, steps: 8 },
  { method: 'rao_gumbel', hidden: 40, steps: 5 },
];

const GOLDEN_RELAXED: Record<string, Trace> = {
  'gst-1.0/H24': {"losses":[2.351017713546753,2.2959189414978027,2.2900052070617676,2.293769121170044,2.268190622329712,2.306994915008545,2.2795050144195557,2.2948641777038574],"paramSum":31.369551458541537,"paramAbsSum":1369.93025061363,"acc":0.16666666666666666},
  'rao_gumbel/H40': {"losses":[2.2964181900024414,2.344548225402832,2.244046449661255,2.329537868499756,2.3445205688476562],"paramSum":48.4788149307642,"paramAbsSum":2720.3977285826913,"acc":0.10416666666666667},
};

const GOLDEN_PLAIN: Record<string, Trace> = {
  'gst-1.0/H24': {"losses":[2.351017713546753,2.2959189414978027,2.2900052070617676,2.293769121170044,2.268190622329712,2.306994915008545,2.2795050144195557,2.2948641777038574],"paramSum":31.369553265103605,"paramAbsSum":1369.930251788057,"acc":0.16666666666666666},
  'rao_gumbel/H40': {"losses":[2.2964181900024414,2.344548225402832,2.244046449661255,2.329537868499756,2.3445205688476562],"paramSum":48.478810909222375,"paramAbsSum":2720.397730878296,"acc":0.10416666666666667},
};

describe('ListOps fast path: bit-identical to the previous implementation', () => {
  for (const c of CASES) {
    const name = `${c.method}/H${c.hidden}`;
    it(`trains to the same losses, parameters and accuracy (${name}, ${c.steps} steps)`, () => {
      const got = trace(c.method, c.hidden, c.steps);
      if (process.env.LISTOPS_GOLDEN_PRINT) console.log(`GOLDEN ${JSON.stringify(name)}: ${JSON.stringify(got)},`);
      // the kernels this process's GEMM runs (plain SIMD, or relaxed-SIMD madd when Node has it on)
      const relaxed = Boolean((cpuBackend.gemm as { relaxed?: boolean } | null)?.relaxed);
      const want = (relaxed ? GOLDEN_RELAXED : GOLDEN_PLAIN)[name];
      expect(want, `no golden values for ${name}`).toBeDefined();
      expect(got.losses).toEqual(want.losses);
      expect(got.paramSum).toBe(want.paramSum);
      expect(got.paramAbsSum).toBe(want.paramAbsSum);
      expect(got.acc).toBe(want.acc);
    });
  }
});

describe('ListOps fast path: packed weights live for one pass', () => {
  it('every weight packed by a training step or an evaluation is released by its end, and a pack outliving an update would be refused', () => {
    const hg = cpuBackend.hostGemm;
    const pack = hg.pack;
    const live = new Set<{ released: boolean }>();
    let packs = 0;
    hg.pack = (b, bOff, k, n, tB) => { const p = pack.call(hg, b, bOff, k, n, tB); live.add(p); packs++; return p; };
    try {
      const ex = generateListOps({ count: 24, seed: 9, maxTokens: 21 });
      const cfg: ListopsTrainConfig = { ...DEFAULT_LISTOPS, seed: 3, hidden: 16, embDim: 16, batchSize: 8, examples: 1e6, validPath: 'unused' };
      const run = new ListopsRun(cfg, Vocab.build(ex.map((e) => e.tokens)), ex);
      for (let i = 0; i < 3; i++) {
        run.trainStep();
        // the leaf LSTM (forward, backward) and the tree (forward, backward) each pack their weight once per pass, and
        // the two weight gradients pack their B (h_{t-1}, the pair inputs)
        expect([...live].filter((p) => !p.released).length, `step ${i}`).toBe(0);
      }
      expect(packs).toBe(3 * 6);
      accuracy(run.model, encodeAll(run.vocab, ex), 8);
      expect([...live].filter((p) => !p.released).length).toBe(0);
      expect(packs).toBeGreaterThan(3 * 6);
      // a weight packed, then updated in place (as the optimiser does), is refused rather than used stale
      const w = run.model.comp.weight.dataSync();
      const H = 16, src = new Float32Array(w);
      const p = hg.pack(src, 0, 2 * H, 5 * H, true);
      src.set(src.map((v) => v * 0.5 + 0.01));
      expect(() => hg.matmulPacked(new Float32Array(4 * 2 * H), 0, p, new Float32Array(4 * 5 * H), 0, 4, false)).toThrow(/source B changed/);
      p.release();
    } finally {
      hg.pack = pack;
    }
  });
});

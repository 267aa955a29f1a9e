import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../index.ts';
import { tensor, tidy, noGrad, type Tensor } from '../engine/tensor.ts';
import * as ops from '../engine/ops.ts';
import * as random from '../engine/random.ts';
import * as optim from '../engine/optim.ts';
import * as estimators from '../estimators/index.ts';
import { generateListOps, saveListOps, Vocab } from '../models/listops/data.ts';
import {
  GumbelTreeLstm, makeBatch, mergeSlotTensor, mergeSlotsFused, treeCellFused, pairInputsFused,
} from '../models/listops/model.ts';
import { DEFAULT_LISTOPS, trainListops, type ListopsTrainConfig } from '../models/listops/train.ts';

const arr = (t: Tensor) => Array.from(t.dataSync());

function oneHotRows(B: number, m: number, pos: number[]): Tensor {
  const y = new Float32Array(B * m);
  pos.forEach((p, b) => { y[b * m + p] = 1; });
  return tensor(y, [B, m]);
}

/** The discrete merge on host arrays: slots before k kept, slot k replaced by cand k, slots after shifted left. */
function discreteMerge(S: Float32Array, cand: Float32Array, B: number, n: number, D: number, pos: number[], done: boolean[]): Float32Array {
  const m = n - 1;
  const out = new Float32Array(B * m * D);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < m; j++) {
      let src: Float32Array, off: number;
      if (done[b] || j < pos[b]) { src = S; off = (b * n + j) * D; }
      else if (j === pos[b]) { src = cand; off = (b * m + j) * D; }
      else { src = S; off = (b * n + j + 1) * D; }
      out.set(src.subarray(off, off + D), (b * m + j) * D);
    }
  }
  return out;
}

describe('merge formula', () => {
  const B = 6, n = 7, D = 5, m = n - 1;
  for (let trial = 0; trial < 4; trial++) {
    it(`with a hard one-hot y equals the discrete merge (trial ${trial})`, () => {
      const S = random.normal(random.key(10 + trial), [B, n, D]);
      const cand = random.normal(random.key(20 + trial), [B, m, D]);
      const rng = random.permutation(random.key(30 + trial), B * m);
      const pos = Array.from({ length: B }, (_, b) => rng[b] % m);
      pos[0] = 0; pos[1] = m - 1; // both ends every time
      const want = discreteMerge(S.dataSync() as Float32Array, cand.dataSync() as Float32Array, B, n, D, pos, Array(B).fill(false));
      const y = oneHotRows(B, m, pos);
      for (const got of [mergeSlotTensor(S, cand, y), mergeSlotsFused(S, cand, y, null)]) {
        expect(got.shape).toEqual([B, m, D]);
        const g = arr(got);
        for (let i = 0; i < want.length; i++) expect(g[i]).toBeCloseTo(want[i], 6);
      }
    });
  }

  it('finished rows drop their last slot (done mask)', () => {
    const S = random.normal(random.key(1), [B, n, D]);
    const cand = random.normal(random.key(2), [B, m, D]);
    const pos = [2, 0, 5, 1, 3, 4];
    const done = [false, true, false, true, true, false];
    const want = discreteMerge(S.dataSync() as Float32Array, cand.dataSync() as Float32Array, B, n, D, pos, done);
    const y = oneHotRows(B, m, pos);
    const doneF = Float32Array.from(done, (d) => (d ? 1 : 0));
    for (const got of [mergeSlotTensor(S, cand, y, tensor(doneF, [B])), mergeSlotsFused(S, cand, y, doneF)]) {
      const g = arr(got);
      for (let i = 0; i < want.length; i++) expect(g[i]).toBeCloseTo(want[i], 6);
    }
    // and a done row equals S[:, :-1] exactly
    const s = S.dataSync();
    const g = arr(mergeSlotsFused(S, cand, y, doneF));
    for (let j = 0; j < m * D; j++) expect(g[1 * m * D + j]).toBe(s[1 * n * D + j]);
  });

  it('fused merge has the formula gradient (soft y, through C = cumsum(y))', () => {
    const S = random.normal(random.key(3), [B, n, D]).requireGrad();
    const cand = random.normal(random.key(4), [B, m, D]).requireGrad();
    const y = ops.softmax(random.normal(random.key(5), [B, m]), -1).detach().requireGrad();
    const w = random.normal(random.key(6), [B, m, D]);
    const doneF = Float32Array.from([0, 0, 1, 0, 1, 0]);
    const grads = (f: () => Tensor) => {
      for (const t of [S, cand, y]) t.grad = null;
      ops.sum(ops.mul(f(), w)).backward();
      return [S, cand, y].map((t) => arr(t.grad!));
    };
    const ref = grads(() => mergeSlotTensor(S, cand, y, tensor(doneF, [B])));
    const fus = grads(() => mergeSlotsFused(S, cand, y, doneF));
    ref.forEach((r, i) => r.forEach((v, j) => expect(fus[i][j]).toBeCloseTo(v, 4)));
    expect(ref[2].some((v) => Math.abs(v) > 1e-3)).toBe(true); // y really gets a gradient
  });

  it('fused Tree-LSTM cell matches the op composition (values and gradients)', () => {
    const H = 4, Bc = 3, nc = 5;
    const model = new GumbelTreeLstm({ vocabSize: 5, embDim: 3, hidden: H, clfHidden: 3, classes: 10, dropout: 0 }, { key: random.key(7) });
    const S = random.normal(random.key(8), [Bc, nc, 2 * H]).requireGrad();
    const shift = tensor(Float32Array.from({ length: 5 * H }, (_, i) => (i >= H && i < 3 * H ? 1 : 0)), [5 * H]);
    const w = random.normal(random.key(9), [Bc, nc - 1, 2 * H]);
    const run = (fused: boolean) => {
      model.fused = fused;
      S.grad = null;
      model.comp.weight.grad = null;
      const out = model.composePairs(S, ops.add(model.comp.bias!, shift));
      ops.sum(ops.mul(out, w)).backward();
      return [arr(out), arr(S.grad!), arr(model.comp.weight.grad!)];
    };
    const ref = run(false), fus = run(true);
    ref.forEach((r, i) => r.forEach((v, j) => expect(fus[i][j]).toBeCloseTo(v, 5)));
    // the pieces on their own: pair inputs are [h_k ; h_{k+1}]
    const X = arr(pairInputsFused(S)), s = arr(S);
    expect(X[H]).toBe(s[2 * H]); // row 0, pair 0, first entry of h_1
    expect(treeCellFused).toBeTypeOf('function');
  });
});

// ---------------------------------------------------------------- the model
const small = (over: Partial<{ hidden: number; dropout: number }> = {}) => {
  const H = over.hidden ?? 8;
  return new GumbelTreeLstm({ vocabSize: 18, embDim: H, hidden: H, clfHidden: H, classes: 10, dropout: over.dropout ?? 0 }, { key: random.key(1) });
};

function smallData(count: number, seed: number, maxTokens: number) {
  const ex = generateListOps({ count, seed, maxTokens });
  const vocab = Vocab.build(ex.map((e) => e.tokens));
  return { ex, vocab, ids: ex.map((e) => vocab.encode(e.tokens)), labels: Int32Array.from(ex, (e) => e.label) };
}

describe('Gumbel Tree-LSTM', () => {
  const METHODS = estimators.list().filter((m) => m.builtin).map((m) => m.examples[m.examples.length > 1 ? 1 : 0]);
  for (const method of METHODS) {
    it(`plugs in estimator ${method}: finite, non-zero gradients for q and the composition`, () => {
      const { ids, labels } = smallData(8, 3, 20);
      const model = small();
      for (const fused of [true, false]) {
        model.fused = fused;
        tidy(() => {
          const batch = makeBatch(ids);
          const { logits } = model.forward(batch, { select: 'sample', method, tau: 0.5, k: 10, key: random.key(4) });
          ops.crossEntropy(logits, tensor(labels, [labels.length], { dtype: 'int32' })).backward();
          for (const p of [model.query, model.comp.weight, model.comp.bias!, model.leaf.weight_ih, model.embedding.weight]) {
            const g = arr(p.grad!);
            expect(g.every(Number.isFinite)).toBe(true);
            expect(g.some((v) => v !== 0)).toBe(true);
          }
          for (const p of model.parameters()) { p.grad?.dispose(); p.grad = null; }
        });
      }
    });
  }

  it('evaluation (argmax, no dropout) is deterministic; training draws differ by key', () => {
    const { ids } = smallData(16, 5, 30);
    const model = small({ dropout: 0.5 });
    const batch = makeBatch(ids);
    model.eval();
    const a = noGrad(() => model.forward(batch, { select: 'argmax', recordChoices: true }));
    const b = noGrad(() => model.forward(batch, { select: 'argmax', recordChoices: true, key: random.key(99) }));
    expect(arr(a.logits)).toEqual(arr(b.logits));
    expect(a.choices!.map((c) => Array.from(c))).toEqual(b.choices!.map((c) => Array.from(c)));
    // every live row merges a valid pair: index < current length - 1
    a.choices!.forEach((c, step) => c.forEach((k, r) => {
      const cur = Math.max(ids[r].length - step, 1);
      if (cur <= 1) expect(k).toBe(-1);
      else expect(k).toBeGreaterThanOrEqual(0), expect(k).toBeLessThan(cur - 1);
    }));
    model.train();
    const s1 = noGrad(() => model.forward(batch, { select: 'sample', method: 'gumbel', key: random.key(1), recordChoices: true }));
    const s2 = noGrad(() => model.forward(batch, { select: 'sample', method: 'gumbel', key: random.key(2), recordChoices: true }));
    expect(arr(s1.logits)).not.toEqual(arr(s2.logits));
  });

  it('a single-token expression is its own root', () => {
    const model = small();
    model.eval();
    const { logits, root } = noGrad(() => model.forward(makeBatch([Int32Array.of(5), Int32Array.of(5, 6, 7)]), { select: 'argmax' }));
    expect(logits.shape).toEqual([2, 10]);
    expect(root.shape).toEqual([2, 8]);
  });

  it("a tiny model's loss falls on a small fixed dataset", () => {
    const { ids, labels } = smallData(200, 11, 12);
    const model = small({ hidden: 16 });
    const opt = new optim.Adam(model.parameters(), { lr: 5e-3 });
    const B = 20;
    const evalLoss = () => {
      model.eval();
      const l = noGrad(() => tidy(() => ops.crossEntropy(model.forward(makeBatch(ids), { select: 'argmax' }).logits, tensor(labels, [labels.length], { dtype: 'int32' })).item()));
      model.train();
      return l;
    };
    const before = evalLoss();
    const perm = random.permutation(random.key(2), ids.length);
    for (let step = 0; step < 150; step++) {
      const idx = Array.from({ length: B }, (_, i) => perm[(step * B + i) % ids.length]);
      tidy(() => {
        const { logits } = model.forward(makeBatch(idx.map((i) => ids[i])), { select: 'sample', method: 'gst-1.0', tau: 1, key: random.key(1000 + step) });
        const loss = ops.crossEntropy(logits, tensor(Int32Array.from(idx, (i) => labels[i]), [B], { dtype: 'int32' }));
        opt.zeroGrad();
        loss.backward();
        optim.clipGradNorm(opt.params, 5);
        opt.step();
      });
    }
    const after = evalLoss();
    if (process.env.LISTOPS_TEST_VERBOSE) console.log({ before, after });
    expect(before).toBeGreaterThan(2.0);
    expect(after).toBeLessThan(before - 0.4);
  });
});

describe('training loop', () => {
  it('resume continues exactly where it stopped (metrics, best, result)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'listops-'));
    try {
      const valid = join(dir, 'valid.tsv');
      saveListOps(valid, generateListOps({ count: 30, seed: 77, maxTokens: 15 }));
      const cfg: ListopsTrainConfig = {
        ...DEFAULT_LISTOPS, method: 'gumbel', tau: 1, hidden: 8, embDim: 8, batchSize: 8, examples: 64, evalEvery: 32,
        trainCount: 60, trainMaxTokens: 15, validPath: valid, testPath: valid,
      };
      const full = await trainListops(cfg, { out: join(dir, 'full') });
      await trainListops({ ...cfg, examples: 32 }, { out: join(dir, 'part') });
      const resumed = await trainListops(cfg, { out: join(dir, 'part'), resume: true });
      const strip = (p: string) => readFileSync(p, 'utf8').trim().split('\n').map((l) => { const o = JSON.parse(l); delete o.seconds; delete o.eval_seconds; return o; });
      expect(strip(join(dir, 'part', 'metrics.jsonl'))).toEqual(strip(join(dir, 'full', 'metrics.jsonl')));
      expect(resumed.result).toEqual(full.result);
      const last = JSON.parse(readFileSync(join(dir, 'part', 'result.jsonl'), 'utf8').trim().split('\n').pop()!);
      expect(last.best_valid_acc).toBeGreaterThanOrEqual(0);
      expect(last.best_valid_acc).toBeLessThanOrEqual(1);
      expect(last.test_acc).toBeGreaterThanOrEqual(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------- the CPU fast paths (tree.ts, leaf.ts)
describe('node/pair tree path and fused leaf LSTM', () => {
  /** max |a - b| within tol * (max |ref| over the tensor) + 1e-7 */
  const expectClose = (got: number[], ref: number[], tol: number, what: string) => {
    expect(got.length, what).toBe(ref.length);
    let scale = 0;
    for (const v of ref) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < ref.length; i++) {
      if (!(Math.abs(got[i] - ref[i]) <= tol * scale + 1e-7)) throw new Error(`${what}[${i}]: ${got[i]} vs ${ref[i]} (scale ${scale})`);
    }
  };

  /** a parameter's gradient, zeros where it got none (e.g. the composition when nothing is merged) */
  const gradOrZeros = (p: Tensor) => (p.grad ? arr(p.grad) : new Array<number>(p.size).fill(0));

  /** sequences of the given lengths over tokens 1..vocab-1 (random), as a padded batch */
  const seqs = (lengths: number[], vocab: number, seed: number) => {
    const r = random.permutation(random.key(seed), 1000);
    let c = 0;
    return lengths.map((L) => Int32Array.from({ length: L }, () => 1 + (r[c++ % 1000] % (vocab - 1))));
  };

  const run = (model: GumbelTreeLstm, fused: boolean, batch: ReturnType<typeof makeBatch>, method: string, key: number, w: Tensor, labels: Int32Array) => {
    model.fused = fused;
    return tidy(() => {
      const { logits, root, choices } = model.forward(batch, { select: 'sample', method, tau: 0.7, k: 5, key: random.key(key), recordChoices: true });
      const loss = ops.add(ops.crossEntropy(logits, tensor(labels, [labels.length], { dtype: 'int32' })), ops.sum(ops.mul(root, w)));
      loss.backward();
      const grads = model.parameters().map(gradOrZeros);
      for (const p of model.parameters()) { p.grad?.dispose(); p.grad = null; }
      return { logits: arr(logits), root: arr(root), choices: choices!.map((c) => Array.from(c)), grads };
    });
  };

  const CASES: { H: number; lengths: number[] }[] = [
    { H: 3, lengths: [7, 1, 4, 7, 2, 5, 3] }, // odd sizes, finished rows at different steps, a one-token row
    { H: 5, lengths: [9, 9, 9] }, // no padding
    { H: 4, lengths: [1] }, // one token: no merge at all
    { H: 6, lengths: [2, 1] }, // one merge step (m = 1, no choice)
    { H: 8, lengths: [13, 6, 11, 12, 2] },
  ];
  for (const method of estimators.list().filter((m) => m.builtin && m.fused).map((m) => m.examples[m.examples.length > 1 ? 1 : 0])) {
    CASES.forEach(({ H, lengths }, ci) => {
      it(`training forward/backward equals the slot formulation (${method}, H=${H}, lengths ${lengths})`, () => {
        const model = new GumbelTreeLstm({ vocabSize: 11, embDim: H + 1, hidden: H, clfHidden: 5, classes: 10, dropout: 0 }, { key: random.key(40 + ci) });
        const batch = makeBatch(seqs(lengths, 11, ci));
        const w = random.normal(random.key(50 + ci), [lengths.length, H]);
        const labels = Int32Array.from(lengths, (L) => L % 10);
        const ref = run(model, false, batch, method, 60 + ci, w, labels);
        const got = run(model, true, batch, method, 60 + ci, w, labels);
        expect(got.choices).toEqual(ref.choices);
        expectClose(got.logits, ref.logits, 1e-5, 'logits');
        expectClose(got.root, ref.root, 1e-5, 'root');
        const names = model.parameters().map((_, i) => `grad ${i}`);
        ref.grads.forEach((g, i) => expectClose(got.grads[i], g, 2e-4, names[i]));
        // the parser really gets a gradient (query), and finite everywhere
        for (const g of got.grads) expect(g.every(Number.isFinite)).toBe(true);
        if (Math.max(...lengths) > 2) expect(got.grads[7].some((v) => v !== 0)).toBe(true);
      });
    });
  }

  it('the per-step slot kernels (tree = false) agree as well', () => {
    const H = 5, lengths = [8, 3, 1, 8, 6];
    const model = new GumbelTreeLstm({ vocabSize: 11, embDim: 4, hidden: H, clfHidden: 5, classes: 10, dropout: 0 }, { key: random.key(12) });
    const batch = makeBatch(seqs(lengths, 11, 12));
    const w = random.normal(random.key(13), [lengths.length, H]);
    const labels = Int32Array.from(lengths, (L) => L % 10);
    const ref = run(model, false, batch, 'gst-1.0', 14, w, labels);
    const tree = run(model, true, batch, 'gst-1.0', 14, w, labels);
    model.tree = false;
    const slots = run(model, true, batch, 'gst-1.0', 14, w, labels);
    model.tree = true;
    for (const got of [tree, slots]) {
      expect(got.choices).toEqual(ref.choices);
      expectClose(got.logits, ref.logits, 1e-5, 'logits');
      ref.grads.forEach((g, i) => expectClose(got.grads[i], g, 2e-4, `grad ${i}`));
    }
  });

  it('evaluation (argmax) picks the same pairs and gives the same logits as the slot formulation', () => {
    const model = new GumbelTreeLstm({ vocabSize: 13, embDim: 7, hidden: 7, clfHidden: 5, classes: 10, dropout: 0.3 }, { key: random.key(3) });
    model.eval();
    const lengths = [25, 3, 18, 1, 25, 9, 14, 2, 21];
    const batch = makeBatch(seqs(lengths, 13, 7));
    const out = [false, true].map((fused) => {
      model.fused = fused;
      return noGrad(() => {
        const r = model.forward(batch, { select: 'argmax', recordChoices: true });
        return { logits: arr(r.logits), choices: r.choices!.map((c) => Array.from(c)) };
      });
    });
    expect(out[1].choices).toEqual(out[0].choices);
    expectClose(out[1].logits, out[0].logits, 1e-5, 'logits');
  });

  it('gradients through an argmax forward (no gradient to the parser) match too', () => {
    const H = 5;
    const model = new GumbelTreeLstm({ vocabSize: 9, embDim: 4, hidden: H, clfHidden: 3, classes: 10, dropout: 0 }, { key: random.key(8) });
    const lengths = [6, 2, 5, 1, 6];
    const batch = makeBatch(seqs(lengths, 9, 3));
    const w = random.normal(random.key(9), [lengths.length, H]);
    const out = [false, true].map((fused) => {
      model.fused = fused;
      return tidy(() => {
        const { root } = model.forward(batch, { select: 'argmax' });
        ops.sum(ops.mul(root, w)).backward();
        const g = model.parameters().map(gradOrZeros);
        for (const p of model.parameters()) { p.grad?.dispose(); p.grad = null; }
        return g;
      });
    });
    out[0].forEach((g, i) => expectClose(out[1][i], g, 2e-4, `grad ${i}`));
  });

  it('the fused leaf LSTM equals the op composition (values and gradients)', () => {
    for (const [H, E, lengths] of [[5, 3, [4, 1, 3]], [4, 6, [1, 1]], [9, 2, [11, 7, 2, 11, 5]]] as [number, number, number[]][]) {
      const model = new GumbelTreeLstm({ vocabSize: 8, embDim: E, hidden: H, clfHidden: 3, classes: 10, dropout: 0 }, { key: random.key(H) });
      const batch = makeBatch(seqs(lengths, 8, H));
      const w = random.normal(random.key(100 + H), [batch.B, batch.T, 2 * H]);
      const params = [model.embedding.weight, model.leaf.weight_ih, model.leaf.weight_hh, model.leaf.bias_ih, model.leaf.bias_hh];
      const out = [false, true].map((fused) => {
        model.fused = fused;
        return tidy(() => {
          const S = model.leaves(batch);
          ops.sum(ops.mul(S, w)).backward();
          const g = params.map(gradOrZeros);
          for (const p of model.parameters()) { p.grad?.dispose(); p.grad = null; }
          return { S: arr(S), g };
        });
      });
      expectClose(out[1].S, out[0].S, 1e-5, 'S');
      out[0].g.forEach((g, i) => expectClose(out[1].g[i], g, 1e-4, `leaf grad ${i}`));
    }
  });

  it('the tree path is deterministic (same key, same values and gradients)', () => {
    const model = new GumbelTreeLstm({ vocabSize: 11, embDim: 6, hidden: 6, clfHidden: 5, classes: 10, dropout: 0.2 }, { key: random.key(5) });
    const lengths = [8, 3, 8, 5];
    const batch = makeBatch(seqs(lengths, 11, 2));
    const w = random.normal(random.key(6), [lengths.length, 6]);
    const labels = Int32Array.from([1, 2, 3, 4]);
    const a = run(model, true, batch, 'gst-1.0', 9, w, labels), b = run(model, true, batch, 'gst-1.0', 9, w, labels);
    expect(b).toEqual(a);
  });
});

// Gumbel Tree-LSTM (Choi, Yoo & Lee, AAAI 2018) for ListOps, as the paper's reference code uses it:
// embeddings -> a left-to-right leaf LSTM (leaves are its (h, c) states) -> repeated merging of one
// adjacent pair, chosen among ALL adjacent pairs by a learned query, until one node is left -> MLP.
//
// Each merge step composes every adjacent pair of every row with one linear layer, scores the
// candidates q . h / sqrt(H), picks one pair per row (training: a discrete estimator with its
// gradient; evaluation: argmax), and rebuilds the slot list with the soft-mask formula
//   new_k = y_k cand_k + (1 - C_k) left_k + (C_k - y_k) right_k,   C = cumsum(y),
// which is exactly the discrete merge for a one-hot y and carries the parser's gradient through y.
// State layout: one tensor S (B, n, 2H) holding [h | c] per slot, so the merge is applied once.
import { Tensor, tensor, noGrad, keep, type Device } from '../../engine/tensor.ts';
import * as ops from '../../engine/ops.ts';
import * as nn from '../../engine/nn.ts';
import * as random from '../../engine/random.ts';
import { sample } from '../../estimators/index.ts';
import * as fastmath from './fastmath.ts';
import { treeLoop, cellBackward } from './tree.ts';
import { leafLstmFused } from './leaf.ts';

// local bindings: the hot loops call these directly (no module-binding indirection)
const sig = fastmath.sig, ftanh = fastmath.ftanh;

export interface TreeLstmConfig {
  vocabSize: number;
  embDim: number;
  hidden: number; // H
  clfHidden: number; // width of the classifier's hidden layer
  classes: number; // 10 for ListOps
  dropout: number; // before and after the classifier's hidden layer
}

/** A padded batch, time-major: ids[t * B + b] is token t of row b (0 = pad beyond the row's length). */
export interface TokenBatch {
  ids: Int32Array;
  lengths: Int32Array;
  B: number;
  T: number;
}

export function makeBatch(seqs: readonly ArrayLike<number>[]): TokenBatch {
  const B = seqs.length;
  if (B === 0) throw new Error('makeBatch: empty batch');
  let T = 0;
  for (const s of seqs) {
    if (s.length === 0) throw new Error('makeBatch: empty token sequence');
    T = Math.max(T, s.length);
  }
  const ids = new Int32Array(T * B);
  const lengths = new Int32Array(B);
  seqs.forEach((s, b) => {
    lengths[b] = s.length;
    for (let t = 0; t < s.length; t++) ids[t * B + b] = s[t];
  });
  return { ids, lengths, B, T };
}

export interface ForwardOptions {
  /** 'sample': each merge drawn with the estimator (training); 'argmax': best-scoring pair (evaluation). */
  select: 'sample' | 'argmax';
  method?: string;
  tau?: number;
  /** the training step (for methods that anneal) */
  trainStep?: number;
  /** rao_gumbel's number of conditional draws */
  k?: number;
  /** keys the merge draws (foldIn(key, step)) and dropout; required for 'sample' */
  key?: random.Key;
  /** also return the chosen pair index of every row at every merge step (host arrays) */
  recordChoices?: boolean;
}

export interface ForwardResult {
  logits: Tensor; // (B, classes)
  root: Tensor; // (B, H)
  /** choices[step][b]: index of the merged pair (-1 where the row was already finished) */
  choices?: Int32Array[];
}

/**
 * The soft-mask merge. left/right (B, m, D) are slots[:, :-1] and slots[:, 1:], cand (B, m, D) the
 * composed pairs, y (B, m) the selection (one-hot forward). Rows with done[b] = 1 keep left (their last,
 * padding slot is dropped). Returns (B, m, D).
 */
export function mergeSlots(left: Tensor, right: Tensor, cand: Tensor, y: Tensor, done?: Tensor | null): Tensor {
  const [B, m] = y.shape;
  const C = ops.cumsum(y, -1);
  const y3 = ops.reshape(y, [B, m, 1]);
  const keepL = ops.reshape(ops.rsub(1, C), [B, m, 1]); // 1 - C_k
  const takeR = ops.reshape(ops.sub(C, y), [B, m, 1]); // C_k - y_k
  const merged = ops.add(ops.add(ops.mul(y3, cand), ops.mul(keepL, left)), ops.mul(takeR, right));
  return done ? ops.where(ops.reshape(done, [B, 1, 1]), left, merged) : merged;
}

/** mergeSlots on a slot tensor S (B, n, D): left = S[:, :-1], right = S[:, 1:]. */
export function mergeSlotTensor(S: Tensor, cand: Tensor, y: Tensor, done?: Tensor | null): Tensor {
  const n = S.shape[1];
  return mergeSlots(ops.narrow(S, 1, 0, n - 1), ops.narrow(S, 1, 1, n - 1), cand, y, done);
}

// ---------------------------------------------------------------- fused CPU kernels
// The same math as composePairsOps / mergeSlots, in one loop each (with hand-written VJPs), for
// backends that read synchronously. The op-composed versions remain the reference (and the path for
// other devices); test/listops_model.test.ts checks values and gradients agree.

function f32(t: Tensor): Float32Array {
  const d = t.backend.readSync!(t.buf);
  if (!(d instanceof Float32Array)) throw new Error(`listops fused kernel: expected float32, got ${t.dtype}`);
  return d;
}

/** [h_k ; h_{k+1}] for every adjacent pair of S (B, n, 2H) [h | c]: (B, n-1, 2H), the composition's input. */
export function pairInputsFused(S: Tensor): Tensor {
  const [B, n, H2] = S.shape;
  const H = H2 / 2, m = n - 1;
  const op = ops.customVjp<null>({
    name: 'pairInputs',
    forward: ([sT]) => {
      const X = f32(sT);
      const out = new Float32Array(B * m * H2);
      for (let b = 0; b < B; b++) {
        for (let k = 0; k < m; k++) {
          const o = (b * m + k) * H2, l = (b * n + k) * H2;
          out.set(X.subarray(l, l + H), o);
          out.set(X.subarray(l + H2, l + H2 + H), o + H);
        }
      }
      return { outputs: [tensor(out, [B, m, H2], { device: sT.device })], residuals: null };
    },
    backward: (_r, [g]) => {
      if (!g) return [null];
      const G = f32(g);
      const dS = new Float32Array(B * n * H2);
      for (let b = 0; b < B; b++) {
        for (let k = 0; k < m; k++) {
          const o = (b * m + k) * H2, l = (b * n + k) * H2;
          for (let j = 0; j < H; j++) {
            dS[l + j] += G[o + j];
            dS[l + H2 + j] += G[o + H + j];
          }
        }
      }
      return [tensor(dS, [B, n, H2], { device: g.device })];
    },
  });
  return op(S)[0];
}

/**
 * Tree-LSTM cell for every adjacent pair of S (B, n, 2H) [h | c], from the pre-activations
 * z (B, n-1, 5H) [i, f_l, f_r, u, o] (forget shift included): candidates [h | c] (B, n-1, 2H).
 */
export function treeCellFused(z: Tensor, S: Tensor): Tensor {
  const [B, m, H5] = z.shape;
  const H = H5 / 5, n = m + 1, H2 = 2 * H;
  const N = B * m;
  const op = ops.customVjp<Float32Array>({
    name: 'treeCell',
    forward: ([zT, sT]) => {
      const Z = f32(zT), X = f32(sT);
      const out = new Float32Array(N * H2);
      const res = new Float32Array(N * H * 6); // i, fl, fr, u, o, tanh(c)
      for (let b = 0; b < B; b++) {
        for (let k = 0; k < m; k++) {
          const r = b * m + k;
          const zo = r * 5 * H, so = r * H2, ro = r * 6 * H, lo = (b * n + k) * H2 + H, rc = lo + H2;
          for (let j = 0; j < H; j++) {
            const i = sig(Z[zo + j]), fl = sig(Z[zo + H + j]), fr = sig(Z[zo + 2 * H + j]);
            const u = ftanh(Z[zo + 3 * H + j]), o = sig(Z[zo + 4 * H + j]);
            const c = fl * X[lo + j] + fr * X[rc + j] + i * u;
            const tc = ftanh(c);
            out[so + j] = o * tc;
            out[so + H + j] = c;
            res[ro + j] = i; res[ro + H + j] = fl; res[ro + 2 * H + j] = fr;
            res[ro + 3 * H + j] = u; res[ro + 4 * H + j] = o; res[ro + 5 * H + j] = tc;
          }
        }
      }
      return { outputs: [tensor(out, [B, m, H2], { device: zT.device })], residuals: res };
    },
    backward: (res, [g], [, sT]) => {
      if (!g) return [null, null];
      const G = f32(g), X = f32(sT);
      const dz = new Float32Array(N * 5 * H), dS = new Float32Array(B * n * H2);
      const dcRow = new Float64Array(H);
      for (let b = 0; b < B; b++) {
        for (let k = 0; k < m; k++) {
          const r = b * m + k;
          const zo = r * 5 * H, so = r * H2, ro = r * 6 * H, lo = (b * n + k) * H2 + H, rc = lo + H2;
          cellBackward(H, res, ro, G, so, X, lo, rc, dz, zo, dcRow, 0);
          for (let j = 0; j < H; j++) {
            dS[lo + j] += dcRow[j] * res[ro + H + j];
            dS[rc + j] += dcRow[j] * res[ro + 2 * H + j];
          }
        }
      }
      const dev = g.device;
      return [tensor(dz, [B, m, 5 * H], { device: dev }), tensor(dS, [B, n, H2], { device: dev })];
    },
  });
  return op(z, S)[0];
}

/**
 * mergeSlots in one loop on S (B, n, D) (left = S[:, :-1], right = S[:, 1:]): the same values and
 * gradients, through y and C = cumsum(y). done is a host 0/1 array (rows that keep left).
 */
export function mergeSlotsFused(S: Tensor, cand: Tensor, y: Tensor, done: Float32Array | null): Tensor {
  const [B, m, D] = cand.shape;
  const n = m + 1;
  const op = ops.customVjp<null>({
    name: 'mergeSlots',
    forward: ([sT, cT, yT]) => {
      const X = f32(sT), Cd = f32(cT), Y = f32(yT);
      const out = new Float32Array(B * m * D);
      for (let b = 0; b < B; b++) {
        if (done && done[b]) {
          out.set(X.subarray(b * n * D, (b * n + m) * D), b * m * D);
          continue;
        }
        let C = 0;
        for (let k = 0; k < m; k++) {
          const yk = Y[b * m + k];
          C += yk;
          const a = 1 - C, r = C - yk, o = (b * m + k) * D, lo = (b * n + k) * D, ro = lo + D;
          for (let d = 0; d < D; d++) out[o + d] = yk * Cd[o + d] + a * X[lo + d] + r * X[ro + d];
        }
      }
      return { outputs: [tensor(out, [B, m, D], { device: sT.device })], residuals: null };
    },
    backward: (_r, [g], [sT, cT, yT]) => {
      if (!g) return [null, null, null];
      const G = f32(g), X = f32(sT), Cd = f32(cT), Y = f32(yT);
      const dS = new Float32Array(B * n * D), dc = new Float32Array(B * m * D), dy = new Float32Array(B * m);
      const dC = new Float64Array(m);
      for (let b = 0; b < B; b++) {
        if (done && done[b]) {
          dS.set(G.subarray(b * m * D, (b + 1) * m * D), b * n * D);
          continue;
        }
        let C = 0;
        for (let k = 0; k < m; k++) {
          const yk = Y[b * m + k];
          C += yk;
          const a = 1 - C, r = C - yk, o = (b * m + k) * D, lo = (b * n + k) * D, ro = lo + D;
          let sy = 0, sc = 0;
          for (let d = 0; d < D; d++) {
            const gd = G[o + d], L = X[lo + d], R = X[ro + d];
            dc[o + d] = yk * gd;
            dS[lo + d] += a * gd;
            dS[ro + d] += r * gd;
            sy += gd * (Cd[o + d] - R);
            sc += gd * (R - L);
          }
          dy[b * m + k] = sy;
          dC[k] = sc;
        }
        // y_j enters C_k for every k >= j: add the reverse cumulative sum of dC
        let acc = 0;
        for (let k = m - 1; k >= 0; k--) {
          acc += dC[k];
          dy[b * m + k] += acc;
        }
      }
      const dev = g.device;
      return [tensor(dS, [B, n, D], { device: dev }), tensor(dc, [B, m, D], { device: dev }), tensor(dy, [B, m], { device: dev })];
    },
  });
  return op(S, cand, y)[0];
}

/**
 * The parameters' names and shapes for a configuration, in the model's parameter order, without building it:
 * checkpoints are compared with these before anything is allocated (test/checkpoint_untrusted.test.ts keeps
 * them equal to a built model's).
 */
export function treeLstmParameterShapes(cfg: TreeLstmConfig): [string, number[]][] {
  const { vocabSize: V, embDim: E, hidden: H, clfHidden: C, classes: K } = cfg;
  return [
    ['embedding.weight', [V, E]],
    ['leaf.weight_ih', [4 * H, E]], ['leaf.weight_hh', [4 * H, H]], ['leaf.bias_ih', [4 * H]], ['leaf.bias_hh', [4 * H]],
    ['comp.weight', [5 * H, 2 * H]], ['comp.bias', [5 * H]],
    ['query', [H]],
    ['clf1.weight', [C, H]], ['clf1.bias', [C]],
    ['clf2.weight', [K, C]], ['clf2.bias', [K]],
  ];
}

export class GumbelTreeLstm extends nn.Module {
  embedding: nn.Embedding;
  leaf: nn.LSTMCell;
  comp: nn.Linear; // [h_l; h_r] (2H) -> [i, f_l, f_r, u, o] (5H)
  query: Tensor; // (H)
  clf1: nn.Linear;
  clf2: nn.Linear;
  drop: nn.Dropout;
  /** +1 on the f_l and f_r chunks of the composition pre-activations (not a parameter) */
  private forgetShift: Tensor;

  constructor(readonly cfg: TreeLstmConfig, opts: { key: random.Key; device?: Device }) {
    super();
    const { vocabSize, embDim, hidden: H, clfHidden, classes, dropout } = cfg;
    for (const [n, v] of Object.entries({ vocabSize, embDim, hidden: H, clfHidden, classes })) {
      if (!Number.isInteger(v) || v <= 0) throw new Error(`GumbelTreeLstm: ${n} must be a positive integer, got ${v}`);
    }
    const ks = random.split(opts.key, 6);
    const o = (i: number) => ({ key: ks[i], device: opts.device });
    this.embedding = new nn.Embedding(vocabSize, embDim, o(0));
    this.leaf = new nn.LSTMCell(embDim, H, o(1));
    // forget-gate bias initialised to (PyTorch default) + 1: add 1 to the f slice of bias_ih
    noGrad(() => {
      const add = new Float32Array(4 * H);
      add.fill(1, H, 2 * H);
      const b = ops.add(this.leaf.bias_ih, tensor(add, [4 * H], { device: opts.device }));
      this.leaf.bias_ih.assign(b);
      b.dispose();
    });
    this.comp = new nn.Linear(2 * H, 5 * H, o(2));
    this.query = random.normal(ks[3], [H], { std: 0.01, device: opts.device }).requireGrad();
    this.clf1 = new nn.Linear(H, clfHidden, o(4));
    this.clf2 = new nn.Linear(clfHidden, classes, o(5));
    this.drop = new nn.Dropout(dropout);
    const shift = new Float32Array(5 * H);
    shift.fill(1, H, 3 * H);
    this.forgetShift = keep(tensor(shift, [5 * H], { device: opts.device }));
  }

  get hidden(): number {
    return this.cfg.hidden;
  }

  /** Leaf LSTM over the tokens, left to right: (h, c) of every position as S (B, T, 2H). */
  leaves(batch: TokenBatch): Tensor {
    const { B, T } = batch;
    const H = this.cfg.hidden;
    const ids = tensor(batch.ids, [T, B], { dtype: 'int32', device: this.query.device });
    const emb = this.embedding.forward(ids); // (T, B, E)
    // input projections of all steps at once, both biases folded in
    const xp = ops.add(ops.linear(emb, this.leaf.weight_ih), ops.add(this.leaf.bias_ih, this.leaf.bias_hh)); // (T, B, 4H)
    if (this.useFused(xp)) return leafLstmFused(xp, this.leaf.weight_hh);
    const hs: Tensor[] = [];
    const cs: Tensor[] = [];
    let h: Tensor | null = null, c: Tensor | null = null;
    for (let t = 0; t < T; t++) {
      const xt = ops.reshape(ops.narrow(xp, 0, t, 1), [B, 4 * H]);
      const z = h ? ops.add(xt, ops.linear(h, this.leaf.weight_hh)) : xt;
      const s = ops.sigmoid(z);
      const i = ops.narrow(s, 1, 0, H), f = ops.narrow(s, 1, H, H), o = ops.narrow(s, 1, 3 * H, H);
      const g = ops.tanh(ops.narrow(z, 1, 2 * H, H));
      c = c ? ops.add(ops.mul(f, c), ops.mul(i, g)) : ops.mul(i, g);
      h = ops.mul(o, ops.tanh(c));
      hs.push(h);
      cs.push(c);
    }
    // right padding: positions < length never see a pad token, so no masking is needed here
    return ops.concat([ops.stack(hs, 1), ops.stack(cs, 1)], -1);
  }

  /**
   * Use the fused CPU kernels (default: where the device reads synchronously): the one-op leaf LSTM
   * (leaf.ts) and the node/pair merge loop (tree.ts), or with tree = false the per-step slot kernels
   * (pairInputsFused, treeCellFused, mergeSlotsFused). All paths give the same values and gradients.
   */
  fused: boolean | null = null;
  tree = true;

  private useFused(t: Tensor): boolean {
    return this.fused ?? Boolean(t.backend.hostGemm);
  }

  /**
   * Compose every adjacent pair of S (B, n, 2H) [h | c] -> candidates (B, n-1, 2H) as [h | c].
   * bias is comp.bias + forgetShift (passed in so it is formed once per forward).
   */
  composePairs(S: Tensor, bias: Tensor): Tensor {
    const H = this.cfg.hidden;
    const m = S.shape[1] - 1;
    if (this.useFused(S)) {
      const z = ops.linear(pairInputsFused(S), this.comp.weight, bias);
      return treeCellFused(z, S);
    }
    const left = ops.narrow(S, 1, 0, m), right = ops.narrow(S, 1, 1, m);
    const hl = ops.narrow(left, -1, 0, H), hr = ops.narrow(right, -1, 0, H);
    const cl = ops.narrow(left, -1, H, H), cr = ops.narrow(right, -1, H, H);
    const z = ops.linear(ops.concat([hl, hr], -1), this.comp.weight, bias); // (B, m, 5H), f chunks shifted by +1
    const s = ops.sigmoid(z);
    const i = ops.narrow(s, -1, 0, H), fl = ops.narrow(s, -1, H, H), fr = ops.narrow(s, -1, 2 * H, H), o = ops.narrow(s, -1, 4 * H, H);
    const u = ops.tanh(ops.narrow(z, -1, 3 * H, H));
    const c = ops.add(ops.add(ops.mul(fl, cl), ops.mul(fr, cr)), ops.mul(i, u));
    const h = ops.mul(o, ops.tanh(c));
    return ops.concat([h, c], -1);
  }

  forward(batch: TokenBatch, opts: ForwardOptions): ForwardResult {
    const { B, T, lengths } = batch;
    const H = this.cfg.hidden;
    if (opts.select === 'sample' && (!opts.method || !opts.key)) throw new Error("GumbelTreeLstm.forward: select 'sample' needs method and key");
    const bias = ops.add(this.comp.bias!, this.forgetShift);
    const dev = { device: this.query.device };
    const fused = this.useFused(this.query);
    let S = this.leaves(batch);
    let choices: Int32Array[] | undefined = opts.recordChoices ? [] : undefined;
    if (fused && this.tree) {
      // the node/pair formulation (tree.ts): each adjacent pair composed once, same values and gradients
      const masks = (step: number, m: number) => {
        const maskA = new Float32Array(B * m);
        for (let b = 0; b < B; b++) {
          const cur = Math.max(lengths[b] - step, 1);
          if (cur <= 1) maskA[b * m] = 1;
          else maskA.fill(1, b * m, b * m + cur - 1);
        }
        return maskA;
      };
      const out = treeLoop({
        S0: S, W: this.comp.weight, bias, qs: ops.mul(this.query, 1 / Math.sqrt(H)), lengths,
        select: (step, m, scores, hostScores) => {
          if (m === 1) return new Int32Array(B); // one candidate: nothing to choose
          const maskA = masks(step, m);
          if (opts.select === 'sample') {
            const mask = tensor(maskA, [B, m], dev);
            return sample(scores(), { method: opts.method!, tau: opts.tau ?? 1, step: opts.trainStep, key: random.foldIn(opts.key!, step), mask, k: opts.k, check: false });
          }
          const sc = hostScores();
          const idx = new Int32Array(B);
          for (let b = 0; b < B; b++) {
            let best = 0, mv = maskA[b * m] !== 0 ? sc[b * m] : -Infinity;
            for (let k = 1; k < m; k++) {
              const v = maskA[b * m + k] !== 0 ? sc[b * m + k] : -Infinity;
              if (v > mv) { mv = v; best = k; }
            }
            idx[b] = best;
          }
          return idx;
        },
      });
      if (choices) choices = out.choices;
      return this.classify(out.root, opts, choices);
    }
    // score = q . h / sqrt(H), read off [h | c] with a zero-padded query row
    const qs = ops.concat([ops.reshape(ops.mul(this.query, 1 / Math.sqrt(H)), [1, H]), tensor(new Float32Array(H), [1, H], { device: this.query.device })], -1);
    for (let step = 0; step < T - 1; step++) {
      const n = T - step; // slots now; n - 1 candidate pairs
      const m = n - 1;
      const cand = this.composePairs(S, bias);
      // host masks: row b has cur = max(len - step, 1) live slots; pair k is valid iff k < cur - 1
      const maskA = new Float32Array(B * m);
      const doneA = new Float32Array(B);
      let anyDone = false;
      for (let b = 0; b < B; b++) {
        const cur = Math.max(lengths[b] - step, 1);
        if (cur <= 1) {
          doneA[b] = 1;
          anyDone = true;
          maskA[b * m] = 1; // keep one category allowed; the done select discards this row's merge
        } else {
          maskA.fill(1, b * m, b * m + cur - 1);
        }
      }
      let y: Tensor;
      if (m === 1) {
        y = tensor(new Float32Array(B).fill(1), [B, 1], dev); // one candidate: nothing to choose
        if (choices) choices.push(Int32Array.from(doneA, (d) => (d ? -1 : 0)));
      } else {
        const scores = ops.reshape(ops.linear(cand, qs), [B, m]);
        const mask = tensor(maskA, [B, m], dev);
        if (opts.select === 'sample') {
          y = sample(scores, { method: opts.method!, tau: opts.tau ?? 1, step: opts.trainStep, key: random.foldIn(opts.key!, step), mask, k: opts.k, check: false });
        } else {
          y = noGrad(() => ops.oneHot(ops.argmax(ops.where(mask, scores, -Infinity), -1), m));
        }
        if (choices) {
          const idx = noGrad(() => ops.argmax(y, -1)).dataSync();
          choices.push(Int32Array.from(idx, (v, b) => (doneA[b] ? -1 : v)));
        }
      }
      S = fused ? mergeSlotsFused(S, cand, y, anyDone ? doneA : null) : mergeSlotTensor(S, cand, y, anyDone ? tensor(doneA, [B], dev) : null);
    }
    const root = ops.reshape(ops.narrow(S, -1, 0, H), [B, H]);
    return this.classify(root, opts, choices);
  }

  private classify(root: Tensor, opts: ForwardOptions, choices: Int32Array[] | undefined): ForwardResult {
    const dk = opts.key ? random.split(random.foldIn(opts.key, 0x7fffffff), 2) : [undefined, undefined];
    let x = this.drop.forward(root, dk[0]);
    x = ops.relu(this.clf1.forward(x));
    x = this.drop.forward(x, dk[1]);
    const logits = this.clf2.forward(x);
    return { logits, root, choices };
  }
}

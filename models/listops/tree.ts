// The merge loop of the Gumbel Tree-LSTM on nodes and pairs instead of slot tensors (CPU fast path).
//
// The slot-tensor formulation (model.ts: composePairs + mergeSlots per step) recomposes every adjacent
// pair at every step: O(T^2) Tree-LSTM cells per row, forward and backward. With a one-hot y the merge
// only moves values: the slots after a step are the same nodes as before except that the chosen pair is
// replaced by its composition. So every adjacent pair (a, b) of nodes is composed once, when it first
// becomes adjacent, and reused (its candidate, score, and Tree-LSTM residuals) while it stays adjacent:
// O(T) cells per row.
//
// The backward computes the same gradient as the slot formulation (up to float rounding):
//  - the merge routes slot cotangents with 0/1 coefficients, so the cotangent of a slot is the cotangent
//    of the node in it, accumulated over the steps the node lives (G below);
//  - the composition of pair P at step t gets the cotangent s_{P,t} (q / sqrt(H), 0) from its score
//    (s = the score's cotangent) plus, at the step P is chosen, the cotangent of the new node. Its VJP
//    is linear in that cotangent and the same at every step P is alive, so J_P^T (q / sqrt(H), 0) is
//    formed once per pair (U) and the weight/bias gradients once per pair from the summed cotangent;
//  - y's cotangent at step t is the slot formula's (mergeSlotsFused's backward) evaluated with the node
//    cotangents accumulated from the steps after t, which the tape's reverse topological order provides:
//    every op of step t' > t depends on step t's merge, so it runs its backward first.
// The tape sees cheap ops per step: scores (B, m) from a state token, the estimator on them, and the merge
// (token, y) -> token; the real state lives in a TreeCtx shared by their closures.
import { Tensor, tensor, isGradEnabled } from '../../engine/tensor.ts';
import * as ops from '../../engine/ops.ts';
import type { Backend, PackedOperand } from '../../engine/backend.ts';
import { gemmPackedF32, packF32, f32 } from './leaf.ts';
import * as fastmath from './fastmath.ts';

type Out = Float32Array | Float64Array;

/**
 * Backward of the Tree-LSTM cell for one pair. res[ro..ro+6H) holds i, f_l, f_r, u, o, tanh(c);
 * G[go..go+2H) the cotangent of [h | c]; X[lo..lo+H) and X[rc..rc+H) the children's cells.
 * Writes the pre-activation cotangent to dz[zo..zo+5H) and the cotangent of c to dc[dco..dco+H)
 * (the children's cells receive dc * f_l and dc * f_r).
 */
export function cellBackward(
  H: number, res: ArrayLike<number>, ro: number, G: ArrayLike<number>, go: number, X: ArrayLike<number>, lo: number, rc: number,
  dz: Out, zo: number, dc: Out, dco: number,
): void {
  for (let d = 0; d < H; d++) {
    const i = res[ro + d], fl = res[ro + H + d], fr = res[ro + 2 * H + d];
    const u = res[ro + 3 * H + d], o = res[ro + 4 * H + d], tc = res[ro + 5 * H + d];
    const gh = G[go + d];
    const c = gh * o * (1 - tc * tc) + G[go + H + d];
    dz[zo + d] = c * u * i * (1 - i);
    dz[zo + H + d] = c * X[lo + d] * fl * (1 - fl);
    dz[zo + 2 * H + d] = c * X[rc + d] * fr * (1 - fr);
    dz[zo + 3 * H + d] = c * i * (1 - u * u);
    dz[zo + 4 * H + d] = gh * tc * o * (1 - o);
    dc[dco + d] = c;
  }
}
// local bindings: the hot loops call these directly (no module-binding indirection)
const sig = fastmath.sig, ftanh = fastmath.ftanh;

/**
 * The working arrays of the tree passes, kept from one pass to the next (a training step's pass allocated and
 * zero-filled ~60 MB at hidden 300 and then left it to the garbage collector). Arrays only grow; each pass takes
 * the spare set (or a new one while another pass holds it) and gives it back when it is over.
 */
export class TreePool {
  private static spare: TreePool | null = null;
  private readonly arrays = new Map<string, Float32Array | Float64Array | Int32Array | Uint8Array>();
  static take(): TreePool {
    const p = TreePool.spare ?? new TreePool();
    TreePool.spare = null;
    return p;
  }
  static give(p: TreePool): void {
    TreePool.spare = p;
  }
  /** Drop the spare arrays (their memory goes back to the garbage collector). */
  static clear(): void {
    TreePool.spare = null;
  }
  private get<A extends Float32Array | Float64Array | Int32Array | Uint8Array>(name: string, n: number, make: (n: number) => A): A {
    let a = this.arrays.get(name) as A | undefined;
    if (!a || a.length < n) {
      // a quarter to spare, so that slowly growing batches do not reallocate every step
      a = make(a ? Math.max(n, Math.ceil(a.length * 1.25)) : n);
      this.arrays.set(name, a);
    }
    return a;
  }
  f32(name: string, n: number): Float32Array { return this.get(name, n, (k) => new Float32Array(k)); }
  f64(name: string, n: number): Float64Array { return this.get(name, n, (k) => new Float64Array(k)); }
  i32(name: string, n: number): Int32Array { return this.get(name, n, (k) => new Int32Array(k)); }
  u8(name: string, n: number): Uint8Array { return this.get(name, n, (k) => new Uint8Array(k)); }
}

/**
 * State of one forward pass. Nodes: leaves b*T + k (the rows of S0), then one node per merge.
 * Pairs: adjacent node pairs, composed when they first become adjacent.
 */
export class TreeCtx {
  readonly H: number;
  readonly H2: number;
  readonly H5: number;
  // the arrays below come from a TreePool (capacities of at least what this pass needs; their tails are unused)
  readonly nodes: Float32Array; // [h | c] per node
  nNodes: number;
  readonly pL: Int32Array;
  readonly pR: Int32Array;
  readonly X: Float32Array; // [h_l | h_r] per pair (the composition's input)
  readonly res: Float32Array | null; // i, f_l, f_r, u, o, tanh(c) per pair (only when a backward will run)
  readonly cand: Float32Array; // [h | c] per pair
  readonly score: Float32Array;
  /** the working arrays; null once released (the pass is over) */
  private pool: TreePool | null;
  nPairs = 0;
  /** per step: the node of every slot (B, n) and pair of every candidate (B, m); the chosen pair per row (-1: done) */
  readonly slotHist: Int32Array[] = [];
  readonly pairHist: Int32Array[] = [];
  readonly chosenHist: Int32Array[] = [];
  readonly parentHist: Int32Array[] = [];
  // backward state
  G: Float64Array | null = null; // node cotangents accumulated so far
  U: Float32Array | null = null; // J_P^T (qs, 0) per pair: [dh_l, dc_l, dh_r, dc_r]
  DZQ: Float32Array | null = null; // the pre-activation cotangent behind U
  DZP: Float32Array | null = null; // the pre-activation cotangent from the chosen pair's new node (rows with hasDZP)
  hasDZP: Uint8Array | null = null; // 1 for the pairs that were chosen (their DZP row is set), 0 elsewhere
  sAcc: Float64Array | null = null; // summed score cotangents per pair
  // The composition weight W (5H, 2H) packed by the host GEMM (HostGemm.pack) for this pass's products: as W^T for
  // the forward's compositions (X W^T), from the constructor to the end of the forward (endForward), and as W for the
  // backward's input cotangents (DZ W), from its first call to its end (release). A pass never outlives its weights:
  // the optimiser updates them after the backward, and a product against a pack whose source changed throws.
  private packFwd: PackedOperand | null = null;
  private packBwd: PackedOperand | null = null;

  constructor(
    readonly backend: Backend, readonly B: number, readonly T: number,
    readonly W: Float32Array, readonly bias: Float32Array, readonly qs: Float32Array, keepResiduals = true,
  ) {
    const H = qs.length;
    this.H = H; this.H2 = 2 * H; this.H5 = 5 * H;
    const nodeCap = B * T + B * Math.max(T - 1, 0);
    const pairCap = 3 * B * Math.max(T - 1, 0);
    const pool = this.pool = TreePool.take();
    this.nodes = pool.f32('nodes', nodeCap * 2 * H);
    this.nNodes = B * T;
    this.pL = pool.i32('pL', pairCap);
    this.pR = pool.i32('pR', pairCap);
    this.X = pool.f32('X', pairCap * 2 * H);
    this.res = keepResiduals ? pool.f32('res', pairCap * 6 * H) : null;
    this.cand = pool.f32('cand', pairCap * 2 * H);
    this.score = pool.f32('score', pairCap);
    this.packFwd = T > 1 ? packF32(backend, W, 0, 2 * H, 5 * H, true) : null;
  }

  /** The forward is over (its last composition done): gives back the forward's packed weight. */
  endForward(): void {
    this.packFwd?.release();
    this.packFwd = null;
  }

  /** Hands the working arrays back to the pool (the pass is over: the forward without a backward, or the
   *  backward done); any later use of this context throws. */
  release(): void {
    this.endForward();
    this.packBwd?.release();
    this.packBwd = null;
    if (!this.pool) return;
    TreePool.give(this.pool);
    this.pool = null;
  }

  private live(): TreePool {
    if (!this.pool) throw new Error('TreeCtx: this pass is over (its working arrays were released): run the forward again');
    return this.pool;
  }

  /** Leaves from S0 (B, T, 2H) and the pairs of adjacent leaves. */
  init(S0: Float32Array): void {
    const { B, T } = this;
    this.nodes.set(S0.subarray(0, B * T * this.H2));
    const slots = new Int32Array(B * T);
    for (let i = 0; i < B * T; i++) slots[i] = i;
    this.slotHist.push(slots);
    const m = T - 1;
    if (m < 1) return;
    const pairs = new Int32Array(B * m);
    for (let b = 0; b < B; b++) {
      for (let k = 0; k < m; k++) pairs[b * m + k] = this.newPair(b * T + k, b * T + k + 1);
    }
    this.pairHist.push(pairs);
    this.compose(0, this.nPairs);
  }

  private newPair(l: number, r: number): number {
    const p = this.nPairs++;
    this.pL[p] = l;
    this.pR[p] = r;
    return p;
  }

  /** Tree-LSTM cells of pairs [p0, p1): candidates, residuals, scores. */
  private compose(p0: number, p1: number): void {
    const N = p1 - p0;
    if (N <= 0) return;
    const { H, H2, H5, nodes, X, res, cand, score, bias, qs } = this;
    for (let p = p0; p < p1; p++) {
      const o = p * H2, l = this.pL[p] * H2, r = this.pR[p] * H2;
      for (let j = 0; j < H; j++) X[o + j] = nodes[l + j];
      for (let j = 0; j < H; j++) X[o + H + j] = nodes[r + j];
    }
    const Z = this.live().f32('Z', N * H5); // pre-activations of the new pairs
    if (!this.packFwd) throw new Error('TreeCtx: composition after the end of the forward');
    gemmPackedF32(this.backend, X, p0 * H2, this.packFwd, Z, 0, N, false);
    for (let p = p0; p < p1; p++) {
      const zo = (p - p0) * H5, so = p * H2, ro = p * 6 * H;
      const lo = this.pL[p] * H2 + H, rc = this.pR[p] * H2 + H;
      let sc = 0;
      for (let j = 0; j < H; j++) {
        const i = sig(Math.fround(Z[zo + j] + bias[j]));
        const fl = sig(Math.fround(Z[zo + H + j] + bias[H + j]));
        const fr = sig(Math.fround(Z[zo + 2 * H + j] + bias[2 * H + j]));
        const u = ftanh(Math.fround(Z[zo + 3 * H + j] + bias[3 * H + j]));
        const o = sig(Math.fround(Z[zo + 4 * H + j] + bias[4 * H + j]));
        const c = fl * nodes[lo + j] + fr * nodes[rc + j] + i * u;
        const tc = ftanh(c);
        const h = Math.fround(o * tc);
        cand[so + j] = h;
        cand[so + H + j] = c;
        sc += qs[j] * h;
        if (res) {
          res[ro + j] = i; res[ro + H + j] = fl; res[ro + 2 * H + j] = fr;
          res[ro + 3 * H + j] = u; res[ro + 4 * H + j] = o; res[ro + 5 * H + j] = tc;
        }
      }
      score[p] = sc;
    }
  }

  /** Scores of the current step's candidates (B, m). */
  scores(): Float32Array {
    const pairs = this.pairHist[this.slotHist.length - 1];
    const out = new Float32Array(pairs.length);
    for (let i = 0; i < pairs.length; i++) out[i] = this.score[pairs[i]];
    return out;
  }

  /** One merge: chosen[b] is the merged pair of row b, -1 for a finished row (drops its last slot). */
  step(chosen: Int32Array): void {
    const { B, H2 } = this;
    const t = this.slotHist.length - 1;
    const slots = this.slotHist[t], pairs = this.pairHist[t];
    const n = this.T - t, m = n - 1;
    if (m < 1) throw new Error('TreeCtx.step: nothing left to merge');
    const n2 = n - 1, m2 = m - 1;
    const slots2 = new Int32Array(B * n2), pairs2 = new Int32Array(B * m2), parents = new Int32Array(B).fill(-1);
    const p0 = this.nPairs;
    for (let b = 0; b < B; b++) {
      const j = chosen[b];
      const s = b * n, pp = b * m, s2 = b * n2, q2 = b * m2;
      if (j < 0) {
        for (let i = 0; i < n2; i++) slots2[s2 + i] = slots[s + i];
        for (let i = 0; i < m2; i++) pairs2[q2 + i] = pairs[pp + i];
        continue;
      }
      if (j >= m) throw new Error(`TreeCtx.step: chosen pair ${j} out of range for ${m} candidates`);
      const par = this.nNodes++;
      parents[b] = par;
      const P = pairs[pp + j];
      const nodes = this.nodes, cand = this.cand, po = par * H2, co = P * H2;
      for (let d = 0; d < H2; d++) nodes[po + d] = cand[co + d];
      for (let i = 0; i < j; i++) slots2[s2 + i] = slots[s + i];
      slots2[s2 + j] = par;
      for (let i = j + 1; i < n2; i++) slots2[s2 + i] = slots[s + i + 1];
      let q = q2;
      for (let i = 0; i < j - 1; i++) pairs2[q++] = pairs[pp + i];
      if (j >= 1) pairs2[q++] = this.newPair(slots[s + j - 1], par);
      if (j + 2 <= n - 1) pairs2[q++] = this.newPair(par, slots[s + j + 2]);
      for (let i = j + 2; i < m; i++) pairs2[q++] = pairs[pp + i];
    }
    this.chosenHist.push(chosen);
    this.parentHist.push(parents);
    this.slotHist.push(slots2);
    if (m2 > 0) this.pairHist.push(pairs2);
    this.compose(p0, this.nPairs);
  }

  /** h of the one node left in every row (B, H). */
  root(): Float32Array {
    const { B, H, H2 } = this;
    const slots = this.slotHist[this.slotHist.length - 1];
    const n = slots.length / B;
    const out = new Float32Array(B * H);
    for (let b = 0; b < B; b++) out.set(this.nodes.subarray(slots[b * n] * H2, slots[b * n] * H2 + H), b * H);
    return out;
  }

  // ------------------------------------------------------------ backward

  /** Allocates the cotangent state and forms U = J_P^T (qs, 0) for every pair (first backward call). */
  private ensureBackward(): void {
    if (this.G) return;
    const { H, H2, H5, nPairs: NP, X, nodes, qs } = this;
    const res = this.res;
    if (!res) throw new Error('TreeCtx: backward through a forward that kept no residuals');
    const pool = this.live();
    // accumulators start at zero; every other array is written before it is read
    this.G = pool.f64('G', this.nNodes * H2).fill(0, 0, this.nNodes * H2);
    this.sAcc = pool.f64('sAcc', NP).fill(0, 0, NP);
    this.DZP = pool.f32('DZP', NP * H5);
    this.hasDZP = pool.u8('hasDZP', NP).fill(0, 0, NP);
    const DZQ = pool.f32('DZQ', NP * H5);
    const U = pool.f32('U', NP * 4 * H);
    const DC = pool.f32('DC', NP * H);
    for (let p = 0; p < NP; p++) {
      const zo = p * H5, ro = p * 6 * H, lo = this.pL[p] * H2 + H, rc = this.pR[p] * H2 + H;
      for (let j = 0; j < H; j++) {
        const i = res[ro + j], fl = res[ro + H + j], fr = res[ro + 2 * H + j];
        const u = res[ro + 3 * H + j], o = res[ro + 4 * H + j], tc = res[ro + 5 * H + j];
        const gh = qs[j];
        const dc = gh * o * (1 - tc * tc);
        DZQ[zo + j] = dc * u * i * (1 - i);
        DZQ[zo + H + j] = dc * nodes[lo + j] * fl * (1 - fl);
        DZQ[zo + 2 * H + j] = dc * nodes[rc + j] * fr * (1 - fr);
        DZQ[zo + 3 * H + j] = dc * i * (1 - u * u);
        DZQ[zo + 4 * H + j] = gh * tc * o * (1 - o);
        DC[p * H + j] = dc;
      }
    }
    const DX = pool.f32('DX', NP * H2);
    this.packBwd = packF32(this.backend, this.W, 0, H5, H2, false);
    gemmPackedF32(this.backend, DZQ, 0, this.packBwd, DX, 0, NP, false);
    for (let p = 0; p < NP; p++) {
      const uo = p * 4 * H, xo = p * H2, ro = p * 6 * H;
      for (let j = 0; j < H; j++) {
        const dc = DC[p * H + j];
        U[uo + j] = DX[xo + j];
        U[uo + H + j] = dc * res[ro + H + j];
        U[uo + 2 * H + j] = DX[xo + H + j];
        U[uo + 3 * H + j] = dc * res[ro + 2 * H + j];
      }
    }
    this.DZQ = DZQ;
    this.U = U;
    void X;
  }

  /** Root cotangent (B, H) into the final nodes. */
  backRoot(g: Float32Array): void {
    this.ensureBackward();
    const { B, H, H2 } = this;
    const G = this.G!;
    const slots = this.slotHist[this.slotHist.length - 1];
    const n = slots.length / B;
    for (let b = 0; b < B; b++) {
      const o = slots[b * n] * H2;
      for (let j = 0; j < H; j++) G[o + j] += g[b * H + j];
    }
  }

  /** Score cotangents (B, m) of step t. */
  backScores(t: number, g: Float32Array): void {
    this.ensureBackward();
    const { H2 } = this;
    const G = this.G!, U = this.U!, sAcc = this.sAcc!;
    const pairs = this.pairHist[t];
    for (let i = 0; i < pairs.length; i++) {
      const v = g[i];
      if (v === 0) continue;
      const P = pairs[i];
      sAcc[P] += v;
      const uo = P * 2 * H2, lo = this.pL[P] * H2, ro = this.pR[P] * H2;
      for (let j = 0; j < H2; j++) {
        G[lo + j] += v * U[uo + j];
        G[ro + j] += v * U[uo + H2 + j];
      }
    }
  }

  /**
   * The merge of step t: y's cotangent (B, m) (when wantDy), then the chosen pairs' compositions
   * backpropagate their new node's (now complete) cotangent into their two nodes.
   */
  backMerge(t: number, wantDy: boolean): Float32Array | null {
    this.ensureBackward();
    const { B, H, H2, H5, nodes, cand } = this;
    const res = this.res!;
    const G = this.G!;
    const slots = this.slotHist[t], pairs = this.pairHist[t], chosen = this.chosenHist[t], parents = this.parentHist[t];
    const n = this.T - t, m = n - 1;
    let dy: Float32Array | null = null;
    if (wantDy) {
      dy = new Float32Array(B * m);
      const a = new Float64Array(m);
      for (let b = 0; b < B; b++) {
        const j = chosen[b];
        if (j < 0) continue;
        const s = b * n;
        for (let k = 0; k < m; k++) {
          const node = k < j ? slots[s + k] : k === j ? parents[b] : slots[s + k + 1];
          const go = node * H2, lo = slots[s + k] * H2, ro = slots[s + k + 1] * H2, co = pairs[b * m + k] * H2;
          let sy = 0, sc = 0;
          for (let d = 0; d < H2; d++) {
            const gd = G[go + d], R = nodes[ro + d];
            sy += gd * (cand[co + d] - R);
            sc += gd * (R - nodes[lo + d]);
          }
          dy[b * m + k] = sy;
          a[k] = sc;
        }
        let acc = 0;
        for (let k = m - 1; k >= 0; k--) {
          acc += a[k];
          dy[b * m + k] += acc;
        }
      }
    }
    // chosen pairs: dz from the new node's cotangent, then [dh_l; dh_r] = dz W in one product
    let nLive = 0;
    for (let b = 0; b < B; b++) if (chosen[b] >= 0) nLive++;
    if (nLive === 0) return dy;
    const pool = this.live();
    const DZ = pool.f32('mDZ', nLive * H5), DCv = pool.f32('mDC', nLive * H), which = pool.i32('mWhich', nLive);
    const DZP = this.DZP!, hasDZP = this.hasDZP!;
    let r = 0;
    for (let b = 0; b < B; b++) {
      const j = chosen[b];
      if (j < 0) continue;
      const P = pairs[b * m + j];
      which[r] = P;
      const go = parents[b] * H2, ro = P * 6 * H, zo = r * H5, lo = this.pL[P] * H2 + H, rc = this.pR[P] * H2 + H;
      cellBackward(H, res, ro, G, go, nodes, lo, rc, DZ, zo, DCv, r * H);
      const po = P * H5;
      for (let d = 0; d < H5; d++) DZP[po + d] = DZ[zo + d];
      hasDZP[P] = 1;
      r++;
    }
    const DX = pool.f32('mDX', nLive * H2);
    gemmPackedF32(this.backend, DZ, 0, this.packBwd!, DX, 0, nLive, false);
    for (let q = 0; q < nLive; q++) {
      const P = which[q], ro = P * 6 * H, lo = this.pL[P] * H2, rn = this.pR[P] * H2, xo = q * H2;
      for (let d = 0; d < H; d++) {
        const dc = DCv[q * H + d];
        G[lo + d] += DX[xo + d];
        G[lo + H + d] += dc * res[ro + H + d];
        G[rn + d] += DX[xo + H + d];
        G[rn + H + d] += dc * res[ro + 2 * H + d];
      }
    }
    return dy;
  }

  /** Cotangents of the leaves (B, T, 2H), the composition weight (5H, 2H) and bias (5H), and qs (H). */
  backInit(): { dS0: Float32Array; dW: Float32Array; db: Float32Array; dqs: Float32Array } {
    this.ensureBackward();
    const { B, T, H, H2, H5, nPairs: NP, cand } = this;
    const G = this.G!, sAcc = this.sAcc!, DZQ = this.DZQ!, DZP = this.DZP!, hasDZP = this.hasDZP!;
    const dS0 = new Float32Array(B * T * H2);
    for (let i = 0; i < dS0.length; i++) dS0[i] = G[i];
    const DZ = this.live().f32('Z', NP * H5); // every pair's summed pre-activation cotangent
    const db = new Float64Array(H5);
    const dq = new Float64Array(H);
    for (let p = 0; p < NP; p++) {
      const s = sAcc[p], o = p * H5;
      // a pair never chosen has no cotangent from a new node: + 0, as the zero row it had
      if (hasDZP[p]) {
        for (let d = 0; d < H5; d++) {
          const v = s * DZQ[o + d] + DZP[o + d];
          DZ[o + d] = v;
          db[d] += v;
        }
      } else {
        for (let d = 0; d < H5; d++) {
          const v = s * DZQ[o + d] + 0;
          DZ[o + d] = v;
          db[d] += v;
        }
      }
      if (s !== 0) for (let j = 0; j < H; j++) dq[j] += s * cand[p * H2 + j];
    }
    const dW = new Float32Array(H5 * H2);
    // dW = DZ^T X through a pack of X: the same one pass over X as matmul's own packing, but a product against a
    // pack is split over the two threads even when the GEMM's worker fell asleep during the loops above
    if (NP > 0) {
      const Xp = packF32(this.backend, this.X, 0, NP, H2, false);
      gemmPackedF32(this.backend, DZ, 0, Xp, dW, 0, H5, true);
      Xp.release();
    }
    this.release();
    return { dS0, dW, db: Float32Array.from(db), dqs: Float32Array.from(dq) };
  }
}

/**
 * The merge loop on a TreeCtx, recorded on the tape. Returns the root (B, H) and the per-step choices.
 * choose(step, scores, m) returns the chosen pairs: given the scores tensor (B, m) (null when m = 1 or
 * when the caller picks from host scores: then it gets them via hostScores), returns a one-hot y tensor
 * (differentiable) or host indices.
 */
export interface TreeLoopArgs {
  S0: Tensor; // (B, T, 2H) leaves
  W: Tensor; // (5H, 2H)
  bias: Tensor; // (5H) composition bias, forget shift included
  qs: Tensor; // (H) query / sqrt(H)
  lengths: Int32Array;
  /** step's selection: a one-hot y tensor (B, m) on the scores tensor, or host indices from host scores */
  select: (step: number, m: number, scores: () => Tensor, hostScores: () => Float32Array) => Tensor | Int32Array;
}

export function treeLoop(a: TreeLoopArgs): { root: Tensor; choices: Int32Array[] } {
  const [B, T] = a.S0.shape;
  const dev = { device: a.S0.device };
  let ctx!: TreeCtx;
  const grad = isGradEnabled() && [a.S0, a.W, a.bias, a.qs].some((t) => t.requiresGrad);
  const tokenOf = () => tensor(new Float32Array(1), [1], dev);
  const init = ops.customVjp<null>({
    name: 'treeInit',
    forward: ([S0, W, bias, qs]) => {
      ctx = new TreeCtx(S0.backend, B, T, f32(W), f32(bias), f32(qs), grad);
      ctx.init(f32(S0));
      return { outputs: [tokenOf()], residuals: null };
    },
    backward: (_r, [g]) => {
      if (!g) return [null, null, null, null];
      const { dS0, dW, db, dqs } = ctx.backInit();
      const H = ctx.H;
      return [
        tensor(dS0, [B, T, 2 * H], dev), tensor(dW, [5 * H, 2 * H], dev), tensor(db, [5 * H], dev), tensor(dqs, [H], dev),
      ];
    },
  });
  let tok = init(a.S0, a.W, a.bias, a.qs)[0];
  const choices: Int32Array[] = [];
  for (let step = 0; step < T - 1; step++) {
    const t = step;
    const n = T - step, m = n - 1;
    const tokIn = tok;
    let scoresT: Tensor | null = null;
    const scores = () => {
      if (!scoresT) {
        scoresT = ops.customVjp<null>({
          name: 'treeScores',
          forward: () => ({ outputs: [tensor(ctx.scores(), [B, m], dev)], residuals: null }),
          backward: (_r, [g]) => {
            if (g) ctx.backScores(t, f32(g));
            return [tokenOf()];
          },
        })(tokIn)[0];
      }
      return scoresT;
    };
    const sel = a.select(step, m, scores, () => ctx.scores());
    const chosen = new Int32Array(B);
    let y: Tensor | null = null;
    if (sel instanceof Tensor) {
      y = sel;
      const Y = f32(y);
      for (let b = 0; b < B; b++) {
        let j = -1;
        for (let k = 0; k < m; k++) {
          const v = Y[b * m + k];
          if (v === 1 && j < 0) j = k;
          else if (v !== 0) throw new Error(`GumbelTreeLstm: the tree path needs a one-hot selection, got y[${b}, ${k}] = ${v} (set model.tree = false for the slot kernels)`);
        }
        if (j < 0) throw new Error(`GumbelTreeLstm: the tree path needs a one-hot selection; row ${b} of step ${step} is all zero`);
        chosen[b] = j;
      }
    } else {
      chosen.set(sel);
    }
    // finished rows keep their slots (the last one dropped): row b has max(len - step, 1) live slots
    for (let b = 0; b < B; b++) if (Math.max(a.lengths[b] - step, 1) <= 1) chosen[b] = -1;
    choices.push(chosen);
    const merge = ops.customVjp<null>({
      name: 'treeMerge',
      forward: () => {
        ctx.step(chosen);
        return { outputs: [tokenOf()], residuals: null };
      },
      backward: (_r, [g], inputs) => {
        if (!g) return inputs.map(() => null);
        const dy = ctx.backMerge(t, inputs.length > 1 && inputs[1].requiresGrad);
        return inputs.length > 1 ? [tokenOf(), dy ? tensor(dy, [B, m], dev) : null] : [tokenOf()];
      },
    });
    tok = (y ? merge(tokIn, y) : merge(tokIn))[0];
  }
  const H = a.qs.shape[0];
  const rootOp = ops.customVjp<null>({
    name: 'treeRoot',
    forward: () => {
      const root = ctx.root();
      ctx.endForward();
      if (!grad) ctx.release(); // no backward will read the pass
      return { outputs: [tensor(root, [B, H], dev)], residuals: null };
    },
    backward: (_r, [g]) => {
      if (g) ctx.backRoot(f32(g));
      return [tokenOf()];
    },
  });
  return { root: rootOp(tok)[0], choices };
}

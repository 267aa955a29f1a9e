// Float32 GEMM for the CPU backend: WebAssembly SIMD micro-kernels (bytes emitted by
// ./kernels.ts + ./emit.ts at runtime) over a shared WebAssembly.Memory, optionally split across
// one worker thread (plus the calling thread) with a single Atomics handshake per matmul.
//
// Per call: A and B are copied into the wasm memory (Float32Array.set), unless they already live there
// (arrays from allocArray, or other blocks of its arena: see ./arena.ts); A is packed into MR-row
// tiles and B into NR-column panels by wasm routines (transA/transB are absorbed there), one
// micro-kernel computes MR x NR tiles of C into a padded buffer, and the valid m x n part is copied
// out (or, for a C in that memory, written in place, edge tiles clipped by the kernel). When split over two
// threads by column panels, each thread packs its own B panels; the calling thread packs A, and
// a per-call flag word tells the worker when A is ready.
import { threadPlatform, type WorkerThread } from '../threads.ts';
import { Arena } from './arena.ts';
import { ContentionPolicy } from './contention.ts';
import { buildKernelModule, DEFAULT_CONFIG, defaultOrder, MAX_PAGES, MEM_FIELD, MEM_MODULE, type KernelConfig } from './kernels.ts';
import { PackedPanels, checkPackArgs, checkPackedProduct } from './packed.ts';

export interface Gemm extends Splitter {
  // C (m x n, row-major, contiguous) = op(A) @ op(B), overwritten (not accumulated).
  // A is stored (m, k) row-major, or (k, m) if transA. B is stored (k, n), or (n, k) if transB.
  // aOff/bOff/cOff are element offsets into the arrays (for batched calls). With `epi`, C is then
  // act(C + bias) (bias: n floats added to every row), computed as each tile is stored: the same float32
  // values as a separate add and relu.
  matmul(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number,
         m: number, n: number, k: number, transA: boolean, transB: boolean, epi?: Epilogue): void;
  /**
   * An (m, n) float32 array in the GEMM's own memory, or null (its heap is full). A product that reads it as
   * A or B skips the copy in; one that writes it as C skips the copy out. Freed by freeArray, or once
   * garbage-collected.
   */
  allocArray(m: number, n: number): Float32Array | null;
  /** Free an array from allocArray now; it must not be used afterwards. */
  freeArray(a: Float32Array): void;
  /**
   * Pack B (stored (k, n) at bOff, or (n, k) if transB) once into column panels in this GEMM's memory, for
   * matmulPacked: products against it skip B's copy and packing, and a product split over the two threads reads
   * the same panels (no per-thread packing). Freed by its release(), or once garbage-collected.
   */
  packB(b: Float32Array, bOff: number, k: number, n: number, transB: boolean): PackedPanels;
  /**
   * C (m x n, at cOff) = op(A) @ B for a B packed by packB, overwritten; the same bits as matmul with that B. Split
   * over the two threads from GemmOptions.packedParallelThreshold multiply-adds. Throws if `p` was released, comes
   * from another GEMM, or its source changed (see PackedPanels).
   */
  matmulPacked(a: Float32Array, aOff: number, p: PackedPanels, c: Float32Array, cOff: number, m: number, transA: boolean): void;
  /** The heap inside the GEMM's memory (other wasm kernels that import that memory allocate there too). */
  readonly arena: Arena;
  readonly threads: number;
  readonly relaxed: boolean; // whether relaxed-SIMD madd is in use (by any participating thread)
  /** Signs that the cores were oversubscribed, and the backoffs they started (see GemmContention). All zero with
   *  one thread. */
  readonly contention: GemmContention;
  close(): Promise<void>; // terminate workers
  /** Resolves once the worker thread (if any) is up; rejects if it failed to start. */
  ready(): Promise<void>;
}

/** The two threads' signs of oversubscribed cores so far (see PREEMPT_MS in gemm.ts), and what they did. */
export interface GemmContention {
  /** all signs: spin + wait + late + wake */
  events: number;
  /** the worker found itself descheduled while spinning */
  spin: number;
  /** the caller waited over 1 ms (and over half its own share) for the worker's share */
  wait: number;
  /** the worker had not started a job after 1 ms (4 ms if it was asleep); the caller did all of it */
  late: number;
  /** the worker, asleep at dispatch, took over 2 ms to wake up and claim the job */
  wake: number;
  /** backoffs started (runs of jobs on the calling thread alone) */
  backoffs: number;
  /** the current backoff's length so far, or the last one's, ms */
  backoffMs: number;
  /** whether jobs run on the calling thread alone now */
  solo: boolean;
  /** probes while backed off (where the platform counts runnable threads: whether a core is free for the worker), and
   *  those that found none */
  probes: number;
  busyProbes: number;
}

/** What matmul applies to C as its tiles are stored. */
export interface Epilogue { bias?: Float32Array | null; relu?: boolean }

/** The GEMM's worker thread as other kernels use it, to run their own wasm exports on part of the work (the
 *  estimator kernels, Adam). */
export interface Splitter {
  /** Whether the worker thread takes part now (false before it is up, or with one thread). */
  readonly workerActive: boolean;
  /**
   * Share a WebAssembly module with the worker thread: it instantiates `bytes` over `memory` (a shared memory,
   * imported as env.mem) and can then run its exports `names` in split() jobs, and the `scripts`: name -> the
   * source of a self-contained JS function (exports, ...args) => number, evaluated in the worker (for loops over
   * exports). Returns the module's slot.
   */
  shareModule(bytes: Uint8Array, memory: WebAssembly.Memory, names: string[], scripts?: Record<string, string>): number;
  /**
   * Run `calls` (export name, arguments) of a shared module, in order, on the worker thread while `here` runs
   * on the calling thread; returns the calls' results (0 for none) once both are done. Only while workerActive.
   * The two sides must not write the same bytes.
   */
  split(slot: number, calls: [string, number[]][], here: () => void): number[];
  /**
   * Run the shared module's export `name` over elements [0, n) on both threads, in chunks they take from a
   * shared counter (a quarter of those left at a time, in multiples of `grain`, so the last ones are small).
   * For a chunk [lo, hi) the call gets args[i] + perElem[i] * lo, except args[countIdx] = ceil((hi - lo) /
   * countDiv). `here` is the same export on the calling thread. Only while workerActive.
   */
  splitRange(slot: number, name: string, args: number[], perElem: number[], countIdx: number, countDiv: number,
             n: number, grain: number, here: (...args: number[]) => unknown): void;
}

export interface GemmOptions {
  threads?: number; // 1 or 2 (default min(2, the platform's cores); 1 without a thread platform)
  /** Products with m*n*k below this run on the calling thread only. Default: 2^20, and 2^23 for products of
   *  fewer than 32 rows (see DEFAULT_SPLIT). */
  parallelThreshold?: number;
  /** Turn on V8's relaxed-SIMD support process-wide (v8.setFlagsFromString) so the kernels can use
   *  f32x4.relaxed_madd. Off by default: it flips a global, experimental V8 flag at runtime.
   *  (Node rejects V8 flags in a Worker's execArgv, so this is the only in-process route.) */
  enableRelaxedSimd?: boolean;
  /** Kernel shape override (for benchmarking). */
  kernel?: Partial<Omit<KernelConfig, 'relaxed'>>;
  /** Split products by column panels taken in chunks from a shared counter (default), or false: in two fixed
   *  halves (for benchmarking; results are the same bits either way). */
  chunked?: boolean;
  /** false: never run jobs on the calling thread alone because the cores are oversubscribed (see PREEMPT_MS), for
   *  tests that must exercise the two-thread paths whatever the load. Default true. */
  backoff?: boolean;
  /** Products against a packed B (matmulPacked) with m*n*k below this run on the calling thread only. Default
   *  DEFAULT_PACKED_SPLIT. */
  packedParallelThreshold?: number;
}

// Products against a pre-packed B (matmulPacked) are split across the two threads from this many multiply-adds,
// whatever their rows: with B packed once, a split costs only the handshake and the A packing the worker waits for.
// Measured (bench/listops_packed.ts, 1 vs 2 threads, us): 16x320x128 (655k) 30 vs 22; 16x128x320 29 vs 24;
// 16x1500x600 (14.4M) 649 vs 366-625; 16x1200x300 245 vs 137; but 8x320x128 (328k) 17 vs 12, 16x64x256 (262k) 13 vs
// 14, 4x320x128 (164k) 8 vs 8: below ~2^19 the handshake eats the gain.
export const DEFAULT_PACKED_SPLIT = 1 << 19;

// By default a product is split across the two threads from 2^20 multiply-adds, and, with fewer than 32 rows,
// from 2^23. Measured (1 vs 2 threads, us): 16x256x64 (262k) 21.8 vs 25.1; 16x640x128 (1.3M) 85 vs 102;
// 16x1200x300 (5.8M) 369 vs 348; 32x320x128 (1.3M) 71 vs 48; 100x256x64 (1.6M) 80 vs 67; 32x1500x600 (29M)
// 1573 vs 901. With few rows, copying and packing B (serial and per thread) outweigh the halved compute.
const DEFAULT_SPLIT = 1 << 20;
const CTL_BYTES = 1024;
const PAGE = 65536;

// control block (Int32 indices into the start of the memory)
const SEQ = 0, DONE = 1, STATUS = 2, STOP = 3, AFLAG_MAIN = 4;
// the worker's state, written by the worker: 0 = starting, 1 = ready (plain SIMD), 2 = ready (relaxed madd)
const READY = 5;
// what a job is: 0 = a GEMM share (the params at PRM), 1 = a list of calls into a shared module (below),
// 2 = a range job over a shared module's export (splitRange)
const KIND = 6;
// 1 while the worker spins (or works), 0 while it sleeps in Atomics.wait (written by the worker)
const AWAKE = 7;
// call lists, in float64 slots of the control block: results of call i at RET + i; the list at CALLS:
// [count, then per call: module slot, function index, argument count, arguments...]
const RET = 32, CALLS = 48, CALLS_END = CTL_BYTES / 8;
// the next panel to take, when the two threads share a product's panels out chunk by chunk (Int32 index)
const NEXT = 40;
// modules shared with the worker so far (written by the worker as it instantiates them): a caller on a platform
// whose messages arrive only between the worker's tasks (browsers) waits on it in shareModule
const ACK = 37;
// how many times the worker found itself descheduled while spinning (written by the worker; see PREEMPT_MS)
const PREEMPT = 41;
// Who runs the current job: the caller sets it to the job's seq when it dispatches; the worker claims the job by
// swapping it to CLAIMED before it reads anything of it, and a caller that has done all the work of a shared-counter
// job (every chunk taken) withdraws it from a worker that has not started by swapping it to WITHDRAWN, and need not
// wait for it. (seq is kept positive, so neither value is ever a seq.)
const JOB = 42, CLAIMED = -1, WITHDRAWN = -2;
// 1: the worker stops spinning when it finds itself descheduled (GemmOptions.backoff), 0: it spins on regardless
const ADAPT = 43;
// when the worker claimed the current job (float64 slot: Date.now() in the worker, ms; the wall clock is the one clock
// both threads read alike, while performance.now() counts from each thread's own start)
const CLAIM_AT = 22;
const PRM = 8;
// params: transA, transB, aRaw, lda, aPack, bRaw, ldbOrN, bp, cPtr, ldc, k, t0, t1, p0, p1,
//         q0, q1 (B panels to pack), a0, a1 (A tiles to pack), setFlag, waitFlag (ctl indices, 0 = none),
//         tLast, mEdge, pLast, nEdge (the edge tiles of a C written in place: see the kernel's gemm),
//         bias (byte address, 0 = none), relu (the epilogue),
//         chunk (> 0: instead of the fixed ranges, take panels up to q1 from ctl[NEXT] (CHUNK_SRC), at least
//         `chunk` at a time, packing each chunk's B panels, then computing tiles [t0,t1) of them)
const NPRM = 28;
// Atomics.load polls before the worker sleeps (~3-5 ms). A training step runs elementwise work for
// 0.1-1 ms between matmuls; a worker that slept after ~20 us took so long to wake on this VM that
// 2 threads ran the VAE's matmuls at 33-50 GFLOPS in place, 1 thread at 37-43 (9.0 vs 9.6-12.1 ms of
// matmul per step, measured alternately). The worker only spins after a job, so an idle process sleeps.
const SPIN_SHORT = 300000;
const SPIN_LONG = 300000; // after a pre-wake
// Contention: two threads must never be slower than one when the cores are busy. While it spins, the worker
// reads the clock every 1024 polls (~10 us of polling); a gap above PREEMPT_MS means the OS took its core away:
// more threads want to run than there are cores (a busy process beside this one, other jobs). Spinning then only
// takes time from the calling thread, and a descheduled worker makes the caller wait for its share, so the worker
// sleeps at once and counts the event in ctl[PREEMPT]; a caller that waits on the worker's share for more than
// PREEMPT_MS and half its own share counts one too, as does a worker that has not started a job after PREEMPT_MS.
// The signs feed ContentionPolicy (./contention.ts; a wait or a late worker counts double, STRONG_SIGN). A backoff
// makes the calling thread run everything itself (products, estimator and Adam splits; no pre-wakes, so the worker
// stays asleep). It starts on about five signs in five consecutive occasions to use the worker, or two waits in a
// row, or two signs in a row confirmed by the platform's count of runnable threads (ThreadPlatform.runnable: Linux)
// leaving no core for the worker (sporadic signs come on a quiet machine too: V8's compiler and GC threads, short
// bursts of other processes). It ends when probes of that count (after 10 ms, then 25 ms after a busy answer,
// doubling up to 400 ms) find a core free twice in a row (or after 2 s), or where the platform has no count, after 10 ms, doubled when the next backoff
// starts within 5 s, up to 2 s. A sign within the next four occasions starts the next backoff at once. And a caller that has taken every chunk of a shared-counter job (GEMM
// panels, splitRange) withdraws it from a worker that has not started (JOB below) rather than wait for that worker
// to be scheduled just to find nothing left. Measured: see docs/bench.md, "Threads under contention".
const PREEMPT_MS = 1;
// a wait on the worker, or a worker that has not started, cost this thread time: they count double (a spinning
// worker's lost core alone costs little, and sporadic ones come on a quiet machine)
const STRONG_SIGN = 2;
// a worker that was asleep at dispatch: late or slow by more than a scheduler time slice counts (see kick)
const WAKE_MS = 4;
// ... and one that took longer than this to wake up and claim its job counts once (weight 1): on a quiet machine it
// wakes in 0.03-0.1 ms (rarely ~2 ms), with a busy process beside in 3-4 ms, waiting for a core (read in whole ms
// of the wall clock: over 2 means over 2 ms)
const SLOW_WAKE_MS = 2;
// A product of at least this many multiply-adds that is split by shared-counter chunks goes to the worker even while
// it sleeps: its wake-up (tens of microseconds to a few ms) only shrinks its share, since the caller takes chunks
// meanwhile and withdraws the job if the worker never starts. (Smaller products run here alone and pre-wake it. A
// product longer than the worker's spin after a job, like 512x512x512 at ~6 ms, found it asleep every time and was
// never split: 1.01x of one thread on a quiet machine.)
const SLEEPER_MACS = 1 << 24;

interface Exports {
  gemm: (...a: number[]) => void;
  gemv: (a: number, b: number, c: number, k: number, n: number, bias: number, relu: number) => void;
  packAN: (...a: number[]) => void; packAT: (...a: number[]) => void;
  packN: (...a: number[]) => void; packT: (...a: number[]) => void;
}

// Taking work from the shared counter ctl[NEXT] (both threads, GEMM panels and range jobs alike): the next chunk
// of [ctl[NEXT], end) is a quarter of what is left, at least `grain`, a multiple of it (the end excepted), so
// the chunks shrink toward the end. takeChunk returns the chunk's start (its end is chunkEnd of that), or -1.
const CHUNK_SRC = `
  const chunkEnd = (c0, end, grain) => Math.min(end, c0 + Math.ceil(Math.max(grain, Math.ceil((end - c0) / 4)) / grain) * grain);
  const takeChunk = (end, grain) => {
    for (;;) {
      const c0 = Atomics.load(ctl, ${NEXT});
      if (c0 >= end) return -1;
      if (Atomics.compareExchange(ctl, ${NEXT}, c0, chunkEnd(c0, end, grain)) === c0) return c0;
    }
  };
`;

// One job (the same source runs inside the worker, see WORKER_SRC): pack A tiles [a0,a1), publish
// them (ctl[setFlag] := seq), pack B panels [q0,q1), wait for the other side's A tiles
// (ctl[waitFlag] == seq; only the worker ever waits), then compute tiles [t0,t1) x panels [p0,p1).
// With chunk > 0 the panels are not fixed: each thread takes the next ones from a shared counter until
// none is left, a quarter of those left at a time (at least `chunk`), so that the chunks shrink toward
// the end: a thread that runs slower (a busy core) computes fewer, and the other waits at most for a
// small last chunk.
const JOB_SRC = `${CHUNK_SRC}
  const transA = q[0], transB = q[1], aRaw = q[2], lda = q[3], aPack = q[4], bRaw = q[5], ldbOrN = q[6];
  const bp = q[7], cPtr = q[8], ldc = q[9], k = q[10], t0 = q[11], t1 = q[12], p0 = q[13], p1 = q[14];
  const q0 = q[15], q1 = q[16], a0 = q[17], a1 = q[18], setFlag = q[19], waitFlag = q[20];
  const tLast = q[21], mEdge = q[22], pLast = q[23], nEdge = q[24], bias = q[25], relu = q[26], chunk = q[27];
  const waitForA = () => {
    let spins = 0;
    while (Atomics.load(ctl, waitFlag) !== seq) {
      if (++spins < 4000) continue;
      spins = 0;
      if (abandon()) throw new Error('gemm: the other thread did not publish its A tiles');
      Atomics.wait(ctl, waitFlag, Atomics.load(ctl, waitFlag), 1);
    }
  };
  if (a1 > a0) (transA ? ex.packAT : ex.packAN)(aRaw, aPack, k, lda, a0, a1);
  if (setFlag) { Atomics.store(ctl, setFlag, seq); Atomics.notify(ctl, setFlag); }
  if (chunk > 0) {
    let haveA = !waitFlag;
    for (let c0; (c0 = takeChunk(q1, chunk)) >= 0;) {
      const c1 = chunkEnd(c0, q1, chunk);
      if (bRaw) (transB ? ex.packT : ex.packN)(bRaw, bp, k, ldbOrN, c0, c1); // bRaw 0: B was packed beforehand
      if (!haveA) { waitForA(); haveA = true; }
      ex.gemm(aPack, bp, cPtr, ldc, t0, t1, k, c0, c1, tLast, mEdge, pLast, nEdge, bias, relu);
    }
  } else {
    if (q1 > q0) (transB ? ex.packT : ex.packN)(bRaw, bp, k, ldbOrN, q0, q1);
    if (waitFlag) waitForA();
    if (p1 > p0 && t1 > t0) ex.gemm(aPack, bp, cPtr, ldc, t0, t1, k, p0, p1, tLast, mEdge, pLast, nEdge, bias, relu);
  }
`;

// A range job (splitRange), the same source on both threads: take chunks of [0, n) from ctl[NEXT] and call fn.
const RANGE_SRC = `${CHUNK_SRC}
  const a = args.slice();
  for (let c0; (c0 = takeChunk(n, grain)) >= 0;) {
    const c1 = chunkEnd(c0, n, grain);
    for (let i = 0; i < a.length; i++) a[i] = args[i] + per[i] * c0;
    a[countIdx] = Math.ceil((c1 - c0) / countDiv);
    fn(...a);
  }
`;
type RangeFn = (fn: (...a: number[]) => unknown, args: number[], per: number[], countIdx: number, countDiv: number,
  n: number, grain: number, ctl: Int32Array) => void;
// eslint-disable-next-line @typescript-eslint/no-implied-eval
const runRange = new Function('fn', 'args', 'per', 'countIdx', 'countDiv', 'n', 'grain', 'ctl', RANGE_SRC) as RangeFn;

type JobFn = (ex: Exports, q: Int32Array, ctl: Int32Array, seq: number, abandon: () => boolean) => void;
// eslint-disable-next-line @typescript-eslint/no-implied-eval
const runJob = new Function('ex', 'q', 'ctl', 'seq', 'abandon', JOB_SRC) as JobFn;

// The worker is plain JS (no TS loader needed under tsx or vitest), evaluated from a string; the platform
// defines workerData, post(), poll() and sleep() in its scope (see ../threads.ts), and calls inbox() when messages
// arrive between the worker's tasks (browsers, where poll() only sees messages delivered that way).
const WORKER_SRC = `
const { plainBytes, relaxedBytes, memory } = workerData;
let relaxed = false;
try { relaxed = WebAssembly.validate(relaxedBytes); } catch (e) { relaxed = false; }
const mod = new WebAssembly.Module(relaxed ? relaxedBytes : plainBytes);
const ex = new WebAssembly.Instance(mod, { ${MEM_MODULE}: { ${MEM_FIELD}: memory } }).exports;
const ctl = new Int32Array(memory.buffer, 0, ${CTL_BYTES / 4});
const f64 = new Float64Array(memory.buffer, 0, ${CTL_BYTES / 8});
function runJob(ex, q, ctl, seq, abandon) { ${JOB_SRC} }
// modules shared with this thread (shareModule): slot -> exported functions, by index
const mods = [];
function install(d) {
  const inst = new WebAssembly.Instance(new WebAssembly.Module(d.bytes), { ${MEM_MODULE}: { ${MEM_FIELD}: d.memory } });
  const fns = d.names.map((n) => inst.exports[n]);
  for (const src of d.scripts) {
    const f = new Function('return ' + src)();
    fns.push((...a) => f(inst.exports, ...a));
  }
  mods[d.slot] = fns;
  Atomics.store(ctl, ${ACK}, Math.max(Atomics.load(ctl, ${ACK}), d.slot + 1));
  Atomics.notify(ctl, ${ACK});
}
function inbox() { for (let d = poll(); d; d = poll()) install(d); }
function moduleIn(slot) {
  const t0 = Date.now();
  while (!mods[slot]) {
    const d = poll();
    if (d) install(d);
    else if (Date.now() - t0 > 10000) throw new Error('module ' + slot + ' was never shared');
  }
  return mods[slot];
}
function runCalls() {
  const n = f64[${CALLS}];
  let p = ${CALLS} + 1;
  const args = [];
  for (let i = 0; i < n; i++) {
    const fn = moduleIn(f64[p])[f64[p + 1]], na = f64[p + 2];
    p += 3;
    args.length = 0;
    for (let j = 0; j < na; j++) args.push(f64[p + j]);
    p += na;
    const r = fn(...args);
    f64[${RET} + i] = typeof r === 'number' ? r : 0;
  }
}
function runRange(fn, args, per, countIdx, countDiv, n, grain, ctl) { ${RANGE_SRC} }
// a range job: [slot, function index, nargs, args..., perElem..., countIdx, countDiv, n, grain] at CALLS
function runRangeJob() {
  let p = ${CALLS};
  const fn = moduleIn(f64[p])[f64[p + 1]], na = f64[p + 2];
  p += 3;
  const args = Array.from(f64.subarray(p, p + na)), per = Array.from(f64.subarray(p + na, p + 2 * na));
  p += 2 * na;
  runRange(fn, args, per, f64[p], f64[p + 1], f64[p + 2], f64[p + 3], ctl);
}
// read the job counter BEFORE announcing readiness: the caller may dispatch its first job as soon
// as it hears 'ready', and a counter read after that would already include (and so skip) that job
let seq = Atomics.load(ctl, ${SEQ});
Atomics.store(ctl, ${AWAKE}, 1);
Atomics.store(ctl, ${READY}, relaxed ? 2 : 1);
post({ ready: true, relaxed });
let spinLimit = ${SPIN_SHORT};
const prm = new Int32Array(${NPRM}); // a job's params, copied out of the control block
// a newer job or a stop request while waiting for the caller's A tiles: give this one up
const abandon = () => Atomics.load(ctl, ${STOP}) !== 0 || Atomics.load(ctl, ${SEQ}) !== seq;
(async () => { for (;;) {
  // spin before sleeping: the next matmul then avoids the futex wake-up latency. A wake-up
  // without a new job is the caller's "pre-wake" (sent before it copies the operands in): spin
  // longer then, so the job is picked up without another sleep.
  // Reading the clock every 1024 polls: a gap means this thread lost its core (see PREEMPT_MS); stop spinning.
  let spins = 0;
  let last = performance.now();
  while (Atomics.load(ctl, ${SEQ}) === seq && Atomics.load(ctl, ${STOP}) === 0 && spins < spinLimit) {
    if ((++spins & 1023) === 0) {
      const now = performance.now();
      if (now - last > ${PREEMPT_MS} && Atomics.load(ctl, ${ADAPT}) === 1) { Atomics.add(ctl, ${PREEMPT}, 1); break; }
      last = now;
    }
  }
  if (Atomics.load(ctl, ${SEQ}) === seq && Atomics.load(ctl, ${STOP}) === 0) {
    Atomics.store(ctl, ${AWAKE}, 0);
    // Node: Atomics.wait (returns nothing); browsers: Atomics.waitAsync, so messages get in while it sleeps
    const slept = sleep(ctl, ${SEQ}, seq);
    if (slept) await slept;
    Atomics.store(ctl, ${AWAKE}, 1);
    spinLimit = ${SPIN_LONG};
  }
  if (Atomics.load(ctl, ${STOP}) !== 0) break;
  const s = Atomics.load(ctl, ${SEQ});
  if (s === seq) continue;
  seq = s;
  // withdrawn (the caller did all of it) or already superseded by a newer job: nothing to do, nothing to report
  if (Atomics.compareExchange(ctl, ${JOB}, s, ${CLAIMED}) !== s) continue;
  f64[${CLAIM_AT}] = Date.now();
  let status = 0;
  try {
    const kind = Atomics.load(ctl, ${KIND});
    if (kind === 1) runCalls();
    else if (kind === 2) runRangeJob();
    else { for (let i = 0; i < ${NPRM}; i++) prm[i] = ctl[${PRM} + i]; runJob(ex, prm, ctl, seq, abandon); }
  } catch (e) { status = 1; }
  Atomics.store(ctl, ${STATUS}, status);
  Atomics.store(ctl, ${DONE}, seq);
  Atomics.notify(ctl, ${DONE});
  spinLimit = ${SPIN_SHORT};
} })();
`;

let relaxedSupportedHere: boolean | undefined;
const neverAbandon = (): boolean => false;

/**
 * Where C (cLen floats at element offset cOff of an array at byte address cAt, -1: not in this memory) is written
 * in place: its byte address, or -1 when it is not in this memory or overlaps an operand read in place (aIn, bIn:
 * byte addresses or -1, of aLen / bLen floats), since B is packed chunk by chunk while C is being written.
 */
function cInPlace(cAt: number, cOff: number, cLen: number, aIn: number, aLen: number, bIn: number, bLen: number): number {
  if (cAt < 0) return -1;
  const cStart = cAt + 4 * cOff, cEnd = cStart + 4 * cLen;
  const overlaps = (at: number, len: number) => at >= 0 && at < cEnd && cStart < at + 4 * len;
  return overlaps(aIn, aLen) || overlaps(bIn, bLen) ? -1 : cStart;
}

/** Whether `g` is a GEMM built by this module (createGemm, createGemmSync, createGemmBackground): one with its own
 *  memory (arena), epilogues, packing and a worker thread. A nominal check: another FastGemm never passes it. */
export function isWasmGemm(g: unknown): g is Gemm {
  return g instanceof GemmImpl;
}

class GemmImpl implements Gemm {
  readonly threads: number;
  readonly relaxed: boolean;
  private readonly memory: WebAssembly.Memory;
  private readonly ex: Exports;
  private readonly cfg: KernelConfig;
  private readonly mr: number;
  private readonly nr: number;
  private f32: Float32Array;
  private readonly ctl: Int32Array;
  private readonly params = new Int32Array(NPRM);
  private seq = 0;
  private closed = false;
  /** fraction of panels given to the calling thread when split 2 ways (set once the worker is ready) */
  private mainShare = 1;
  /** the worker has started (and has not failed); until then every product runs on the calling thread */
  private workerUp = false;
  private workerFailed = false;
  /** modules shared with the worker (shareModule): their function names -> indices */
  private readonly shared: Map<string, number>[] = [];
  /** the heap in this GEMM's memory (past the control block): per-call scratch, and arrays kept there */
  readonly arena: Arena;
  private scr = -1;
  private scrBytes = 0;
  /** contention backoff (see PREEMPT_MS): the last ctl[PREEMPT] seen, the signs seen, and the policy they feed */
  private preemptSeen = 0;
  private readonly signs = { spin: 0, wait: 0, late: 0, wake: 0 };
  private readonly policy: ContentionPolicy;
  /** the platform's count of runnable threads (see ThreadPlatform.runnable), and its cores */
  private readonly runq: (() => number | undefined) | null = null;
  private readonly cores: number = 1;
  /** how late the worker may be for the current job before that counts as contention (see kick) */
  private lateMs = PREEMPT_MS;
  /** when the current job was dispatched (Date.now() ms, to compare with CLAIM_AT) */
  private kickAt = 0;
  private readonly f64: Float64Array;

  /** products against a packed B split over the two threads from this many multiply-adds */
  packedSplit = DEFAULT_PACKED_SPLIT;

  constructor(memory: WebAssembly.Memory, ex: Exports, cfg: KernelConfig, private readonly worker: WorkerThread | null,
              private readonly parallelThreshold: number, private readonly chunked = true, private readonly backoff = true) {
    this.memory = memory; this.ex = ex; this.cfg = cfg;
    this.mr = cfg.mr; this.nr = cfg.nv * 4;
    this.threads = worker ? 2 : 1;
    // the V8 flag is process-wide, so the worker normally has relaxed madd exactly when this thread has
    this.relaxed = cfg.relaxed;
    this.f32 = new Float32Array(memory.buffer);
    this.ctl = new Int32Array(memory.buffer, 0, CTL_BYTES / 4);
    this.f64 = new Float64Array(memory.buffer, 0, CTL_BYTES / 8);
    this.arena = new Arena(memory, CTL_BYTES, MAX_PAGES * PAGE);
    Atomics.store(this.ctl, ADAPT, backoff ? 1 : 0);
    const pf = worker ? threadPlatform() : null;
    if (pf?.runnable?.() !== undefined) { this.runq = () => pf!.runnable!(); this.cores = pf!.cores(); }
    this.policy = new ContentionPolicy(this.runq !== null);
    if (worker) {
      // a worker that fails to start (or dies) only costs the second thread: products stay on this one
      worker.onFailure(() => { this.workerFailed = true; });
    }
  }

  /** Whether the worker takes part: it reports readiness through shared memory, so that a caller that never
   *  yields to the event loop (a synchronous training loop) still starts using it. */
  private workerReady(): boolean {
    if (this.workerUp) return !this.workerFailed;
    if (!this.worker || this.workerFailed) return false;
    const r = Atomics.load(this.ctl, READY);
    if (r === 0) return false;
    const workerRelaxed = r === 2;
    // relaxed madd runs ~25% faster per thread (48 vs 38 GFLOPS): if only one side has it, give that side more work
    this.mainShare = this.cfg.relaxed === workerRelaxed ? 0.5 : this.cfg.relaxed ? 0.56 : 0.44;
    this.workerUp = true;
    return true;
  }

  /**
   * Whether to give the worker part of a job now: it is up and awake. A sleeping worker takes a futex wake-up to
   * start (on this VM often longer than a small job): the job then runs here alone, and the worker is woken so
   * that it spins, ready, for the jobs that follow. (Sparse products, as in the ListOps model, ran 1.8x slower
   * split with a sleeping worker than on one thread.) `evenAsleep`: a large product split by shared-counter chunks
   * goes to a sleeping worker too (see SLEEPER_MACS).
   */
  private workerAwake(evenAsleep = false): boolean {
    if (!this.workerReady()) return false;
    if (this.contended()) return false;
    if (Atomics.load(this.ctl, AWAKE) === 1) return true;
    if (evenAsleep && this.mainShare === 0.5 && this.chunked) return true;
    Atomics.notify(this.ctl, SEQ);
    return false;
  }

  /**
   * Whether the cores are oversubscribed now, as the worker reports it (ctl[PREEMPT], see PREEMPT_MS): then jobs
   * run on this thread alone and the worker is left asleep, for a backoff that doubles while the reports go on.
   */
  private contended(): boolean {
    const p = Atomics.load(this.ctl, PREEMPT);
    const now = performance.now();
    if (this.backoff) this.probe(now);
    this.policy.occasion(now);
    if (p !== this.preemptSeen) {
      this.preemptSeen = p;
      this.signs.spin++;
      this.noteContention(now, 1);
    }
    return this.backoff && this.policy.solo(now);
  }

  /** While backed off, when a probe is due (see ./contention.ts): whether the platform's run queue leaves a core free
   *  for the (sleeping) worker, besides this thread. */
  private probe(now: number): void {
    if (!this.runq || !this.policy.probeDue(now) || Atomics.load(this.ctl, AWAKE) !== 0) return;
    const r = this.runq();
    this.policy.probed(now, r === undefined || r - 1 < this.cores - 1); // no answer this time: try the worker
  }

  /** One sign of contention, for the policy (./contention.ts): enough of them in a row (fewer where the run queue
   *  confirms them) start a backoff; sporadic ones (a GC thread, another process's short burst) do not. */
  private noteContention(now: number, weight: number): void {
    // confirmed where the platform counts runnable threads: besides this one and the worker (if awake), as many as
    // leave no core for the worker
    const r = this.runq && !this.policy.solo(now) ? this.runq() : undefined;
    this.policy.sign(now, weight, r !== undefined && r - 1 - Atomics.load(this.ctl, AWAKE) >= this.cores - 1);
  }

  /** Contention so far: the signs of it seen (the worker descheduled while spinning, or late with its share), the
   *  current backoff (ms), and whether jobs run on this thread alone now. */
  get contention(): GemmContention {
    const p = this.policy, now = performance.now();
    return { events: p.events, ...this.signs, backoffs: p.backoffs, backoffMs: p.backoffMs(now), solo: p.solo(now), probes: p.probes, busyProbes: p.busyProbes };
  }

  get workerActive(): boolean { return this.workerAwake(); }

  /** Resolves once the worker is ready (at once without one); rejects if it fails to start. */
  async ready(): Promise<void> {
    const t0 = Date.now();
    while (this.worker && !this.workerReady()) {
      if (this.workerFailed) throw new Error('gemm: the worker thread failed to start');
      if (Date.now() - t0 > 60000) throw new Error('gemm: the worker thread did not start within 60 s');
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /** Operands read in place at byte addresses aIn / bIn (-1: not in place) are read for aLen / bLen floats,
   *  slack included: the memory must reach that far. */
  private ensureSlack(aIn: number, aLen: number, bIn: number, bLen: number): void {
    if (aIn < 0 && bIn < 0) return;
    if (!this.arena.ensure(Math.max(aIn + 4 * aLen, bIn + 4 * bLen))) throw new RangeError('gemm: operand slack past the end of the wasm memory');
    this.refresh();
  }

  private refresh(): void {
    if (this.f32.buffer.byteLength !== this.memory.buffer.byteLength) this.f32 = new Float32Array(this.memory.buffer);
  }

  /** The per-call working block (packed operands, and the operands and C that are not in place): kept between
   *  calls, replaced by a larger one when a product needs more. Returns its byte address. */
  private scratch(bytes: number): number {
    if (this.scrBytes < bytes) {
      const want = Math.max(bytes, Math.ceil(this.scrBytes * 1.25));
      if (this.scr >= 0) this.arena.release(this.scr);
      this.scr = -1; this.scrBytes = 0;
      const at = this.arena.alloc(want, true);
      if (at < 0) throw new RangeError(`gemm: needs ${bytes} bytes of wasm memory for one product (max ${MAX_PAGES * PAGE})`);
      this.scr = at; this.scrBytes = want;
    }
    this.refresh();
    return this.scr;
  }

  /**
   * An (m, n) float32 array in this GEMM's memory, or null (the arena is full). A product that reads it as A or
   * B skips the copy in; one that writes it as C skips the copy out. Its block
   * is freed by freeArray, or once the array is garbage-collected.
   */
  allocArray(m: number, n: number): Float32Array | null {
    if (m <= 0 || n <= 0) return null;
    const addr = this.arena.alloc(4 * m * n);
    if (addr < 0) return null;
    return this.arena.adopt(addr, [[0, m * n]])[0];
  }

  /** Free an array from allocArray now (it must not be used afterwards). */
  freeArray(a: Float32Array): void {
    this.arena.drop(this.arena.addressOf(a));
  }

  matmul(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number,
         m: number, n: number, k: number, transA: boolean, transB: boolean, epi?: Epilogue): void {
    if (this.closed) throw new Error('gemm: closed');
    if (m <= 0 || n <= 0) return;
    if (aOff + m * k > a.length || bOff + k * n > b.length || cOff + m * n > c.length)
      throw new RangeError('gemm: operand too small for the given shape/offset');
    const bias = epi?.bias ?? null, relu = epi?.relu === true;
    if (bias && bias.length < n) throw new RangeError(`gemm: bias has ${bias.length} elements, expected n = ${n}`);
    if (k <= 0) {
      c.fill(0, cOff, cOff + m * n);
      if (bias || relu) {
        for (let o = cOff; o < cOff + m * n; o += n) {
          for (let j = 0; j < n; j++) { const x = bias ? 0 + bias[j] : 0; c[o + j] = relu ? Math.max(x, 0) : x; }
        }
      }
      return;
    }
    if (m === 1 && !transB) { this.rowProduct(a, aOff, b, bOff, c, cOff, n, k, bias, relu); return; }
    this.product(a, aOff, b, bOff, transB, null, c, cOff, m, n, k, transA, bias, relu);
  }

  /**
   * The product behind matmul and matmulPacked: C = op(A) @ op(B) + epilogue, with B either raw (b, bOff, transB:
   * packed here, panel by panel, by the thread that computes the panel) or already packed (packed: its panels read
   * by both threads, nothing to pack). One scratch layout, one set of job parameters, one split dispatch for both,
   * so a packed product has the bits of the raw one by construction.
   */
  private product(a: Float32Array, aOff: number, b: Float32Array | null, bOff: number, transB: boolean,
                  packed: PackedPanels | null, c: Float32Array, cOff: number, m: number, n: number, k: number,
                  transA: boolean, bias: Float32Array | null, relu: boolean): void {
    const raw = packed === null;
    const { mr, nr, arena } = this;
    const panels = Math.ceil(n / nr);
    const tiles = Math.ceil(m / mr);
    const mPad = tiles * mr;
    const ldc = panels * nr;
    const al = (x: number) => (x + 15) & ~15; // 64-byte alignment in floats
    const aLen = m * k + (mr - 1) * k + mr; // slack: padded rows (N) / trailing lanes (T)
    const bLen = raw ? k * n + nr : 0; // slack: the last panel reads up to NR-1 past the end (N)
    // operands already in this memory are read in place: the slack past their end then holds whatever
    // lies there, which only reaches C's padding rows and columns, never copied out
    const aAt = arena.addressOf(a), bAt = raw ? arena.addressOf(b!) : -1, cAt = arena.addressOf(c);
    const aIn = aAt >= 0 ? aAt + 4 * aOff : -1, bIn = bAt >= 0 ? bAt + 4 * bOff : -1;
    // C is written in place, its edge tiles clipped to m x n by the kernel, unless it overlaps an operand read in
    // place (a raw B is packed chunk by chunk while C tiles are being written)
    const cIn = cInPlace(cAt, cOff, m * n, aIn, m * k, bIn, raw ? k * n : 0);
    // scratch layout (float offsets from its start)
    let o = 0;
    const aOfs = aIn < 0 ? o : -1; if (aIn < 0) o = al(o + aLen);
    const apOfs = o; o = al(o + tiles * k * mr);
    const bOfs = raw && bIn < 0 ? o : -1; if (bOfs >= 0) o = al(o + bLen);
    const bpOfs = raw ? o : -1; if (raw) o = al(o + panels * k * nr);
    const cOfs = cIn < 0 ? o : -1; if (cIn < 0) o = al(o + mPad * ldc);
    // the bias row, read a panel (NR floats) at a time
    const biasAt = bias ? arena.addressOf(bias) : -1;
    const biasOfs = bias && biasAt < 0 ? o : -1; if (biasOfs >= 0) o = al(o + ldc);
    // A worker asleep at dispatch is not given a small product (workerAwake: its wake-up may outlast the product), but
    // it is woken and given a large one: with chunks from the shared counter this thread starts at once, and a late
    // worker takes the chunks left when it is up (or none: the job is withdrawn). Between the large products of a
    // ListOps step (the initial compositions, the query Jacobians) runs enough elementwise work for the worker to
    // fall asleep, and those products then ran on one thread.
    const macs = m * n * k;
    const big = raw
      ? (this.parallelThreshold === DEFAULT_SPLIT ? macs >= DEFAULT_SPLIT && (m >= 32 || macs >= 8 * DEFAULT_SPLIT)
        : macs >= this.parallelThreshold)
      : macs >= this.packedSplit;
    const parallel = big && (panels >= 2 || tiles >= 2) &&
      this.workerAwake(macs >= SLEEPER_MACS && (!raw || panels >= 4 || panels >= tiles));
    if (parallel) Atomics.notify(this.ctl, SEQ); // pre-wake the worker while we copy the operands in
    const base = this.scratch(4 * Math.max(o, 16)) / 4;
    this.ensureSlack(aIn, aLen, bIn, bLen);
    const f = this.f32;
    const aBase = base + aOfs, bBase = base + bOfs;
    if (aIn < 0) {
      f.set(a.subarray(aOff, aOff + m * k), aBase);
      f.fill(0, aBase + m * k, aBase + aLen);
    }
    if (bOfs >= 0) {
      f.set(b!.subarray(bOff, bOff + k * n), bBase);
      f.fill(0, bBase + k * n, bBase + bLen);
    }
    if (biasOfs >= 0) {
      f.set(bias!.subarray(0, n), base + biasOfs);
      f.fill(0, base + biasOfs + n, base + biasOfs + ldc);
    }
    const cBase = cIn >= 0 ? cIn / 4 : base + cOfs;

    const q = this.params;
    q[0] = transA ? 1 : 0; q[1] = (raw ? transB : packed.transB) ? 1 : 0;
    q[2] = aIn >= 0 ? aIn : aBase * 4; q[3] = transA ? m * 4 : k * 4; q[4] = (base + apOfs) * 4;
    if (raw) { q[5] = bIn >= 0 ? bIn : bBase * 4; q[6] = transB ? n : n * 4; q[7] = (base + bpOfs) * 4; }
    else { q[5] = 0; q[6] = 0; q[7] = packed.addr; } // B already packed: no raw B to pack
    q[8] = cBase * 4; q[9] = (cIn >= 0 ? n : ldc) * 4; q[10] = k;
    q[21] = tiles - 1; q[22] = cIn >= 0 ? m - (tiles - 1) * mr : mr; q[23] = panels - 1; q[24] = cIn >= 0 ? n - (panels - 1) * nr : nr;
    q[25] = !bias ? 0 : biasOfs >= 0 ? 4 * (base + biasOfs) : biasAt; q[26] = relu ? 1 : 0; q[27] = 0;
    q[19] = 0; q[20] = 0;
    // tiles [t0, t1) x panels [p0, p1) computed, B panels [q0, q1) packed (none when B came packed), A tiles [a0, a1) packed
    const set = (t0: number, t1: number, p0: number, p1: number, q0: number, q1: number, a0: number, a1: number) => {
      q[11] = t0; q[12] = t1; q[13] = p0; q[14] = p1; q[15] = raw ? q0 : 0; q[16] = raw ? q1 : 0; q[17] = a0; q[18] = a1;
    };

    if (!parallel) {
      set(0, tiles, 0, panels, 0, panels, 0, tiles);
      runJob(this.ex, q, this.ctl, this.seq, neverAbandon);
    } else if (panels >= 4 || panels >= tiles) {
      // split by column panels; each thread packs its own B panels (if B is raw). The calling thread packs A
      // (small next to B) and publishes it; the worker packs its B panels meanwhile and waits for
      // A only if it gets there first. (Splitting the A packing too made the calling thread wait
      // on the worker mid-job, which collapsed when the two cores were oversubscribed.)
      // Both threads take shrinking chunks of the panels from a shared counter (when they run the same
      // kernel, so that which thread computes a tile cannot change its bits), else a fixed split.
      if (this.mainShare === 0.5 && this.chunked) {
        // chunks of panels [0, panels) from the shared counter (q[16]; with a packed B there is nothing to pack)
        q[27] = 1;
        Atomics.store(this.ctl, NEXT, 0);
        set(0, tiles, 0, 0, 0, panels, 0, 0);
        q[16] = panels; q[19] = 0; q[20] = AFLAG_MAIN;
        this.dispatch(q);
        set(0, tiles, 0, 0, 0, panels, 0, tiles);
        q[16] = panels; q[19] = AFLAG_MAIN; q[20] = 0;
      } else {
        const split = Math.max(1, Math.min(panels - 1, Math.round(panels * this.mainShare)));
        set(0, tiles, split, panels, split, panels, 0, 0);
        q[19] = 0; q[20] = AFLAG_MAIN;
        this.dispatch(q);
        set(0, tiles, 0, split, 0, split, 0, tiles);
        q[19] = AFLAG_MAIN; q[20] = 0;
      }
      const since = performance.now();
      runJob(this.ex, q, this.ctl, this.seq, neverAbandon);
      // chunked: every panel has been taken; a worker that has not started has nothing left to do
      if (q[27] === 0 || !this.withdraw(since)) this.join(since);
    } else {
      // few panels, many row tiles: pack everything here, then split by row tiles
      set(0, 0, 0, 0, 0, panels, 0, tiles);
      runJob(this.ex, q, this.ctl, this.seq, neverAbandon);
      const split = Math.max(1, Math.min(tiles - 1, Math.round(tiles * this.mainShare)));
      set(split, tiles, 0, panels, 0, 0, 0, 0);
      this.dispatch(q);
      set(0, split, 0, panels, 0, 0, 0, 0);
      const since = performance.now();
      runJob(this.ex, q, this.ctl, this.seq, neverAbandon);
      this.join(since);
    }

    if (cIn >= 0) return; // written in place
    // copy the valid m x n block out
    const f2 = this.f32;
    if (ldc === n) c.set(f2.subarray(cBase, cBase + m * n), cOff);
    else for (let i = 0; i < m; i++) c.set(f2.subarray(cBase + i * ldc, cBase + i * ldc + n), cOff + i * n);
  }

  /**
   * A one-row product (bias gradients are ones @ G; batch-1 inference), on this thread without packing: a 1-row
   * GEMM would pack all of B and compute 4-row tiles. The same bits as the GEMM (see the kernel's gemv).
   */
  private rowProduct(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number,
                     n: number, k: number, bias: Float32Array | null, relu: boolean): void {
    const arena = this.arena;
    const al = (x: number) => (x + 15) & ~15;
    const aAt = arena.addressOf(a), bAt = arena.addressOf(b), cAt = arena.addressOf(c), biasAt = bias ? arena.addressOf(bias) : -1;
    const aIn = aAt >= 0 ? aAt + 4 * aOff : -1, bIn = bAt >= 0 ? bAt + 4 * bOff : -1;
    const cIn = cInPlace(cAt, cOff, n, aIn, k, bIn, k * n);
    // scratch (float offsets): the operands that are not in place; B and the bias with 4 floats of slack (a partial
    // last vector reads past the row)
    let o = 0;
    const aOfs = aIn < 0 ? o : -1; if (aIn < 0) o = al(o + k);
    const bOfs = bIn < 0 ? o : -1; if (bIn < 0) o = al(o + k * n + 4);
    const cOfs = cIn < 0 ? o : -1; if (cIn < 0) o = al(o + n + 4);
    const biasOfs = bias && biasAt < 0 ? o : -1; if (biasOfs >= 0) o = al(o + n + 4);
    const base = this.scratch(4 * Math.max(o, 16)) / 4;
    this.ensureSlack(aIn, k, bIn, k * n + 4);
    const f = this.f32;
    if (aIn < 0) f.set(a.subarray(aOff, aOff + k), base + aOfs);
    if (bIn < 0) { f.set(b.subarray(bOff, bOff + k * n), base + bOfs); f.fill(0, base + bOfs + k * n, base + bOfs + k * n + 4); }
    if (biasOfs >= 0) { f.set(bias!.subarray(0, n), base + biasOfs); f.fill(0, base + biasOfs + n, base + biasOfs + n + 4); }
    this.ex.gemv(aIn >= 0 ? aIn : 4 * (base + aOfs), bIn >= 0 ? bIn : 4 * (base + bOfs), cIn >= 0 ? cIn : 4 * (base + cOfs), k, n,
      !bias ? 0 : biasOfs >= 0 ? 4 * (base + biasOfs) : biasAt, relu ? 1 : 0);
    if (cIn < 0) c.set(this.f32.subarray(base + cOfs, base + cOfs + n), cOff);
  }

  packB(b: Float32Array, bOff: number, k: number, n: number, transB: boolean): PackedPanels {
    if (this.closed) throw new Error('gemm: closed');
    checkPackArgs('gemm.packB', b, bOff, k, n);
    const { nr, arena } = this;
    const panels = Math.ceil(n / nr);
    const addr = arena.alloc(4 * panels * k * nr, true);
    if (addr < 0) throw new RangeError(`gemm.packB: no room for ${4 * panels * k * nr} bytes of packed B in the wasm memory (max ${MAX_PAGES * PAGE})`);
    // the block is freed by release(), or once the packed operand (which holds this view) is garbage-collected
    const [view] = arena.adopt(addr, [[0, 1]]);
    const bLen = k * n + nr; // slack: the last panel reads up to NR-1 past the end (N)
    const bAt = arena.addressOf(b);
    let bIn = bAt >= 0 ? bAt + 4 * bOff : -1;
    if (bIn >= 0) this.ensureSlack(-1, 0, bIn, bLen);
    else {
      const base = this.scratch(4 * bLen) / 4;
      this.f32.set(b.subarray(bOff, bOff + k * n), base);
      this.f32.fill(0, base + k * n, base + bLen);
      bIn = 4 * base;
    }
    (transB ? this.ex.packT : this.ex.packN)(bIn, addr, k, transB ? n : n * 4, 0, panels);
    return new PackedPanels(this, addr, panels, k, n, transB, b, bOff, view, () => arena.drop(addr));
  }

  matmulPacked(a: Float32Array, aOff: number, p: PackedPanels, c: Float32Array, cOff: number, m: number, transA: boolean): void {
    if (this.closed) throw new Error('gemm: closed');
    if (!(p instanceof PackedPanels) || p.owner !== this) throw new Error('gemm.matmulPacked: the packed operand was not packed by this GEMM');
    p.check('gemm.matmulPacked');
    checkPackedProduct('gemm.matmulPacked', a, aOff, p, c, cOff, m);
    const { k, n } = p;
    if (m === 0) return;
    // one row of a B stored (k, n): the row product on B itself, as matmul does (faster than a 4-row tile)
    if (m === 1 && !p.transB) { this.rowProduct(a, aOff, p.src, p.srcOff, c, cOff, n, k, null, false); return; }
    this.product(a, aOff, null, 0, false, p, c, cOff, m, n, k, transA, null, false);
  }

  private dispatch(q: Int32Array): void {
    const ctl = this.ctl;
    for (let i = 0; i < NPRM; i++) ctl[PRM + i] = q[i];
    ctl[KIND] = 0;
    this.kick();
  }

  shareModule(bytes: Uint8Array, memory: WebAssembly.Memory, names: string[], scripts: Record<string, string> = {}): number {
    if (!this.worker) throw new Error('gemm: no worker thread to share a module with');
    const slot = this.shared.length;
    const all = [...names, ...Object.keys(scripts)];
    this.shared.push(new Map(all.map((n, i) => [n, i])));
    this.worker.postMessage({ slot, bytes, memory, names, scripts: Object.values(scripts) });
    if (this.worker.asyncMessages) {
      // the worker takes messages only between its tasks: wait until it has the module (it sleeps within
      // milliseconds of its last job), so that split() can hand it work at once
      const t0 = Date.now();
      while (Atomics.load(this.ctl, ACK) <= slot) {
        if (Date.now() - t0 > 10000) { this.workerFailed = true; throw new Error('gemm: the worker thread did not take a shared module within 10 s'); }
        Atomics.wait(this.ctl, ACK, Atomics.load(this.ctl, ACK), 50);
      }
    }
    return slot;
  }

  split(slot: number, calls: [string, number[]][], here: () => void): number[] {
    if (this.closed) throw new Error('gemm: closed');
    const names = this.shared[slot];
    if (!names || !this.workerReady()) throw new Error('gemm.split: the worker is not active, or the module was not shared with it');
    const f64 = new Float64Array(this.memory.buffer, 0, CTL_BYTES / 8);
    let p = CALLS + 1;
    for (const [name, args] of calls) {
      const fi = names.get(name);
      if (fi === undefined) throw new Error(`gemm.split: the shared module has no function '${name}'`);
      if (p + 3 + args.length > CALLS_END) throw new Error('gemm.split: too many calls or arguments for one job');
      f64[p] = slot; f64[p + 1] = fi; f64[p + 2] = args.length;
      for (let j = 0; j < args.length; j++) f64[p + 3 + j] = args[j];
      p += 3 + args.length;
    }
    f64[CALLS] = calls.length;
    this.ctl[KIND] = 1;
    this.kick();
    const since = performance.now();
    try {
      here();
    } finally {
      this.join(since);
    }
    return Array.from(f64.subarray(RET, RET + calls.length));
  }

  splitRange(slot: number, name: string, args: number[], perElem: number[], countIdx: number, countDiv: number,
             n: number, grain: number, here: (...args: number[]) => unknown): void {
    if (this.closed) throw new Error('gemm: closed');
    const names = this.shared[slot];
    if (!names || !this.workerReady()) throw new Error('gemm.splitRange: the worker is not active, or the module was not shared with it');
    const fi = names.get(name);
    if (fi === undefined) throw new Error(`gemm.splitRange: the shared module has no function '${name}'`);
    if (perElem.length !== args.length || CALLS + 7 + 2 * args.length > CALLS_END) throw new Error('gemm.splitRange: bad or too many arguments');
    const f64 = new Float64Array(this.memory.buffer, 0, CTL_BYTES / 8);
    let p = CALLS;
    f64[p] = slot; f64[p + 1] = fi; f64[p + 2] = args.length;
    p += 3;
    for (let i = 0; i < args.length; i++) { f64[p + i] = args[i]; f64[p + args.length + i] = perElem[i]; }
    p += 2 * args.length;
    f64[p] = countIdx; f64[p + 1] = countDiv; f64[p + 2] = n; f64[p + 3] = grain;
    Atomics.store(this.ctl, NEXT, 0);
    this.ctl[KIND] = 2;
    this.kick();
    const since = performance.now();
    try {
      runRange(here, args, perElem, countIdx, countDiv, n, grain, this.ctl);
    } finally {
      if (!this.withdraw(since)) this.join(since);
    }
  }

  private kick(): void {
    const ctl = this.ctl;
    // a worker asleep at dispatch starts late by its wake-up (tens of microseconds to a few ms here, with no
    // contention at all): its lateness is a sign only past a scheduler time slice (withdraw, join)
    this.lateMs = Atomics.load(ctl, AWAKE) === 1 ? PREEMPT_MS : WAKE_MS;
    this.seq = this.seq >= 0x3fffffff ? 1 : this.seq + 1;
    Atomics.store(ctl, JOB, this.seq);
    this.kickAt = Date.now();
    Atomics.store(ctl, SEQ, this.seq);
    Atomics.notify(ctl, SEQ);
  }

  /**
   * Take the current job back from a worker that has not started it (all its work was shared through the counter and
   * is done): true if withdrawn, and then there is nothing to wait for. With `since` (when this thread started its
   * share), a worker that has not started after PREEMPT_MS counts as a sign of contention (a spinning worker starts
   * within microseconds).
   */
  private withdraw(since?: number): boolean {
    if (Atomics.compareExchange(this.ctl, JOB, this.seq, WITHDRAWN) !== this.seq) return false;
    if (since !== undefined) {
      const now = performance.now();
      if (now - since > this.lateMs) { this.signs.late++; this.noteContention(now, STRONG_SIGN); }
    }
    return true;
  }

  /** Wait for the worker's share. With `since` (when this thread started its own share, performance.now() ms):
   *  a wait longer than PREEMPT_MS and than half this thread's share counts as contention (the worker lost its core
   *  mid-job; the two threads' shares of a product differ by about one small chunk otherwise). */
  private join(since?: number): void {
    const ctl = this.ctl, seq = this.seq;
    let spins = 0;
    let waited = 0;
    let t0 = 0;
    while (Atomics.load(ctl, DONE) !== seq) {
      if (++spins < 4000) continue;
      if (spins === 4000) t0 = performance.now();
      const cur = Atomics.load(ctl, DONE);
      if (cur !== seq && Atomics.wait(ctl, DONE, cur, 1000) === 'timed-out' && ++waited >= 60) {
        throw new Error('gemm: the worker thread did not answer for 60 s (it may have died); set GAPGRAD_THREADS=1 to run single-threaded');
      }
    }
    if (since !== undefined && spins >= 4000) {
      const now = performance.now(), wait = now - t0;
      if (wait > this.lateMs && wait > 0.5 * (t0 - since)) { this.signs.wait++; this.noteContention(now, STRONG_SIGN); }
    }
    // the worker was asleep at dispatch: a slow wake-up means it waited for a core (read after DONE: it wrote CLAIM_AT
    // before that)
    if (since !== undefined && this.lateMs === WAKE_MS && this.f64[CLAIM_AT] - this.kickAt > SLOW_WAKE_MS) {
      this.signs.wake++;
      this.noteContention(performance.now(), 1);
    }
    if (Atomics.load(ctl, STATUS) !== 0) throw new Error('gemm: worker failed');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.worker) {
      Atomics.store(this.ctl, STOP, 1);
      Atomics.notify(this.ctl, SEQ);
      await this.worker.terminate();
    }
  }
}

function relaxedSupported(enable?: boolean): boolean {
  if (enable && relaxedSupportedHere !== true) {
    threadPlatform()?.enableRelaxedSimd?.();
    relaxedSupportedHere = undefined;
  }
  if (relaxedSupportedHere === undefined) {
    try { relaxedSupportedHere = WebAssembly.validate(buildKernelModule({ ...DEFAULT_CONFIG, order: 'b-first', relaxed: true })); }
    catch { relaxedSupportedHere = false; }
  }
  return relaxedSupportedHere;
}

function newMemory(): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
}

function instantiate(bytes: Uint8Array<ArrayBuffer>, memory: WebAssembly.Memory): Exports {
  const mod = new WebAssembly.Module(bytes);
  return new WebAssembly.Instance(mod, { [MEM_MODULE]: { [MEM_FIELD]: memory } }).exports as unknown as Exports;
}

function configFrom(opts: GemmOptions | undefined, relaxed: boolean): KernelConfig {
  return { ...DEFAULT_CONFIG, order: defaultOrder(relaxed), ...(opts?.kernel ?? {}), relaxed };
}

/** Single-threaded GEMM on the calling thread; synchronous construction. */
export function createGemmSync(opts?: Omit<GemmOptions, 'threads'>): Gemm {
  const relaxed = relaxedSupported(opts?.enableRelaxedSimd);
  const cfg = configFrom(opts, relaxed);
  const memory = newMemory();
  return new GemmImpl(memory, instantiate(buildKernelModule(cfg), memory), cfg, null, Infinity);
}

/**
 * GEMM on the calling thread plus (threads - 1) worker (at most one worker is supported), returned at once:
 * the worker starts in the background (tens of milliseconds) and takes part in products from the first one
 * after it is up, which the calling thread sees through shared memory (no event-loop turn needed). Results do
 * not depend on whether or how a product was split.
 */
export function createGemmBackground(opts?: GemmOptions): Gemm {
  const platform = threadPlatform();
  if (opts?.threads !== undefined && opts.threads > 1 && !platform) {
    throw new Error(`gemm: threads=${opts.threads} needs a thread platform (on Node, import the package's Node entry); none is installed here, so only threads=1 is allowed`);
  }
  const threads = Math.max(1, Math.min(2, Math.floor(opts?.threads ?? Math.min(2, platform ? platform.cores() : 1))));
  const relaxed = relaxedSupported(opts?.enableRelaxedSimd);
  const cfg = configFrom(opts, relaxed);
  const memory = newMemory();
  const ex = instantiate(buildKernelModule(cfg), memory);
  if (threads === 1) return new GemmImpl(memory, ex, cfg, null, Infinity);
  const plainBytes = buildKernelModule(configFrom(opts, false));
  const relaxedBytes = buildKernelModule(configFrom(opts, true));
  const worker = platform!.spawn(WORKER_SRC, { plainBytes, relaxedBytes, memory });
  const g = new GemmImpl(memory, ex, cfg, worker, opts?.parallelThreshold ?? DEFAULT_SPLIT, opts?.chunked ?? true, opts?.backoff ?? true);
  if (opts?.packedParallelThreshold !== undefined) g.packedSplit = opts.packedParallelThreshold;
  return g;
}

/** GEMM on the calling thread plus (threads - 1) worker, resolved once the worker is ready. */
export async function createGemm(opts?: GemmOptions): Promise<Gemm> {
  const g = createGemmBackground(opts);
  await g.ready();
  return g;
}

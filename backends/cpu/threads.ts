// The CPU backend's second thread, as the platform provides it. The backend's core never imports a platform
// module: on Node, platform/node.ts installs worker_threads here; where nothing is installed (a plain browser
// bundle, for now) the backend runs on one thread and says so (threadPlatform() is null).

/** A started worker thread. */
export interface WorkerThread {
  /** send a structured-cloneable message (the GEMM shares WebAssembly modules this way) */
  postMessage(msg: unknown): void;
  /** called once if the thread fails to start, throws, or exits */
  onFailure(fn: () => void): void;
  /** stop the thread */
  terminate(): Promise<void>;
  /** whether the worker receives messages only between its tasks (browsers): then senders wait for its ACK */
  readonly asyncMessages?: boolean;
}

/** What a platform offers the CPU backend. */
export interface ThreadPlatform {
  /** a name for messages ('node worker_threads', ...) */
  readonly name: string;
  /** logical cores this process may use */
  cores(): number;
  /**
   * Start a worker that evaluates `body`, a self-contained script. In its scope the platform defines:
   * `workerData` (the `data` given here), `post(msg)` (a message to the starting thread), `poll()` (the
   * next message from the starting thread, or undefined; never blocks) and `sleep(i32, index, value)` (wait while
   * `i32[index] === value`: Atomics.wait where the thread may block and return undefined, else a promise the body
   * awaits). Where messages arrive only between tasks, the platform calls the body's `inbox()` on each.
   */
  spawn(body: string, data: unknown): WorkerThread;
  /** turn on relaxed SIMD for WebAssembly process-wide, where the platform can (Node: a V8 flag) */
  enableRelaxedSimd?(): void;
  /**
   * Threads runnable on the whole machine now, the calling one included (Linux: the fourth field of /proc/loadavg),
   * or undefined where the platform cannot tell. The CPU GEMM samples it to see whether a second core is free (see
   * backends/cpu/wasm/contention.ts); about 6 us a call on Linux.
   */
  runnable?(): number | undefined;
}

let current: ThreadPlatform | null = null;

/** Install the platform's threads (platform/node.ts does on Node). */
export function setThreadPlatform(p: ThreadPlatform | null): void { current = p; }

/** The installed platform, or null (one thread). */
export function threadPlatform(): ThreadPlatform | null { return current; }
